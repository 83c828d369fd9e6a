"""Kaldi lattices in binary: one OpenFst *vector* FST, exactly as Kaldi's
``LatticeHolder::Write`` / ``CompactLatticeHolder::Write`` (``binary=true``)
write it with OpenFst's ``VectorFst::Write``. In an archive it follows
``key`` and one space directly (no ``\\0B`` marker: lattice holders write none).

Layout (little-endian)::

    header: uint32 magic 0x7eb2fdd6 | string "vector" | string arc_type |
            int32 version 2 | int32 flags | uint64 properties |
            int64 start | int64 num_states | int64 num_arcs (0: not recorded)
            [input symbol table if flags & 1] [output symbol table if flags & 2]
    state:  weight final | int64 narcs | narcs x (int32 ilabel, int32 olabel,
            weight, int32 nextstate)

    "lattice4"          weight = float32 graph, float32 acoustic
    "compactlattice44"  weight = float32 graph, float32 acoustic,
                        int32 n, n x int32 (the transition-id string)

A string is an int32 length and that many bytes. A weight of (+inf, +inf) is
"not final". Every count is checked against the bytes that follow before
anything is allocated from it. Written headers carry properties
``kExpanded | kMutable`` only (no claims to check) and ``num_arcs`` 0, as
OpenFst's vector writer leaves it; floats are stored bit-exact.
"""

from __future__ import annotations

import struct

import numpy as np

from wfst.openfst_binary import EXPANDED, FST_MAGIC, HAS_ISYMBOLS, HAS_OSYMBOLS, MUTABLE, ByteCursor

from .compact_lattice import CompactLattice
from .kaldi_fst import KaldiLatticeError
from .lattice import Lattice

LATTICE_ARC_TYPE = "lattice4"
COMPACT_LATTICE_ARC_TYPE = "compactlattice44"
VECTOR_VERSION = 2

LATTICE_ARC = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("graph", "<f4"), ("acoustic", "<f4"),
                        ("nextstate", "<i4")])
STATE_HEAD = np.dtype([("graph", "<f4"), ("acoustic", "<f4"), ("narcs", "<i8")])
COMPACT_ARC_HEAD = struct.Struct("<iiffi")  # ilabel, olabel, graph, acoustic, string length
COMPACT_FINAL_HEAD = struct.Struct("<ffi")
MIN_COMPACT_ARC_BYTES = COMPACT_ARC_HEAD.size + 4
MIN_COMPACT_STATE_BYTES = COMPACT_FINAL_HEAD.size + 8


def starts_binary(first_byte: int) -> bool:
    """Whether an object starting with this byte is a binary FST (the magic
    number's first byte, 214, as Kaldi's holders test)."""
    return first_byte == FST_MAGIC & 0xFF


# ------------------------------------------------------------------ writing
def _string(text: str) -> bytes:
    return struct.pack("<i", len(text)) + text.encode()


def _header(arc_type: str, num_states: int) -> bytes:
    return (struct.pack("<I", FST_MAGIC) + _string("vector") + _string(arc_type)
            + struct.pack("<iiQqqq", VECTOR_VERSION, 0, EXPANDED | MUTABLE, 0 if num_states else -1, num_states, 0))


def encode_lattice(lat: Lattice) -> bytes:
    """The binary form of ``lat`` (arc type ``lattice4``)."""
    S, A = lat.num_states, lat.num_arcs
    row_splits = np.zeros(S + 1, dtype=np.int64)
    np.cumsum(np.bincount(lat.arc_src, minlength=S), out=row_splits[1:])
    heads = np.empty(S, dtype=STATE_HEAD)
    heads["graph"], heads["acoustic"], heads["narcs"] = lat.final_graph_cost, lat.final_acoustic_cost, np.diff(row_splits)
    arcs = np.empty(A, dtype=LATTICE_ARC)
    arcs["ilabel"], arcs["olabel"], arcs["nextstate"] = lat.arc_ilabel, lat.arc_olabel, lat.arc_dst
    arcs["graph"], arcs["acoustic"] = lat.arc_graph_cost, lat.arc_acoustic_cost
    # State s follows s state records and row_splits[s] arcs; arc i follows src + 1 state records and i arcs.
    body = np.empty(S * STATE_HEAD.itemsize + A * LATTICE_ARC.itemsize, dtype=np.uint8)
    state_pos = np.arange(S) * STATE_HEAD.itemsize + row_splits[:-1] * LATTICE_ARC.itemsize
    arc_pos = (lat.arc_src.astype(np.int64) + 1) * STATE_HEAD.itemsize + np.arange(A) * LATTICE_ARC.itemsize
    body[state_pos[:, None] + np.arange(STATE_HEAD.itemsize)] = heads.view(np.uint8).reshape(S, STATE_HEAD.itemsize)
    body[arc_pos[:, None] + np.arange(LATTICE_ARC.itemsize)] = arcs.view(np.uint8).reshape(A, LATTICE_ARC.itemsize)
    return _header(LATTICE_ARC_TYPE, S) + body.tobytes()


