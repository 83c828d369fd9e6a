"""OpenFst/Kaldi text symbol tables (``words.txt``, ``tokens.txt``, ``phones.txt``).

One ``symbol id`` pair per line, the two fields separated by spaces or tabs;
ids are non-negative integers (labels of FST arcs, so below 2**31); blank lines
are ignored. ``<eps> 0`` and Kaldi's ``#0``-style disambiguation symbols are
ordinary entries.

Also holds the line splitting shared with :mod:`wfst.text_format`.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Iterable, Iterator
from types import MappingProxyType

from .errors import FstFormatError

LABEL_LIMIT = 2**31 - 1
"""Largest label or symbol id: labels are int32 on the device."""

_ODD_SPACE = re.compile(r"[^\S \t\n]")
"""Whitespace that ``str.split()`` splits on but OpenFst does not (it splits on
spaces and tabs only)."""

_FIELD_BREAK = re.compile(r"[ \t\r\n]")
"""Characters a symbol cannot contain, or it would not read back."""


def decode_utf8(data: bytes, path: str | os.PathLike | None) -> str:
    """``data`` as text, without a leading UTF-8 byte-order mark (Windows
    editors write one; OpenFst would take it for part of the first symbol);
    :class:`FstFormatError` naming the line and byte offset of the first byte
    that is not UTF-8."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise FstFormatError(
            f"line {line}: not valid UTF-8 ({error.reason}); "
            "text FSTs and symbol tables must be UTF-8 encoded", path, error.start) from None


def integer_field(field: str) -> int | None:
    """The value of a field of ASCII digits, else None. Values of 20 digits or
    more come back as some number >= 10**19: enough to say it is too large,
    without converting thousands of digits."""
    if not (field.isascii() and field.isdigit()):
        return None
    return int(field) if len(field) < 20 else int(field.lstrip("0")[:20] or "0")


def _split_spaces_tabs(line: str) -> list[str]:
    return [field for field in line.replace("\t", " ").split(" ") if field]


