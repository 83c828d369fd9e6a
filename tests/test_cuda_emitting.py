"""The emitting expansion's spread of every lane's arcs over the whole grid
(cuda_kernels/emitting.cu: emit_spans, then emit_bound's blocks taking equal
chunks of the flat range): on lanes of very different arc counts, idle and
starting lanes among them, and grids of fewer blocks than lanes, the spans are
aligned and contiguous and each expanding lane's cheapest candidate is numpy's
(blocks whose chunks take several rounds cross from lane to lane). Then
emit_expand: exactly the candidates strictly below each lane's (tightened)
bound make its tokens and links, and a link row one too small is flagged."""

from types import SimpleNamespace

import numpy as np
import pytest

from wfst import cuda_kernels_launch as K
from wfst import cuda_layout as layout
from wfst.cost_select import cost_keys

SPAN_ALIGN = 32


def _lanes(rng, lanes: int, Q: int, S: int, columns: int):
    """Lanes' previous frames (states, costs), modes, and the graph's emitting arcs."""
    degrees = rng.integers(0, 30, S)
    degrees[rng.random(S) < 0.3] = 0
    e_offsets = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int32)
    A = int(e_offsets[-1])
    modes = rng.choice([layout.MODE_EMIT, layout.MODE_EMIT, layout.MODE_EMIT, layout.MODE_START, layout.MODE_IDLE],
                       lanes)
    counts = np.where(rng.random(lanes) < 0.4, rng.integers(0, Q + 1, lanes), rng.integers(0, 4, lanes))
    states = rng.integers(0, S, (lanes, Q)).astype(np.int32)
    costs = rng.normal(0, 10, (lanes, Q)).astype(np.float32)
    scores = rng.normal(0, 3, (lanes, columns)).astype(np.float32)
    return SimpleNamespace(e_offsets=e_offsets, weight=rng.normal(0, 2, A).astype(np.float32),
                           column=rng.integers(0, columns, A).astype(np.int32), modes=modes, counts=counts,
                           states=states, costs=costs, scores=scores)


