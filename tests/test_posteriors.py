"""Synthetic CTC posteriors: layout, determinism, difficulty, storage."""

import re

import numpy as np
import pytest

from bench.workload.posteriors import (
    PHONE_CLASSES,
    SpellingIndex,
    Workload,
    WorkloadError,
    num_score_columns,
    spells,
    synthesize,
)
from wfst import SymbolTable
from wfst.example import example_dir

TOKENS_TXT = example_dir() / "tokens.txt"  # <eps>, <blk> and the phones of CMUdict the example uses
TOKENS = SymbolTable.read(TOKENS_TXT)
P = max(i for i, _ in TOKENS)  # score columns: token ids 1..P
LEXICON = {
    "bee": "B IY", "bow": "B OW", "dot": "D AH T", "key": "K IY", "coal": "K OW L", "knee": "N IY",
    "note": "N OW T", "see": "S IY", "sold": "S OW L D", "tea": "T IY", "toast": "T OW S T", "low": "L OW",
}
LEX = {word: [pron.split()] for word, pron in LEXICON.items()}
SENTENCES = [["dot", "toast", "see"], ["knee"], "coal low sold tea bee", ["note", "toast", "toast"], []]
ARPABET = SymbolTable.from_pairs(
    [("<eps>", 0), ("<blk>", 1)] + [(p, i) for i, p in enumerate(sorted(set().union(*PHONE_CLASSES.values())), 2)])


def runs(frame_columns):
    """``[(column, run length), ...]`` of a frame sequence."""
    out = []
    for c in frame_columns:
        if out and out[-1][0] == c:
            out[-1][1] += 1
        else:
            out.append([c, 1])
    return [tuple(r) for r in out]


def ctc_collapse(frame_columns, blank_column=0):
    """Merge runs, then drop blanks: the token sequence CTC reads."""
    return [c for c, _ in runs(frame_columns) if c != blank_column]


def phone_columns(words):
    return [TOKENS[p] - 1 for w in words for p in LEXICON[w].split()]


def test_shapes_and_log_softmax_rows():
    w = synthesize(SENTENCES, LEX, TOKENS, seed=3)
    assert len(w) == 5 and w.utt_ids == ("utt0000", "utt0001", "utt0002", "utt0003", "utt0004")
    assert w.scores.dtype == np.float32 and w.scores.shape == (w.num_frames, P) == (w.offsets[-1], P)
    assert w.offsets.dtype == np.int64 and np.all(np.diff(w.offsets) > 0)
    np.testing.assert_allclose(np.logaddexp.reduce(w.scores.astype(np.float64), axis=1), 0.0, atol=1e-5)
    assert w.references[2] == ("coal", "low", "sold", "tea", "bee") and w.references[4] == ()
    assert w.audio_seconds == pytest.approx(w.num_frames * 0.04)
    assert w.utterance(1).shape == (w.offsets[2] - w.offsets[1], P)


@pytest.mark.parametrize(("frame_shift", "longest_phone"), [(0.04, 3), (0.01, 8)])
def test_difficulty_zero_spells_the_references(frame_shift, longest_phone):
    w = synthesize(SENTENCES, LEX, TOKENS, difficulty=0.0, frame_shift=frame_shift, seed=1)
    for i, words in enumerate(w.references):
        frames = w.utterance(i)
        best = frames.argmax(axis=1)
        assert np.all(frames.max(axis=1) > np.log(0.99))  # peaky
        # Repeated phones ("dot toast": T T; "toast toast") survive the collapse.
        assert ctc_collapse(best.tolist()) == phone_columns(words)
        assert best[0] == best[-1] == 0  # silence at both edges
        assert all(n <= longest_phone for c, n in runs(best.tolist()) if c != 0)


def test_deterministic_and_seeded():
    a = synthesize(SENTENCES, LEX, TOKENS, seed=7)
    b = synthesize(SENTENCES, LEX, TOKENS, seed=7)
    c = synthesize(SENTENCES, LEX, TOKENS, seed=8)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.offsets, b.offsets)
    assert not (a.scores.shape == c.scores.shape and np.array_equal(a.scores, c.scores))


