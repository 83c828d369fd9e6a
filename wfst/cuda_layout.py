"""Host-side mirror of the CUDA kernels' layout and integer logic.

The counter and parameter slots repeat ``cuda_kernels/common.cuh`` (a test
checks they agree). :func:`gpu_cutoff` emulates what the kernel
``frame_prologue`` computes (its select is :func:`wfst.cost_select.kth_smallest`,
which the CPU's ``_cutoff`` shares), so the exact cutoff can be checked against
the CPU's without a GPU; :func:`blocks_per_lane` is the launch geometry.
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
FRAME_END_THREADS = 256
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


def gpu_cutoff(costs, beam, max_active: int, min_active: int, beam_delta=None):
    """(cutoff, adaptive_beam) as ``frame_prologue`` computes them: counts decide
    whether a select is needed, the select is exact (float32 throughout);
    ``beam_delta`` defaults to the CPU search's ``BEAM_DELTA``, as the decoder passes."""
    from .cost_select import kth_smallest  # (numba: not loaded by `import wfst`)
    from .cpu_search import BEAM_DELTA

    if beam_delta is None:
        beam_delta = BEAM_DELTA

    costs = np.asarray(costs, np.float32)
    beam, beam_delta = np.float32(beam), np.float32(beam_delta)
    n = costs.size
    best = costs.min() if n else np.float32(np.inf)
    beam_cutoff = np.float32(best + beam)
    if n > max_active and int(np.count_nonzero(costs < beam_cutoff)) > max_active:
        m = kth_smallest(costs, max_active)
        return m, np.float32(np.float32(m - best) + beam_delta)
    if n > min_active:
        if min_active > 0 and int(np.count_nonzero(costs <= beam_cutoff)) <= min_active:
            m = kth_smallest(costs, min_active)
            return m, np.float32(np.float32(m - best) + beam_delta)
    elif np.float32(np.inf) > beam_cutoff:  # at most min_active tokens: Kaldi keeps them all
        with np.errstate(invalid="ignore"):
            return np.float32(np.inf), np.float32(np.float32(np.inf - best) + beam_delta)
    return beam_cutoff, beam


def tightened_bound(best, beam, tighten: int) -> np.float32:
    """The frame bound after ``tighten`` overflow retries (``tightened_bound``):
    the CPU search's :func:`wfst.cpu_search.beam_bound` with the beam halved
    per retry, or just above ``best`` from TIGHTEN_LAST on."""
    from .cpu_search import beam_bound  # (numba: not at import, see wfst/__init__.py)

    best, beam = np.float32(best), np.float32(beam)
    if tighten >= TIGHTEN_LAST and best < np.inf:
        return np.nextafter(best, np.float32(np.inf))
    return np.float32(beam_bound(best, beam if tighten <= 0 else np.float32(np.ldexp(beam, -tighten))))
