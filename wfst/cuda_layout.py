"""Host-side mirror of the CUDA kernels' layout and integer logic (numpy only).

The counter and parameter slots repeat ``cuda_kernels/common.cuh`` (a test
checks they agree). :func:`cost_keys`, :func:`radix_select` and
:func:`gpu_cutoff` emulate in numpy what the kernels compute, so the exact
cutoff can be checked against the CPU's ``_cutoff`` without a GPU;
:func:`blocks_per_lane` is the launch geometry.
"""

from __future__ import annotations

import numpy as np

LANE_COUNTERS = 64
C_NTOK, C_NLINK, C_NEMIT, C_BEST_EMIT, C_CUTOFF, C_ADAPTIVE, C_BOUND, C_OVERFLOW, C_STATUS = range(9)
C_EXPANDED, C_ROUNDS, C_LEVELS = 9, 10, 11
OVF_TOKENS, OVF_LINKS, OVF_HASH = 1, 2, 4
STATUS_OK, STATUS_NEGATIVE_CYCLE = 0, 1

LANE_PARAMS = 13
(P_SCORES, P_STRIDE, P_DTYPE, P_ROW, P_MODE, P_TIGHTEN, P_CHANNEL, P_WIN_FRAME, P_WIN_TOK, P_WIN_LINK, P_FLUSH,
 P_LAG, P_KEPT) = range(13)
FLUSH_NONE, FLUSH_SEND, FLUSH_KEEP, FLUSH_FINAL = range(4)
WINDOW_FRAME_INTS = 16
WINDOW_HEADER = 2
MODE_IDLE, MODE_START, MODE_EMIT, MODE_RETRY_SKIP = 0, 1, 2, 3
TIGHTEN_LAST = 16

CHANNEL_COUNTERS = 16
CH_NTOK = 0

HASH_SLOT_INTS = 4
"""Ints of a hash map slot: key, cost key, dirty flag, token (common.cuh: HashSlot)."""

# threads per block of each kernel (the __launch_bounds__ in the .cu files)
PROLOGUE_THREADS = 256
EMIT_THREADS = 256
SPAN_THREADS = 1024
EPS_THREADS = 256
EPS_PERSISTENT_THREADS = 512
RESOLVE_THREADS = 256
TIE_THREADS = 512
SEGMENT_THREADS = 256
WINDOW_THREADS = 256
WINDOW_LANE_THREADS = 1024
"""Threads of the window kernels that run one CTA per lane (window_prune, window_compact)."""

EPS_GRID_SWEEPS = 2
"""Grid-wide epsilon sweeps (each over the tokens the lanes have when it starts) before the persistent kernel
takes over."""
BLOCKS_PER_SM = 32
"""Depth of the (blocks x lanes) grids. On the H200 (132 SMs), full TLG, 512
lanes: 3,203 RTFx at 4 (2 blocks per lane), 3,856 at 32 (9 blocks;
bench/results/gpu_decoder_full_lm-medium.json), and no better at 64
(..._depths_512.json); a step waits for its busiest lane, which more blocks share."""
MAX_BLOCKS_PER_LANE = 512
"""One lane alone: 528 blocks ran at 160 RTFx, 1,024 at 134 (blocks without work cost too)."""

KEY_NONE = np.uint32(0xFFFFFFFF)


