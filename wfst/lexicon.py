"""Pronunciation lexicons: Kaldi ``lexicon.txt`` / ``lexiconp.txt`` and CMUdict.

Formats read by :func:`read_lexicon` (UTF-8, fields separated by spaces or tabs):

* Kaldi ``lexicon.txt``: ``word ph1 ph2 ...``, one pronunciation a line; a word
  with several pronunciations has several lines.
* Kaldi ``lexiconp.txt``: ``word prob ph1 ph2 ...``, where ``prob`` is the
  pronunciation probability, ``0 < prob <= 1`` (Kaldi scales each word's most
  likely pronunciation to 1). Detected from the first entry unless told.
* CMUdict (and pocketsphinx's ``.dict``): ``word(2) ph1 ph2 ...``; the ``(k)``
  suffix numbers alternative pronunciations and is dropped. Lines starting with
  ``#`` or ``;;;`` are comments, and so is everything from a field that starts
  with ``#`` to the end of a line (``word W ER D # comment``).

Pronunciations keep file order. A repeated (word, pronunciation) is dropped
(the first one counts, with its probability), in files and in :class:`Lexicon`
alike, so that the lexicon FST has no duplicate paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping

from .errors import FstFormatError, WfstError
from .symbols import decode_utf8, iter_fields

Pronunciation = tuple[str, ...]
"""A pronunciation: phone names, in order (never empty)."""

RESERVED_WORDS = frozenset({"<eps>", "<s>", "</s>"})
"""Words a lexicon cannot hold: epsilon and the sentence boundaries of the LM."""

RESERVED_PHONES = frozenset({"<eps>", "<blk>"})
"""Phone names a lexicon cannot use: they are token names of the graphs."""

_SPACE = re.compile(r"\s")

_VARIANT = re.compile(r"\(\d+\)$")
"""CMUdict's alternative-pronunciation suffix, ``word(2)``."""


