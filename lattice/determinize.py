"""Lattice determinization: a word-level :class:`lattice.CompactLattice` with
exactly one path per word sequence of the input, carrying that sequence's best
path (lowest total cost; exact ties: the lexicographically smallest string of
input labels): its graph and acoustic costs and its input labels. This is what
Kaldi's ``lattice-determinize`` produces (without its pruning).

Algorithm: weighted subset construction over the output labels (Mohri;
Kaldi's ``DeterminizeLattice``), in the semiring whose sum keeps the better
(cost, input-label string) and whose product adds costs and concatenates
strings; it is selective, so a subset keeps one residual per lattice state. A
subset is a set of ``(state, residual graph cost, residual acoustic cost,
residual string)``; following word ``w`` from a subset takes the arcs with
output ``w``, then every arc without a word (the closure, in state order: the
lattice is topologically sorted), keeps the best residual per state, and moves
the common part (the best cost, the longest common string prefix) onto the new
arc. States of the closure with neither a word arc nor a final cost leave the
subset (they cannot contribute). The start subset keeps its weights as they are
(no arc carries them). The input is acyclic, so the construction ends; its size
grows with the number of distinct word sequences, so wide lattice beams cost
much more (see ``bench/README.md``, lattice cost).

Implementation (numba): strings are interned in a trie (a node per distinct
string: parent, last label, length, first child, next sibling), so extending a
string by a label is a walk over a few siblings and equal strings have equal
ids; the lexicographic order walks both strings up to where they part. Subsets
are deduplicated by a hash of their elements, compared exactly on a hash match.
``tests/determinize_reference.py`` is the same construction in plain Python;
the two give identical results (``tests/test_lattice_determinize.py``).
"""

from __future__ import annotations

import heapq

import numba
import numpy as np
from numba import types
from numba.typed import Dict

from .compact_lattice import CompactLattice
from .lattice import Lattice

INF = np.inf


# ------------------------------------------------------------------ strings
@numba.njit(cache=True)
def _new_trie():
    """The trie of strings: lists parent, label, length, first child, next
    sibling; node 0 is the empty string."""
    return [np.int64(0)], [np.int64(0)], [np.int64(0)], [np.int64(-1)], [np.int64(-1)]


@numba.njit(cache=True)
def _extend(trie, s, il):
    """The id of string ``s`` followed by label ``il`` (``s`` when ``il`` is 0)."""
    parent, label, length, first_child, next_sibling = trie
    if il == 0:
        return np.int64(s)
    child = first_child[s]
    while child >= 0:
        if label[child] == il:
            return child
        child = next_sibling[child]
    new = np.int64(len(parent))
    parent.append(s)
    label.append(il)
    length.append(length[s] + 1)
    first_child.append(-1)
    next_sibling.append(first_child[s])
    first_child[s] = new
    return new


@numba.njit(cache=True)
def _less(trie, x, y):
    """Whether string ``x`` sorts before string ``y`` (a proper prefix first)."""
    parent, label, length = trie[0], trie[1], trie[2]
    if x == y:
        return False
    while length[x] > length[y]:
        x = parent[x]
    if x == y:  # y is a prefix of the original x
        return False
    while length[y] > length[x]:
        y = parent[y]
    if x == y:  # the original x is a prefix of the original y
        return True
    while parent[x] != parent[y]:
        x, y = parent[x], parent[y]
    return label[x] < label[y]


@numba.njit(cache=True)
def _better(trie, g1, a1, s1, g2, a2, s2):
    """Whether weight ``(g1, a1, s1)`` beats ``(g2, a2, s2)``: lower total cost,
    then the lexicographically smaller string."""
    t1, t2 = g1 + a1, g2 + a2
    return t1 < t2 or (t1 == t2 and _less(trie, s1, s2))


@numba.njit(cache=True)
def _common_prefix(trie, x, y):
    """The longest common prefix of strings ``x`` and ``y``."""
    parent, length = trie[0], trie[2]
    while length[x] > length[y]:
        x = parent[x]
    while length[y] > length[x]:
        y = parent[y]
    while x != y:
        x, y = parent[x], parent[y]
    return x


