"""The Kaldi baseline harness on the embedded example's graph (wfst.example)."""

import json
import os

import numpy as np
import pytest

pytest.importorskip("kaldi_decoder")
pytest.importorskip("kaldifst")

from bench.workload.kaldi_baseline import (  # noqa: E402
    BaselineError,
    KaldiGraph,
    main,
    pinned_to,
    run_kaldi,
    summarize,
)
from bench.workload.posteriors import SpellingIndex, Workload, synthesize  # noqa: E402
from wfst import read_fst  # noqa: E402
from wfst.example import load_example  # noqa: E402
from wfst.lexicon import read_lexicon  # noqa: E402

EXAMPLE = load_example()
GRAPH = EXAMPLE.graph_path
WORDS = EXAMPLE.words
LEXICON = read_lexicon(EXAMPLE.lexicon_path)
SPELLING = SpellingIndex(LEXICON)
UNAMBIGUOUS = {word: prons[:1] for word, prons in SPELLING.unambiguous_pronunciations().items()}


@pytest.fixture(scope="module")
def graph():
    return KaldiGraph.load(GRAPH)


def sentences(count, seed=0):
    """Random sentences of words whose phones name them alone in the graph."""
    rng = np.random.default_rng(seed)
    pool = sorted(UNAMBIGUOUS)
    out = []
    while len(out) < count:
        sentence = [pool[i] for i in rng.integers(0, len(pool), rng.integers(1, 9))]
        if SPELLING.segmentations([p for word in sentence for p in UNAMBIGUOUS[word][0]]) == 1:
            out.append(sentence)
    return out


def workload(difficulty, count=20, seed=0):
    return synthesize(sentences(count, seed), UNAMBIGUOUS, EXAMPLE.tokens, difficulty=difficulty, seed=seed)


@pytest.mark.parametrize("decoder", ["faster", "lattice-simple"])
def test_difficulty_zero_recovers_every_reference(graph, decoder):
    w = workload(0.0)
    run = run_kaldi(graph, w, decoder=decoder, beam=10.0, max_active=7000, acoustic_scale=0.5)
    assert run.words(WORDS) == w.references
    assert run.reached_final.all() and np.isfinite(run.costs).all()
    assert run.num_frames == w.num_frames and run.rtfx == pytest.approx(w.audio_seconds / run.seconds)
    record = summarize(run, w, WORDS)
    assert record["wer"]["errors"] == 0 and record["wer"]["ref_words"] == sum(map(len, w.references))
    assert record["hyps"][3]["words"] == " ".join(w.references[3])
    assert record["homophone_tolerant_wer"] is None


def test_homophone_tolerant_wer(graph):
    # "there" and "their" share their phones: the LM decides, and the tolerant WER forgives it.
    (pron,) = set(LEXICON["there"]) & set(LEXICON["their"])
    lexicon = {"there": [pron], "their": [pron], "good": LEXICON["good"]}
    w = synthesize([["good"], ["there"], ["their"]], lexicon, EXAMPLE.tokens, difficulty=0.0)
    run = run_kaldi(graph, w)
    record = summarize(run, w, WORDS, LEXICON)
    assert record["wer"]["errors"] == 1 and record["homophone_tolerant_wer"]["errors"] == 0
    assert [h["spells_reference_phones"] for h in record["hyps"]] == [True] * 3


def reachable_states_per_frame(frames):
    """States holding a token when each frame is read, with no pruning: the
    epsilon closure of the start state, then per frame the closure of the
    emitting arcs' targets."""
    csr = read_fst(GRAPH)

    def successors(states, offsets):
        begin, end = offsets[states], offsets[states + 1]
        arcs = np.repeat(begin - np.cumsum(np.r_[0, (end - begin)[:-1]]), end - begin) + np.arange((end - begin).sum())
        return csr.nextstate[arcs]

    def closure(states):
        while True:
            grown = np.union1d(states, successors(states, csr.ne_offsets))
            if grown.size == states.size:
                return states
            states = grown

    states, sizes = closure(np.array([csr.start])), []
    for _ in range(frames):
        sizes.append(states.size)
        states = closure(np.unique(successors(states, csr.e_offsets)))
    return sizes


@pytest.mark.parametrize("decoder", ["faster", "lattice-simple"])
def test_token_counts_without_pruning_are_the_reachable_states(graph, decoder):
    w = workload(0.5, count=2)
    frames = 15  # the unpruned search soon holds most of the graph's 16 k states
    w = Workload(np.concatenate([w.utterance(0)[:frames], w.utterance(1)[:frames]]),
                 np.array([0, frames, 2 * frames]), w.utt_ids, w.frame_shift)
    run = run_kaldi(graph, w, decoder=decoder, beam=1e6, max_active=2**31 - 1, count_tokens=2)
    frames = [int(n) for n in np.diff(w.offsets)]
    expected = np.concatenate([reachable_states_per_frame(n) for n in frames])
    assert np.array_equal(run.tokens_per_frame, expected)


def test_token_counts_follow_max_active(graph):
    w = workload(0.5, count=5)
    wide = run_kaldi(graph, w, beam=30.0, max_active=10000, count_tokens=5).tokens_per_frame
    narrow = run_kaldi(graph, w, beam=30.0, max_active=4, min_active=0, count_tokens=5).tokens_per_frame
    # FasterDecoder keeps token costs in double but its max_active cutoff (the cost of
    # token max_active + 1) in float: when that cost rounds up, that token passes too,
    # and so do others whose cost rounds to the same float (ties are common in a graph
    # with back-off arcs).
    assert wide.max() > 100 and 4 <= narrow.max() <= 7 and np.median(narrow) <= 5


