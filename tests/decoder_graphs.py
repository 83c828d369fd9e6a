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
