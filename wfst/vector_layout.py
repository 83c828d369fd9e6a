"""Compiled walks over the body of an OpenFst *vector* file.

A vector body is one variable-length record per state::

    float32 final | int64 narcs | narcs x (int32 ilabel, int32 olabel, float32 weight, int32 nextstate)

so finding where state ``s`` starts needs every earlier ``narcs``: a pointer
chase that numpy cannot vectorise. These numba loops do it once per file, with
bounds checks on every read; everything per arc afterwards is bulk numpy.
"""

from __future__ import annotations

import numpy as np
from numba import njit

STATE_HEADER_BYTES = 12
ARC_BYTES = 16

OK = 0
TRUNCATED = 1
BAD_ARC_COUNT = 2
TOO_LARGE = 3


@njit(cache=True, nogil=True)
def _u32(buf, pos):
    return (
        np.uint32(buf[pos])
        | (np.uint32(buf[pos + 1]) << np.uint32(8))
        | (np.uint32(buf[pos + 2]) << np.uint32(16))
        | (np.uint32(buf[pos + 3]) << np.uint32(24))
    )


@njit(cache=True, nogil=True)
def scan(buf, pos, max_states, index_limit):
    """Walk the state records from byte ``pos``.

    ``max_states`` < 0 walks to the end of ``buf``. Returns ``(num_states,
    num_arcs, end_pos, status)``; on an error ``end_pos`` is the offset of the
    offending record and ``status`` says what is wrong.
    """
    end = buf.shape[0]
    num_states = 0
    num_arcs = 0
    while (max_states < 0 and pos < end) or num_states < max_states:
        if pos + STATE_HEADER_BYTES > end:
            return num_states, num_arcs, pos, TRUNCATED
        low = _u32(buf, pos + 4)
        high = _u32(buf, pos + 8)
        if high != 0 or low > index_limit:
            return num_states, num_arcs, pos, BAD_ARC_COUNT
        size = STATE_HEADER_BYTES + ARC_BYTES * np.int64(low)
        if pos + size > end:
            return num_states, num_arcs, pos, TRUNCATED
        num_states += 1
        num_arcs += low
        if num_states > index_limit or num_arcs > index_limit:
            return num_states, num_arcs, pos, TOO_LARGE
        pos += size
    return num_states, num_arcs, pos, OK


@njit(cache=True, nogil=True)
def gather(buf, pos, num_states, num_arcs):
    """Copy a body already checked by :func:`scan` into flat arrays.

    Returns ``(final_bits uint32[S], arc_counts int32[S], state_pos int64[S],
    arc_bytes uint8[16 * A])``: final costs as raw float32 bits, arcs per state,
    byte offset of each state record, and all arc records back to back.
    """
    final_bits = np.empty(num_states, np.uint32)
    arc_counts = np.empty(num_states, np.int32)
    state_pos = np.empty(num_states, np.int64)
    arc_bytes = np.empty(ARC_BYTES * num_arcs, np.uint8)
    out = 0
    for s in range(num_states):
        state_pos[s] = pos
        final_bits[s] = _u32(buf, pos)
        count = np.int64(_u32(buf, pos + 4))
        arc_counts[s] = count
        size = ARC_BYTES * count
        arc_bytes[out : out + size] = buf[pos + STATE_HEADER_BYTES : pos + STATE_HEADER_BYTES + size]
        out += size
        pos += STATE_HEADER_BYTES + size
    return final_bits, arc_counts, state_pos, arc_bytes


@njit(cache=True, nogil=True)
def interleave(out, pos, final_bits, arc_counts, arc_bytes):
    """Write state records into ``out`` from byte ``pos`` (the inverse of
    :func:`gather`); ``arc_bytes`` holds the arcs in state order."""
    src = 0
    for s in range(final_bits.shape[0]):
        bits = final_bits[s]
        count = arc_counts[s]
        for k in range(4):
            out[pos + k] = (bits >> np.uint32(8 * k)) & np.uint32(0xFF)
            out[pos + 4 + k] = (count >> (8 * k)) & 0xFF
            out[pos + 8 + k] = 0
        size = ARC_BYTES * np.int64(count)
        out[pos + STATE_HEADER_BYTES : pos + STATE_HEADER_BYTES + size] = arc_bytes[src : src + size]
        src += size
        pos += STATE_HEADER_BYTES + size
    return pos
