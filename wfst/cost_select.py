"""The exact k-th smallest of a frame's token costs, as the CUDA kernel
``frame_prologue`` selects it, for both backends' cutoff (Kaldi's GetCutoff
takes the ``max_active``-th or ``min_active``-th smallest cost).

Costs map to order-preserving uint32 keys (``cost_key`` of
``cuda_kernels/common.cuh``: ``a < b`` as floats iff ``key(a) < key(b)``; -0.0
and +0.0 share a key). The select makes 8-bit radix passes over the keys, from
the highest bit where the least and greatest keys differ down: each pass counts
the keys that share the prefix found so far by their next 8 bits and takes the
bin that holds the k-th. A frame's costs lie within about a beam of each other,
so their keys share their top bits and three passes usually suffice; each pass
reads only the keys left in the last pass's bin. Linear time whatever the
costs, where a quickselect (numba's ``np.partition``) is quadratic at worst and
took about 4 s of the first call's compile.
"""

from __future__ import annotations

import numba
import numpy as np

SIGN = 0x80000000
WORD = 0xFFFFFFFF


def cost_keys(costs) -> np.ndarray:
    """The uint32 cost keys of ``costs`` (converted to float32; any shape)."""
    c = np.ascontiguousarray(costs, np.float32)
    return _keys(c.reshape(-1)).astype(np.uint32).reshape(c.shape)


@numba.njit(cache=True, nogil=True)
def _keys(costs):
    """The cost keys of 1-D float32 ``costs`` (any layout), as int64 in [0, 2^32)."""
    n = costs.shape[0]
    copy = np.empty(n, np.float32)
    for i in range(n):
        copy[i] = costs[i] if costs[i] != 0 else np.float32(0.0)  # -0.0 as +0.0
    bits = copy.view(np.uint32)
    keys = np.empty(n, np.int64)
    for i in range(n):
        b = np.int64(bits[i])
        keys[i] = (WORD ^ b) if b & SIGN else (b | SIGN)
    return keys


@numba.njit(cache=True, nogil=True)
def key_cost(key):
    """The float32 cost of an int64 cost key (inverse of the keys above)."""
    out = np.empty(1, np.uint32)
    out[0] = np.uint32((key & (SIGN - 1)) if key & SIGN else (WORD ^ key))
    return out.view(np.float32)[0]


@numba.njit(cache=True, nogil=True)
def kth_smallest(costs, k):
    """The ``k``-th smallest (0-based, ``0 <= k < len(costs)``) of float32
    ``costs`` (not modified): the value ``np.partition(costs, k)[k]`` has, but
    -0.0 comes back as +0.0."""
    if not 0 <= k < costs.shape[0]:
        raise ValueError("kth_smallest: k out of range for the costs")
    keys = _keys(costs)
    m = keys.shape[0]
    lo, hi = keys[0], keys[0]
    for i in range(m):
        lo = min(lo, keys[i])
        hi = max(hi, keys[i])
    if lo == hi:
        return key_cost(lo)
    top = 0  # the highest bit where lo and hi differ: every key shares the bits above it
    while (lo ^ hi) >> (top + 1):
        top += 1
    prefix = lo & ((WORD << (top + 1)) & WORD)
    hist = np.zeros(256, np.int64)
    low = top - 7
    while low > -8:
        shift = max(low, 0)  # the digit: bits [shift, shift + 8) (the last may overlap bits found already)
        hist[:] = 0
        for i in range(m):
            hist[(keys[i] >> shift) & 255] += 1
        b, below = 0, 0
        while below + hist[b] <= k:
            below += hist[b]
            b += 1
        k -= below
        prefix |= b << shift
        kept = 0  # the keys in bin b move to the front: the next pass reads them alone
        for i in range(m):
            if (keys[i] >> shift) & 255 == b:
                keys[kept] = keys[i]
                kept += 1
        m = kept
        low -= 8
    return key_cost(prefix)
