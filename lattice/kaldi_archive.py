"""Kaldi lattice archives: write and read ``Lattice`` and ``CompactLattice``
tables as Kaldi's ``LatticeWriter`` / ``CompactLatticeWriter`` and
``SequentialLatticeReader`` / ``SequentialCompactLatticeReader`` do.

An archive is entries back to back: ``key``, one space, the object. Keys are
non-empty and hold no whitespace. An object is binary (an OpenFst vector FST,
:mod:`lattice.kaldi_binary`) or text (a newline, one line per arc, a blank
line; :mod:`lattice.kaldi_text`); each object says which by its first byte, so
one archive may mix both, and appending entries to an archive is how a long
job writes one utterance at a time.

Where an archive lives: a path, ``-`` (standard input/output), a Kaldi
specifier ``ark:PATH``, ``ark,t:PATH`` (text), ``ark,b:PATH`` (binary; other
options Kaldi allows on an ``ark`` specifier are accepted and change nothing
here), or an open binary file object.

States come back renumbered topologically from the start state (see
:mod:`lattice.kaldi_fst`), so lattices from any Kaldi tool read; what we write is
already in that order and reads back unchanged.
"""

from __future__ import annotations

import io
import mmap
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from wfst.file_replace import replaced
from wfst.reader import GZIP_MAGIC

from . import kaldi_binary, kaldi_text
from .compact_lattice import CompactLattice
from .convert import compact_to_lattice, factor
from .kaldi_fst import KaldiLatticeError, build_compact_lattice, build_lattice
from .lattice import Lattice

_SPECIFIER = re.compile(r"^(ark|scp)((?:,[a-z]+)*):(.*)$", re.DOTALL)
_READ_OPTIONS = {"b", "t", "o", "no", "s", "ns", "cs", "ncs", "p", "np", "bg"}
_WRITE_OPTIONS = {"b", "t", "f", "nf", "p"}
_SPACE = b" \t\n\r\v\f"


def _parse_target(target, options: set[str]):
    """``(path or '-', binary option or None)`` of a path or specifier."""
    text = os.fspath(target)
    match = _SPECIFIER.match(text) if isinstance(text, str) else None
    if match is None:
        return text, None
    table, opts, path = match.group(1), [o for o in match.group(2).split(",") if o], match.group(3)
    if table == "scp" or "scp" in opts:
        raise KaldiLatticeError(f"{text!r}: script (scp) tables are not supported; name the archive, 'ark:PATH'")
    unknown = [o for o in opts if o not in options]
    if unknown:
        raise KaldiLatticeError(f"{text!r}: unsupported option(s) {', '.join(unknown)} (supported: "
                                f"{', '.join(sorted(options))})")
    if not path:
        raise KaldiLatticeError(f"{text!r}: no path after the ':'")
    if path.strip().startswith("|") or path.strip().endswith("|"):
        raise KaldiLatticeError(f"{text!r}: commands ('|') are not run; open the file yourself and pass the file "
                                "object, e.g. read_lattices(gzip.open('lat.1.gz')) or "
                                "write_lattices(gzip.open('lat.1.gz', 'wb'), ...)")
    if "t" in opts and "b" in opts:
        raise KaldiLatticeError(f"{text!r}: both 't' and 'b'")
    return path, (True if "b" in opts else False if "t" in opts else None)


def _check_entry(key, lat) -> bytes:
    if not isinstance(lat, (Lattice, CompactLattice)):
        raise TypeError(f"key {key!r}: expected a lattice.Lattice or lattice.CompactLattice, got {type(lat).__name__}")
    if not isinstance(key, str) or not key or not key.isprintable() or any(c.isspace() for c in key):
        raise KaldiLatticeError(f"key {key!r}: Kaldi keys are non-empty printable strings without whitespace")
    finals = [lat.final_graph_cost, lat.final_acoustic_cost]
    if any(np.isnan(c).any() or (c == -np.inf).any() for c in finals):
        raise KaldiLatticeError("a final cost is NaN or -inf: no Kaldi tool reads such a lattice back", key=key)
    if not all(np.isfinite(c).all() for c in (lat.arc_graph_cost, lat.arc_acoustic_cost)):
        raise KaldiLatticeError("an arc cost is not finite: no Kaldi tool reads such a lattice back (remove the "
                                "arc, e.g. with prune())", key=key)
    return key.encode()


