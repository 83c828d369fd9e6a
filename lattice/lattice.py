"""``Lattice``: a state-level lattice assembled from one utterance's segments.

Like Kaldi's ``Lattice`` (an FST over ``LatticeWeight``), each arc carries an
input label (the graph arc's ilabel: CTC token or transition id; 0 on epsilon
arcs), an output label (word id, 0 for none) and a cost in two parts kept apart:
the graph cost and the acoustic cost. Costs are stored as the search used them,
acoustic scale applied; :meth:`Lattice.scale` changes that (Kaldi's
``lattice-scale``), and Kaldi tools expect lattices on disk with the acoustic
cost unscaled (scale by ``1 / acoustic_scale`` before writing, as Kaldi's decoders
do).

Invariants:

* State 0 is the start state. States are numbered in topological order
  (``arc_src < arc_dst`` for every arc) and by frame (``state_frame`` is
  non-decreasing); an assembled lattice's states are numbered canonically
  (:mod:`lattice.canonical`).
* ``state_frame`` (int32, S): score rows consumed when the state is reached.
  An arc with a non-zero ilabel reads row ``state_frame[arc_src]`` and ends in
  frame ``state_frame[arc_src] + 1``; an epsilon arc stays in its frame.
* Arcs are sorted by ``arc_src`` (ties in any order): ``arc_src``, ``arc_dst``,
  ``arc_ilabel``, ``arc_olabel`` (int32, A), ``arc_graph_cost`` and
  ``arc_acoustic_cost`` (float32, A).
* ``final_graph_cost`` and ``final_acoustic_cost`` (float32, S): ``inf`` in both
  where a state is not final.

A lattice with no states is empty (no path; e.g. no token survived the search).
Operations (each in its own module of :mod:`lattice`, imported on first use)
work in float64 on the total cost ``graph + acoustic``. Assembly from the
decoder's segments: :func:`lattice.assemble.assemble` (also
:meth:`Lattice.from_segments`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Lattice:
    """An acyclic state-level lattice (Kaldi's ``Lattice``): S states, state 0
    the start, numbered by frame and in topological order; A arcs sorted by
    source. Costs as searched (acoustic scale applied; lower is better).

    state_frame: int32 (S,), score rows consumed when the state is reached.
    arc_src, arc_dst: int32 (A,), the arcs' states. arc_ilabel: int32 (A,),
        the graph arc's input label (CTC token or transition id; 0: epsilon,
        reads no row). arc_olabel: int32 (A,), the word id (0: none).
    arc_graph_cost, arc_acoustic_cost: float32 (A,).
    final_graph_cost, final_acoustic_cost: float32 (S,), ``inf`` in both
        where a state is not final.

    The module docstring gives the invariants; the methods (``best_path``,
    ``nbest``, ``prune``, ``determinize``, ``word_confidences``, ``to_ctm``,
    ``scale``, ...) each return a new object.
    """

    state_frame: np.ndarray
    arc_src: np.ndarray
    arc_dst: np.ndarray
    arc_ilabel: np.ndarray
    arc_olabel: np.ndarray
    arc_graph_cost: np.ndarray
    arc_acoustic_cost: np.ndarray
    final_graph_cost: np.ndarray
    final_acoustic_cost: np.ndarray

    @classmethod
    def empty(cls) -> "Lattice":
        """A lattice without states (no path)."""
        i32, f32 = np.zeros(0, np.int32), np.zeros(0, np.float32)
        return cls(i32, i32, i32, i32, i32, f32, f32, f32, f32)

    @classmethod
    def from_segments(cls, segments, fst, *, lattice_beam: float, use_final_probs: bool = True) -> "Lattice":
        """Assemble and prune one utterance's :class:`lattice.LatticeSegments`
        decoded on ``fst`` (see :mod:`lattice.assemble`)."""
        from .assemble import assemble

        return assemble(segments, fst, lattice_beam=lattice_beam, use_final_probs=use_final_probs)

    @property
    def num_states(self) -> int:
        """States of the lattice (``state_frame``'s length)."""
        return int(self.state_frame.shape[0])

    @property
    def num_arcs(self) -> int:
        """Arcs of the lattice (``arc_src``'s length)."""
        return int(self.arc_src.shape[0])

    @property
    def num_frames(self) -> int:
        """Frames the lattice spans: the largest ``state_frame`` (0 if empty)."""
        return int(self.state_frame.max()) if self.num_states else 0

    def arc_costs(self) -> np.ndarray:
        """Total cost of each arc, ``graph + acoustic`` (float64, A)."""
        return self.arc_graph_cost.astype(np.float64) + self.arc_acoustic_cost

    def final_costs(self) -> np.ndarray:
        """Total final cost of each state (float64, S; ``inf`` where not final)."""
        return self.final_graph_cost.astype(np.float64) + self.final_acoustic_cost

    def validate(self) -> "Lattice":
        """Check the invariants of the module docstring; raise
        :class:`lattice.LatticeError` naming the first one broken."""
        from .validate import validate_lattice

        validate_lattice(self)
        return self

    # ------------------------------------------------------------ operations
    def prune(self, lattice_beam: float) -> "Lattice":
        """Keep the arcs whose best complete path is within ``lattice_beam`` of
        the best (exact forward-backward; see :mod:`lattice.prune`)."""
        from .prune import prune

        return prune(self, lattice_beam)

    def best_path(self):
        """The cheapest complete path as a :class:`lattice.LatticePath` (see
        :mod:`lattice.best_path`)."""
        from .best_path import best_path

        return best_path(self)

    def nbest(self, n: int) -> list:
        """The ``n`` cheapest distinct word sequences, best first, each the
        :class:`lattice.LatticePath` of its best alignment (fewer when the
        lattice has fewer); see :mod:`lattice.nbest`."""
        from .nbest import nbest

        return nbest(self.determinize(), n)

    def word_alignment(self, lexicon=None) -> list[tuple[int, int, int]]:
        """``(word, first frame, last frame)`` of each word of the best path:
        with ``lexicon`` (a :class:`lattice.AlignmentLexicon`, CTC graphs)
        exactly the frames of the word's tokens, else from where the graph
        put the word labels (see :mod:`lattice.word_alignment`)."""
        from .word_alignment import word_alignment

        return word_alignment(self, lexicon)

    def to_ctm(self, utt_id: str, frame_shift: float, words=None, lexicon=None) -> str:
        """The best path's words as CTM lines, times from the lexicon when
        ``lexicon`` (a :class:`lattice.AlignmentLexicon`) is given (see
        :mod:`lattice.ctm`)."""
        from .ctm import to_ctm

        return to_ctm(self, utt_id, frame_shift, words, lexicon)

    def arc_posteriors(self, scale: float = 1.0) -> np.ndarray:
        """Posterior probability of each arc (float64, A) by forward-backward in
        the log semiring on ``scale * cost`` (see :mod:`lattice.posteriors`).
        ``scale`` multiplies every cost before ``exp(-cost)``: below 1 it
        flattens the distribution (e.g. 1 / LM weight), 1 uses the costs as
        searched."""
        from .posteriors import arc_posteriors

        return arc_posteriors(self, scale)

    def word_confidences(self, scale: float = 1.0) -> np.ndarray:
        """Confidence in [0, 1] of each word of the best path (float64, one per
        word; see :mod:`lattice.posteriors`): its posterior at ``scale``, as in
        :meth:`arc_posteriors` (smaller: flatter, less confident)."""
        from .posteriors import word_confidences

        return word_confidences(self, scale)

    def determinize(self):
        """The word-level :class:`lattice.CompactLattice` with one path per word
        sequence, carrying its best alignment and cost (see
        :mod:`lattice.determinize`)."""
        from .determinize import determinize

        return determinize(self)

    def to_pynini(self):
        """A ``pynini.Fst`` (tropical, weight = graph + acoustic cost) with the
        same states, arcs and labels; needs pynini."""
        from .pynini_export import lattice_to_pynini

        return lattice_to_pynini(self)

    def scale(self, acoustic: float = 1.0, graph: float = 1.0) -> "Lattice":
        """Costs multiplied, acoustic by ``acoustic`` and graph by ``graph``
        (Kaldi's ``lattice-scale --acoustic-scale --lm-scale``); see
        :mod:`lattice.scale`."""
        from .scale import scale

        return scale(self, acoustic, graph)

    def add_word_penalty(self, penalty: float) -> "Lattice":
        """``penalty`` added to the graph cost of every arc with a word
        (Kaldi's ``lattice-add-penalty --word-ins-penalty``)."""
        from .scale import add_word_penalty

        return add_word_penalty(self, penalty)

    def __repr__(self) -> str:
        return f"Lattice(states={self.num_states}, arcs={self.num_arcs})"
