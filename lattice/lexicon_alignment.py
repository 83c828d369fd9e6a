"""Word times from the lexicon, for CTC graphs: Kaldi's
``lattice-align-words-lexicon`` for a path.

Where a decoding graph puts a word's output label says little about when the
word was said: determinizing ``L o G`` moves labels to where a word becomes
unambiguous, often past its first phone. The lexicon says instead which tokens
spell the word, so a path's frames are assigned by matching its tokens to its
words' pronunciations:

1. The path's per-frame input labels (CTC token ids, one per frame) are
   collapsed as CTC does: a run of equal consecutive tokens is one token (the
   graph's token topology makes a repeated phone pass through a blank), and
   blank runs are dropped. Each token keeps the frames of its run.
2. The tokens are matched to the words in order, each word to one of its
   pronunciations (the first, in lexicon order, that lets the remaining words
   match the remaining tokens too).
3. A word spans from the first frame of its first token to the last frame of
   its last token. Blank frames between words belong to no word (gaps in a
   CTM, as Kaldi's silence between aligned words).

:class:`AlignmentLexicon` holds the pronunciations in ids (built once per
graph); its :meth:`~AlignmentLexicon.align` serves a lattice's best path
(:meth:`lattice.Lattice.word_alignment` and :meth:`lattice.Lattice.to_ctm` with
``lexicon=``), an n-best path (``align(path.ilabels, path.words)``) or a
decoder :class:`wfst.Result` (``align(result.alignment, result.words)``).
HMM graphs (HCLG over transition ids) need Kaldi's word-boundary information
instead and are not handled here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import LatticeError


class WordAlignmentError(LatticeError):
    """A path's tokens do not spell its words with the lexicon's
    pronunciations (or a word has none). ``word`` is the id of the first word
    that could not be matched (``None`` when all words matched but tokens were
    left over), ``position`` its index in the path's words."""

    def __init__(self, message: str, word: int | None = None, position: int | None = None):
        super().__init__(message)
        self.word = word
        self.position = position


