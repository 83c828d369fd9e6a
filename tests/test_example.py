"""The embedded example: complete, small, light to import, and decodable to a
low WER by the CPU backend at its recommended acoustic scale."""

import subprocess
import sys

import numpy as np
import pytest

import wfst
from wfst.example import ExampleError, example_dir, load_example
from wfst.lexicon import read_lexicon
from wfst.wer import compute_wer, read_transcripts


@pytest.fixture(scope="module")
def ex():
    return load_example()


def test_files_are_small_and_consistent(ex):
    files = sorted(p.name for p in example_dir().iterdir())
    assert files == ["TLG.fst", "lexicon.txt", "scores.npz", "text", "tokens.txt", "words.txt"]
    assert sum(p.stat().st_size for p in example_dir().iterdir()) < 2_000_000
    assert ex.graph_path.parent == example_dir() and ex.text_path.name == "text"
    assert 100 <= len(ex.words) - 4 <= 1000  # a few hundred words besides <eps>, #0, <s>, </s>
    assert ex.tokens["<blk>"] == 1 and ex.fst.max_ilabel == len(ex.tokens) - 1
    assert len(ex.utterance_ids) == len(ex.scores) == len(ex.references) == 20
    assert read_transcripts(ex.text_path) == dict(zip(ex.utterance_ids, ex.references))
    lexicon = read_lexicon(ex.lexicon_path)
    for scores, reference in zip(ex.scores, ex.references):
        assert scores.dtype == np.float32 and scores.shape[1] == ex.fst.max_ilabel
        np.testing.assert_allclose(np.logaddexp.reduce(scores, axis=1), 0.0, atol=1e-4)  # log-probabilities
        assert all(word in ex.words and word in lexicon for word in reference)
    assert ex.frame_shift == 0.04 and ex.acoustic_scale > 0
    assert ex.audio_seconds == pytest.approx(sum(len(s) for s in ex.scores) * 0.04)


def test_decodes_to_a_low_wer(ex):
    results = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale)).decode(ex.scores)
    hyps = [[ex.words[w] for w in result.words] for result in results]
    stats = compute_wer(ex.references, hyps, ex.utterance_ids)
    assert all(result.reached_final for result in results)
    assert stats.ref_words > 200 and stats.wer < 3.0


def test_loading_the_example_imports_nothing_heavy():
    code = ("import sys\n"
            "from wfst.example import load_example\n"
            "ex = load_example()\n"
            "heavy = {'bench', 'pynini', 'kaldifst', 'numba', 'kaldi_decoder'} & set(sys.modules)\n"
            "print(sorted(heavy))\n")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_missing_files_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr("wfst.example.example_dir", lambda: tmp_path)
    with pytest.raises(ExampleError, match="incomplete.*TLG.fst.*python -m bench.workload example"):
        load_example()
