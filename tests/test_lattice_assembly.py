"""Result.lattice is an assembled lattice.Lattice whose best path is the
decoder's, on the oracle graphs (zero-cost epsilon cycles included) and the
embedded example; it does not depend on the order of a frame's tokens and links
(the GPU's order is not the CPU's); misuse raises LatticeError."""

import dataclasses

import numpy as np
import pytest

import wfst
from lattice import Lattice, LatticeError
from tests.lattice_paths import assert_same_arrays
from tests.random_graph import random_graph, random_scores
from wfst.cpu_backend import CpuSearch
from wfst.decoding_graph import DecodingGraph
from wfst.example import load_example


def _check(result, same_alignment=True):
    """``same_alignment=False``: the words and cost must match, the token
    alignment may differ where two alignments cost the same up to float32
    rounding (the decoder sums in float32, the lattice in float64)."""
    lattice = result.lattice.validate()
    path = lattice.best_path()
    assert path.words == result.words
    assert path.cost == pytest.approx(result.cost, rel=1e-5, abs=1e-4)
    if np.isfinite(result.cost) and same_alignment:
        np.testing.assert_array_equal(path.ilabels, result.alignment)
        assert [(a, b) for _, a, b in lattice.word_alignment()] == list(result.word_frames)


@pytest.mark.parametrize("seed", range(0, 300, 3))
def test_best_path_is_the_decoder_s(seed):
    fst = random_graph(seed)
    scores = random_scores(seed, int(np.random.default_rng(seed).integers(0, 9)))
    config = wfst.DecoderConfig(beam=1e9, max_active=10**9, min_active=0, lattice_beam=2.0)
    _check(wfst.Decoder(fst, config, device="cpu").decode(scores))


def test_best_path_on_the_example():
    example = load_example()
    config = wfst.DecoderConfig(beam=12.0, lattice_beam=6.0, acoustic_scale=example.acoustic_scale)
    for result in wfst.Decoder(example.fst, config, device="cpu").decode(example.scores[:4]):
        _check(result, same_alignment=False)
        assert result.lattice.num_arcs > len(result.alignment)  # alternatives are kept


def _shuffled(seg, rng):
    """The same segments with each frame's tokens, and each frame's emitting
    and epsilon links, in a random order (the start token anywhere in frame 0),
    indices renumbered."""
    new_tok = np.concatenate([rng.permutation(np.arange(a, b)) for a, b in zip(seg.tok_start[:-1], seg.tok_start[1:])])
    bounds = np.append(np.column_stack([seg.link_start[:-1], seg.link_eps_start]).ravel(), seg.link_start[-1])
    new_link = np.concatenate([rng.permutation(np.arange(a, b)) for a, b in zip(bounds[:-1], bounds[1:])])
    tok, link = np.empty_like(new_tok), np.empty_like(new_link)  # the old token now at k, the old link now at l
    tok[new_tok], link[new_link] = np.arange(new_tok.size), np.arange(new_link.size)
    best = seg.tok_best[tok]
    return dataclasses.replace(seg, tok_state=seg.tok_state[tok], tok_cost=seg.tok_cost[tok],
                               tok_best=np.where(best >= 0, new_link[np.maximum(best, 0)], -1).astype(np.int32),
                               link_src=new_tok[seg.link_src[link]].astype(np.int32),
                               link_dst=new_tok[seg.link_dst[link]].astype(np.int32), link_arc=seg.link_arc[link],
                               link_ac=seg.link_ac[link], best_token=int(new_tok[seg.best_token]))


def test_lattice_does_not_depend_on_the_order_of_tokens_and_links():
    """The GPU makes a frame's tokens and links in another order than the CPU
    (its atomics'): assembled, both give the same lattice, array for array
    (:mod:`lattice.canonical`), epsilon cycles unrolled included."""
    rng = np.random.default_rng(7)
    checked = 0
    for seed in range(80):
        fst = random_graph(seed)
        config = wfst.DecoderConfig(beam=8.0, max_active=50, min_active=1, lattice_beam=4.0)
        search = CpuSearch(DecodingGraph(fst), config)
        search.accept(random_scores(seed, 1 + seed % 7))
        search.finish()
        seg = search.segments
        if seg.best_token < 0:
            continue
        want = Lattice.from_segments(seg, fst, lattice_beam=config.lattice_beam)
        assert want.num_states > 0
        for _ in range(3):
            assert_same_arrays(Lattice.from_segments(_shuffled(seg, rng), fst, lattice_beam=config.lattice_beam),
                               want)
        checked += 1
    assert checked >= 40


def test_runs_sort_stably_whether_short_or_long():
    """The canonical order's sorts of a frame's states and a source's arcs
    (insertion sort up to 32, merge sort beyond), ties in their given order."""
    from lattice.canonical import _sort_run

    rng = np.random.default_rng(3)
    for size in (0, 1, 2, 5, 31, 32, 33, 64, 200):
        key = rng.integers(0, max(1, size // 3), size + 10).astype(np.int64)  # many ties
        order = rng.permutation(size + 10).astype(np.int64)
        lo = 4
        by = lo + np.argsort(key[lo:lo + size], kind="stable")
        want_order = np.concatenate([order[:lo], order[by], order[lo + size:]])
        want_key = np.concatenate([key[:lo], key[by], key[lo + size:]])
        _sort_run(order, key, lo, lo + size)
        np.testing.assert_array_equal(order, want_order)
        np.testing.assert_array_equal(key, want_key)


def test_misuse_raises_lattice_errors():
    result = wfst.Decoder(random_graph(5), device="cpu").decode(random_scores(5, 6))
    for bad in (0, -1, 1.5):
        with pytest.raises(LatticeError, match="n must be"):
            result.lattice.nbest(bad)
    with pytest.raises(LatticeError, match="lattice_beam"):
        result.lattice.prune(-1.0)
    with pytest.raises(LatticeError, match="scale"):
        result.lattice.arc_posteriors(0.0)
    with pytest.raises(LatticeError, match="frame_shift"):
        result.lattice.to_ctm("utt", 0.0)
    assert issubclass(LatticeError, ValueError)


def test_arcs_ordered_by_source_keep_their_order_within_a_source():
    """The counting sort that orders an assembled lattice's arcs is numpy's
    stable argsort (so the lattice is the one a stable sort gives)."""
    from lattice.assemble import _by_source

    rng = np.random.default_rng(0)
    for states, arcs in ((1, 0), (1, 5), (7, 40), (300, 2000)):
        src = rng.integers(0, states, arcs)
        assert np.array_equal(_by_source(src, states), np.argsort(src, kind="stable"))


def test_a_finish_without_one_start_token_names_it():
    """Search arrays whose frame 0 lost its start token (its best link set, as
    faulty device data could) raise the start-token LatticeError, before the
    best path would follow the bad link."""
    fst = random_graph(7)
    graph = DecodingGraph(fst)
    search = CpuSearch(graph, wfst.DecoderConfig(beam=1e9, max_active=10**9, min_active=0, lattice_beam=2.0))
    search.accept(random_scores(7, 5))
    arrays = search._arrays
    arrays.tok_best[arrays.tok_start[0]:arrays.tok_start[1]] = 0
    with pytest.raises(LatticeError, match="frame 0 has 0 tokens without a best link"):
        search.finish()
