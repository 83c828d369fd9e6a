"""ARPA n-gram models: reading a hand-written model, back-off probabilities
computed by hand, exact round trips, invariants, and a typed error naming the
line for each kind of malformed file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wfst.arpa import ArpaFormatError, NgramModel, NgramOrder, read_arpa, write_arpa
from wfst.errors import WfstError

TINY = """\
A comment before the data is ignored.

\\data\\
ngram 1=5
ngram 2=4
ngram 3=2

\\1-grams:
-1.0\t</s>
-99\t<s>\t-0.5
-0.6\ta\t-0.3
-0.7\tb\t-0.2
-1.2\tc

\\2-grams:
-0.4\ta b\t-0.25
-0.2\t<s> a\t-0.1
-0.5\tb </s>
-0.3 b c

\\3-grams:
-0.15\ta b c
-0.05\t<s> a b

\\end\\
"""


def write(tmp_path, text, name="lm.arpa"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.fixture()
def tiny(tmp_path):
    return read_arpa(write(tmp_path, TINY))


def test_reads_tables(tiny):
    assert tiny.vocab == ("</s>", "<s>", "a", "b", "c")
    assert tiny.order == 3 and tiny.counts == (5, 4, 2)
    unigrams, bigrams, trigrams = tiny.orders
    np.testing.assert_array_equal(unigrams.words[:, 0], np.arange(5))
    np.testing.assert_array_equal(unigrams.logprob, [-1.0, -99, -0.6, -0.7, -1.2])
    np.testing.assert_array_equal(unigrams.backoff, [0.0, -0.5, -0.3, -0.2, 0.0])
    # Rows are sorted by word id, whatever the file's order.
    np.testing.assert_array_equal(bigrams.words, [[1, 2], [2, 3], [3, 0], [3, 4]])
    np.testing.assert_array_equal(bigrams.logprob, [-0.2, -0.4, -0.5, -0.3])
    np.testing.assert_array_equal(bigrams.backoff, [-0.1, -0.25, 0.0, 0.0])
    np.testing.assert_array_equal(trigrams.words, [[1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(trigrams.backoff, [0.0, 0.0])
    assert trigrams.words.dtype == np.int32 and trigrams.logprob.dtype == np.float64
    assert tiny.word_id("c") == 4
    with pytest.raises(KeyError, match="'zebra'"):
        tiny.word_id("zebra")
    tiny.check_consistent()


@pytest.mark.parametrize("words, expected", [
    (["<s>"], -99.0),
    (["c"], -1.2),
    (["<s>", "a", "b"], -0.05),                 # trigram
    (["a", "b"], -0.4),                         # bigram
    (["<s>", "a", "c"], -0.1 - 0.3 - 1.2),      # bo(<s> a) + bo(a) + P(c)
    (["a", "b", "</s>"], -0.25 - 0.5),          # bo(a b) + P(</s> | b)
    (["b", "c", "a"], 0.0 + 0.0 - 0.6),         # "b c" and "c" have no back-off weight
    (["c", "b", "a"], -0.2 - 0.6),              # history "c b" absent: bo 0, then bo(b) + P(a)
    (["c", "c", "a", "b", "c"], -0.15),         # only the last two history words count
])
def test_logprob_with_backoff(tiny, words, expected):
    assert tiny.logprob(words) == pytest.approx(expected, abs=1e-12)


def test_logprobs_vectorised_matches_logprob(tiny):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, size=(200, 3))
    got = tiny.logprobs(ids)
    for row, value in zip(ids, got):
        assert value == tiny.logprob([tiny.vocab[i] for i in row])
    np.testing.assert_array_equal(tiny.logprobs(ids[:, 1:]), [tiny.logprob([tiny.vocab[i] for i in r[1:]])
                                                              for r in ids])
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        tiny.logprobs([[0, 5]])


def test_find(tiny):
    np.testing.assert_array_equal(tiny.find([[2, 3, 4], [1, 2, 3], [1, 2, 4], [9, 9, 9]]), [1, 0, -1, -1])
    np.testing.assert_array_equal(tiny.find([[3, 0], [0, 3]]), [2, -1])


def test_continuations(tiny):
    begin, end = tiny.continuations([[2], [3], [0], [9]])
    np.testing.assert_array_equal(begin[:2], [1, 2])
    np.testing.assert_array_equal(end - begin, [1, 2, 0, 0])
    begin, end = tiny.continuations([[1, 2], [2, 3], [3, 4]])
    np.testing.assert_array_equal(begin[:2], [0, 1])
    np.testing.assert_array_equal(end - begin, [1, 1, 0])
    with pytest.raises(ValueError, match="1 <= m < 3"):
        tiny.continuations([[1, 2, 3]])


def test_round_trip_is_exact(tiny, tmp_path):
    path = tmp_path / "out.arpa"
    write_arpa(tiny, path)
    again = read_arpa(path)
    assert again == tiny
    write_arpa(again, tmp_path / "again.arpa")
    assert (tmp_path / "again.arpa").read_bytes() == path.read_bytes()


def test_round_trip_keeps_every_float64_bit(tmp_path):
    """Values that have no short decimal form (random float64s) come back bit for bit."""
    rng = np.random.default_rng(1)
    vocab = tuple(f"w{i}" for i in range(50))
    bigrams = np.unique(rng.integers(0, 50, size=(300, 2)), axis=0)
    model = NgramModel(vocab, (
        NgramOrder(np.arange(50)[:, None], -rng.random(50) * 5, -rng.random(50)),
        NgramOrder(bigrams, -rng.random(len(bigrams)) * 3, np.zeros(len(bigrams))),
    ))
    write_arpa(model, tmp_path / "random.arpa")
    again = read_arpa(tmp_path / "random.arpa")
    assert again == model
    assert again.orders[0].logprob.tobytes() == model.orders[0].logprob.tobytes()
    changed = NgramModel(vocab, (model.orders[0], NgramOrder(
        bigrams, np.nextafter(model.orders[1].logprob, 0), model.orders[1].backoff)))
    assert changed != model


def test_model_invariants():
    unigrams = NgramOrder([[0], [1], [2]], [-1, -1, -1], [0, 0, 0])
    with pytest.raises(ArpaFormatError, match="out of order"):
        NgramModel(("a", "b", "c"), (unigrams, NgramOrder([[1, 2], [0, 1]], [-1, -1], [0, 0])))
    with pytest.raises(ArpaFormatError, match="duplicate"):
        NgramModel(("a", "b", "c"), (unigrams, NgramOrder([[0, 1], [0, 1]], [-1, -1], [0, 0])))
    with pytest.raises(ArpaFormatError, match="back-off"):
        NgramModel(("a", "b", "c"), (unigrams, NgramOrder([[0, 1]], [-1], [-0.5])))
    with pytest.raises(ArpaFormatError, match="outside"):
        NgramModel(("a", "b", "c"), (unigrams, NgramOrder([[0, 3]], [-1], [0])))
    with pytest.raises(ArpaFormatError, match="whitespace"):
        NgramModel(("a", "b c", "d"), (unigrams,))
    with pytest.raises(ArpaFormatError, match="twice"):
        NgramModel(("a", "b", "a"), (unigrams,))
    with pytest.raises(ArpaFormatError, match="every word"):
        NgramModel(("a", "b", "c", "d"), (unigrams,))
    with pytest.raises(ArpaFormatError, match="NaN"):
        NgramModel(("a", "b", "c"), (NgramOrder([[0], [1], [2]], [-1, math.nan, -1], [0, 0, 0]),))


def test_model_invariants_refuse_negative_word_ids():
    unigrams = NgramOrder([[0], [1], [2]], [-1, -1, -1], [0, 0, 0])
    with pytest.raises(ArpaFormatError, match="outside"):
        NgramModel(("a", "b", "c"), (unigrams, NgramOrder([[-1, 1]], [-1], [0])))


def test_a_probability_of_one_is_a_probability(tmp_path):
    """log10 P = 0 (P = 1) is allowed; only values above 0 are refused."""
    model = read_arpa(write(tmp_path, edit("-0.05\t<s> a b", "0\t<s> a b")))
    assert model.logprob(["<s>", "a", "b"]) == 0.0


def test_check_consistent_names_missing_lower_orders(tiny):
    unigrams, bigrams, trigrams = tiny.orders
    keep = [0, 2, 3]  # drop "a b", the history of "a b c" and the suffix of "<s> a b"
    broken = NgramModel(tiny.vocab, (unigrams, NgramOrder(
        bigrams.words[keep], bigrams.logprob[keep], bigrams.backoff[keep]), trigrams))
    with pytest.raises(ArpaFormatError, match="1 3-grams lack their history.*'a b c'"):
        broken.check_consistent()


def edit(old, new):
    assert old in TINY
    return TINY.replace(old, new, 1)


def line_of(text, fragment):
    return text.split("\n").index(fragment) + 1


@pytest.mark.parametrize("text, line, message", [
    (edit("\\data\\", "\\dada\\"), None, "no '\\\\data\\\\'"),
    (edit("ngram 1=5\n", ""), 4, "ngram 1=count"),
    (edit("ngram 2=4", "ngram 3=4"), 5, "ngram 2=count"),
    (edit("ngram 1=5", "ngram 1=0"), 4, "'ngram 1=0': a model needs at least one unigram"),
    (edit("ngram 2=4", "ngram 2=5"), line_of(TINY, "\\3-grams:"), "announces 5 2-grams.*has 4"),
    (edit("ngram 2=4", "ngram 2=3"), line_of(TINY, "-0.3 b c"), "announces 3 2-grams.*has 4"),
    (edit("ngram 3=2", "ngram 3=3"), line_of(TINY, "\\end\\"), "announces 3 3-grams"),
    (edit("-0.4\ta b", "-0.4x\ta b"), line_of(TINY, "-0.4\ta b\t-0.25"), "log-probability '-0.4x'"),
    (edit("-0.4\ta b\t-0.25", "-0.4\ta b\tnan"), line_of(TINY, "-0.4\ta b\t-0.25"), "back-off weight 'nan'"),
    (edit("-0.3 b c", "-0.3 b d"), line_of(TINY, "-0.3 b c"), "word 'd' of a 2-gram is not a unigram"),
    (edit("-0.5\tb </s>", "-0.5\ta b"), line_of(TINY, "-0.5\tb </s>"), "'a b' also appears on line"),
    (edit("-0.7\tb\t-0.2", "-0.7\ta\t-0.2"), line_of(TINY, "-0.7\tb\t-0.2"), "'a' also appears"),
    (edit("-0.15\ta b c", "-0.15\ta b c\t-0.1"), line_of(TINY, "-0.15\ta b c"), r"\(4 fields\), got 5"),
    (edit("-0.3 b c", "-0.3 b"), line_of(TINY, "-0.3 b c"), r"\(3 or 4 fields\), got 2"),
    (edit("\\end\\\n", ""), None, "file ends before '\\\\end\\\\'"),
    (edit("\\end\\", "\\end\\\nmore"), line_of(TINY, "\\end\\") + 1, "after '\\\\end\\\\'"),
    (edit("\\2-grams:", "\\3-grams:"), line_of(TINY, "\\2-grams:"), "expected '\\\\2-grams:'"),
    (edit("-0.4\ta b", "0.4\ta b"), line_of(TINY, "-0.4\ta b\t-0.25"), "log-probability 0.4 is above 0"),
    (edit("-0.4\ta b\t-0.25", "-0.4\ta b\tinf"), line_of(TINY, "-0.4\ta b\t-0.25"), "back-off weight inf"),
])
def test_malformed_files_name_the_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(ArpaFormatError, match=message) as caught:
        read_arpa(path)
    error = caught.value
    assert isinstance(error, WfstError) and isinstance(error, ValueError)
    assert error.path == str(path) and error.line == line
    assert str(path) in str(error)
    if line is not None:
        assert f"line {line}" in str(error)


def test_a_byte_order_mark_is_dropped_and_a_gzip_file_is_named(tmp_path, tiny):
    assert read_arpa(write(tmp_path, b"\xef\xbb\xbf" + TINY.encode(), "bom.arpa")).counts == tiny.counts
    import gzip

    with pytest.raises(ArpaFormatError, match="a gzip file: decompress it first"):
        read_arpa(write(tmp_path, gzip.compress(TINY.encode()), "lm.arpa.gz"))


def test_not_utf8_names_the_line(tmp_path):
    path = write(tmp_path, edit("ignored.", "ignored \xff.").encode("latin-1"))
    with pytest.raises(ArpaFormatError, match="not valid utf-8") as caught:
        read_arpa(path)
    assert caught.value.line == 1
    assert read_arpa(path, encoding="latin-1").counts == (5, 4, 2)


def test_words_are_decoded_with_the_encoding_given(tmp_path):
    path = write(tmp_path, TINY.replace("c\n", "c\xe9\n").encode("latin-1"))  # the word c is now c\xe9
    model = read_arpa(path, encoding="latin-1")
    assert model.vocab[-1] == "c\xe9" and model.logprob(["a", "b", "c\xe9"]) == -0.15


def test_truncated_file(tmp_path):
    data = TINY.encode()
    for cut in range(0, len(data), 7):
        with pytest.raises(ArpaFormatError):
            read_arpa(write(tmp_path, data[:cut]))
