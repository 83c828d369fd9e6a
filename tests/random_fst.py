"""Seeded random FSTs made with pynini, covering the cases graph readers get
wrong: epsilon arcs and cycles, several finals, unreachable states, negative
weights, states without arcs, a single state, no states at all."""

from __future__ import annotations

import numpy as np
import pynini

from wfst import CsrFst


def random_pynini_fst(seed: int, max_states: int = 12, max_label: int = 6) -> pynini.Fst:
    rng = np.random.default_rng(seed)
    fst = pynini.Fst()
    if seed % 50 == 7:  # the empty FST: no states, no start
        return fst
    num_states = 1 if seed % 50 == 3 else int(rng.integers(1, max_states + 1))
    for _ in range(num_states):
        fst.add_state()
    fst.set_start(int(rng.integers(num_states)))
    for state in range(num_states):
        if rng.random() < 0.2:  # a state without arcs
            continue
        for _ in range(int(rng.integers(0, 5))):
            ilabel = 0 if rng.random() < 0.3 else int(rng.integers(1, max_label + 1))
            olabel = 0 if rng.random() < 0.4 else int(rng.integers(1, max_label + 1))
            weight = float(np.float32(rng.normal(0.5, 2.0)))  # negative weights too
            fst.add_arc(state, pynini.Arc(ilabel, olabel, weight, int(rng.integers(num_states))))
    for state in rng.choice(num_states, size=int(rng.integers(1, num_states + 1)), replace=False):
        fst.set_final(int(state), float(np.float32(rng.normal(0.0, 1.0))))
    return fst


def csr_via_pynini_api(fst: pynini.Fst) -> CsrFst:
    """The oracle: a CsrFst built from pynini's own Python iteration over states
    and arcs, independent of our binary parsers."""
    rows, finals = [], []
    for state in fst.states():
        final = float(fst.final(state))
        finals.append(final)
        for arc in fst.arcs(state):
            rows.append((state, arc.nextstate, arc.ilabel, arc.olabel, float(arc.weight)))
    table = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return CsrFst.from_arcs(
        len(finals), fst.start(), np.array(finals, dtype=np.float32), table[:, 0].astype(np.int32),
        table[:, 1].astype(np.int32), table[:, 2].astype(np.int32), table[:, 3].astype(np.int32),
        table[:, 4].astype(np.float32),
    ).validate()
