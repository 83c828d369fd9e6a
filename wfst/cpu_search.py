"""The CPU (numba) token-passing search: the executable specification that the
CUDA backend follows. See :mod:`lattice.segments` for the data it produces.

One call of :func:`advance` runs frames of one utterance; all state lives in a
:class:`SearchArrays` tuple so that a search can stop after any chunk and resume
(streaming). Frame ``f`` holds the tokens after ``f`` score rows; frame 0 is the
epsilon closure of the start state.

Per frame (score row ``r = f``, building frame ``f + 1``), as Kaldi's
LatticeFasterDecoder, but with every choice independent of processing order:

1. **Cutoff** over frame ``f``'s tokens (Kaldi's GetCutoff): ``best + beam``,
   tightened to the ``max_active``-th smallest cost (then ``adaptive_beam =
   that - best + BEAM_DELTA``) or loosened to the ``min_active``-th smallest.
   Tokens with ``cost <= cutoff`` are expanded.
2. **Emitting expansion.** Each arc of an expanded token gives ``(cost + ac) +
   weight`` with ``ac = -(acoustic_scale * loglike)`` in float32. A first pass
   finds the cheapest, so that ``bound = cheapest + adaptive_beam`` is exact
   (Kaldi tightens the same bound as it goes, which depends on order; where
   float32 rounds the sum back to ``cheapest``, at costs beyond about 2**23 x
   the beam, the bound is the float just above it, keeping the cheapest); a second
   pass makes or improves, for each arc below ``bound``, the token of its next
   state, and adds a lattice link.
3. **Epsilon closure** under the same ``bound``: Bellman-Ford with a FIFO queue
   until no epsilon arc improves a cost (the fixpoint of float32 path costs,
   unique whatever the order); then one link per epsilon arc from a token below
   the bound whose result is below it.
4. **Best predecessor** of each token: among the links that achieve its cost
   exactly, those with the fewest epsilon hops since the last emitting arc
   (breadth-first over achieving links, so zero-cost epsilon cycles never form a
   loop), then the lowest arc index. This is the tie rule both backends share.
5. Every ``prune_interval`` frames, lattice pruning (:mod:`wfst.cpu_lattice_prune`).

Status codes returned in ``counters[STATUS]``: 0 ok, 1 a negative-cost epsilon
cycle was met in the search (a float32 cycle that the float64 graph check cannot
see).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from lattice.errors import LatticeError

from .cost_select import kth_smallest
from .cpu_lattice_prune import FRAME, INF, LAST_PRUNE, NUM_LINKS, NUM_TOKENS, prune_lattice

BEAM_DELTA = np.float32(0.5)
"""Slack added to the adaptive beam when max_active or min_active sets it (Kaldi's
``beam_delta``): keeps a few tokens beyond the cap so that the next frame's cap has
candidates to choose from."""
PRUNE_SCALE = np.float32(0.1)
"""Interim lattice pruning stops walking back once extra costs change by less than
``PRUNE_SCALE * lattice_beam`` (Kaldi's ``prune_scale``); the final pruning is exact."""

NO_HOPS = np.int32(2**31 - 1)
ZERO = np.int64(0)
"""0 as the jitted functions pass it to each other: numba compiles a callee once
for each pattern of literal constants among its arguments (``0``, ``True``), so
constants go as ``ZERO``, ``np.int64(n)`` or ``np.bool_(b)``, typed like the
variables passed elsewhere (with literal constants, the first ``wfst-decode example``
compiled 11 of these functions two to six times and took 58-59 s instead of 40 s on the
development VM)."""

# counters[...] slots: the first four are shared with the lattice pruning
STATUS, EXPANDED = 4, 5
STATUS_OK, STATUS_NEGATIVE_CYCLE = 0, 1


class SearchArrays(NamedTuple):
    """The whole state of one utterance's search (all numpy arrays, some grown
    by the kernels, so callers always take the returned tuple).

    Tokens (global index ``k``): ``tok_state`` int32, ``tok_cost`` float32 (total
    cost so far), ``tok_extra`` float32 (lattice pruning's extra cost),
    ``tok_best`` int32 (index of the token's best incoming link, -1 for the start
    token). Links (global index ``l``): ``link_src``, ``link_dst`` (token indices),
    ``link_arc`` (graph arc index) int32, ``link_ac`` float32 (acoustic cost,
    0 for epsilon arcs) and ``link_excess`` float32 (``(cost[src] + ac +
    weight[arc]) - cost[dst]`` in float32, set once the frame is closed: 0 for
    links achieving their token's cost; lattice pruning reads it instead of the
    graph's weights at random). Frames: ``tok_start[f]`` / ``link_start[f]`` (int64) are
    the first token / link of frame ``f``; ``link_eps_start[f]`` the first of its
    epsilon links (its emitting links come first). ``state_hash`` (int32, 2 x
    a power of two: graph states and their tokens in the frame being built, open
    addressing, empty (-1) between frames) and ``scratch_i32`` (rows named below) are work
    space.
    ``counters`` int64: see the ``FRAME``... slot names (``EXPANDED``: tokens
    expanded so far, Kaldi's "active tokens" summed over frames).
    """

    tok_state: np.ndarray
    tok_cost: np.ndarray
    tok_extra: np.ndarray
    tok_best: np.ndarray
    link_src: np.ndarray
    link_dst: np.ndarray
    link_arc: np.ndarray
    link_ac: np.ndarray
    link_excess: np.ndarray
    tok_start: np.ndarray
    link_start: np.ndarray
    link_eps_start: np.ndarray
    state_hash: np.ndarray
    scratch_i32: np.ndarray
    counters: np.ndarray


# rows of scratch_i32, one column per token of a frame: the first rows are work
# space for the frame being built; ARCS_* hold each of its tokens' arc ranges
# (emitting begin/end, epsilon begin/end, copied from ``state_arcs`` once, so
# later passes read them in token order), FRONT_* the emitting ranges of the
# frontier's tokens (the frame the next score row expands).
HOPS, QUEUE, TIMES_QUEUED, EPS_BEGIN, EPS_END, QUEUED, SLOT = range(7)
ARCS_E0, ARCS_E1, ARCS_N0, ARCS_N1, FRONT_E0, FRONT_E1 = range(7, 13)
SCRATCH_I32_ROWS = 13


@numba.njit(cache=True, nogil=True)
def new_search_arrays(frames=256, tokens=4096, links=16384, hash_slots=8192, frame_tokens=1024):
    """Empty search state (the arrays of a :class:`SearchArrays`, as a tuple)
    with room for ``frames`` frames, ``tokens`` tokens, ``links`` links,
    ``hash_slots`` hash slots (a power of two) and ``frame_tokens`` tokens in
    one frame (all grown as needed)."""
    return (np.empty(tokens, np.int32), np.empty(tokens, np.float32), np.empty(tokens, np.float32),
            np.empty(tokens, np.int32), np.empty(links, np.int32), np.empty(links, np.int32),
            np.empty(links, np.int32), np.empty(links, np.float32), np.empty(links, np.float32),
            np.zeros(frames + 2, np.int64), np.zeros(frames + 2, np.int64), np.zeros(frames + 2, np.int64),
            np.full((2, hash_slots), -1, np.int32), np.empty((SCRATCH_I32_ROWS, frame_tokens), np.int32),
            np.zeros(6, np.int64))


@numba.njit(cache=True, nogil=True)
def _grown(a, need):
    """``a`` itself if it holds ``need`` elements, else a copy with room for at
    least ``need`` (doubling, so appends stay amortised O(1))."""
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0]), a.dtype)
    b[: a.shape[0]] = a
    return b


