"""What a decoder returns for one utterance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lattice.lattice import Lattice


@dataclass(frozen=True, eq=False)
class Result:
    """The best path of one utterance and its lattice.

    words: output labels of the best path, epsilons (0) dropped.
    cost: total cost of the best path (graph + acoustic, acoustic scale applied),
        including the final cost when a final state was reached and the config
        uses final probabilities; ``inf`` when no token survived the search.
    graph_cost / acoustic_cost: the two parts of ``cost`` (graph includes the
        final cost), summed in float64.
    reached_final: a final state was active after the last frame. When False the
        best path ends in the cheapest token, as in Kaldi.
    alignment: int32, one per frame: the input label of the best path's emitting
        arc that read that frame's scores.
    word_frames: ``(first, last)`` frame of each word, one pair per entry of
        ``words``: from the first frame read at or after the word's arc to the
        frame before the next word's first frame (or the last frame), at least
        the first (two words whose labels come before the same frame both
        start there; :class:`lattice.AlignmentLexicon` times them apart).
    lattice: the utterance's :class:`lattice.Lattice`, pruned with the config's
        ``lattice_beam`` (empty when no token survived). Its ``best_path()``
        has these ``words`` and this ``cost`` (up to float32 rounding: the
        lattice sums in float64), except that an exact tie between two word
        sequences may resolve differently (this result follows the decoders'
        tie rule).
    """

    words: tuple[int, ...]
    cost: float
    graph_cost: float
    acoustic_cost: float
    reached_final: bool
    alignment: np.ndarray
    word_frames: tuple[tuple[int, int], ...]
    lattice: Lattice

    @property
    def num_frames(self) -> int:
        """Score rows decoded (the length of ``alignment``)."""
        return int(self.alignment.shape[0])

    def __repr__(self) -> str:
        return (f"Result(words={self.words}, cost={self.cost:.4f}, reached_final={self.reached_final}, "
                f"frames={self.num_frames})")
