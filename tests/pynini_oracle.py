"""OpenFst through pynini as a decoding oracle: the utterance's scores as a
linear acceptor over input labels (label ``p + 1`` reads column ``p``), composed
with the graph, then shortest distance and shortest path."""

from __future__ import annotations

import numpy as np
import pynini

from wfst import CsrFst


def score_acceptor(scores: np.ndarray, acoustic_scale: float = 1.0) -> pynini.Fst:
    """A linear acceptor of ``len(scores)`` frames: label ``p + 1`` reads column
    ``p`` at cost ``-(acoustic_scale * score)`` (float32, as the decoder)."""
    frames, columns = scores.shape
    acceptor = pynini.Fst()
    acceptor.add_states(frames + 1)
    acceptor.set_start(0)
    acceptor.set_final(frames)
    for t in range(frames):
        for p in range(columns):
            cost = float(-(np.float32(acoustic_scale) * scores[t, p]))
            acceptor.add_arc(t, pynini.Arc(p + 1, p + 1, cost, t + 1))
    return acceptor


def pynini_decode(fst: CsrFst, scores: np.ndarray, acoustic_scale: float = 1.0):
    """(best cost, words) of the complete paths, or None when no final state is
    reachable in exactly ``len(scores)`` frames."""
    graph = fst.to_pynini().arcsort("ilabel")
    lattice = pynini.compose(score_acceptor(scores, acoustic_scale), graph)
    if lattice.start() < 0 or lattice.num_states() == 0:
        return None
    distance = pynini.shortestdistance(lattice, reverse=True)
    if lattice.start() >= len(distance):
        return None
    cost = float(distance[lattice.start()])
    if not np.isfinite(cost):
        return None
    path = pynini.shortestpath(lattice).topsort()
    words = []
    for state in path.states():
        for arc in path.arcs(state):
            if arc.olabel:
                words.append(arc.olabel)
    return cost, tuple(words)
