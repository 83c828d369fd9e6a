"""With a beam too wide to prune, the CPU decoder is exact: the same best cost as
the exact numpy reference and as OpenFst (pynini) shortest path, and the same words."""

import numpy as np
import pytest

import wfst
from tests.exact_reference import exact_decode
from tests.pynini_oracle import pynini_decode
from tests.random_graph import random_graph, random_scores

SEEDS = range(300)


def _decoded(seed, scale=1.0, zero_cycles=True, use_final_probs=True, epsilon_arcs=2):
    fst = random_graph(seed, zero_cycles=zero_cycles, epsilon_arcs=epsilon_arcs)
    frames = int(np.random.default_rng(seed).integers(0, 9))
    scores = random_scores(seed, frames)
    config = wfst.DecoderConfig(beam=1e9, max_active=10**9, min_active=0, lattice_beam=1.0,
                                acoustic_scale=scale, use_final_probs=use_final_probs)
    return fst, scores, wfst.Decoder(fst, config, device="cpu").decode(scores)


def _close(a, b):
    return a == b or abs(a - b) <= 1e-4 * max(1.0, abs(a), abs(b))


# dense: many epsilon arcs into a state, where a closure lowers a token many times a pass; their cycles are
# positive, as a zero cycle there is often negative in float32 sums (a GraphError, as it should be)
@pytest.mark.parametrize("epsilon_arcs,zero_cycles", [(2, True), (8, False)], ids=["sparse", "dense"])
@pytest.mark.parametrize("seed", SEEDS)
def test_exact_reference(seed, epsilon_arcs, zero_cycles):
    scale = 0.5 if seed % 3 == 0 else 1.0
    fst, scores, result = _decoded(seed, scale, zero_cycles, epsilon_arcs=epsilon_arcs)
    exact = exact_decode(fst, scores, scale)
    assert result.reached_final == exact.reached_final
    if not np.isfinite(exact.cost):
        assert result.cost == float("inf") and result.words == ()
        return
    assert _close(result.cost, exact.cost), (result.cost, exact.cost)
    assert float(np.float32(result.cost)) == result.cost  # the search's float32 total, final cost added in float32 too
    assert _close(result.graph_cost + result.acoustic_cost, exact.cost)
    assert result.words == exact.words


@pytest.mark.parametrize("seed", SEEDS[:100])
def test_exact_reference_without_final_costs(seed):
    """use_final_probs=False: the cheapest token at the end, final costs left
    out (Kaldi's GetBestPath(false)); reached_final still says whether a final
    state is active."""
    fst, scores, result = _decoded(seed, use_final_probs=False)
    exact = exact_decode(fst, scores, use_final_probs=False)
    assert result.reached_final == exact.reached_final
    if not np.isfinite(exact.cost):
        assert result.cost == float("inf") and result.words == ()
        return
    assert _close(result.cost, exact.cost), (result.cost, exact.cost)
    assert result.words == exact.words


@pytest.mark.parametrize("seed", SEEDS)
def test_pynini_shortest_path(seed):
    fst, scores, result = _decoded(seed, zero_cycles=False)
    oracle = pynini_decode(fst, scores)
    if oracle is None:
        assert not result.reached_final
        return
    cost, words = oracle
    assert result.reached_final
    assert _close(result.cost, cost), (result.cost, cost)
    assert result.words == words


@pytest.mark.parametrize("seed", range(0, 300, 7))
def test_alignment_is_the_best_path(seed):
    """The alignment's labels, scored, plus the graph cost give the total cost."""
    fst, scores, result = _decoded(seed)
    if not np.isfinite(result.cost):
        return
    frames = scores.shape[0]
    assert result.alignment.shape == (frames,)
    assert (result.alignment >= 1).all()
    acoustic = -scores[np.arange(frames), result.alignment - 1].astype(np.float64).sum()
    assert _close(acoustic, result.acoustic_cost)
    assert len(result.word_frames) == len(result.words)
    for first, last in result.word_frames:
        assert 0 <= first <= last <= max(frames - 1, 0)
