"""Host assembly of the CUDA backend's lattice segments, with the CPU backend's
own arrays and pruning: each frame copied back from the device is appended to
its channel's :class:`wfst.cpu_search.SearchArrays` in a :class:`LatticeStore`
(frame-local token and link indices made global; all lanes of a step in one
numba call), interim lattice pruning runs every ``prune_interval`` frames and
the final pruning at the end, both with :mod:`wfst.cpu_lattice_prune`'s numba
code, so both backends' lattices follow one implementation.

A frame's packed data (see ``cuda_kernels/segments.cu``): for ``T`` tokens and
``K`` links of all lanes, int32 ``tok_state[T] tok_cost[T] tok_best[T]
link_src[K] link_dst[K] link_arc[K] link_ac[K]`` (floats as bits). Emitting
links (the first ``ne`` of a lane's) have sources in the previous frame, epsilon
links in the same frame; ``tok_best`` is a frame-local link index (-1: none).
"""

from __future__ import annotations

import numba
import numpy as np
from numba.typed import List

from . import cpu_search
from .config import DecoderConfig
from .cpu_backend import finished_result
from .cpu_lattice_prune import FRAME, LAST_PRUNE, NUM_LINKS, NUM_TOKENS, prune_lattice
from .decoding_graph import DecodingGraph
from .errors import GraphError
from .result import Result


@numba.njit(cache=True, nogil=True)
def append_frame(sa, words, floats, T, K, to, n, lo, nl, ne, start, weight, lattice_beam, prune_interval):
    """Append one lane's frame (``n`` tokens at ``to``, ``nl`` links at ``lo``, the
    first ``ne`` emitting) from a packed buffer (``words`` int32, ``floats`` the
    same memory as float32) to the search arrays ``sa``; returns the new arrays."""
    counters = sa[13]
    if start:
        f, nt, nl0 = 0, 0, 0
    else:
        f = counters[FRAME] + 1
        nt = counters[NUM_TOKENS]
        nl0 = counters[NUM_LINKS]
    tok_state = cpu_search._grown(sa[0], nt + n)
    tok_cost = cpu_search._grown(sa[1], nt + n)
    tok_extra = cpu_search._grown(sa[2], nt + n)
    tok_best = cpu_search._grown(sa[3], nt + n)
    link_src = cpu_search._grown(sa[4], nl0 + nl)
    link_dst = cpu_search._grown(sa[5], nl0 + nl)
    link_arc = cpu_search._grown(sa[6], nl0 + nl)
    link_ac = cpu_search._grown(sa[7], nl0 + nl)
    tok_start = cpu_search._grown(sa[8], f + 3)
    link_start = cpu_search._grown(sa[9], f + 3)
    link_eps_start = cpu_search._grown(sa[10], f + 3)
    for i in range(n):
        tok_state[nt + i] = words[to + i]
        tok_cost[nt + i] = floats[T + to + i]
        tok_extra[nt + i] = 0.0
        b = words[2 * T + to + i]
        tok_best[nt + i] = nl0 + b if b >= 0 else -1
    prev_first = 0 if start else tok_start[f - 1]
    base = 3 * T
    for j in range(nl):
        src = words[base + lo + j]
        link_src[nl0 + j] = prev_first + src if j < ne and not start else nt + src
        link_dst[nl0 + j] = nt + words[base + K + lo + j]
        link_arc[nl0 + j] = words[base + 2 * K + lo + j]
        link_ac[nl0 + j] = floats[base + 3 * K + lo + j]
    tok_start[f] = nt
    tok_start[f + 1] = nt + n
    link_start[f] = nl0
    link_start[f + 1] = nl0 + nl
    link_eps_start[f] = nl0 + ne
    counters[FRAME] = f
    counters[NUM_TOKENS] = nt + n
    counters[NUM_LINKS] = nl0 + nl
    if start:
        counters[LAST_PRUNE] = 0
    toks = (tok_state, tok_cost, tok_extra, tok_best)
    links = (link_src, link_dst, link_arc, link_ac)
    if not start and f % prune_interval == 0:
        prune_lattice(weight, toks, links, tok_start, link_start, link_eps_start, counters, lattice_beam,
                      cpu_search.PRUNE_SCALE * lattice_beam, np.zeros(nt + n - tok_start[f], np.float32), False)
    return (toks[0], toks[1], toks[2], toks[3], links[0], links[1], links[2], links[3], tok_start, link_start,
            link_eps_start, sa[11], sa[12], counters)