@numba.njit(cache=True, nogil=True)
def _grown_rows(a, need):
    if need <= a.shape[1]:
        return a
    b = np.empty((a.shape[0], max(need, 2 * a.shape[1])), a.dtype)
    b[:, : a.shape[1]] = a
    return b


@numba.njit(cache=True, nogil=True)
def _cutoff(costs, beam, max_active, min_active):
    """(cutoff, adaptive_beam) of one frame's token costs, as Kaldi's GetCutoff
    (``costs`` is left as it is)."""
    n = costs.shape[0]
    best = INF
    for i in range(n):
        if costs[i] < best:
            best = costs[i]
    beam_cutoff = best + beam
    below, within = 0, 0  # costs < and <= beam_cutoff: the selects only run when they can matter
    for i in range(n):
        if costs[i] <= beam_cutoff:
            within += 1
            if costs[i] < beam_cutoff:
                below += 1
    if below > max_active:  # else the max_active-th smallest is >= beam_cutoff
        max_active_cutoff = kth_smallest(costs, max_active)
        if max_active_cutoff < beam_cutoff:
            return max_active_cutoff, max_active_cutoff - best + BEAM_DELTA
    if n > min_active and within > min_active:  # the min_active-th smallest is <= beam_cutoff
        return beam_cutoff, beam
    min_active_cutoff = INF
    if n > min_active:
        if min_active == 0:
            min_active_cutoff = best
        else:
            min_active_cutoff = kth_smallest(costs, min_active)
    if min_active_cutoff > beam_cutoff:
        return min_active_cutoff, min_active_cutoff - best + BEAM_DELTA
    return beam_cutoff, beam


