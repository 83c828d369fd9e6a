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


def pruned_search_frames(fst, scores, config):
    """The tokens of each frame ({state: float32 cost}) and the number expanded,
    by the pruning rules written plainly over whole frames: cutoff as Kaldi's
    GetCutoff (``kaldi_cutoff``), tokens with ``cost <= cutoff`` expanded, emitting
    results kept below ``bound`` = their cheapest + the adaptive beam, then the
    epsilon closure below the same bound (the start frame's bound: ``beam``)
    relaxed to its fixpoint, all in float32."""
    src, dst, weight = fst.arc_sources(), fst.nextstate, fst.weight.astype(np.float32)
    emitting = fst.ilabel != 0
    beam, scale = np.float32(config.beam), np.float32(config.acoustic_scale)

    def closure(tokens, bound):
        changed = True
        while changed:
            changed = False
            for a in np.flatnonzero(~emitting):
                if src[a] in tokens and tokens[src[a]] < bound:
                    c = np.float32(tokens[src[a]] + weight[a])
                    if c < bound and c < tokens.get(dst[a], INF):
                        tokens[dst[a]] = c
                        changed = True
        return tokens

    frames = [closure({fst.start: np.float32(0)}, beam)]
    expanded = []
    for row in scores:
        tokens = frames[-1]
        if not tokens:  # a dead end: nothing follows
            frames.append({})
            expanded.append(0)
            continue
        cutoff, adaptive_beam = kaldi_cutoff(np.array(list(tokens.values()), np.float32), beam, config.max_active,
                                             config.min_active)
        active = [s for s, c in tokens.items() if c <= cutoff]
        expanded.append(len(active))
        ac = -(scale * row[fst.ilabel[emitting] - 1])
        results = {}
        for a, c_ac in zip(np.flatnonzero(emitting), ac):
            if src[a] in active:
                results.setdefault(dst[a], []).append(np.float32(np.float32(tokens[src[a]] + c_ac) + weight[a]))
        bound = np.float32(min((min(r) for r in results.values()), default=INF) + adaptive_beam)
        frames.append(closure({s: min(r) for s, r in results.items() if min(r) < bound}, bound))
    return frames, expanded


@pytest.mark.parametrize("seed", range(60))
def test_each_frame_holds_the_tokens_the_pruning_rules_give(seed):
    """Frame by frame, the search's tokens (states and float32 costs) and the
    count it expands are those of the rules applied plainly, on random graphs
    whose weights and scores are multiples of 1/4 (ties at the cutoff and at
    the bound are common) under tight max_active, min_active and beam."""
    import wfst
    from tests.random_graph import random_graph
    from wfst.cpu_backend import CpuSearch
    from wfst.decoding_graph import DecodingGraph

    rng = np.random.default_rng(seed)
    fst = random_graph(seed, max_states=12, step=0.25)
    scores = (rng.integers(-12, 1, (10, 4)) / 4).astype(np.float32)
    max_active = int(rng.integers(1, 6))
    config = wfst.DecoderConfig(beam=float(rng.integers(2, 13)) / 2, max_active=max_active,
                                min_active=int(rng.integers(0, max_active + 1)), acoustic_scale=(0.5, 1.0)[seed % 2],
                                prune_interval=int(rng.integers(1, 4)))
    want, expanded = pruned_search_frames(fst, scores, config)
    search = CpuSearch(DecodingGraph(fst), config)
    for t in range(scores.shape[0] + 1):
        if t:
            before = search.expanded_tokens
            search.accept(scores[t - 1: t])
            assert search.expanded_tokens - before == expanded[t - 1], t
        a, first, end = search.frontier()
        got = dict(zip(a.tok_state[first:end].tolist(), a.tok_cost[first:end].tolist()))
        assert got == {int(s): float(c) for s, c in want[t].items()}, t
