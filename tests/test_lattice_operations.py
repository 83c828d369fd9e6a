"""Lattice operations against naive references: arc posteriors and word
confidences by brute-force path enumeration, scale and word penalty against
the formulas of Kaldi's lattice-scale and lattice-add-penalty, CTM lines, and
determinize() against the CompactLattice invariants."""

import dataclasses
import math

import numpy as np
import pytest

import wfst
from lattice import Lattice, LatticeError
from tests.lattice_paths import compact_paths, lattice_paths, random_lattice
from wfst.example import load_example

SEEDS = range(12)


def _random(seed):
    rng = np.random.default_rng(seed)
    return random_lattice(rng, frames=int(rng.integers(1, 5)), width=3).validate()


# ------------------------------------------------------------------ posteriors
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_arc_posteriors_are_the_enumerated_path_mass(seed, scale):
    lat = _random(seed)
    paths = lattice_paths(lat)
    assert paths
    costs = np.array([g + a for _, g, a, _, _ in paths])
    weights = np.exp(-scale * (costs - costs.min()))  # log semiring, shifted: exp(-scale * cost) / sum
    want = np.zeros(lat.num_arcs)
    for (arcs, *_), weight in zip(paths, weights):
        want[list(arcs)] += weight
    want /= weights.sum()
    got = lat.arc_posteriors(scale)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    out_of_start = lat.arc_src == 0
    assert got[out_of_start].sum() == pytest.approx(1.0)


def _three_paths():
    """Frames 0-3; paths ``A B`` (cost 2, the best), ``B`` (cost 3, its B read
    at frame 0) and ``A C`` (cost 3). Words A=7, B=8, C=9."""
    A, B, C = 7, 8, 9
    arcs = [  # src, dst, ilabel, olabel, graph, acoustic
        (0, 1, 1, A, 0.5, 0.5), (0, 2, 2, B, 1.0, 1.0), (1, 3, 1, B, 0.25, 0.75), (1, 4, 3, C, 1.0, 1.0),
        (2, 3, 1, 0, 0.5, 0.5), (3, 5, 1, 0, 0.0, 0.0), (4, 5, 1, 0, 0.0, 0.0)]
    src, dst, il, ol, g, a = (np.array(col) for col in zip(*arcs))
    final = np.array([np.inf] * 5 + [0.0], np.float32)
    return Lattice(np.array([0, 1, 1, 2, 2, 3], np.int32), src.astype(np.int32), dst.astype(np.int32),
                   il.astype(np.int32), ol.astype(np.int32), g.astype(np.float32), a.astype(np.float32),
                   final, final.copy()).validate()