@numba.njit(cache=True, nogil=True)
def _grown_tokens(toks, need):
    """The four token arrays with room for ``need`` tokens."""
    return (_grown(toks[0], need), _grown(toks[1], need), _grown(toks[2], need), _grown(toks[3], need))


@numba.njit(cache=True, nogil=True)
def _grown_links(links, need):
    """The link arrays with room for ``need`` links."""
    return (_grown(links[0], need), _grown(links[1], need), _grown(links[2], need), _grown(links[3], need),
            _grown(links[4], need))


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(keys, state):
    """The hash slot holding ``state``, or the empty slot where it would go
    (open addressing, linear probing; the table is never more than half full)."""
    mask = keys.shape[0] - 1
    h = np.uint32(state) * np.uint32(2654435761)
    slot = np.int64((h ^ (h >> np.uint32(16))) & np.uint32(mask))
    while keys[slot] != state and keys[slot] != -1:
        slot = (slot + 1) & mask
    return slot


@numba.njit(cache=True, nogil=True)
def _rehashed(table, tok_state, first_tok, n_frame, slots, need_slots):
    """A table with at least ``need_slots`` slots (at least twice as many as
    before) holding the frame's ``n_frame`` tokens (updates ``slots``)."""
    size = 2 * table.shape[1]
    while size < need_slots:
        size *= 2
    bigger = np.full((2, size), -1, np.int32)
    for i in range(n_frame):
        state = tok_state[first_tok + i]
        slot = _slot(bigger[0], state)
        bigger[0, slot] = state
        bigger[1, slot] = first_tok + i
        slots[i] = slot
    return bigger


# The hot loops below run on arrays that they never replace (in numba, rebinding
# an array variable inside a loop costs reference counting on every iteration).
# Each one stops before a token whose arcs might not fit; its caller grows the
# arrays with _with_room and calls it again from there.

@numba.njit(cache=True, nogil=True, inline="always")
def _has_room(tok_room, link_room, table_slots, width, first_tok, nt, nl, more_tokens, more_links):
    """Whether ``more_tokens`` tokens can join the frame being built (tokens
    ``first_tok`` to ``nt``) and ``more_links`` links can follow link ``nl``,
    given the sizes of the token and link arrays, the hash table and the scratch
    rows."""
    n = nt - first_tok + more_tokens
    return nt + more_tokens <= tok_room and nl + more_links <= link_room and 2 * n <= table_slots and n + 1 <= width


@numba.njit(cache=True, nogil=True)
def _with_room(toks, links, table, scratch, first_tok, nt, nl, more_tokens, more_links, head, size):
    """The search arrays grown as :func:`_has_room` needs (the hash table kept at
    most half full). The circular queue (``head``, ``size``) in the QUEUE row
    stays contiguous from ``head``."""
    n = nt - first_tok + more_tokens
    toks = _grown_tokens(toks, nt + more_tokens)
    links = _grown_links(links, nl + more_links)
    if 2 * n > table.shape[1]:
        table = _rehashed(table, toks[0], first_tok, nt - first_tok, scratch[SLOT], 2 * n)
    width = scratch.shape[1]
    if n + 1 > width:
        scratch = _grown_rows(scratch, n + 1)
        for k in range(max(head + size - width, 0)):
            scratch[QUEUE, width + k] = scratch[QUEUE, k]
    return toks, links, table, scratch


