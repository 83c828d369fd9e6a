"""Lexicons: Kaldi lexicon.txt / lexiconp.txt and CMUdict, file order, round
trips, and a LexiconError naming path and line for each malformed input."""

from __future__ import annotations

import os

import pytest

from wfst.errors import WfstError
from wfst.lexicon import Lexicon, LexiconError, read_lexicon


def write(tmp_path, text: str, name: str = "lexicon.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_kaldi_lexicon(tmp_path):
    path = write(tmp_path, "read R IY D\nread R EH D\nthe DH AH\n\nthe\tDH IY\nab AE B\n")
    lexicon = read_lexicon(path)
    assert list(lexicon) == ["read", "the", "ab"]
    assert lexicon["read"] == (("R", "IY", "D"), ("R", "EH", "D"))
    assert lexicon["the"] == (("DH", "AH"), ("DH", "IY"))
    assert lexicon.phones == ("AE", "AH", "B", "D", "DH", "EH", "IY", "R")
    assert lexicon.num_prons == 5 and len(lexicon) == 3
    assert not lexicon.has_probabilities
    assert lexicon.probabilities("read") == (1.0, 1.0)
    assert list(lexicon.entries())[1] == ("read", ("R", "EH", "D"), 1.0)


def test_cmudict_style(tmp_path):
    text = (";;; header comment\n# another comment\na AH\na(2) EY\n"
            "record R EH K ER D # noun\nrecord(2) R IH K AO R D\na(3) AH\n")
    lexicon = read_lexicon(write(tmp_path, text, "cmu.dict"))
    assert lexicon["a"] == (("AH",), ("EY",))  # the repeated a(3) AH is dropped
    assert lexicon["record"] == (("R", "EH", "K", "ER", "D"), ("R", "IH", "K", "AO", "R", "D"))


def test_lexiconp(tmp_path):
    lexicon = read_lexicon(write(tmp_path, "a 1.0 AH\na 0.25 EY\nb 1 B IY\n"))
    assert lexicon["a"] == (("AH",), ("EY",)) and lexicon.probabilities("a") == (1.0, 0.25)
    assert lexicon.has_probabilities
    # told that there is no probability column, "1.0" is a phone
    assert read_lexicon(write(tmp_path, "a 1.0 AH\n"), probabilities=False)["a"] == (("1.0", "AH"),)


def test_numeric_phones_are_phones_without_a_probability_column(tmp_path):
    """A first entry of two fields is 'word phone' even when the phone looks
    like a number (integer-mapped lexicons): no probability column."""
    lexicon = read_lexicon(write(tmp_path, "a 1\nb 2 3\n"))
    assert lexicon["a"] == (("1",),) and lexicon["b"] == (("2", "3"),)
    assert not lexicon.has_probabilities


def test_a_repeated_pronunciation_keeps_its_first_probability(tmp_path):
    lexicon = read_lexicon(write(tmp_path, "a 0.5 AH\na 1.0 EY\na 1.0 AH\n"))
    assert lexicon["a"] == (("AH",), ("EY",)) and lexicon.probabilities("a") == (0.5, 1.0)
    assert Lexicon({"a": [["AH"], ["AH"]]}, {"a": [0.25, 1.0]}).probabilities("a") == (0.25,)


@pytest.mark.parametrize("probs", [None, {"a": [1.0, 0.5]}])
def test_write_round_trip(tmp_path, probs):
    lexicon = Lexicon({"a": [["AH"], ["EY"]], "zoo": [("Z", "UW")]}, probs)
    lexicon.write(tmp_path / "out.txt")
    back = read_lexicon(tmp_path / "out.txt")
    assert dict(back) == dict(lexicon)
    assert [back.probabilities(w) for w in back] == [lexicon.probabilities(w) for w in lexicon]


def test_restrict_keeps_lexicon_order():
    lexicon = Lexicon({"c": [["K"]], "a": [["AH"]], "b": [["B"]]})
    restricted = lexicon.restrict(["b", "c", "missing"])
    assert list(restricted) == ["c", "b"] and restricted.phones == ("B", "K")


def test_pocketsphinx_cmudict():
    pocketsphinx = pytest.importorskip("pocketsphinx")
    path = os.path.join(os.path.dirname(pocketsphinx.__file__), "model", "en-us", "cmudict-en-us.dict")
    lexicon = read_lexicon(path)
    assert lexicon.num_prons == 134_860 and len(lexicon.phones) == 39
    assert lexicon["a"] == (("AH",), ("EY",))
    assert "ngo's" not in lexicon


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("a AH\nb\n", 2, "no phones"),
        ("a AH\n<s> S\n", 2, "reserved"),
        ("a AH\n#0 S\n# comment\n", None, None),  # '#0' opens a comment line: fine
        ("a AH\nb B <blk>\n", 2, "reserved"),
        ("a AH\nb B #1\n", None, None),  # '#1' opens a trailing comment: b is just B
        ("a 1.0 AH\nb B\n", 2, "probability"),
        ("a 1.0 AH\nb 1.5 B\n", 2, "(0, 1]"),
        ("a 1.0 AH\nb 0 B\n", 2, "(0, 1]"),
        ("a 1.0 AH\nb nan B\n", 2, "(0, 1]"),
        ("a AH\nb\u00a0x B\n", 2, "whitespace"),
        ("a AH\nb B\u2003C\n", 2, "whitespace"),
    ],
)
def test_malformed_lines(tmp_path, text, line, words):
    path = write(tmp_path, text)
    if line is None:
        read_lexicon(path)
        return
    with pytest.raises(LexiconError) as info:
        read_lexicon(path)
    error = info.value
    assert isinstance(error, ValueError) and isinstance(error, WfstError)
    assert error.path == str(path) and error.line == line
    assert words in str(error) and f"line {line}" in str(error) and str(path) in str(error)


def test_not_utf8(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"a AH\n\xff B\n")
    with pytest.raises(LexiconError, match="line 2: not valid UTF-8"):
        read_lexicon(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_lexicon(tmp_path / "absent.txt")


@pytest.mark.parametrize(
    "prons, probs, words",
    [
        ({"a": []}, None, "no pronunciation"),
        ({"a": [[]]}, None, "empty pronunciation"),
        ({"": [["A"]]}, None, "non-empty"),
        ({"<eps>": [["A"]]}, None, "reserved"),
        ({"a": [["#1"]]}, None, "reserved"),
        ({"a": [["A B"]]}, None, "whitespace"),
        ({"a": [["A"]]}, {"a": [0.5, 0.5]}, "2 probabilities"),
        ({"a": [["A"]]}, {"b": [0.5]}, "without pronunciations"),
        ({"a": ["AH"]}, None, "sequences of phones"),
        ({"a": "AH B"}, None, "sequences of phones"),
    ],
)
def test_bad_entries(prons, probs, words):
    with pytest.raises(LexiconError, match=words):
        Lexicon(prons, probs)
