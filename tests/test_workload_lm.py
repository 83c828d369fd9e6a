"""Cutting an n-gram model down: restricting it to its most frequent words
(which words stay, every surviving n-gram keeps its values under the new
ids, unigrams renormalised) and pruning its least probable n-grams (which
stay); both keep the model consistent."""

from __future__ import annotations

import numpy as np
import pytest

from bench.workload.lm import LmRestrictionError, joint_logprobs, prune, restrict_vocabulary
from tests.random_lm import random_model
from wfst.errors import WfstError


def ngram_table(model):
    """{n-gram as words: (logprob, backoff)} over all orders."""
    return {tuple(model.vocab[i] for i in row): (p, b)
            for order in model.orders for row, p, b in zip(order.words, order.logprob, order.backoff)}


@pytest.mark.parametrize("seed, n_words", [(0, 1), (1, 5), (2, 12), (3, 39)])
def test_restriction(seed, n_words):
    model = random_model(seed)
    model.check_consistent()
    small = restrict_vocabulary(model, n_words)
    small.check_consistent()

    ordinary = [i for i, word in enumerate(model.vocab) if word not in ("<s>", "</s>", "<unk>")]
    ranked = sorted(ordinary, key=lambda i: (-model.orders[0].logprob[i], i))
    expected_words = {"<s>", "</s>", "<unk>"} | {model.vocab[i] for i in ranked[:n_words]}
    assert set(small.vocab) == expected_words
    assert list(small.vocab) == [word for word in model.vocab if word in expected_words]  # order kept

    before, after = ngram_table(model), ngram_table(small)
    assert set(after) == {ngram for ngram in before if set(ngram) <= expected_words}
    shift = np.log10(sum(10.0 ** before[(word,)][0] for word in expected_words))
    for ngram, (logprob, backoff) in after.items():
        assert backoff == before[ngram][1]
        assert logprob == pytest.approx(before[ngram][0] - (shift if len(ngram) == 1 else 0), abs=1e-12)
    assert np.sum(10.0 ** small.orders[0].logprob) == pytest.approx(1.0)


def test_all_words_keeps_every_ngram():
    model = random_model(4)
    same = restrict_vocabulary(model, 10_000)
    assert same.vocab == model.vocab and same.counts == model.counts
    for a, b in zip(same.orders[1:], model.orders[1:]):
        assert a == b


@pytest.mark.parametrize("n_words", [0, -3, 2.5, True, "10"])
def test_bad_word_counts(n_words):
    with pytest.raises(LmRestrictionError) as caught:
        restrict_vocabulary(random_model(0), n_words)
    assert isinstance(caught.value, WfstError) and isinstance(caught.value, ValueError)
    if n_words != 0:
        with pytest.raises(LmRestrictionError):
            prune(random_model(0), n_words)


def test_joint_logprobs_by_hand():
    model = random_model(5)
    for n in (2, 3):
        joint = joint_logprobs(model, n)
        for row, value in list(zip(model.orders[n - 1].words, joint))[:50]:
            words = [model.vocab[i] for i in row]
            expected = sum(model.logprob(words[:k]) for k in range(1, n + 1) if k > 1 or words[0] != "<s>")
            assert value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("keep", [0, 1, 25, 100, 10_000])
def test_prune(keep):
    model = random_model(6)
    pruned = prune(model, keep)
    pruned.check_consistent()
    assert pruned.orders[0] == model.orders[0]
    joints = {tuple(row): j for n in (2, 3) for row, j in zip(model.orders[n - 1].words.tolist(),
                                                              joint_logprobs(model, n))}
    ranked = sorted(joints.values(), reverse=True)
    threshold = ranked[keep - 1] if 0 < keep <= len(ranked) else (-np.inf if keep else np.inf)
    wanted = {ngram for ngram, j in joints.items() if j >= threshold}
    kept = {tuple(row) for order in pruned.orders[1:] for row in order.words.tolist()}
    assert wanted <= kept
    for ngram in kept - wanted:  # only what kept trigrams need
        assert len(ngram) == 2 and any(ngram in (t[:2], t[1:]) for t in wanted if len(t) == 3)
    before, after = ngram_table(model), ngram_table(pruned)
    assert all(after[ngram] == before[ngram] for ngram in after)
    if keep >= len(joints):
        assert pruned == model