def _region_confidences(lat, scale):
    """word_confidences by enumerating the paths: each word arc's region on its
    path, from the frame after the previous word arc's time to the frame before
    the next one's, its own time included."""
    from lattice.best_path import best_path_arcs

    paths = lattice_paths(lat)
    costs = np.array([g + a for _, g, a, _, _ in paths])
    weights = np.exp(-scale * (costs - costs.min()))
    weights /= weights.sum()
    last = max(lat.num_frames - 1, 0)

    def regions(arcs):
        words = [a for a in arcs if lat.arc_olabel[a]]
        times = [-1] + [min(int(lat.state_frame[lat.arc_src[a]]), last) for a in words] + [lat.num_frames]
        return [(int(lat.arc_olabel[a]), min(times[k] + 1, times[k + 1]), max(times[k + 2] - 1, times[k + 1]))
                for k, a in enumerate(words)]

    want = []
    for word, lo, hi in regions(best_path_arcs(lat)[0]):
        mass = sum(weight * sum(w == word and a <= hi and b >= lo for w, a, b in regions(arcs))
                   for (arcs, *_), weight in zip(paths, weights))
        want.append(min(1.0, mass))
    return want


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_word_confidences_count_the_same_word_in_an_overlapping_region(scale):
    lat = _three_paths()
    assert lat.best_path().words == (7, 8)
    best, other = math.exp(-2 * scale), math.exp(-3 * scale)
    total = best + 2 * other
    # A (frame 0, region 0-0): paths "A B" and "A C"; B (frame 1, region 1-2): "A B", and path "B", whose B at
    # frame 0, alone on its path, spans the utterance
    want = [(best + other) / total, (best + other) / total]
    np.testing.assert_allclose(lat.word_confidences(scale), want, rtol=1e-12)
    np.testing.assert_allclose(_region_confidences(lat, scale), want, rtol=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_word_confidences_are_the_enumerated_region_posteriors(seed):
    rng = np.random.default_rng(seed)
    lat = random_lattice(rng, frames=int(rng.integers(1, 6)), width=3).validate()
    if seed % 3 == 0:  # final states before the last frame too, where paths end early
        early = rng.random(lat.num_states) < 0.2
        final = np.where(early, np.float32(0.5), lat.final_graph_cost).astype(np.float32)
        lat = dataclasses.replace(lat, final_graph_cost=final, final_acoustic_cost=final.copy()).validate()
    scale = [1.0, 0.3][seed % 2]
    np.testing.assert_allclose(lat.word_confidences(scale), _region_confidences(lat, scale), rtol=1e-9, atol=1e-12)


def test_a_word_arc_leaving_a_state_after_the_last_frame_counts_at_the_last_frame():
    """A word on an epsilon arc after the last score row: its source state's
    frame is the lattice's num_frames, and its time is clipped to the last
    frame, so it overlaps a best-path word there."""
    from tests.decoder_graphs import graph

    # one frame; paths: 0 -1:7/0-> 1 (final, the best); 0 -1:7/0-> 1 -eps/0.5-> 2 -eps:7/0.5-> 3 (final), its
    # second 7 read at frame 1; 0 -1:0/0.25-> 3
    fst = graph(4, 0, {1: 0.0, 3: 0.0}, [(0, 1, 1, 7, 0.0), (0, 3, 1, 0, 0.25), (1, 2, 0, 0, 0.5),
                                         (2, 3, 0, 7, 0.5)])
    lat = wfst.Decoder(fst, wfst.DecoderConfig(lattice_beam=8.0, min_active=0), device="cpu").decode(
        np.zeros((1, 1), np.float32)).lattice
    assert lat.num_frames == 1 and sorted(p.words for p in lat.nbest(5)) == [(), (7,), (7, 7)]
    assert lat.state_frame[lat.arc_src[lat.arc_olabel == 7]].tolist() == [0, 1]
    best, twice, none = 1.0, math.exp(-1.0), math.exp(-0.25)
    want = [(best + 2 * twice) / (best + twice + none)]  # both 7s of the second path overlap the best's 7
    np.testing.assert_allclose(lat.word_confidences(), want, rtol=1e-6)
    np.testing.assert_allclose(_region_confidences(lat, 1.0), want, rtol=1e-6)


def test_one_word_sequence_aligned_two_ways_is_certain():
    """The example's second utterance: one word sequence, its first word's label
    at frame 12 or 13 (a frame apart) in about half the mass each."""
    ex = load_example()
    result = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale)).decode(ex.scores[1])
    assert len(result.lattice.nbest(2)) == 1
    first = result.lattice.arc_olabel == result.words[0]
    assert len(set(result.lattice.state_frame[result.lattice.arc_src[first]].tolist())) == 2
    np.testing.assert_allclose(result.lattice.word_confidences(), 1.0, rtol=1e-9)


def test_no_path_gives_no_posteriors_and_no_confidences():
    assert Lattice.empty().arc_posteriors().shape == (0,)
    assert Lattice.empty().word_confidences().shape == (0,)


