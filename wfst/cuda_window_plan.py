"""The host's plan of the CUDA backend's lattice windows, one numba call per
step (see :mod:`wfst.cuda_backend`): each lane's new frame joins its window,
the lanes that flush are chosen, whether each keeps what it prunes on the
device or sends it, and the frames each keeps back, within the packed buffer
that takes a step's sends (lanes send their pools early where it must). The rules
(:func:`flushes`, :func:`frames_kept_back`, :func:`flush_kind`) are shared
with the benchmarks that replay the backend's windows (``bench.lattice_host``).

A step's plan was a few dozen numpy calls, about 1 ms per step at 512 lanes on
the development VM, while the GPU waits for the step's last kernels; one call
over the lanes costs a few microseconds.
"""

from __future__ import annotations

import numba
import numpy as np

from .cpu_search import ZERO
from .cuda_layout import (FLUSH_FINAL, FLUSH_KEEP, FLUSH_NONE, FLUSH_SEND, P_CHANNEL, P_FLUSH, P_KEPT, P_LAG,
                          P_WIN_FRAME, P_WIN_LINK, P_WIN_TOK, WINDOW_HEADER)


@numba.njit(cache=True)
def flushes(frames, tokens, links, row, lane, period, W, Q, X, capacity):
    """Whether a lane flushes its lattice window once it holds ``frames`` frames,
    ``tokens`` tokens and ``links`` links, the newest being row ``row`` of its job
    (-1: the start frame): every ``period`` rows, staggered by ``lane`` (so that
    the lanes' flushes spread over the steps), when its window holds ``W``
    frames (besides those kept by earlier flushes), and when the pool of ``capacity`` worst-case frames (``Q``
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
def flush_kind(ended, finishing, due, kept_frames, keeps, tokens, links, W, table_frames, Q, X, pool_tokens,
               pool_links):
    """What a lane's flush does (``FLUSH_*`` of :mod:`wfst.cuda_layout`): at its
    job's end it sends everything, pruned with the final costs when
    ``finishing`` (the job ends its utterance and final costs count); else, when
    a flush is ``due``, it keeps the ``keeps`` frames it prunes in the pool
    after the ``kept_frames`` that earlier flushes kept, if the pool of
    ``pool_tokens`` tokens and ``pool_links`` links, which holds ``tokens`` and
    ``links``, would take a worst-case frame (``Q`` tokens, ``X`` links) even if
    nothing were pruned, and its table of ``table_frames`` frames a window of
    ``W``; if not, it sends them all (the host's next plan knows what a keeping
    flush left only then, and a frame must fit)."""
    if ended:
        return FLUSH_FINAL if finishing else FLUSH_SEND
    if not due:
        return FLUSH_NONE
    if kept_frames + keeps + W <= table_frames and tokens + Q <= pool_tokens and links + X <= pool_links:
        return FLUSH_KEEP
    return FLUSH_SEND


@numba.njit(cache=True)
def sent_words(frames, tokens, links):
    """Packed words that ``frames`` frames of ``tokens`` tokens and ``links``
    links in all take in a step's sends: each frame's counts (3), each token's
    row (3) and each link's (5)."""
    return 3 * frames + 3 * tokens + 5 * links


