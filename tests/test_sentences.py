"""Seeded sentences: the LM sampler draws words with the model's back-off
probabilities (checked empirically, on a model that is not normalised), and
both generators honour their lengths, vocabularies and seeds."""

from __future__ import annotations

import numpy as np
import pytest

from bench.workload.sentences import SentenceError, _Sampler, random_word_sentences, sample_sentences
from tests.random_lm import random_model

MODEL = random_model(7, num_words=10, num_sentences=60)


@pytest.mark.parametrize("history", [(), ("<s>",), ("w000",), ("<s>", "w000"), ("w001", "w000"), ("w009", "w008")])
def test_sampler_follows_backoff_probabilities(history):
    ids = tuple(MODEL.word_id(word) for word in history)
    every_word = np.arange(len(MODEL.vocab))
    queries = np.hstack([np.tile(ids, (len(every_word), 1)).astype(np.int64).reshape(len(every_word), len(ids)),
                         every_word[:, None]])
    exact = 10.0 ** MODEL.logprobs(queries)
    exact /= exact.sum()
    sampler = _Sampler(MODEL, np.random.default_rng(0))
    draws = 4000
    counts = np.bincount([sampler.draw(ids) for _ in range(draws)], minlength=len(every_word))
    assert 0.5 * np.abs(counts / draws - exact).sum() < 0.04


def test_sample_sentences():
    sentences = sample_sentences(MODEL, 40, seed=1, min_words=2, max_words=6)
    assert len(sentences) == 40
    assert all(2 <= len(s) <= 6 for s in sentences)
    assert not {"<s>", "</s>", "<unk>"} & {word for s in sentences for word in s}
    assert sentences == sample_sentences(MODEL, 40, seed=1, min_words=2, max_words=6)
    assert sentences != sample_sentences(MODEL, 40, seed=2, min_words=2, max_words=6)
    allowed = {"w000", "w002", "w004"}
    assert {w for s in sample_sentences(MODEL, 20, seed=1, words=allowed) for w in s} <= allowed


def test_accept_redraws_rejected_sentences():
    def accept(sentence):
        return "w001" not in sentence

    plain = sample_sentences(MODEL, 300, seed=1, min_words=2, max_words=6)
    accepted = sample_sentences(MODEL, 30, seed=1, min_words=2, max_words=6, accept=accept)
    assert any(not accept(s) for s in plain) and all(accept(s) for s in accepted)
    assert accepted == [s for s in plain if accept(s)][:30]  # the same draws, rejected ones skipped
    with pytest.raises(SentenceError, match="that `accept` accepts"):
        sample_sentences(MODEL, 1, seed=1, accept=lambda sentence: False)


def test_random_word_sentences():
    words = [f"w{i}" for i in range(50)]
    sentences = random_word_sentences(words, 30, seed=3, min_words=4, max_words=9)
    assert len(sentences) == 30 and all(4 <= len(s) <= 9 for s in sentences)
    assert {w for s in sentences for w in s} <= set(words)
    assert sentences == random_word_sentences(set(reversed(words)), 30, seed=3, min_words=4, max_words=9)
    assert sentences != random_word_sentences(words, 30, seed=4, min_words=4, max_words=9)


@pytest.mark.parametrize("call", [
    lambda: sample_sentences(MODEL, 3, 0, min_words=5, max_words=4),
    lambda: sample_sentences(MODEL, -1, 0),
    lambda: sample_sentences(MODEL, 3, 0, words={"nothing"}),
    lambda: random_word_sentences([], 3, 0),
    lambda: random_word_sentences(["a"], 3, 0, min_words=0),
])
def test_bad_arguments(call):
    with pytest.raises(SentenceError):
        call()