def iter_fields(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-blank line, numbered from 1.

    Fields are separated by runs of spaces and tabs; a ``\\r`` before a line's
    ``\\n`` (Windows line ends) is dropped; other characters, Unicode spaces
    included, belong to the fields, as in OpenFst."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    # str.split() is much faster and equivalent when no other whitespace occurs.
    split = str.split if _ODD_SPACE.search(text) is None else _split_spaces_tabs
    for number, line in enumerate(text.split("\n"), 1):
        fields = split(line)
        if fields:
            yield number, fields


class SymbolTable:
    """A bijection between symbols (``str``) and ids (``int``), as in an OpenFst
    text symbol table. Immutable; build with :meth:`read` or :meth:`from_pairs`.

    ``table[key]`` / :meth:`find` map a symbol to its id and an id to its
    symbol; iteration yields ``(id, symbol)`` in increasing id order."""

    def __init__(self, entries: Iterable[tuple[str, str, int]], path: str | os.PathLike | None = None):
        """``entries``: ``(where, symbol, id)`` with ``where`` naming the line or
        pair for error messages; use :meth:`read` or :meth:`from_pairs`."""
        self.path = None if path is None else os.fspath(path)
        ids: dict[str, int] = {}
        symbols: dict[int, str] = {}
        for where, symbol, id_ in entries:
            if id_ > LABEL_LIMIT:
                raise FstFormatError(
                    f"{where}: id {id_} of symbol {symbol!r} is above {LABEL_LIMIT} "
                    "(labels are 32-bit); renumber the symbols", path)
            if symbol in ids:
                raise FstFormatError(
                    f"{where}: symbol {symbol!r} appears twice (ids {ids[symbol]} and {id_}); "
                    "each symbol must have exactly one id", path)
            if id_ in symbols:
                raise FstFormatError(
                    f"{where}: id {id_} is used twice ({symbols[id_]!r} and {symbol!r}); "
                    "each id must name exactly one symbol", path)
            ids[symbol] = id_
            symbols[id_] = symbol
        self._ids = ids
        self._symbols = dict(sorted(symbols.items()))

    # ----------------------------------------------------------- construction
    @classmethod
    def read(cls, path: str | os.PathLike) -> "SymbolTable":
        """Read a text symbol table; :class:`FstFormatError` (a ``ValueError``)
        naming the line for a malformed line, a duplicate symbol or id, or bytes
        that are not UTF-8."""
        path = os.fspath(path)
        with open(path, "rb") as stream:
            text = decode_utf8(stream.read(), path)

        def entries():
            for number, fields in iter_fields(text):
                if len(fields) != 2:
                    raise FstFormatError(
                        f"line {number}: expected 2 fields 'symbol id' separated by spaces or tabs, "
                        f"got {len(fields)}: {' '.join(fields)[:80]!r}; symbols cannot contain spaces", path)
                symbol, id_field = fields
                id_ = integer_field(id_field)
                if id_ is None:
                    raise FstFormatError(
                        f"line {number}: id {id_field!r} of symbol {symbol!r} is not a non-negative "
                        "integer; each line must be 'symbol id'", path)
                yield f"line {number}", symbol, id_

        return cls(entries(), path)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, int]]) -> "SymbolTable":
        """A table from ``(symbol, id)`` pairs; same rules as :meth:`read`, and a
        symbol must be a non-empty string without spaces, tabs or line breaks
        (so that :meth:`write` gives a readable file)."""

        def entries():
            for number, (symbol, id_) in enumerate(pairs, 1):
                if not (isinstance(symbol, str) and symbol and _FIELD_BREAK.search(symbol) is None):
                    raise FstFormatError(
                        f"pair {number}: symbol {symbol!r} must be a non-empty str without spaces, "
                        "tabs or line breaks")
                if isinstance(id_, bool) or not hasattr(id_, "__index__") or operator.index(id_) < 0:
                    raise FstFormatError(
                        f"pair {number}: id {id_!r} of symbol {symbol!r} is not a non-negative integer")
                yield f"pair {number}", symbol, operator.index(id_)

        return cls(entries())

    def write(self, path: str | os.PathLike) -> None:
        """Write ``symbol<TAB>id`` lines in increasing id order (OpenFst's
        ``SymbolTable::WriteText`` layout)."""
        with open(path, "w", encoding="utf-8", newline="\n") as stream:
            stream.writelines(f"{symbol}\t{id_}\n" for id_, symbol in self._symbols.items())

    # ----------------------------------------------------------------- lookup
    def find(self, key: str | int) -> int | str:
        """The id of symbol ``key`` (a ``str``) or the symbol of id ``key`` (an
        ``int``); ``KeyError`` when absent, ``TypeError`` for another type."""
        if isinstance(key, str):
            try:
                return self._ids[key]
            except KeyError:
                raise KeyError(f"symbol {key!r} is not in {self._name()}") from None
        try:
            return self._symbols[operator.index(key)]
        except KeyError:
            raise KeyError(f"id {key!r} is not in {self._name()}") from None

    __getitem__ = find

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self._ids
        try:
            return operator.index(key) in self._symbols
        except TypeError:
            return False

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(self._symbols.items())

    def __eq__(self, other: object) -> bool:
        """Tables are equal when they map the same symbols to the same ids
        (wherever they were read from)."""
        if not isinstance(other, SymbolTable):
            return NotImplemented
        return self._symbols == other._symbols

    def __hash__(self) -> int:
        return hash(tuple(self._symbols.items()))

    @property
    def symbol_to_id(self) -> MappingProxyType:
        """Read-only ``{symbol: id}``."""
        return MappingProxyType(self._ids)

    @property
    def id_to_symbol(self) -> MappingProxyType:
        """Read-only ``{id: symbol}`` in increasing id order."""
        return MappingProxyType(self._symbols)

    @property
    def max_id(self) -> int:
        """Largest id, -1 for an empty table."""
        return next(reversed(self._symbols), -1)

    def _name(self) -> str:
        source = f"symbol table {self.path!r}" if self.path is not None else "the symbol table"
        if not self._symbols:
            return f"{source} (empty)"
        return f"{source} ({len(self)} symbols, ids {next(iter(self._symbols))}..{self.max_id})"

    def __repr__(self) -> str:
        source = f", path={self.path!r}" if self.path is not None else ""
        return f"SymbolTable({len(self)} symbols, max_id={self.max_id}{source})"
