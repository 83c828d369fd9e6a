"""Smaller language models cut from a big one, for decoding graphs of several
sizes: the model restricted to its most frequent words
(:func:`restrict_vocabulary`), and the model without its least probable
n-grams (:func:`prune`).

Both keep the model a consistent ARPA model: when the input has every
n-gram's history and back-off suffix among the lower orders
(:meth:`wfst.arpa.NgramModel.check_consistent`), so does the output.

Normalisation: restricting renormalises the unigram probabilities over the
kept words. Higher-order probabilities and back-off weights are kept as they
are, so a history's conditional distribution sums to a little less than 1
(by the probability of the removed words or n-grams that followed it).
SRILM's ``-renorm`` / ``-prune`` would recompute the back-off weights; the
benchmark graphs need realistic weights and shapes, not exact normalisation.
"""

from __future__ import annotations

import numpy as np

from wfst.arpa import NgramModel, NgramOrder
from wfst.errors import WfstError

__all__ = ["SPECIAL_WORDS", "LmRestrictionError", "joint_logprobs", "prune", "restrict_vocabulary"]

SPECIAL_WORDS = ("<s>", "</s>", "<unk>")
"""Words always kept (when the model has them), and not counted in ``n_words``."""


class LmRestrictionError(WfstError, ValueError):
    """A restriction or pruning that cannot be made (a bad count)."""


def restrict_vocabulary(model: NgramModel, n_words: int) -> NgramModel:
    """``model`` restricted to its ``n_words`` most probable words (by unigram
    probability; ties to the lower word id) plus :data:`SPECIAL_WORDS`.

    Word ids are renumbered in their original order. Every n-gram with a
    removed word is dropped; unigrams are renormalised (see the module
    docstring). ``n_words`` at least the number of ordinary words returns an
    equal model, up to the unigram renormalisation.
    """
    if isinstance(n_words, bool) or not isinstance(n_words, (int, np.integer)) or n_words < 1:
        raise LmRestrictionError(f"n_words must be a positive integer, got {n_words!r}")
    special = np.isin(np.array(model.vocab, dtype=object), SPECIAL_WORDS)
    unigram_logprob = model.orders[0].logprob
    # Most probable first, ties to the lower id (a stable sort of -logprob).
    ranked = np.flatnonzero(~special)[np.argsort(-unigram_logprob[~special], kind="stable")]
    keep = special.copy()
    keep[ranked[:n_words]] = True
    new_id = np.cumsum(keep) - 1
    orders = []
    for order in model.orders:
        rows = np.all(keep[order.words], axis=1)
        logprob = order.logprob[rows]
        if order.n == 1:
            logprob = logprob - np.log10(np.sum(10.0 ** logprob))
        # Renumbering keeps the order of ids, so rows stay sorted.
        orders.append(NgramOrder(new_id[order.words[rows]], logprob, order.backoff[rows]))
    vocab = tuple(word for word, kept in zip(model.vocab, keep) if kept)
    return NgramModel(vocab, tuple(orders))


def joint_logprobs(model: NgramModel, n: int) -> np.ndarray:
    """log10 P(w1 .. wn) of every n-gram of ``orders[n-1]`` by the chain rule
    with back-off, ``(count,)`` float64. A leading ``<s>`` counts as certain
    (probability 1), since every sentence starts with it."""
    words = model.orders[n - 1].words
    joint = np.zeros(len(words))
    start = model.vocab.index("<s>") if "<s>" in model.vocab else -1
    for k in range(1, n + 1):
        step = model.logprobs(words[:, :k])
        if k == 1:
            step[words[:, 0] == start] = 0.0
        joint += step
    return joint


def prune(model: NgramModel, keep: int) -> NgramModel:
    """``model`` with only the ``keep`` most probable n-grams of orders 2 and
    up, ranked by their joint probability (:func:`joint_logprobs`), plus the
    lower-order n-grams that the kept ones need as history or back-off suffix
    (so the result may hold a few more). All unigrams stay. Ties at the
    threshold are all kept.

    This ranks like count cut-offs do (an n-gram's joint probability is its
    relative frequency), without the entropy criterion of SRILM's
    ``-prune``; probabilities and back-off weights are not changed.
    """
    if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or keep < 0:
        raise LmRestrictionError(f"keep must be a non-negative integer, got {keep!r}")
    joints = [joint_logprobs(model, n) for n in range(2, model.order + 1)]
    everything = np.sort(np.concatenate(joints))[::-1]
    threshold = everything[keep - 1] if 0 < keep <= len(everything) else (-np.inf if keep else np.inf)
    kept = [joint >= threshold for joint in joints]
    # Top down: a kept n-gram keeps its history and back-off suffix.
    for n in range(model.order, 2, -1):
        words = model.orders[n - 1].words[kept[n - 2]]
        for part in (words[:, :-1], words[:, 1:]):
            rows = model.find(part)
            kept[n - 3][rows[rows >= 0]] = True
    orders = [model.orders[0]]
    for order, rows in zip(model.orders[1:], kept):
        orders.append(NgramOrder(order.words[rows], order.logprob[rows], order.backoff[rows]))
    return NgramModel(model.vocab, tuple(orders))