class AlignmentLexicon:
    """Pronunciations as token ids by word id, for :meth:`align`.

    ``lexicon``: a :class:`wfst.lexicon.Lexicon` (or any mapping word name ->
    pronunciations, each a sequence of phone names) or the path of a lexicon
    file (:func:`wfst.lexicon.read_lexicon`); it must be the lexicon the graph
    was built from. ``words`` / ``tokens``: the graph's output and input symbol
    tables (:class:`wfst.SymbolTable` or paths of ``words.txt`` /
    ``tokens.txt``). ``blank``: the name of the CTC blank token. Words of the
    lexicon missing from ``words`` are ignored (a lexicon may cover more than
    the graph). Raises :class:`lattice.LatticeError` when ``blank`` or a phone
    of a word in ``words`` is not a token.
    """

    def __init__(self, lexicon, words, tokens, *, blank: str = "<blk>"):
        from wfst.lexicon import read_lexicon
        from wfst.symbols import SymbolTable

        if isinstance(lexicon, (str, os.PathLike)):
            lexicon = read_lexicon(lexicon)
        if not isinstance(lexicon, Mapping):
            raise LatticeError(f"lexicon must be a Lexicon, a mapping word -> pronunciations or a lexicon file path, "
                               f"got {type(lexicon).__name__}")
        self.words = words if isinstance(words, SymbolTable) else SymbolTable.read(words)
        self.tokens = tokens if isinstance(tokens, SymbolTable) else SymbolTable.read(tokens)
        if blank not in self.tokens:
            raise LatticeError(f"the blank token {blank!r} is not in the token table {self.tokens!r}; give "
                               "blank= the name of the graph's CTC blank (lexicon word alignment needs a CTC graph)")
        self.blank = int(self.tokens[blank])
        token_id = self.tokens.symbol_to_id
        self.pronunciations: dict[int, tuple[tuple[int, ...], ...]] = {}
        """Word id -> its pronunciations as token id tuples, in lexicon order."""
        for name, prons in lexicon.items():
            if name not in self.words:
                continue
            converted = []
            for pron in prons:
                missing = [phone for phone in pron if phone not in token_id]
                if missing:
                    raise LatticeError(f"word {name!r}: phone {missing[0]!r} is not in the token table "
                                       f"{self.tokens!r}; the lexicon does not belong to this graph")
                converted.append(tuple(int(token_id[phone]) for phone in pron))
            self.pronunciations[int(self.words[name])] = tuple(converted)

    def align(self, ilabels: np.ndarray, words: Sequence[int]) -> list[tuple[int, int, int]]:
        """``(word, first frame, last frame)`` of each word of a path (see the
        module docstring).

        ``ilabels``: the path's input labels, one per frame (int, shape ``(T,)``:
        :attr:`lattice.LatticePath.ilabels` or :attr:`wfst.Result.alignment`);
        ``words``: its word ids, in order. Raises
        :class:`WordAlignmentError` naming the first word whose pronunciations
        do not fit the tokens (wrong lexicon, or a graph that is not CTC)."""
        ilabels = np.asarray(ilabels)
        if ilabels.ndim != 1 or (ilabels.size and not np.issubdtype(ilabels.dtype, np.integer)):
            raise LatticeError(f"ilabels must be a 1-D integer array (one token id per frame), got dtype "
                               f"{ilabels.dtype} and shape {ilabels.shape}")
        words = [int(w) for w in words]
        run_start = np.flatnonzero(np.append(True, ilabels[1:] != ilabels[:-1]))[:ilabels.size]
        run_end = np.append(run_start[1:], ilabels.size)[:run_start.size] - 1
        keep = ilabels[run_start] != self.blank
        tokens = tuple(ilabels[run_start[keep]].tolist())
        first_frame, last_frame = run_start[keep], run_end[keep]
        # reached[i]: the token positions the words before word i can end at (from the start)
        reached: list[set[int]] = [{0}]
        for i, word in enumerate(words):
            prons = self.pronunciations.get(word)
            if prons is None:
                raise WordAlignmentError(
                    f"word {self._name(word)} (position {i} of the path) has no pronunciation in the lexicon; "
                    "give the lexicon the graph was built from", word, i)
            step = {start + len(pron) for start in reached[i] for pron in prons
                    if tokens[start:start + len(pron)] == pron}
            if not step:
                raise WordAlignmentError(self._mismatch(tokens, words, i, min(reached[i])), word, i)
            reached.append(step)
        if len(tokens) not in reached[-1]:
            raise WordAlignmentError(
                f"the path's words spell {max(reached[-1])} of its {len(tokens)} tokens; the rest "
                f"({self._spell(tokens[max(reached[-1]):])}) belong to no word: the lexicon does not match the graph")
        # ends[i][start]: where word i ends if it starts at token position start (one of reached[i]): after its
        # first pronunciation, in lexicon order, from whose end the words after it spell the rest of the tokens
        ends: list[dict[int, int]] = [{} for _ in words]
        finishing = {len(tokens)}
        for i in range(len(words) - 1, -1, -1):
            for start in reached[i]:
                end = next((start + len(pron) for pron in self.pronunciations[words[i]]
                            if start + len(pron) in finishing and tokens[start:start + len(pron)] == pron), None)
                if end is not None:
                    ends[i][start] = end
            finishing = ends[i].keys()
        spans = []
        start = 0
        for i, word in enumerate(words):
            end = ends[i][start]
            spans.append((word, int(first_frame[start]), int(last_frame[end - 1])))
            start = end
        return spans

    def _name(self, word: int) -> str:
        return f"{self.words[word]!r} (id {word})" if word in self.words else f"id {word}"

    def _spell(self, tokens: Sequence[int]) -> str:
        return " ".join(str(self.tokens[t]) if t in self.tokens else str(t) for t in tokens)

    def _mismatch(self, tokens, words, i, at) -> str:
        prons = " | ".join(self._spell(p) for p in self.pronunciations[words[i]])
        return (f"word {self._name(words[i])} (position {i} of the path) matches none of its pronunciations "
                f"({prons}) at token {at} of the path's collapsed tokens ({self._spell(tokens[at:at + 8])} ...); "
                "the lexicon does not match the graph, or the graph's input labels are not CTC tokens")
