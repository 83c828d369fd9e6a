"""Assembly of a :class:`lattice.Lattice` from one utterance's
:class:`lattice.LatticeSegments` and the decoding graph.

Each token becomes a state (state 0 the start token, wherever it is in frame
0), each link an arc with the graph arc's input and output labels, the graph
arc's weight as graph cost and ``link_ac`` as acoustic cost. Frontier tokens
get final costs: the graph's final cost when the config uses final
probabilities and a final state was reached (``inf`` for non-final states),
else 0 (every frontier token ends a path, as in Kaldi). The result is then
pruned exactly with ``lattice_beam`` (:mod:`lattice.prune`); the soft pruning
of the search is conservative, so the segments hold a superset of what stays.

**Epsilon cycles.** Epsilon links stay inside their frame, and where the graph
has epsilon cycles they can form cycles between the tokens of one frame (of
any non-negative cost; only in graphs with epsilon cycles, never in a CTC TLG
or a Kaldi HCLG without empty words). A lattice is acyclic, so assembly
unrolls each strongly connected component ``C`` of a frame's epsilon links
(Tarjan) into layers by the number of epsilon hops taken inside ``C``: layer
0 holds a copy of each member entered from outside, an epsilon link ``u -> v``
inside ``C`` goes from ``u``'s copy in layer ``h`` to ``v``'s in layer
``h + 1``, and links leaving ``C`` leave from every copy. A layer is added
while some copy in it lies on a path within ``lattice_beam`` of the best (its
forward cost plus its token's backward cost) and at most
``(|C| - 1) + |C| * floor(lattice_beam / r)`` hops, ``r`` the smallest positive
reduced cost (``cost[src] + link cost - cost[dst]``) of a link inside ``C``
(a cycle costs the sum of its links' reduced costs, so a path within the beam
goes around at most ``lattice_beam / r`` cycles of positive cost), or
``|C| - 1`` hops when no link inside ``C`` has a word (going around a cycle
without words gives the same words at no lower cost). So the lattice keeps,
for every word sequence within the beam, its best path, provided zero-cost
epsilon cycles carry no words (with words on one, a word sequence could
repeat it forever at no cost; the copies stop at the bound). Frames without epsilon cycles (all of them, on the usual graphs) get
exactly one state per token.

The states and arcs are then pruned exactly and numbered canonically
(:mod:`lattice.canonical`: by frame, epsilon depth and graph state), so
the lattice depends on what the segments hold, not on their token order: both
backends' lattices are equal array for array.
"""

from __future__ import annotations

import numba
import numpy as np

from .errors import LatticeError
from .lattice import Lattice
from .canonical import canonical_order
from .prune import beam_limit, check_beam, gathered, kept_parts
from .segments import LatticeSegments

MAX_LAYERS = 1 << 16
"""Cap on the layers of one unrolled epsilon component (reached only with a
tiny positive cycle cost and a wide beam; see the module docstring)."""


def assemble(segments: LatticeSegments, fst, *, lattice_beam: float, use_final_probs: bool = True) -> Lattice:
    """The pruned :class:`Lattice` of ``segments`` decoded on ``fst`` (a
    :class:`wfst.CsrFst`: ``ilabel``, ``olabel``, ``weight``, ``final``).

    ``lattice_beam``: the pruning beam (cost units, acoustic scale applied);
    ``use_final_probs``: the decoder config's, final costs count when it is
    set and ``segments.reached_final``. An empty lattice (no states) when no
    token survived the search."""
    lattice_beam = check_beam(lattice_beam)
    if segments.best_token < 0 or segments.num_tokens == 0:
        return Lattice.empty()
    s = segments
    arrays, roots = lattice_arrays(s.tok_start, s.tok_state, s.tok_cost, s.tok_best, s.link_src, s.link_dst,
                                   s.link_arc, s.link_ac, s.link_start, s.link_eps_start, fst.ilabel, fst.olabel,
                                   fst.weight, fst.final, use_final_probs and s.reached_final, lattice_beam)
    return lattice_of(arrays, roots)


def lattice_of(arrays: tuple, roots: int) -> Lattice:
    """The :class:`Lattice` of :func:`lattice_arrays`' outcome; LatticeError
    when frame 0 did not have exactly one start token."""
    if roots != 1:
        raise LatticeError(f"lattice segments: frame 0 has {roots} tokens without a best link, not one start token")
    return Lattice(*arrays) if arrays[0].shape[0] else Lattice.empty()


