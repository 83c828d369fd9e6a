"""Seeded reference sentences for synthetic utterances: sampled from an n-gram
LM (what a recognizer's LM expects) or made of uniformly random words (what it
does not, so the search leans on back-off).

Both are deterministic functions of their arguments and ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

import numpy as np

from wfst.arpa import NgramModel
from wfst.errors import WfstError

__all__ = ["SentenceError", "random_word_sentences", "sample_sentences"]

NON_WORDS = ("<s>", "</s>", "<unk>")
"""Model words that never appear inside a sentence."""

MAX_TRIES = 1000
"""Draws allowed per sentence (or per word) before giving up with an error."""


class SentenceError(WfstError, ValueError):
    """Sentences cannot be made with the given arguments."""


class _Sampler:
    """Draws words from an n-gram model with ARPA back-off semantics.

    ``P(w | h)`` is ``h``'s explicit probability for the words ``h`` continues
    explicitly (total ``M``) and ``backoff(h) * P(w | h')`` for the others
    (total ``B = backoff(h) * (T(h') - sum of P(w | h') over the explicit
    words)``, with ``h'`` the history without its first word and ``T`` the
    total of a distribution, 1 for a normalised model). A draw picks the
    explicit words with probability ``M / (M + B)``, else draws from ``h'``,
    redrawing the explicit words. This samples ``P(w | h) / T(h)`` exactly,
    also for a model that is not normalised (e.g. restricted to fewer words)."""

    def __init__(self, model: NgramModel, rng: np.random.Generator):
        self.model = model
        self.rng = rng
        unigram = 10.0 ** model.orders[0].logprob
        self.unigram_cdf = np.cumsum(unigram)
        self.totals: dict[tuple[int, ...], tuple[float, float]] = {}

    def _split(self, history: tuple[int, ...]) -> tuple[float, float]:
        """``(M, B)`` of ``history`` (see the class docstring), memoized."""
        split = self.totals.get(history)
        if split is None:
            begin, end = self.model.continuations(np.array([history]))
            order = self.model.orders[len(history)]
            explicit = order.words[begin[0]:end[0]]
            shorter = history[1:]
            lower_total = sum(self._split(shorter)) if shorter else self.unigram_cdf[-1]
            covered = np.sum(10.0 ** self.model.logprobs(explicit[:, 1:])) if len(explicit) else 0.0
            found = self.model.find(np.array([history]))[0]
            backoff = 10.0 ** self.model.orders[len(history) - 1].backoff[found] if found >= 0 else 1.0
            split = (float(np.sum(10.0 ** order.logprob[begin[0]:end[0]])),
                     float(backoff * max(lower_total - covered, 0.0)))
            self.totals[history] = split
        return split

    def draw(self, history: tuple[int, ...]) -> int:
        """One word id after ``history`` (word ids, at most ``order - 1``)."""
        if not history:
            return int(min(np.searchsorted(self.unigram_cdf, self.rng.random() * self.unigram_cdf[-1],
                                           side="right"), len(self.unigram_cdf) - 1))
        explicit_mass, backoff_mass = self._split(history)
        begin, end = self.model.continuations(np.array([history]))
        order = self.model.orders[len(history)]
        explicit = order.words[begin[0]:end[0], -1]
        if self.rng.random() * (explicit_mass + backoff_mass) < explicit_mass:
            cdf = np.cumsum(10.0 ** order.logprob[begin[0]:end[0]])
            return int(explicit[min(np.searchsorted(cdf, self.rng.random() * cdf[-1], side="right"),
                                    len(cdf) - 1)])
        for _ in range(MAX_TRIES):
            word = self.draw(history[1:])
            if word not in explicit:
                return word
        raise SentenceError(f"back-off from history {history} drew only explicit continuations "
                            f"in {MAX_TRIES} tries")


def sample_sentences(model: NgramModel, n: int, seed: int, *, min_words: int = 1, max_words: int = 30,
                     words: Collection[str] | None = None,
                     accept: Callable[[tuple[str, ...]], bool] | None = None) -> list[tuple[str, ...]]:
    """``n`` sentences drawn from ``model``, each a tuple of words.

    A sentence starts after ``<s>`` and ends where ``</s>`` is drawn; those and
    ``<unk>`` never appear in it. Sentences with fewer than ``min_words`` or
    more than ``max_words`` words, or for which ``accept`` returns False, are
    drawn again. With ``words`` (e.g. the lexicon's words), any other word
    drawn is drawn again, so sentences follow the model conditioned on that
    vocabulary.
    """
    _check_lengths(n, min_words, max_words)
    vocab = model.vocab
    allowed = np.array([word not in NON_WORDS and (words is None or word in words) for word in vocab])
    if not allowed.any():
        raise SentenceError("no word of the model may appear in a sentence")
    if "<s>" not in vocab or "</s>" not in vocab:
        raise SentenceError("the model needs <s> and </s> to sample sentences")
    start, end = model.word_id("<s>"), model.word_id("</s>")
    sampler = _Sampler(model, np.random.default_rng(seed))
    sentences = []
    for _ in range(n):
        for _ in range(MAX_TRIES):
            sentence = _sample_one(sampler, start, end, allowed, max_words)
            if sentence is not None and len(sentence) >= min_words:
                drawn = tuple(vocab[i] for i in sentence)
                if accept is None or accept(drawn):
                    sentences.append(drawn)
                    break
        else:
            raise SentenceError(f"{MAX_TRIES} draws gave no sentence of {min_words} to {max_words} words"
                                + ("" if accept is None else " that `accept` accepts"))
    return sentences


def _sample_one(sampler: _Sampler, start: int, end: int, allowed: np.ndarray, max_words: int) -> list[int] | None:
    """Word ids of one sentence, or None when it runs past ``max_words``."""
    context = sampler.model.order - 1
    history = [start]
    while True:
        for _ in range(MAX_TRIES):
            word = sampler.draw(tuple(history[-context:]) if context else ())
            if word == end or allowed[word]:
                break
        else:
            raise SentenceError(f"after {history[-context:]}, {MAX_TRIES} draws gave only excluded words")
        if word == end:
            return history[1:]
        if len(history) == max_words + 1:
            return None
        history.append(word)


def random_word_sentences(vocab_words: Iterable[str], n: int, seed: int, *, min_words: int = 1,
                          max_words: int = 30, weights: Mapping[str, float] | None = None,
                          accept: Callable[[tuple[str, ...]], bool] | None = None) -> list[tuple[str, ...]]:
    """``n`` sentences of independent random words from ``vocab_words`` (taken
    in sorted order, so any iterable of the same words gives the same result),
    each with a uniformly random length in ``[min_words, max_words]``. Words
    are drawn uniformly, or in proportion to ``weights`` (e.g. unigram
    probabilities; words missing from it are never drawn). A sentence for
    which ``accept`` returns False is drawn again."""
    _check_lengths(n, min_words, max_words)
    pool = sorted(set(vocab_words))
    if not pool:
        raise SentenceError("no words to draw from")
    p = None
    if weights is not None:
        p = np.array([weights.get(word, 0.0) for word in pool], dtype=np.float64)
        if not (np.all(p >= 0) and p.sum() > 0):
            raise SentenceError("weights must be >= 0 with a positive total over the words")
        p /= p.sum()
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n):
        for _ in range(MAX_TRIES):
            length = rng.integers(min_words, max_words + 1)
            drawn = tuple(pool[i] for i in rng.choice(len(pool), size=length, p=p))
            if accept is None or accept(drawn):
                sentences.append(drawn)
                break
        else:
            raise SentenceError(f"{MAX_TRIES} draws gave no sentence that `accept` accepts")
    return sentences


def _check_lengths(n: int, min_words: int, max_words: int) -> None:
    if n < 0:
        raise SentenceError(f"n must be >= 0, got {n}")
    if not 1 <= min_words <= max_words:
        raise SentenceError(f"need 1 <= min_words <= max_words, got {min_words} and {max_words}")
