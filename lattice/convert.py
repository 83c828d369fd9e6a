"""Kaldi's ``ConvertLattice`` both ways: :class:`CompactLattice` <-> :class:`Lattice`.

``compact_to_lattice`` (CompactLattice -> Lattice): an arc with word ``w``,
weight ``W`` and string ``t1 .. tn`` becomes a chain of ``max(n, 1)`` arcs
``t1:w/W, t2:0/One, ..., tn:0/One`` (``0:w/W`` when the string is empty); a
final weight with a non-empty string becomes a chain ``t1:0/W, ...`` into a new
final state of weight One. ``state_frame`` counts the non-epsilon input labels
from the start, so every path to a state must carry equally many (true of
lattices from a decoder, which are frame-synchronous).

``lattice_to_compact`` (Lattice -> CompactLattice, Kaldi's ``Factor``): a state
with exactly one arc in and one arc out, not final, not the start, whose arc out
has no word is the middle of a chain; each chain becomes one arc whose word is
the first arc's output label, whose string is the chain's non-epsilon input
labels and whose weight is the chain's (graph and acoustic costs added in
float32, in chain order). Final weights keep an empty string.

``compact_to_lattice(lattice_to_compact(x))`` has ``x``'s paths and weights;
``lattice_to_compact(compact_to_lattice(c)) == c`` (up to state numbering, which
both number topologically) when ``c`` has no final strings and no state that
the first rule above would remove. Costs are copied, never rescaled.
"""

from __future__ import annotations

import numpy as np

from .compact_lattice import CompactLattice
from .kaldi_fst import build_compact_lattice, build_lattice
from .lattice import Lattice


def compact_to_lattice(clat: CompactLattice) -> Lattice:
    """The state-level :class:`Lattice` of ``clat``; see the module docstring.
    Raises :class:`~lattice.kaldi_fst.KaldiLatticeError` where paths to a state
    read different numbers of frames."""
    S, A = clat.num_states, clat.num_arcs
    arc_len = np.diff(clat.string_start)
    chain = np.maximum(arc_len, 1)  # Lattice arcs per CompactLattice arc
    final_len = np.diff(clat.final_string_start)
    # New states: chain - 1 inside each arc's chain, final_len after each final state.
    arc_base = S + np.concatenate(([0], np.cumsum(chain - 1)))
    final_base = arc_base[-1] + np.concatenate(([0], np.cumsum(final_len)))
    num_states = int(final_base[-1])

    first = np.concatenate(([0], np.cumsum(chain)))[:-1]
    a = np.repeat(np.arange(A), chain)  # owning CompactLattice arc of each new arc
    j = np.arange(len(a)) - first[a]  # position in the chain
    last = j == chain[a] - 1
    src = np.where(j == 0, clat.arc_src[a], arc_base[a] + j - 1)
    dst = np.where(last, clat.arc_dst[a], arc_base[a] + j)
    ilabel = np.zeros(len(a), dtype=np.int32)
    carries = arc_len[a] > 0
    ilabel[carries] = clat.string[(clat.string_start[a] + j)[carries]]
    olabel = np.where(j == 0, clat.arc_word[a], 0)
    graph = np.where(j == 0, clat.arc_graph_cost[a], np.float32(0))
    acoustic = np.where(j == 0, clat.arc_acoustic_cost[a], np.float32(0))

    s = np.repeat(np.arange(S), final_len)  # owning state of each final-chain arc
    k = np.arange(len(s)) - (final_base[s] - final_base[0])  # position in the chain
    f_src = np.where(k == 0, s, final_base[s] + k - 1)
    f_dst = final_base[s] + k
    final_graph = np.full(num_states, np.inf, dtype=np.float32)
    final_acoustic = np.full(num_states, np.inf, dtype=np.float32)
    plain = np.flatnonzero(final_len == 0)
    final_graph[plain] = clat.final_graph_cost[plain]
    final_acoustic[plain] = clat.final_acoustic_cost[plain]
    chain_end = final_base[1:][final_len > 0] - 1
    final_graph[chain_end] = 0
    final_acoustic[chain_end] = 0
    return build_lattice(
        0 if S else -1, final_graph, final_acoustic,
        np.concatenate((src, f_src)), np.concatenate((dst, f_dst)),
        np.concatenate((ilabel, clat.final_string)), np.concatenate((olabel, np.zeros(len(s), np.int32))),
        np.concatenate((graph, np.where(k == 0, clat.final_graph_cost[s], np.float32(0)))),
        np.concatenate((acoustic, np.where(k == 0, clat.final_acoustic_cost[s], np.float32(0)))))


def lattice_to_compact(lat: Lattice) -> CompactLattice:
    """The word-level :class:`CompactLattice` of ``lat``; see the module docstring."""
    return factor(0 if lat.num_states else -1, lat.final_graph_cost, lat.final_acoustic_cost,
                  lat.arc_src, lat.arc_dst, lat.arc_ilabel, lat.arc_olabel,
                  lat.arc_graph_cost, lat.arc_acoustic_cost)


def factor(start, final_graph, final_acoustic, src, dst, ilabel, olabel, graph, acoustic) -> CompactLattice:
    """``lattice_to_compact`` on Kaldi ``Lattice`` arrays in any state order
    (``start`` -1: empty), as a reader needs for a lattice whose states are not
    frame-synchronous."""
    S = len(final_graph)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    out_degree = np.bincount(src, minlength=S)
    final = np.asarray(final_graph) != np.inf
    middle = (np.bincount(dst, minlength=S) == 1) & (out_degree == 1) & ~final
    if start >= 0:
        middle[start] = False
    arc_out = np.zeros(S, dtype=np.int64)  # the arc out of each state with one
    arc_out[src] = np.arange(len(src))
    middle[middle] = np.asarray(olabel)[arc_out[middle]] == 0
    middle_list, arc_out_list = middle.tolist(), arc_out.tolist()
    dst_list, ilabel_list = dst.tolist(), np.asarray(ilabel).tolist()
    graph32, acoustic32 = np.asarray(graph, dtype=np.float32), np.asarray(acoustic, dtype=np.float32)

    heads = np.flatnonzero(~middle[src])
    new_dst, new_graph, new_acoustic, lengths, string = [], [], [], [], []
    for head in heads.tolist():
        g, ac, d = graph32[head], acoustic32[head], dst_list[head]
        labels = [ilabel_list[head]] if ilabel_list[head] else []
        while middle_list[d]:  # float32 sums, in chain order, as Kaldi's Times
            nxt = arc_out_list[d]
            g, ac, d = g + graph32[nxt], ac + acoustic32[nxt], dst_list[nxt]
            if ilabel_list[nxt]:
                labels.append(ilabel_list[nxt])
        new_dst.append(d)
        new_graph.append(g)
        new_acoustic.append(ac)
        lengths.append(len(labels))
        string.extend(labels)
    string_start = np.zeros(len(heads) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64), out=string_start[1:])
    return build_compact_lattice(
        start, final_graph, final_acoustic, np.zeros(S + 1, dtype=np.int64), np.zeros(0, dtype=np.int32),
        src[heads], np.asarray(new_dst, dtype=np.int64), np.asarray(olabel)[heads],
        np.asarray(new_graph, dtype=np.float32), np.asarray(new_acoustic, dtype=np.float32),
        string_start, np.asarray(string, dtype=np.int32))
