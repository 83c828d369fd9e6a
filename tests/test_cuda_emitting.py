"""The emitting expansion's spread of every lane's arcs over the whole grid
(cuda_kernels/emitting.cu: emit_spans, then emit_bound's blocks taking equal
chunks of the flat range): on lanes of very different arc counts, idle and
starting lanes among them, and grids of fewer blocks than lanes, the spans are
aligned and contiguous and each expanding lane's cheapest candidate is numpy's
(blocks whose chunks take several rounds cross from lane to lane)."""

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
    ch_count = np.zeros((lanes, layout.CHANNEL_COUNTERS), np.int32)
    ch_count[:, layout.CH_NTOK] = case.counts
    scores = xp.asarray(case.scores)
    params = np.zeros((lanes, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_MODE] = case.modes
    params[:, layout.P_CHANNEL] = np.arange(lanes)
    params[:, layout.P_SCORES] = scores.data.ptr + np.arange(lanes) * columns * 4
    params[:, layout.P_STRIDE] = columns
    counters = np.zeros((lanes, layout.LANE_COUNTERS), np.int32)
    counters[:, layout.C_BEST_EMIT] = layout.KEY_NONE.view(np.int32)
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
