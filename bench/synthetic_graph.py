"""A random graph with the shape of a real CTC TLG, for loading benchmarks.

The real TLG (a CTC topology composed with a lexicon and a 72k-word trigram LM)
has about 7.0 M states and 26.3 M arcs, 2.4 M of them input-epsilon (LM backoff
and disambiguation), input labels 1..40 (1 = blank, 2..40 phones), output
labels 0..72547 with roughly one arc in five carrying a word, small positive
weights and a few thousand final states. :func:`tlg_shaped_graph` draws a
seeded random graph with that shape, using vectorised numpy only (a few seconds
at full size):

* every state has at least one arc; out-degrees are ``1 + multinomial`` with
  Lomax (Pareto II, shape 1.5) state weights, so most states have 1-3 arcs and
  a few have tens of thousands (as an LM's unigram/backoff state does); the
  total is exact;
* exactly ``epsilon_arcs`` arcs, at random positions, have ``ilabel == 0``;
  the others have ilabel 1 (blank, 25 %) or 2..40;
* next states have locality: 80 % land within a geometric distance (mean
  ``locality``) of their source state, self-loops included; 20 % anywhere;
* arcs are sorted by source state; start state 0.

CLI::

    python -m bench.synthetic_graph OUT.fst [--states N --arcs N --epsilon-arcs N --seed S] [--overwrite]

writes an OpenFst ``const`` file (``CsrFst.write(path, "const")``); without
``--epsilon-arcs``, the real graph's fraction (2.4 / 26.3) of ``--arcs``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from wfst import CsrFst

NUM_STATES = 7_000_000
NUM_ARCS = 26_300_000
EPSILON_ARCS = 2_400_000
NUM_PHONES = 39  # ilabels 2..40
BLANK = 1
MAX_OLABEL = 72_547
WORD_ARC_FRACTION = 0.2
FINAL_STATE_FRACTION = 1 / 2000  # 3500 final states at full size
DEGREE_TAIL_SHAPE = 1.5  # Lomax shape: smaller = heavier tail
LOCALITY = 64  # mean |nextstate - src| of the "near" arcs
NEAR_FRACTION = 0.8


def tlg_shaped_graph(
    num_states: int = NUM_STATES,
    num_arcs: int = NUM_ARCS,
    epsilon_arcs: int = EPSILON_ARCS,
    seed: int = 0,
) -> CsrFst:
    """A validated random :class:`~wfst.CsrFst` with the shape of a CTC TLG
    (see the module docstring). Deterministic for a given ``seed``."""
    S, A, N = int(num_states), int(num_arcs), int(epsilon_arcs)
    if S < 1:
        raise ValueError(f"num_states must be >= 1, got {S}")
    if A < S:
        raise ValueError(f"every state has at least one arc: num_arcs ({A}) must be >= num_states ({S})")
    if not 0 <= N <= A:
        raise ValueError(f"epsilon_arcs must be in [0, num_arcs], got {N}")
    rng = np.random.default_rng(seed)

    # Out-degrees: 1 + a multinomial share of the A - S remaining arcs, with
    # heavy-tailed per-state weights. The total is exactly A.
    share = rng.pareto(DEGREE_TAIL_SHAPE, S) + 1e-3
    share /= share.sum()
    degree = rng.multinomial(A - S, share) + 1
    del share
    src = np.repeat(np.arange(S, dtype=np.int32), degree)
    del degree

    # Next states: mostly near the source state (a signed geometric jump,
    # 0 = self-loop), the rest uniform.
    jump = rng.geometric(1.0 / (LOCALITY + 1), A) - 1
    jump *= rng.integers(0, 2, A, dtype=np.int8) * 2 - 1
    jump += src
    np.remainder(jump, S, out=jump)
    nextstate = jump.astype(np.int32)
    del jump
    far = rng.random(A, dtype=np.float32) >= NEAR_FRACTION
    nextstate[far] = rng.integers(0, S, int(far.sum()), dtype=np.int32)
    del far

    # Input labels: exactly N epsilon arcs at random positions; blank or a phone elsewhere.
    ilabel = rng.integers(2, 2 + NUM_PHONES, A, dtype=np.int32)
    ilabel[rng.random(A, dtype=np.float32) < 0.25] = BLANK
    epsilon = np.zeros(A, dtype=bool)
    epsilon[rng.choice(A, N, replace=False, shuffle=False)] = True
    ilabel[epsilon] = 0

    # Output labels: about one arc in five carries a word.
    olabel = np.zeros(A, dtype=np.int32)
    words = np.flatnonzero(rng.random(A, dtype=np.float32) < WORD_ARC_FRACTION)
    olabel[words] = rng.integers(1, MAX_OLABEL + 1, words.shape[0], dtype=np.int32)
    del words

    # Weights: small positive costs; backoff (epsilon) arcs cost a bit more.
    weight = rng.standard_exponential(A, dtype=np.float32)
    weight *= 1.5
    weight[epsilon] += np.float32(0.5) + weight[epsilon]
    del epsilon

    final = np.full(S, np.inf, dtype=np.float32)
    num_final = max(1, min(S, round(S * FINAL_STATE_FRACTION)))
    final[rng.choice(S, num_final, replace=False)] = rng.standard_exponential(num_final, dtype=np.float32)

    return CsrFst.from_arcs(S, 0, final, src, nextstate, ilabel, olabel, weight).validate()


def default_epsilon_arcs(num_arcs: int) -> int:
    """The real TLG's fraction of input-epsilon arcs (2.4 M of 26.3 M)."""
    return EPSILON_ARCS if num_arcs == NUM_ARCS else round(num_arcs * EPSILON_ARCS / NUM_ARCS)


def write_graph(path: str | os.PathLike, fst: CsrFst, overwrite: bool = False) -> None:
    """Write ``fst`` as an OpenFst const file through a temporary file renamed
    into place (a reader never sees half a graph)."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (pass --overwrite to replace it)")
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        fst.write(tmp, "const")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.synthetic_graph",
        description="Write a random OpenFst const graph with the shape of a CTC TLG.")
    parser.add_argument("out", help="output file (OpenFst const, standard arcs)")
    parser.add_argument("--states", type=int, default=NUM_STATES)
    parser.add_argument("--arcs", type=int, default=NUM_ARCS)
    parser.add_argument("--epsilon-arcs", type=int, default=None,
                        help=f"default: {EPSILON_ARCS} at the default size, the same fraction of --arcs otherwise")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    if args.epsilon_arcs is None:
        args.epsilon_arcs = default_epsilon_arcs(args.arcs)
    if os.path.exists(args.out) and not args.overwrite:
        print(f"error: {args.out} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    fst = tlg_shaped_graph(args.states, args.arcs, args.epsilon_arcs, args.seed)
    t1 = time.perf_counter()
    write_graph(args.out, fst, overwrite=args.overwrite)
    t2 = time.perf_counter()
    print(f"{args.out}: {fst.num_states} states, {fst.num_arcs} arcs ({fst.num_epsilon_arcs} input-epsilon), "
          f"{fst.num_final_states} final, {os.path.getsize(args.out)} bytes; "
          f"built in {t1 - t0:.1f} s, written in {t2 - t1:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
