"""CTM lines (NIST's time-marked conversation format, as Kaldi's
``nbest-to-ctm`` writes them) of a lattice's best path."""

from __future__ import annotations

import math
import re

import numpy as np

from .errors import LatticeError
from .lattice import Lattice


def to_ctm(lattice: Lattice, utt_id: str, frame_shift: float, words=None, lexicon=None) -> str:
    """One line per best-path word: ``utt_id 1 start duration word`` (seconds,
    3 decimals), frames from :meth:`Lattice.word_alignment` (with ``lexicon``
    when given).

    ``frame_shift``: seconds per frame. ``words``: a :class:`wfst.SymbolTable`
    or anything indexed by word id (dict, list); without it, the lexicon's
    word table when a lexicon is given, else word ids are written.
    ``lexicon``: a :class:`lattice.AlignmentLexicon` for word times from the
    pronunciations (CTC graphs; recommended, see
    :mod:`lattice.lexicon_alignment`). Empty string for a lattice without
    words."""
    if not isinstance(utt_id, str) or not utt_id or re.search(r"\s", utt_id):
        raise LatticeError(f"utt_id must be a non-empty string without whitespace, got {utt_id!r}")
    if isinstance(frame_shift, bool) or not isinstance(frame_shift, (int, float, np.floating)) \
            or not math.isfinite(frame_shift) or frame_shift <= 0:
        raise LatticeError(f"frame_shift must be a positive number of seconds per frame, got {frame_shift!r}")
    if words is None and lexicon is not None:
        words = lexicon.words
    if words is not None and (isinstance(words, (str, bytes)) or not hasattr(words, "__getitem__")):
        raise LatticeError(f"words must be a wfst.SymbolTable, or a dict or list indexed by word id, got "
                           f"{type(words).__name__}")
    return "".join(ctm_line(utt_id, _name(words, word), first, last, frame_shift)
                   for word, first, last in lattice.word_alignment(lexicon))


def ctm_line(utt_id: str, word: str, first: int, last: int, frame_shift: float) -> str:
    """``utt_id 1 start duration word`` for a word spanning frames ``first`` to
    ``last`` (inclusive), times in seconds with 3 decimals."""
    return f"{utt_id} 1 {first * frame_shift:.3f} {(last - first + 1) * frame_shift:.3f} {word}\n"


def _name(words, word: int) -> str:
    if words is None:
        return str(word)
    try:
        return str(words[word])
    except (KeyError, IndexError):
        raise LatticeError(f"word id {word} is not in the word table given to to_ctm") from None