def write_lattices(target, items: Iterable[tuple[str, Lattice | CompactLattice]] | Mapping,
                   binary: bool | None = None, append: bool = False) -> None:
    """Write ``(key, lattice)`` pairs (or a mapping key -> lattice) to a Kaldi archive.

    ``target``: a path, ``-`` (standard output), ``ark:PATH`` / ``ark,t:PATH`` /
    ``ark,b:PATH``, or a file object open for writing bytes (written at its
    position, flushed, not closed). ``binary``: None takes the specifier's
    ``t``/``b`` and is binary otherwise. ``append``: add to an existing file
    instead of replacing it. A file replaced keeps its old content until the
    last item is written (:func:`wfst.file_replace.replaced`), so the items may
    be read from it. Each lattice is written as its own type
    (``Lattice`` -> arc type ``lattice4``, ``CompactLattice`` ->
    ``compactlattice44``; text lines as in :mod:`lattice.kaldi_text`). Items
    are consumed and written one at a time, so a generator streams.

    Raises :class:`KaldiLatticeError` for a bad key, an arc cost that is not
    finite or a NaN/-inf final cost, before
    that entry is written (earlier ones are, except to a file replaced: it
    keeps its old content), and ``TypeError`` for what is not a lattice.
    """
    if isinstance(target, io.TextIOBase):
        raise TypeError("open the archive in binary mode ('wb' or 'ab')")
    if hasattr(target, "write"):
        _write_entries(target, items, True if binary is None else binary)
        target.flush()
        return
    path, spec_binary = _parse_target(target, _WRITE_OPTIONS)
    if binary is not None and spec_binary is not None and binary != spec_binary:
        raise KaldiLatticeError(f"{os.fspath(target)!r} asks for {'binary' if spec_binary else 'text'}, "
                                f"binary={binary} for the other")
    if binary is None:
        binary = True if spec_binary is None else spec_binary
    if path == "-":
        _write_entries(sys.stdout.buffer, items, binary)
        sys.stdout.buffer.flush()
        return
    special = os.path.exists(path) and not os.path.isfile(path)  # a device or pipe: written, never replaced
    with open(path, "ab" if append else "wb") if append or special else replaced(path) as file:
        _write_entries(file, items, binary)


def _write_entries(file, items, binary: bool) -> None:
    if isinstance(items, Mapping):  # {key: lattice}, as read_lattices' entries make with dict()
        items = items.items()
    for key, lat in items:
        head = _check_entry(key, lat) + b" "
        if not binary:
            body = kaldi_text.encode(lat)
        elif isinstance(lat, CompactLattice):
            body = kaldi_binary.encode_compact_lattice(lat)
        else:
            body = kaldi_binary.encode_lattice(lat)
        file.write(head + body)


