"""The tie rule's kernels (cuda_kernels/ties.cu: resolve_tokens, resolve_links,
tie_bfs), on a GPU (marked gpu) and on the CPU emulator, on hand-built frames
full of ties (every cost a multiple of 1/4, the links' order unlike their
arcs'): each token's best link is the one the CPU's rule picks
(wfst/cpu_search.py, step 4: among the links achieving its cost exactly, the
fewest epsilon hops since the last emitting link, then the lowest arc), in
lanes of every mode; tokens no achieving link reaches report a negative cycle,
unless the lane overflowed."""

from types import SimpleNamespace

import numpy as np
import pytest

from wfst import cuda_kernels_launch as K
from wfst import cuda_layout as layout
from wfst.cost_select import cost_keys
from wfst.cpu_search import _slot as _probe

pytestmark = pytest.mark.usefixtures("cupy_module")


def _slot(table: np.ndarray, state: int) -> int:
    """The slot of ``state`` in a lane's (H, 4) table, or the empty one where it would go: the CPU search's
    probing (wfst.cpu_search._slot), which is hash_insert's."""
    return int(_probe(np.ascontiguousarray(table[:, 0]), np.int32(state)))


def _tie_frame(rng, mode):
    """One lane's frame as the search leaves it before resolve_tokens: tokens (state = index + 3) in their
    hash slots at the cheapest cost over their links, the emitting links first (from the previous frame's
    tokens, none in MODE_START), then epsilon links among the frame's tokens, each link its own arc (a
    permutation: arc order unlike link order), costs multiples of 1/4 (ties everywhere); and each token's
    best link by the CPU's rule (wfst/cpu_search.py, step 4): among the links achieving its cost, the fewest
    epsilon hops since an emitting link, then the lowest arc."""
    n = int(rng.integers(2, 12))
    prev = (rng.integers(0, 6, 5) / 4).astype(np.float32)
    start = mode == layout.MODE_START
    # every token (but the start token) one link from a source before it (an emitting one for some), then more
    first = [(int(rng.integers(0, prev.size)), v, True) if not start and (v == 0 or rng.random() < 0.4)
             else (int(rng.integers(0, v)), v, False) for v in range(1 if start else 0, n)]
    more = [(int(rng.integers(0, prev.size)), int(rng.integers(0, n)), True) for _ in range(0 if start else 2 * n)]
    more += [(int(rng.integers(0, n)), int(rng.integers(1 if start else 0, n)), False) for _ in range(2 * n)]
    links = [x for x in first + more if x[2]] + [x for x in first + more if not x[2]]
    ne, nl = sum(x[2] for x in links), len(links)
    src = np.array([x[0] for x in links], np.int32)
    dst = np.array([x[1] for x in links], np.int32)
    arc = rng.permutation(nl * 2)[:nl].astype(np.int32)
    weight = (rng.integers(0, 5, nl * 2) / 4).astype(np.float32)
    ac = np.zeros(nl, np.float32)
    ac[:ne] = rng.integers(0, 4, ne) / 4
    cost = np.full(n, np.inf, np.float32)
    if start:
        cost[0] = 0
    for l in range(ne):
        cost[dst[l]] = min(cost[dst[l]], np.float32(np.float32(prev[src[l]] + ac[l]) + weight[arc[l]]))
    changed = True
    while changed:  # the epsilon links' fixpoint (weights >= 0)
        changed = False
        for l in range(ne, nl):
            c = np.float32(cost[src[l]] + weight[arc[l]])
            if c < cost[dst[l]]:
                cost[dst[l]], changed = c, True
    hops = np.full(n, -1)
    best = np.full(n, -1)
    if start:
        hops[0] = 0
    for l in range(ne):
        v = dst[l]
        if np.float32(np.float32(prev[src[l]] + ac[l]) + weight[arc[l]]) == cost[v]:
            hops[v] = 0
            if best[v] < 0 or arc[l] < arc[best[v]]:
                best[v] = l
    level = 0
    while True:  # breadth-first over the achieving epsilon links
        found = [l for l in range(ne, nl) if hops[src[l]] == level and (hops[dst[l]] in (-1, level + 1))
                 and np.float32(cost[src[l]] + weight[arc[l]]) == cost[dst[l]]]
        if not found:
            break
        for l in found:
            v = dst[l]
            hops[v] = level + 1
            if best[v] < 0 or arc[l] < arc[best[v]]:
                best[v] = l
        level += 1
    reached = np.isfinite(cost)
    return SimpleNamespace(n=n, prev=prev, ne=ne, nl=nl, src=src, dst=dst, arc=arc, weight=weight, ac=ac,
                           cost=cost, best=best, reached=reached)


