"""Back-off n-gram language models in the ARPA format (SRILM, KenLM, Kaldi, sphinx).

An ARPA file lists, for each order ``n`` = 1, 2, ..., the n-grams with their
log10 probability and, below the top order, an optional log10 back-off weight::

    \\data\\
    ngram 1=3
    ngram 2=2

    \\1-grams:
    -0.30103  <s>  -0.1
    -0.47712  a    -0.2
    -0.47712  </s>

    \\2-grams:
    -0.1249   <s> a
    -0.3010   a </s>

    \\end\\

Units: every probability and back-off weight is a base-10 logarithm, as in the
file. The model is held as one :class:`NgramOrder` per order, each a table of
word-id rows sorted lexicographically, so that lookups are vectorised binary
searches (:meth:`NgramModel.find`, :meth:`NgramModel.logprobs`).

Word ids are the positions of the unigrams in the file, so ``vocab[i]`` is the
word of the i-th unigram line and ``orders[0].words[:, 0]`` is ``0, 1, ...``.

Round trip: :func:`write_arpa` prints every value with ``repr`` (the shortest
decimal that reads back as the same float64), so ``read_arpa(path)`` after
``write_arpa(model, path)`` equals ``model`` exactly.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import WfstError

__all__ = ["ArpaFormatError", "NgramModel", "NgramOrder", "read_arpa", "write_arpa"]

_WORD_BREAK = re.compile("[ \t\n\r\x0b\x0c]")
"""ASCII whitespace separates ARPA fields, so words cannot contain it."""


class ArpaFormatError(WfstError, ValueError):
    """A malformed ARPA file, or n-gram tables that break an invariant of
    :class:`NgramModel`. ``path`` and ``line`` (1-based) say where, when known."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        self.reason = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        where = [] if path is None else [self.path]
        if line is not None:
            where.append(f"line {line}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


@dataclass(frozen=True, eq=False)
class NgramOrder:
    """The n-grams of one order ``n``.

    ``words``: ``(count, n)`` int32 word ids (indices into
    :attr:`NgramModel.vocab`), rows strictly increasing in lexicographic order.
    ``logprob``: ``(count,)`` float64, log10 P(last word | the others).
    ``backoff``: ``(count,)`` float64, log10 back-off weight of the n-gram as a
    history; 0.0 where the file has none (always for the top order).

    The arrays are converted to these dtypes (C-contiguous) on construction;
    :class:`NgramModel` checks the invariants.
    """

    words: np.ndarray
    logprob: np.ndarray
    backoff: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "words", np.ascontiguousarray(self.words, dtype=np.int32))
        object.__setattr__(self, "logprob", np.ascontiguousarray(self.logprob, dtype=np.float64))
        object.__setattr__(self, "backoff", np.ascontiguousarray(self.backoff, dtype=np.float64))

    @property
    def n(self) -> int:
        """The order: words per n-gram."""
        return self.words.shape[1]

    def __len__(self) -> int:
        return self.words.shape[0]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NgramOrder):
            return NotImplemented
        return all(np.array_equal(getattr(self, name), getattr(other, name))
                   for name in ("words", "logprob", "backoff"))

    __hash__ = None

    def __repr__(self) -> str:
        return f"NgramOrder(n={self.words.shape[1] if self.words.ndim == 2 else '?'}, count={len(self.logprob)})"


