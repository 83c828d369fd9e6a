"""L: a lexicon as a phones-to-words transducer with disambiguation symbols,
as Kaldi's ``add_lex_disambig.pl``, ``make_lexicon_fst.pl`` (no optional
silence) and ``fstaddselfloops`` build ``L_disambig.fst``.

Disambiguation (``add_lex_disambig.pl``): a pronunciation that several
entries share, or that is a proper prefix of another entry's pronunciation,
gets a symbol ``#k`` appended: the first such entry with a given phone
sequence gets ``#1``, the next ``#2``, and so on, in lexicon order. Then no
pronunciation is a prefix of another, which makes ``L o G`` determinizable.
``#0`` is the LM's back-off symbol: a ``#0:#0`` self-loop on the loop state
lets it pass through L.

The FST (``make_lexicon_fst.pl``): state 0 is the start and only final state
(cost 0); each entry is a chain of arcs from state 0 back to state 0, one per
symbol of its pronunciation (phones, then its ``#k``). The first arc outputs
the word and carries the pronunciation cost ``-ln p``; the others output
epsilon.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from .csr import CsrFst
from .lexicon import Lexicon, Pronunciation


def disambiguate(lexicon: Lexicon) -> tuple[list[tuple[str, Pronunciation, float, int]], int]:
    """``add_lex_disambig.pl``: ``(word, pronunciation, probability, k)`` for
    every entry in :meth:`Lexicon.entries` order, ``k`` the number of the
    ``#k`` appended (0: none), and the largest ``k`` used (0 when none)."""
    entries = list(lexicon.entries())
    count = Counter(pron for _, pron, _ in entries)
    prefixes = {pron[:n] for pron in count for n in range(1, len(pron))}
    last_used: dict[Pronunciation, int] = {}
    result = []
    for word, pron, prob in entries:
        k = 0
        if count[pron] > 1 or pron in prefixes:
            k = last_used.get(pron, 0) + 1
            last_used[pron] = k
        result.append((word, pron, prob, k))
    return result, max(last_used.values(), default=0)


def lexicon_fst(
    entries: list[tuple[str, Pronunciation, float, int]],
    phone_ids: Mapping[str, int],
    word_ids: Mapping[str, int],
) -> CsrFst:
    """L_disambig from :func:`disambiguate`'s entries. ``phone_ids`` maps every
    phone and ``#0``..``#K`` to an input label, ``word_ids`` every word and
    ``#0`` to an output label (``KeyError`` for a missing one). Arcs are in
    entry order; sort them (by output label) before composing."""
    symbols = [[phone_ids[p] for p in pron] + ([phone_ids[f"#{k}"]] if k else []) for _, pron, _, k in entries]
    lengths = np.fromiter(map(len, symbols), dtype=np.int64, count=len(symbols))
    first = np.zeros(len(symbols) + 1, dtype=np.int64)  # arc index of each entry's first arc
    np.cumsum(lengths, out=first[1:])
    num_arcs = int(first[-1])
    entry = np.repeat(np.arange(len(symbols)), lengths)
    position = np.arange(num_arcs) - first[entry]
    # entry e owns the chain states base[e] + 1 .. base[e] + lengths[e] - 1
    base = np.zeros(len(symbols), dtype=np.int64)
    np.cumsum(lengths[:-1] - 1, out=base[1:])
    src = np.where(position == 0, 0, base[entry] + position)
    dst = np.where(position == lengths[entry] - 1, 0, base[entry] + position + 1)
    ilabel = np.fromiter((s for chain in symbols for s in chain), dtype=np.int64, count=num_arcs)
    olabel = np.zeros(num_arcs, dtype=np.int64)
    olabel[first[:-1]] = [word_ids[word] for word, _, _, _ in entries]
    weight = np.zeros(num_arcs, dtype=np.float32)
    weight[first[:-1]] = -np.log([prob for _, _, prob, _ in entries])
    num_states = 1 + int(np.sum(lengths - 1))
    final = np.full(num_states, np.inf, dtype=np.float32)
    final[0] = 0.0
    loop = np.array([0])
    return CsrFst.from_arcs(
        num_states, 0, final,
        np.concatenate([loop, src]), np.concatenate([loop, dst]),
        np.concatenate([[phone_ids["#0"]], ilabel]), np.concatenate([[word_ids["#0"]], olabel]),
        np.concatenate([[0.0], weight]).astype(np.float32),
    ).validate()
