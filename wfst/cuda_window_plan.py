"""The host's plan of the CUDA backend's lattice windows, one numba call per
step (see :mod:`wfst.cuda_backend`): each lane's new frame joins its window,
the lanes that flush are chosen, and the frames each flush keeps back and
sends. The rules (:func:`flushes`, :func:`frames_kept_back`) are shared with
the benchmarks that replay the backend's windows (``bench.lattice_host``).

A step's plan was a few dozen numpy calls, about 1 ms per step at 512 lanes on
the development VM, while the GPU waits for the step's last kernels; one call
over the lanes costs a few microseconds.
"""

from __future__ import annotations

import numba
import numpy as np

from .cuda_layout import P_CHANNEL, P_FLUSH, P_LAG, P_WIN_FRAME, P_WIN_LINK, P_WIN_TOK, WINDOW_HEADER


@numba.njit(cache=True)
def flushes(frames, tokens, links, row, lane, period, W, Q, X, capacity):
    """Whether a lane flushes its lattice window once it holds ``frames`` frames,
    ``tokens`` tokens and ``links`` links, the newest being row ``row`` of its job
    (-1: the start frame): every ``period`` rows, staggered by ``lane`` (so that
    the lanes' flushes spread over the steps), when its frame table of ``W``
    frames is full, and when the pool of ``capacity`` worst-case frames (``Q``
    tokens, ``X`` links) could not take one more; the job's end flushes too (the
    caller's part)."""
    return (frames >= W or (row + lane) % period == period - 1 or tokens + Q > capacity * Q
            or links + X > capacity * X)


@numba.njit(cache=True)
def frames_kept_back(sizes, frames, most, pool_tokens, pool_links):
    """Frames a flushing window keeps back for its next flush (pruned then
    against a newer frame, so fewer of their tokens reach the host): the most,
    up to ``most``, that leaves at least one frame to send and holds at most
    half the pool's ``pool_tokens`` tokens and ``pool_links`` links (so the pool
    keeps room for new frames). ``sizes`` int (at least ``frames``, 2): tokens
    and links of each frame held, oldest first."""
    kept = 0
    tokens, links = 0, 0
    for k in range(1, most + 1):
        if frames - k < 1:  # the oldest frame is always sent
            break
        tokens += sizes[frames - k, 0]
        links += sizes[frames - k, 1]
        if tokens > pool_tokens // 2 or links > pool_links // 2:
            break
        kept = k
    return kept


@numba.njit(cache=True)
def plan_windows(params, good, ended, row, sizes, window_frames, window_sizes, window_starts, period, most, Q, X,
                 pool_tokens, pool_links):
    """Store this step's good frames (``sizes`` (lanes, 2): tokens and links of
    each lane's) in their lanes' windows (``window_frames`` (lanes,) frames
    held, ``window_sizes`` (lanes, W, 2) their sizes, 0 beyond,
    ``window_starts`` (lanes,) whether the window begins with its utterance's
    start frame; all updated), and choose the lanes that flush (the job's
    end, or :func:`flushes`) and the frames each keeps back (none at the job's
    end, else :func:`frames_kept_back`). Sets the window slots of ``params``.
    Returns the sent frames' channels and start flags (int64, bool; in packed
    order), the words to copy back (a bound: what the device's pruning leaves
    is not known yet; 0: no flush), the flushing lanes and the frames kept back."""
    lanes, W = window_sizes.shape[0], window_sizes.shape[1]
    capacity = pool_tokens // Q
    sent = np.zeros(lanes, np.int64)
    entries, tokens, links, flushing, held_back = 0, 0, 0, 0, 0
    for lane in range(lanes):
        frames = window_frames[lane]
        held_tokens, held_links = 0, 0
        for k in range(W):
            held_tokens += window_sizes[lane, k, 0]
            held_links += window_sizes[lane, k, 1]
        params[lane, P_WIN_FRAME] = frames if good[lane] else -1
        params[lane, P_WIN_TOK] = held_tokens
        params[lane, P_WIN_LINK] = held_links
        params[lane, P_FLUSH] = 0
        params[lane, P_LAG] = 0
        if not good[lane]:
            continue
        if frames == 0:
            window_starts[lane] = row[lane] < 0
        window_sizes[lane, frames, 0] = sizes[lane, 0]
        window_sizes[lane, frames, 1] = sizes[lane, 1]
        frames += 1
        window_frames[lane] = frames
        held_tokens += sizes[lane, 0]
        held_links += sizes[lane, 1]
        if not (ended[lane] or flushes(frames, held_tokens, held_links, row[lane], lane, period, W, Q, X,
                                       capacity)):
            continue
        lag = 0 if ended[lane] else frames_kept_back(window_sizes[lane], frames, most, pool_tokens, pool_links)
        params[lane, P_FLUSH] = 1
        params[lane, P_LAG] = lag
        flushing += 1
        held_back += lag
        sent[lane] = frames - lag
        entries += frames - lag
        for k in range(frames - lag):
            tokens += window_sizes[lane, k, 0]
            links += window_sizes[lane, k, 1]
    channels = np.empty(entries, np.int64)
    starts = np.zeros(entries, np.bool_)
    e = 0
    for lane in range(lanes):
        n = sent[lane]
        if n == 0:
            continue
        channels[e:e + n] = params[lane, P_CHANNEL]
        starts[e] = window_starts[lane]  # a window's first frame is always sent
        e += n
        lag = window_frames[lane] - n
        for k in range(W):  # the kept frames move to the front
            for j in range(2):
                window_sizes[lane, k, j] = window_sizes[lane, n + k, j] if k < lag else 0
        window_frames[lane] = lag
        window_starts[lane] = False
    words = WINDOW_HEADER + 3 * entries + 3 * tokens + 5 * links if entries else 0
    return channels, starts, words, flushing, held_back
