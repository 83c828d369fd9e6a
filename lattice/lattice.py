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
  non-decreasing).
* ``state_frame`` (int32, S): score rows consumed when the state is reached.
  An arc with a non-zero ilabel reads row ``state_frame[arc_src]`` and ends in
  frame ``state_frame[arc_src] + 1``; an epsilon arc stays in its frame.
* Arcs are sorted by ``arc_src`` (ties in any order): ``arc_src``, ``arc_dst``,
  ``arc_ilabel``, ``arc_olabel`` (int32, A), ``arc_graph_cost`` and
  ``arc_acoustic_cost`` (float32, A).
* ``final_graph_cost`` and ``final_acoustic_cost`` (float32, S): ``inf`` in both
  where a state is not final.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Lattice:
    """An acyclic state-level lattice; see the module docstring."""

    state_frame: np.ndarray
    arc_src: np.ndarray
    arc_dst: np.ndarray
    arc_ilabel: np.ndarray
    arc_olabel: np.ndarray
    arc_graph_cost: np.ndarray
    arc_acoustic_cost: np.ndarray
    final_graph_cost: np.ndarray
    final_acoustic_cost: np.ndarray

    @property
    def num_states(self) -> int:
        return int(self.state_frame.shape[0])

    @property
    def num_arcs(self) -> int:
        return int(self.arc_src.shape[0])

    def __repr__(self) -> str:
        return f"Lattice(states={self.num_states}, arcs={self.num_arcs})"
