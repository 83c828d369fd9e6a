"""OpenFst (pynini) oracles for lattice tests: the word sequences of an FST
within a beam of its best, with their best costs, and its n shortest distinct
word sequences."""

from __future__ import annotations

import pynini

from tests.pynini_oracle import score_acceptor

SLACK = 1e-3
"""Cost tolerance of the comparisons (float32 sums in OpenFst)."""


def _words_acceptor(fst: pynini.Fst, beam: float) -> pynini.Fst | None:
    """Output projection, epsilons removed, determinized and pruned to ``beam``."""
    if fst.start() < 0 or fst.num_states() == 0:
        return None
    words = fst.copy().project("output").rmepsilon()
    if words.start() < 0 or words.num_states() == 0:
        return None
    det = pynini.prune(pynini.determinize(words, weight=beam + SLACK), weight=beam + SLACK)
    return det if det.start() >= 0 and det.num_states() else None


def word_sequences(fst: pynini.Fst, beam: float) -> dict[tuple[int, ...], float]:
    """Every output word sequence of ``fst`` whose best path is within ``beam``
    (plus :data:`SLACK`) of the best, with that path's cost."""
    det = _words_acceptor(fst, beam)
    if det is None:
        return {}
    to_end = [float(w) for w in pynini.shortestdistance(det, reverse=True)]
    limit = to_end[det.start()] + beam + SLACK
    found = {}
    stack = [(det.start(), 0.0, ())]
    while stack:  # a determinized acceptor: one path per word sequence
        state, cost, words = stack.pop()
        final = float(det.final(state))
        if cost + final <= limit:
            found[words] = cost + final
        for arc in det.arcs(state):
            after = cost + float(arc.weight)
            if after + to_end[arc.nextstate] <= limit:
                stack.append((arc.nextstate, after, words + ((arc.olabel,) if arc.olabel else ())))
    return found


def decoding_lattice(graph, scores, acoustic_scale: float = 1.0) -> pynini.Fst:
    """The utterance's scores composed with the graph (every complete path)."""
    return pynini.compose(score_acceptor(scores, acoustic_scale), graph.to_pynini().arcsort("ilabel"))


def nshortest(fst: pynini.Fst, n: int, beam: float) -> list[tuple[tuple[int, ...], float]]:
    """The ``n`` cheapest distinct word sequences within ``beam``, best first
    (OpenFst's n-shortest paths with ``unique=True``)."""
    det = _words_acceptor(fst, beam)
    if det is None:
        return []
    tree = pynini.shortestpath(det, nshortest=n, unique=True)
    found = []
    stack = [(tree.start(), 0.0, ())] if tree.start() >= 0 else []
    while stack:  # the n paths form a tree
        state, cost, words = stack.pop()
        final = float(tree.final(state))
        if final != float("inf"):
            found.append((words, cost + final))
        for arc in tree.arcs(state):
            stack.append((arc.nextstate, cost + float(arc.weight), words + ((arc.olabel,) if arc.olabel else ())))
    return sorted(found, key=lambda item: item[1])