@numba.njit(cache=True)
def _without_prefix(trie, s, k, scratch):
    """The id of string ``s`` without its first ``k`` labels (``scratch``: at
    least as long as what is left)."""
    parent, label, length = trie[0], trie[1], trie[2]
    n = length[s] - k
    for i in range(n - 1, -1, -1):
        scratch[i] = label[s]
        s = parent[s]
    out = np.int64(0)
    for i in range(n):
        out = _extend(trie, out, scratch[i])
    return out


# ------------------------------------------------------------------ subset construction
@numba.njit(cache=True)
def _closure(trie, seeds, starts, dst, ilabel, olabel, graph, acoustic, keep, best_g, best_a, best_s, stamp,
             current):
    """Extend the seeds (states whose best weights are in ``best_*``, marked
    ``stamp == current``) along arcs without words, in state order; returns the
    reached states that ``keep`` holds (word arcs or a final cost), in order."""
    heap = list(seeds)
    heapq.heapify(heap)
    kept = [np.int64(0) for _ in range(0)]
    while len(heap) > 0:
        q = heapq.heappop(heap)
        g, a, s = best_g[q], best_a[q], best_s[q]
        for arc in range(starts[q], starts[q + 1]):
            if olabel[arc] != 0:
                continue
            d = dst[arc]
            cg, ca, cs = g + graph[arc], a + acoustic[arc], _extend(trie, s, ilabel[arc])
            if stamp[d] != current:
                stamp[d] = current
                best_g[d], best_a[d], best_s[d] = cg, ca, cs
                heapq.heappush(heap, d)
            elif _better(trie, cg, ca, cs, best_g[d], best_a[d], best_s[d]):
                best_g[d], best_a[d], best_s[d] = cg, ca, cs
        if keep[q]:
            kept.append(q)
    return kept


@numba.njit(cache=True)
def _add_subset(subsets, by_hash, kept, best_g, best_a, best_s, g0, a0, residual):
    """The id of the subset of ``kept`` states with weights ``best_* - (g0, a0)``
    and strings ``residual``: an existing equal subset, else a new one."""
    sub_start, el_q, el_g, el_a, el_s, next_same = subsets
    h = np.int64(len(kept))
    for t in range(len(kept)):
        q = kept[t]
        h = h * 1000003 + q
        h = h * 1000003 + residual[t]
        h = h * 1000003 + hash(best_g[q] - g0)
        h = h * 1000003 + hash(best_a[q] - a0)
    first = np.int64(-1)
    if h in by_hash:
        first = by_hash[h]
    j = first
    while j >= 0:
        if sub_start[j + 1] - sub_start[j] == len(kept):
            same = True
            for t in range(len(kept)):
                e, q = sub_start[j] + t, kept[t]
                if el_q[e] != q or el_g[e] != best_g[q] - g0 or el_a[e] != best_a[q] - a0 or el_s[e] != residual[t]:
                    same = False
                    break
            if same:
                return j
        j = next_same[j]
    for t in range(len(kept)):
        q = kept[t]
        el_q.append(q)
        el_g.append(best_g[q] - g0)
        el_a.append(best_a[q] - a0)
        el_s.append(residual[t])
    sub_start.append(len(el_q))
    next_same.append(first)
    by_hash[h] = len(sub_start) - 2
    return len(sub_start) - 2