# ------------------------------------------------------------------ scale and word penalty
@pytest.mark.parametrize("seed", SEEDS[:4])
@pytest.mark.parametrize("compact", [False, True])
def test_scale_is_kaldi_lattice_scale(seed, compact):
    """lattice-scale: LatticeWeight(graph, acoustic) -> (lm_scale * graph,
    acoustic_scale * acoustic), on arcs and final weights, of a Lattice or a
    CompactLattice; non-final stays non-final (infinity is never scaled, even
    by 0)."""
    lat = _random(seed).determinize() if compact else _random(seed)
    kept = ("arc_src", "arc_dst", "arc_word", "string_start", "string") if compact else \
        ("state_frame", "arc_src", "arc_dst", "arc_ilabel", "arc_olabel")
    for acoustic, graph in ((0.1, 1.0), (1.0, 2.5), (0.0, 0.0), (-1.0, 0.5)):
        out = lat.scale(acoustic=acoustic, graph=graph)
        assert type(out) is type(lat)
        if not compact:
            out.validate()
        np.testing.assert_array_equal(out.arc_graph_cost, lat.arc_graph_cost * np.float32(graph))
        np.testing.assert_array_equal(out.arc_acoustic_cost, lat.arc_acoustic_cost * np.float32(acoustic))
        final = np.isfinite(lat.final_graph_cost)
        np.testing.assert_array_equal(np.isfinite(out.final_graph_cost), final)
        np.testing.assert_array_equal(out.final_graph_cost[final], lat.final_graph_cost[final] * np.float32(graph))
        np.testing.assert_array_equal(out.final_acoustic_cost[final],
                                      lat.final_acoustic_cost[final] * np.float32(acoustic))
        for name in kept:
            np.testing.assert_array_equal(getattr(out, name), getattr(lat, name))
    for bad in (np.nan, np.inf, 1e39, "1", True):  # (1e39 is inf in float32: inf * 0 would be NaN)
        with pytest.raises(LatticeError, match="acoustic"):
            lat.scale(acoustic=bad)


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_word_penalty_is_kaldi_lattice_add_penalty(seed):
    """lattice-add-penalty: the penalty joins the graph cost of every arc with
    a word, so every word sequence costs ``penalty * len(words)`` more."""
    lat = _random(seed)
    out = lat.add_word_penalty(0.75).validate()
    words = lat.arc_olabel != 0
    np.testing.assert_array_equal(out.arc_graph_cost[words], lat.arc_graph_cost[words] + np.float32(0.75))
    np.testing.assert_array_equal(out.arc_graph_cost[~words], lat.arc_graph_cost[~words])
    np.testing.assert_array_equal(out.arc_acoustic_cost, lat.arc_acoustic_cost)
    np.testing.assert_array_equal(out.final_graph_cost, lat.final_graph_cost)
    before = {w: g + a for w, g, a, _ in compact_paths(lat.determinize())}
    after = {w: g + a for w, g, a, _ in compact_paths(out.determinize())}
    assert before.keys() == after.keys()
    for sequence, cost in before.items():
        assert after[sequence] == pytest.approx(cost + 0.75 * len(sequence), abs=1e-4)
    with pytest.raises(LatticeError, match="penalty"):
        lat.add_word_penalty(float("nan"))


@pytest.fixture(scope="module")
def example_result():
    example = load_example()
    config = wfst.DecoderConfig(beam=12.0, lattice_beam=6.0, acoustic_scale=example.acoustic_scale)
    return example, wfst.Decoder(example.fst, config, device="cpu").decode(example.scores[:1])[0]


def test_unscaling_gives_the_raw_acoustic_cost(example_result):
    """Costs are stored with the acoustic scale applied; scale(acoustic=1/s)
    gives the unscaled -loglike sums that Kaldi's tools expect."""
    example, result = example_result
    path = result.lattice.best_path()
    raw = -example.scores[0][np.arange(path.ilabels.shape[0]), path.ilabels - 1].astype(np.float64).sum()
    assert path.acoustic_cost == pytest.approx(example.acoustic_scale * raw, rel=1e-5)
    unscaled = result.lattice.scale(acoustic=1 / example.acoustic_scale).best_path()
    assert unscaled.acoustic_cost == pytest.approx(raw, rel=1e-5)
    assert unscaled.graph_cost == pytest.approx(path.graph_cost, rel=1e-6)


# ------------------------------------------------------------------ CTM
def test_ctm_lines(example_result):
    example, result = example_result
    from lattice import AlignmentLexicon

    lexicon = AlignmentLexicon(example.lexicon_path, example.words, example.tokens)
    spans = result.lattice.word_alignment(lexicon)
    lines = result.lattice.to_ctm("utt-1", example.frame_shift, lexicon=lexicon).splitlines()
    assert len(lines) == len(spans) == len(result.words) > 5
    for line, (word, first, last) in zip(lines, spans):
        assert line == (f"utt-1 1 {first * example.frame_shift:.3f} {(last - first + 1) * example.frame_shift:.3f} "
                        f"{example.words[word]}")
    starts = [float(line.split()[2]) for line in lines]
    ends = [float(line.split()[2]) + float(line.split()[3]) for line in lines]
    assert all(end <= start + 1e-9 for end, start in zip(ends, starts[1:]))  # in order, no overlap
    by_ids = result.lattice.to_ctm("u", 0.01).splitlines()  # label-based times, word ids
    assert [line.split()[4] for line in by_ids] == [str(w) for w in result.words]
    assert result.lattice.to_ctm("u", 0.01, words=example.words) == "".join(
        f"{line.rsplit(' ', 1)[0]} {example.words[w]}\n" for line, w in zip(by_ids, result.words))
    assert Lattice.empty().to_ctm("u", 0.01) == ""
    with pytest.raises(LatticeError, match="utt_id"):
        result.lattice.to_ctm("two words", 0.01)
    with pytest.raises(LatticeError, match="word id"):
        result.lattice.to_ctm("u", 0.01, words={})
    for bad in (5, "words.txt"):
        with pytest.raises(LatticeError, match="words must be a wfst.SymbolTable"):
            result.lattice.to_ctm("u", 0.01, words=bad)