@numba.njit(cache=True, nogil=True)
def lattice_arrays(tok_start, tok_state, tok_cost, tok_best, link_src, link_dst, link_arc, link_ac, link_start,
                   link_eps_start, graph_ilabel, graph_olabel, graph_weight, graph_final, with_final, lattice_beam):
    """The nine arrays of the pruned lattice of a search's segments (their
    arrays as :class:`LatticeSegments` names them, at least one token; final
    costs count when ``with_final``) and the number of start tokens, frame
    0's tokens without a best incoming link (first in the CPU's frame 0,
    anywhere in the GPU's): the arrays are empty unless it is 1. One call
    (nothing between its parts holds the GIL)."""
    i32, f32 = np.zeros(0, np.int32), np.zeros(0, np.float32)
    empty = (i32, i32, i32, i32, i32, f32, f32, f32, f32)
    start, roots = np.int64(-1), 0  # (np.int64: see wfst.cpu_search.ZERO)
    for k in range(tok_start[0], tok_start[1]):
        if tok_best[k] < 0:
            start = k if roots == 0 else start
            roots += 1
    if roots != 1:
        return empty, roots
    max_nodes, max_arcs = tok_state.shape[0] + 16, link_src.shape[0] + 16
    while True:  # one state per token and one arc per link unless epsilon cycles unroll
        arrays, short = _assembled(tok_start, tok_state, tok_cost, link_src, link_dst, link_arc, link_ac,
                                   link_start, link_eps_start, graph_ilabel, graph_olabel, graph_weight, graph_final,
                                   with_final, start, lattice_beam, max_nodes, max_arcs)
        if short == 0:
            return arrays, 1
        max_nodes, max_arcs = 2 * max_nodes, 2 * max_arcs


@numba.njit(cache=True, nogil=True)
def _assembled(tok_start, tok_state, tok_cost, link_src, link_dst, link_arc, link_ac, link_start, link_eps_start,
               graph_ilabel, graph_olabel, graph_weight, graph_final, with_final, start, lattice_beam, max_nodes,
               max_arcs):
    """The nine arrays of the pruned lattice (:class:`Lattice`'s fields in
    order; no states when no path reaches the frontier) and 0, or empty arrays
    and :func:`_unroll`'s shortage code when ``max_nodes`` or ``max_arcs`` are
    too few (the caller retries with more). One call per utterance: the graph's
    labels and weights gathered once per link, the raw lattice built in source
    order, pruned (:func:`lattice.prune.kept_parts`) and numbered canonically
    (:func:`lattice.canonical.canonical_order`)."""
    frames = tok_start.shape[0] - 2
    num_links = link_src.shape[0]
    link_weight = np.empty(num_links, np.float32)
    link_olabel = np.empty(num_links, np.int32)
    link_cost = np.empty(num_links)
    for l in range(num_links):
        a = link_arc[l]
        link_weight[l] = graph_weight[a]
        link_olabel[l] = graph_olabel[a]
        link_cost[l] = np.float64(link_ac[l]) + np.float64(graph_weight[a])
    first_frontier = tok_start[frames]
    frontier_final = np.zeros(tok_start[frames + 1] - first_frontier)
    if with_final:
        for k in range(frontier_final.shape[0]):
            frontier_final[k] = graph_final[tok_state[first_frontier + k]]
    beta = _token_backward(tok_start, link_src, link_dst, link_cost, link_start, link_eps_start, frontier_final)
    best = beta[start]
    i32, f32 = np.zeros(0, np.int32), np.zeros(0, np.float32)
    empty = (i32, i32, i32, i32, i32, f32, f32, f32, f32)
    if not np.isfinite(best):
        return empty, 0
    node_tok, arc_src, arc_dst, arc_link, short = _unroll(
        tok_start, tok_cost, link_src, link_dst, link_cost, link_olabel, link_start, link_eps_start, beta,
        beam_limit(best, lattice_beam), lattice_beam, start, max_nodes, max_arcs)
    if short != 0:
        return empty, short
    num_states, num_arcs = node_tok.shape[0], arc_src.shape[0]
    tok_frame = np.empty(tok_start[frames + 1], np.int32)
    for f in range(frames + 1):
        tok_frame[tok_start[f]:tok_start[f + 1]] = f
    state_frame = np.empty(num_states, np.int32)
    state_graph_state = np.empty(num_states, np.int32)
    final_graph = np.full(num_states, np.inf, np.float32)
    final_acoustic = np.full(num_states, np.inf, np.float32)
    for i in range(num_states):
        k = node_tok[i]
        state_frame[i] = tok_frame[k]
        state_graph_state[i] = tok_state[k]
        if k >= first_frontier:
            final_graph[i] = np.float32(frontier_final[k - first_frontier])
            if np.isfinite(final_graph[i]):
                final_acoustic[i] = 0.0
    order = _by_source(arc_src, num_states)
    src, dst = np.empty(num_arcs, np.int32), np.empty(num_arcs, np.int32)
    ilabel, olabel = np.empty(num_arcs, np.int32), np.empty(num_arcs, np.int32)
    graph_cost, acoustic_cost = np.empty(num_arcs, np.float32), np.empty(num_arcs, np.float32)
    graph_arc = np.empty(num_arcs, np.int32)
    for j in range(num_arcs):
        a = order[j]
        l = arc_link[a]
        src[j], dst[j] = arc_src[a], arc_dst[a]
        graph_arc[j] = link_arc[l]
        ilabel[j] = graph_ilabel[link_arc[l]]
        olabel[j] = link_olabel[l]
        graph_cost[j] = link_weight[l]
        acoustic_cost[j] = link_ac[l]
    keep_state, keep_arc, keep_final = kept_parts(num_states, src, dst, graph_cost, acoustic_cost, final_graph,
                                                  final_acoustic, lattice_beam)
    states, arcs = canonical_order(state_frame, state_graph_state, keep_state, src, dst, graph_arc, keep_arc)
    return gathered(states, arcs, state_frame, src, dst, ilabel, olabel, graph_cost, acoustic_cost, final_graph,
                    final_acoustic, keep_final), 0