@pytest.mark.parametrize("seed", range(6))
def test_each_token_s_best_link_follows_the_tie_rule(cupy_module, seed):
    """resolve_tokens, resolve_links, then tie_bfs on lanes of frames full of ties (every cost a multiple
    of 1/4, link order unlike arc order): each token's cost is its hash slot's, its best link the one the
    CPU's tie rule picks (the fewest epsilon hops since an emitting link, then the lowest arc), every link's
    destination its token index, and no lane reports a negative cycle; a token no achieving link reaches
    (its cost below them all) makes the lane report one, unless the lane overflowed (its frame is redone,
    with lost tokens and links); a lane that does not search keeps its arrays."""
    xp = cupy_module
    rng = np.random.default_rng(seed)
    modes = [layout.MODE_EMIT, layout.MODE_START, layout.MODE_EMIT, layout.MODE_IDLE, layout.MODE_EMIT]
    frames = []
    for m in modes:
        while True:  # frames whose every token has a link or is the start token
            f = _tie_frame(rng, m)
            if f.reached.all():
                break
        frames.append(f)
    # and twice the first frame with its token 0 below every link's sum (its achieving link lost): after an
    # overflow (the frame is redone: no status), and without one (a float32 negative cycle)
    for overflow in (layout.OVF_LINKS, 0):
        lost = SimpleNamespace(**vars(frames[0]))
        lost.cost = lost.cost.copy()
        lost.cost[0] -= 1
        lost.overflow = overflow
        frames.append(lost)
        modes.append(layout.MODE_EMIT)
    lanes, Q, X, H = len(modes), 16, 64, 64
    hash_ = np.zeros((lanes, H, layout.HASH_SLOT_INTS), np.int32)
    hash_[..., 0], hash_[..., 1], hash_[..., 3] = -1, np.int32(layout.KEY_NONE.view(np.int32)), -1
    tok_slot = np.full((lanes, Q), -1, np.int32)
    ch_cost = np.zeros((lanes, Q), np.float32)
    link = {name: np.full((lanes, X), -9, dtype) for name, dtype in
            (("src", np.int32), ("dst", np.int32), ("arc", np.int32), ("ac", np.float32))}
    weight = np.zeros((lanes, 2 * X), np.float32)
    counters = np.zeros((lanes, layout.LANE_COUNTERS), np.int32)
    for lane, f in enumerate(frames):
        for i in range(f.n):
            slot = _slot(hash_[lane], i + 3)
            hash_[lane, slot, :2] = i + 3, cost_keys(f.cost[i:i + 1]).view(np.int32)[0]
            tok_slot[lane, i] = slot
        ch_cost[lane, :f.prev.size] = f.prev
        link["src"][lane, :f.nl], link["arc"][lane, :f.nl] = f.src, f.arc + lane * 2 * X
        link["dst"][lane, :f.nl] = tok_slot[lane, f.dst]
        link["ac"][lane, :f.nl] = f.ac
        weight[lane, :f.weight.size] = f.weight
        counters[lane, [layout.C_NTOK, layout.C_NLINK, layout.C_NEMIT]] = f.n, f.nl, f.ne
        counters[lane, layout.C_OVERFLOW] = getattr(f, "overflow", 0)
    params = np.zeros((lanes, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_MODE] = modes
    params[:, layout.P_CHANNEL] = np.arange(lanes)
    d = SimpleNamespace(params=xp.asarray(params), counters=xp.asarray(counters), hash=xp.asarray(hash_),
                        tok_slot=xp.asarray(tok_slot), ch_cost=xp.asarray(ch_cost), weight=xp.asarray(weight.ravel()),
                        tok_cost=xp.asarray(np.full((lanes, Q), -9, np.float32)),
                        tok_hops=xp.asarray(np.full((lanes, Q), -9, np.int32)),
                        tok_best_arc=xp.asarray(np.full((lanes, Q), 7, np.uint32)),
                        tok_best=xp.asarray(np.full((lanes, Q), -9, np.int32)),
                        token_spans=xp.zeros((lanes, 2), np.int64), link_spans=xp.zeros((lanes, 2), np.int64),
                        **{f"link_{name}": xp.asarray(values) for name, values in link.items()})
    if xp.__name__ != "cupy" and seed % 2:
        xp.schedule(True, seed=seed)  # emulator: preemptive schedules of the threads
    g = SimpleNamespace(lanes=lanes, Q=Q, X=X, H=H, blocks_per_lane=1 + seed % 2)
    K.token_spans(d, g)  # (the epsilon stage's last spans, which the step's resolve_ties reads)
    K.resolve_ties(d, g)
    ctr, tok_cost, tok_best = xp.asnumpy(d.counters), xp.asnumpy(d.tok_cost), xp.asnumpy(d.tok_best)
    link_dst = xp.asnumpy(d.link_dst)
    for lane, f in enumerate(frames):
        if modes[lane] == layout.MODE_IDLE:
            assert np.all(tok_best[lane] == -9) and np.array_equal(link_dst[lane], link["dst"][lane])
            continue
        if hasattr(f, "overflow"):
            want = layout.STATUS_OK if f.overflow else layout.STATUS_NEGATIVE_CYCLE
            assert ctr[lane, layout.C_STATUS] == want and tok_best[lane, 0] == -1, lane
            continue
        assert ctr[lane, layout.C_STATUS] == layout.STATUS_OK, lane
        assert np.array_equal(tok_cost[lane, :f.n], f.cost), lane
        assert np.array_equal(link_dst[lane, :f.nl], f.dst), lane
        assert tok_best[lane, :f.n].tolist() == f.best.tolist(), lane
