"""Tropical forward and backward costs on a topologically sorted lattice
(float64): the shared core of pruning and the best path.

Arcs must be sorted by source state and every arc must go forward
(``src < dst``), so one pass over the arcs in order (forward) or in reverse
(backward) sees every state's incoming (resp. outgoing) arcs complete before
the state is used.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def forward_costs(num_states, arc_src, arc_dst, arc_cost):
    """``(alpha, best_in)``: cheapest cost from state 0 to each state (float64,
    ``inf`` where unreachable) and the arc achieving it (int64, -1 for state 0
    and unreachable states; ties keep the lowest arc index)."""
    alpha = np.full(num_states, np.inf)
    best_in = np.full(num_states, -1, np.int64)
    if num_states > 0:
        alpha[0] = 0.0
    for a in range(arc_src.shape[0]):
        c = alpha[arc_src[a]] + arc_cost[a]
        d = arc_dst[a]
        if c < alpha[d]:
            alpha[d] = c
            best_in[d] = a
    return alpha, best_in


@numba.njit(cache=True, nogil=True)
def backward_costs(arc_src, arc_dst, arc_cost, final_cost):
    """Cheapest cost from each state to the end, final cost included (float64,
    ``inf`` where no final state is reachable)."""
    beta = final_cost.astype(np.float64)
    for a in range(arc_src.shape[0] - 1, -1, -1):
        c = arc_cost[a] + beta[arc_dst[a]]
        s = arc_src[a]
        if c < beta[s]:
            beta[s] = c
    return beta
