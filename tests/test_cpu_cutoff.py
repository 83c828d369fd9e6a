"""The CPU search's per-frame cutoff against Kaldi's GetCutoff, written plainly
over a sorted copy (the search skips the nth-element passes when they cannot
change the result; this checks that the shortcut never changes it)."""

import numpy as np
import pytest

from wfst.cpu_search import _cutoff

BEAM_DELTA = 0.5  # Kaldi's: the cutoff's beam is the max_active cost less the best, plus this

INF = np.float32(np.inf)


def kaldi_cutoff(costs, beam, max_active, min_active):
    ordered = np.sort(costs)
    best = ordered[0]
    beam_cutoff = np.float32(best + beam)
    n = ordered.shape[0]
    if n > max_active and ordered[max_active] < beam_cutoff:
        return ordered[max_active], np.float32(ordered[max_active] - best + BEAM_DELTA)
    if n <= min_active:
        min_active_cutoff = INF
    else:
        min_active_cutoff = best if min_active == 0 else ordered[min_active]
    if min_active_cutoff > beam_cutoff:
        return min_active_cutoff, np.float32(min_active_cutoff - best + BEAM_DELTA)
    return beam_cutoff, np.float32(beam)


@pytest.mark.parametrize("seed", range(400))
def test_cutoff_equals_kaldi_get_cutoff(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    if seed % 2:  # small integers: ties with each other and with best + beam
        costs = rng.integers(0, 25, n).astype(np.float32)
        beam = np.float32(rng.integers(0, 25))
    else:
        costs = (rng.random(n) * 30).astype(np.float32)
        beam = np.float32(rng.random() * 30)
    max_active = int(rng.integers(1, n + 20))
    min_active = int(rng.integers(0, min(max_active, n + 20)))
    before = costs.copy()
    got = _cutoff(costs, beam, max_active, min_active)
    assert np.array_equal(costs, before)
    want = kaldi_cutoff(costs, beam, max_active, min_active)
    assert (np.float32(got[0]), np.float32(got[1])) == want


def test_the_adaptive_beam_adds_kaldi_s_half_to_the_max_active_cutoff():
    costs = np.array([0, 1, 2, 3], np.float32)
    assert _cutoff(costs, np.float32(10), 2, 0) == (np.float32(2), np.float32(2.5))
    assert _cutoff(costs, np.float32(0.5), 4, 3) == (np.float32(3), np.float32(3.5))


def test_a_token_exactly_at_the_max_active_cutoff_is_expanded():
    """Kaldi keeps a token whose cost equals the cutoff (``<=``)."""
    import wfst
    from tests.decoder_graphs import flat_scores, graph
    from wfst.cpu_backend import CpuSearch
    from wfst.decoding_graph import DecodingGraph

    fst = graph(4, 0, {1: 0.0, 2: 0.0, 3: 0.0}, [(0, 1, 1, 5, 0.0), (0, 2, 1, 6, 1.0), (0, 3, 1, 7, 2.0),
                                                (1, 1, 1, 0, 0.0), (2, 2, 1, 0, 0.0), (3, 3, 1, 0, 0.0)])
    search = CpuSearch(DecodingGraph(fst), wfst.DecoderConfig(max_active=2, min_active=0))
    search.accept(flat_scores(2, 1))
    assert search.expanded_tokens == 1 + 3  # frame 1's cutoff is its third cost, 2.0