class _TupleIndex:
    """Binary search over the sorted, unique rows of an ``(count, n)`` id table.

    Level ``j`` holds the distinct length-``j`` prefixes of the rows as int64
    keys ``rank of the length-(j-1) prefix * vocab_size + j-th word`` (the rank
    being its position in level ``j-1``), which are increasing because the rows
    are sorted. Keys stay below ``count * vocab_size``, so any order fits int64."""

    def __init__(self, rows: np.ndarray, vocab_size: int):
        self.vocab_size = vocab_size
        self.levels = []
        self.first_rows = []  # [j]: first row of each distinct length-(j+1) prefix, then count
        count, n = rows.shape
        rank = np.zeros(count, dtype=np.int64)
        new = np.zeros(count, dtype=bool)
        for j in range(n):
            column = rows[:, j].astype(np.int64)
            new[1:] |= column[1:] != column[:-1]
            new[:1] = True
            key = rank * vocab_size + column
            self.levels.append(key[new])
            if j < n - 1:
                self.first_rows.append(np.append(np.flatnonzero(new), count))
            rank = np.cumsum(new, dtype=np.int64) - 1

    def _ranks(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position of each ``(k, j)`` query row among the distinct length-``j``
        prefixes of the rows, and whether it is one."""
        rank = np.zeros(len(queries), dtype=np.int64)
        found = np.all((queries >= 0) & (queries < self.vocab_size), axis=1)
        for j in range(queries.shape[1]):
            keys = self.levels[j]
            key = rank * self.vocab_size + queries[:, j]
            rank = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
            found &= keys[rank] == key if len(keys) else False
        return rank, found

    def find(self, queries: np.ndarray) -> np.ndarray:
        """``(k,)`` int64 row index of each ``(k, n)`` query row, -1 where absent."""
        rank, found = self._ranks(queries)
        return np.where(found, rank, -1)

    def prefix_rows(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(begin, end)``, int64 ``(k,)``: the rows that start with each
        ``(k, j)`` query row (``j < n``); empty ranges where none do."""
        rank, found = self._ranks(queries)
        first = self.first_rows[queries.shape[1] - 1]
        begin = np.where(found, first[rank], 0)
        return begin, np.where(found, first[rank + 1], 0)


@dataclass(frozen=True, eq=False)
class NgramModel:
    """A back-off n-gram language model (log10 units), as read from ARPA.

    ``vocab``: word id -> word (the unigrams, ``<s>``, ``</s>`` and ``<unk>``
    included when the model has them). ``orders[n-1]``: the n-grams.

    Invariants (checked on construction, :class:`ArpaFormatError` otherwise):
    words are unique non-empty strings without whitespace; ``orders[0]`` lists
    every word once, in id order; ``orders[n-1].words`` has ``n`` columns of
    ids below ``len(vocab)``, rows strictly increasing; no value is NaN; the
    top order has no back-off weights. Whether lower-order n-grams exist for
    every n-gram is checked separately, by :meth:`check_consistent`.

    Two models are equal when their vocabularies and all arrays are equal.
    """

    vocab: tuple[str, ...]
    orders: tuple[NgramOrder, ...]

    def __post_init__(self):
        object.__setattr__(self, "vocab", tuple(self.vocab))
        object.__setattr__(self, "orders", tuple(self.orders))
        self._validate()

    # ------------------------------------------------------------- properties
    @property
    def order(self) -> int:
        """The highest n."""
        return len(self.orders)

    @property
    def counts(self) -> tuple[int, ...]:
        """Number of n-grams of each order, unigrams first."""
        return tuple(len(order) for order in self.orders)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NgramModel):
            return NotImplemented
        return self.vocab == other.vocab and self.orders == other.orders

    __hash__ = None

    def __repr__(self) -> str:
        return f"NgramModel(order={self.order}, counts={self.counts})"

    # ----------------------------------------------------------------- lookup
    @functools.cached_property
    def _word_ids(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.vocab)}

    @functools.cached_property
    def _indexes(self) -> tuple[_TupleIndex, ...]:
        return tuple(_TupleIndex(order.words, len(self.vocab)) for order in self.orders)

    def word_id(self, word: str) -> int:
        """The id of ``word``; ``KeyError`` when it is not in the vocabulary."""
        try:
            return self._word_ids[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the language model's vocabulary") from None

    def find(self, ngrams: np.ndarray) -> np.ndarray:
        """Row index in ``orders[n-1]`` of each row of the ``(k, n)`` id array
        ``ngrams``, as ``(k,)`` int64; -1 where the n-gram is not in the model."""
        ngrams = np.asarray(ngrams, dtype=np.int64)
        if ngrams.ndim != 2 or not 1 <= ngrams.shape[1] <= self.order:
            raise ValueError(f"ngrams must be a (k, n) array with 1 <= n <= {self.order}, "
                             f"got shape {ngrams.shape}")
        return self._indexes[ngrams.shape[1] - 1].find(ngrams)

    def continuations(self, histories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the n-grams extending each history are: for the ``(k, m)`` id
        array ``histories`` (1 <= m < order), ``(begin, end)`` int64 ``(k,)``
        such that rows ``begin[i]:end[i]`` of ``orders[m]`` are the
        (m+1)-grams that start with ``histories[i]`` (empty when none do)."""
        histories = np.asarray(histories, dtype=np.int64)
        if histories.ndim != 2 or not 1 <= histories.shape[1] < self.order:
            raise ValueError(f"histories must be a (k, m) array with 1 <= m < {self.order}, "
                             f"got shape {histories.shape}")
        return self._indexes[histories.shape[1]].prefix_rows(histories)

    def logprobs(self, ids: np.ndarray) -> np.ndarray:
        """log10 P(last word | preceding words) of each row of the ``(k, m)``
        word-id array ``ids`` (m >= 1), with ARPA back-off, as ``(k,)`` float64.

        Only the last ``order - 1`` words of a history count. When ``h w`` is
        not in the model, ``P(w | h) = backoff(h) + P(w | h without its first
        word)``, where ``backoff(h)`` is 0 when ``h`` is not in the model either.
        Every id must be a word of the vocabulary (``ValueError`` otherwise)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 2 or ids.shape[1] < 1:
            raise ValueError(f"ids must be a (k, m) array with m >= 1, got shape {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.vocab)):
            raise ValueError(f"word ids must lie in [0, {len(self.vocab)})")
        ids = ids[:, -self.order:]
        m = ids.shape[1]
        total = np.zeros(len(ids))
        pending = np.arange(len(ids))
        for n in range(m, 0, -1):
            rows = self.find(ids[pending, m - n:])
            hit = rows >= 0
            total[pending[hit]] += self.orders[n - 1].logprob[rows[hit]]
            pending = pending[~hit]
            if n > 1 and len(pending):
                history = self.find(ids[pending, m - n:m - 1])
                known = history >= 0
                total[pending[known]] += self.orders[n - 2].backoff[history[known]]
        return total

    def logprob(self, words: Sequence[str]) -> float:
        """log10 P(``words[-1]`` | ``words[:-1]``) with ARPA back-off (see
        :meth:`logprobs`); ``KeyError`` for a word outside the vocabulary."""
        if not words:
            raise ValueError("logprob needs at least one word")
        ids = np.array([[self.word_id(word) for word in words]], dtype=np.int64)
        return float(self.logprobs(ids)[0])

    # ------------------------------------------------------------- invariants
    def check_consistent(self) -> None:
        """Check that every n-gram ``w1 .. wn`` (n >= 2) has its history
        ``w1 .. wn-1`` and its back-off target ``w2 .. wn`` among the
        (n-1)-grams, as SRILM, KenLM and sphinx's trie expect;
        :class:`ArpaFormatError` naming the first offender otherwise."""
        for order in self.orders[1:]:
            for part, columns in (("history", slice(0, -1)), ("suffix", slice(1, None))):
                missing = np.flatnonzero(self.find(order.words[:, columns]) < 0)
                if len(missing):
                    example = " ".join(self.vocab[i] for i in order.words[missing[0]])
                    raise ArpaFormatError(
                        f"{len(missing)} {order.n}-grams lack their {part} among the "
                        f"{order.n - 1}-grams, e.g. {example!r}")

    def _validate(self) -> None:
        vocab = self.vocab
        for word in vocab:
            if not isinstance(word, str) or not word or _WORD_BREAK.search(word):
                raise ArpaFormatError(f"word {word!r} must be a non-empty str without whitespace")
        if len(set(vocab)) != len(vocab):
            duplicate = next(w for w, c in Counter(vocab).items() if c > 1)
            raise ArpaFormatError(f"word {duplicate!r} appears twice in the vocabulary")
        if not self.orders:
            raise ArpaFormatError("a model needs at least the unigrams")
        for n, order in enumerate(self.orders, 1):
            if not isinstance(order, NgramOrder):
                raise ArpaFormatError(f"orders[{n - 1}] is a {type(order).__name__}, not an NgramOrder")
            words = order.words
            if words.ndim != 2 or words.shape[1] != n:
                raise ArpaFormatError(f"orders[{n - 1}].words must have shape (count, {n}), got {words.shape}")
            count = words.shape[0]
            for name in ("logprob", "backoff"):
                values = getattr(order, name)
                if values.shape != (count,):
                    raise ArpaFormatError(f"orders[{n - 1}].{name} must have shape ({count},), got {values.shape}")
                if np.isnan(values).any():
                    raise ArpaFormatError(f"orders[{n - 1}].{name} holds NaN")
            if count and (words.min() < 0 or words.max() >= len(vocab)):
                raise ArpaFormatError(f"orders[{n - 1}].words holds ids outside [0, {len(vocab)})")
            if count > 1:
                step = np.diff(words, axis=0)
                first = np.argmax(step != 0, axis=1)
                bad = np.flatnonzero(step[np.arange(count - 1), first] <= 0)
                if len(bad):
                    row = bad[0] + 1
                    ngram = " ".join(vocab[i] for i in words[row])
                    raise ArpaFormatError(
                        f"{n}-gram {ngram!r} (row {row}) is a duplicate or out of order: "
                        "rows must be strictly increasing in lexicographic order")
        if not np.array_equal(self.orders[0].words[:, 0], np.arange(len(vocab))):
            raise ArpaFormatError("orders[0] must list every word of the vocabulary once, in id order")
        if np.any(self.orders[-1].backoff != 0):
            raise ArpaFormatError(f"the top order ({self.order}-grams) cannot have back-off weights")


# ------------------------------------------------------------------- reading
_SPACE = b" \t\n\r\x0b\x0c"
"""ASCII whitespace (what ``bytes.split()`` splits on): separates ARPA fields."""

_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[list(_SPACE)] = True
_COUNT = re.compile(rb"ngram\s*(\d+)\s*=\s*(\d+)")
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)
"""``_MASKS[k]``: the low ``k`` bytes of a uint64."""

_FLOAT_ROWS = 1 << 18
"""Numbers converted per batch (bounds the temporary byte matrix)."""


def read_arpa(path: str | os.PathLike, encoding: str = "utf-8") -> NgramModel:
    """Read an ARPA file into an :class:`NgramModel` (log10 values as written).

    Text before ``\\data\\`` is ignored. Fields are separated by ASCII
    whitespace; ``encoding`` must be ASCII-compatible (UTF-8, Latin-1, ...).
    Each section must hold exactly the count its ``ngram n=count`` line
    announces; the top order must have no back-off weights. A log-probability
    must be at most 0 and a back-off weight below infinity; ``-inf`` (probability
    0) is kept, and G leaves such n-grams and back-offs out. Rows are sorted, so
    the file's n-gram order is free. Every problem raises
    :class:`ArpaFormatError` (a ``ValueError``) naming ``path`` and the 1-based
    line. Vectorised: about 1.5 s per million n-grams on one slow core.
    """
    path = os.fspath(path)
    with open(path, "rb") as stream:
        data = stream.read().removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark, as Windows editors write
    if data.startswith(b"\x1f\x8b"):
        raise ArpaFormatError("a gzip file: decompress it first (gunzip)", path)
    try:
        data.decode(encoding)
    except UnicodeDecodeError as error:
        raise ArpaFormatError(f"not valid {encoding} ({error.reason}); pass encoding=",
                              path, data.count(b"\n", 0, error.start) + 1) from None
    cursor = _Cursor(data, path)
    counts = cursor.read_header()
    words: _WordMatcher | None = None
    orders = []
    for n, count in enumerate(counts, 1):
        number, fields = cursor.next_line(f"the '\\{n}-grams:' section")
        if fields != [b"\\%d-grams:" % n]:
            raise ArpaFormatError(f"expected '\\{n}-grams:', got {_show(fields)}", path, number)
        block, first_line = cursor.block()
        end_line = cursor.line if cursor.pos < len(data) else None
        section = _Section(block, first_line, n, count, number, end_line, path)
        if n == 1:
            words = section.vocabulary()
        orders.append(section.order(n == len(counts), words))
    number, fields = cursor.next_line("'\\end\\'")
    if fields != [b"\\end\\"]:
        raise ArpaFormatError(f"expected '\\end\\', got {_show(fields)}", path, number)
    extra = cursor.next_line(None)
    if extra is not None:
        raise ArpaFormatError("text after '\\end\\'", path, extra[0])
    vocab = tuple(word.decode(encoding) for word in words.words)
    try:
        return NgramModel(vocab, tuple(orders))
    except ArpaFormatError as error:
        raise ArpaFormatError(error.reason, path) from None


def _show(fields: list[bytes]) -> str:
    return repr(b" ".join(fields)[:80].decode("utf-8", "replace"))


class _Cursor:
    """Line-by-line reading of the few lines around the n-gram sections."""

    def __init__(self, data: bytes, path: str):
        self.data = data
        self.path = path
        self.pos = 0
        self.line = 1
        self.pending: tuple[int, list[bytes]] | None = None

    def next_line(self, expected: str | None) -> tuple[int, list[bytes]] | None:
        """``(line number, fields)`` of the next non-blank line; at the end of
        the file, None if ``expected`` is None, else an error saying what was."""
        if self.pending is not None:
            line, self.pending = self.pending, None
            return line
        while self.pos < len(self.data):
            end = self.data.find(b"\n", self.pos)
            end = len(self.data) if end < 0 else end
            fields = self.data[self.pos:end].split()
            number = self.line
            self.pos = end + 1
            self.line += 1
            if fields:
                return number, fields
        if expected is None:
            return None
        raise ArpaFormatError(f"file ends before {expected}", self.path)

    def read_header(self) -> list[int]:
        """The counts announced by the ``ngram n=count`` lines after ``\\data\\``."""
        line = self.next_line(None)
        while line is not None and line[1] != [b"\\data\\"]:
            line = self.next_line(None)
        if line is None:
            raise ArpaFormatError("no '\\data\\' line: not an ARPA file", self.path)
        counts: list[int] = []
        while True:
            number, fields = line = self.next_line("'\\1-grams:'")
            match = _COUNT.fullmatch(b" ".join(fields))
            if match is None:
                break
            if int(match.group(1)) != len(counts) + 1:
                raise ArpaFormatError(f"expected 'ngram {len(counts) + 1}=count', got {_show(fields)}",
                                      self.path, number)
            counts.append(int(match.group(2)))
            if counts == [0]:
                raise ArpaFormatError("'ngram 1=0': a model needs at least one unigram", self.path, number)
        if not counts:
            raise ArpaFormatError(f"expected 'ngram 1=count' after '\\data\\', got {_show(fields)}",
                                  self.path, number)
        self.pending = line
        return counts

    def block(self) -> tuple[bytes, int]:
        """The text from here to the next line that starts with a backslash
        (or the end of the file), and the number of its first line."""
        if self.data.startswith(b"\\", self.pos):
            end = self.pos
        else:
            end = self.data.find(b"\n\\", self.pos)
            end = len(self.data) if end < 0 else end + 1
        block, first_line = self.data[self.pos:end], self.line
        self.pos = end
        self.line += block.count(b"\n")
        return block, first_line


class _Section:
    """The lines of one ``\\n-grams:`` section, split into fields with numpy.

    ``buffer``: the section's bytes plus 8 spaces; ``starts``/``lengths``: the
    byte range of every field; ``first[i]``: the index of entry ``i``'s first
    field, ``fields[i]`` its number of fields, ``lines[i]`` its line number."""

    def __init__(self, block: bytes, first_line: int, n: int, count: int, header_line: int,
                 end_line: int | None, path: str):
        self.n, self.path = n, path
        buffer = np.frombuffer(block + b" " * 8, dtype=np.uint8)
        space = _IS_SPACE[buffer]
        text = ~space
        self.starts = np.flatnonzero(text[1:] & space[:-1]) + 1
        if len(block) and text[0]:
            self.starts = np.concatenate([[0], self.starts])
        self.lengths = np.flatnonzero(text[:-1] & space[1:]) + 1 - self.starts
        self.buffer = buffer
        line_of = np.searchsorted(np.flatnonzero(buffer == ord("\n")), self.starts)
        new_line = np.ones(len(line_of), dtype=bool)
        new_line[1:] = line_of[1:] != line_of[:-1]
        self.first = np.flatnonzero(new_line)
        self.fields = np.diff(np.append(self.first, len(self.starts)))
        self.lines = first_line + line_of[self.first]
        if len(self.first) != count:
            found = len(self.first)
            line = self.lines[count] if found > count else end_line
            raise ArpaFormatError(f"the header announces {count} {n}-grams, but the section starting "
                                  f"at line {header_line} has {found}", path, line)

    def field_bytes(self, entry: int) -> list[bytes]:
        first = self.first[entry]
        return [self.buffer[s:s + l].tobytes()
                for s, l in zip(self.starts[first:first + self.fields[entry]],
                                self.lengths[first:first + self.fields[entry]])]

    def vocabulary(self) -> "_WordMatcher":
        """The words of the unigram section (field 2 of each line), in order."""
        self._check_fields(top=False)
        words = [self.buffer[s:s + l].tobytes()
                 for s, l in zip(self.starts[self.first + 1].tolist(), self.lengths[self.first + 1].tolist())]
        matcher = _WordMatcher(words)
        if len(matcher.ids) != len(words):
            seen: dict[bytes, int] = {}
            for entry, word in enumerate(words):
                if word in seen:
                    raise ArpaFormatError(f"unigram {word.decode('utf-8', 'replace')!r} also appears on "
                                          f"line {self.lines[seen[word]]}", self.path, self.lines[entry])
                seen[word] = entry
        return matcher

    def order(self, top: bool, words: "_WordMatcher") -> NgramOrder:
        """The section's n-grams, rows sorted."""
        n = self.n
        self._check_fields(top)
        logprob = self._floats(self.first, "log-probability")
        backoff = np.zeros(len(self.first))
        with_backoff = np.flatnonzero(self.fields == n + 2)
        backoff[with_backoff] = self._floats(self.first[with_backoff] + n + 1, "back-off weight")
        above = np.flatnonzero(logprob > 0)
        if len(above):
            raise ArpaFormatError(f"log-probability {logprob[above[0]]} is above 0: a probability above 1",
                                  self.path, self.lines[above[0]])
        above = np.flatnonzero(backoff == math.inf)
        if len(above):
            raise ArpaFormatError("back-off weight inf: back-off weights are finite log10 values (or -inf)",
                                  self.path, self.lines[above[0]])
        ids = np.empty((len(self.first), n), dtype=np.int32)
        for j in range(n):
            field = self.first + 1 + j
            ids[:, j] = column = words.find(self.buffer, self.starts[field], self.lengths[field])
            unknown = np.flatnonzero(column < 0)
            if len(unknown):
                word = self.field_bytes(unknown[0])[1 + j].decode("utf-8", "replace")
                raise ArpaFormatError(f"word {word!r} of a {n}-gram is not a unigram",
                                      self.path, self.lines[unknown[0]])
        rows = np.lexsort(ids.T[::-1])
        ids = ids[rows]
        same = np.flatnonzero(np.all(ids[1:] == ids[:-1], axis=1))
        if len(same):
            first, second = sorted(self.lines[rows[same[0]:same[0] + 2]])
            ngram = b" ".join(self.field_bytes(rows[same[0]])[1:n + 1]).decode("utf-8", "replace")
            raise ArpaFormatError(f"{n}-gram {ngram!r} also appears on line {first}", self.path, second)
        return NgramOrder(ids, logprob[rows], backoff[rows])

    def _check_fields(self, top: bool) -> None:
        n = self.n
        bad = np.flatnonzero((self.fields != n + 1) & ((self.fields != n + 2) | top))
        if len(bad):
            got = self.field_bytes(bad[0])
            backoff = "" if top else " [backoff]"
            raise ArpaFormatError(
                f"expected 'logprob {' '.join(f'w{i}' for i in range(1, n + 1))}{backoff}' "
                f"({n + 1}{'' if top else f' or {n + 2}'} fields), got {len(got)}: {_show(got)}",
                self.path, self.lines[bad[0]])

    def _floats(self, fields: np.ndarray, what: str) -> np.ndarray:
        """The numbers in ``fields`` (field indices) as float64, parsed by numpy
        in batches; :class:`ArpaFormatError` naming the line of the first one
        that is not a number or is NaN."""
        values = np.empty(len(fields))
        for begin in range(0, len(fields), _FLOAT_ROWS):
            batch = fields[begin:begin + _FLOAT_ROWS]
            starts, lengths = self.starts[batch], self.lengths[batch]
            width = int(lengths.max())
            columns = np.arange(width)
            matrix = self.buffer[starts[:, None] + np.minimum(columns, lengths[:, None] - 1)]
            matrix[columns >= lengths[:, None]] = 0  # 'S' strings end at the first NUL
            try:
                values[begin:begin + len(batch)] = matrix.view(f"S{width}").ravel().astype(np.float64)
            except ValueError:
                values[begin:begin + len(batch)] = np.nan  # find the culprit below
        bad = np.flatnonzero(np.isnan(values))
        if len(bad):
            for index in fields[bad]:
                field = self.buffer[self.starts[index]:self.starts[index] + self.lengths[index]].tobytes()
                try:
                    if not math.isnan(float(field)):
                        continue
                except ValueError:
                    pass
                entry = int(np.searchsorted(self.first, index, side="right")) - 1
                raise ArpaFormatError(f"{what} {field.decode('utf-8', 'replace')!r} is not a number",
                                      self.path, self.lines[entry])
        return values


def _chunks(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray):
    """For k = 0, 1, ...: ``(tokens, chunk)``, the tokens (indices into
    ``starts``/``lengths``) longer than ``8 k`` bytes and their bytes ``8 k ..
    8 k + 7`` as little-endian uint64 (bytes past the token zeroed). ``buffer``
    (uint8) must extend 8 bytes past every token."""
    words = np.ndarray((len(buffer) - 7,), dtype="<u8", buffer=buffer, strides=(1,))
    tokens = np.flatnonzero(lengths > 0)
    offset = 0
    while len(tokens):
        remaining = lengths[tokens] - offset
        yield tokens, words[starts[tokens] + offset] & _MASKS[np.minimum(remaining, 8)]
        tokens = tokens[remaining > 8]
        offset += 8


def _hash(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit hash (uint64) of the bytes of each token."""
    hashes = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for tokens, chunk in _chunks(buffer, starts, lengths):
        hashes[tokens] = (hashes[tokens] ^ chunk) * np.uint64(0xBF58476D1CE4E5B9)
        hashes[tokens] ^= hashes[tokens] >> np.uint64(31)
    return hashes


class _WordMatcher:
    """The vocabulary, and the vectorised mapping of word fields to word ids:
    each field's hash is looked up among the words' hashes, then its bytes
    are compared with the word's; fields that match no word that way (unknown
    words, or a word whose hash another word shares) go through a dict."""

    def __init__(self, words: list[bytes]):
        self.words = words
        self.ids = {word: i for i, word in enumerate(words)}
        self.buffer = np.frombuffer(b"".join(words) + b" " * 8, dtype=np.uint8)
        self.lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        self.starts = np.cumsum(self.lengths) - self.lengths
        hashes = _hash(self.buffer, self.starts, self.lengths)
        self.by_hash = np.argsort(hashes, kind="stable")
        self.hashes = hashes[self.by_hash]

    def find(self, buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The id (int64) of each token of ``buffer``, -1 where it is no word."""
        if not self.words:
            return np.full(len(starts), -1, dtype=np.int64)
        hashes = _hash(buffer, starts, lengths)
        where = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        ids = self.by_hash[where]
        same = (self.hashes[where] == hashes) & (self.lengths[ids] == lengths)
        candidates = np.flatnonzero(same)
        for (tokens, chunk), (_, word_chunk) in zip(
                _chunks(buffer, starts[candidates], lengths[candidates]),
                _chunks(self.buffer, self.starts[ids[candidates]], lengths[candidates])):
            same[candidates[tokens]] &= chunk == word_chunk
        for token in np.flatnonzero(~same):
            word = buffer[starts[token]:starts[token] + lengths[token]].tobytes()
            ids[token] = self.ids.get(word, -1)
        return ids


# ------------------------------------------------------------------- writing
def write_arpa(model: NgramModel, path: str | os.PathLike) -> None:
    """Write ``model`` as an ARPA file (UTF-8, ``\\n`` line ends): one line
    ``logprob<TAB>w1 .. wn[<TAB>backoff]`` per n-gram, in row order, with the
    back-off weight printed where it is not 0. Values are printed by ``repr``,
    the shortest decimal that reads back as the same float64, so
    :func:`read_arpa` gives back an equal model."""
    vocab = np.array(model.vocab, dtype=object)
    with open(path, "w", encoding="utf-8", newline="\n") as stream:
        stream.write("\\data\\\n")
        stream.writelines(f"ngram {n}={count}\n" for n, count in enumerate(model.counts, 1))
        for order in model.orders:
            stream.write(f"\n\\{order.n}-grams:\n")
            words = map(" ".join, zip(*(vocab[order.words[:, j]] for j in range(order.n))))
            logprobs = map(repr, order.logprob.tolist())
            backoffs = (f"\t{value!r}" if value else "" for value in order.backoff.tolist())
            stream.writelines(f"{p}\t{w}{b}\n" for p, w, b in zip(logprobs, words, backoffs))
        stream.write("\n\\end\\\n")