def test_difficulty_changes_scores_but_not_the_layout():
    sentences = [["DH", "AH", "K", "AE", "T", "S", "AE", "T"] * 3] * 20
    lexicon = {p: [[p]] for p in set(sentences[0])}
    easy = synthesize(sentences, lexicon, ARPABET, difficulty=0.0, seed=5)
    hard = synthesize(sentences, lexicon, ARPABET, difficulty=0.7, seed=5)
    assert np.array_equal(easy.offsets, hard.offsets)
    target = easy.scores.argmax(axis=1)
    rows = np.arange(target.size)
    assert easy.scores[rows, target].min() > -1e-6 and hard.scores[rows, target].mean() < -0.2
    # Where a wrong phone wins a phone frame, it is mostly of the target's class.
    kind = {ARPABET[p] - 1: k for k, members in PHONE_CLASSES.items() for p in members}
    wrong = np.flatnonzero((target != 0) & (hard.scores.argmax(axis=1) != target) & (hard.scores.argmax(axis=1) != 0))
    winners = hard.scores[wrong].argmax(axis=1)
    assert wrong.size > 20
    assert np.mean([kind[w] == kind[t] for w, t in zip(winners, target[wrong])]) > 0.8


def test_phones_are_the_chosen_pronunciations():
    lexicon = {"either": [["IY", "DH", "ER"], ["AY", "DH", "ER"]], "a": [["AH"]]}
    w = synthesize([["a", "either"]] * 10, lexicon, ARPABET, difficulty=0.0)
    for i, phones in enumerate(w.phones):
        assert phones in {("AH", "IY", "DH", "ER"), ("AH", "AY", "DH", "ER")}
        assert ctc_collapse(w.utterance(i).argmax(axis=1).tolist()) == [ARPABET[p] - 1 for p in phones]


def test_spells_accepts_homophones_and_other_word_boundaries():
    lexicon = {"their": [["DH", "EH", "R"]], "there": [["DH", "EH", "R"]], "an": [["AE", "N"]],
               "and": [["AH", "N", "D"], ["AE", "N", "D"]], "don't": [["D", "OW", "N", "T"], ["D", "OW", "N"]],
               "own": [["OW", "N"]]}
    phones = "DH EH R AE N D OW N".split()
    assert spells(["their", "an", "don't"], phones, lexicon)
    assert spells(["there", "and", "own"], phones, lexicon)
    assert not spells(["there", "an", "own"], phones, lexicon)
    assert not spells(["there", "and"], phones, lexicon)
    assert not spells(["there", "and", "own", "own"], phones, lexicon)
    assert not spells(["their", "unknown"], phones, lexicon)
    assert spells([], [], lexicon)


def test_spelling_index_counts_readings():
    lexicon = {"their": [["DH", "EH", "R"]], "there": [["DH", "EH", "R"]], "an": [["AE", "N"]],
               "and": [["AH", "N", "D"], ["AE", "N", "D"]], "don't": [["D", "OW", "N", "T"], ["D", "OW", "N"]],
               "own": [["OW", "N"]], "d": [["D"]], "ocean": [["OW", "SH", "AH", "N"]]}
    index = SpellingIndex(lexicon)
    assert index.segmentations("DH EH R".split()) == 2  # homophones
    assert index.segmentations("AE N D OW N".split()) == 2  # "an don't" / "and own"
    assert index.segmentations("AE N D OW N".split(), limit=5) == 3  # and "an d own"
    assert index.segmentations("AE N D OW N T".split()) == 1 and index.segmentations("AE N D OW SH".split()) == 0
    assert index.segmentations("OW SH AH N".split()) == 1
    # "and" keeps the pronunciation that "an d" does not spell; "don't" as D OW N T only.
    assert index.unambiguous_pronunciations() == {
        "an": (("AE", "N"),), "and": (("AH", "N", "D"),), "don't": (("D", "OW", "N", "T"),), "own": (("OW", "N"),),
        "d": (("D",),), "ocean": (("OW", "SH", "AH", "N"),)}