@numba.njit(cache=True, nogil=True, inline="always")
def _find_or_add(table, tok_state, tok_cost, tok_extra, tok_best, slots, state, cost, first_tok, nt):
    """(token of ``state`` in the frame being built, token count after): made
    with ``cost`` if new. The caller has checked the room."""
    slot = _slot(table[0], state)
    if table[0, slot] == state:
        return table[1, slot], nt
    tok_state[nt] = state
    tok_cost[nt] = cost
    tok_extra[nt] = 0.0
    tok_best[nt] = -1
    table[0, slot] = state
    table[1, slot] = nt
    slots[nt - first_tok] = slot
    return nt, nt + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _store_arc_ranges(state_arcs, state, scratch, i):
    """Copy ``state``'s emitting and epsilon arc ranges into column ``i`` of the
    ARCS_* rows."""
    scratch[ARCS_E0, i] = state_arcs[state, 0]
    scratch[ARCS_E1, i] = state_arcs[state + 1, 0]
    scratch[ARCS_N0, i] = state_arcs[state, 1]
    scratch[ARCS_N1, i] = state_arcs[state + 1, 1]


@numba.njit(cache=True, nogil=True)
def beam_bound(cheapest, beam):
    """``cheapest + beam`` in float32, or the float just above ``cheapest``
    where the sum rounds back to it (costs beyond about 2**23 x beam), so the
    cheapest candidate is always kept."""
    bound = cheapest + beam
    if bound > cheapest or not cheapest < INF:
        return bound
    return np.float32(np.nextafter(cheapest, INF))


@numba.njit(cache=True, nogil=True)
def _emitting_bound(arc_int, arc_float, ac_of_ilabel, tok_cost, scratch, first_prev, end, cutoff):
    """The cheapest ``(cost + ac) + weight`` over the emitting arcs of the
    frontier tokens (``first_prev`` to ``end``) with ``cost <= cutoff``."""
    touched = np.int32(0)  # first, load each range's ends in one pass: the misses overlap
    for k in range(first_prev, end):
        a0, a1 = scratch[FRONT_E0, k - first_prev], scratch[FRONT_E1, k - first_prev]
        if tok_cost[k] <= cutoff and a0 < a1:
            touched += arc_int[a0, 0] + arc_int[a1 - 1, 0]
    scratch[HOPS, 0] = touched  # keeps the loads (the row is work space, rewritten later)
    best = INF
    for k in range(first_prev, end):
        cu = tok_cost[k]
        if not cu <= cutoff:
            continue
        for a in range(scratch[FRONT_E0, k - first_prev], scratch[FRONT_E1, k - first_prev]):
            c = (cu + ac_of_ilabel[arc_int[a, 1]]) + arc_float[a, 2]
            if c < best:
                best = c
    return best


@numba.njit(cache=True, nogil=True)
def _expand_emitting(arc_int, arc_float, ac_of_ilabel, tok_state, tok_cost, tok_extra, tok_best,
                     link_src, link_dst, link_arc, link_ac, table, scratch,
                     first_prev, k, cutoff, bound, first_tok, nt, nl):
    """Step 2: from frontier token ``k`` on, each arc of a token with ``cost <=
    cutoff`` whose result is below ``bound`` makes or improves its next state's
    token and adds a link. Returns (token to resume from, nt, nl, tokens expanded)."""
    slots = scratch[SLOT]
    tok_room, link_room, table_slots, width = tok_state.shape[0], link_src.shape[0], table.shape[1], scratch.shape[1]
    expanded = 0
    while k < first_tok:
        cu = tok_cost[k]
        if cu <= cutoff:
            a0, a1 = scratch[FRONT_E0, k - first_prev], scratch[FRONT_E1, k - first_prev]
            if not _has_room(tok_room, link_room, table_slots, width, first_tok, nt, nl, a1 - a0, a1 - a0):
                break
            expanded += 1
            for a in range(a0, a1):
                ac = ac_of_ilabel[arc_int[a, 1]]
                c = (cu + ac) + arc_float[a, 2]
                if not c < bound:
                    continue
                v, nt_after = _find_or_add(table, tok_state, tok_cost, tok_extra, tok_best, slots, arc_int[a, 0], c,
                                           first_tok, nt)
                if nt_after > nt:
                    nt = nt_after
                elif c < tok_cost[v]:
                    tok_cost[v] = c
                link_src[nl] = k
                link_dst[nl] = v
                link_arc[nl] = a
                link_ac[nl] = ac
                nl += 1
        k += 1
    return k, nt, nl, expanded