class LexiconError(WfstError, ValueError):
    """A malformed lexicon file or entry. ``path`` and ``line`` (from 1) say
    where, when known; ``word`` names the offending word, when there is one."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None,
                 word: str | None = None):
        self.reason = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.word = word
        where = [part for part in (self.path, None if line is None else f"line {line}") if part]
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class Lexicon(Mapping[str, tuple[Pronunciation, ...]]):
    """Word -> its pronunciations (tuple of tuples of phone names, in file
    order), with an optional probability per pronunciation. Immutable.

    ``prons``: ``{word: [pronunciation, ...]}``, each pronunciation a sequence
    of phone names. ``probabilities``: ``{word: [p, ...]}`` aligned with
    ``prons[word]``, ``0 < p <= 1``; words not in it (or ``None``) get 1.0.
    Raises :class:`LexiconError` for a reserved or malformed word or phone
    (names are non-empty ``str`` without whitespace; see
    :data:`RESERVED_WORDS`, :data:`RESERVED_PHONES`, and ``#`` starts
    disambiguation symbols), an empty pronunciation, a word without
    pronunciations, or a bad probability.
    """

    def __init__(
        self,
        prons: Mapping[str, Iterable[Iterable[str]]],
        probabilities: Mapping[str, Iterable[float]] | None = None,
    ):
        probabilities = probabilities or {}
        unknown = set(probabilities) - set(prons)
        if unknown:
            raise LexiconError(f"probabilities given for words without pronunciations: {sorted(unknown)[:5]}")
        self._prons: dict[str, tuple[Pronunciation, ...]] = {}
        self._probs: dict[str, tuple[float, ...]] = {}
        phone_user: dict[str, str] = {}  # phone -> a word using it, for error messages
        for word, word_prons in prons.items():
            _check_name(word, "word", RESERVED_WORDS, word)
            word_prons = [word_prons] if isinstance(word_prons, str) else list(word_prons)
            if any(isinstance(pron, str) for pron in word_prons):
                raise LexiconError(f"word {word!r}: give pronunciations as sequences of phones, e.g. "
                                   "[('HH', 'AH')], not strings", word=word)
            listed = [tuple(pron) for pron in word_prons]
            if not listed:
                raise LexiconError(f"word {word!r} has no pronunciation", word=word)
            if not all(listed):
                raise LexiconError(f"word {word!r} has an empty pronunciation; give it at least one phone",
                                   word=word)
            listed_probs = [float(p) for p in probabilities.get(word, [1.0] * len(listed))]
            if len(listed_probs) != len(listed):
                raise LexiconError(
                    f"word {word!r} has {len(listed)} pronunciations but {len(listed_probs)} probabilities",
                    word=word)
            unique: dict[Pronunciation, float] = {}
            for pron, p in zip(listed, listed_probs):
                unique.setdefault(pron, p)  # a repeated pronunciation: the first one counts
                phone_user.update(dict.fromkeys(pron, word))
            entries, probs = tuple(unique), tuple(unique.values())
            for p in probs:
                if not 0.0 < p <= 1.0:  # also rejects NaN
                    raise LexiconError(
                        f"word {word!r}: pronunciation probability {p!r} must be in (0, 1] "
                        "(lexiconp.txt scales each word's best pronunciation to 1)", word=word)
            self._prons[word] = entries
            self._probs[word] = probs
        for phone, word in phone_user.items():
            _check_name(phone, f"word {word!r}: phone", RESERVED_PHONES, word)
        self._phones = tuple(sorted(phone_user))

    # ---------------------------------------------------------------- Mapping
    def __getitem__(self, word: str) -> tuple[Pronunciation, ...]:
        return self._prons[word]

    def __iter__(self) -> Iterator[str]:
        return iter(self._prons)

    def __len__(self) -> int:
        return len(self._prons)

    # ------------------------------------------------------------- properties
    @property
    def phones(self) -> tuple[str, ...]:
        """Every phone used, sorted (Python string order)."""
        return self._phones

    @property
    def num_prons(self) -> int:
        """Number of (word, pronunciation) entries."""
        return sum(len(entries) for entries in self._prons.values())

    @property
    def has_probabilities(self) -> bool:
        """True when some pronunciation probability is not 1."""
        return any(p != 1.0 for probs in self._probs.values() for p in probs)

    def probabilities(self, word: str) -> tuple[float, ...]:
        """Probabilities of ``self[word]``, aligned with it (1.0 when the
        lexicon has none)."""
        return self._probs[word]

    def entries(self) -> Iterator[tuple[str, Pronunciation, float]]:
        """``(word, pronunciation, probability)`` in word order, then file order."""
        for word, entries in self._prons.items():
            yield from zip((word,) * len(entries), entries, self._probs[word])

    def restrict(self, words: Iterable[str]) -> "Lexicon":
        """The entries of ``words`` that are in the lexicon, in this lexicon's
        order; words not in it are ignored (see ``set(words) - set(lexicon)``)."""
        keep = set(words)
        kept = [word for word in self._prons if word in keep]
        return Lexicon({w: self._prons[w] for w in kept}, {w: self._probs[w] for w in kept})

    def write(self, path: str | os.PathLike) -> None:
        """Write Kaldi ``lexicon.txt`` (``lexiconp.txt``, with a probability
        column, when :attr:`has_probabilities`); :func:`read_lexicon` reads it
        back unchanged."""
        with_probs = self.has_probabilities
        with open(path, "w", encoding="utf-8", newline="\n") as stream:
            for word, pron, prob in self.entries():
                middle = f" {prob!r}" if with_probs else ""
                stream.write(f"{word}{middle} {' '.join(pron)}\n")

    def __repr__(self) -> str:
        return f"Lexicon({len(self)} words, {self.num_prons} prons, {len(self._phones)} phones)"


def _check_name(name: object, what: str, reserved: frozenset, word: str | None) -> None:
    if not isinstance(name, str) or not name or _SPACE.search(name):
        raise LexiconError(f"{what} {name!r} must be a non-empty str without whitespace", word=word)
    if name in reserved or name.startswith("#"):
        raise LexiconError(
            f"{what} {name!r} is reserved ({', '.join(sorted(reserved))} and '#'-prefixed "
            "disambiguation symbols); rename or remove it", word=word)


def read_lexicon(path: str | os.PathLike, *, probabilities: bool | None = None) -> Lexicon:
    """Read a lexicon in any format of the module docstring.

    ``probabilities``: whether the second field of each line is a
    pronunciation probability (``lexiconp.txt``); ``None`` detects it from the
    first entry (three or more fields, the second a number), after which every
    line must agree. Raises :class:`LexiconError` (a ``ValueError``) naming the
    path and line for a malformed line or entry (the first line of the word,
    for an error found once the whole file is read), and ``FileNotFoundError``
    when the file cannot be opened.
    """
    path = os.fspath(path)
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        text = decode_utf8(data, path)
    except FstFormatError as error:
        raise LexiconError(error.reason, path) from None
    prons: dict[str, list[Pronunciation]] = {}
    probs: dict[str, list[float]] = {}
    first_line: dict[str, int] = {}
    for number, fields in iter_fields(text):
        if fields[0].startswith(("#", ";;;")):
            continue
        for k in range(1, len(fields)):
            if fields[k].startswith("#"):
                del fields[k:]
                break
        word = _VARIANT.sub("", fields[0])
        if probabilities is None:
            probabilities = len(fields) > 2 and _float_field(fields[1]) is not None
        if probabilities:
            prob = _float_field(fields[1]) if len(fields) > 1 else None
            if prob is None:
                raise LexiconError(
                    f"expected 'word probability phone ...' (lexiconp.txt, as the first entry), got "
                    f"{' '.join(fields)[:80]!r}; give every line a probability or none", path, number)
            pron = tuple(fields[2:])
        else:
            prob, pron = 1.0, tuple(fields[1:])
        if not pron:
            raise LexiconError(f"word {word!r} has no phones; expected 'word phone ...'", path, number)
        first_line.setdefault(word, number)
        prons.setdefault(word, []).append(pron)
        probs.setdefault(word, []).append(prob)
    try:
        return Lexicon(prons, probs)
    except LexiconError as error:
        raise LexiconError(error.reason, path, first_line.get(error.word), error.word) from None


def _float_field(field: str) -> float | None:
    try:
        return float(field)
    except ValueError:
        return None
