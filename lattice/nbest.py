"""N-best word sequences from a determinized lattice.

On a :class:`lattice.CompactLattice` with one path per word sequence (what
:func:`lattice.determinize.determinize` makes), the ``n`` cheapest paths are the
``n`` best distinct word sequences. They come out of a best-first search whose
priority is the cost so far plus the exact cheapest completion (backward costs),
so complete paths leave the queue cheapest first and every expansion lies on
one of the ``n`` paths or ties with them.
"""

from __future__ import annotations

import heapq
import operator

import numpy as np

from .best_path import LatticePath
from .compact_lattice import CompactLattice
from .errors import LatticeError
from .shortest import backward_costs


def nbest(compact: CompactLattice, n: int) -> list[LatticePath]:
    """The ``n`` cheapest paths of ``compact`` (fewer if it has fewer), best
    first; exact ties by discovery order (lower arc indices first). Each
    :class:`LatticePath` carries the path's words, costs and input labels."""
    try:
        n = operator.index(n)
    except TypeError:
        raise LatticeError(f"n must be an integer >= 1, got {n!r}") from None
    if n < 1:
        raise LatticeError(f"n must be an integer >= 1 (the number of word sequences wanted), got {n}")
    if compact.num_states == 0:
        return []
    graph = compact.arc_graph_cost.astype(np.float64)
    acoustic = compact.arc_acoustic_cost.astype(np.float64)
    cost = graph + acoustic
    final_graph = compact.final_graph_cost.astype(np.float64)
    final_acoustic = compact.final_acoustic_cost.astype(np.float64)
    final = final_graph + final_acoustic
    beta = backward_costs(compact.arc_src, compact.arc_dst, cost, final)
    if not np.isfinite(beta[0]):
        return []
    starts = np.searchsorted(compact.arc_src, np.arange(compact.num_states + 1))
    # queue entries: (priority, order, state or -1 when complete, cost so far, path as (arc, parent) links, end)
    queue = [(float(beta[0]), 0, 0, 0.0, None, -1)]
    pushed = 1
    paths = []
    while queue and len(paths) < n:
        priority, _, state, so_far, links, end = heapq.heappop(queue)
        if state < 0:
            paths.append(_path(compact, links, end, graph, acoustic, final_graph, final_acoustic))
            continue
        if np.isfinite(final[state]):
            heapq.heappush(queue, (so_far + float(final[state]), pushed, -1, 0.0, links, state))
            pushed += 1
        for a in range(starts[state], starts[state + 1]):
            d = int(compact.arc_dst[a])
            if np.isfinite(beta[d]):
                c = so_far + float(cost[a])
                heapq.heappush(queue, (c + float(beta[d]), pushed, d, c, (a, links), -1))
                pushed += 1
    return paths


def _path(compact, links, end, graph, acoustic, final_graph, final_acoustic) -> LatticePath:
    arcs = []
    while links is not None:
        arcs.append(links[0])
        links = links[1]
    arcs = np.array(arcs[::-1], np.int64)
    words = compact.arc_word[arcs]
    strings = [compact.string[compact.string_start[a]:compact.string_start[a + 1]] for a in arcs]
    strings.append(compact.final_string[compact.final_string_start[end]:compact.final_string_start[end + 1]])
    g = float(graph[arcs].sum() + final_graph[end])
    ac = float(acoustic[arcs].sum() + final_acoustic[end])
    return LatticePath(words=tuple(int(w) for w in words if w), cost=g + ac, graph_cost=g, acoustic_cost=ac,
                       ilabels=np.concatenate(strings).astype(np.int32))
