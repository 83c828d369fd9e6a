"""``CompactLattice``: a word-level lattice, Kaldi's ``CompactLattice``.

Each arc carries one word (input label = output label; 0 for an arc that only
carries frames) and a weight of three parts: graph cost, acoustic cost, and the
string of input labels (CTC tokens or transition ids, epsilons removed) read
along the arc, one per frame. Final weights have the same three parts. Costs
follow :mod:`lattice.lattice`'s convention.

Invariants:

* State 0 is the start state; states are in topological order
  (``arc_src < arc_dst``), arcs sorted by ``arc_src``.
* ``arc_src``, ``arc_dst``, ``arc_word`` (int32, A); ``arc_graph_cost``,
  ``arc_acoustic_cost`` (float32, A); arc ``a``'s string is
  ``string[string_start[a]:string_start[a + 1]]`` (``string_start`` int64, A + 1;
  ``string`` int32).
* ``final_graph_cost``, ``final_acoustic_cost`` (float32, S; ``inf`` in both where
  not final); state ``s``'s final string is
  ``final_string[final_string_start[s]:final_string_start[s + 1]]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class CompactLattice:
    """An acyclic word-level lattice, one word (or none) per arc, each arc with
    the string of input labels it reads: the arrays and invariants are in the
    module docstring."""

    arc_src: np.ndarray
    arc_dst: np.ndarray
    arc_word: np.ndarray
    arc_graph_cost: np.ndarray
    arc_acoustic_cost: np.ndarray
    string_start: np.ndarray
    string: np.ndarray
    final_graph_cost: np.ndarray
    final_acoustic_cost: np.ndarray
    final_string_start: np.ndarray
    final_string: np.ndarray

    @property
    def num_states(self) -> int:
        """States (``final_graph_cost``'s length)."""
        return int(self.final_graph_cost.shape[0])

    @property
    def num_arcs(self) -> int:
        """Arcs (``arc_src``'s length)."""
        return int(self.arc_src.shape[0])

    def scale(self, acoustic: float = 1.0, graph: float = 1.0) -> "CompactLattice":
        """Costs multiplied, acoustic by ``acoustic`` and graph by ``graph``
        (Kaldi's ``lattice-scale``); see :mod:`lattice.scale`."""
        from .scale import scale

        return scale(self, acoustic, graph)

    def __repr__(self) -> str:
        return f"CompactLattice(states={self.num_states}, arcs={self.num_arcs})"
