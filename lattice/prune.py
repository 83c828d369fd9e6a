"""Exact lattice-beam pruning by forward-backward (float64).

An arc stays if and only if the cheapest complete path through it (start to a
final state, final cost included) costs at most ``best + lattice_beam``; a
state stays iff some such path passes through it, and a final cost stays iff
the path ending there is within the beam. The comparison allows float64
rounding only (:func:`beam_limit`), so ``lattice_beam = 0`` keeps the best
path(s) and nothing else. States are renumbered in their old order, so the
:class:`lattice.Lattice` invariants (topological, by frame, arcs by source)
still hold.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import LatticeError
from .lattice import Lattice
from .shortest import backward_costs, forward_costs


def beam_limit(best: float, lattice_beam: float) -> float:
    """The highest total cost a kept path may have: ``best + lattice_beam``
    plus a float64 rounding allowance (1e-9 relative)."""
    return best + lattice_beam + 1e-9 * max(1.0, abs(best))


def check_beam(lattice_beam) -> float:
    if isinstance(lattice_beam, bool) or not isinstance(lattice_beam, (int, float, np.floating, np.integer)) \
            or not math.isfinite(lattice_beam) or lattice_beam < 0:
        raise LatticeError(f"lattice_beam must be a finite number >= 0 (a cost difference), got {lattice_beam!r}")
    return float(lattice_beam)


def prune(lattice: Lattice, lattice_beam: float) -> Lattice:
    """``lattice`` pruned to the paths within ``lattice_beam`` of its best
    (see the module docstring); an empty lattice when no final state is
    reachable."""
    lattice_beam = check_beam(lattice_beam)
    if lattice.num_states == 0:
        return lattice
    cost = lattice.arc_costs()
    final = lattice.final_costs()
    alpha, _ = forward_costs(lattice.num_states, lattice.arc_src, lattice.arc_dst, cost)
    beta = backward_costs(lattice.arc_src, lattice.arc_dst, cost, final)
    best = float(beta[0])
    if not math.isfinite(best):
        return Lattice.empty()
    limit = beam_limit(best, lattice_beam)
    keep_arc = alpha[lattice.arc_src] + cost + beta[lattice.arc_dst] <= limit
    keep_state = alpha + beta <= limit
    keep_final = keep_state & (alpha + final <= limit)
    new_id = (np.cumsum(keep_state) - 1).astype(np.int32)
    return Lattice(
        state_frame=lattice.state_frame[keep_state],
        arc_src=new_id[lattice.arc_src[keep_arc]],
        arc_dst=new_id[lattice.arc_dst[keep_arc]],
        arc_ilabel=lattice.arc_ilabel[keep_arc],
        arc_olabel=lattice.arc_olabel[keep_arc],
        arc_graph_cost=lattice.arc_graph_cost[keep_arc],
        arc_acoustic_cost=lattice.arc_acoustic_cost[keep_arc],
        final_graph_cost=np.where(keep_final, lattice.final_graph_cost, np.float32(np.inf))[keep_state],
        final_acoustic_cost=np.where(keep_final, lattice.final_acoustic_cost, np.float32(np.inf))[keep_state],
    )
