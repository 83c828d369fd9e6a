"""T o LG for the CTC token topology, followed by the removal of the
disambiguation symbols (Kaldi's ``fsttablecompose T.fst LG.fst | fstrmsymbols``),
computed directly: T is small and regular, so the composition is two passes
of a compiled loop over LG's arcs instead of a general composition.

T, over token ids ``<eps>``=0, ``<blk>``=1 and phones ``2..``: a blank state
(start, final) and one state per phone (final), where state ``t`` means "the
last token read was ``t``". From every state: ``<blk>:<eps>`` to the blank
state; phone ``q:q`` to state ``q``, except from state ``q`` itself, where
``q:<eps>`` loops (a repeated token collapses; a phone said twice needs a
blank between). Every state, the blank (start) state included, has a
``#k:#k`` self-loop for every disambiguation symbol, so that LG's ``#0``
back-off arcs are usable at the start of an utterance too.

The composition's states are the pairs ``(t, s)`` reachable from ``(blank,
LG start)``: ``(blank, s)`` for every LG state ``s``, and ``(q, s)`` for each
phone ``q`` on an arc into ``s``, carried over ``#k`` and epsilon arcs. Arcs of
``(t, s)``:

- ``<blk>:<eps>`` to ``(blank, s)`` and, when ``t`` is a phone, ``t:<eps>`` to
  itself, cost 0;
- for an LG arc ``s -q:w/c-> s'`` with phone ``q != t``: ``q:w/c`` to ``(q, s')``;
- for an LG arc ``s -#k:w/c-> s'`` or ``s -<eps>:w/c-> s'``: ``<eps>:w/c`` to
  ``(t, s')`` (``#k`` removed).

``(t, s)`` is final with LG's final cost of ``s``. States are numbered by LG
state, then token: ``(blank, s)`` comes first among ``s``'s pairs.

This is OpenFst's composition of that T with LG, then ``#k`` relabelled to
epsilon, up to state numbering (``tests/test_graph.py`` checks it). An LG
from :func:`wfst.graph_determinize.determinized_composition` has no epsilon
input labels; were there some, OpenFst's composition filter would drop some
paths that differ from others only in the order of a blank and an epsilon
move, which this construction keeps (same costs, more arcs).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .csr import INDEX_LIMIT, CsrFst
from .graph_grammar import GraphBuildError

BLANK = 1
"""Token id of ``<blk>``; phones are ``2 ..``."""


def ctc_compose(lg: CsrFst, max_token: int) -> CsrFst:
    """TLG from LG (see the module docstring). LG's input labels: 0 (epsilon),
    phones ``2 .. max_token``, and disambiguation symbols above ``max_token``
    (mapped to epsilon); a label 1 (blank) is an error. LG must be trimmed
    (every state on a successful path), as determinization leaves it.
    Returns a validated :class:`CsrFst`. Memory: the result (16 bytes per arc,
    about 40 per state while building), a copy of LG's arcs and 8 bytes per LG
    state and 64 tokens; 26 M arcs take about 2 s."""
    if lg.start < 0 or lg.num_states == 0:
        raise GraphBuildError("LG has no start state: the lexicon and the LM share no sentence")
    if np.any(lg.ilabel == BLANK):
        raise GraphBuildError(f"LG has input label {BLANK}, the CTC blank; phones must be 2 and up")
    # LG as one arc list per state, epsilon and emitting arcs alike
    src = lg.arc_sources()
    row_splits = np.zeros(lg.num_states + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=lg.num_states), out=row_splits[1:])
    order = np.argsort(src, kind="stable")
    nextstate, ilabel = lg.nextstate[order], lg.ilabel[order]
    olabel, weight = lg.olabel[order], lg.weight[order]
    is_phone = (ilabel >= 2) & (ilabel <= max_token)
    token = np.where(is_phone, ilabel, 0).astype(np.int32)  # 0: carries the context over

    words = (max_token + 63) // 64  # bit t - 1 of a state's set: token t reaches it
    contexts = _contexts(row_splits, nextstate, token, words, lg.num_states)
    size = _set_sizes(contexts)
    base = np.zeros(lg.num_states + 1, dtype=np.int64)
    np.cumsum(size, out=base[1:])
    num_states = int(base[-1])
    n_emit, n_eps = _count_arcs(row_splits, nextstate, token, contexts)
    e_offsets = np.zeros(num_states + 1, dtype=np.int64)
    np.cumsum(n_emit, out=e_offsets[1:])
    ne_offsets = np.zeros(num_states + 1, dtype=np.int64)
    np.cumsum(n_eps, out=ne_offsets[1:])
    num_emitting = int(e_offsets[-1])
    ne_offsets += num_emitting
    num_arcs = int(ne_offsets[-1])
    if num_states > INDEX_LIMIT or num_arcs > INDEX_LIMIT:
        raise GraphBuildError(f"TLG would have {num_states} states and {num_arcs} arcs; "
                              f"at most {INDEX_LIMIT} of each are supported")
    out_next = np.empty(num_arcs, dtype=np.int32)
    out_ilabel = np.empty(num_arcs, dtype=np.int32)
    out_olabel = np.empty(num_arcs, dtype=np.int32)
    out_weight = np.empty(num_arcs, dtype=np.float32)
    _fill_arcs(row_splits, nextstate, token, olabel, weight, contexts, base, e_offsets, ne_offsets,
               out_next, out_ilabel, out_olabel, out_weight)
    final = np.repeat(lg.final, size)
    return CsrFst(int(base[lg.start]), final, e_offsets.astype(np.int32), ne_offsets.astype(np.int32),
                  out_next, out_weight, out_ilabel, out_olabel).validate()


@njit(cache=True, nogil=True)
def _contexts(row_splits, nextstate, token, words, num_states):
    """Bit sets of the tokens ``t`` with ``(t, s)`` reachable, per LG state:
    the blank everywhere (LG is trimmed), the phone of every arc into ``s``,
    and what reaches the source of a context-carrying arc. Those arcs
    (``#k``, epsilon) form an acyclic graph in an LG built from an n-gram
    model, so the sweeps stop after its depth; a cycle among them is fine too
    (the sets only grow, and the loop ends when a sweep adds nothing)."""
    contexts = np.zeros((num_states, words), dtype=np.uint64)
    contexts[:, 0] = np.uint64(1)
    for s in range(num_states):
        for a in range(row_splits[s], row_splits[s + 1]):
            t = token[a]
            if t != 0:
                bit = t - 1
                contexts[nextstate[a], bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
    changed = True
    while changed:
        changed = False
        for s in range(num_states):
            for a in range(row_splits[s], row_splits[s + 1]):
                if token[a] == 0:
                    d = nextstate[a]
                    for w in range(words):
                        merged = contexts[d, w] | contexts[s, w]
                        if merged != contexts[d, w]:
                            contexts[d, w] = merged
                            changed = True
    return contexts


@njit(cache=True, nogil=True)
def _rank(contexts, s, t):
    """Position of token ``t`` among the tokens of state ``s`` (bits below it)."""
    bit = t - 1
    rank = 0
    for w in range(bit // 64):
        rank += _popcount64(contexts[s, w])
    below = bit % 64
    if below:
        rank += _popcount64(contexts[s, bit // 64] & ((np.uint64(1) << np.uint64(below)) - np.uint64(1)))
    return rank


@njit(cache=True, nogil=True)
def _popcount64(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, nogil=True)
def _set_sizes(contexts):
    num_states, words = contexts.shape
    size = np.zeros(num_states, dtype=np.int64)
    for s in range(num_states):
        for w in range(words):
            size[s] += _popcount64(contexts[s, w])
    return size


@njit(cache=True, nogil=True)
def _count_arcs(row_splits, nextstate, token, contexts):
    """Emitting and epsilon arcs of every TLG state, in TLG state order."""
    num_states, words = contexts.shape
    total = 0
    for s in range(num_states):
        for w in range(words):
            total += _popcount64(contexts[s, w])
    n_emit = np.zeros(total, dtype=np.int64)
    n_eps = np.zeros(total, dtype=np.int64)
    i = 0
    for s in range(num_states):
        phone_arcs = 0
        eps_arcs = 0
        for a in range(row_splits[s], row_splits[s + 1]):
            if token[a] != 0:
                phone_arcs += 1
            else:
                eps_arcs += 1
        for w in range(words):
            bits = contexts[s, w]
            for b in range(64):
                if (bits >> np.uint64(b)) & np.uint64(1):
                    t = w * 64 + b + 1
                    same = 0
                    if t != 1:
                        for a in range(row_splits[s], row_splits[s + 1]):
                            if token[a] == t:
                                same += 1
                    n_emit[i] = 1 + (t != 1) + phone_arcs - same
                    n_eps[i] = eps_arcs
                    i += 1
    return n_emit, n_eps


@njit(cache=True, nogil=True)
def _fill_arcs(row_splits, nextstate, token, olabel, weight, contexts, base, e_offsets, ne_offsets,
               out_next, out_ilabel, out_olabel, out_weight):
    num_states, words = contexts.shape
    i = 0
    for s in range(num_states):
        for w in range(words):
            bits = contexts[s, w]
            for b in range(64):
                if not (bits >> np.uint64(b)) & np.uint64(1):
                    continue
                t = w * 64 + b + 1
                e = e_offsets[i]
                n = ne_offsets[i]
                out_next[e] = base[s]  # <blk>:<eps> to (blank, s)
                out_ilabel[e] = 1
                out_olabel[e] = 0
                out_weight[e] = 0.0
                e += 1
                if t != 1:  # t:<eps>, the repeat
                    out_next[e] = i
                    out_ilabel[e] = t
                    out_olabel[e] = 0
                    out_weight[e] = 0.0
                    e += 1
                for a in range(row_splits[s], row_splits[s + 1]):
                    q = token[a]
                    d = nextstate[a]
                    if q == 0:
                        out_next[n] = base[d] + _rank(contexts, d, t)
                        out_ilabel[n] = 0
                        out_olabel[n] = olabel[a]
                        out_weight[n] = weight[a]
                        n += 1
                    elif q != t:
                        out_next[e] = base[d] + _rank(contexts, d, q)
                        out_ilabel[e] = q
                        out_olabel[e] = olabel[a]
                        out_weight[e] = weight[a]
                        e += 1
                i += 1
