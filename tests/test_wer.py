"""Word error rate: hand-computed alignments, corpus totals, transcript files,
and the vectorised edit distance against a plain dynamic programme."""

import random
import re

import pytest

from wfst.wer import WerError, align, compute_wer, read_transcripts, write_transcripts


def counts(ref, hyp):
    u = align(ref, hyp)
    return u.substitutions, u.insertions, u.deletions


@pytest.mark.parametrize(("ref", "hyp", "expected"), [
    ("a b c d", "a b c d", (0, 0, 0)),
    ("a b c d", "a x c d", (1, 0, 0)),
    ("a b c", "a b c d", (0, 1, 0)),
    ("a b c", "a c", (0, 0, 1)),
    ("", "a b", (0, 2, 0)),
    ("a b", "", (0, 0, 2)),
    ("", "", (0, 0, 0)),
    ("the cat sat on the mat", "the cat sit on mat", (1, 0, 1)),
    ("a b c d e f", "x a b d e f g", (0, 2, 1)),
    # Two errors either way; the backtrace prefers substitutions.
    ("a b", "b a", (2, 0, 0)),
])
def test_hand_computed_counts(ref, hyp, expected):
    assert counts(ref, hyp) == expected


def test_alignment_pairs_mark_insertions_and_deletions():
    u = align("a b c d e f".split(), "x a b d e f g".split(), "utt1")
    assert u.alignment == ((None, "x"), ("a", "a"), ("b", "b"), ("c", None), ("d", "d"), ("e", "e"),
                           ("f", "f"), (None, "g"))
    assert (u.utt_id, u.ref_words, u.errors, u.correct) == ("utt1", 6, 3, False)


def test_word_ids_align_like_words():
    assert counts((1, 2, 3), (1, 5, 3, 4)) == (1, 1, 0)


def test_corpus_totals():
    stats = compute_wer(["a b c d", "e f", "g"], ["a x c d", "e f", "g h i"])
    assert (stats.errors, stats.ref_words, stats.substitutions, stats.insertions, stats.deletions) == (3, 7, 1, 2, 0)
    assert stats.wer == pytest.approx(300 / 7)
    assert (stats.sentence_errors, stats.ser) == (2, pytest.approx(200 / 3))
    assert str(stats) == "%WER 42.86 [ 3 / 7, 2 ins, 0 del, 1 sub ]"
    assert stats.to_dict()["utterances"] == 3


def test_wer_without_reference_words():
    assert compute_wer([""], [""]).wer == 0.0
    assert compute_wer([""], ["a"]).wer == float("inf")
    assert compute_wer([], []).ser == 0.0


def test_mappings_are_matched_by_utterance_id():
    stats = compute_wer({"u1": "a b", "u2": "c"}, {"u2": "c", "u1": "a"})
    assert [(u.utt_id, u.deletions) for u in stats.utterances] == [("u1", 1), ("u2", 0)]
    with pytest.raises(WerError, match="1 without a hypothesis"):
        compute_wer({"u1": "a", "u2": "b"}, {"u1": "a"})
    with pytest.raises(WerError, match="both be mappings"):
        compute_wer({"u1": "a"}, ["a"])


def test_sequence_lengths_must_match():
    with pytest.raises(WerError, match="2 references but 1 hypotheses"):
        compute_wer(["a", "b"], ["a"])
    with pytest.raises(WerError, match="1 utterance ids for 2"):
        compute_wer(["a", "b"], ["a", "b"], utt_ids=["u1"])


def plain_edit_distance(ref, hyp):
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row = row, [i]
        for j, h in enumerate(hyp, 1):
            row.append(min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (r != h)))
    return row[-1]


def test_edit_distance_matches_a_plain_dynamic_programme():
    rng = random.Random(0)
    for _ in range(300):
        ref = [rng.choice("abcd") for _ in range(rng.randrange(12))]
        hyp = [rng.choice("abcd") for _ in range(rng.randrange(12))]
        u = align(ref, hyp)
        assert u.errors == plain_edit_distance(ref, hyp)
        # The alignment spells out both transcripts.
        assert [r for r, _ in u.alignment if r is not None] == ref
        assert [h for _, h in u.alignment if h is not None] == hyp


def test_transcript_files_round_trip(tmp_path):
    path = tmp_path / "text"
    write_transcripts(path, {"u1": ["a", "b"], "u2": []})
    assert path.read_text() == "u1 a b\nu2\n"
    assert read_transcripts(path) == {"u1": ("a", "b"), "u2": ()}
    path.write_text("u1 a\n\nu1 b\n")
    with pytest.raises(WerError, match="line 3: utterance id 'u1' appears twice"):
        read_transcripts(path)


def test_a_transcript_file_that_is_not_utf8_names_its_line(tmp_path):
    """A Latin-1 Kaldi text raises WerError naming the file and the line, not
    a UnicodeDecodeError; line ends read as before (CRLF, CR)."""
    path = tmp_path / "text"
    path.write_bytes("u1 a\r\nu2 caf\u00e9\n".encode("latin-1"))
    with pytest.raises(WerError, match=f"^{re.escape(str(path))}: line 2: not valid UTF-8"):
        read_transcripts(path)
    path.write_bytes("u1 a\ru2 b\r\nu3 caf\u00e9\n".encode("latin-1"))  # a bare CR ends a line too
    with pytest.raises(WerError, match="line 3: not valid UTF-8"):
        read_transcripts(path)
    path.write_bytes("u1 a\r\nu2 caf\u00e9\ru3\n".encode("utf-8"))
    assert read_transcripts(path) == {"u1": ("a",), "u2": ("caf\u00e9",), "u3": ()}


def test_a_tie_between_a_deletion_and_an_insertion_aligns_the_deletion_first():
    alignment = align("a b a", "b a b")
    assert (alignment.substitutions, alignment.insertions, alignment.deletions) == (0, 1, 1)
    assert alignment.alignment == ((None, "b"), ("a", "a"), ("b", "b"), ("a", None))