@numba.njit(cache=True, nogil=True)
def _relax_epsilon(state_arcs, arc_int, arc_float, tok_state, tok_cost, tok_extra, tok_best, table, scratch,
                   first_tok, nt, head, size, cutoff):
    """Step 3: FIFO Bellman-Ford over epsilon arcs below ``cutoff`` from the
    queue (``head``, ``size``: circular over the QUEUE row) until it is empty.
    Returns (nt, head, size, status); ``size > 0`` with status OK asks for room."""
    slots = scratch[SLOT]
    tok_room, table_slots, width = tok_state.shape[0], table.shape[1], scratch.shape[1]
    while size > 0:
        i = scratch[QUEUE, head]
        u = first_tok + i
        cu = tok_cost[u]
        a0, a1 = scratch[ARCS_N0, i], scratch[ARCS_N1, i]
        if cu < cutoff and not _has_room(tok_room, 0, table_slots, width, first_tok, nt, 0, a1 - a0, 0):
            break
        head += 1
        if head == width:
            head = 0
        size -= 1
        scratch[QUEUED, i] = 0
        if not cu < cutoff:
            continue
        for a in range(a0, a1):
            c = cu + arc_float[a, 2]
            if not c < cutoff:
                continue
            v, nt_after = _find_or_add(table, tok_state, tok_cost, tok_extra, tok_best, slots, arc_int[a, 0], c,
                                       first_tok, nt)
            j = v - first_tok
            if nt_after > nt:
                nt = nt_after
                scratch[TIMES_QUEUED, j] = 0
                scratch[QUEUED, j] = 0
                _store_arc_ranges(state_arcs, arc_int[a, 0], scratch, j)
            elif c < tok_cost[v]:
                tok_cost[v] = c
            else:
                continue
            if scratch[QUEUED, j] == 0:
                # FIFO Bellman-Ford queues a token at most once a pass (it may lower it many times in one, once
                # for each predecessor in the queue), and a shortest path takes at most one pass per token
                scratch[TIMES_QUEUED, j] += 1
                if scratch[TIMES_QUEUED, j] > nt - first_tok + 1:
                    return nt, head, size, STATUS_NEGATIVE_CYCLE
                scratch[QUEUED, j] = 1
                tail = head + size
                if tail >= width:
                    tail -= width
                scratch[QUEUE, tail] = j
                size += 1
    return nt, head, size, STATUS_OK


@numba.njit(cache=True, nogil=True)
def _epsilon_links(arc_int, arc_float, tok_cost, link_src, link_dst, link_arc, link_ac, link_excess, table, scratch,
                   first_tok, i, n_frame, eps_start, nl, cutoff):
    """Step 3, end: a link for each epsilon arc from a token below ``cutoff``
    whose result is below it, grouped by source token (the EPS_BEGIN/EPS_END
    rows, relative to ``eps_start``), from frame token ``i`` on. Returns (frame
    token to resume from, nl)."""
    keys, values = table[0], table[1]
    while i < n_frame:
        u = first_tok + i
        cu = tok_cost[u]
        a0, a1 = scratch[ARCS_N0, i], scratch[ARCS_N1, i]
        if cu < cutoff and nl + (a1 - a0) > link_src.shape[0]:
            break
        scratch[EPS_BEGIN, i] = nl - eps_start
        if cu < cutoff:
            for a in range(a0, a1):
                c = cu + arc_float[a, 2]
                if c < cutoff:
                    v = values[_slot(keys, arc_int[a, 0])]
                    link_src[nl] = u
                    link_dst[nl] = v
                    link_arc[nl] = a
                    link_ac[nl] = 0.0
                    link_excess[nl] = c - tok_cost[v]
                    nl += 1
        scratch[EPS_END, i] = nl - eps_start
        i += 1
    return i, nl


