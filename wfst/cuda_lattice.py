"""Host assembly of the CUDA backend's lattice segments, with the CPU backend's
own arrays and pruning: each frame copied back from the device is appended to
its channel's :class:`wfst.cpu_search.SearchArrays` in a :class:`LatticeStore`
(frame-local token and link indices made global; all frames of a step in one
numba call per partition of the channels, each partition on its own worker
thread, while the caller goes on), interim lattice pruning runs every
``prune_every`` frames and the final pruning at the end, both with
:mod:`wfst.cpu_lattice_prune`'s numba code, so both backends' lattices follow
one implementation.

The steps arrive in the store's inbox (the backend's pinned buffer, which the
device's copies write): :meth:`LatticeStore.reserve` hands out a region no
queued step still reads (the inbox is a ring, its regions freed in order as
their steps are done), the caller fills it and queues it with
:meth:`LatticeStore.append`, and the workers read it there: no step is copied
on the host.

A step's packed frames (the windows the device flushed, pruned: see
``cuda_kernels/lattice_window.cu``): for ``T`` tokens and ``K`` links in all,
int32 ``tok_state[T] tok_cost[T] tok_best[T] link_src[K] link_dst[K]
link_arc[K] link_ac[K] link_excess[K]`` (floats as bits; the excess as
:class:`wfst.cpu_search.SearchArrays` defines it), each frame's part at its
offsets; a channel's frames come in order. Emitting links (the first ``ne`` of
a frame's) have sources in the previous frame, epsilon links in the same
frame; ``tok_best`` is a frame-local link index (-1: none).
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future, wait

import numba
import numpy as np
from numba.typed import List

from lattice.errors import LatticeError

from . import cpu_search
from .config import DecoderConfig
from .cpu_backend import finish_arrays, result_of
from .cpu_lattice_prune import FRAME, NUM_LINKS, NUM_TOKENS, prune_lattice
from .decoding_graph import DecodingGraph
from .errors import GraphError
from .result import Result


@numba.njit(cache=True, nogil=True)
def _frame_in_range(words, T, K, to, n, lo, nl, ne, start, prev_n):
    """Whether every index of a packed frame (see :func:`append_frames`) is in
    range: best links among its ``nl`` links, emitting sources among the
    previous frame's ``prev_n`` tokens, epsilon sources and all destinations
    among its ``n``."""
    bad = ne > nl or (start and ne > 0)
    for i in range(n):
        bad |= words[2 * T + to + i] >= nl
    base = 3 * T
    for j in range(ne):
        s = words[base + lo + j]
        bad |= s < 0 or s >= prev_n
    for j in range(ne, nl):
        s = words[base + lo + j]
        bad |= s < 0 or s >= n
    for j in range(nl):
        d = words[base + K + lo + j]
        bad |= d < 0 or d >= n
    return not bad


@numba.njit(cache=True, nogil=True)
def append_frames(sa, words, floats, T, K, to, n, lo, nl, ne, start, first, end, lattice_beam, prune_interval):
    """Append entries ``first .. end - 1`` of a step (one channel's frames, in
    order; entry ``k``: ``n[k]`` tokens at ``to[k]``, ``nl[k]`` links at
    ``lo[k]``, the first ``ne[k]`` emitting, ``start[k]``: the utterance's
    first frame) from a packed buffer (``words`` int32, ``floats`` the same
    memory as float32) to the search arrays ``sa``; returns the new arrays and
    whether every frame was good. The arrays grow once for the whole run (per
    frame, growing and rebuilding the arrays' tuple cost more than copying a
    pruned frame). A frame with an index out of range is not appended, nor
    anything after it (device data gone wrong must not become an out-of-bounds
    access later); the frames before it stay."""
    counters = sa[14]
    tokens, links = 0, 0
    for k in range(first, end):
        tokens += n[k]
        links += nl[k]
    base_f = 0 if start[first] else counters[FRAME] + 1  # (a start resets the counts: the sums still bound them)
    nt0 = 0 if start[first] else counters[NUM_TOKENS]
    nl0 = 0 if start[first] else counters[NUM_LINKS]
    toks = (cpu_search._grown(sa[0], nt0 + tokens), cpu_search._grown(sa[1], nt0 + tokens),
            cpu_search._grown(sa[2], nt0 + tokens), cpu_search._grown(sa[3], nt0 + tokens))
    lks = (cpu_search._grown(sa[4], nl0 + links), cpu_search._grown(sa[5], nl0 + links),
           cpu_search._grown(sa[6], nl0 + links), cpu_search._grown(sa[7], nl0 + links),
           cpu_search._grown(sa[8], nl0 + links))
    frames = base_f + (end - first) + 2
    tok_start = cpu_search._grown(sa[9], frames)
    link_start = cpu_search._grown(sa[10], frames)
    link_eps_start = cpu_search._grown(sa[11], frames)
    tok_state, tok_cost, tok_extra, tok_best = toks
    link_src, link_dst, link_arc, link_ac, link_excess = lks
    good = True
    for k in range(first, end):
        if start[k]:  # the arrays may be an earlier utterance's: counters reset below
            f, nt, nlk, prev_n = 0, 0, 0, 0
        else:
            f = counters[FRAME] + 1
            nt = counters[NUM_TOKENS]
            nlk = counters[NUM_LINKS]
            prev_n = nt - tok_start[f - 1]
        if not _frame_in_range(words, T, K, to[k], n[k], lo[k], nl[k], ne[k], start[k], prev_n):
            good = False
            break
        t0, m, l0, ml, me = to[k], n[k], lo[k], nl[k], ne[k]
        for i in range(m):
            tok_state[nt + i] = words[t0 + i]
            tok_cost[nt + i] = floats[T + t0 + i]
            tok_extra[nt + i] = 0.0
            b = words[2 * T + t0 + i]
            tok_best[nt + i] = nlk + b if b >= 0 else -1
        base = 3 * T
        prev_first = nt - prev_n
        for j in range(me):  # sources in the previous frame
            link_src[nlk + j] = prev_first + words[base + l0 + j]
        for j in range(me, ml):  # epsilon links: sources in this frame
            link_src[nlk + j] = nt + words[base + l0 + j]
        for j in range(ml):
            link_dst[nlk + j] = nt + words[base + K + l0 + j]
            link_arc[nlk + j] = words[base + 2 * K + l0 + j]
            link_ac[nlk + j] = floats[base + 3 * K + l0 + j]
            link_excess[nlk + j] = floats[base + 4 * K + l0 + j]
        tok_start[f] = nt
        tok_start[f + 1] = nt + m
        link_start[f] = nlk
        link_start[f + 1] = nlk + ml
        link_eps_start[f] = nlk + me
        if start[k]:
            counters[:] = 0
        counters[FRAME] = f
        counters[NUM_TOKENS] = nt + m
        counters[NUM_LINKS] = nlk + ml
        if not start[k] and f % prune_interval == 0:  # (compacts in place: the arrays stay large enough)
            prune_lattice(toks, lks, tok_start, link_start, link_eps_start, counters, lattice_beam,
                          cpu_search.PRUNE_SCALE * lattice_beam, np.zeros(nt + m - tok_start[f], np.float32),
                          np.bool_(False))
    return (tok_state, tok_cost, tok_extra, tok_best, link_src, link_dst, link_arc, link_ac, link_excess, tok_start,
            link_start, link_eps_start, sa[12], sa[13], counters), good


@numba.njit(cache=True, nogil=True)
def append_step(store, part, part_of, index_of, channels, words, floats, T, K, to, n, lo, nl, ne, start,
                lattice_beam, prune_interval):
    """Append the frames of one step's entries whose channel is in partition
    ``part`` (channel ``c`` is entry ``index_of[c]`` of partition ``part_of[c]``:
    see :func:`partition_channels`; ``store`` holds that partition's arrays):
    entry ``e`` to the arrays of channel ``channels[e]``. One call per partition
    and step, no Python work per lane; a channel's consecutive entries (a
    flushed window's frames) are appended to its arrays taken from ``store``
    once. LatticeError at the first frame with an index out of range (the
    frames before it appended)."""
    e = cpu_search.ZERO
    while e < channels.shape[0]:
        c = channels[e]
        end = e + 1
        while end < channels.shape[0] and channels[end] == c:
            end += 1
        if part_of[c] == part:
            i = index_of[c]
            arrays, good = append_frames(store[i], words, floats, T, K, to, n, lo, nl, ne, start, e, end,
                                         lattice_beam, prune_interval)
            store[i] = arrays
            if not good:
                raise LatticeError("lattice segments from the device: a token or link index out of range")
        e = end


def partition_channels(channels: int, parts: int, stagger: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The partition (of ``parts``) of each of ``channels`` channels and its
    index there (int64 arrays): channel ``c`` goes to ``(c % stagger + c //
    stagger) % parts``. Channels ``stagger`` apart and consecutive channels
    both fall on different partitions: the CUDA backend's lanes flush their
    lattice windows in turn, every ``stagger`` rows, so the lanes that flush at
    one step are ``stagger`` apart, and so are their channels in a batch; a
    step's appends then spread over the workers, where with plain ``c %
    parts`` they would all go to one whenever ``parts`` divides ``stagger``.
    (Since the lanes keep their pools on the device, most sends come at jobs'
    ends, which the stagger does not predict: the dealing matters when pools
    fill and send in turn.)"""
    c = np.arange(channels, dtype=np.int64)
    part_of = (c % stagger + c // stagger) % parts
    index_of = np.empty(channels, np.int64)
    for k in range(parts):
        mine = part_of == k
        index_of[mine] = np.arange(int(mine.sum()))
    return part_of, index_of


EMPTY_TOKENS = 64
QUEUED_STEPS = 8
"""Steps whose frames may wait for the lattice workers at once; beyond, the next
:meth:`LatticeStore.append` waits for the oldest (so the host keeps pace with
the device)."""
DEFAULT_INBOX_WORDS = 1 << 22
"""The inbox's int32 words when the caller gives none (16 MiB, touched as used)."""


def ring_offset(in_use: tuple[int, int] | None, words: int, capacity: int) -> int | None:
    """Where a region of ``words`` fits in a ring buffer of ``capacity`` words
    whose regions in use, handed out and freed in order, run from the oldest's
    start to the newest's end ``in_use`` (wrapping round the end; None: no
    region in use); None: it does not fit until the oldest is freed."""
    if in_use is None:
        return 0 if words <= capacity else None
    oldest, head = in_use
    if head > oldest:  # in use: [oldest, head)
        if head + words <= capacity:
            return head
        return 0 if words <= oldest else None
    return head if head + words <= oldest else None  # in use: [oldest, capacity) and [0, head)


@numba.njit(cache=True, nogil=True)
def _empty_arrays() -> tuple:
    """A channel's arrays before its utterance: small, grown as frames arrive
    (the hash table and scratch rows are not used here)."""
    i64 = np.int64  # (not literals: see cpu_search.ZERO)
    return cpu_search.new_search_arrays(i64(8), i64(EMPTY_TOKENS), i64(256), i64(2), i64(2))


@numba.njit(cache=True, nogil=True)
def finish_channel(store, i, spares, most_spares, final, ilabel, olabel, weight, use_final_probs, lattice_beam):
    """:func:`wfst.cpu_backend.finish_arrays` of the arrays of entry ``i`` of
    a partition's ``store``, which takes the oldest of the partition's
    ``spares`` (or small empty arrays) for its next utterance; the finished
    arrays become a spare while there are fewer than ``most_spares``. One
    call: its lattice worker holds the GIL only to pass the arguments and the
    outcome."""
    arrays = store[i]
    store[i] = spares.pop(0) if len(spares) > 0 else _empty_arrays()  # the oldest
    outcome = finish_arrays(arrays, final, ilabel, olabel, weight, use_final_probs, lattice_beam)
    if len(spares) < most_spares:
        spares.append(arrays)
    return outcome


class LatticeWorker:
    """A lattice worker thread: runs the calls queued to it in order. An
    append's outcome (None, or the exception it raised) goes to ``done``, in
    order; a finish's to the Future it returns. Lighter than a one-thread
    executor (no Future and no lock per append: on the development VM, about
    18 against 45 us of CPU time per hand-off), since every step hands work to
    every busy partition's worker."""

    def __init__(self, name: str):
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=_serve, args=(self.calls, self.done), name=name, daemon=True)
        self.thread.start()

    def append(self, call, *args) -> None:
        self.calls.put((call, args, None))

    def finish(self, call, *args) -> Future:
        future: Future = Future()
        self.calls.put((call, args, future))
        return future

    @staticmethod
    def stop_all(workers: list[LatticeWorker]) -> None:
        """Let the workers' threads end once their queued calls are done."""
        for worker in workers:
            worker.calls.put(None)


def _serve(calls: queue.SimpleQueue, done: queue.SimpleQueue) -> None:
    """A :class:`LatticeWorker`'s thread. It holds no reference to the worker or
    its store between calls, so they can be collected, which stops it."""
    while (item := calls.get()) is not None:
        _run_call(*item, done)
        del item


def _run_call(call, args, future: Future | None, done: queue.SimpleQueue) -> None:
    try:
        outcome = call(*args)
    except BaseException as error:  # the caller's to raise
        if future is None:
            done.put(error)
        else:
            future.set_exception(error)
        return
    if future is None:
        done.put(None)
    else:
        future.set_result(outcome)


class LatticeStore:
    """The lattices so far of the utterances in the decoder's channels, on the
    host: channel ``c`` holds the search arrays (:class:`wfst.cpu_search.SearchArrays`)
    of the utterance or stream searched on it.

    ``threads``: the channels are split into that many partitions (numba typed
    lists), each served in order by its own worker thread, which appends its
    channels' frames and finishes their utterances while the caller goes on
    (numba releases the GIL): the host's lattice work grows with the tokens per
    frame like the search, so it needs several cores to keep up with a GPU.
    :meth:`append` and :meth:`finish_later` queue work; the other methods first
    wait for everything queued. Arrays of finished utterances are reused by the
    next ones of their partition (regrowing them from small costs page faults
    and copies every utterance). ``prune_every``: frames between interim
    prunings (default the config's ``prune_interval``); the final lattices do
    not depend on it, only the memory held until the end. ``inbox``: the int32
    buffer the steps arrive in (the backend's pinned one; default :data:`DEFAULT_INBOX_WORDS`
    words); a step must fit in it. ``stagger``: channels this many apart tend
    to send their frames at the same step (the backend's window period: its
    lanes flush in turn), so the partitions spread them
    (:func:`partition_channels`)."""

    def __init__(self, graph: DecodingGraph, config: DecoderConfig, channels: int, threads: int = 1,
                 prune_every: int | None = None, inbox: np.ndarray | None = None, stagger: int = 1):
        self.graph = graph
        self.config = config
        self.prune_every = prune_every or config.prune_interval
        parts = max(1, min(threads, channels))
        self.part_of, self._index_of = partition_channels(channels, parts, stagger)  # each channel's worker, read-only
        self._sizes = [int(np.sum(self.part_of == k)) for k in range(parts)]  # channels per partition
        self._parts = [List([_empty_arrays() for _ in range(n)]) for n in self._sizes]
        # arrays of finished utterances, for reuse, per partition (its worker's alone while it runs)
        self._spares = [List.empty_list(numba.typeof(self._parts[0][0])) for _ in self._sizes]
        self._workers = [LatticeWorker(f"wfst-lattice-{k}") for k in range(parts)]
        self._stop_workers = weakref.finalize(self, LatticeWorker.stop_all, self._workers)
        self.inbox = np.empty(DEFAULT_INBOX_WORDS, np.int32) if inbox is None else inbox
        self._steps: deque = deque()  # per queued step: [partitions not yet done, first error, inbox region, ring]
        self._rings = [(0, self.inbox.size)]  # see use_rings
        self._reserved: dict[int, tuple[int, int]] = {}  # ring: the region reserved for its next append
        self._finishing: deque[Future] = deque()  # finish_later's, oldest first, from the first not known done
        self.wait_seconds = 0.0  # the caller's time blocked on the workers, in all

    def close(self) -> None:
        """Let the worker threads end (their queued calls done first); nothing
        may be queued afterwards (it would wait forever)."""
        self._stop_workers()

    def use_rings(self, bounds: list[tuple[int, int]]) -> None:
        """Split the inbox into rings, words ``[start, end)`` each, one per
        producer that reserves and appends in turn (the CUDA backend's lane
        groups); waits for the queued steps first. One ring, the whole inbox,
        until this is called."""
        bounds = [(int(a), int(b)) for a, b in bounds]
        if bounds == self._rings:
            return
        if not bounds or any(not 0 <= a < b <= self.inbox.size for a, b in bounds):
            raise ValueError(f"inbox rings {bounds} do not lie in the inbox of {self.inbox.size} words")
        self.wait()
        self._rings, self._reserved = bounds, {}

    def reserve(self, words: int, ring: int = 0) -> np.ndarray:
        """A region of ``words`` int32 words of inbox ring ``ring`` for its next
        step, which no queued step reads (waits for the oldest steps when the
        ring is full); the step's packed frames go there, then to :meth:`append`.
        A later reserve of the ring replaces a region not appended (and may hand
        it out again: a caller whose copy into it may still be running must wait
        for the copy first, as the backend's ``run`` synchronizes the device)."""
        first, end = self._rings[ring]
        held = max(words, 1)  # (regions in use are never empty)
        if words < 0 or held > end - first:
            raise ValueError(f"a step of {words} words does not fit the lattice inbox of {end - first}")
        while True:
            mine = [step[2] for step in self._steps if step[3] == ring]
            in_use = (mine[0][0] - first, mine[-1][1] - first) if mine else None
            start = ring_offset(in_use, held, end - first)
            if start is not None:
                break
            self._retire_oldest()
        self._reserved[ring] = (first + start, first + start + held)
        return self.inbox[first + start:first + start + words]

    def append(self, channels, words, T, K, to, n, lo, nl, ne, start, ring: int | None = None) -> None:
        """Queue a step's frames (int arrays, one entry per frame, a channel's
        in order; ``start`` bool: the entry starts its channel's utterance) from
        the packed int32 array ``words`` (its floats as bits), which lies in the
        region its ring's last :meth:`reserve` handed out (``ring``: that
        ring's; None: the ring is found from where ``words`` lies, or for an
        empty step, the only ring reserved): the workers read it there, so the
        caller must not write the region again. A LatticeError (an index out of range) is raised
        by a later append, reserve or :meth:`wait`."""
        offset = (words.ctypes.data - self.inbox.ctypes.data) // 4

        def holds(r):
            a, b = self._reserved[r]
            return not words.size or a <= offset and offset + words.size <= b  # (empty views point anywhere)

        if ring is None and words.size:
            ring = next((r for r in self._reserved if holds(r)), None)
        elif ring is None and len(self._reserved) == 1:
            ring = next(iter(self._reserved))
        if ring not in self._reserved or not holds(ring):
            raise ValueError("LatticeStore.append takes a step in the region its ring's last reserve() handed out")
        region = self._reserved.pop(ring)
        while len(self._steps) >= QUEUED_STEPS:
            self._retire_oldest()
        i64 = np.int64
        used = 3 * T + 5 * K
        to, n, lo, nl = (np.asarray(a, i64) for a in (to, n, lo, nl))
        if used > words.size or np.any(to + n > T) or np.any(lo + nl > K):
            raise ValueError(f"a step of {T} tokens and {K} links whose frames do not lie in its {words.size} words")
        channels = np.asarray(channels, i64)
        args = (channels, words[:used], words[:used].view(np.float32), i64(T), i64(K), to, n, lo, nl,
                np.asarray(ne, i64), np.asarray(start, np.bool_), np.float32(self.config.lattice_beam),
                i64(self.prune_every))
        busy = sorted(set(self.part_of[channels].tolist()))
        for k in busy:
            self._workers[k].append(append_step, self._parts[k], i64(k), self.part_of, self._index_of, *args)
        self._steps.append([busy, None, region, ring])

    def _retire_oldest(self) -> None:
        """Wait for the oldest queued step; raise its first error, if any."""
        error = self._retire()
        if error is not None:
            raise error

    def _retire(self) -> BaseException | None:
        """Wait for the oldest queued step; its first error, if any."""
        step = self._steps[0]
        busy = step[0]
        waiting = time.perf_counter()
        while busy:  # (an interrupted wait leaves what is not done queued)
            error = self._workers[busy[-1]].done.get()
            busy.pop()
            step[1] = step[1] or error
        self.wait_seconds += time.perf_counter() - waiting
        self._steps.popleft()
        return step[1]

    def finish_later(self, channel: int) -> Future:
        """The Result of the utterance on ``channel``, finished by its
        partition's worker after the frames queued before (a Future); the
        channel takes its next utterance in a spare set of arrays."""
        while self._finishing and self._finishing[0].done():  # (not a scan of all: workers may lag far behind)
            self._finishing.popleft()
        self._finishing.append(self._workers[self.part_of[channel]].finish(self._finish_now, channel))
        return self._finishing[-1]

    def wait(self) -> None:
        """Return once all queued work is done; raise the first append's error."""
        error = self.settle()
        if error is not None:
            raise error

    def settle(self) -> BaseException | None:
        """Wait for all queued work; the first append's error, if any (not
        raised; a finish's error is its Future's)."""
        error = None
        while self._steps:
            failed = self._retire()
            error = error or failed
        waiting = time.perf_counter()
        wait(self._finishing)
        self.wait_seconds += time.perf_counter() - waiting
        self._finishing.clear()
        return error

    def _slot(self, channel: int) -> tuple:
        return self._parts[self.part_of[channel]], int(self._index_of[channel])

    def arrays(self, channel: int) -> cpu_search.SearchArrays:
        """Channel ``channel``'s arrays, read-only; valid until its next append."""
        self.wait()
        part, i = self._slot(channel)
        return cpu_search.SearchArrays(*part[i])

    def num_frames(self, channel: int) -> int:
        self.wait()
        part, i = self._slot(channel)
        return int(part[i][14][FRAME])

    def clear(self, channel: int) -> None:
        """The channel gives up its arrays (a small empty set replaces them):
        grown ones go to its partition's spares, for a later utterance."""
        self.wait()
        part, i = self._slot(channel)
        k = self.part_of[channel]
        if part[i][0].size > EMPTY_TOKENS and len(self._spares[k]) < self._sizes[k]:
            self._spares[k].append(part[i])
        part[i] = _empty_arrays()

    def finish(self, channel: int) -> Result:
        """The Result of the utterance on ``channel``; the channel's arrays are let go."""
        self.wait()
        return self._finish_now(channel)

    def _finish_now(self, channel: int) -> Result:
        """The CPU's final pruning and best token, then the shared Result
        (:func:`finish_channel`, run by the channel's worker or after
        :meth:`wait`); the channel takes spare arrays for its next utterance."""
        k = self.part_of[channel]
        fst = self.graph.fst
        outcome = finish_channel(self._parts[k], self._index_of[channel], self._spares[k], self._sizes[k],
                                 fst.final, fst.ilabel, fst.olabel, fst.weight, self.config.use_final_probs,
                                 float(self.config.lattice_beam))
        return result_of(outcome, self.graph, self.config)


def negative_cycle_error(frame: int) -> GraphError:
    return GraphError("the search met a negative-cost epsilon cycle (in float32 arithmetic) at frame "
                      f"{frame}: the best path is unbounded; fix the graph's epsilon weights")