def read_lattices(source, kind: type | None = None) -> Iterator[tuple[str, Lattice | CompactLattice]]:
    """Iterate over the ``(key, lattice)`` entries of a Kaldi archive, in order.

    ``source``: a path (memory-mapped), ``-`` (standard input), ``ark:PATH``
    (``ark,t:``, ``ark,b:``, ...), or a file object open for reading bytes (read
    whole), e.g. ``gzip.open("lat.1.gz")``: commands (``ark:... |``) are not
    run. ``kind``: None gives each object as the type the archive holds (a text
    object whose lines fit both types, e.g. an empty lattice, comes back as a
    ``CompactLattice``); :class:`Lattice` or :class:`CompactLattice`
    converts where needed (:mod:`lattice.convert`), as Kaldi's readers do.

    Raises :class:`KaldiLatticeError` (naming the path, key and byte offset
    or line) for a malformed archive or a lattice our types cannot hold: a
    cycle, or, for a ``Lattice``, paths reading different numbers of frames to
    one state.
    """
    if kind not in (None, Lattice, CompactLattice):
        raise TypeError(f"kind must be None, lattice.Lattice or lattice.CompactLattice, got {kind!r}")
    if isinstance(source, io.TextIOBase):
        raise TypeError("open the archive in binary mode ('rb')")
    if hasattr(source, "read"):
        yield from _read_buffer(source.read(), kind, getattr(source, "name", None))
        return
    path, _ = _parse_target(source, _READ_OPTIONS)
    if path == "-":
        yield from _read_buffer(sys.stdin.buffer.read(), kind, "-")
        return
    with open(path, "rb") as file:
        # Unmapped when the last reference goes (an error's traceback may hold one).
        buf = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(file.fileno()).st_size else b""
    yield from _read_buffer(buf, kind, path)


def _read_buffer(buf, kind, path) -> Iterator[tuple[str, Lattice | CompactLattice]]:
    if bytes(buf[:2]) == GZIP_MAGIC:
        raise KaldiLatticeError("gzip-compressed (as Kaldi's lat.N.gz): pass gzip.open(path) instead of the path",
                                path, offset=0)
    u8 = np.frombuffer(buf, dtype=np.uint8)
    pos, end = 0, len(buf)
    while True:
        while pos < end and buf[pos] in _SPACE:
            pos += 1
        if pos == end:
            return
        key, pos = _read_key(buf, pos, end, path)
        try:
            lat, pos = _read_object(buf, u8, pos, end, kind)
        except KaldiLatticeError as error:  # cycles and frame counts are found after parsing
            raise error.located(path=path, key=key, offset=pos) from None
        yield key, lat


def _read_key(buf, pos: int, end: int, path):
    start = pos
    while pos < end and buf[pos] not in _SPACE:
        pos += 1
    raw = bytes(buf[start:pos])
    try:
        key = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KaldiLatticeError(f"key {raw[:60]!r} is not UTF-8", path, offset=start) from None
    if pos == end:
        raise KaldiLatticeError("the archive ends after the key", path, key, offset=pos)
    if buf[pos] not in b" \t\n":
        raise KaldiLatticeError("expected a space after the key", path, key, offset=pos)
    return key, pos + (buf[pos] != ord("\n"))


def _read_object(buf, u8, pos: int, end: int, kind):
    """``(lattice, end)`` of the object at ``pos`` (just after the key's space)."""
    first = buf[pos] if pos < end else -1
    if first != -1 and first in _SPACE:  # text: spaces, then the newline after the key
        while pos < end and buf[pos] in b" \t\r\v\f":
            pos += 1
        if pos == end or buf[pos] != ord("\n"):
            raise KaldiLatticeError("a text lattice starts on the line after its key", offset=pos)
        file_kind, arrays_for, pos = kaldi_text.decode(buf, pos + 1)
        file_kind = file_kind or kind or CompactLattice
        arrays = arrays_for(file_kind)
    elif first != -1 and kaldi_binary.starts_binary(first):
        file_kind, arrays, pos = kaldi_binary.decode(buf, u8, pos)
    else:
        hint = (" (a '\\0B' header: a Kaldi object of another type, not a lattice)"
                if bytes(buf[pos:pos + 2]) == b"\0B" else "")
        raise KaldiLatticeError(f"neither a text lattice (a newline after the key) nor a binary one "
                                f"(the OpenFst magic number){hint}", offset=pos)
    return _as_kind(file_kind, arrays, kind), pos


def _as_kind(file_kind, arrays, kind):
    if file_kind is Lattice:
        return factor(*arrays) if kind is CompactLattice else build_lattice(*arrays)
    clat = build_compact_lattice(*arrays)
    return compact_to_lattice(clat) if kind is Lattice else clat