def test_graph_from_csr_decodes_the_same(graph):
    w = workload(0.5, count=5)
    again = KaldiGraph.from_csr(read_fst(GRAPH))
    assert again.sizes() | {"path": None} == graph.sizes() | {"path": None}
    assert run_kaldi(again, w).hyps == run_kaldi(graph, w).hyps


def test_bad_input_is_refused_before_decoding(graph):
    w = workload(0.0, count=2)
    narrow = Workload(np.ascontiguousarray(w.scores[:, :5]), w.offsets, w.utt_ids, w.frame_shift)
    with pytest.raises(BaselineError, match=f"ilabels up to {w.num_columns}.*5 columns"):
        run_kaldi(graph, narrow)
    scores = w.scores.copy()
    scores[w.offsets[1] + 2, 4] = np.nan
    with pytest.raises(BaselineError, match="'utt0001', frame 2: NaN"):
        run_kaldi(graph, Workload(scores, w.offsets, w.utt_ids, w.frame_shift))
    with pytest.raises(BaselineError, match="min_active < max_active"):
        run_kaldi(graph, w, max_active=10, min_active=10)
    with pytest.raises(BaselineError, match="decoder must be one of"):
        run_kaldi(graph, w, decoder="biglm")
    with pytest.raises(BaselineError, match="beam must be a positive"):
        run_kaldi(graph, w, beam=0.0)
    with pytest.raises(BaselineError, match="count_tokens must be"):
        run_kaldi(graph, w, count_tokens=-1)
    with pytest.raises(BaselineError, match="no utterances"):
        run_kaldi(graph, Workload(np.zeros((0, w.num_columns), np.float32), np.zeros(1, np.int64), (), 0.04))
    with pytest.raises(BaselineError, match="exactly one arc with ilabel 2"):
        run_kaldi(KaldiGraph.load(GRAPH, blank_ilabel=2), w, count_tokens=1)


def test_pinning_restores_affinity():
    before = os.sched_getaffinity(0)
    cpu = min(before)
    with pinned_to(cpu):
        assert os.sched_getaffinity(0) == {cpu}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(BaselineError, match="cannot pin to CPU"):
        with pinned_to(10**6):
            pass


def test_command_line_writes_json(tmp_path, capsys):
    w = workload(0.0, count=4)
    w.save(tmp_path / "easy.npz")
    out = tmp_path / "result.json"
    assert main(["--graph", str(GRAPH), "--words", str(EXAMPLE.words_path), "--data",
                 str(tmp_path / "easy.npz"), "--lexicon", str(EXAMPLE.lexicon_path),
                 "--decoder", "faster", "lattice-simple", "--beam", "10", "15", "--max-active", "7000", "10000",
                 "--acoustic-scale", "1.0", "0.5", "--count-tokens", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["runs"]) == 2 * 2 * 2 + 2 * 2  # faster: scales x beams x max_active; lattice: no max_active
    assert {(r["wer"]["wer"], r["homophone_tolerant_wer"]["wer"]) for r in result["runs"]} == {(0.0, 0.0)}
    assert result["graph"]["states"] == EXAMPLE.fst.num_states and result["workload"]["metadata"]["difficulty"] == 0.0
    assert result["machine"]["pinned_cpu"] == min(os.sched_getaffinity(0))
    assert all(r["tokens_per_frame"]["frames"] == w.offsets[1] for r in result["runs"])
    assert "frames/s" in capsys.readouterr().out


def test_command_line_reports_errors(tmp_path, capsys):
    assert main(["--graph", str(GRAPH), "--data", str(tmp_path / "missing.npz")]) == 1
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("difficulty,beam,max_active", [(0.3, 15.0, 10000), (0.6, 15.0, 10000), (0.6, 8.0, 50)])
def test_our_cpu_decoder_gives_kaldi_faster_decoder_s_transcripts_and_costs(graph, difficulty, beam, max_active):
    """DESIGN's Kaldi oracle: the same transcripts as Kaldi's FasterDecoder at
    the same beam, max_active and min_active; best-path costs (graph plus
    scaled acoustic) within float32 rounding of Kaldi's."""
    import wfst

    w = workload(difficulty, count=20, seed=3)
    run = run_kaldi(graph, w, decoder="faster", beam=beam, max_active=max_active, min_active=20,
                    acoustic_scale=0.5)
    config = wfst.DecoderConfig(beam=beam, max_active=max_active, min_active=20, acoustic_scale=0.5)
    ours = wfst.Decoder(EXAMPLE.fst, config, device="cpu").decode([w.utterance(i) for i in range(len(w))])
    assert [r.words for r in ours] == list(run.hyps)
    np.testing.assert_allclose([r.cost for r in ours], run.costs, rtol=1e-5, atol=1e-4)
    assert [r.reached_final for r in ours] == list(run.reached_final)


@pytest.mark.parametrize("difficulty,beam", [(0.6, 15.0), (0.9, 6.0)])
def test_our_cpu_decoder_gives_kaldi_lattice_simple_decoder_s_best_paths(graph, difficulty, beam):
    """The same against LatticeSimpleDecoder (a beam, no max_active), down to a
    narrow beam on noisy scores."""
    import wfst

    w = workload(difficulty, count=20, seed=3)
    run = run_kaldi(graph, w, decoder="lattice-simple", beam=beam, lattice_beam=8.0, acoustic_scale=0.5)
    config = wfst.DecoderConfig(beam=beam, max_active=10**9, min_active=0, lattice_beam=8.0, acoustic_scale=0.5)
    ours = wfst.Decoder(EXAMPLE.fst, config, device="cpu").decode([w.utterance(i) for i in range(len(w))])
    assert [r.words for r in ours] == list(run.hyps)
    np.testing.assert_allclose([r.cost for r in ours], run.costs, rtol=1e-5, atol=1e-4)
