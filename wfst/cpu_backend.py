"""The CPU backend: one utterance's search driven through the numba kernels of
:mod:`wfst.cpu_search`, and the conversion of its end state into a Result."""

from __future__ import annotations

import numba
import numpy as np

from lattice.assemble import lattice_arrays, lattice_of
from lattice.segments import LatticeSegments
from lattice.word_alignment import word_spans

from . import cpu_search
from .config import DecoderConfig
from .decoding_graph import DecodingGraph
from .errors import GraphError
from .result import Result


class CpuSearch:
    """The search state of one utterance on the CPU: feed score rows with
    :meth:`accept` (any number of calls), then call :meth:`finish` once."""

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
            *self._layout, self.graph.column_of_ilabel, scores, np.float32(config.acoustic_scale),
            np.float32(config.beam), config.max_active, config.min_active, np.float32(config.lattice_beam),
            config.prune_interval, self._arrays))
        self._check_status()

    def finish(self) -> Result:
        """Final lattice pruning and the best path."""
        fst, config = self.graph.fst, self.config
        # (a plain tuple, as the CUDA backend's lattice store passes: one compiled finish_arrays serves both)
        outcome = finish_arrays(tuple(self._arrays), fst.final, fst.ilabel, fst.olabel, fst.weight,
                                config.use_final_probs, float(config.lattice_beam))
        self._best = outcome[0], outcome[1]
        return result_of(outcome, self.graph, config)

    @property
    def segments(self) -> LatticeSegments:
        """After :meth:`finish`: the pruned lattice segments (copies), for tests
        and benchmarks; made on demand, so that a decode copies nothing."""
        return search_segments(self._arrays, *self._best)

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


@numba.njit(cache=True, nogil=True)
def finish_arrays(sa, final, ilabel, olabel, weight, use_final_probs, lattice_beam):
    """A finished search's Result as arrays, in one call (the lattice workers
    finish utterances on many threads at once: nothing here holds the GIL):
    the final lattice pruning (with final costs) of the search arrays ``sa``,
    its best token, the lattice's arrays (:func:`lattice.assemble.lattice_arrays`)
    and the best path's (:func:`_best_path`); ``lattice_beam`` a float (the
    search prunes with it in float32, the lattice in float64). Returns (best
    token or -1, reached_final, start tokens, lattice arrays, alignment,
    words, first and last frames, weights, acoustic costs, the best token's
    state and cost), read by :func:`result_of`."""
    best, reached_final = cpu_search.finish_search(final, use_final_probs, np.float32(lattice_beam), sa)
    counters = sa[14]
    frames, nt, nl = counters[cpu_search.FRAME], counters[cpu_search.NUM_TOKENS], counters[cpu_search.NUM_LINKS]
    tok_state, tok_cost, tok_best, tok_start = sa[0][:nt], sa[1][:nt], sa[3][:nt], sa[9][:frames + 2]
    link_src, link_arc, link_ac, link_start = sa[4][:nl], sa[6][:nl], sa[7][:nl], sa[10][:frames + 2]
    i32, f32 = np.zeros(0, np.int32), np.zeros(0, np.float32)
    lattice, roots = (i32, i32, i32, i32, i32, f32, f32, f32, f32), 1
    if best >= 0:
        lattice, roots = lattice_arrays(tok_start, tok_state, tok_cost, tok_best, link_src, sa[5][:nl], link_arc,
                                        link_ac, link_start, sa[11][:frames + 1], ilabel, olabel, weight, final,
                                        use_final_probs and reached_final, lattice_beam)
    if best < 0 or roots != 1:  # (no path; or segments result_of refuses)
        i64, f64 = np.zeros(0, np.int64), np.zeros(0)
        return (best, reached_final, roots, lattice, np.zeros(frames, np.int32), i64, i64, i64, f64, f64, -1,
                np.float32(np.inf))
    alignment, words, first, last, weights, acoustic = _best_path(best, tok_best, link_src, link_arc, link_ac,
                                                                  link_start, ilabel, olabel, weight, frames)
    return (best, reached_final, roots, lattice, alignment, words, first, last, weights, acoustic, tok_state[best],
            tok_cost[best])


def search_segments(a: cpu_search.SearchArrays, best: int, reached_final: bool) -> LatticeSegments:
    """The lattice segments of a finished search's arrays (copies of their used
    parts), with its best token."""
    frames = int(a.counters[cpu_search.FRAME])
    nt = int(a.counters[cpu_search.NUM_TOKENS])
    nl = int(a.counters[cpu_search.NUM_LINKS])
    return LatticeSegments(
        tok_state=a.tok_state[:nt].copy(), tok_cost=a.tok_cost[:nt].copy(), tok_best=a.tok_best[:nt].copy(),
        tok_start=a.tok_start[: frames + 2].copy(), link_src=a.link_src[:nl].copy(),
        link_dst=a.link_dst[:nl].copy(), link_arc=a.link_arc[:nl].copy(), link_ac=a.link_ac[:nl].copy(),
        link_start=a.link_start[: frames + 2].copy(), link_eps_start=a.link_eps_start[: frames + 1].copy(),
        best_token=int(best), reached_final=bool(reached_final))


def result_of(outcome: tuple, graph: DecodingGraph, config: DecoderConfig) -> Result:
    """The :class:`Result` of :func:`finish_arrays`' ``outcome`` (the best path
    by the tie rule's ``tok_best``, the assembled and pruned lattice)."""
    best, reached_final, roots, lattice, alignment, words, firsts, lasts, weights, acoustic, state, cost = outcome
    lattice = lattice_of(lattice, roots)
    if best < 0:
        return Result(words=(), cost=float("inf"), graph_cost=float("inf"), acoustic_cost=float("inf"),
                      reached_final=False, alignment=alignment, word_frames=(), lattice=lattice)
    final_cost = float(graph.fst.final[state]) if config.use_final_probs and reached_final else 0.0
    return Result(
        words=tuple(words.tolist()),
        cost=float(np.float32(cost) + np.float32(final_cost)),
        graph_cost=float(weights.sum() + final_cost),  # (numpy's pairwise sums)
        acoustic_cost=float(acoustic.sum()),
        reached_final=bool(reached_final),
        alignment=alignment,
        word_frames=tuple(zip(firsts.tolist(), lasts.tolist())),
        lattice=lattice,
    )


@numba.njit(cache=True, nogil=True)
def _best_path(token, tok_best, link_src, link_arc, link_ac, link_start, ilabel, olabel, weight, frames):
    """The best path into ``token`` (:func:`wfst.cpu_search.best_path_links`):
    the input label read at each of the ``frames`` frames (int32, 0: none), its
    words with their first and last frames (:func:`lattice.word_alignment.word_spans`),
    and each link's graph weight and acoustic cost (float64, first to last)."""
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