def test_ctm_refuses_frame_shifts_and_word_tables_it_cannot_use(example_result):
    _, result = example_result
    for bad in (float("inf"), float("nan"), True, -0.01):
        with pytest.raises(LatticeError, match="frame_shift"):
            result.lattice.to_ctm("u", bad)
    with pytest.raises(LatticeError, match="word id"):
        result.lattice.to_ctm("u", 0.01, words=["<eps>"])  # a list indexed by word id, too short


def test_words_after_the_last_frame_or_before_the_same_frame_keep_a_frame():
    """Label-based word times: word 7's label comes after the last frame read,
    so it is clipped to the last frame; word 5's label comes before the same
    frame, and a word lasts at least its first frame."""
    from tests.decoder_graphs import flat_scores, graph

    # after: 0 -<eps>:5-> 1 -1:<eps>-> 2 -<eps>:7-> 3 (final), one frame read between the two words' labels;
    # before: 0 -<eps>:5-> 1 -<eps>:6-> 2 -1:<eps>-> 3 (final), both labels before the one frame
    after = graph(4, 0, {3: 0.0}, [(0, 1, 0, 5, 0.0), (1, 2, 1, 0, 0.0), (2, 3, 0, 7, 0.0)])
    before = graph(4, 0, {3: 0.0}, [(0, 1, 0, 5, 0.0), (1, 2, 0, 6, 0.0), (2, 3, 1, 0, 0.0)])
    lattice = wfst.Decoder(after, device="cpu").decode(flat_scores(1, 1)).lattice
    assert lattice.word_alignment() == [(5, 0, 0), (7, 0, 0)]
    assert lattice.to_ctm("u", 0.01) == "u 1 0.000 0.010 5\nu 1 0.000 0.010 7\n"
    lattice = wfst.Decoder(before, device="cpu").decode(flat_scores(1, 1)).lattice
    assert lattice.word_alignment() == [(5, 0, 0), (6, 0, 0)]


# ------------------------------------------------------------------ determinize
@pytest.mark.parametrize("seed", SEEDS)
def test_determinize_keeps_one_best_path_per_word_sequence(seed):
    """The CompactLattice invariants (topological, arcs by source, a word on
    every arc, deterministic) and, per word sequence of the lattice, exactly
    one path with that sequence's best graph and acoustic costs and best
    alignment (its input labels)."""
    lat = _random(seed)
    best = {}
    for _, graph, acoustic, words, ilabels in lattice_paths(lat):
        if words not in best or graph + acoustic < sum(best[words][:2]):
            best[words] = (graph, acoustic, ilabels)
    compact = lat.determinize()
    src, dst, word = compact.arc_src, compact.arc_dst, compact.arc_word
    assert np.all(src < dst) and np.all(np.diff(src) >= 0) and np.all(word != 0)
    pairs = set(zip(src.tolist(), word.tolist()))
    assert len(pairs) == compact.num_arcs, "two arcs with one word leave one state"
    paths = compact_paths(compact)
    assert sorted(w for w, *_ in paths) == sorted(best)  # each sequence once, all of them
    for words, graph, acoustic, string in paths:
        g, a, ilabels = best[words]
        assert graph == pytest.approx(g, abs=1e-4) and acoustic == pytest.approx(a, abs=1e-4)
        assert string == ilabels
    words, graph, acoustic, _ = min(paths, key=lambda path: path[1] + path[2])
    assert lat.best_path().words == words and lat.best_path().cost == pytest.approx(graph + acoustic, abs=1e-4)