@numba.njit(cache=True, nogil=True)
def _best_links(arc_float, tok_cost, tok_best, link_src, link_dst, link_arc, link_ac, link_excess, scratch,
                first_tok, n_frame, first_link, eps_start, is_start_frame):
    """Step 4: the emitting links' excess costs, then each token's best
    incoming link by breadth-first search over the links achieving their
    token's cost (excess 0). Returns the status."""
    hops, queue = scratch[HOPS], scratch[QUEUE]
    for i in range(n_frame):
        hops[i] = NO_HOPS
    size = 0
    for l in range(first_link, eps_start):
        v = link_dst[l]
        excess = ((tok_cost[link_src[l]] + link_ac[l]) + arc_float[link_arc[l], 2]) - tok_cost[v]
        link_excess[l] = excess
        if excess == 0.0:
            j = v - first_tok
            if hops[j] != 0:
                hops[j] = 0
                queue[size] = j
                size += 1
                tok_best[v] = l
            elif link_arc[l] < link_arc[tok_best[v]]:
                tok_best[v] = l
    if is_start_frame:
        hops[0] = 0  # the start token: the root of every path
        queue[size] = 0
        size += 1
    head = 0
    while head < size:
        i = queue[head]
        head += 1
        for k in range(scratch[EPS_BEGIN, i], scratch[EPS_END, i]):
            l = eps_start + k
            v = link_dst[l]
            j = v - first_tok
            if link_excess[l] != 0.0:
                continue
            if hops[j] == NO_HOPS:
                hops[j] = hops[i] + 1
                queue[size] = j
                size += 1
                tok_best[v] = l
            elif hops[j] == hops[i] + 1 and link_arc[l] < link_arc[tok_best[v]]:
                tok_best[v] = l
    if size < n_frame:
        return STATUS_NEGATIVE_CYCLE  # a token no achieving path reaches: a float32 negative cycle
    return STATUS_OK


@numba.njit(cache=True, nogil=True)
def _close_frame(state_arcs, arc_int, arc_float, toks, links, table, scratch,
                 first_tok, first_link, nt, nl, cutoff, is_start_frame):
    """Epsilon closure, epsilon links and best predecessors of the frame whose
    tokens start at ``first_tok`` and links at ``first_link`` (its emitting links
    already added; in the start frame, token ``first_tok`` is the start token).
    Empties the hash table again and makes the frame the frontier. Returns
    (toks, links, table, scratch, nt, nl, eps_start, status)."""
    n_emitted = nt - first_tok
    tok_cost = toks[1]
    touched = np.int32(0)
    for i in range(n_emitted):  # independent loads: the cache misses overlap
        _store_arc_ranges(state_arcs, toks[0][first_tok + i], scratch, i)
        scratch[QUEUE, i] = i
        scratch[QUEUED, i] = 1
        scratch[TIMES_QUEUED, i] = 0
    for i in range(n_emitted):  # the same for the epsilon arcs the closure reads first
        a0 = scratch[ARCS_N0, i]
        if a0 < scratch[ARCS_N1, i] and tok_cost[first_tok + i] < cutoff:
            touched += arc_int[a0, 0]
    scratch[HOPS, 0] = touched  # keeps the loads (the row is work space, rewritten later)
    head, size = ZERO, n_emitted
    while True:
        nt, head, size, status = _relax_epsilon(state_arcs, arc_int, arc_float, toks[0], toks[1], toks[2], toks[3],
                                                table, scratch, first_tok, nt, head, size, cutoff)
        if size == 0 or status != STATUS_OK:
            break
        i = scratch[QUEUE, head]
        toks, links, table, scratch = _with_room(toks, links, table, scratch, first_tok, nt, nl,
                                                 scratch[ARCS_N1, i] - scratch[ARCS_N0, i], ZERO, head, size)
    n_frame = nt - first_tok
    eps_start = nl
    if status == STATUS_OK:
        i = ZERO
        while True:
            i, nl = _epsilon_links(arc_int, arc_float, toks[1], links[0], links[1], links[2], links[3], links[4], table,
                                   scratch, first_tok, i, n_frame, eps_start, nl, cutoff)
            if i == n_frame:
                break
            toks, links, table, scratch = _with_room(toks, links, table, scratch, first_tok, nt, nl, ZERO,
                                                     scratch[ARCS_N1, i] - scratch[ARCS_N0, i], ZERO, ZERO)
        status = _best_links(arc_float, toks[1], toks[3], links[0], links[1], links[2], links[3], links[4], scratch,
                             first_tok, n_frame, first_link, eps_start, is_start_frame)
    for i in range(n_frame):
        table[0, scratch[SLOT, i]] = -1
        scratch[FRONT_E0, i] = scratch[ARCS_E0, i]
        scratch[FRONT_E1, i] = scratch[ARCS_E1, i]
    return toks, links, table, scratch, nt, nl, eps_start, status