def blocks_per_lane(lanes: int, multiprocessors: int, per_sm: int | None = None) -> int:
    """Blocks of the (blocks x lanes) grids: enough blocks in all to fill the GPU
    ``per_sm`` deep (None: ``BLOCKS_PER_SM``), at least one per lane. Deeper
    grids give a busy lane more blocks (a step waits for its busiest lane) at
    the cost of more blocks that find no work."""
    if per_sm is None:
        per_sm = BLOCKS_PER_SM
    if lanes < 1 or multiprocessors < 1 or per_sm < 1:
        raise ValueError("lanes, multiprocessors and per_sm must be >= 1")
    want = -(-per_sm * multiprocessors // lanes)
    return max(1, min(MAX_BLOCKS_PER_LANE, want))


def cost_keys(costs) -> np.ndarray:
    """Order-preserving uint32 keys of float32 costs (``cost_key`` of common.cuh):
    ``a < b`` as floats iff ``key(a) < key(b)``; -0.0 and +0.0 share a key."""
    c = np.asarray(costs, np.float32).copy()
    c[c == 0] = np.float32(0.0)
    bits = c.view(np.uint32)
    negative = (bits & np.uint32(0x80000000)) != 0
    return np.where(negative, ~bits, bits | np.uint32(0x80000000)).astype(np.uint32)


def key_costs(keys) -> np.ndarray:
    """Inverse of :func:`cost_keys` (``key_cost``)."""
    k = np.asarray(keys, np.uint32)
    positive = (k & np.uint32(0x80000000)) != 0
    bits = np.where(positive, k & np.uint32(0x7FFFFFFF), ~k).astype(np.uint32)
    return bits.view(np.float32)


def radix_select(costs, k: int) -> np.float32:
    """The ``k``-th smallest (0-based) cost by the kernel's 8-bit radix passes
    over cost keys (histograms of the keys sharing the prefix so far), from the
    highest bit where the least and greatest keys differ down."""
    keys = cost_keys(costs)
    if not 0 <= k < keys.size:
        raise ValueError(f"k={k} out of range for {keys.size} costs")
    lo, hi = int(keys.min()), int(keys.max())
    if lo == hi:
        return key_costs(np.array([lo], np.uint32))[0]
    top = (lo ^ hi).bit_length() - 1
    mask = (0xFFFFFFFF << (top + 1)) & 0xFFFFFFFF
    prefix = lo & mask
    for low in range(top - 7, -8, -8):  # the digit: bits [shift, shift + 8) (the last may overlap)
        shift = max(low, 0)
        match = keys[(keys & np.uint32(mask)) == np.uint32(prefix)]
        hist = np.bincount((match >> np.uint32(shift)) & np.uint32(255), minlength=256)
        below = np.cumsum(hist) - hist
        b = int(np.flatnonzero(below + hist > k)[0])
        k -= int(below[b])
        prefix |= b << shift
        mask |= 255 << shift
    return key_costs(np.array([prefix], np.uint32))[0]


def gpu_cutoff(costs, beam, max_active: int, min_active: int, beam_delta=np.float32(0.5)):
    """(cutoff, adaptive_beam) as ``frame_prologue`` computes them: counts decide
    whether a select is needed, the select is exact (float32 throughout)."""
    costs = np.asarray(costs, np.float32)
    beam, beam_delta = np.float32(beam), np.float32(beam_delta)
    n = costs.size
    best = costs.min() if n else np.float32(np.inf)
    beam_cutoff = np.float32(best + beam)
    if n > max_active and int(np.count_nonzero(costs < beam_cutoff)) > max_active:
        m = radix_select(costs, max_active)
        return m, np.float32(np.float32(m - best) + beam_delta)
    if n > min_active:
        if min_active > 0 and int(np.count_nonzero(costs <= beam_cutoff)) <= min_active:
            m = radix_select(costs, min_active)
            return m, np.float32(np.float32(m - best) + beam_delta)
    elif np.float32(np.inf) > beam_cutoff:  # at most min_active tokens: Kaldi keeps them all
        with np.errstate(invalid="ignore"):
            return np.float32(np.inf), np.float32(np.float32(np.inf - best) + beam_delta)
    return beam_cutoff, beam


def tightened_bound(best, beam, tighten: int) -> np.float32:
    """The frame bound after ``tighten`` overflow retries (``tightened_bound``)."""
    best, beam = np.float32(best), np.float32(beam)
    if tighten <= 0 or not best < np.inf:
        return np.float32(best + beam)
    if tighten >= TIGHTEN_LAST:
        return np.nextafter(best, np.float32(np.inf))
    return np.float32(best + np.float32(np.ldexp(beam, -tighten)))
