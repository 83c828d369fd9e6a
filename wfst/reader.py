"""``read_fst``: one entry point for every graph format, chosen by the file's
first bytes, never by its name."""

from __future__ import annotations

import os

import numpy as np

from . import cache_format, openfst_binary
from .csr import CsrFst
from .errors import FstFormatError

FORMATS = ("openfst", "wfst-cache", "text")
GZIP_MAGIC = b"\x1f\x8b"
"""The first bytes of a gzip file (HCLG.fst.gz, lat.1.gz), which the readers name as such."""


def _map(path: str) -> np.ndarray:
    """The whole file as a read-only memory-mapped uint8 array;
    :class:`FstFormatError` for a directory or an empty file."""
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise FileNotFoundError(f"cannot read FST file {path!r}: {error.strerror}") from error
    if os.path.isdir(path):
        raise FstFormatError("a directory, not an FST file", path)
    if not size:
        raise FstFormatError("the file is empty (0 bytes): a graph written part-way, or the wrong path?", path)
    return np.memmap(path, dtype=np.uint8, mode="r")


def detect_format(buf: np.ndarray, path=None) -> str:
    """One of :data:`FORMATS`, from the first bytes of the file."""
    head = bytes(buf[:8])
    if head[:4] == openfst_binary.FST_MAGIC.to_bytes(4, "little"):
        return "openfst"
    if cache_format.is_cache(head):
        return "wfst-cache"
    if head.startswith(GZIP_MAGIC):
        raise FstFormatError("gzip-compressed: decompress it first (gunzip -k FILE)", path, 0)
    if b"\0" in bytes(buf[:64]):
        raise FstFormatError(
            f"unrecognised binary file (first bytes {head.hex()}): not an OpenFst vector/const FST, "
            "not a wfst cache, not AT&T text", path, 0)
    return "text"


def read_fst(path: str | os.PathLike, *, isymbols=None, osymbols=None, acceptor: bool = False) -> CsrFst:
    """Read a graph into a validated :class:`CsrFst`.

    Formats: OpenFst binary ``vector`` and ``const`` files with standard
    (tropical float32) arcs, as written by OpenFst, pynini and Kaldi; wfst's
    native cache (:meth:`CsrFst.save`; memory-mapped read-only, no copy); the
    AT&T text format (``isymbols``/``osymbols``: :class:`wfst.SymbolTable` or
    the path of a symbol table, for symbolic labels; ``acceptor``: 3-field arc
    lines).

    Raises :class:`FstFormatError` (a ``ValueError``) for a malformed, truncated,
    empty or unsupported file or a directory, naming the path and the byte
    offset or line; ``FileNotFoundError`` when the file cannot be opened.
    """
    path = os.fspath(path)
    buf = _map(path)
    kind = detect_format(buf, path)
    if kind == "openfst":
        return openfst_binary.parse_openfst(buf, path)
    if kind == "wfst-cache":
        return cache_format.read_cache(buf, path)
    from .symbols import SymbolTable
    from .text_format import parse_text_fst

    isymbols, osymbols = (SymbolTable.read(t) if isinstance(t, (str, os.PathLike)) else t
                          for t in (isymbols, osymbols))
    return parse_text_fst(bytes(buf), path, isymbols=isymbols, osymbols=osymbols, acceptor=acceptor)


def describe_format(path: str | os.PathLike) -> str:
    """A human-readable name of the file's format, e.g. ``"OpenFst const"``."""
    path = os.fspath(path)
    buf = _map(path)
    kind = detect_format(buf, path)
    if kind == "openfst":
        return f"OpenFst {openfst_binary.read_header(buf, path).fst_type}"
    return {"wfst-cache": "wfst cache (memory-mapped)", "text": "AT&T text"}[kind]