@numba.njit(cache=True)
def _determinize(num_states, starts, dst, ilabel, olabel, graph, acoustic, final_graph, final_acoustic):
    trie = _new_trie()
    keep = final_graph != INF
    for q in range(num_states):
        for arc in range(starts[q], starts[q + 1]):
            keep[q] |= olabel[arc] != 0
    best_g, best_a = np.zeros(num_states), np.zeros(num_states)
    best_s = np.zeros(num_states, np.int64)
    stamp = np.zeros(num_states, np.int64)  # best_* of a state is this closure's where stamp == its number
    scratch = np.empty(num_states + 1, np.int64)  # a string has at most one label per frame
    i64, f64 = [np.int64(0) for _ in range(0)], [0.0 for _ in range(0)]
    subsets = ([np.int64(0)], list(i64), list(f64), list(f64), list(i64), list(i64))
    by_hash = Dict.empty(types.int64, types.int64)  # subset hash -> the last subset with it
    arcs = (list(i64), list(i64), list(i64), list(f64), list(f64), list(i64))  # src, dst, word, graph, acoustic, string
    stamp[0] = 1
    kept = _closure(trie, [np.int64(0)], starts, dst, ilabel, olabel, graph, acoustic, keep, best_g, best_a, best_s,
                    stamp, np.int64(1))  # (np.int64: see wfst.cpu_search.ZERO)
    _add_subset(subsets, by_hash, kept, best_g, best_a, best_s, 0.0, 0.0, [best_s[q] for q in kept])
    current = 1
    sub_start, el_q, el_g, el_a, el_s = subsets[0], subsets[1], subsets[2], subsets[3], subsets[4]
    i = 0
    while i < len(sub_start) - 1:
        # every word arc out of subset i, in element then arc order, grouped by word (stable)
        cand_w, cand_q, cand_g, cand_a, cand_s = list(i64), list(i64), list(f64), list(f64), list(i64)
        for e in range(sub_start[i], sub_start[i + 1]):
            q, g, a, s = el_q[e], el_g[e], el_a[e], el_s[e]
            for arc in range(starts[q], starts[q + 1]):
                if olabel[arc] != 0:
                    cand_w.append(olabel[arc])
                    cand_q.append(dst[arc])
                    cand_g.append(g + graph[arc])
                    cand_a.append(a + acoustic[arc])
                    cand_s.append(_extend(trie, s, ilabel[arc]))
        order = np.argsort(np.array(cand_w, np.int64), kind="mergesort")
        c = 0
        while c < order.shape[0]:
            w = cand_w[order[c]]
            current += 1
            seeds = [np.int64(0) for _ in range(0)]
            while c < order.shape[0] and cand_w[order[c]] == w:
                k, c = order[c], c + 1
                d = cand_q[k]
                if stamp[d] != current:
                    stamp[d] = current
                    best_g[d], best_a[d], best_s[d] = cand_g[k], cand_a[k], cand_s[k]
                    seeds.append(d)
                elif _better(trie, cand_g[k], cand_a[k], cand_s[k], best_g[d], best_a[d], best_s[d]):
                    best_g[d], best_a[d], best_s[d] = cand_g[k], cand_a[k], cand_s[k]
            kept = _closure(trie, seeds, starts, dst, ilabel, olabel, graph, acoustic, keep, best_g, best_a, best_s,
                            stamp, current)
            if len(kept) == 0:
                continue
            b, prefix = kept[0], best_s[kept[0]]
            for t in range(1, len(kept)):
                q = kept[t]
                if _better(trie, best_g[q], best_a[q], best_s[q], best_g[b], best_a[b], best_s[b]):
                    b = q
                prefix = _common_prefix(trie, prefix, best_s[q])
            k = trie[2][prefix]
            residual = [_without_prefix(trie, best_s[q], k, scratch) if k else best_s[q] for q in kept]
            target = _add_subset(subsets, by_hash, kept, best_g, best_a, best_s, best_g[b], best_a[b], residual)
            arcs[0].append(i)
            arcs[1].append(target)
            arcs[2].append(w)
            arcs[3].append(best_g[b])
            arcs[4].append(best_a[b])
            arcs[5].append(prefix)
        i += 1
    return _assemble(trie, subsets, arcs, final_graph, final_acoustic)


# ------------------------------------------------------------------ output
@numba.njit(cache=True)
def _strings(trie, ids):
    """The label strings of trie nodes ``ids``, concatenated, and their offsets."""
    parent, label, length = trie[0], trie[1], trie[2]
    offsets = np.zeros(len(ids) + 1, np.int64)
    for j in range(len(ids)):
        offsets[j + 1] = offsets[j] + length[ids[j]]
    out = np.empty(offsets[-1], np.int32)
    for j in range(len(ids)):
        s = ids[j]
        for t in range(offsets[j + 1] - 1, offsets[j] - 1, -1):
            out[t] = label[s]
            s = parent[s]
    return offsets, out


