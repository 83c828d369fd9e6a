"""Seeded random back-off n-gram models that are consistent by construction:
the n-grams are those of random sentences, so every n-gram's history and
suffix are n-grams too. Probabilities are random (not normalised above the
unigrams), which tests code that must not assume normalisation."""

from __future__ import annotations

import numpy as np

from wfst.arpa import NgramModel, NgramOrder


def random_model(seed: int, num_words: int = 40, num_sentences: int = 150, order: int = 3) -> NgramModel:
    rng = np.random.default_rng(seed)
    vocab = ("</s>", "<s>", "<unk>") + tuple(f"w{i:03d}" for i in range(num_words))
    ngrams: list[set[tuple[int, ...]]] = [set() for _ in range(order)]
    for _ in range(num_sentences):
        # Zipf-like word choice, so that some words are much more frequent.
        body = 3 + np.minimum(rng.zipf(1.3, size=rng.integers(1, 12)) - 1, num_words - 1)
        sentence = [1, *body.tolist(), 0]
        for n in range(2, order + 1):
            ngrams[n - 1].update(tuple(sentence[i:i + n]) for i in range(len(sentence) - n + 1))
    unigram = rng.dirichlet(np.ones(len(vocab)))
    orders = [NgramOrder(np.arange(len(vocab))[:, None], np.log10(unigram), -rng.random(len(vocab)))]
    for n in range(2, order + 1):
        rows = np.array(sorted(ngrams[n - 1]), dtype=np.int32).reshape(-1, n)
        backoff = np.zeros(len(rows)) if n == order else -rng.random(len(rows))
        orders.append(NgramOrder(rows, -2 * rng.random(len(rows)), backoff))
    return NgramModel(vocab, tuple(orders))
