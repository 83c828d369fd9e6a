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

import numba
import numpy as np

from .errors import LatticeError
from .lattice import Lattice
from .shortest import backward_costs, forward_costs


@numba.njit(cache=True, nogil=True)
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
    arrays = pruned_arrays(lattice.state_frame, lattice.arc_src, lattice.arc_dst, lattice.arc_ilabel,
                           lattice.arc_olabel, lattice.arc_graph_cost, lattice.arc_acoustic_cost,
                           lattice.final_graph_cost, lattice.final_acoustic_cost, lattice_beam)
    return Lattice(*arrays) if arrays[0].shape[0] else Lattice.empty()


@numba.njit(cache=True, nogil=True)
def pruned_arrays(state_frame, arc_src, arc_dst, arc_ilabel, arc_olabel, arc_graph_cost, arc_acoustic_cost,
                  final_graph_cost, final_acoustic_cost, lattice_beam):
    """The arrays of a non-empty :class:`Lattice` (given as its nine arrays, in
    field order) pruned to ``lattice_beam`` (:func:`kept_parts`), in the same
    order; no states when no final state is reachable. Plain loops, no numpy
    call per array (the lattices of every utterance pass here)."""
    keep_state, keep_arc, keep_final = kept_parts(state_frame.shape[0], arc_src, arc_dst, arc_graph_cost,
                                                  arc_acoustic_cost, final_graph_cost, final_acoustic_cost,
                                                  lattice_beam)
    return gathered(np.flatnonzero(keep_state), np.flatnonzero(keep_arc), state_frame, arc_src, arc_dst, arc_ilabel,
                    arc_olabel, arc_graph_cost, arc_acoustic_cost, final_graph_cost, final_acoustic_cost, keep_final)


@numba.njit(cache=True, nogil=True)
def kept_parts(num_states, arc_src, arc_dst, arc_graph_cost, arc_acoustic_cost, final_graph_cost,
               final_acoustic_cost, lattice_beam):
    """What pruning to ``lattice_beam`` keeps of a lattice of ``num_states``
    states (arcs and final costs as :class:`Lattice` names them): bool arrays
    of the states, the arcs and the final costs kept. A state stays if its own
    best path is within the beam or a kept arc's is (float64 rounding can put
    an arc's sum and its source's on either side of the limit); nothing stays
    when no final state is reachable. LatticeError for an arc that does not go
    forward between existing states."""
    num_arcs = arc_src.shape[0]
    for a in range(num_arcs):
        if not 0 <= arc_src[a] < arc_dst[a] < num_states:
            raise LatticeError("lattice arcs must go forward between existing states (arc_src < arc_dst < "
                               "number of states): call validate() to find the first bad arc")
    cost = np.empty(num_arcs)
    for a in range(num_arcs):
        cost[a] = np.float64(arc_graph_cost[a]) + np.float64(arc_acoustic_cost[a])
    final = np.empty(num_states)
    for s in range(num_states):
        final[s] = np.float64(final_graph_cost[s]) + np.float64(final_acoustic_cost[s])
    alpha, _ = forward_costs(num_states, arc_src, arc_dst, cost)
    beta = backward_costs(arc_src, arc_dst, cost, final)
    best = beta[0]
    limit = beam_limit(best, lattice_beam) if np.isfinite(best) else -np.inf  # (-inf: nothing stays)
    keep_arc = np.empty(num_arcs, np.bool_)
    keep_state = np.empty(num_states, np.bool_)
    keep_final = np.empty(num_states, np.bool_)
    for s in range(num_states):
        keep_state[s] = alpha[s] + beta[s] <= limit
        keep_final[s] = alpha[s] + final[s] <= limit
    for a in range(num_arcs):
        keep_arc[a] = alpha[arc_src[a]] + cost[a] + beta[arc_dst[a]] <= limit
        if keep_arc[a]:
            keep_state[arc_src[a]] = keep_state[arc_dst[a]] = True
    return keep_state, keep_arc, keep_final


@numba.njit(cache=True, nogil=True)
def gathered(states, arcs, state_frame, arc_src, arc_dst, arc_ilabel, arc_olabel, arc_graph_cost, arc_acoustic_cost,
             final_graph_cost, final_acoustic_cost, keep_final):
    """The nine arrays of the lattice made of the given lattice's ``states``
    (int64: new state ``i`` is old state ``states[i]``) and ``arcs`` (arc
    ``j`` is old arc ``arcs[j]``, its ends renumbered; each must join two of
    ``states``), final costs where ``keep_final`` (else ``inf``)."""
    new_id = np.full(state_frame.shape[0], -1, np.int32)
    kept = states.shape[0]
    out_frame = np.empty(kept, np.int32)
    out_final_graph = np.empty(kept, np.float32)
    out_final_acoustic = np.empty(kept, np.float32)
    for k in range(kept):
        s = states[k]
        new_id[s] = k
        out_frame[k] = state_frame[s]
        out_final_graph[k] = final_graph_cost[s] if keep_final[s] else np.float32(np.inf)
        out_final_acoustic[k] = final_acoustic_cost[s] if keep_final[s] else np.float32(np.inf)
    num_arcs = arcs.shape[0]
    src, dst = np.empty(num_arcs, np.int32), np.empty(num_arcs, np.int32)
    ilabel, olabel = np.empty(num_arcs, np.int32), np.empty(num_arcs, np.int32)
    graph_cost, acoustic_cost = np.empty(num_arcs, np.float32), np.empty(num_arcs, np.float32)
    for j in range(num_arcs):
        a = arcs[j]
        src[j] = new_id[arc_src[a]]
        dst[j] = new_id[arc_dst[a]]
        ilabel[j] = arc_ilabel[a]
        olabel[j] = arc_olabel[a]
        graph_cost[j] = arc_graph_cost[a]
        acoustic_cost[j] = arc_acoustic_cost[a]
    return out_frame, src, dst, ilabel, olabel, graph_cost, acoustic_cost, out_final_graph, out_final_acoustic