@numba.njit(cache=True)
def _assemble(trie, subsets, arcs, final_graph, final_acoustic):
    """The CompactLattice's arrays: subsets renumbered in topological order
    (Kahn, the last ready subset first), arcs sorted by source then word, each
    state's final weight its best element's."""
    sub_start, el_q, el_g, el_a, el_s = subsets[0], subsets[1], subsets[2], subsets[3], subsets[4]
    arc_from, arc_to, arc_word, arc_g, arc_a, arc_str = arcs
    n, m = len(sub_start) - 1, len(arc_from)
    out_start = np.zeros(n + 1, np.int64)
    indegree = np.zeros(n, np.int64)
    for j in range(m):
        out_start[arc_from[j] + 1] += 1
        indegree[arc_to[j]] += 1
    out_start = np.cumsum(out_start)
    out_arcs = np.empty(m, np.int64)
    fill = out_start[:-1].copy()
    for j in range(m):  # a subset's arcs in the order they were made
        out_arcs[fill[arc_from[j]]] = j
        fill[arc_from[j]] += 1
    new_id = np.empty(n, np.int64)
    ready = [np.int64(0)]
    count = 0
    while len(ready) > 0:
        s = ready.pop()
        new_id[s] = count
        count += 1
        for t in range(out_start[s], out_start[s + 1]):
            d = arc_to[out_arcs[t]]
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    key = np.empty(m, np.int64)
    for j in range(m):
        key[j] = new_id[arc_from[j]] * (1 << 31) + arc_word[j]
    order = np.argsort(key)  # keys are distinct: one arc per (subset, word)
    src, dst, word = np.empty(m, np.int32), np.empty(m, np.int32), np.empty(m, np.int32)
    g, a = np.empty(m, np.float32), np.empty(m, np.float32)
    strings = np.empty(m, np.int64)
    for t in range(m):
        j = order[t]
        src[t], dst[t], word[t] = new_id[arc_from[j]], new_id[arc_to[j]], arc_word[j]
        g[t], a[t], strings[t] = arc_g[j], arc_a[j], arc_str[j]
    final_g, final_a = np.full(n, np.inf, np.float32), np.full(n, np.inf, np.float32)
    final_s = np.zeros(n, np.int64)
    for old in range(n):
        found, bg, ba, bs = False, 0.0, 0.0, np.int64(0)
        for e in range(sub_start[old], sub_start[old + 1]):
            q = el_q[e]
            if final_graph[q] != INF:
                cg, ca, cs = el_g[e] + final_graph[q], el_a[e] + final_acoustic[q], el_s[e]
                if not found or _better(trie, cg, ca, cs, bg, ba, bs):
                    found, bg, ba, bs = True, cg, ca, cs
        if found:
            final_g[new_id[old]], final_a[new_id[old]], final_s[new_id[old]] = bg, ba, bs
    string_start, string = _strings(trie, strings)
    final_string_start, final_string = _strings(trie, final_s)
    return src, dst, word, g, a, string_start, string, final_g, final_a, final_string_start, final_string


def determinize(lattice: Lattice) -> CompactLattice:
    """The determinized word lattice of ``lattice`` (see the module docstring);
    a CompactLattice without states for a lattice without states."""
    n = lattice.num_states
    if n == 0:
        no_i, no_f, offsets = np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(1, np.int64)
        return CompactLattice(no_i, no_i, no_i, no_f, no_f, offsets, no_i, no_f, no_f, offsets.copy(), no_i)
    starts = np.searchsorted(lattice.arc_src, np.arange(n + 1)).astype(np.int64)
    return CompactLattice(*_determinize(
        n, starts, lattice.arc_dst.astype(np.int64), lattice.arc_ilabel.astype(np.int64),
        lattice.arc_olabel.astype(np.int64), lattice.arc_graph_cost.astype(np.float64),
        lattice.arc_acoustic_cost.astype(np.float64), lattice.final_graph_cost.astype(np.float64),
        lattice.final_acoustic_cost.astype(np.float64)))