@numba.njit(cache=True, nogil=True)
def start_search(state_arcs, arc_int, arc_float, start, beam, sa):
    """Frame 0: the start token and its epsilon closure (cutoff ``beam``)."""
    counters = sa[14]
    toks, links, table, scratch = _with_room((sa[0], sa[1], sa[2], sa[3]), (sa[4], sa[5], sa[6], sa[7], sa[8]),
                                             sa[12], sa[13], ZERO, ZERO, ZERO, np.int64(1), ZERO, ZERO, ZERO)
    _, nt = _find_or_add(table, toks[0], toks[1], toks[2], toks[3], scratch[SLOT], start, np.float32(0.0), 0, 0)
    toks, links, table, scratch, nt, nl, eps_start, status = _close_frame(
        state_arcs, arc_int, arc_float, toks, links, table, scratch, ZERO, ZERO, nt, ZERO, np.float32(beam),
        np.bool_(True))
    tok_start, link_start, link_eps_start = sa[9], sa[10], sa[11]
    tok_start[0] = 0
    tok_start[1] = nt
    link_start[0] = 0
    link_start[1] = nl
    link_eps_start[0] = 0
    counters[FRAME] = 0
    counters[NUM_TOKENS] = nt
    counters[NUM_LINKS] = nl
    counters[LAST_PRUNE] = 0
    counters[STATUS] = status
    return (toks[0], toks[1], toks[2], toks[3], links[0], links[1], links[2], links[3], links[4],
            tok_start, link_start, link_eps_start, table, scratch, counters)


@numba.njit(cache=True, nogil=True)
def advance(state_arcs, arc_int, arc_float, column_of_ilabel, scores, acoustic_scale,
            beam, max_active, min_active, lattice_beam, prune_interval, sa):
    """Run every row of ``scores`` (float32, frames x columns) and return the new
    search arrays. Stops early, with ``counters[STATUS] != 0``, on error."""
    toks = (sa[0], sa[1], sa[2], sa[3])
    links = (sa[4], sa[5], sa[6], sa[7], sa[8])
    tok_start, link_start, link_eps_start = sa[9], sa[10], sa[11]
    table, scratch, counters = sa[12], sa[13], sa[14]
    ac_of_ilabel = np.empty(column_of_ilabel.shape[0], np.float32)
    scale = np.float32(acoustic_scale)
    for r in range(scores.shape[0]):
        f = counters[FRAME]
        nt = counters[NUM_TOKENS]
        nl = counters[NUM_LINKS]
        tok_start = _grown(tok_start, f + 3)
        link_start = _grown(link_start, f + 3)
        link_eps_start = _grown(link_eps_start, f + 3)
        for i in range(1, column_of_ilabel.shape[0]):
            col = column_of_ilabel[i]
            if col >= 0:
                ac_of_ilabel[i] = -(scale * scores[r, col])
        first_prev = tok_start[f]
        # 1. cutoff
        cutoff, adaptive_beam = _cutoff(toks[1][first_prev:nt], np.float32(beam), max_active, min_active)
        # 2. emitting expansion: first the exact bound, then the tokens below it
        bound = beam_bound(_emitting_bound(arc_int, arc_float, ac_of_ilabel, toks[1], scratch, first_prev, nt,
                                            cutoff), adaptive_beam)
        first_tok = nt
        first_link = nl
        k = first_prev
        while True:
            k, nt, nl, expanded = _expand_emitting(
                arc_int, arc_float, ac_of_ilabel, toks[0], toks[1], toks[2], toks[3], links[0], links[1], links[2],
                links[3], table, scratch, first_prev, k, cutoff, bound, first_tok, nt, nl)
            counters[EXPANDED] += expanded
            if k == first_tok:
                break
            more = scratch[FRONT_E1, k - first_prev] - scratch[FRONT_E0, k - first_prev]
            toks, links, table, scratch = _with_room(toks, links, table, scratch, first_tok, nt, nl, more, more, ZERO,
                                                     ZERO)
        # 3-4. closure and best predecessors
        toks, links, table, scratch, nt, nl, eps_start, status = _close_frame(
            state_arcs, arc_int, arc_float, toks, links, table, scratch,
            first_tok, first_link, nt, nl, bound, np.bool_(False))
        f += 1
        tok_start[f] = first_tok
        tok_start[f + 1] = nt
        link_start[f] = first_link
        link_start[f + 1] = nl
        link_eps_start[f] = eps_start
        counters[FRAME] = f
        counters[NUM_TOKENS] = nt
        counters[NUM_LINKS] = nl
        if status != STATUS_OK:
            counters[STATUS] = status
            break
        # 5. interim lattice pruning
        if f % prune_interval == 0:
            prune_lattice(toks, links, tok_start, link_start, link_eps_start, counters,
                          np.float32(lattice_beam), PRUNE_SCALE * np.float32(lattice_beam),
                          np.zeros(nt - tok_start[f], np.float32), np.bool_(False))
    return (toks[0], toks[1], toks[2], toks[3], links[0], links[1], links[2], links[3], links[4],
            tok_start, link_start, link_eps_start, table, scratch, counters)


