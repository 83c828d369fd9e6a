"""The best path of a :class:`lattice.Lattice`, and the path record that
:mod:`lattice.nbest` returns too."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lattice import Lattice


@dataclass(frozen=True, eq=False)
class LatticePath:
    """One complete path of a lattice.

    words: its output labels, epsilons (0) dropped.
    cost: total cost (graph + acoustic, final cost included; float64 sums of
        the lattice's float32 costs); ``inf`` for the empty lattice's path.
    graph_cost / acoustic_cost: the two parts of ``cost``.
    ilabels: int32, the non-epsilon input labels read, one per frame.
    """

    words: tuple[int, ...]
    cost: float
    graph_cost: float
    acoustic_cost: float
    ilabels: np.ndarray

    def __repr__(self) -> str:
        return f"LatticePath(words={self.words}, cost={self.cost:.4f}, frames={self.ilabels.shape[0]})"


NO_PATH = LatticePath((), float("inf"), float("inf"), float("inf"), np.zeros(0, np.int32))


def best_path_arcs(lattice: Lattice) -> tuple[np.ndarray, int]:
    """``(arcs, last state)``: the cheapest complete path's arc indices (int64,
    first to last) and the final state it ends in (-1, with no arcs, when the
    lattice has no complete path). Ties: the lowest final state, then for each
    state the lowest incoming arc index."""
    if lattice.num_states == 0:
        return np.zeros(0, np.int64), -1
    from .shortest import forward_costs  # numba: loaded on first use

    alpha, best_in = forward_costs(lattice.num_states, lattice.arc_src, lattice.arc_dst, lattice.arc_costs())
    total = alpha + lattice.final_costs()
    end = int(np.argmin(total))
    if not np.isfinite(total[end]):
        return np.zeros(0, np.int64), -1
    arcs = []
    state = end
    while best_in[state] >= 0:
        arcs.append(int(best_in[state]))
        state = int(lattice.arc_src[best_in[state]])
    return np.array(arcs[::-1], np.int64), end


def best_path(lattice: Lattice) -> LatticePath:
    """The cheapest complete path (``NO_PATH``, cost ``inf``, for a lattice
    without one); ties as :func:`best_path_arcs`."""
    arcs, end = best_path_arcs(lattice)
    if end < 0:
        return NO_PATH
    olabels = lattice.arc_olabel[arcs]
    ilabels = lattice.arc_ilabel[arcs]
    graph = float(lattice.arc_graph_cost[arcs].astype(np.float64).sum() + np.float64(lattice.final_graph_cost[end]))
    acoustic = float(lattice.arc_acoustic_cost[arcs].astype(np.float64).sum()
                     + np.float64(lattice.final_acoustic_cost[end]))
    return LatticePath(words=tuple(int(w) for w in olabels[olabels != 0]), cost=graph + acoustic, graph_cost=graph,
                       acoustic_cost=acoustic, ilabels=ilabels[ilabels != 0].astype(np.int32))
