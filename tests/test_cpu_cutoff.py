"""The CPU search's per-frame cutoff against Kaldi's GetCutoff, written plainly
over a sorted copy (the search skips the nth-element passes when they cannot
change the result; this checks that the shortcut never changes it)."""

import numpy as np
import pytest

from wfst.cpu_search import BEAM_DELTA, _cutoff

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
