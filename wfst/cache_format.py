"""The native cache format: a :class:`~wfst.csr.CsrFst` laid out exactly as in
memory, so that loading it is a memory map, not a parse.

Layout (little-endian)::

    bytes 0..63   magic b"WFSTCSR\\x00" | uint32 version = 1 | uint32 reserved = 0 |
                  int64 S | int64 A | int64 E | int64 start | 16 zero bytes
    then, each starting at a multiple of 64 bytes:
                  final float32[S] | e_offsets int32[S+1] | ne_offsets int32[S+1] |
                  nextstate int32[A] | weight float32[A] | ilabel int32[A] | olabel int32[A]

The file size must equal what the counts imply; loading validates every
invariant, so a corrupted cache raises :class:`~wfst.errors.FstFormatError`
naming the byte offset of the first bad element.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from .csr import INDEX_LIMIT, CsrFst, InvariantError
from .errors import FstFormatError
from .file_replace import replaced

MAGIC = b"WFSTCSR\x00"
VERSION = 1
HEADER = struct.Struct("<8sIIqqqq16x")
ALIGNMENT = 64
ARRAYS = (  # name, dtype, length as a function of (S, A)
    ("final", "<f4", lambda S, A: S),
    ("e_offsets", "<i4", lambda S, A: S + 1),
    ("ne_offsets", "<i4", lambda S, A: S + 1),
    ("nextstate", "<i4", lambda S, A: A),
    ("weight", "<f4", lambda S, A: A),
    ("ilabel", "<i4", lambda S, A: A),
    ("olabel", "<i4", lambda S, A: A),
)


def _layout(S: int, A: int):
    """``({name: (offset, dtype, length)}, file_size)``."""
    offset, layout = HEADER.size, {}
    for name, dtype, length in ARRAYS:
        offset = -(-offset // ALIGNMENT) * ALIGNMENT
        layout[name] = (offset, np.dtype(dtype), length(S, A))
        offset += layout[name][2] * np.dtype(dtype).itemsize
    return layout, offset


def write_cache(fst: CsrFst, path: str | os.PathLike) -> None:
    """Write ``fst`` (validated first) to ``path``, through a temporary file
    renamed into place (:func:`wfst.file_replace.replaced`), so a reader never
    sees half a cache."""
    fst.validate()
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save the cache as {os.fspath(path)!r}: it is a directory (give a file "
                                "path, e.g. graph.wfst)")
    layout, size = _layout(fst.num_states, fst.num_arcs)
    with replaced(path) as stream:
        stream.write(HEADER.pack(MAGIC, VERSION, 0, fst.num_states, fst.num_arcs, fst.num_emitting_arcs, fst.start))
        for name, (offset, dtype, _length) in layout.items():
            stream.write(b"\0" * (offset - stream.tell()))
            stream.write(np.ascontiguousarray(getattr(fst, name), dtype=dtype).tobytes())
        assert stream.tell() == size


def is_cache(head: bytes) -> bool:
    return head[: len(MAGIC)] == MAGIC


def read_cache(buf: np.ndarray, path=None) -> CsrFst:
    """A :class:`CsrFst` whose arrays are read-only views of ``buf`` (a uint8
    memory map of the whole file)."""
    if len(buf) < HEADER.size:
        raise FstFormatError(f"file ends inside the {HEADER.size}-byte cache header", path, len(buf))
    magic, version, _reserved, S, A, E, start = HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise FstFormatError("not a wfst cache file (bad magic)", path, 0)
    if version != VERSION:
        raise FstFormatError(f"cache version {version}; this wfst-gpu reads version {VERSION}: "
                             "rebuild the cache with CsrFst.save", path, 8)
    if not (0 <= S <= INDEX_LIMIT and 0 <= A <= INDEX_LIMIT and 0 <= E <= A):
        raise FstFormatError(f"bad counts in the cache header: S={S}, A={A}, E={E}", path, 16)
    layout, size = _layout(S, A)
    if len(buf) != size:
        raise FstFormatError(f"the header's counts need {size} bytes, the file has {len(buf)}",
                             path, min(size, len(buf)))
    arrays = {name: np.frombuffer(buf, dtype, length, offset) for name, (offset, dtype, length) in layout.items()}
    fst = CsrFst(start=int(start), **arrays)
    try:
        fst.validate()
    except InvariantError as error:
        offset = None
        if error.array in layout and error.index is not None:
            offset = layout[error.array][0] + error.index * layout[error.array][1].itemsize
        raise FstFormatError(error.reason, path, offset) from None
    if fst.num_emitting_arcs != E:
        raise FstFormatError(f"header says {E} emitting arcs, offsets say {fst.num_emitting_arcs}", path, 32)
    return fst
