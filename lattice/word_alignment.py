"""Word times of a path: which frames each word covers.

Without a lexicon, from where the graph puts the words' output labels: a
word's first frame is the first frame read at or after its arc (clipped to
the last frame); it lasts until the frame before the next word's first frame,
the last word until the last frame. Blank and silence frames between two words
therefore go to the earlier word, as Kaldi's CTC word alignment does when words
sit on the first token of their pronunciation. On a graph whose
determinization moved labels past a word's first token (a TLG built with
:mod:`wfst.graph_determinize`, usually), these times are late; with a lexicon
(:class:`lattice.AlignmentLexicon`, CTC graphs), a word spans exactly the
frames of its tokens (see :mod:`lattice.lexicon_alignment`).
"""

from __future__ import annotations

import numpy as np

from .lattice import Lattice


def word_spans(read_frame: np.ndarray, olabel: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray,
                                                                                     np.ndarray]:
    """``(words, first, last)`` (int64 arrays, one entry per word) of a path
    given per arc, first to last: ``read_frame`` the frame an emitting arc reads
    (-1 on epsilon arcs) and ``olabel`` its output label (0: none);
    ``num_frames`` the frames of the utterance."""
    word_at = np.flatnonzero(olabel)
    next_read = np.minimum.accumulate(np.where(read_frame >= 0, read_frame, num_frames)[::-1])[::-1]
    last_frame = max(num_frames - 1, 0)
    first = np.minimum(next_read[word_at], last_frame).astype(np.int64)
    last = np.maximum(np.append(first[1:] - 1, last_frame), first).astype(np.int64)
    return olabel[word_at].astype(np.int64), first, last


def word_alignment(lattice: Lattice, lexicon=None) -> list[tuple[int, int, int]]:
    """``(word, first frame, last frame)`` of each word of the lattice's best
    path (empty for a lattice without a path): with ``lexicon`` (a
    :class:`lattice.AlignmentLexicon`) the frames of the word's tokens, else
    from the labels' positions (see the module docstring)."""
    from .best_path import best_path, best_path_arcs

    if lexicon is not None:
        path = best_path(lattice)
        return lexicon.align(path.ilabels, path.words)
    arcs, end = best_path_arcs(lattice)
    if end < 0:
        return []
    src = lattice.arc_src[arcs]
    read_frame = np.where(lattice.arc_ilabel[arcs] != 0, lattice.state_frame[src], -1)
    words, first, last = word_spans(read_frame, lattice.arc_olabel[arcs], int(lattice.state_frame[end]))
    return [(int(w), int(a), int(b)) for w, a, b in zip(words, first, last)]
