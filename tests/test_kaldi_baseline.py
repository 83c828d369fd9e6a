"""The Kaldi baseline harness on the tiny example graph."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("kaldi_decoder")
pytest.importorskip("kaldifst")

from bench.make_example_graph import LEXICON  # noqa: E402
from bench.workload.kaldi_baseline import (  # noqa: E402
    BaselineError,
    KaldiGraph,
    main,
    pinned_to,
    run_kaldi,
    summarize,
)
from bench.workload.posteriors import Workload, synthesize  # noqa: E402
from wfst import SymbolTable, read_fst  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "wfst" / "data"
GRAPH = DATA / "example_tlg.fst"
WORDS = SymbolTable.read(DATA / "example_words.txt")


@pytest.fixture(scope="module")
def graph():
    return KaldiGraph.load(GRAPH)


def sentences(count, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.choice(sorted(LEXICON), rng.integers(1, 9))) for _ in range(count)]


def workload(difficulty, count=20, seed=0):
    lexicon = {word: [pron.split()] for word, pron in LEXICON.items()}
    return synthesize(sentences(count, seed), lexicon, DATA / "example_tokens.txt", difficulty=difficulty, seed=seed)


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
    # "tea" and "tee" share their phones: the LM (which only knows "tea") decides.
    lexicon = {word: [pron.split()] for word, pron in LEXICON.items()} | {"tee": [["T", "IY"]]}
    w = synthesize([["see", "tee"], ["tea"], ["dot", "coal"]], lexicon, DATA / "example_tokens.txt", difficulty=0.0)
    run = run_kaldi(graph, w)
    record = summarize(run, w, WORDS, lexicon)
    assert record["wer"]["errors"] == 1 and record["homophone_tolerant_wer"]["errors"] == 0
    assert [h["spells_reference_phones"] for h in record["hyps"]] == [True] * 3


def reachable_states_per_frame(frames):
    """States holding a token after each frame with no pruning (the example
    graph has no epsilon arcs)."""
    csr = read_fst(GRAPH)
    states, sizes = {csr.start}, []
    for _ in range(frames):
        sizes.append(len(states))
        states = {int(csr.nextstate[a]) for s in states for a in range(csr.e_offsets[s], csr.e_offsets[s + 1])}
    return sizes


@pytest.mark.parametrize("decoder", ["faster", "lattice-simple"])
def test_token_counts_without_pruning_are_the_reachable_states(graph, decoder):
    w = workload(0.5, count=3)
    run = run_kaldi(graph, w, decoder=decoder, beam=1e6, max_active=2**31 - 1, count_tokens=2)
    frames = [int(n) for n in np.diff(w.offsets)[:2]]
    expected = np.concatenate([reachable_states_per_frame(n) for n in frames])
    assert np.array_equal(run.tokens_per_frame, expected)


def test_token_counts_follow_max_active(graph):
    w = workload(0.5, count=5)
    wide = run_kaldi(graph, w, beam=30.0, max_active=10000, count_tokens=5).tokens_per_frame
    narrow = run_kaldi(graph, w, beam=30.0, max_active=4, min_active=0, count_tokens=5).tokens_per_frame
    # FasterDecoder keeps token costs in double but its max_active cutoff (the cost of
    # token max_active + 1) in float: when that cost rounds up, that token passes too.
    assert wide.max() > 10 and narrow.max() == 5


def test_graph_from_csr_decodes_the_same(graph):
    w = workload(0.5, count=5)
    again = KaldiGraph.from_csr(read_fst(GRAPH))
    assert again.sizes() | {"path": None} == graph.sizes() | {"path": None}
    assert run_kaldi(again, w).hyps == run_kaldi(graph, w).hyps


def test_bad_input_is_refused_before_decoding(graph):
    w = workload(0.0, count=2)
    narrow = Workload(np.ascontiguousarray(w.scores[:, :5]), w.offsets, w.utt_ids, w.frame_shift)
    with pytest.raises(BaselineError, match="ilabels up to 11.*5 columns"):
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
        run_kaldi(graph, Workload(np.zeros((0, 11), np.float32), np.zeros(1, np.int64), (), 0.04))
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
    (tmp_path / "lexicon.txt").write_text("".join(f"{word} {pron}\n" for word, pron in LEXICON.items()))
    assert main(["--graph", str(GRAPH), "--words", str(DATA / "example_words.txt"), "--data",
                 str(tmp_path / "easy.npz"), "--lexicon", str(tmp_path / "lexicon.txt"),
                 "--decoder", "faster", "lattice-simple", "--beam", "10", "15", "--max-active", "7000", "10000",
                 "--acoustic-scale", "1.0", "0.5", "--count-tokens", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["runs"]) == 2 * 2 * 2 + 2 * 2  # faster: scales x beams x max_active; lattice: no max_active
    assert {(r["wer"]["wer"], r["homophone_tolerant_wer"]["wer"]) for r in result["runs"]} == {(0.0, 0.0)}
    assert result["graph"]["states"] == 44 and result["workload"]["metadata"]["difficulty"] == 0.0
    assert result["machine"]["pinned_cpu"] == min(os.sched_getaffinity(0))
    assert all(r["tokens_per_frame"]["frames"] == w.offsets[1] for r in result["runs"])
    assert "frames/s" in capsys.readouterr().out


def test_command_line_reports_errors(tmp_path, capsys):
    assert main(["--graph", str(GRAPH), "--data", str(tmp_path / "missing.npz")]) == 1
    assert "error:" in capsys.readouterr().err