def test_pruning_at_the_rounding_edge_keeps_every_kept_arc_s_states():
    """float64 sums in another order can put an arc within the limit and its
    source just beyond it: the arc's states stay, so the lattice stays valid."""
    from lattice.prune import beam_limit

    beam = 1.0 - 1e-9  # the largest beam whose limit above a best cost of 0 is exactly 1.0
    while beam_limit(0.0, beam) > 1.0:
        beam = float(np.nextafter(beam, 0.0))
    while beam_limit(0.0, np.nextafter(beam, 2.0)) <= 1.0:
        beam = float(np.nextafter(beam, 2.0))
    tiny = np.float32(2.0 ** -53)
    # 0 -> 1 (cost 1), 1 -> 3 (tiny), 3 final (tiny); 0 -> 2 (cost 0), 2 final (0): the best path
    lattice = Lattice(state_frame=np.array([0, 1, 1, 2], np.int32), arc_src=np.array([0, 0, 1], np.int32),
                      arc_dst=np.array([1, 2, 3], np.int32), arc_ilabel=np.ones(3, np.int32),
                      arc_olabel=np.zeros(3, np.int32), arc_graph_cost=np.array([1, 0, tiny], np.float32),
                      arc_acoustic_cost=np.zeros(3, np.float32),
                      final_graph_cost=np.array([np.inf, np.inf, 0, tiny], np.float32),
                      final_acoustic_cost=np.array([np.inf, np.inf, 0, 0], np.float32)).validate()
    # state 1: 1 + (tiny + tiny) > 1, but arc 1 -> 3: (1 + tiny) + tiny rounds to 1
    pruned = lattice.prune(beam).validate()
    assert (pruned.num_states, pruned.arc_src.tolist(), pruned.arc_dst.tolist()) == (4, [0, 1], [2, 3])


@pytest.mark.parametrize("src, dst", [([0, 1], [1, 7]), ([0, -1], [1, 2]), ([0, 2], [1, 1]), ([0, 1], [1, 1])])
def test_pruning_refuses_arcs_that_do_not_go_forward_between_states(src, dst):
    lattice = Lattice(state_frame=np.array([0, 1, 1], np.int32), arc_src=np.array(src, np.int32),
                      arc_dst=np.array(dst, np.int32), arc_ilabel=np.ones(2, np.int32),
                      arc_olabel=np.zeros(2, np.int32), arc_graph_cost=np.ones(2, np.float32),
                      arc_acoustic_cost=np.zeros(2, np.float32),
                      final_graph_cost=np.array([np.inf, 0, 0], np.float32),
                      final_acoustic_cost=np.array([np.inf, 0, 0], np.float32))
    with pytest.raises(LatticeError, match="go forward between existing states"):
        lattice.prune(5.0)


# ------------------------------------------------------------------ ties and boundaries
def _lat(frames, arcs, finals):
    """A lattice from ``arcs`` (src, dst, ilabel, olabel, graph cost) and
    ``finals`` {state: cost}; acoustic costs 0."""
    a = np.array(arcs, np.float64)
    final = np.full(len(frames), np.inf, np.float32)
    for state, cost in finals.items():
        final[state] = cost
    return Lattice(state_frame=np.array(frames, np.int32), arc_src=a[:, 0].astype(np.int32),
                   arc_dst=a[:, 1].astype(np.int32), arc_ilabel=a[:, 2].astype(np.int32),
                   arc_olabel=a[:, 3].astype(np.int32), arc_graph_cost=a[:, 4].astype(np.float32),
                   arc_acoustic_cost=np.zeros(len(arcs), np.float32), final_graph_cost=final,
                   final_acoustic_cost=np.where(np.isfinite(final), 0, np.inf).astype(np.float32)).validate()


def _fork(words):
    """Two arcs of equal cost from the start to final states 1 and 2."""
    return _lat([0, 1, 1], [(0, 1, 1, words[0], 1), (0, 2, 1, words[1], 1)], {1: 0.0, 2: 0.0})


@pytest.mark.parametrize("words", [(5, 6), (6, 5)])
def test_a_best_path_tie_takes_the_lowest_final_state(words):
    assert _fork(words).best_path().words == (words[0],)
    assert [w for w, _, _ in _fork(words).word_alignment()] == [words[0]]


def test_a_best_path_tie_takes_the_lowest_incoming_arc():
    lattice = _lat([0, 1], [(0, 1, 1, 6, 1), (0, 1, 2, 5, 1)], {1: 0.0})
    path = lattice.best_path()
    assert path.words == (6,) and path.ilabels.tolist() == [1]