def encode_compact_lattice(clat: CompactLattice) -> bytes:
    """The binary form of ``clat`` (arc type ``compactlattice44``)."""
    S = clat.num_states
    row_splits = np.zeros(S + 1, dtype=np.int64)
    np.cumsum(np.bincount(clat.arc_src, minlength=S), out=row_splits[1:])
    parts = [_header(COMPACT_LATTICE_ARC_TYPE, S)]
    word, dst = clat.arc_word.tolist(), clat.arc_dst.tolist()
    graph, acoustic = clat.arc_graph_cost.tolist(), clat.arc_acoustic_cost.tolist()
    starts, final_starts = clat.string_start.tolist(), clat.final_string_start.tolist()
    for s in range(S):  # float32 values pass through Python floats and back exactly
        n = final_starts[s + 1] - final_starts[s]
        parts.append(COMPACT_FINAL_HEAD.pack(clat.final_graph_cost[s], clat.final_acoustic_cost[s], n))
        parts.append(clat.final_string[final_starts[s]:final_starts[s + 1]].astype("<i4").tobytes())
        parts.append(struct.pack("<q", row_splits[s + 1] - row_splits[s]))
        for a in range(row_splits[s], row_splits[s + 1]):
            parts.append(COMPACT_ARC_HEAD.pack(word[a], word[a], graph[a], acoustic[a], starts[a + 1] - starts[a]))
            parts.append(clat.string[starts[a]:starts[a + 1]].astype("<i4").tobytes())
            parts.append(struct.pack("<i", dst[a]))
    return b"".join(parts)


# ------------------------------------------------------------------ reading
def decode(buf, u8: np.ndarray, pos: int):
    """Parse the binary lattice at byte ``pos`` of ``buf`` (``u8``: the same
    bytes as a uint8 array). Returns ``(type, arrays, end)``: ``type`` is
    :class:`Lattice` or :class:`CompactLattice`, ``arrays`` the arguments of
    :func:`~lattice.kaldi_fst.build_lattice` /
    :func:`~lattice.kaldi_fst.build_compact_lattice` in file state order, and
    ``end`` the offset after the object. Raises :class:`KaldiLatticeError`."""
    cur = ByteCursor(buf, pos, lambda message, offset: KaldiLatticeError(message, offset=offset), "the archive")
    if cur.unpack("<I", "the FST header") != FST_MAGIC:
        raise cur.fail("not an OpenFst binary FST (bad magic number)", pos)
    fst_type = cur.string("the FST type")
    arc_type_at = cur.pos
    arc_type = cur.string("the arc type")
    version, flags, _properties, start, num_states, _num_arcs = cur.unpack("<iiQqqq", "the FST header")
    if fst_type != "vector":
        raise cur.fail(f"FST type {fst_type!r}: Kaldi lattices are 'vector' FSTs", pos + 4)
    if arc_type not in (LATTICE_ARC_TYPE, COMPACT_LATTICE_ARC_TYPE):
        raise cur.fail(f"arc type {arc_type!r} is not a Kaldi lattice: expected {LATTICE_ARC_TYPE!r} (Lattice) or "
                       f"{COMPACT_LATTICE_ARC_TYPE!r} (CompactLattice); double-precision lattices are not supported",
                       arc_type_at)
    if version != VECTOR_VERSION:
        raise cur.fail(f"unsupported vector FST version {version} (expected {VECTOR_VERSION})", arc_type_at)
    if flags & HAS_ISYMBOLS:
        cur.skip_symbol_table("input")
    if flags & HAS_OSYMBOLS:
        cur.skip_symbol_table("output")
    compact = arc_type == COMPACT_LATTICE_ARC_TYPE
    min_state = MIN_COMPACT_STATE_BYTES if compact else STATE_HEAD.itemsize
    if not 0 <= num_states <= cur.left() // min_state:
        raise cur.fail(f"header claims {num_states} states, more than the archive holds"
                       if num_states > 0 else f"bad number of states {num_states}", arc_type_at)
    if not (-1 <= start < num_states) or (num_states == 0 and start != -1):
        raise cur.fail(f"start state {start} does not exist ({num_states} states)", arc_type_at)
    body = _compact_body if compact else _lattice_body
    arrays, checks = body(cur, u8, num_states)
    _validate(cur, num_states, checks)
    return (CompactLattice if compact else Lattice), (start, *arrays), cur.pos


