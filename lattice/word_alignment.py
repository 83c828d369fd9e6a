"""Word times of a path: which frames each word covers.

Without a lexicon, from where the graph puts the words' output labels: a
word's first frame is the first frame read at or after its arc (clipped to
the path's last frame); it lasts until the frame before the next word's first
frame, the last word until the path's last frame (the utterance's, for a
decoder's best path; a lattice path that ends at an earlier final state ends
there), and at least its first frame (so two words whose labels come before
the same frame both start there: the lexicon alignment below tells them
apart). Blank and silence frames between two words
therefore go to the earlier word, as Kaldi's CTC word alignment does when words
sit on the first token of their pronunciation. On a graph whose
determinization moved labels past a word's first token (a TLG built with
:mod:`wfst.graph_determinize`, usually), these times are late; with a lexicon
(:class:`lattice.AlignmentLexicon`, CTC graphs), a word spans exactly the
frames of its tokens (see :mod:`lattice.lexicon_alignment`).
"""

from __future__ import annotations

import numba
import numpy as np

from .lattice import Lattice


@numba.njit(cache=True, nogil=True)
def word_spans(read_frame, olabel, num_frames):
    """``(words, first, last)`` (int64 arrays, one entry per word) of a path
    given per arc, first to last: ``read_frame`` the frame an emitting arc reads
    (-1 on epsilon arcs) and ``olabel`` its output label (0: none);
    ``num_frames`` the frames of the utterance."""
    n = read_frame.shape[0]
    next_read = np.empty(n, np.int64)  # the first frame read at or after each arc
    m = np.int64(num_frames)
    count = 0
    for i in range(n - 1, -1, -1):
        if 0 <= read_frame[i] < m:
            m = read_frame[i]
        next_read[i] = m
        count += olabel[i] != 0
    last_frame = max(num_frames - 1, 0)
    words, first, last = np.empty(count, np.int64), np.empty(count, np.int64), np.empty(count, np.int64)
    j = 0
    for i in range(n):
        if olabel[i] != 0:
            words[j] = olabel[i]
            first[j] = min(next_read[i], last_frame)
            j += 1
    for j in range(count):
        last[j] = max(first[j + 1] - 1 if j + 1 < count else last_frame, first[j])
    return words, first, last


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