def test_nbest_ties_come_in_the_order_of_the_arcs():
    from lattice.nbest import nbest

    compact = _fork((5, 6)).determinize()
    got = [p.words for p in nbest(compact, 2)]
    assert got[0] == (int(compact.arc_word[0]),) and sorted(got) == [(5,), (6,)]


def test_a_zero_lattice_beam_keeps_the_best_path_through_float_rounding():
    tiny = 2.0 ** -53  # the sums of forward and backward costs round differently along the path
    chain = _lat([0, 1, 2, 3], [(0, 1, 1, 0, tiny), (1, 2, 1, 0, tiny), (2, 3, 1, 7, 1.0)], {3: 0.0})
    pruned = chain.prune(0.0)
    assert pruned.num_states == 4 and pruned.best_path().words == (7,)


def test_a_word_confidence_is_at_most_one():
    # best path: word 5 at frame 0 (cost 0); the rival (cost 1) has word 5 at frames 0 and 2
    lattice = _lat([0, 1, 1, 2, 2, 3], [(0, 1, 1, 5, 0), (0, 2, 2, 5, 1), (1, 3, 1, 0, 0), (2, 4, 2, 0, 0),
                                        (3, 5, 1, 0, 0), (4, 5, 2, 5, 0)], {5: 0.0})
    assert lattice.best_path().words == (5,)
    assert lattice.word_confidences().tolist() == [1.0]


def test_three_words_at_one_frame_of_a_single_path_are_certain():
    lattice = _lat([0, 0, 0, 1], [(0, 1, 0, 5, 0), (1, 2, 0, 6, 0), (2, 3, 1, 7, 0)], {3: 0.0})
    assert lattice.best_path().words == (5, 6, 7)
    np.testing.assert_allclose(lattice.word_confidences(), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -0.5, True, "1", None])
def test_pruning_refuses_a_beam_that_is_not_a_finite_cost_difference(bad):
    """prune's lattice_beam must be a finite number >= 0 (lattice.prune's
    check_beam): an infinite beam is no beam and a NaN one would compare false
    everywhere (an empty lattice), so both are refused, as are bools and
    strings; 0 and integers are accepted."""
    lattice = _random(0)
    with pytest.raises(LatticeError, match="lattice_beam must be a finite number"):
        lattice.prune(bad)
    assert lattice.prune(0).best_path().words == lattice.best_path().words
    on_paths = {a for arcs, *_ in lattice_paths(lattice) for a in arcs}
    assert lattice.prune(np.float32(1e30)).num_arcs == len(on_paths)  # a wide finite beam keeps every path


def test_pruning_a_lattice_without_a_reachable_final_state_leaves_nothing():
    """prune's docstring: an empty lattice when no final state is reachable
    (no complete path, so none is within any beam), however wide the beam."""
    lattice = _lat([0, 1, 1, 2], [(0, 1, 1, 5, 1.0), (0, 2, 2, 0, 0.5), (1, 3, 1, 6, 0.0)], {})
    assert not np.isfinite(lattice.best_path().cost)
    for beam in (0.0, 8.0, 1e30):
        pruned = lattice.prune(beam)
        assert (pruned.num_states, pruned.num_arcs) == (0, 0)


def _broken(lattice, **changes):
    """``lattice`` with the arrays named in ``changes`` replaced by
    ``function(copy of the array)``'s result."""
    return dataclasses.replace(lattice, **{name: change(getattr(lattice, name).copy())
                                           for name, change in changes.items()})


def _set(index, value):
    def change(array):
        array[index] = value
        return array
    return change


