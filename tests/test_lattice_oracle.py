"""Acceptance against OpenFst (pynini), with a search beam too wide to prune:
the lattice holds exactly the word sequences whose best path is within
lattice_beam of the best, with their costs; determinize() keeps one path per
word sequence with the same costs; nbest(n) is OpenFst's n shortest distinct
word sequences. Graphs keep epsilon cycles strictly positive (OpenFst may not
terminate on float-negative zero cycles); they still carry words on epsilon
cycles, so assembly's unrolling of epsilon cycles is exercised."""

import numpy as np
import pytest

import wfst
from tests.lattice_paths import compact_paths
from tests.lattice_oracle import SLACK, decoding_lattice, nshortest, word_sequences
from tests.random_graph import random_graph, random_scores

BEAM = 1.5
SEEDS = range(50)


def _decoded(seed):
    fst = random_graph(seed, zero_cycles=False)
    frames = int(np.random.default_rng(seed).integers(0, 9))
    scores = random_scores(seed, frames)
    config = wfst.DecoderConfig(beam=1e9, max_active=10**9, min_active=0, lattice_beam=BEAM)
    return fst, scores, wfst.Decoder(fst, config, device="cpu").decode(scores)


def _same_sets(ours, oracle, best):
    """The same sequences within the beam (those within SLACK of its edge
    aside), with costs within SLACK. A pruned lattice may also hold sequences
    beyond the beam (paths that combine arcs each on some path within it)."""
    inside = best + BEAM - SLACK
    assert {w for w, c in ours.items() if c <= inside} == {w for w, c in oracle.items() if c <= inside}
    for words, cost in ours.items():
        if words in oracle:
            assert abs(cost - oracle[words]) <= SLACK, (words, cost, oracle[words])


@pytest.mark.parametrize("seed", SEEDS)
def test_word_sequences_within_the_beam_are_pynini_s(seed):
    fst, scores, result = _decoded(seed)
    oracle = word_sequences(decoding_lattice(fst, scores), BEAM)
    if not result.reached_final:
        assert not oracle  # the lattice ends in the frontier tokens, as Kaldi
        return
    best = min(oracle.values())
    assert abs(result.cost - best) <= SLACK
    _same_sets(word_sequences(result.lattice.to_pynini(), BEAM), oracle, best)
    paths = [(words, graph + acoustic) for words, graph, acoustic, _ in compact_paths(result.lattice.determinize())]
    assert len({w for w, _ in paths}) == len(paths), "determinize() left two paths with one word sequence"
    _same_sets(dict(paths), oracle, best)


@pytest.mark.parametrize("seed", SEEDS[::2])
def test_nbest_is_pynini_s_n_shortest_distinct_paths(seed):
    fst, scores, result = _decoded(seed)
    n = 1 + seed % 6
    ours = [(p.words, p.cost) for p in result.lattice.nbest(n)]
    oracle = nshortest(decoding_lattice(fst, scores), n, BEAM)
    if not result.reached_final:  # the lattice ends in the frontier tokens, as Kaldi
        assert not oracle
        return
    edge = (oracle[0][1] + BEAM - SLACK) if oracle else 0.0
    oracle = [item for item in oracle if item[1] <= edge]  # ours holds the beam only
    ours_inside = [item for item in ours if item[1] <= edge]
    assert len(ours_inside) == len(oracle)
    # the same costs in order; under exact ties any of the tied sequences may come first
    sequences = word_sequences(decoding_lattice(fst, scores), BEAM)
    for (words, cost), (o_words, o_cost) in zip(ours_inside, oracle):
        assert abs(cost - o_cost) <= SLACK
        assert words == o_words or abs(sequences[words] - cost) <= SLACK
    costs = [c for _, c in ours]
    assert costs == sorted(costs)
    assert len({w for w, _ in ours}) == len(ours)
