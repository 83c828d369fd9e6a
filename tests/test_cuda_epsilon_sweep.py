"""The grid-wide epsilon sweep (cuda_kernels/epsilon.cu: eps_sweep after
spans.cu's count_spans), on a GPU (marked gpu) and on the CPU emulator: on
lanes of very different token counts, with lanes that do not search among them
and grids of fewer blocks than lanes, one sweep follows the epsilon arcs of
every dirty token below its lane's bound that the lane had when the sweep was
laid out (each arc's result below the bound is in the lane's hash map at that
cost or lower), and leaves the lanes that do not search alone. The sweeps, eps_persistent and
eps_links together reach the CPU's closure and links exactly, on costs that
land on the bound."""

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


@pytest.mark.parametrize("seed", range(10))
def test_one_sweep_follows_every_dirty_token_s_arcs_in_every_searching_lane(cupy_module, seed):
    xp = cupy_module
    rng = np.random.default_rng(seed)
    lanes, S, Q, H = int(rng.integers(1, 9)), 3000, 2048, 8192
    degrees = np.where(rng.random(S) < 0.4, 0, rng.integers(1, 4, S))
    ne_offsets = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int32)
    nextstate = rng.integers(0, S, ne_offsets[-1]).astype(np.int32)
    weight = rng.exponential(2, ne_offsets[-1]).astype(np.float32)
    modes = rng.choice([layout.MODE_EMIT, layout.MODE_EMIT, layout.MODE_START, layout.MODE_RETRY_SKIP,
                        layout.MODE_IDLE], lanes)
    counts = np.where(rng.random(lanes) < 0.5, rng.integers(0, 700, lanes), rng.integers(0, 5, lanes))
    hash_ = np.zeros((lanes, H, layout.HASH_SLOT_INTS), np.int32)
    hash_[..., 0], hash_[..., 1], hash_[..., 3] = -1, np.int32(layout.KEY_NONE.view(np.int32)), -1
    tok_state, tok_slot = np.full((lanes, Q), -1, np.int32), np.full((lanes, Q), -1, np.int32)
    counters = np.zeros((lanes, layout.LANE_COUNTERS), np.int32)
    costs = np.zeros((lanes, Q), np.float32)
    for lane in range(lanes):
        n = counts[lane]
        states = rng.choice(S, n, replace=False).astype(np.int32)
        costs[lane, :n] = rng.uniform(0, 20, n).astype(np.float32)
        for i, state in enumerate(states):
            slot = _slot(hash_[lane], state)
            hash_[lane, slot, 0] = state
            hash_[lane, slot, 1:3] = cost_keys(costs[lane, i:i + 1]).view(np.int32)[0], rng.random() < 0.8
            tok_state[lane, i], tok_slot[lane, i] = state, slot
        counters[lane, layout.C_NTOK] = n
        counters[lane, layout.C_BOUND] = np.float32(rng.uniform(10, 25)).view(np.int32)
    params = np.zeros((lanes, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_MODE] = modes
    d = SimpleNamespace(params=xp.asarray(params), counters=xp.asarray(counters), ne_offsets=xp.asarray(ne_offsets),
                        nextstate=xp.asarray(nextstate), weight=xp.asarray(weight), hash=xp.asarray(hash_),
                        tok_state=xp.asarray(tok_state), tok_slot=xp.asarray(tok_slot),
                        token_spans=xp.zeros((lanes, 2), np.int64))
    if xp.__name__ != "cupy" and seed % 2:
        xp.schedule(True, seed=seed)  # emulator: preemptive schedules of the threads
    g = SimpleNamespace(lanes=lanes, Q=Q, H=H, blocks_per_lane=int(rng.integers(1, 3)))  # blocks cross lanes
    K.token_spans(d, g)
    K.eps_sweep(d, g)
    table, ctr = xp.asnumpy(d.hash), xp.asnumpy(d.counters)
    followed = 0
    for lane in range(lanes):
        if modes[lane] not in (layout.MODE_START, layout.MODE_EMIT):
            assert np.array_equal(table[lane], hash_[lane]) and np.array_equal(ctr[lane], counters[lane])
            continue
        bound = counters[lane, layout.C_BOUND:layout.C_BOUND + 1].view(np.float32)[0]
        for i in range(counts[lane]):
            s, slot = tok_state[lane, i], tok_slot[lane, i]
            if not (hash_[lane, slot, 2] and costs[lane, i] < bound):
                continue
            for a in range(ne_offsets[s], ne_offsets[s + 1]):
                c = costs[lane, i] + weight[a]
                if c < bound:
                    v = _slot(table[lane], nextstate[a])
                    assert table[lane, v, 0] == nextstate[a] and table[lane, v, 1].view(np.uint32) <= cost_keys(np.float32([c]))[0]
                    followed += 1
        made = ctr[lane, layout.C_NTOK]
        slots = xp.asnumpy(d.tok_slot)[lane, :made]
        assert made >= counts[lane] and np.array_equal(table[lane, slots, 0], xp.asnumpy(d.tok_state)[lane, :made])
    assert followed > 0 or not np.any(np.isin(modes, [layout.MODE_START, layout.MODE_EMIT]) & (counts > 0))


def _closure_case(seed: int):
    """Lanes of tokens (every one dirty) in their hash maps, costs, weights and bounds multiples of 1/4 (many
    epsilon results exactly on a bound), modes of every kind; each searching lane's closure as the CPU's
    step 3 defines it (wfst/cpu_search.py: relax from tokens below the bound, keep results below it, to the
    fixpoint), and its epsilon links (one per arc from a token below the bound whose result is below it)."""
    rng = np.random.default_rng(seed)
    lanes, S, Q, H, X = int(rng.integers(2, 6)), 60, 256, 512, 1024
    degrees = np.where(rng.random(S) < 0.3, 0, rng.integers(1, 4, S))
    ne_offsets = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int32)
    nextstate = rng.integers(0, S, ne_offsets[-1]).astype(np.int32)
    weight = (rng.integers(0, 9, ne_offsets[-1]) / 4).astype(np.float32)
    modes = np.array([layout.MODE_EMIT, layout.MODE_START, layout.MODE_RETRY_SKIP, layout.MODE_IDLE,
                      layout.MODE_EMIT])[:lanes]
    hash_ = np.zeros((lanes, H, layout.HASH_SLOT_INTS), np.int32)
    hash_[..., 0], hash_[..., 1], hash_[..., 3] = -1, np.int32(layout.KEY_NONE.view(np.int32)), -1
    tok_state, tok_slot = np.full((lanes, Q), -1, np.int32), np.full((lanes, Q), -1, np.int32)
    counters = np.zeros((lanes, layout.LANE_COUNTERS), np.int32)
    want = []
    for lane in range(lanes):
        n = int(rng.integers(3, 12))
        states = rng.choice(S, n, replace=False).astype(np.int32)
        costs = (rng.integers(0, 16, n) / 4).astype(np.float32)
        bound = np.float32(rng.integers(12, 24) / 4)
        for i, state in enumerate(states):
            slot = _slot(hash_[lane], state)
            hash_[lane, slot, 0] = state
            hash_[lane, slot, 1:3] = cost_keys(costs[i:i + 1]).view(np.int32)[0], 1
            tok_state[lane, i], tok_slot[lane, i] = state, slot
        counters[lane, layout.C_NTOK] = n
        counters[lane, layout.C_BOUND] = bound.view(np.int32)
        best = dict(zip(states.tolist(), costs.tolist()))
        changed = True
        while changed:  # Bellman-Ford to the fixpoint (float32 sums: exact here)
            changed = False
            for s, cu in list(best.items()):
                if not np.float32(cu) < bound:
                    continue
                for a in range(ne_offsets[s], ne_offsets[s + 1]):
                    c = np.float32(np.float32(cu) + weight[a])
                    t = int(nextstate[a])
                    if c < bound and c < best.get(t, np.inf):
                        best[t] = c
                        changed = True
        links = sorted((s, a) for s, cu in best.items() if np.float32(cu) < bound
                       for a in range(ne_offsets[s], ne_offsets[s + 1]) if np.float32(cu) + weight[a] < bound)
        on_bound = sum(np.float32(cu) + weight[a] == bound for s, cu in best.items()
                       for a in range(ne_offsets[s], ne_offsets[s + 1]))
        want.append(SimpleNamespace(costs=best, links=links, on_bound=on_bound))
    params = np.zeros((lanes, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_MODE] = modes
    return SimpleNamespace(lanes=lanes, S=S, Q=Q, H=H, X=X, ne_offsets=ne_offsets, nextstate=nextstate,
                           weight=weight, modes=modes, hash=hash_, tok_state=tok_state, tok_slot=tok_slot,
                           counters=counters, params=params, want=want)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5, 7, 8])  # (seeds with results exactly on a bound)
