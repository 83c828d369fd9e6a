"""The step loop's per-lane bookkeeping on the host (:mod:`wfst.cuda_lane_group`):
one numba call over a lane group's state arrays for each part of a step that
reads or writes every lane: this step's lane parameters, the lanes whose
search overflowed, and the outcome of a searched step (which lanes' jobs
ended and how, the window plan of :func:`wfst.cuda_window_plan.plan_windows`,
the lanes' next rows). Each was a dozen or more numpy calls of a few
microseconds each, paid on the calling thread at every step while the GPU
waited. The calls keep the GIL: they are short, and releasing it would let a
lattice worker take it, which the step loop would then wait to get back.
"""

from __future__ import annotations

import numba
import numpy as np

from .cuda_layout import (C_EXPANDED, C_NLINK, C_NTOK, C_OVERFLOW, C_STATUS, MODE_EMIT, MODE_IDLE, MODE_START,
                          P_MODE, P_ROW, P_TIGHTEN, STATUS_NEGATIVE_CYCLE, TIGHTEN_LAST)
from .cuda_window_plan import plan_windows

SEARCHED, LOST, NEGATIVE_CYCLE = 0, 1, 2
"""How a lane's job ended (:func:`close_step`): its frames searched, given up
after its queues overflowed even at the tightest beam, or stopped by a
negative-cost epsilon cycle."""


@numba.njit(cache=True)
def set_lane_params(params, busy, row, on_host, chunk_rows):
    """This step's mode of each lane in ``params`` (idle, the start frame where
    ``row`` is -1, else a score row), the score row it reads (within the chunk
    of ``chunk_rows`` rows staged for it where its scores are in host memory,
    ``on_host``) and no tightening; returns the busy lanes whose next chunk of
    host scores is to be staged now (int64, ascending)."""
    stage = np.empty(busy.shape[0], np.int64)
    n = 0
    for lane in range(busy.shape[0]):
        r = row[lane]
        params[lane, P_MODE] = MODE_IDLE if not busy[lane] else MODE_START if r < 0 else MODE_EMIT
        params[lane, P_TIGHTEN] = 0
        params[lane, P_ROW] = r % chunk_rows if on_host[lane] else r
        if busy[lane] and on_host[lane] and r >= 0 and r % chunk_rows == 0:
            stage[n] = lane
            n += 1
    return stage[:n]


@numba.njit(cache=True)
def overflowing(counters, params, tighten, Q, X):
    """The lanes this step searched (``params``' start or score-row mode) whose
    queues overflowed (a flag in their ``counters``, or more than ``Q`` tokens
    or ``X`` links) and that may be searched again with a tighter beam
    (``tighten`` at most TIGHTEN_LAST): (how many, bool (lanes,))."""
    bad = np.zeros(params.shape[0], np.bool_)
    count = 0
    for lane in range(params.shape[0]):
        mode = params[lane, P_MODE]
        c = counters[lane]
        if ((mode == MODE_START or mode == MODE_EMIT) and tighten[lane] <= TIGHTEN_LAST
                and (c[C_OVERFLOW] != 0 or c[C_NTOK] > Q or c[C_NLINK] > X)):
            bad[lane] = True
            count += 1
    return count, bad


@numba.njit(cache=True)
def close_step(counters, busy, row, rows, finishing, params, window_frames, window_sizes, window_starts,
               kept_frames, kept_sizes, period, most, Q, X, pool_tokens, pool_links, table_frames, packed_words):
    """The outcome of a searched step of the ``busy`` lanes, from their
    ``counters`` (after the retries of overflowed lanes): a lane's job ends
    when this was its last row (``row`` + 1 of ``rows``), when the search met a
    negative-cost epsilon cycle, or when its queues still overflowed (lost);
    plans the lattice windows of the lanes whose frame is good
    (:func:`wfst.cuda_window_plan.plan_windows`, which sets ``params``' window
    slots; ``finishing``, ``window_*``, ``kept_*``, the sizes and the packed
    buffer's ``packed_words`` as it takes them), then moves every busy lane to its next row and frees the lanes
    whose job ended (their windows emptied). Returns plan_windows' outputs
    (channels, starts, keepers, words, flushing, held_back, early), the lanes whose
    job ended (int64, ascending) and how (:data:`SEARCHED`, :data:`LOST`,
    :data:`NEGATIVE_CYCLE`; int64), the tokens expanded and the emitting frames
    searched."""
    lanes = busy.shape[0]
    good = np.zeros(lanes, np.bool_)
    ended = np.zeros(lanes, np.bool_)
    how = np.zeros(lanes, np.int64)
    sizes = np.empty((lanes, 2), np.int64)
    expanded, frames = 0, 0
    for lane in range(lanes):
        c = counters[lane]
        sizes[lane, 0] = min(c[C_NTOK], Q)
        sizes[lane, 1] = min(c[C_NLINK], X)
        if not busy[lane]:
            continue
        cycle = c[C_STATUS] == STATUS_NEGATIVE_CYCLE
        lost = not cycle and (c[C_OVERFLOW] != 0 or c[C_NTOK] > Q or c[C_NLINK] > X)
        ended[lane] = row[lane] + 1 >= rows[lane] or cycle or lost
        good[lane] = not (cycle or lost)
        how[lane] = NEGATIVE_CYCLE if cycle else LOST if lost else SEARCHED
        expanded += c[C_EXPANDED]
        frames += row[lane] >= 0
    channels, starts, keepers, words, flushing, held_back, early = plan_windows(
        params, good, ended, finishing, row, sizes, window_frames, window_sizes, window_starts, kept_frames,
        kept_sizes, period, most, Q, X, pool_tokens, pool_links, table_frames, packed_words)
    for lane in range(lanes):
        if busy[lane]:
            row[lane] += 1
        if ended[lane]:
            busy[lane] = False
            window_frames[lane] = 0
            window_sizes[lane] = 0
            kept_frames[lane] = 0
            kept_sizes[lane] = 0
    done = np.flatnonzero(ended)
    return channels, starts, keepers, words, flushing, held_back, early, done, how[done], expanded, frames
