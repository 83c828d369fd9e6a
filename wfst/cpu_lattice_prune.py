"""Lattice pruning during the search, as Kaldi's LatticeFasterDecoder does it
(PruneActiveTokens / FinalizeDecoding), on the arrays of :mod:`wfst.cpu_search`.

A token's *extra cost* is how much worse than the best the cheapest path through
it is, measured up to the current frontier; a link's extra cost is the same
through the link. Walking back from the frontier (extra 0 for every frontier
token in interim pruning; ``cost + final - best`` at the end), a frame's links
whose extra cost exceeds ``lattice_beam`` are removed, then the tokens left
without links. Interim pruning stops walking back at the first already-pruned
frame whose extra costs moved by no more than ``delta``; the final pruning visits
every frame. Removed tokens and links are compacted away, so the arrays stay
grouped by frame.
"""

from __future__ import annotations

import numba
import numpy as np

INF = np.float32(np.inf)
FRAME, NUM_TOKENS, NUM_LINKS, LAST_PRUNE = 0, 1, 2, 3
"""Slots of the search's ``counters`` array that pruning reads and updates (the
search adds its own after them, see :mod:`wfst.cpu_search`)."""


@numba.njit(cache=True, nogil=True)
def _prune_frame_links(f, has_emitting, tok_extra, link_src, link_dst, link_excess, tok_start, link_start,
                       link_eps_start, new_extra, lattice_beam):
    """New extra costs of frame ``f``'s tokens (``new_extra`` holds their starting
    values) from its outgoing links, removing (``link_dst = -1``) links beyond the
    beam. A link's extra cost is its destination's plus its own excess (see
    :class:`wfst.cpu_search.SearchArrays`). Returns whether any link was removed."""
    first = tok_start[f]
    removed = False
    if has_emitting:
        for l in range(link_start[f + 1], link_eps_start[f + 1]):
            v = link_dst[l]
            if v < 0:
                continue
            u = link_src[l]
            extra = tok_extra[v] + link_excess[l]
            if extra > lattice_beam:
                link_dst[l] = -1
                removed = True
            elif extra < new_extra[u - first]:
                new_extra[u - first] = extra
    eps_first, eps_end = link_eps_start[f], link_start[f + 1]
    changed = True
    while changed:  # epsilon links stay inside the frame: iterate to the fixpoint
        changed = False
        for l in range(eps_end - 1, eps_first - 1, -1):  # newest first: a chain settles in one pass
            v = link_dst[l]
            if v < 0:
                continue
            u = link_src[l]
            extra = new_extra[v - first] + link_excess[l]
            if extra < new_extra[u - first]:
                new_extra[u - first] = extra
                changed = True
    for l in range(eps_first, eps_end):
        v = link_dst[l]
        if v >= 0 and new_extra[v - first] + link_excess[l] > lattice_beam:
            link_dst[l] = -1
            removed = True
    return removed


@numba.njit(cache=True, nogil=True)
def prune_lattice(toks, links, tok_start, link_start, link_eps_start, counters, lattice_beam, delta,
                  frontier_extra, final):
    """Prune in place; ``frontier_extra`` (float32, one per frontier token) gives
    the frontier's extra costs. ``final``: also prune the frontier and visit
    every frame (``delta`` should then be 0)."""
    tok_extra = toks[2]
    link_src, link_dst, link_excess = links[0], links[1], links[4]
    frontier = counters[FRAME]
    last_pruned = counters[LAST_PRUNE]
    first = tok_start[frontier]
    n_front = tok_start[frontier + 1] - first
    lowest = frontier
    if final:
        new_extra = frontier_extra.copy()
        _prune_frame_links(frontier, np.bool_(False), tok_extra, link_src, link_dst, link_excess,
                           tok_start, link_start, link_eps_start, new_extra, lattice_beam)
        for i in range(n_front):
            tok_extra[first + i] = new_extra[i] if new_extra[i] <= lattice_beam else INF
    else:
        for i in range(n_front):
            tok_extra[first + i] = frontier_extra[i]
    changed = True
    f = frontier - 1
    while f >= 0 and (final or changed or f >= last_pruned):
        first = tok_start[f]
        n = tok_start[f + 1] - first
        new_extra = np.full(n, INF, np.float32)
        _prune_frame_links(f, np.bool_(True), tok_extra, link_src, link_dst, link_excess,
                           tok_start, link_start, link_eps_start, new_extra, lattice_beam)
        changed = False
        for i in range(n):
            e = new_extra[i] if new_extra[i] <= lattice_beam else INF
            old = tok_extra[first + i]
            if e != old and not abs(e - old) <= delta:
                changed = True
            tok_extra[first + i] = e
        lowest = f
        f -= 1
    _compact(toks, links, tok_start, link_start, link_eps_start, counters, lowest)
    counters[LAST_PRUNE] = frontier


@numba.njit(cache=True, nogil=True)
def _compact(toks, links, tok_start, link_start, link_eps_start, counters, lowest):
    """Drop tokens with infinite extra cost and removed links from frame
    ``lowest`` on, renumbering what is left (earlier frames do not move)."""
    tok_state, tok_cost, tok_extra, tok_best = toks[0], toks[1], toks[2], toks[3]
    link_src, link_dst, link_arc, link_ac, link_excess = links[0], links[1], links[2], links[3], links[4]
    frontier = counters[FRAME]
    tok_base = tok_start[lowest]
    link_base = link_start[lowest]
    tok_new = np.empty(counters[NUM_TOKENS] - tok_base, np.int32)
    link_new = np.empty(counters[NUM_LINKS] - link_base, np.int32)
    nt = tok_base
    for f in range(lowest, frontier + 1):
        begin, end = tok_start[f], tok_start[f + 1]
        tok_start[f] = nt
        for k in range(begin, end):
            if tok_extra[k] == INF:
                tok_new[k - tok_base] = -1
                continue
            tok_new[k - tok_base] = nt
            tok_state[nt] = tok_state[k]
            tok_cost[nt] = tok_cost[k]
            tok_extra[nt] = tok_extra[k]
            tok_best[nt] = tok_best[k]
            nt += 1
    tok_start[frontier + 1] = nt
    nl = link_base
    for f in range(lowest, frontier + 1):
        begin, eps_begin, end = link_start[f], link_eps_start[f], link_start[f + 1]
        link_start[f] = nl
        for l in range(begin, end):
            if l == eps_begin:
                link_eps_start[f] = nl
            v = link_dst[l]
            if v < 0 or tok_new[v - tok_base] < 0:
                link_new[l - link_base] = -1
                continue
            u = link_src[l]
            if u >= tok_base:
                u = tok_new[u - tok_base]
                if u < 0:
                    link_new[l - link_base] = -1
                    continue
            link_new[l - link_base] = nl
            link_src[nl] = u
            link_dst[nl] = tok_new[v - tok_base]
            link_arc[nl] = link_arc[l]
            link_ac[nl] = link_ac[l]
            link_excess[nl] = link_excess[l]
            nl += 1
        if eps_begin == end:
            link_eps_start[f] = nl
    link_start[frontier + 1] = nl
    for k in range(tok_base, nt):
        b = tok_best[k]
        if b >= link_base:
            tok_best[k] = link_new[b - link_base]
    counters[NUM_TOKENS] = nt
    counters[NUM_LINKS] = nl