def test_the_epsilon_closure_and_its_links_keep_strictly_below_the_bound(cupy_module, seed):
    """eps_sweep, eps_persistent, then eps_links (the search's order) on lanes whose epsilon results often
    land exactly on the bound: each searching lane ends with the CPU's closure (every state reached below the
    bound, at its cheapest cost, nothing at or above the bound) and exactly the CPU's epsilon links (from
    tokens below the bound, results strictly below it, destination slot of the arc's next state, acoustic
    cost 0); lanes left alone this step (retrying others, idle) keep their tables, counters and links."""
    xp = cupy_module
    c = _closure_case(seed)
    d = SimpleNamespace(params=xp.asarray(c.params), counters=xp.asarray(c.counters),
                        ne_offsets=xp.asarray(c.ne_offsets), nextstate=xp.asarray(c.nextstate),
                        weight=xp.asarray(c.weight), hash=xp.asarray(c.hash), tok_state=xp.asarray(c.tok_state),
                        tok_slot=xp.asarray(c.tok_slot), token_spans=xp.zeros((c.lanes, 2), np.int64),
                        link_src=xp.asarray(np.full((c.lanes, c.X), -9, np.int32)),
                        link_dst=xp.asarray(np.full((c.lanes, c.X), -9, np.int32)),
                        link_arc=xp.asarray(np.full((c.lanes, c.X), -9, np.int32)),
                        link_ac=xp.asarray(np.full((c.lanes, c.X), -9, np.float32)))
    if xp.__name__ != "cupy" and seed % 2:
        xp.schedule(True, seed=seed)  # emulator: preemptive schedules of the threads
    g = SimpleNamespace(lanes=c.lanes, Q=c.Q, H=c.H, X=c.X, blocks_per_lane=1 + seed % 2)
    K.epsilon_closure(d, g)
    table, ctr, tok_state = xp.asnumpy(d.hash), xp.asnumpy(d.counters), xp.asnumpy(d.tok_state)
    src, dst, arc, ac = (xp.asnumpy(a) for a in (d.link_src, d.link_dst, d.link_arc, d.link_ac))
    on_bound = 0
    for lane, want in enumerate(c.want):
        if c.modes[lane] not in (layout.MODE_START, layout.MODE_EMIT):
            assert np.array_equal(table[lane], c.hash[lane]) and np.array_equal(ctr[lane], c.counters[lane])
            assert np.all(src[lane] == -9), lane
            continue
        on_bound += want.on_bound
        n = ctr[lane, layout.C_NTOK]
        assert ctr[lane, [layout.C_OVERFLOW, layout.C_STATUS]].tolist() == [0, 0]
        got = {int(s): float(table[lane, _slot(table[lane], s), 1:2].view(np.uint32)[0]) for s in tok_state[lane, :n]}
        assert sorted(got) == sorted(want.costs), lane
        for s, cost in want.costs.items():
            assert got[s] == cost_keys(np.float32([cost]))[0], (lane, s)
        nl = ctr[lane, layout.C_NLINK]
        links = sorted((int(tok_state[lane, k]), int(a)) for k, a in zip(src[lane, :nl], arc[lane, :nl]))
        assert links == want.links, lane
        assert np.array_equal(table[lane, dst[lane, :nl], 0], c.nextstate[arc[lane, :nl]])
        assert np.all(ac[lane, :nl] == 0)
    assert on_bound > 0
