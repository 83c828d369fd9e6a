"""Seeded random decoding graphs and score matrices for the decoder oracles:
epsilon arcs and cycles, several (or no) final states, non-determinism, negative
weights, but never a negative-cost epsilon cycle (epsilon weights are a state
potential difference plus a non-negative part, so every epsilon cycle costs >= 0;
it is 0 only on cycles without output labels, so that best word sequences are
unique)."""

from __future__ import annotations

import numpy as np

from wfst import CsrFst


def random_graph(seed: int, max_states: int = 10, num_columns: int = 4, zero_cycles: bool = True,
                 step: float = 0.0, epsilon_arcs: int = 2) -> CsrFst:
    """``zero_cycles=False`` keeps every epsilon cycle strictly positive: OpenFst's
    shortest distance may not terminate on a zero cycle that float rounding makes
    slightly negative. ``step`` > 0 (a power of two) rounds every weight to a
    multiple of it, so that paths often tie (their float32 sums exact).
    ``epsilon_arcs``: the most epsilon arcs a state has."""
    def grid(x: float) -> float:
        return round(x / step) * step if step else x

    rng = np.random.default_rng(seed)
    num_states = int(rng.integers(1, max_states + 1))
    potential = rng.integers(0, 25, num_states) / 8.0  # exact in float32: zero cycles stay exactly zero
    src, dst, ilabel, olabel, weight = [], [], [], [], []
    for s in range(num_states):
        for _ in range(int(rng.integers(0, 5))):
            t = int(rng.integers(num_states))
            src.append(s)
            dst.append(t)
            ilabel.append(int(rng.integers(1, num_columns + 1)))
            olabel.append(0 if rng.random() < 0.5 else int(rng.integers(1, 8)))
            weight.append(grid(rng.normal(0.5, 1.5)))
        for _ in range(int(rng.integers(0, epsilon_arcs + 1))):
            t = int(rng.integers(num_states))
            src.append(s)
            dst.append(t)
            ilabel.append(0)
            olabel.append(0 if rng.random() < 0.6 else int(rng.integers(1, 8)))
            # zero-cost epsilon cycles, but only without words: paths around them tie
            slack = 0.0 if zero_cycles and olabel[-1] == 0 and rng.random() < 0.3 else rng.exponential(0.7)
            weight.append(potential[t] - potential[s] + grid(slack))
    final = np.full(num_states, np.inf, np.float32)
    if rng.random() < 0.9:
        finals = rng.choice(num_states, size=int(rng.integers(1, num_states + 1)), replace=False)
        final[finals] = [grid(x) for x in rng.normal(0.0, 1.0, finals.size)]
    return CsrFst.from_arcs(num_states, int(rng.integers(num_states)), final, np.array(src, np.int32),
                           np.array(dst, np.int32), np.array(ilabel, np.int32), np.array(olabel, np.int32),
                           np.array(weight, np.float32)).validate()


def random_scores(seed: int, frames: int, num_columns: int = 4) -> np.ndarray:
    """Log-probability rows (frames x columns), float32."""
    rng = np.random.default_rng(seed + 1_000_003)
    logits = rng.normal(0.0, 2.0, (frames, num_columns))
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