@numba.njit(cache=True, nogil=True)
def append_step(store, channels, words, floats, T, K, to, n, lo, nl, ne, start, weight, lattice_beam,
                prune_interval):
    """Append one step's frames, entry ``e`` to the arrays of channel
    ``channels[e]`` in ``store`` (one call per step for every lane: no Python
    work per lane)."""
    for e in range(channels.shape[0]):
        c = channels[e]
        store[c] = append_frame(store[c], words, floats, T, K, to[e], n[e], lo[e], nl[e], ne[e], start[e], weight,
                                lattice_beam, prune_interval)


def _empty_arrays() -> tuple:
    """A channel's arrays before its utterance: small, grown as frames arrive
    (the hash table and scratch rows are not used here)."""
    return tuple(cpu_search.new_search_arrays(frames=8, tokens=64, links=256, hash_slots=2, frame_tokens=2))


class LatticeStore:
    """The lattices so far of the utterances in the decoder's channels, on the
    host: channel ``c`` holds the search arrays (:class:`wfst.cpu_search.SearchArrays`)
    of the utterance or stream searched on it; a numba typed list, so that a
    step's frames for all lanes are appended in one call."""

    def __init__(self, graph: DecodingGraph, config: DecoderConfig, channels: int):
        self.graph = graph
        self.config = config
        self._weight = np.ascontiguousarray(graph.fst.weight, dtype=np.float32)
        graph.host_layout()  # built here, before any finishing thread needs it
        self._store = List([_empty_arrays() for _ in range(channels)])

    def append(self, channels, words, floats, T, K, to, n, lo, nl, ne, start) -> None:
        """Append a step's frames (int arrays, one entry per lane; ``start``
        bool: the entry starts its channel's utterance) from the packed buffer
        ``words`` (``floats``: the same memory as float32)."""
        i64 = np.int64
        append_step(self._store, channels.astype(i64), words, floats, i64(T), i64(K), to.astype(i64),
                    n.astype(i64), lo.astype(i64), nl.astype(i64), ne.astype(i64), start.astype(np.bool_),
                    self._weight, np.float32(self.config.lattice_beam), i64(self.config.prune_interval))

    def arrays(self, channel: int) -> cpu_search.SearchArrays:
        """Channel ``channel``'s arrays, read-only; valid until its next append."""
        return cpu_search.SearchArrays(*self._store[channel])

    def num_frames(self, channel: int) -> int:
        return int(self._store[channel][13][FRAME])

    def clear(self, channel: int) -> None:
        """Let the channel's arrays go (a small empty set replaces them)."""
        self._store[channel] = _empty_arrays()

    def take(self, channel: int) -> cpu_search.SearchArrays:
        """The channel's arrays, which the channel gives up (for :meth:`finish_arrays`
        on another thread while the channel takes its next utterance)."""
        arrays = self.arrays(channel)
        self.clear(channel)
        return arrays

    def finish(self, channel: int) -> Result:
        """The Result of the utterance on ``channel``; the channel's arrays are let go."""
        return self.finish_arrays(self.take(channel))

    def finish_arrays(self, arrays: cpu_search.SearchArrays) -> Result:
        """The CPU's final pruning and best token, then the shared Result
        (thread-safe: see :func:`wfst.cpu_backend.finished_result`)."""
        return finished_result(arrays, self.graph, self.config)[0]


def negative_cycle_error(frame: int) -> GraphError:
    return GraphError("the search met a negative-cost epsilon cycle (in float32 arithmetic) at frame "
                      f"{frame}: the best path is unbounded; fix the graph's epsilon weights")
