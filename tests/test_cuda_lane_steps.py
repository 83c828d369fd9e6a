"""The step loop's per-lane bookkeeping (:mod:`wfst.cuda_lane_steps`) against
the rules written with numpy over the lanes' arrays, on random lane states
over many steps: modes and score rows, overflowed lanes, and the outcome of a
searched step (jobs ended and how, the window plan, the lanes' next rows)."""

import numpy as np

from wfst import cuda_layout as layout
from wfst.cuda_lane_steps import LOST, NEGATIVE_CYCLE, SEARCHED, close_step, overflowing, set_lane_params
from wfst.cuda_window_plan import plan_windows

LANES, Q, X, W, PERIOD, LAG, CAPACITY, TF = 37, 50, 80, 6, 4, 2, 5, 24
FRAME_WORDS = 3 + 3 * Q + 5 * X  # a worst-case frame's packed words
PACKED = layout.WINDOW_HEADER + LANES * (2 * FRAME_WORDS + 2)  # room for one more per lane: some lanes send early


def _lane_params_model(params, busy, row, on_host, chunk_rows):
    params[:, layout.P_MODE] = np.where(~busy, layout.MODE_IDLE,
                                        np.where(row < 0, layout.MODE_START, layout.MODE_EMIT))
    params[:, layout.P_TIGHTEN] = 0
    params[:, layout.P_ROW] = np.where(on_host, row % chunk_rows, row)
    return np.flatnonzero(busy & on_host & (row >= 0) & (row % chunk_rows == 0))


def _overflowing_model(counters, params, tighten):
    mode = params[:, layout.P_MODE]
    ran = (mode == layout.MODE_START) | (mode == layout.MODE_EMIT)
    bad = ran & ((counters[:, layout.C_OVERFLOW] != 0) | (counters[:, layout.C_NTOK] > Q)
                 | (counters[:, layout.C_NLINK] > X)) & (tighten <= layout.TIGHTEN_LAST)
    return int(bad.sum()), bad


def _close_step_model(counters, busy, row, rows, finishing, params, window):
    ran = busy.copy()
    cycle = ran & (counters[:, layout.C_STATUS] == layout.STATUS_NEGATIVE_CYCLE)
    lost = ran & ~cycle & ((counters[:, layout.C_OVERFLOW] != 0) | (counters[:, layout.C_NTOK] > Q)
                           | (counters[:, layout.C_NLINK] > X))
    ended = ran & ((row + 1 >= rows) | cycle | lost)
    good = ran & ~cycle & ~lost
    sizes = np.minimum(counters[:, [layout.C_NTOK, layout.C_NLINK]], [Q, X]).astype(np.int64)
    plan = plan_windows(params, good, ended, finishing, row, sizes, *window, PERIOD, LAG, Q, X, CAPACITY * Q,
                        CAPACITY * X, TF, PACKED)
    expanded = int(counters[ran, layout.C_EXPANDED].sum())
    frames = int((ran & (row >= 0)).sum())
    how = np.where(cycle, NEGATIVE_CYCLE, np.where(lost, LOST, SEARCHED))
    row[ran] += 1
    busy &= ~ended
    for array in window[:1] + window[1:2] + window[3:]:  # frames, sizes, kept frames, kept sizes (not the starts)
        array[ended] = 0
    done = np.flatnonzero(ended)
    return (*plan, done, how[done], expanded, frames)


def _window_state():
    return [np.zeros(LANES, np.int64), np.zeros((LANES, W, 2), np.int64), np.zeros(LANES, bool),
            np.zeros(LANES, np.int64), np.zeros((LANES, 2), np.int64)]


def _counters(rng):
    counters = np.zeros((LANES, layout.LANE_COUNTERS), np.int32)
    counters[:, layout.C_NTOK] = rng.integers(1, Q + 3, LANES)
    counters[:, layout.C_NLINK] = rng.integers(0, X + 3, LANES)
    counters[:, layout.C_OVERFLOW] = np.where(rng.random(LANES) < 0.05, layout.OVF_HASH, 0)
    counters[:, layout.C_STATUS] = np.where(rng.random(LANES) < 0.03, layout.STATUS_NEGATIVE_CYCLE, 0)
    counters[:, layout.C_EXPANDED] = rng.integers(0, 1000, LANES)
    return counters


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_lane_params_and_overflowed_lanes_follow_the_numpy_rules():
    rng = np.random.default_rng(0)
    for _ in range(50):
        busy, on_host = rng.random(LANES) < 0.7, rng.random(LANES) < 0.5
        row = rng.integers(-1, 70, LANES)
        params, want = np.zeros((2, LANES, layout.LANE_PARAMS), np.int64)
        params[:] = want[:] = rng.integers(0, 9, (LANES, layout.LANE_PARAMS))
        _same([set_lane_params(params, busy, row, on_host, 16)], [_lane_params_model(want, busy, row, on_host, 16)])
        _same([params], [want])
        tighten = rng.integers(0, layout.TIGHTEN_LAST + 2, LANES)
        counters = _counters(rng)
        _same(overflowing(counters, params, tighten, Q, X), _overflowing_model(counters, params, tighten))


def test_a_searched_step_closes_as_the_numpy_rules_over_many_steps():
    """Lanes take jobs of 1-30 rows as they free up; every step's outputs and
    every array the step updates agree with the rules, keeping lanes' pool
    sizes reported as the device would before the next step."""
    rng = np.random.default_rng(1)
    busy, row, rows = np.zeros(LANES, bool), np.zeros(LANES, np.int64), np.zeros(LANES, np.int64)
    finishing = np.zeros(LANES, bool)
    params = np.zeros((LANES, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_CHANNEL] = rng.permutation(LANES)
    window = _window_state()
    seen, early = set(), 0
    for _ in range(300):
        free = ~busy & (rng.random(LANES) < 0.5)
        busy[free], row[free], rows[free] = True, -1, rng.integers(1, 30, int(free.sum()))
        finishing[free] = rng.random(int(free.sum())) < 0.7
        counters = _counters(rng)
        state = [busy, row, params, *window]
        model = [a.copy() for a in state]
        want = _close_step_model(counters, model[0], model[1], rows, finishing, model[2], model[3:])
        got = close_step(counters, busy, row, rows, finishing, params, *window, PERIOD, LAG, Q, X, CAPACITY * Q,
                         CAPACITY * X, TF, PACKED)
        _same(got, want)
        _same(state, model)
        assert got[3] <= PACKED
        early += got[6]
        seen.update(got[8].tolist())
        keepers = got[2]
        window[4][keepers] = rng.integers(0, 2 * Q, (keepers.size, 2))  # the device's report of each kept pool
    assert seen == {SEARCHED, LOST, NEGATIVE_CYCLE} and early > 0