@pytest.mark.parametrize("changes, message", [
    ({"final_acoustic_cost": lambda a: a[:-1]}, r"final_acoustic_cost must be a 1-D float32 array of length 6 \(S\)"),
    ({"arc_src": lambda a: a.astype(np.int64)}, r"arc_src must be a 1-D int32 array of length 7 \(A\)"),
    ({"arc_graph_cost": lambda a: a.reshape(-1, 1)}, r"arc_graph_cost must be a 1-D float32 array"),
    ({"arc_src": _set(6, 6)}, r"arc_src\[6\] is not a state id \(0..5\)"),
    ({"arc_dst": _set(4, 2), "arc_ilabel": _set(4, 0)}, r"arc_dst\[4\] is not a state after its source"),
    ({"arc_src": lambda a: a[[0, 2, 1, 3, 4, 5, 6]], "arc_dst": lambda a: a[[0, 2, 1, 3, 4, 5, 6]]},
     r"arc_src\[2\] breaks the sort by source state"),
    ({"state_frame": lambda a: a + 1}, r"state_frame\[0\] breaks the frame order"),
    ({"state_frame": _set(4, 1)}, r"state_frame\[4\] breaks the frame order"),
    ({"arc_ilabel": _set(4, 0)}, r"arc_ilabel\[4\] does not match its frames"),
    ({"arc_dst": _set(1, 3), "arc_ilabel": _set(1, 0)}, r"arc_ilabel\[1\] joins states more than one frame apart"),
    ({"arc_graph_cost": _set(3, np.nan)}, r"arc_graph_cost\[3\] is NaN"),
    ({"arc_acoustic_cost": _set(2, np.nan)}, r"arc_acoustic_cost\[2\] is NaN"),
    ({"final_graph_cost": _set(5, np.nan)}, r"final_graph_cost\[5\] is NaN"),
    ({"final_acoustic_cost": _set(5, np.nan)}, r"final_acoustic_cost\[5\] is NaN"),
    ({"final_acoustic_cost": _set(5, np.inf)}, r"final_graph_cost\[5\] is infinite in one part only"),
    ({"final_graph_cost": _set(4, 0.0)}, r"final_graph_cost\[4\] is infinite in one part only"),
])
def test_validate_names_the_broken_invariant(changes, message):
    """validate() raises LatticeError naming the array, the index and the
    invariant of lattice.lattice's docstring that a lattice breaks: dtypes and
    lengths, state ids, arc_src < arc_dst, arcs by source, frames from 0 and
    non-decreasing, an emitting arc one frame forward and an epsilon arc none,
    no NaN cost, final costs inf in both parts or neither."""
    lattice = _three_paths()
    with pytest.raises(LatticeError, match=message):
        _broken(lattice, **changes).validate()


def test_validate_refuses_arcs_without_states():
    i32, f32 = np.zeros(1, np.int32), np.zeros(1, np.float32)
    empty = Lattice.empty()
    with pytest.raises(LatticeError, match="without states cannot have arcs"):
        dataclasses.replace(empty, arc_src=i32, arc_dst=i32.copy(), arc_ilabel=i32.copy(), arc_olabel=i32.copy(),
                            arc_graph_cost=f32, arc_acoustic_cost=f32.copy()).validate()
    assert empty.validate() is empty


def test_arc_posteriors_stay_in_0_1_through_float_rounding():
    """arc_posteriors' docstring: in [0, 1]. On a single path every arc's
    posterior is 1; with costs of very different sizes the forward plus
    backward sums round differently than the total and would give 1 + 1e-14
    without the cap."""
    costs = [-23.245830535888672, -60.187904357910156, 6.771882254952288e-08, -1.2685105410525921e-08]
    chain = _lat([0, 1, 2, 3, 4], [(k, k + 1, 1, 0, c) for k, c in enumerate(costs)], {4: 0.0})
    posteriors = chain.arc_posteriors()
    assert posteriors.max() <= 1.0
    np.testing.assert_allclose(posteriors, 1.0, rtol=1e-12)


@pytest.mark.parametrize("first, second", [((1, 3), (2, 1)), ((2, 1), (1, 3)), ((4, 3), (4, 1))])
def test_determinize_breaks_an_exact_cost_tie_by_the_smaller_input_string(first, second):
    """lattice.determinize's docstring: of one word sequence's paths of equal
    total cost, the one with the lexicographically smallest string of input
    labels is kept, whichever the arcs meet first (two paths of words 7 and
    cost 1.5, input labels ``first`` and ``second``)."""
    lattice = _lat([0, 1, 1, 2], [(0, 1, first[0], 7, 1.0), (0, 2, second[0], 7, 0.25),
                                  (1, 3, first[1], 0, 0.5), (2, 3, second[1], 0, 1.25)], {3: 0.0})
    [(words, graph, acoustic, string)] = compact_paths(lattice.determinize())
    assert (words, graph + acoustic, string) == ((7,), 1.5, min(first, second))
    [path] = lattice.nbest(3)
    assert path.ilabels.tolist() == list(min(first, second))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True, "1"])