def _state_heads(cur: ByteCursor, num_states: int, arc_bytes: int):
    """Walk ``num_states`` records of ``(float32 graph, float32 acoustic,
    int64 narcs, narcs x arc_bytes)``; returns their offsets and arc counts."""
    state_pos, counts = [], []
    for s in range(num_states):
        state_pos.append(cur.pos)
        graph_acoustic_narcs = cur.unpack("<ffq", f"state {s}")
        narcs = graph_acoustic_narcs[2]
        if not 0 <= narcs <= cur.left() // arc_bytes:
            raise cur.fail(f"state {s}: bad arc count {narcs}", cur.pos - 8)
        counts.append(narcs)
        cur.pos += narcs * arc_bytes
    return np.asarray(state_pos, dtype=np.int64), np.asarray(counts, dtype=np.int64)


def _gather(u8: np.ndarray, positions: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Records of ``dtype`` at byte ``positions`` of ``u8`` (a copy)."""
    return u8[positions[:, None] + np.arange(dtype.itemsize)].reshape(-1).view(dtype)


def _lattice_body(cur: ByteCursor, u8: np.ndarray, num_states: int):
    state_pos, counts = _state_heads(cur, num_states, LATTICE_ARC.itemsize)
    heads = _gather(u8, state_pos, STATE_HEAD)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    arc_pos = np.repeat(state_pos + STATE_HEAD.itemsize, counts) + LATTICE_ARC.itemsize * within
    arcs = _gather(u8, arc_pos, LATTICE_ARC)
    src = np.repeat(np.arange(num_states), counts)
    arrays = (heads["graph"].copy(), heads["acoustic"].copy(), src, arcs["nextstate"].copy(),
              arcs["ilabel"].copy(), arcs["olabel"].copy(), arcs["graph"].copy(), arcs["acoustic"].copy())
    checks = dict(final=(arrays[0], arrays[1], state_pos), dst=arrays[3], labels=(arrays[4], arrays[5]),
                  costs=(arrays[6], arrays[7]), arc_pos=arc_pos, strings=None)
    return arrays, checks


def _compact_body(cur: ByteCursor, u8: np.ndarray, num_states: int):
    state_pos, final_graph, final_acoustic, final_at, final_len = [], [], [], [], []
    src, arc_pos, arc_heads, string_at, string_len, dst = [], [], [], [], [], []
    for s in range(num_states):
        state_pos.append(cur.pos)
        g, a, n = cur.unpack(COMPACT_FINAL_HEAD, f"state {s}")
        if not 0 <= n <= cur.left() // 4:
            raise cur.fail(f"state {s}: bad final string length {n}", cur.pos - 4)
        final_graph.append(g), final_acoustic.append(a), final_at.append(cur.pos), final_len.append(n)
        cur.pos += 4 * n
        narcs = cur.unpack("<q", f"state {s}")
        if not 0 <= narcs <= cur.left() // MIN_COMPACT_ARC_BYTES:
            raise cur.fail(f"state {s}: bad arc count {narcs}", cur.pos - 8)
        for _ in range(narcs):  # each iteration reads >= MIN_COMPACT_ARC_BYTES bytes
            arc_pos.append(cur.pos)
            head = cur.unpack(COMPACT_ARC_HEAD, f"an arc of state {s}")
            n = head[4]
            if not 0 <= n <= cur.left() // 4:
                raise cur.fail(f"state {s}: bad string length {n} on an arc", cur.pos - 4)
            src.append(s), arc_heads.append(head), string_at.append(cur.pos), string_len.append(n)
            cur.pos += 4 * n
            dst.append(cur.unpack("<i", f"an arc of state {s}"))
    arc_heads = np.asarray(arc_heads, dtype=np.float64).reshape(-1, 5)  # int32 and float32 values are exact
    ilabel, olabel = arc_heads[:, 0].astype(np.int32), arc_heads[:, 1].astype(np.int32)
    graph, acoustic = arc_heads[:, 2].astype(np.float32), arc_heads[:, 3].astype(np.float32)
    string_start, string = _ragged(u8, np.asarray(string_at, np.int64), np.asarray(string_len, np.int64))
    final_start, final_string = _ragged(u8, np.asarray(final_at, np.int64), np.asarray(final_len, np.int64))
    final_graph, final_acoustic = np.asarray(final_graph, np.float32), np.asarray(final_acoustic, np.float32)
    arc_pos = np.asarray(arc_pos, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    if np.any(ilabel != olabel):
        i = int(np.flatnonzero(ilabel != olabel)[0])
        raise cur.fail(f"arc with input label {ilabel[i]} but output label {olabel[i]}: "
                       "a CompactLattice is an acceptor", int(arc_pos[i]))
    arrays = (final_graph, final_acoustic, final_start, final_string, np.asarray(src, np.int64), dst, ilabel,
              graph, acoustic, string_start, string)
    checks = dict(final=(final_graph, final_acoustic, np.asarray(state_pos, np.int64)), dst=dst, labels=(ilabel,),
                  costs=(graph, acoustic), arc_pos=arc_pos,
                  strings=((string_start, string, arc_pos), (final_start, final_string, np.asarray(state_pos))))
    return arrays, checks


def _ragged(u8: np.ndarray, at: np.ndarray, lengths: np.ndarray):
    """``(starts, values)`` of int32 strings of ``lengths`` at byte offsets ``at``."""
    starts = np.zeros(len(at) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    within = np.arange(starts[-1], dtype=np.int64) - np.repeat(starts[:-1], lengths)
    return starts, _gather(u8, np.repeat(at, lengths) + 4 * within, np.dtype("<i4")).astype(np.int32)


def _validate(cur: ByteCursor, num_states: int, checks: dict) -> None:
    """Raise on the first value no Kaldi lattice holds, naming its offset."""
    final_graph, final_acoustic, state_pos = checks["final"]
    arc_pos = checks["arc_pos"]
    half_final = np.isinf(final_graph) != np.isinf(final_acoustic)
    bad = np.isnan(final_graph) | np.isnan(final_acoustic) | (final_graph == -np.inf) | (final_acoustic == -np.inf)
    if np.any(bad | half_final):
        s = int(np.flatnonzero(bad | half_final)[0])
        raise cur.fail(f"state {s}: final weight ({final_graph[s]}, {final_acoustic[s]}) is not a lattice weight "
                       "(no NaN or -inf; +inf in both parts or in neither)", int(state_pos[s]))
    problems = [
        ((checks["dst"] < 0) | (checks["dst"] >= num_states), "next state {} does not exist", checks["dst"]),
        (~(np.isfinite(checks["costs"][0]) & np.isfinite(checks["costs"][1])),
         "arc graph cost {} is not finite (or its acoustic cost is not)", checks["costs"][0]),
    ] + [(labels < 0, "negative label {}", labels) for labels in checks["labels"]]
    for mask, message, values in problems:
        if np.any(mask):
            i = int(np.flatnonzero(mask)[0])
            raise cur.fail(f"arc {i}: " + message.format(values[i]), int(arc_pos[i]))
    for starts, values, owner_pos in checks["strings"] or ():
        if np.any(values <= 0):
            owner = int(np.searchsorted(starts, int(np.flatnonzero(values <= 0)[0]), side="right")) - 1
            raise cur.fail(f"transition-id string holds {int(values[values <= 0][0])}: transition ids are "
                           "positive", int(owner_pos[owner]))
