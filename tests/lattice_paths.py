"""Test helpers for lattices: small random lattices and brute-force
enumeration of every complete path (the naive references of the lattice
operations)."""

import dataclasses

import numpy as np

from lattice import CompactLattice, Lattice

INF = np.float32(np.inf)


def random_costs(rng, n, quantized=False):
    if quantized:  # exact in any printing precision
        return (rng.integers(-40, 80, n) / 8).astype(np.float32)
    return rng.normal(2.0, 3.0, n).astype(np.float32)


def random_lattice(rng, frames=4, width=3, quantized=False) -> Lattice:
    """Frame-synchronous, every state reached: emitting arcs between frames,
    epsilon arcs forward within a frame."""
    sizes = [1] + list(rng.integers(1, width + 1, frames))
    state_frame = np.repeat(np.arange(frames + 1), sizes).astype(np.int32)
    first = np.concatenate(([0], np.cumsum(sizes)))
    src, dst, ilabel = [], [], []
    for f in range(frames + 1):
        for s in range(first[f], first[f + 1]):
            if f:  # at least one emitting arc in
                src.append(int(rng.integers(first[f - 1], first[f]))), dst.append(s), ilabel.append(int(rng.integers(1, 9)))
            if s + 1 < first[f + 1] and rng.random() < 0.5:
                src.append(s), dst.append(int(rng.integers(s + 1, first[f + 1]))), ilabel.append(0)
            if f < frames and rng.random() < 0.5:
                src.append(s), dst.append(int(rng.integers(first[f + 1], first[f + 2]))), ilabel.append(int(rng.integers(1, 9)))
    order = np.argsort(src, kind="stable")
    A, S = len(src), int(first[-1])
    final_graph = np.full(S, INF)
    final_acoustic = np.full(S, INF)
    ends = np.arange(first[-2], S)
    final_graph[ends], final_acoustic[ends] = random_costs(rng, len(ends), quantized), random_costs(rng, len(ends), quantized)
    final_graph[-1] = final_acoustic[-1] = 0  # weight One: left out in text
    return Lattice(
        state_frame=state_frame, arc_src=np.asarray(src, np.int32)[order], arc_dst=np.asarray(dst, np.int32)[order],
        arc_ilabel=np.asarray(ilabel, np.int32)[order],
        arc_olabel=(rng.integers(1, 20, A) * (rng.random(A) < 0.4)).astype(np.int32),
        arc_graph_cost=random_costs(rng, A, quantized), arc_acoustic_cost=random_costs(rng, A, quantized),
        final_graph_cost=final_graph, final_acoustic_cost=final_acoustic)


def lattice_paths(lat: Lattice) -> list[tuple[tuple[int, ...], float, float, tuple[int, ...], tuple[int, ...]]]:
    """Every complete path of ``lat``: ``(arcs, graph cost, acoustic cost,
    words, non-epsilon input labels)``, final cost included, float64 sums."""
    starts = np.searchsorted(lat.arc_src, np.arange(lat.num_states + 1))
    found = []
    stack = [(0, (), 0.0, 0.0)] if lat.num_states else []
    while stack:
        state, arcs, graph, acoustic = stack.pop()
        if np.isfinite(lat.final_graph_cost[state]):
            words = tuple(int(lat.arc_olabel[a]) for a in arcs if lat.arc_olabel[a])
            ilabels = tuple(int(lat.arc_ilabel[a]) for a in arcs if lat.arc_ilabel[a])
            found.append((arcs, graph + float(lat.final_graph_cost[state]),
                          acoustic + float(lat.final_acoustic_cost[state]), words, ilabels))
        for a in range(starts[state], starts[state + 1]):
            stack.append((int(lat.arc_dst[a]), arcs + (a,), graph + float(lat.arc_graph_cost[a]),
                          acoustic + float(lat.arc_acoustic_cost[a])))
    return found


def compact_paths(compact: CompactLattice) -> list[tuple[tuple[int, ...], float, float, tuple[int, ...]]]:
    """Every complete path of a CompactLattice: ``(words, graph cost,
    acoustic cost, string)``, final weight included, float64 sums."""
    found = []
    starts = np.searchsorted(compact.arc_src, np.arange(compact.num_states + 1))
    stack = [(0, (), 0.0, 0.0, ())] if compact.num_states else []
    while stack:
        state, words, graph, acoustic, string = stack.pop()
        if np.isfinite(compact.final_graph_cost[state]):
            tail = compact.final_string[compact.final_string_start[state]:compact.final_string_start[state + 1]]
            found.append((words, graph + float(compact.final_graph_cost[state]),
                          acoustic + float(compact.final_acoustic_cost[state]), string + tuple(tail.tolist())))
        for a in range(starts[state], starts[state + 1]):
            w = int(compact.arc_word[a])
            piece = compact.string[compact.string_start[a]:compact.string_start[a + 1]]
            stack.append((int(compact.arc_dst[a]), words + ((w,) if w else ()),
                          graph + float(compact.arc_graph_cost[a]), acoustic + float(compact.arc_acoustic_cost[a]),
                          string + tuple(piece.tolist())))
    return found


def assert_same_arrays(ours, expected):
    """Two lattices (Lattice or CompactLattice) of one type, every array equal
    in dtype and value."""
    assert type(ours) is type(expected)
    for field in dataclasses.fields(expected):
        got, want = getattr(ours, field.name), getattr(expected, field.name)
        assert got.dtype == want.dtype, field.name
        np.testing.assert_array_equal(got, want, err_msg=field.name)
