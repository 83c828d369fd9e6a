"""G: a back-off n-gram model as an acceptor, with Kaldi ``arpa2fst`` semantics.

``arpa2fst --disambig-symbol=#0 --read-symbol-table=words.txt`` builds, and
:func:`grammar_fst` reproduces up to state numbering (same states, arcs,
labels and float32 costs, so the two are isomorphic):

- one state per history: the empty history (the 0-gram state), and every
  n-gram below the top order that does not end in ``</s>``. The start state
  is the history ``<s>``; ``<s>`` itself is never an arc.
- an arc per n-gram ``h w`` from state ``h`` accepting ``w`` (input = output =
  the word's id), cost ``-ln P = -log10 P * ln 10``, to state ``h w``, or for
  a top-order n-gram to the longest history that is a suffix of ``h w`` minus
  its first word (an n-gram state's own back-off target, without the state).
- ``h </s>`` makes ``h`` final with that cost.
- a back-off arc from every state but the 0-gram one, input ``#0``, output
  epsilon, cost ``-ln(backoff)``, to the longest history that is a proper
  suffix of the state's.
- n-grams with a word outside the symbol table (e.g. a word missing from the
  lexicon), with ``<s>`` after the first or ``</s>`` before the last position,
  or whose history is not a state, are skipped, as ``arpa2fst`` skips them.
- "redundant" states (not final, no arc but the back-off one) are removed:
  arcs into them go on to their back-off target, costs added (``arpa2fst``'s
  ``RemoveRedundantStates``, which relabels such back-off arcs to epsilon and
  runs ``RemoveEpsLocal``).

Costs are float32, computed as ``arpa2fst`` does (the log10 value rounded to
float32, times ln 10, rounded to float32), so a consistent LM gives Kaldi's
costs bit for bit, up to the float32 sum order along removed back-off chains.
An inconsistent LM (an n-gram without its back-off suffix among the
(n-1)-grams) can give a different graph: ``arpa2fst``'s result then depends on
the order of the n-grams in the file.

Everything is vectorised numpy: the 3.7 M n-gram pocketsphinx LM takes a few
seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arpa import NgramModel
from .csr import CsrFst
from .errors import WfstError

BOS, EOS = "<s>", "</s>"
LN10 = np.log(10.0)


class GraphBuildError(WfstError, ValueError):
    """Inputs a decoding graph cannot be built from (an LM without ``<s>`` or
    ``</s>``, no word shared by the lexicon and the LM, a bad token table, an
    unknown route, ...)."""


@dataclass(frozen=True)
class GrammarStats:
    """What :func:`grammar_fst` kept and dropped, in n-grams.

    ``skipped_oov``: n-grams with a word outside the symbol table;
    ``skipped_other``: bad ``<s>``/``</s>`` placement or no history state;
    ``redundant_states``: history states removed (see the module docstring)."""

    skipped_oov: int
    skipped_other: int
    redundant_states: int


def arpa_cost(log10: np.ndarray) -> np.ndarray:
    """``-ln p`` as float32 from log10 values, rounded as ``arpa2fst`` rounds."""
    return (-(np.asarray(log10).astype(np.float32).astype(np.float64) * LN10)).astype(np.float32)


def grammar_fst(model: NgramModel, word_ids: np.ndarray, backoff_label: int) -> tuple[CsrFst, GrammarStats]:
    """G as a :class:`CsrFst` (arcs of each state sorted by input label).

    ``word_ids``: ``(len(model.vocab),)`` int, the label of each LM word, -1
    for a word to skip (n-grams holding it are dropped); ``<s>`` and ``</s>``
    need no label (they never appear on arcs). ``backoff_label``: the input
    label of back-off arcs (``#0``'s id). Raises :class:`GraphBuildError` when
    the LM has no ``<s>`` or ``</s>`` unigram, or no n-gram ending in ``</s>``
    survives.
    """
    vocab = {word: i for i, word in enumerate(model.vocab)}
    if BOS not in vocab or EOS not in vocab:
        raise GraphBuildError(f"the language model has no {BOS if BOS not in vocab else EOS} unigram; "
                              "ARPA models need both <s> and </s>")
    label = np.asarray(word_ids, dtype=np.int64)
    histories = _Histories(model, label >= 0, vocab[BOS], vocab[EOS])
    arcs, final, start = histories.arcs(label, backoff_label)
    if not np.isfinite(final).any():
        raise GraphBuildError("no n-gram ending in </s> was kept: G would have no final state")
    src, dst, ilabel, cost, final, start, redundant = _drop_redundant(*arcs, final, start, histories, backoff_label)
    possible = np.isfinite(cost)  # an n-gram or back-off of probability 0 (-inf in the ARPA file) makes no arc
    src, dst, ilabel, cost = src[possible], dst[possible], ilabel[possible], cost[possible]
    order = np.lexsort((ilabel, src))
    fst = CsrFst.from_arcs(len(final), start, final, src[order], dst[order], ilabel[order],
                           np.where(ilabel[order] == backoff_label, 0, ilabel[order]), cost[order]).validate()
    return fst, GrammarStats(histories.skipped_oov, histories.skipped_other, redundant)


class _Histories:
    """The n-grams kept and the history states, order by order.

    ``state_of_row[n-1]``: state id of each n-gram row, -1 for a row that is
    not a history state (the top order, n-grams ending in ``</s>``, skipped
    ones); state 0 is the empty history, then order-1 states, order-2 ...,
    so a state's back-off target always has a lower id. ``kept_rows[n-1]``:
    the rows kept; ``parents[n-1]``: each row's history state (-1: none)."""

    def __init__(self, model: NgramModel, known: np.ndarray, bos: int, eos: int):
        self.model, self.bos, self.eos = model, bos, eos
        known = known.copy()
        known[[bos, eos]] = True
        self.state_of_row, self.kept_rows, self.parents = [], [], []
        self.num_states = 1
        self.skipped_oov = self.skipped_other = 0
        for n, order in enumerate(model.orders, 1):
            words = order.words
            valid = known[words].all(axis=1)
            self.skipped_oov += int(np.count_nonzero(~valid))
            parent = np.full(len(words), 0 if n == 1 else -1, dtype=np.int64)  # 0: the empty history
            if n > 1:
                placed = ~(words[:, 1:] == bos).any(axis=1) & ~(words[:, :-1] == eos).any(axis=1)
                candidates = np.flatnonzero(valid & placed)
                rows = model.find(words[candidates, :-1])
                found = rows >= 0
                parent[candidates[found]] = self.state_of_row[n - 2][rows[found]]
            kept = valid & (parent >= 0)
            self.skipped_other += int(np.count_nonzero(valid & ~kept))
            states = np.full(len(words), -1, dtype=np.int64)
            if n < model.order:
                is_state = kept & (words[:, -1] != eos)
                count = int(np.count_nonzero(is_state))
                states[is_state] = np.arange(self.num_states, self.num_states + count)
                self.num_states += count
            self.state_of_row.append(states)
            self.kept_rows.append(np.flatnonzero(kept))
            self.parents.append(parent)

    def longest_history(self, suffixes: np.ndarray) -> np.ndarray:
        """State of the longest suffix of each row of ``suffixes`` (k, m) that is
        a history state (0, the empty history, when none is)."""
        result = np.zeros(len(suffixes), dtype=np.int64)
        pending = np.arange(len(suffixes))
        m = suffixes.shape[1]
        for first in range(m):
            if not len(pending):
                break
            rows = self.model.find(suffixes[pending, first:])
            state = np.where(rows >= 0, self.state_of_row[m - first - 1][np.maximum(rows, 0)], -1)
            hit = state >= 0
            result[pending[hit]] = state[hit]
            pending = pending[~hit]
        return result

    def arcs(self, label: np.ndarray, backoff_label: int):
        """``((src, dst, ilabel, cost), final, start)``: word arcs then back-off
        arcs, final costs per state, the start state."""
        model, top = self.model, self.model.order
        final = np.full(self.num_states, np.inf, dtype=np.float32)
        start = 0 if top == 1 else int(self.state_of_row[0][self.bos])
        parts = []
        for n, order in enumerate(model.orders, 1):
            rows = self.kept_rows[n - 1]
            words = order.words[rows]
            source = self.parents[n - 1][rows]
            last = words[:, -1]
            cost = arpa_cost(order.logprob[rows])
            ends = last == self.eos
            final[source[ends]] = cost[ends]
            arcs = ~ends & (last != self.bos)
            if n < top:
                dest = self.state_of_row[n - 1][rows[arcs]]
            else:
                dest = self.longest_history(words[arcs, 1:])
            parts.append((source[arcs], dest, label[last[arcs]], cost[arcs]))
            if n < top:
                states = self.state_of_row[n - 1][rows]
                has_state = states >= 0
                backoff = self.longest_history(words[has_state, 1:])
                parts.append((states[has_state], backoff, np.full(len(backoff), backoff_label),
                              arpa_cost(order.backoff[rows[has_state]])))
        return tuple(np.concatenate(column) for column in zip(*parts)), final, start


def _drop_redundant(src, dst, ilabel, cost, final, start, histories: _Histories, backoff_label: int):
    """Remove the states that are not final and have no arc but their back-off
    arc (never the empty history; the start state keeps its back-off arc, as
    epsilon): arcs into them go on to the first state of their back-off chain
    that stays, with the chain's costs added. Returns the arcs, final costs and
    start renumbered, and the number of states removed."""
    num_states = len(final)
    is_backoff = ilabel == backoff_label
    has_word_arc = np.bincount(src[~is_backoff], minlength=num_states) > 0
    redundant = ~has_word_arc & ~np.isfinite(final)
    redundant[0] = False
    backoff_of = np.zeros(num_states, dtype=np.int64)
    backoff_cost = np.zeros(num_states, dtype=np.float32)
    backoff_of[src[is_backoff]] = dst[is_backoff]
    backoff_cost[src[is_backoff]] = cost[is_backoff]
    # resolve[s]: the first state on s's back-off chain that stays; extra[s]: the
    # cost of getting there. Back-off targets have lower orders, so one sweep
    # per order, lowest first, settles every chain.
    resolve = np.arange(num_states, dtype=np.int64)
    extra = np.zeros(num_states, dtype=np.float32)
    for states in histories.state_of_row:
        chain = states[states >= 0]
        chain = chain[redundant[chain]]
        resolve[chain] = resolve[backoff_of[chain]]
        extra[chain] = backoff_cost[chain] + extra[backoff_of[chain]]
    keep = ~redundant
    keep[start] = True
    arcs = keep[src]
    src, dst, ilabel, cost = src[arcs], dst[arcs], ilabel[arcs], cost[arcs]
    ilabel = np.where(redundant[src], 0, ilabel)  # a redundant start state's back-off arc
    cost = cost + extra[dst]
    new_id = np.cumsum(keep) - 1
    return (new_id[src], new_id[resolve[dst]], ilabel, cost, final[keep], int(new_id[start]),
            int(np.count_nonzero(redundant)))
