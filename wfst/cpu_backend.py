"""The CPU backend: one utterance's search driven through the numba kernels of
:mod:`wfst.cpu_search`, and the conversion of its end state into a Result."""

from __future__ import annotations

import numba
import numpy as np

from lattice.lattice import Lattice
from lattice.segments import LatticeSegments
from lattice.word_alignment import word_spans

from . import cpu_search
from .config import DecoderConfig
from .decoding_graph import DecodingGraph
from .errors import GraphError
from .result import Result


class CpuSearch:
    """The search state of one utterance on the CPU: feed score rows with
    :meth:`accept` (any number of calls), then call :meth:`finish` once.

    """

    def __init__(self, graph: DecodingGraph, config: DecoderConfig, capacity: dict | None = None):
        """``capacity``: initial sizes for :func:`wfst.cpu_search.new_search_arrays`
        (tests start tiny so that every growth path runs)."""
        self.graph = graph
        self.config = config
        self._layout = graph.host_layout()
        self._arrays = cpu_search.SearchArrays(*cpu_search.start_search(
            *self._layout, graph.fst.start, np.float32(config.beam), cpu_search.new_search_arrays(**(capacity or {}))))
        self._check_status()

    @property
    def num_frames(self) -> int:
        return int(self._arrays.counters[cpu_search.FRAME])

    @property
    def expanded_tokens(self) -> int:
        """Tokens expanded so far (within the cutoff), summed over frames."""
        return int(self._arrays.counters[cpu_search.EXPANDED])

    def accept(self, scores: np.ndarray) -> None:
        """Run the frames of ``scores`` (checked float32, C-contiguous, frames x columns)."""
        if scores.shape[0] == 0:
            return
        config = self.config
        self._arrays = cpu_search.SearchArrays(*cpu_search.advance(
            *self._layout, self.graph.column_of_ilabel, scores, np.float32(config.acoustic_scale), np.float32(config.beam), config.max_active,
            config.min_active, np.float32(config.lattice_beam), config.prune_interval, self._arrays))
        self._check_status()

    def finish(self) -> Result:
        """Final lattice pruning and the best path."""
        result, self.segments = finished_result(self._arrays, self.graph, self.config)  # segments: for tests
        return result

    def _check_status(self) -> None:
        status = int(self._arrays.counters[cpu_search.STATUS])
        if status == cpu_search.STATUS_NEGATIVE_CYCLE:
            raise GraphError("the search met a negative-cost epsilon cycle (in float32 arithmetic) at frame "
                             f"{self.num_frames}: the best path is unbounded; fix the graph's epsilon weights")

    def frontier(self) -> tuple[cpu_search.SearchArrays, int, int]:
        """The search state after the frames accepted so far and the token range
        ``first:end`` of its last frame, for read-only use (streaming's partial
        results and endpointing): valid until the next :meth:`accept` or
        :meth:`finish`, which may grow the arrays and, at lattice pruning,
        renumber tokens and links."""
        a, frames = self._arrays, self.num_frames
        return a, int(a.tok_start[frames]), int(a.tok_start[frames + 1])


def finished_result(arrays: cpu_search.SearchArrays, graph: DecodingGraph, config: DecoderConfig,
                    keep_segments: bool = True) -> tuple[Result, LatticeSegments]:
    """Final lattice pruning (with final costs) and the best token of a search's
    arrays, then its Result (shared by both backends; thread-safe once
    ``graph.host_layout()`` exists: mostly numba code that releases the GIL).
    ``keep_segments`` False: the segments returned are views of ``arrays``,
    valid only until they change (the Result shares no memory with them)."""
    best, reached_final = cpu_search.finish_search(graph.fst.final, config.use_final_probs,
                                                   np.float32(config.lattice_beam), arrays)
    segments = search_segments(arrays, int(best), bool(reached_final), copy=keep_segments)
    return result_from_segments(segments, graph, config), segments