def _lane_inputs(xp, case, lanes: int):
    """The emitting kernels' per-lane inputs for ``case``: parameters (modes, channel = lane, score row =
    lane), counters (no cheapest candidate yet) and channel token counts, numpy; and the scores on the
    device (the parameters point into them)."""
    ch_count = np.zeros((lanes, layout.CHANNEL_COUNTERS), np.int32)
    ch_count[:, layout.CH_NTOK] = case.counts
    scores = xp.asarray(case.scores)
    params = np.zeros((lanes, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_MODE] = case.modes
    params[:, layout.P_CHANNEL] = np.arange(lanes)
    params[:, layout.P_SCORES] = scores.data.ptr + np.arange(lanes) * scores.shape[1] * 4
    params[:, layout.P_STRIDE] = scores.shape[1]
    counters = np.zeros((lanes, layout.LANE_COUNTERS), np.int32)
    counters[:, layout.C_BEST_EMIT] = layout.KEY_NONE.view(np.int32)
    return params, counters, ch_count, scores


@pytest.mark.parametrize("seed", range(12))
def test_every_lane_s_arcs_spread_over_the_grid_give_each_lane_its_cheapest_candidate(cupy_module, seed):
    rng = np.random.default_rng(seed)
    lanes, Q, S, columns = int(rng.integers(1, 12)), 512, 50, 7  # (blocks do several rounds, across lanes)
    case = _lanes(rng, lanes, Q, S, columns)
    xp = cupy_module
    scale = np.float32(0.5)
    degrees = np.diff(case.e_offsets).astype(np.int64)
    deg_scan = np.zeros((lanes, Q + 1), np.int64)
    deg_scan[:, 1:] = np.cumsum(degrees[case.states], axis=1)
    params, counters, ch_count, scores = _lane_inputs(xp, case, lanes)
    d = SimpleNamespace(params=xp.asarray(params), counters=xp.asarray(counters), ch_state=xp.asarray(case.states),
                        ch_cost=xp.asarray(case.costs), ch_count=xp.asarray(ch_count), deg_scan=xp.asarray(deg_scan),
                        e_offsets=xp.asarray(case.e_offsets), weight=xp.asarray(case.weight),
                        score_column=xp.asarray(case.column), columns16=0,
                        arc_spans=xp.zeros((lanes, 2), np.int64))
    if xp.__name__ != "cupy" and seed % 2:
        xp.schedule(True, seed=seed)  # emulator: preemptive schedules of the threads
    g = SimpleNamespace(lanes=lanes, Q=Q, blocks_per_lane=int(rng.integers(1, 3)))  # a grid of that x lanes blocks
    K.emit_spans(d, g)
    K.emit_bound(d, g, float(scale))
    spans = xp.asnumpy(d.arc_spans)
    expanding = case.modes == layout.MODE_EMIT
    arcs = np.where(expanding, deg_scan[np.arange(lanes), case.counts], 0)
    assert np.all(spans[:, 0] % SPAN_ALIGN == 0)
    assert np.array_equal(spans[:, 1] - spans[:, 0], arcs)
    assert spans[0, 0] == 0 and np.array_equal(spans[1:, 0], spans[:-1, 0] + -(-arcs[:-1] // SPAN_ALIGN) * SPAN_ALIGN)
    best = xp.asnumpy(d.counters)[:, layout.C_BEST_EMIT].view(np.uint32)
    for lane in range(lanes):
        want = layout.KEY_NONE
        if expanding[lane] and arcs[lane]:
            k = np.repeat(np.arange(case.counts[lane]), degrees[case.states[lane, :case.counts[lane]]])
            a = np.concatenate([np.arange(case.e_offsets[s], case.e_offsets[s + 1])
                                for s in case.states[lane, :case.counts[lane]]]).astype(np.int64)
            ac = -(scale * case.scores[lane, case.column[a]])
            want = cost_keys((case.costs[lane, k] + ac) + case.weight[a]).min()
        assert best[lane] == want, lane


def _expand_case(seed: int):
    """Lanes as ``_lanes`` gives them, every cost a multiple of 1/8 (sums exact in float32, so that many
    candidates land exactly on their lane's bound), and what the CPU's second pass (wfst/cpu_search.py: an
    arc is taken iff ``(cost + ac) + weight < bound``, bound = cheapest + adaptive beam) makes of each
    expanding lane: its candidates' (token, arc, acoustic cost, cost) below the bound, and the bound."""
    rng = np.random.default_rng(seed)
    lanes, Q, S, columns = int(rng.integers(2, 7)), 64, 40, 5
    case = _lanes(rng, lanes, Q, S, columns)
    case.costs = (np.round(case.costs / 4) / 2).astype(np.float32)  # (within a few beams of each other)
    case.weight = (np.round(case.weight * 4) / 8).astype(np.float32)
    case.scores = (np.round(case.scores * 2) / 4).astype(np.float32)
    case.nextstate = rng.integers(0, S, case.e_offsets[-1]).astype(np.int32)
    case.adaptive = np.float32(rng.choice([1.5, 2.25, 3.0, 4.5]))
    case.scale = np.float32(0.5)
    case.tighten = np.random.default_rng(seed + 100).choice([0, 0, 0, 1, 3, 16, 20], lanes)  # retries: P_TIGHTEN
    degrees = np.diff(case.e_offsets).astype(np.int64)
    case.deg_scan = np.zeros((lanes, Q + 1), np.int64)
    case.deg_scan[:, 1:] = np.cumsum(degrees[case.states], axis=1)
    case.want = []
    for lane in range(lanes):
        n = case.counts[lane]
        if case.modes[lane] != layout.MODE_EMIT or case.deg_scan[lane, n] == 0:
            case.want.append(None)
            continue
        k = np.repeat(np.arange(n), degrees[case.states[lane, :n]])
        a = np.concatenate([np.arange(case.e_offsets[s], case.e_offsets[s + 1]) for s in case.states[lane, :n]])
        ac = (-(case.scale * case.scores[lane, case.column[a]])).astype(np.float32)
        c = ((case.costs[lane, k] + ac) + case.weight[a]).astype(np.float32)
        t = case.tighten[lane]  # common.cuh's rule: beam / 2^t, from TIGHTEN_LAST on only the cheapest cost
        bound = (np.float32(c.min() + case.adaptive) if t == 0 else np.float32(c.min() + np.ldexp(case.adaptive, -t))
                 if t < layout.TIGHTEN_LAST else np.nextafter(c.min(), np.float32(np.inf)))
        below = c < bound
        case.want.append(SimpleNamespace(bound=bound, k=k[below], a=a[below], ac=ac[below], c=c[below],
                                         on_bound=int(np.count_nonzero(c == bound))))
    case.lanes, case.Q = lanes, Q
    return case


def _expand(xp, case, X, H=256, seed=0):
    """emit_spans, emit_bound and emit_expand over ``case``'s lanes, link rows of ``X`` (one more row than the
    lanes: a guard no lane may write); (counters, hash, tok_state, tok_slot, links (src, dst, arc, ac)) after,
    and the counters before."""
    lanes, Q = case.lanes, case.Q
    params, counters, ch_count, scores = _lane_inputs(xp, case, lanes)
    params[:, layout.P_TIGHTEN] = case.tighten
    counters[:, layout.C_ADAPTIVE] = case.adaptive.view(np.int32)
    counters[:, layout.C_BOUND] = 12345
    hash_ = np.zeros((lanes, H, layout.HASH_SLOT_INTS), np.int32)
    hash_[..., 0], hash_[..., 1], hash_[..., 3] = -1, np.int32(layout.KEY_NONE.view(np.int32)), -1
    d = SimpleNamespace(params=xp.asarray(params), counters=xp.asarray(counters), ch_state=xp.asarray(case.states),
                        ch_cost=xp.asarray(case.costs), ch_count=xp.asarray(ch_count),
                        deg_scan=xp.asarray(case.deg_scan), e_offsets=xp.asarray(case.e_offsets),
                        nextstate=xp.asarray(case.nextstate), weight=xp.asarray(case.weight),
                        score_column=xp.asarray(case.column), columns16=0, arc_spans=xp.zeros((lanes, 2), np.int64),
                        hash=xp.asarray(hash_), tok_state=xp.asarray(np.full((lanes, Q), -1, np.int32)),
                        tok_slot=xp.asarray(np.full((lanes, Q), -1, np.int32)),
                        **{f"link_{name}": xp.asarray(np.full((lanes + 1, X), -9, dtype)) for name, dtype in
                           (("src", np.int32), ("dst", np.int32), ("arc", np.int32), ("ac", np.float32))})
    if xp.__name__ != "cupy" and seed % 2:
        xp.schedule(True, seed=seed)  # emulator: preemptive schedules of the threads
    g = SimpleNamespace(lanes=lanes, Q=Q, H=H, X=X, blocks_per_lane=1 + seed % 2)
    K.emitting_expansion(d, g, float(case.scale))
    get = xp.asnumpy
    return (get(d.counters), get(d.hash), get(d.tok_state), get(d.tok_slot),
            tuple(get(a) for a in (d.link_src, d.link_dst, d.link_arc, d.link_ac)), counters)


@pytest.mark.parametrize("seed", [2, 3, 6, 7, 8, 9, 10, 13])  # (seeds with candidates exactly on a bound)
def test_the_emitting_expansion_takes_exactly_the_candidates_below_the_bound(cupy_module, seed):
    """emit_expand, after emit_bound, on lanes whose costs are multiples of 1/8 (many candidates exactly on
    the bound): each expanding lane's bound is its cheapest candidate plus its adaptive beam (halved per
    overflow retry, P_TIGHTEN; from TIGHTEN_LAST on, the next float above the cheapest: only it is kept),
    its tokens are the next states of exactly the candidates strictly below the bound (the CPU's ``c < bound``), each at
    its cheapest such candidate's cost and dirty, and its links exactly those candidates (source token,
    arc, acoustic cost, destination slot holding the arc's next state); lanes that do not expand keep
    their counters."""
    case = _expand_case(seed)
    X = 4096
    counters, table, tok_state, tok_slot, (src, dst, arc, ac), before = _expand(cupy_module, case, X, seed=seed)
    assert np.all(src[case.lanes] == -9)  # the guard row
    on_bound = 0
    for lane, want in enumerate(case.want):
        ctr = counters[lane]
        if case.modes[lane] != layout.MODE_EMIT:
            assert np.array_equal(ctr, before[lane]), lane
            continue
        if want is None:
            assert ctr[layout.C_NTOK] == 0 and ctr[layout.C_NLINK] == 0
            continue
        on_bound += want.on_bound
        assert ctr[layout.C_BOUND:layout.C_BOUND + 1].view(np.float32)[0] == want.bound
        assert ctr[layout.C_OVERFLOW] == 0
        states = np.unique(case.nextstate[want.a])
        n = ctr[layout.C_NTOK]
        assert n == states.size and np.array_equal(np.sort(tok_state[lane, :n]), states), lane
        for i in range(n):
            slot = table[lane, tok_slot[lane, i]]
            cheapest = want.c[case.nextstate[want.a] == tok_state[lane, i]].min()
            assert slot[0] == tok_state[lane, i] and slot[1].view(np.uint32) == cost_keys(np.float32([cheapest]))[0]
            assert slot[2] == 1
        nl = ctr[layout.C_NLINK]
        assert nl == want.a.size, lane
        got = sorted(zip(src[lane, :nl].tolist(), arc[lane, :nl].tolist()))
        assert got == sorted(zip(want.k.tolist(), want.a.tolist())), lane
        order = np.argsort(arc[lane, :nl])
        assert np.array_equal(ac[lane, :nl][order], want.ac[np.argsort(want.a)])
        assert np.array_equal(table[lane, dst[lane, :nl], 0], case.nextstate[arc[lane, :nl]])
    assert on_bound > 0


@pytest.mark.parametrize("seed", [0, 2, 3, 6])  # (seeds with a lane of several links)
def test_the_emitting_expansion_flags_one_link_too_many(cupy_module, seed):
    """A lane whose candidates below the bound are one more than its link row holds (X) counts them all,
    writes X links, raises OVF_LINKS (common.cuh: the overflow flags the host retries on) and writes
    nothing outside its row; lanes with room raise nothing."""
    case = _expand_case(seed)
    sizes = [w.a.size for w in case.want if w is not None]
    assert max(sizes) >= 2
    X = max(sizes) - 1
    counters, _, _, _, (src, _, arc, _), _ = _expand(cupy_module, case, X, seed=seed)
    assert np.all(src[case.lanes] == -9) and np.all(arc[case.lanes] == -9)  # the guard row
    for lane, want in enumerate(case.want):
        if want is None:
            continue
        ctr = counters[lane]
        assert ctr[layout.C_NLINK] == want.a.size
        over = want.a.size > X
        assert bool(ctr[layout.C_OVERFLOW] & layout.OVF_LINKS) == over, lane
        kept = min(X, want.a.size)
        assert set(arc[lane, :kept].tolist()) <= set(want.a.tolist())
