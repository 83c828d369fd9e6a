"""The canonical numbering of an assembled lattice: states and arcs in an
order that depends only on what the lattice holds, never on the order in
which a search made its tokens and links.

The CPU search numbers a frame's tokens as it makes them, the GPU's as its
threads' atomics fall out; both keep the same lattice (pruning is exact), so
numbered canonically their lattices are equal array for array, and whatever
breaks ties by state or arc number (:func:`lattice.best_path`, n-best lists)
breaks them alike on both backends.

States go by frame, then by epsilon depth within the frame (the most arcs of a
chain within the frame that leads to the state: an epsilon arc always goes to a
deeper state, so the order stays topological), then by graph state. A frame
has one token per graph state, so only copies of one token (an unrolled
epsilon cycle's: :mod:`lattice.assemble`) can tie; they keep their order, layer
by layer. Arcs go by source, then destination, then graph arc (one link per
graph arc and source token, so this order is total).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def canonical_order(state_frame, state_graph_state, keep_state, arc_src, arc_dst, arc_graph_arc, keep_arc):
    """``(states, arcs)``: the kept states (``keep_state``) and kept arcs
    (``keep_arc``) of a lattice in canonical order (see the module docstring),
    as int64 indices into the given ones. Per state its frame and graph state;
    per arc its ends and graph arc. The given states must go by frame and list
    a token's copies layer by layer, the arcs go forward and be sorted by source
    (as :mod:`lattice.assemble` makes them), each kept arc between kept states.
    Linear but for the sorts within a frame and a source, which are small."""
    num_states = state_frame.shape[0]
    depth = np.zeros(num_states, np.int64)
    for a in range(arc_src.shape[0]):  # sorted by source: a source's depth is final before its arcs
        s, d = arc_src[a], arc_dst[a]
        if keep_arc[a] and state_frame[s] == state_frame[d] and depth[s] >= depth[d]:
            depth[d] = depth[s] + 1
    states = np.flatnonzero(keep_state)
    key = np.empty(states.shape[0], np.int64)
    for i in range(states.shape[0]):
        key[i] = (depth[states[i]] << 31) | state_graph_state[states[i]]
    first = np.int64(0)  # (np.int64: see wfst.cpu_search.ZERO)
    for i in range(1, states.shape[0] + 1):  # each frame's run of states
        if i == states.shape[0] or state_frame[states[i]] != state_frame[states[first]]:
            _sort_run(states, key, first, i)
            first = i
    new_id = np.full(num_states, -1, np.int64)
    for i in range(states.shape[0]):
        new_id[states[i]] = i
    start = np.zeros(states.shape[0] + 1, np.int64)  # each new source's run of arcs
    for a in range(arc_src.shape[0]):
        if keep_arc[a]:
            start[new_id[arc_src[a]] + 1] += 1
    for i in range(states.shape[0]):
        start[i + 1] += start[i]
    arcs = np.empty(start[-1], np.int64)
    key = np.empty(start[-1], np.int64)
    fill = start[:-1].copy()
    for a in range(arc_src.shape[0]):
        if keep_arc[a]:
            j = fill[new_id[arc_src[a]]]
            arcs[j] = a
            key[j] = (new_id[arc_dst[a]] << 31) | arc_graph_arc[a]
            fill[new_id[arc_src[a]]] += 1
    for i in range(states.shape[0]):
        if start[i + 1] - start[i] > 1:  # (most states have one arc out)
            _sort_run(arcs, key, start[i], start[i + 1])
    return states, arcs


@numba.njit(cache=True, nogil=True)
def _sort_run(order, key, lo, hi):
    """Sort ``order[lo:hi]`` by ``key[lo:hi]`` (both in place), ties in their
    given order: insertion sort for a short run, a merge sort for a long one."""
    if hi - lo <= 32:
        for i in range(lo + 1, hi):
            k, o = key[i], order[i]
            j = i - 1
            while j >= lo and key[j] > k:
                key[j + 1], order[j + 1] = key[j], order[j]
                j -= 1
            key[j + 1], order[j + 1] = k, o
        return
    by = np.argsort(key[lo:hi], kind="mergesort")
    order[lo:hi] = order[lo:hi][by]
    key[lo:hi] = key[lo:hi][by]