def test_pronunciation_choice():
    lexicon = {"either": [["IY", "DH", "ER"], ["AY", "DH", "ER"]]}
    first = synthesize([["either"]] * 30, lexicon, ARPABET, difficulty=0.0, pronunciation="first")
    random = synthesize([["either"]] * 30, lexicon, ARPABET, difficulty=0.0, pronunciation="random")
    vowel = {ARPABET["IY"] - 1: "IY", ARPABET["AY"] - 1: "AY"}

    def firsts(w):
        return {vowel[ctc_collapse(w.utterance(i).argmax(axis=1).tolist())[0]] for i in range(len(w))}

    assert firsts(first) == {"IY"} and firsts(random) == {"IY", "AY"}


def test_score_columns_skip_disambiguation_symbols():
    tokens = SymbolTable.from_pairs([("<eps>", 0), ("<blk>", 1), ("A", 2), ("B", 3), ("#0", 4)])
    assert num_score_columns(tokens) == 3
    assert synthesize([["ab"]], {"ab": [["A", "B"]]}, tokens).num_columns == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sentences": [["dot", "unknown"]]}, "word 'unknown' is not in the lexicon"),
    ({"lexicon": {"dot": [["D", "AH", "ZZ"]]}, "sentences": [["dot"]]}, "phone 'ZZ' is not a token"),
    ({"difficulty": 1.5}, r"difficulty must be in \[0, 1\]"),
    ({"phone_frames": (3, 2)}, "phone_frames"),
    ({"frame_shift": 0.0}, "frame_shift"),
    ({"pronunciation": "last"}, "pronunciation"),
    ({"blank": "<b>"}, "blank token"),
])
def test_bad_input(kwargs, message):
    arguments = {"sentences": SENTENCES, "lexicon": LEX, "tokens": TOKENS, **kwargs}
    with pytest.raises(WorkloadError, match=message):
        synthesize(**arguments)


def test_save_and_load_round_trip(tmp_path):
    w = synthesize(SENTENCES, LEX, TOKENS_TXT, difficulty=0.3, seed=2)
    w.save(tmp_path / "set.npz")
    assert (tmp_path / "set.text").read_text().splitlines()[0] == "utt0000 dot toast see"
    back = Workload.load(tmp_path / "set.npz")
    assert np.array_equal(back.scores, w.scores) and np.array_equal(back.offsets, w.offsets)
    assert (back.utt_ids, back.references, back.frame_shift) == (w.utt_ids, w.references, w.frame_shift)
    assert back.metadata["difficulty"] == 0.3 and back.metadata["seed"] == 2
    assert back.phones == w.phones and back.phones[0] == ("D", "AH", "T", "T", "OW", "S", "T", "S", "IY")
    (tmp_path / "set.text").unlink()
    assert Workload.load(tmp_path / "set.npz").references is None


def test_load_rejects_bad_files(tmp_path):
    w = synthesize(SENTENCES, LEX, TOKENS)
    w.save(tmp_path / "set.npz")
    (tmp_path / "set.text").write_text("other a b\n")
    with pytest.raises(WorkloadError, match="utterance ids are not those"):
        Workload.load(tmp_path / "set.npz")
    np.savez(tmp_path / "bad.npz", scores=w.scores)
    with pytest.raises(WorkloadError, match="lacks"):
        Workload.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(WorkloadError, match="cannot read"):
        Workload.load(tmp_path / "junk.npz")
    (tmp_path / "set.text").write_bytes("utt0000 caf\u00e9\n".encode("latin-1"))
    with pytest.raises(WorkloadError, match="set.text: line 1: not valid UTF-8"):
        Workload.load(tmp_path / "set.npz")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("metadata", np.array("{oops"), "'metadata': not JSON"),
    ("metadata", np.array("[1, 2]"), "'metadata': expected a JSON object"),
    ("frame_shift", np.array([0.04, 0.04]), "'frame_shift': expected a number of seconds"),
    ("frame_shift", np.array("40ms"), "'frame_shift': expected a number of seconds"),
    ("frame_shift", np.float64(np.inf), "frame_shift must be a positive finite number"),
    ("phones", np.array("a b c"), "'phones': expected a 1-D array of strings"),
    ("utt_ids", np.array("utt0000"), "'utt_ids': expected a 1-D array of strings"),
])
def test_load_rejects_a_malformed_array(tmp_path, name, value, message):
    """A workload file whose arrays are not what Workload.save writes raises
    WorkloadError naming the file and the array, never a raw JSON, type or
    value error."""
    synthesize(SENTENCES, LEX, TOKENS).save(tmp_path / "set.npz")
    arrays = dict(np.load(tmp_path / "set.npz"))
    np.savez(tmp_path / "set.npz", **{**arrays, name: value})
    with pytest.raises(WorkloadError, match=f"^{re.escape(str(tmp_path / 'set.npz'))}: .*{re.escape(message)}"):
        Workload.load(tmp_path / "set.npz")