@numba.njit(cache=True, nogil=True)
def _by_source(arc_src, num_states):
    """The arcs in order of source state, in their given order within one (a
    counting sort, stable: O(arcs + states))."""
    start = np.zeros(num_states + 1, np.int64)
    for a in range(arc_src.shape[0]):
        start[arc_src[a] + 1] += 1
    for i in range(num_states):
        start[i + 1] += start[i]
    order = np.empty(arc_src.shape[0], np.int64)
    for a in range(arc_src.shape[0]):
        order[start[arc_src[a]]] = a
        start[arc_src[a]] += 1
    return order


@numba.njit(cache=True, nogil=True)
def _token_backward(tok_start, link_src, link_dst, link_cost, link_start, link_eps_start, frontier_final):
    """Cheapest cost from each token to the end (float64), over the possibly
    cyclic segments: frames from last to first, epsilon links of a frame
    relaxed to their fixpoint (no negative cycles: the graph check rejects
    them)."""
    frames = tok_start.shape[0] - 2
    beta = np.full(tok_start[frames + 1], np.inf)
    first = tok_start[frames]
    for k in range(first, tok_start[frames + 1]):
        beta[k] = frontier_final[k - first]
    for f in range(frames, -1, -1):
        if f < frames:
            for l in range(link_start[f + 1], link_eps_start[f + 1]):
                c = link_cost[l] + beta[link_dst[l]]
                if c < beta[link_src[l]]:
                    beta[link_src[l]] = c
        for _ in range(tok_start[f + 1] - tok_start[f] + 1):
            changed = False
            for l in range(link_start[f + 1] - 1, link_eps_start[f] - 1, -1):
                c = link_cost[l] + beta[link_dst[l]]
                if c < beta[link_src[l]]:
                    beta[link_src[l]] = c
                    changed = True
            if not changed:
                break
    return beta


@numba.njit(cache=True, nogil=True)
def _strong_components(n, offsets, targets, work, on_stack):
    """Tarjan's strongly connected components of a graph on ``n`` nodes
    (``targets[offsets[i]:offsets[i + 1]]`` the successors of ``i``), without
    recursion. ``work``: int64 scratch of shape (6, >= n); ``on_stack``: bool
    scratch of >= n, all False (and left so). Returns (component of each node,
    a view of ``work``; number of components); components are numbered in
    reverse topological order."""
    index, low, stack, call_node, call_edge, comp = work[0], work[1], work[2], work[3], work[4], work[5]
    index[:n] = -1
    sp = 0
    counter = 0
    ncomp = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        depth = 0
        call_node[0] = root
        call_edge[0] = offsets[root]
        index[root] = counter
        low[root] = counter
        counter += 1
        stack[sp] = root
        sp += 1
        on_stack[root] = True
        while depth >= 0:
            v = call_node[depth]
            e = call_edge[depth]
            if e < offsets[v + 1]:
                call_edge[depth] = e + 1
                w = targets[e]
                if index[w] < 0:
                    index[w] = counter
                    low[w] = counter
                    counter += 1
                    stack[sp] = w
                    sp += 1
                    on_stack[w] = True
                    depth += 1
                    call_node[depth] = w
                    call_edge[depth] = offsets[w]
                elif on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
            else:
                if low[v] == index[v]:
                    while True:
                        sp -= 1
                        w = stack[sp]
                        on_stack[w] = False
                        comp[w] = ncomp
                        if w == v:
                            break
                    ncomp += 1
                depth -= 1
                if depth >= 0 and low[v] < low[call_node[depth]]:
                    low[call_node[depth]] = low[v]
    return comp[:n], ncomp


