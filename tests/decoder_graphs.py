"""Hand-made graphs for decoder behaviour tests."""

import numpy as np

from tests.lattice_paths import assert_same_arrays
from wfst import CsrFst


def graph(num_states, start, finals, arcs):
    """``arcs``: (src, dst, ilabel, olabel, weight) rows in file order;
    ``finals``: {state: cost}."""
    final = np.full(num_states, np.inf, np.float32)
    for state, cost in finals.items():
        final[state] = cost
    table = np.array(arcs, np.float64).reshape(-1, 5)
    return CsrFst.from_arcs(num_states, start, final, table[:, 0].astype(np.int32), table[:, 1].astype(np.int32),
                           table[:, 2].astype(np.int32), table[:, 3].astype(np.int32),
                           table[:, 4].astype(np.float32)).validate()


def epsilon_fan_in():
    """States 1-4 (costs 4, 3, 2, 1 after the first frame, queued in that order)
    each have an epsilon arc into state 6, the final one; state 5 (cost 0) has
    epsilon arcs lowering 1-4 to 0.4 ... 0.1. No epsilon cycle, best cost 0.1,
    yet a FIFO closure lowers state 6's token seven times in a frame of six
    tokens: once per predecessor in each pass (the shape of n-gram back-off
    arcs into one back-off state)."""
    arcs = [(0, i, 1, 0, float(5 - i)) for i in (1, 2, 3, 4)] + [(0, 5, 1, 0, 0.0)]
    arcs += [(i, 6, 0, 0, 0.0) for i in (1, 2, 3, 4)] + [(5, i, 0, 0, (5 - i) / 10) for i in (1, 2, 3, 4)]
    return graph(7, 0, {6: 0.0}, arcs)


def flat_scores(frames, columns=2):
    """Every column equally likely: only graph costs decide."""
    return np.full((frames, columns), np.log(1.0 / columns), np.float32)


def assert_same_results(a, b):
    """Two :class:`wfst.Result` s are equal to the bit: best path, costs,
    alignment, word frames and every lattice array."""
    assert (a.words, a.cost, a.graph_cost, a.acoustic_cost, a.reached_final, a.word_frames) == \
        (b.words, b.cost, b.graph_cost, b.acoustic_cost, b.reached_final, b.word_frames)
    np.testing.assert_array_equal(a.alignment, b.alignment)
    assert_same_arrays(a.lattice, b.lattice)