def search_segments(a: cpu_search.SearchArrays, best: int, reached_final: bool, copy: bool = True) -> LatticeSegments:
    """The lattice segments of a finished search's arrays (copies of their used
    parts, or views when not ``copy``), with its best token (shared by both backends)."""
    frames = int(a.counters[cpu_search.FRAME])
    nt = int(a.counters[cpu_search.NUM_TOKENS])
    nl = int(a.counters[cpu_search.NUM_LINKS])
    used = (lambda x: x.copy()) if copy else (lambda x: x)
    return LatticeSegments(
        tok_state=used(a.tok_state[:nt]), tok_cost=used(a.tok_cost[:nt]), tok_best=used(a.tok_best[:nt]),
        tok_start=used(a.tok_start[: frames + 2]), link_src=used(a.link_src[:nl]), link_dst=used(a.link_dst[:nl]),
        link_arc=used(a.link_arc[:nl]), link_ac=used(a.link_ac[:nl]), link_start=used(a.link_start[: frames + 2]),
        link_eps_start=used(a.link_eps_start[: frames + 1]), best_token=int(best), reached_final=bool(reached_final))


def result_from_segments(segments: LatticeSegments, graph: DecodingGraph, config: DecoderConfig) -> Result:
    """The best path of ``segments`` (the tie rule's, from ``tok_best``) and the
    assembled, pruned :class:`lattice.Lattice`, as a :class:`Result` (shared by
    both backends)."""
    fst = graph.fst
    frames = segments.num_frames
    lattice = Lattice.from_segments(segments, fst, lattice_beam=config.lattice_beam,
                                    use_final_probs=config.use_final_probs)
    if segments.best_token < 0:
        return Result(words=(), cost=float("inf"), graph_cost=float("inf"), acoustic_cost=float("inf"),
                      reached_final=False, alignment=np.zeros(frames, np.int32), word_frames=(), lattice=lattice)
    alignment, words, firsts, lasts, weights, acoustic = _best_path(
        segments.best_token, segments.tok_best, segments.link_src, segments.link_arc, segments.link_ac,
        segments.link_start, fst.ilabel, fst.olabel, fst.weight, frames)
    best_state = int(segments.tok_state[segments.best_token])
    with_final = config.use_final_probs and segments.reached_final
    final_cost = float(fst.final[best_state]) if with_final else 0.0
    token_cost = segments.tok_cost[segments.best_token]
    cost = float(token_cost + np.float32(final_cost))
    return Result(
        words=tuple(words.tolist()),
        cost=cost,
        graph_cost=float(weights.sum() + final_cost),  # (numpy's pairwise sums)
        acoustic_cost=float(acoustic.sum()),
        reached_final=segments.reached_final,
        alignment=alignment,
        word_frames=tuple(zip(firsts.tolist(), lasts.tolist())),
        lattice=lattice,
    )


@numba.njit(cache=True, nogil=True)
def _best_path(token, tok_best, link_src, link_arc, link_ac, link_start, ilabel, olabel, weight, frames):
    """The best path into ``token`` (:func:`wfst.cpu_search.best_path_links`):
    the input label read at each of the ``frames`` frames (int32, 0: none), its
    words with their first and last frames (:func:`lattice.word_alignment.word_spans`),
    and each link's graph weight and acoustic cost (float64, first to last). One
    call, so the GIL is held only around it (the lattice workers finish
    utterances on many threads at once)."""
    path = cpu_search.best_path_links(token, tok_best, link_src)
    n = path.shape[0]
    alignment = np.zeros(frames, np.int32)
    read_frame = np.empty(n, np.int64)
    path_olabel = np.empty(n, np.int64)
    weights, acoustic = np.empty(n), np.empty(n)
    for i in range(n):
        link = path[i]
        arc = link_arc[link]
        read_frame[i] = -1
        if ilabel[arc] != 0:  # an emitting link reads the frame before its destination's
            read_frame[i] = np.searchsorted(link_start, link, side="right") - 2
            alignment[read_frame[i]] = ilabel[arc]
        path_olabel[i] = olabel[arc]
        weights[i] = weight[arc]
        acoustic[i] = link_ac[link]
    words, first, last = word_spans(read_frame, path_olabel, frames)
    return alignment, words, first, last, weights, acoustic
