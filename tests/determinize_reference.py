"""The pure-Python lattice determinization that :mod:`lattice.determinize`
(numba) must reproduce bit for bit: the same weighted subset construction,
written plainly with dictionaries and tuples (one dictionary operation per
arc visit, so slow on wide lattices). See :mod:`lattice.determinize` for the
semantics."""

from __future__ import annotations

import heapq

import numpy as np

from lattice.compact_lattice import CompactLattice
from lattice.lattice import Lattice


def _better(x, y) -> bool:
    """Whether weight ``x`` = (graph, acoustic, string) beats ``y``."""
    tx, ty = x[0] + x[1], y[0] + y[1]
    return tx < ty or (tx == ty and x[2] < y[2])


class _Determinizer:
    def __init__(self, lattice: Lattice):
        n = lattice.num_states
        starts = np.searchsorted(lattice.arc_src, np.arange(n + 1)).tolist()
        dst = lattice.arc_dst.tolist()
        ilabel = lattice.arc_ilabel.tolist()
        olabel = lattice.arc_olabel.tolist()
        graph = lattice.arc_graph_cost.astype(np.float64).tolist()
        acoustic = lattice.arc_acoustic_cost.astype(np.float64).tolist()
        # per state: its arcs without a word, and with one: (dst, ilabel, olabel, graph, acoustic)
        self.eps_arcs = [[] for _ in range(n)]
        self.word_arcs = [[] for _ in range(n)]
        for s in range(n):
            for a in range(starts[s], starts[s + 1]):
                arc = (dst[a], ilabel[a], olabel[a], graph[a], acoustic[a])
                (self.word_arcs if olabel[a] else self.eps_arcs)[s].append(arc)
        self.final = list(zip(lattice.final_graph_cost.astype(np.float64).tolist(),
                              lattice.final_acoustic_cost.astype(np.float64).tolist()))

    def closure(self, seeds: dict) -> dict:
        """``seeds`` (state -> weight) extended along arcs without words, best
        weight per state; only states with word arcs or a final cost kept."""
        best = dict(seeds)
        heap = list(seeds)
        heapq.heapify(heap)
        kept = {}
        while heap:
            q = heapq.heappop(heap)
            g, a, s = best[q]
            for d, il, _, ag, aa in self.eps_arcs[q]:
                cand = (g + ag, a + aa, s + (il,) if il else s)
                if d not in best:
                    best[d] = cand
                    heapq.heappush(heap, d)
                elif _better(cand, best[d]):
                    best[d] = cand
            if self.word_arcs[q] or self.final[q][0] != np.inf:
                kept[q] = best[q]
        return kept

    def run(self) -> CompactLattice:
        start = self.closure({0: (0.0, 0.0, ())})
        key_of = {}
        subsets = []
        arcs = []  # (src subset, dst subset, word, graph, acoustic, string)

        def subset_id(elements: dict) -> int:
            key = tuple(sorted((q, g, a, s) for q, (g, a, s) in elements.items()))
            if key not in key_of:
                key_of[key] = len(subsets)
                subsets.append(elements)
            return key_of[key]

        subset_id(start)
        i = 0
        while i < len(subsets):
            elements = subsets[i]
            by_word: dict[int, dict] = {}
            for q, (g, a, s) in elements.items():
                for d, il, w, ag, aa in self.word_arcs[q]:
                    cand = (g + ag, a + aa, s + (il,) if il else s)
                    seeds = by_word.setdefault(w, {})
                    if d not in seeds or _better(cand, seeds[d]):
                        seeds[d] = cand
            for w in sorted(by_word):
                reached = self.closure(by_word[w])
                if not reached:
                    continue
                g0, a0, s0 = min(reached.values(), key=lambda x: (x[0] + x[1], x[2]))
                prefix = _common_prefix([s for _, _, s in reached.values()])
                k = len(prefix)
                residual = {q: (g - g0, a - a0, s[k:]) for q, (g, a, s) in reached.items()}
                arcs.append((i, subset_id(residual), w, g0, a0, prefix))
            i += 1
        return _compact(subsets, arcs, self.final)


def _common_prefix(strings: list) -> tuple:
    first = min(strings)
    last = max(strings)  # the common prefix of all is that of the extremes
    k = 0
    while k < len(first) and k < len(last) and first[k] == last[k]:
        k += 1
    return first[:k]


def _compact(subsets: list, arcs: list, final: list) -> CompactLattice:
    """Subsets renumbered in topological order, arcs sorted by source."""
    n = len(subsets)
    out = [[] for _ in range(n)]
    indegree = [0] * n
    for j, (src, dst, *_rest) in enumerate(arcs):
        out[src].append(j)
        indegree[dst] += 1
    order = []
    ready = [0] if n else []
    while ready:  # Kahn, state 0 first (it has no incoming arcs)
        s = ready.pop()
        order.append(s)
        for j in out[s]:
            d = arcs[j][1]
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    new_id = np.empty(n, np.int64)
    new_id[order] = np.arange(n)
    ordered = sorted(arcs, key=lambda arc: (new_id[arc[0]], arc[2]))
    final_graph = np.full(n, np.inf, np.float32)
    final_acoustic = np.full(n, np.inf, np.float32)
    final_strings = [()] * n
    for old, elements in enumerate(subsets):
        best = None
        for q, (g, a, s) in elements.items():
            fg, fa = final[q]
            if fg != np.inf and (best is None or _better((g + fg, a + fa, s), best)):
                best = (g + fg, a + fa, s)
        if best is not None:
            new = new_id[old]
            final_graph[new], final_acoustic[new], final_strings[new] = best
    strings = [arc[5] for arc in ordered]
    return CompactLattice(
        arc_src=np.array([new_id[a[0]] for a in ordered], np.int32),
        arc_dst=np.array([new_id[a[1]] for a in ordered], np.int32),
        arc_word=np.array([a[2] for a in ordered], np.int32),
        arc_graph_cost=np.array([a[3] for a in ordered], np.float32),
        arc_acoustic_cost=np.array([a[4] for a in ordered], np.float32),
        string_start=np.cumsum([0] + [len(s) for s in strings], dtype=np.int64),
        string=np.array([x for s in strings for x in s], np.int32),
        final_graph_cost=final_graph,
        final_acoustic_cost=final_acoustic,
        final_string_start=np.cumsum([0] + [len(s) for s in final_strings], dtype=np.int64),
        final_string=np.array([x for s in final_strings for x in s], np.int32),
    )


def determinize(lattice: Lattice) -> CompactLattice:
    """The determinized word lattice of ``lattice`` (see the module docstring);
    a CompactLattice without states for a lattice without states."""
    if lattice.num_states == 0:
        return _compact([], [], [])
    return _Determinizer(lattice).run()