@numba.njit(cache=True, nogil=True)
def _unroll(tok_start, tok_cost, link_src, link_dst, link_cost, link_olabel, link_start, link_eps_start, beta,
            limit, lattice_beam, start, max_nodes, max_arcs):
    """Lattice states and arcs of the segments (see the module docstring),
    ``start`` the start token, at most ``max_nodes`` states and ``max_arcs``
    arcs. Returns (token of each state, arc sources, arc destinations, link of
    each arc; states in topological order, a token's copies layer by layer,
    arcs unsorted), and 0, or 1 when the
    states would exceed ``max_nodes``, 2 the arcs ``max_arcs`` (the arrays are
    then incomplete). The arrays never grow in place: a rebound array variable
    makes numba's loops several times slower, and only epsilon cycles need more
    room than one state per token and one arc per link."""
    frames = tok_start.shape[0] - 2
    num_tokens = tok_start[frames + 1]
    node_base = np.zeros(num_tokens, np.int64)  # copy h of token k: node_base[k] + h * node_stride[k]
    node_stride = np.ones(num_tokens, np.int64)
    node_count = np.ones(num_tokens, np.int64)
    node_tok = np.empty(max_nodes, np.int64)
    node_alpha = np.empty(max_nodes, np.float64)
    nn = 0
    arc_src = np.empty(max_arcs, np.int64)
    arc_dst = np.empty(max_arcs, np.int64)
    arc_link = np.empty(max_arcs, np.int64)
    na = 0
    # per-frame scratch, allocated once for the largest frame
    widest = max(np.max(tok_start[1:] - tok_start[:-1]), 1)
    most_eps = max(np.max(link_start[1:] - link_eps_start), 1)
    alpha0_buf = np.empty(widest)
    offsets_buf = np.empty(widest + 1, np.int64)
    fill_buf = np.empty(widest, np.int64)
    out_links_buf = np.empty(most_eps, np.int64)
    targets_buf = np.empty(most_eps, np.int64)
    order_buf = np.empty(widest, np.int64)
    comp_start_buf = np.empty(widest + 1, np.int64)
    pos = np.empty(widest, np.int64)
    work = np.empty((6, widest), np.int64)
    on_stack = np.zeros(widest, np.bool_)
    for f in range(frames + 1):
        t0, t1 = tok_start[f], tok_start[f + 1]
        n = t1 - t0
        alpha0 = alpha0_buf[:n]
        alpha0[:] = np.inf
        if f == 0:
            alpha0[start - t0] = 0.0
        else:
            for l in range(link_start[f], link_eps_start[f]):
                u = link_src[l]
                v = link_dst[l] - t0
                for h in range(node_count[u]):
                    c = node_alpha[node_base[u] + h * node_stride[u]] + link_cost[l]
                    if c < alpha0[v]:
                        alpha0[v] = c
        e0, e1 = link_eps_start[f], link_start[f + 1]
        offsets = offsets_buf[:n + 1]
        offsets[:] = 0
        for l in range(e0, e1):
            offsets[link_src[l] - t0 + 1] += 1
        for i in range(n):
            offsets[i + 1] += offsets[i]
        fill = fill_buf[:n]
        fill[:] = offsets[:n]
        out_links = out_links_buf[:e1 - e0]
        targets = targets_buf[:e1 - e0]
        for l in range(e0, e1):
            i = link_src[l] - t0
            out_links[fill[i]] = l
            targets[fill[i]] = link_dst[l] - t0
            fill[i] += 1
        comp, ncomp = _strong_components(n, offsets, targets, work, on_stack)
        comp_start = comp_start_buf[:ncomp + 1]
        comp_start[:] = 0
        for i in range(n):
            comp_start[comp[i] + 1] += 1
        for c in range(ncomp):
            comp_start[c + 1] += comp_start[c]
        order = order_buf[:n]  # tokens by component, in token order within one (a stable sort)
        fill[:ncomp] = comp_start[:ncomp]
        for i in range(n):
            order[fill[comp[i]]] = i
            fill[comp[i]] += 1
        if f == 0:  # the start token first in its component: the lattice's state 0
            first = comp_start[comp[start - t0]]
            for j in range(first, comp_start[comp[start - t0] + 1]):
                if order[j] == start - t0:
                    order[j] = order[first]
                    order[first] = start - t0
        for c in range(ncomp - 1, -1, -1):  # topological order
            members = order[comp_start[c]:comp_start[c + 1]]
            size = members.shape[0]
            cyclic = size > 1
            if not cyclic:
                i = members[0]
                for e in range(offsets[i], offsets[i + 1]):
                    if targets[e] == i:
                        cyclic = True
            layers = 1
            max_hops = 0
            if cyclic:
                r_min = np.inf
                has_words = False
                for j in range(size):
                    i = members[j]
                    pos[i] = j
                    for e in range(offsets[i], offsets[i + 1]):
                        w = targets[e]
                        if comp[w] == c:
                            has_words = has_words or link_olabel[out_links[e]] != 0
                            r = np.float64(tok_cost[t0 + i]) + link_cost[out_links[e]] - np.float64(tok_cost[t0 + w])
                            if r > 0.0 and r < r_min:
                                r_min = r
                if not has_words:
                    r_min = np.inf  # a cycle without words never helps: simple paths suffice
                cycles = min(lattice_beam / r_min, MAX_LAYERS)  # 0 when no link inside has a positive cost
                max_hops = min(size - 1 + size * int(cycles), MAX_LAYERS)
            if nn + size > max_nodes:
                return node_tok[:nn], arc_src[:na], arc_dst[:na], arc_link[:na], 1
            base = nn
            for j in range(size):
                node_tok[nn] = t0 + members[j]
                node_alpha[nn] = alpha0[members[j]]
                nn += 1
            if cyclic:
                while layers <= max_hops:
                    prev = base + (layers - 1) * size
                    cur = np.full(size, np.inf)
                    for j in range(size):
                        a = node_alpha[prev + j]
                        if a == np.inf:
                            continue
                        i = members[j]
                        for e in range(offsets[i], offsets[i + 1]):
                            w = targets[e]
                            if comp[w] == c:
                                x = a + link_cost[out_links[e]]
                                if x < cur[pos[w]]:
                                    cur[pos[w]] = x
                    within = False
                    for j in range(size):
                        if cur[j] + beta[t0 + members[j]] <= limit:
                            within = True
                    if not within:
                        break
                    if nn + size > max_nodes:
                        return node_tok[:nn], arc_src[:na], arc_dst[:na], arc_link[:na], 1
                    for j in range(size):
                        node_tok[nn] = t0 + members[j]
                        node_alpha[nn] = cur[j]
                        nn += 1
                    layers += 1
            for j in range(size):
                k = t0 + members[j]
                node_base[k] = base + j
                node_stride[k] = size
                node_count[k] = layers
            for j in range(size):  # relax the links leaving the component, from every copy
                i = members[j]
                for e in range(offsets[i], offsets[i + 1]):
                    w = targets[e]
                    if comp[w] != c:
                        for h in range(layers):
                            x = node_alpha[base + h * size + j] + link_cost[out_links[e]]
                            if x < alpha0[w]:
                                alpha0[w] = x
        # arcs into this frame: emitting links (from every copy of the source), epsilon links
        for l in range(link_start[f], link_start[f + 1]):
            u = link_src[l]
            v = link_dst[l]
            inside = l >= e0 and comp[u - t0] == comp[v - t0]
            count = node_count[u] - 1 if inside else node_count[u]
            if na + count > max_arcs:
                return node_tok[:nn], arc_src[:na], arc_dst[:na], arc_link[:na], 2
            for h in range(count):
                arc_src[na] = node_base[u] + h * node_stride[u]
                arc_dst[na] = node_base[v] + (h + 1) * node_stride[v] if inside else node_base[v]
                arc_link[na] = l
                na += 1
    return node_tok[:nn], arc_src[:na], arc_dst[:na], arc_link[:na], 0