def test_constructor_checks_consistency():
    scores = np.zeros((5, 3), np.float32)
    with pytest.raises(WorkloadError, match="offsets must rise"):
        Workload(scores, np.array([0, 3, 4], np.int64), ("a", "b"), 0.04)
    with pytest.raises(WorkloadError, match="2 utterance ids for 1"):
        Workload(scores, np.array([0, 5], np.int64), ("a", "b"), 0.04)
    with pytest.raises(WorkloadError, match="float32"):
        Workload(scores.astype(np.float64), np.array([0, 5], np.int64), ("a",), 0.04)
    with pytest.raises(WorkloadError, match="whitespace"):
        Workload(scores, np.array([0, 5], np.int64), ("a b",), 0.04)


@pytest.mark.parametrize(("changes", "message"), [
    ({"utt_ids": ("a", "a")}, "unique"),
    ({"utt_ids": ("a", "")}, "non-empty strings"),
    ({"frame_shift": float("nan")}, "frame_shift"),
    ({"frame_shift": 0.0}, "frame_shift"),
    ({"frame_shift": float("inf")}, "frame_shift"),
    ({"frame_shift": "0.04"}, "frame_shift"),
    ({"references": (("x",),)}, "1 references for 2 utterances"),
    ({"phones": (("P",),)}, "1 phone sequences for 2 utterances"),
])
def test_constructor_checks_every_field(changes, message):
    fields = dict(scores=np.zeros((5, 3), np.float32), offsets=np.array([0, 2, 5], np.int64), utt_ids=("a", "b"),
                  frame_shift=0.04)
    Workload(**fields)
    with pytest.raises(WorkloadError, match=message):
        Workload(**{**fields, **changes})


def test_an_utterance_may_have_no_frames_and_head_clamps_its_count(tmp_path):
    w = Workload(np.zeros((5, 3), np.float32), np.array([0, 0, 5], np.int64), ("empty", "full"), 0.04)
    assert w.utterance(0).shape == (0, 3) and w.utterance(1).shape == (5, 3)
    assert len(w.head(-1)) == 0 and w.head(-1).num_frames == 0
    assert w.head(1).utt_ids == ("empty",) and w.head(9).utt_ids == ("empty", "full")
    w.save(tmp_path / "set.npz")
    assert Workload.load(tmp_path / "set.npz").offsets.tolist() == [0, 0, 5]


def test_load_names_the_file_of_an_inconsistent_workload(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, scores=np.zeros((5, 3), np.float32), offsets=np.array([0, 3], np.int64),
             utt_ids=np.array(["a"]), frame_shift=np.float64(0.04))
    with pytest.raises(WorkloadError, match=f"^{re.escape(str(path))}: offsets must rise"):
        Workload.load(path)


def test_kaldi_archive(tmp_path):
    kaldiio = pytest.importorskip("kaldiio")
    w = synthesize(SENTENCES, LEX, TOKENS)
    w.write_kaldi_ark(tmp_path / "scores.ark", scp=tmp_path / "scores.scp")
    matrices = dict(kaldiio.load_ark(str(tmp_path / "scores.ark")))
    assert list(matrices) == list(w.utt_ids)
    assert np.array_equal(matrices["utt0002"], w.utterance(2))
    assert np.array_equal(kaldiio.load_scp(str(tmp_path / "scores.scp"))["utt0001"], w.utterance(1))
