"""OpenFst binary files (``vector`` and ``const``, arc type ``standard``) to and
from :class:`~wfst.csr.CsrFst`, parsed in bulk.

File layout (little-endian), as written by OpenFst, pynini and Kaldi's tools::

    header:  int32 magic 0x7eb2fdd6 | string fst_type | string arc_type |
             int32 version | int32 flags | uint64 properties |
             int64 start | int64 num_states | int64 num_arcs
             [input symbol table if flags & 1] [output symbol table if flags & 2]
    vector:  per state: float32 final, int64 narcs, narcs arcs        (version 2)
    const:   [pad to 16 if aligned] S x (float32 final, uint32 pos, narcs,
             niepsilons, noepsilons) [pad to 16 if aligned] A arcs     (version 1 = aligned, 2)
    arc:     int32 ilabel, int32 olabel, float32 weight, int32 nextstate

A string is an int32 length and that many bytes. Header counts are not trusted:
vector files written by Kaldi's tools and pynini say ``num_arcs = 0``, and
``num_states`` may be -1 (read to the end). Every count is checked against the
bytes that are actually there before anything is allocated from it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .csr import INDEX_LIMIT, CsrFst, InvariantError
from .errors import FstFormatError

FST_MAGIC = 0x7EB2FDD6
SYMBOL_TABLE_MAGIC = 0x7EB2FB74
HAS_ISYMBOLS, HAS_OSYMBOLS, IS_ALIGNED = 0x1, 0x2, 0x4
EXPANDED, MUTABLE = 0x1, 0x2  # OpenFst property bits
ALIGNMENT = 16
MAX_NAME_BYTES = 1 << 16

ARC_DTYPE = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("weight", "<f4"), ("nextstate", "<i4")])
CONST_STATE_DTYPE = np.dtype(
    [("final", "<f4"), ("pos", "<u4"), ("narcs", "<u4"), ("niepsilons", "<u4"), ("noepsilons", "<u4")]
)
SUPPORTED_TYPES = {"vector": (2,), "const": (1, 2)}


@dataclass(frozen=True)
class Header:
    fst_type: str
    arc_type: str
    version: int
    flags: int
    properties: int
    start: int
    num_states: int
    num_arcs: int
    body_offset: int


class ByteCursor:
    """Bounds-checked little-endian reads from ``buf`` (bytes, a uint8 array or
    a memory map) from byte ``pos`` on. A failure is ``error(message, offset)``
    (an exception, not raised here), naming the absolute byte offset; the
    messages call the buffer ``container`` ("the file", "the archive"). Shared
    by the FST and the Kaldi lattice readers."""

    def __init__(self, buf, pos: int, error, container: str):
        self.buf, self.pos, self.end = buf, pos, len(buf)
        self.error, self.container = error, container

    def fail(self, message: str, offset: int | None = None) -> Exception:
        return self.error(message, self.pos if offset is None else offset)

    def left(self) -> int:
        return self.end - self.pos

    def unpack(self, fmt: str | struct.Struct, what: str):
        """The values of ``fmt`` at the cursor (one value alone), which moves past them."""
        layout = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        if layout.size > self.left():
            raise self.fail(f"{self.container} ends inside {what}")
        values = layout.unpack_from(self.buf, self.pos)
        self.pos += layout.size
        return values[0] if len(values) == 1 else values

    def string(self, what: str) -> str:
        """An OpenFst string: int32 length, then that many UTF-8 bytes."""
        start = self.pos
        length = self.unpack("<i", what)
        if not 0 <= length <= min(MAX_NAME_BYTES, self.left()):
            raise self.fail(f"{what}: bad string length {length}", start)
        raw = bytes(self.buf[self.pos:self.pos + length])
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what}: not UTF-8", start) from None

    def skip_symbol_table(self, side: str) -> None:
        """Past an embedded symbol table (``side``: "input" or "output")."""
        start = self.pos
        if self.unpack("<I", f"the {side} symbol table") != SYMBOL_TABLE_MAGIC:
            raise self.fail(f"bad magic number of the embedded {side} symbol table", start)
        self.string(f"the {side} symbol table name")
        _available_key, size = self.unpack("<qq", f"the {side} symbol table")
        if not 0 <= size <= self.left() // 12:
            raise self.fail(f"the {side} symbol table claims {size} symbols, more than {self.container} holds",
                            start)
        for _ in range(size):  # one per symbol: bounded by the bytes left
            self.string(f"a {side} symbol")
            self.unpack("<q", f"the {side} symbol table")


def read_header(buf, path=None) -> Header:
    cursor = ByteCursor(buf, 0, lambda message, offset: FstFormatError(message, path, offset), "the file")
    if cursor.unpack("<I", "the header") != FST_MAGIC:
        raise cursor.fail("not an OpenFst binary file (bad magic number)", 0)
    fst_type = cursor.string("FST type")
    arc_type = cursor.string("arc type")
    version, flags, properties, start, num_states, num_arcs = cursor.unpack("<iiQqqq", "the header")
    if fst_type not in SUPPORTED_TYPES:
        raise cursor.fail(
            f"unsupported FST type {fst_type!r}: convert it with `fstconvert --fst_type=const` "
            "(or vector)", 4)
    if arc_type != "standard":
        raise cursor.fail(
            f"unsupported arc type {arc_type!r}: wfst-gpu decodes tropical float32 ('standard') "
            "graphs; convert with `fstmap --map_type=to_standard`", 8 + len(fst_type.encode()))
    if version not in SUPPORTED_TYPES[fst_type]:
        raise cursor.fail(f"unsupported {fst_type} file version {version}")
    if flags & HAS_ISYMBOLS:
        cursor.skip_symbol_table("input")
    if flags & HAS_OSYMBOLS:
        cursor.skip_symbol_table("output")
    return Header(fst_type, arc_type, version, flags, properties, start, num_states, num_arcs, cursor.pos)


def parse_openfst(buf, path=None) -> CsrFst:
    """Parse a whole OpenFst binary file held in ``buf`` (bytes, or a uint8
    array such as a read-only memory map). Raises :class:`FstFormatError`."""
    buf = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
    header = read_header(buf, path)
    parse = _parse_vector if header.fst_type == "vector" else _parse_const
    final, row_splits, arcs, final_offset, arc_offset = parse(buf, header, path)
    S = len(final)
    if not -1 <= header.start < S or (S == 0 and header.start != -1):
        raise FstFormatError(f"start state {header.start} does not exist ({S} states)", path)
    fst = CsrFst.from_arc_records(header.start, final, row_splits, arcs)
    try:
        return fst.validate()
    except InvariantError as error:
        offset = None
        if error.array == "final":
            offset = final_offset(error.index)
        elif error.array in ARC_DTYPE.names:
            offset = arc_offset(_file_arc_index(arcs["ilabel"], fst.num_emitting_arcs, error.index))
        raise FstFormatError(error.reason, path, offset) from None


def _file_arc_index(file_ilabels, num_emitting, index):
    """Position in the file of the CSR arc ``index`` (the CSR keeps the file's
    order within the emitting block and within the non-emitting block)."""
    emitting = file_ilabels != 0
    if index < num_emitting:
        return int(np.flatnonzero(emitting)[index])
    return int(np.flatnonzero(~emitting)[index - num_emitting])


def _parse_vector(buf, header, path):
    """``(final, row_splits, arcs, final_offset(s), arc_offset(i))``."""
    from . import vector_layout as layout

    declared = header.num_states
    if declared < -1:
        raise FstFormatError(f"bad number of states {declared}", path)
    if declared > (len(buf) - header.body_offset) // layout.STATE_HEADER_BYTES:
        raise FstFormatError(f"header claims {declared} states, more than the file holds", path)
    num_states, num_arcs, end, status = layout.scan(buf, header.body_offset, declared, INDEX_LIMIT)
    if status == layout.TRUNCATED:
        raise FstFormatError(f"file ends inside state {num_states}", path, end)
    if status == layout.BAD_ARC_COUNT:
        raise FstFormatError(f"state {num_states}: bad arc count", path, end + 4)
    if status == layout.TOO_LARGE:
        raise FstFormatError(f"more than {INDEX_LIMIT} states or arcs are not supported", path, end)
    if end != len(buf):
        raise FstFormatError(f"{len(buf) - end} unexpected bytes after the last state", path, end)
    final_bits, arc_counts, state_pos, arc_bytes = layout.gather(buf, header.body_offset, num_states, num_arcs)
    row_splits = np.zeros(num_states + 1, dtype=np.int64)
    np.cumsum(arc_counts, out=row_splits[1:])

    def arc_offset(i):
        s = int(np.searchsorted(row_splits, i, side="right")) - 1
        return int(state_pos[s]) + layout.STATE_HEADER_BYTES + 16 * (i - int(row_splits[s]))

    return (final_bits.view(np.float32), row_splits, arc_bytes.view(ARC_DTYPE),
            lambda s: int(state_pos[s]), arc_offset)


def _parse_const(buf, header, path):
    """``(final, row_splits, arcs, final_offset(s), arc_offset(i))``; arrays
    are views of ``buf`` where possible."""
    S, A = header.num_states, header.num_arcs
    aligned = bool(header.flags & IS_ALIGNED) or header.version == 1
    if not (0 <= S <= INDEX_LIMIT and 0 <= A <= INDEX_LIMIT):
        raise FstFormatError(f"bad header counts: {S} states, {A} arcs", path)
    states_at = _align(header.body_offset) if aligned else header.body_offset
    arcs_at = states_at + S * CONST_STATE_DTYPE.itemsize
    arcs_at = _align(arcs_at) if aligned else arcs_at
    end = arcs_at + A * ARC_DTYPE.itemsize
    if end > len(buf):
        raise FstFormatError(f"file is truncated: {S} states and {A} arcs need {end} bytes, it has {len(buf)}",
                             path, len(buf))
    if end != len(buf):
        raise FstFormatError(f"{len(buf) - end} unexpected bytes after the last arc", path, end)
    states = np.frombuffer(buf, CONST_STATE_DTYPE, S, states_at)
    row_splits = np.zeros(S + 1, dtype=np.int64)
    np.cumsum(states["narcs"], out=row_splits[1:])
    misplaced = states["pos"] != row_splits[:-1]
    if S == 0 and A:
        raise FstFormatError(f"{A} arcs but no states", path)
    if misplaced.any() or row_splits[-1] != A:
        bad = int(np.flatnonzero(misplaced)[0]) if misplaced.any() else S - 1
        raise FstFormatError(
            f"state {bad}: arc ranges do not tile the {A} arcs in state order (pos {int(states['pos'][bad])}, "
            f"expected {int(row_splits[bad])}; arc counts sum to {int(row_splits[-1])})",
            path, states_at + bad * CONST_STATE_DTYPE.itemsize)
    return (states["final"], row_splits, np.frombuffer(buf, ARC_DTYPE, A, arcs_at),
            lambda s: states_at + CONST_STATE_DTYPE.itemsize * s, lambda i: arcs_at + ARC_DTYPE.itemsize * i)


def _align(offset):
    return -(-offset // ALIGNMENT) * ALIGNMENT


# ------------------------------------------------------------------ writing
def _state_major_order(fst: CsrFst) -> np.ndarray:
    """Arc indices in file order: for each state its non-emitting arcs, then its
    emitting arcs (epsilon first, so input-label-sorted graphs stay sorted)."""
    S, E = fst.num_states, fst.num_emitting_arcs
    n_e, n_ne = np.diff(fst.e_offsets), np.diff(fst.ne_offsets)
    first = np.zeros(S, dtype=np.int64)
    np.cumsum((n_e + n_ne)[:-1], out=first[1:])
    src = fst.arc_sources()
    position = np.empty(fst.num_arcs, dtype=np.int64)
    a = np.arange(fst.num_arcs, dtype=np.int64)
    position[:E] = first[src[:E]] + n_ne[src[:E]] + (a[:E] - fst.e_offsets[src[:E]])
    position[E:] = first[src[E:]] + (a[E:] - fst.ne_offsets[src[E:]])
    order = np.empty(fst.num_arcs, dtype=np.int64)
    order[position] = a
    return order


def _arc_records(fst: CsrFst, order: np.ndarray) -> np.ndarray:
    records = np.empty(fst.num_arcs, dtype=ARC_DTYPE)
    for name in ARC_DTYPE.names:
        records[name] = getattr(fst, name)[order]
    return records


def _header_bytes(fst_type, version, flags, properties, start, num_states, num_arcs):
    def string(text):
        return struct.pack("<i", len(text)) + text.encode()

    return (struct.pack("<I", FST_MAGIC) + string(fst_type) + string("standard")
            + struct.pack("<iiQqqq", version, flags, properties, start, num_states, num_arcs))


def write_openfst(fst: CsrFst, fst_type: str = "const", align: bool = False) -> bytes:
    """Serialise ``fst`` as an OpenFst binary of type ``vector`` or ``const``
    (``align`` pads const sections to 16 bytes, as ``--fst_align`` does)."""
    if fst_type not in SUPPORTED_TYPES:
        raise ValueError(f"fst_type must be 'vector' or 'const', got {fst_type!r}")
    S, A = fst.num_states, fst.num_arcs
    records = _arc_records(fst, _state_major_order(fst))
    counts = (np.diff(fst.e_offsets) + np.diff(fst.ne_offsets)).astype(np.int32)
    if fst_type == "vector":
        from . import vector_layout as layout

        head = _header_bytes("vector", 2, 0, EXPANDED | MUTABLE, fst.start, S, A)
        out = np.empty(len(head) + layout.STATE_HEADER_BYTES * S + 16 * A, dtype=np.uint8)
        out[: len(head)] = np.frombuffer(head, np.uint8)
        layout.interleave(out, len(head), fst.final.view(np.uint32), counts, records.view(np.uint8))
        return out.tobytes()
    head = _header_bytes("const", 2, IS_ALIGNED if align else 0, EXPANDED, fst.start, S, A)
    states = np.zeros(S, dtype=CONST_STATE_DTYPE)
    states["final"] = fst.final
    states["narcs"] = counts
    if S:
        states["pos"][1:] = np.cumsum(counts[:-1])
    states["niepsilons"] = np.diff(fst.ne_offsets)
    states["noepsilons"] = np.bincount(fst.arc_sources()[fst.olabel == 0], minlength=S)
    parts = [head]
    for section in (states.tobytes(), records.tobytes()):
        if align:
            parts.append(b"\0" * (_align(sum(map(len, parts))) - sum(map(len, parts))))
        parts.append(section)
    return b"".join(parts)