@numba.njit(cache=True, nogil=True)
def _best_frontier_token(tok_state, tok_cost, first, end, final, with_final):
    """Lowest ``cost (+ final)``, then lowest state id; -1 if the frontier is empty."""
    best = -1
    best_total = INF
    for k in range(first, end):
        total = tok_cost[k] + final[tok_state[k]] if with_final else tok_cost[k]
        if best < 0 or total < best_total or (total == best_total and tok_state[k] < tok_state[best]):
            best = k
            best_total = total
    return best


@numba.njit(cache=True, nogil=True)
def finish_search(final, use_final_probs, lattice_beam, sa):
    """Final lattice pruning with final costs, then the best frontier token.

    Final costs count when ``use_final_probs`` and some frontier token is in a
    final state (``reached_final``). Returns (best token or -1, reached_final).
    """
    tok_state, tok_cost = sa[0], sa[1]
    tok_start, counters = sa[9], sa[14]
    frontier = counters[FRAME]
    first, end = tok_start[frontier], tok_start[frontier + 1]
    reached_final = False
    for k in range(first, end):
        if final[tok_state[k]] < INF:
            reached_final = True
    with_final = use_final_probs and reached_final
    best = _best_frontier_token(tok_state, tok_cost, first, end, final, with_final)
    extra = np.empty(end - first, np.float32)
    if best >= 0:
        best_total = tok_cost[best] + final[tok_state[best]] if with_final else tok_cost[best]
        for k in range(first, end):
            total = tok_cost[k] + final[tok_state[k]] if with_final else tok_cost[k]
            extra[k - first] = total - best_total
    prune_lattice((sa[0], sa[1], sa[2], sa[3]), (sa[4], sa[5], sa[6], sa[7], sa[8]), tok_start, sa[10], sa[11],
                  counters, np.float32(lattice_beam), np.float32(0.0), extra, np.bool_(True))
    first, end = tok_start[frontier], tok_start[frontier + 1]
    return _best_frontier_token(tok_state, tok_cost, first, end, final, with_final), reached_final


@numba.njit(cache=True, nogil=True)
def best_path_links(token, tok_best, link_src):
    """The links of the best path into ``token``, first to last (int64).
    LatticeError if the best links run in a cycle (segments from a faulty device)."""
    n = 0
    k = token
    while tok_best[k] >= 0:
        n += 1
        if n > tok_best.size:
            raise LatticeError("lattice segments: the best links run in a cycle")
        k = link_src[tok_best[k]]
    path = np.empty(n, np.int64)
    k = token
    while tok_best[k] >= 0:
        n -= 1
        path[n] = tok_best[k]
        k = link_src[tok_best[k]]
    return path