def test_word_confidences_refuse_a_scale_that_is_not_a_positive_number(bad):
    """word_confidences takes arc_posteriors' scale, a finite number > 0 (it
    multiplies costs before exp(-cost)): anything else is a LatticeError, as
    for arc_posteriors, not confidences of a meaningless distribution."""
    for lattice in (_three_paths(), Lattice.empty()):  # (an empty lattice too: the scale is checked first)
        for method in (lattice.arc_posteriors, lattice.word_confidences):
            with pytest.raises(LatticeError, match="scale must be a finite number > 0"):
                method(bad)


@pytest.mark.parametrize("seed", [1311, 1690])
def test_word_confidences_count_suffixes_through_final_states_before_the_region(seed):
    """Half the states final, so paths end early: an alternative's word before
    a best-path word's region still overlaps it when its path then ends, with
    no other word, in a final state that is also before the region (its region
    runs to the utterance's end). These seeds have such paths (seed 1311: word
    19 at frame 1, then no word to a final state in frame 3, against the
    best path's 19 at frame 4); the enumerated region posteriors count them."""
    rng = np.random.default_rng(seed)
    lat = random_lattice(rng, frames=int(rng.integers(1, 6)), width=3)
    early = rng.random(lat.num_states) < 0.5
    final = np.where(early, np.float32(0.5), lat.final_graph_cost).astype(np.float32)
    lat = dataclasses.replace(lat, final_graph_cost=final, final_acoustic_cost=final.copy()).validate()
    np.testing.assert_allclose(lat.word_confidences(1.0), _region_confidences(lat, 1.0), rtol=1e-9, atol=1e-12)


def test_a_best_path_that_ends_early_times_its_words_within_its_own_frames():
    """Label-based word times come from the frames the best path reads: when
    it ends in a final state before the lattice's last frame (here after one
    frame of three), its words lie in that frame, the last word lasting until
    the path's last frame read and a label after it clipped to it, never in
    frames only another path reads."""
    # best: 0 -1:5-> 1 -<eps>:6-> 2 (final, frame 1); 1 -2:<eps>/1-> 3 -3:<eps>/1-> 4 (final, frame 3)
    lattice = _lat([0, 1, 1, 2, 3], [(0, 1, 1, 5, 0), (1, 2, 0, 6, 0), (1, 3, 2, 0, 1), (3, 4, 3, 0, 1)],
                   {2: 0.0, 4: 0.0})
    assert lattice.num_frames == 3 and lattice.best_path().words == (5, 6)
    assert lattice.best_path().ilabels.tolist() == [1]
    assert lattice.word_alignment() == [(5, 0, 0), (6, 0, 0)]
    assert lattice.to_ctm("u", 0.01) == "u 1 0.000 0.010 5\nu 1 0.000 0.010 6\n"


def test_a_lattice_without_a_complete_path_has_zero_posteriors_and_no_confidences():
    """arc_posteriors' docstring: all zero for a lattice without a complete
    path (here states and arcs, but no final state), not NaN; no best path, so
    no word confidences either."""
    lattice = _lat([0, 1, 1, 2], [(0, 1, 1, 5, 1.0), (0, 2, 2, 0, 0.5), (1, 3, 1, 6, 0.0)], {})
    for scale in (1.0, 0.5):
        np.testing.assert_array_equal(lattice.arc_posteriors(scale), np.zeros(3))
        assert lattice.word_confidences(scale).shape == (0,)


def test_nbest_of_a_compact_lattice_with_epsilon_arcs_drops_the_epsilons_from_the_words():
    """LatticePath.words: the output labels, epsilons (0) dropped, also for
    lattice.nbest on a CompactLattice whose arcs may carry no word (Kaldi's
    Factor of a state-level lattice, lattice_to_compact, keeps such arcs)."""
    from lattice.convert import lattice_to_compact
    from lattice.nbest import nbest

    lattice = _three_paths()
    compact = lattice_to_compact(lattice)
    assert np.any(compact.arc_word == 0)
    want = {words: g + a for _, g, a, words, _ in lattice_paths(lattice)}  # (7, 8): 2; (8,) and (7, 9): 3
    got = nbest(compact, 5)
    assert got[0].words == (7, 8) and sorted(p.words for p in got) == sorted(want)
    for path in got:
        assert path.cost == pytest.approx(want[path.words])