@numba.njit(cache=True)
def plan_windows(params, good, ended, finishing, row, sizes, window_frames, window_sizes, window_starts, kept_frames,
                 kept_sizes, period, most, Q, X, pool_tokens, pool_links, table_frames, packed_words):
    """Store this step's good frames (``sizes`` (lanes, 2): tokens and links of
    each lane's) in their lanes' pools (after ``kept_frames`` (lanes,) frames
    of ``kept_sizes`` (lanes, 2) tokens and links that earlier flushes kept,
    ``window_frames`` (lanes,) frames held since, ``window_sizes`` (lanes, W,
    2) their sizes, 0 beyond, ``window_starts`` (lanes,) whether the pool
    begins with its utterance's start frame; all updated), and choose the lanes
    that flush (:func:`flushes`, or the job's end) and what each does
    (:func:`flush_kind`; ``finishing`` (lanes,): the job ends its utterance and
    final costs count) and the frames each keeps back (none at the job's end,
    else :func:`frames_kept_back`). Sets the window slots of ``params``. A
    keeping lane's kept sizes are unknown (-1) until the device reports them
    (the caller sets them before the next plan).

    The step's sends must fit the ``packed_words`` of the packed buffer, and so
    must the next step's, whatever its frames: the words the pools hold after
    this step's flushes (kept frames counted as stored, before the device
    prunes them), and a worst-case frame and a keeping lane's report for every
    lane, must fit. Where they would not, the lanes that would hold most send
    all they hold now (early sends). Then any step fits
    as long as ``packed_words`` has room for the header and a worst-case frame
    per lane (:data:`wfst.budget.WINDOW_SEND_CAPACITY` frames per lane give it
    more; ValueError if not even that). Returns the sent frames' channels and
    start flags (int64, bool; in packed order), the keeping lanes (int64, in
    order: their reports' order), the words to copy back (a bound: what the
    device's pruning leaves is not known yet; 0: no flush), the flushing
    lanes, the frames kept back and the lanes sent early."""
    lanes, W = window_sizes.shape[0], window_sizes.shape[1]
    capacity = pool_tokens // Q
    reserve = 2 + sent_words(np.int64(1), Q, X)  # what a lane can add to the next step's sends
    # (constants as np.int64 or ZERO: see wfst.cpu_search.ZERO)
    held_after = np.zeros(lanes, np.int64)  # sent words of what each lane holds after this step
    for lane in range(lanes):
        frames = window_frames[lane]
        kept = kept_frames[lane]
        held_tokens, held_links = kept_sizes[lane, 0], kept_sizes[lane, 1]
        if held_tokens < 0 or held_links < 0:
            raise ValueError("a keeping lane's pool size was not reported before the next plan")
        for k in range(W):
            held_tokens += window_sizes[lane, k, 0]
            held_links += window_sizes[lane, k, 1]
        params[lane, P_WIN_FRAME] = kept + frames if good[lane] else -1
        params[lane, P_WIN_TOK] = held_tokens
        params[lane, P_WIN_LINK] = held_links
        params[lane, P_FLUSH] = FLUSH_NONE
        params[lane, P_LAG] = 0
        params[lane, P_KEPT] = kept
        if not good[lane]:
            if not ended[lane]:  # (a lane without a job holds nothing; one whose job ended is emptied)
                held_after[lane] = sent_words(kept + frames, held_tokens, held_links)
            continue
        if kept == 0 and frames == 0:
            window_starts[lane] = row[lane] < 0
        window_sizes[lane, frames, 0] = sizes[lane, 0]
        window_sizes[lane, frames, 1] = sizes[lane, 1]
        frames += 1
        window_frames[lane] = frames
        held_tokens += sizes[lane, 0]
        held_links += sizes[lane, 1]
        due = flushes(frames, held_tokens, held_links, row[lane], lane, period, W, Q, X, capacity)
        kind, lag = FLUSH_NONE, 0
        if ended[lane] or due:
            lag = 0 if ended[lane] else frames_kept_back(window_sizes[lane], frames, most, pool_tokens, pool_links)
            kind = flush_kind(ended[lane], finishing[lane], due, kept, frames - lag, held_tokens, held_links, W,
                              table_frames, Q, X, pool_tokens, pool_links)
            params[lane, P_FLUSH] = kind
            params[lane, P_LAG] = lag
        if kind == FLUSH_NONE or kind == FLUSH_KEEP:
            held_after[lane] = sent_words(kept + frames, held_tokens, held_links)
        elif not ended[lane]:  # the frames kept back
            back = window_sizes[lane, frames - lag:frames]
            held_after[lane] = sent_words(np.int64(lag), back[:, 0].sum(), back[:, 1].sum())
    early = 0
    need = WINDOW_HEADER + held_after.sum() + lanes * reserve
    if need > packed_words:
        for lane in np.argsort(-held_after, kind="mergesort"):  # most first; ties: the lower lane
            if need <= packed_words or held_after[lane] == 0:
                break
            if not good[lane] or ended[lane]:
                continue
            params[lane, P_FLUSH] = FLUSH_SEND
            params[lane, P_LAG] = 0
            need -= held_after[lane]
            held_after[lane] = 0
            early += 1
        if need > packed_words:
            raise ValueError("the packed buffer does not hold a worst-case frame per lane")
    entries, tokens, links, flushing, held_back = ZERO, ZERO, ZERO, ZERO, ZERO
    for lane in range(lanes):
        kind = params[lane, P_FLUSH]
        if kind == FLUSH_NONE:
            continue
        lag = params[lane, P_LAG]
        flushing += 1
        held_back += lag
        if kind == FLUSH_KEEP:
            continue
        moved = window_frames[lane] - lag
        entries += kept_frames[lane] + moved
        tokens += kept_sizes[lane, 0]
        links += kept_sizes[lane, 1]
        for k in range(moved):
            tokens += window_sizes[lane, k, 0]
            links += window_sizes[lane, k, 1]
    channels = np.empty(entries, np.int64)
    starts = np.zeros(entries, np.bool_)
    e = 0
    for lane in range(lanes):
        kind = params[lane, P_FLUSH]
        if kind == FLUSH_NONE:
            continue
        lag = params[lane, P_LAG]
        moved = window_frames[lane] - lag
        if kind == FLUSH_KEEP:
            kept_frames[lane] += moved
            kept_sizes[lane] = -1
        else:
            n = kept_frames[lane] + moved
            channels[e:e + n] = params[lane, P_CHANNEL]
            starts[e] = window_starts[lane]  # a pool's first frame is always sent
            e += n
            window_starts[lane] = False
            kept_frames[lane] = 0
            kept_sizes[lane] = 0
        for k in range(W):  # the frames held back move to the front of the window
            for j in range(2):
                window_sizes[lane, k, j] = window_sizes[lane, moved + k, j] if k < lag else 0
        window_frames[lane] = lag
    keepers = np.flatnonzero(params[:, P_FLUSH] == FLUSH_KEEP).astype(np.int64)
    words = WINDOW_HEADER + 2 * keepers.size + sent_words(entries, tokens, links) if entries or keepers.size else 0
    return channels, starts, keepers, words, flushing, held_back, early
