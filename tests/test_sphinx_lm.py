"""pocketsphinx's binary trie LM read with numpy: exact n-gram counts, and
probabilities (stored n-grams and backed-off queries) equal to those of
pocketsphinx's own ``NGramModel.prob``; typed errors for damaged files."""

from __future__ import annotations

import os

import numpy as np
import pytest

pocketsphinx = pytest.importorskip("pocketsphinx")

from bench.workload.sphinx_lm import LOG_BASE, SphinxLmFormatError, read_sphinx_lm  # noqa: E402
from wfst.errors import WfstError  # noqa: E402

LM_PATH = os.path.join(pocketsphinx.get_model_path(), "en-us", "en-us.lm.bin")
UNIT = np.log10(LOG_BASE)
"""pocketsphinx's prob() returns whole units of log base 1.0001 (truncated)."""


@pytest.fixture(scope="module")
def model():
    return read_sphinx_lm(LM_PATH)


@pytest.fixture(scope="module")
def reference():
    return pocketsphinx.NGramModel(pocketsphinx.Config(), pocketsphinx.LogMath(), LM_PATH)


def test_counts_and_consistency(model):
    assert model.counts == (72547, 2051541, 1669625)
    assert model.order == 3
    for word in ("<s>", "</s>", "the", "ngo's"):
        assert word in model.vocab
    assert model.logprob(["<s>"]) == pytest.approx(-99, abs=1e-3)
    assert np.all(model.orders[2].backoff == 0)
    model.check_consistent()


def sample_queries(model, size, seed):
    """Seeded word-id rows: stored unigrams, bigrams and trigrams, and queries
    that must back off (random pairs, a bigram history with a random word, a
    random history before a stored bigram, a stored trigram's suffix with a
    random word)."""
    rng = np.random.default_rng(seed)
    vocab_size = len(model.vocab)

    def stored(n):
        return model.orders[n - 1].words[rng.integers(0, model.counts[n - 1], size)]

    def random_words(k):
        return rng.integers(0, vocab_size, (size, k))

    return {
        "unigram": random_words(1),
        "bigram": stored(2),
        "trigram": stored(3),
        "random pair": random_words(2),
        "bigram + random": np.hstack([stored(2), random_words(1)]),
        "random + bigram": np.hstack([random_words(1), stored(2)]),
        "trigram suffix + random": np.hstack([stored(3)[:, 1:], random_words(1)]),
    }


def test_probabilities_match_pocketsphinx(model, reference):
    backed_off = 0
    for name, queries in sample_queries(model, 1500, seed=3).items():
        ours = model.logprobs(queries)
        # prob() takes the word first, then its history, most recent first.
        theirs = np.array([reference.prob([model.vocab[i] for i in row[::-1]]) for row in queries]) * UNIT
        error = np.abs(ours - theirs)
        assert error.max() < min(1e-4, UNIT * 1.001), (name, queries[np.argmax(error)], error.max())
        if queries.shape[1] > 1:
            backed_off += np.count_nonzero(model.find(queries) < 0)
    assert backed_off > 4000  # the sample exercises back-off, not only stored n-grams


def test_damaged_files_raise_typed_errors(tmp_path):
    data = open(LM_PATH, "rb").read()
    unigrams_at = 36 + 3 * 4 * 65536  # after header, counts, quantization header and tables

    def read(content):
        path = tmp_path / "damaged.lm.bin"
        path.write_bytes(content)
        with pytest.raises(SphinxLmFormatError) as caught:
            read_sphinx_lm(path)
        assert isinstance(caught.value, WfstError) and isinstance(caught.value, ValueError)
        assert str(path) in str(caught.value)
        return caught.value

    assert "not a Sphinx binary trie" in str(read(b"Darpa Trigram LM" + data[16:1000]))
    for cut in (10, 30, 5000, unigrams_at + 100, unigrams_at + 72548 * 12 + 1000, len(data) - 20):
        assert "file ends" in str(read(data[:cut]))
    # A unigram whose range of bigrams starts before the previous one's.
    broken = bytearray(data)
    broken[unigrams_at + 12 * 100 + 8:unigrams_at + 12 * 100 + 12] = (2**31).to_bytes(4, "little")
    assert "pointers to the 2-grams" in str(read(bytes(broken)))
