"""Every device and pinned buffer of the CUDA decoder, allocated once at
construction exactly as :func:`wfst.budget` predicts (:func:`check_allocation`
compares the two; the CUDA tests call it), after :meth:`wfst.MemoryBudget.check`
has passed.

Per-lane arrays are ``[lanes, capacity]`` (row-major); capacities ``Q`` tokens,
``X`` links, ``H`` hash slots (wfst/budget.py). A group of consecutive lanes
(:mod:`wfst.cuda_lane_group`) sees them sliced to its rows
(:meth:`DeviceArrays.lanes_view`), so the kernels index its lanes from 0.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from . import cuda_layout as layout
from .budget import (PARAM_UPLOAD_SLOTS, WINDOW_CAPACITY, WINDOW_FRAMES, WINDOW_LAG, WINDOW_SEND_CAPACITY,
                     WINDOW_TABLE_FRAMES, MAX_LANES, MemoryBudget, hash_slots, lane_limit, packed_lane_bytes,
                     score_column_bytes)
from .config import DecoderConfig
from .decoding_graph import DecodingGraph
from .errors import ConfigError

ALLOCATION_TOLERANCE = 0.05
MAX_LANE_GROUPS = 8
"""Lane groups a run may step (each has its own packed buffer header and totals)."""
LANE_ARRAYS = ("tok_slot", "tok_state", "tok_cost", "tok_best", "tok_hops", "tok_best_arc", "deg_scan", "link_src",
               "link_dst", "link_arc", "link_ac", "hash", "arc_spans", "token_spans", "link_spans", "staging",
               "counters", "params", "window_params", "wt_state", "wt_cost", "wt_best", "wt_extra", "wt_new",
               "wl_src", "wl_dst", "wl_arc", "wl_ac", "wl_excess", "wl_new", "wframes", "host_staging",
               "host_counters")
"""The arrays with a row per lane (:meth:`DeviceArrays.lanes_view` slices them)."""


@dataclass(frozen=True)
class Geometry:
    lanes: int
    channels: int
    Q: int
    X: int
    H: int
    P: int
    F: int
    blocks_per_lane: int
    window_period: int  # rows between a lane's regular flushes
    window_lag: int  # frames a flush keeps back at most
    WT: int  # tokens of a window pool
    WX: int  # links of a window pool
    TF: int  # frames of a window pool (its frame table): kept ones and the window's
    SF: int  # worst-case frames per lane the packed buffer holds (the sends of a step)

    @property
    def W(self) -> int:
        """Frames a lattice window holds at most besides the kept ones."""
        return self.window_period + self.window_lag


def geometry(config: DecoderConfig, lanes: int, channels: int, num_columns: int, chunk_frames: int,
             multiprocessors: int) -> Geometry:
    Q, X = config.token_capacity, config.arc_capacity
    if lanes > lane_limit(config):
        raise ConfigError(f"{lanes} lanes: the kernels take at most {lane_limit(config)} with this config (their "
                          f"grids hold the lanes in a dimension of at most {MAX_LANES}, and one step may pack every "
                          f"lane's lattice pool of {WINDOW_CAPACITY} x arc_queue_capacity links, counted in int32): "
                          "use fewer lanes (a few hundred keep a GPU busy) or smaller queue capacities")
    if WINDOW_TABLE_FRAMES < WINDOW_FRAMES + WINDOW_LAG:
        raise ConfigError(f"a lattice pool's frame table ({WINDOW_TABLE_FRAMES} frames) must hold a window "
                          f"({WINDOW_FRAMES} + {WINDOW_LAG} frames kept back)")
    return Geometry(lanes, channels, Q, X, hash_slots(Q), num_columns, chunk_frames,
                    layout.blocks_per_lane(lanes, multiprocessors), WINDOW_FRAMES, WINDOW_LAG,
                    WINDOW_CAPACITY * Q, WINDOW_CAPACITY * X, WINDOW_TABLE_FRAMES, WINDOW_SEND_CAPACITY)


class DeviceArrays:
    """The decoder's buffers; ``device_bytes`` / ``pinned_bytes`` count them."""

    def __init__(self, cupy, graph: DecodingGraph, g: Geometry):
        self.device_bytes = 0
        self.pinned_bytes = 0
        fst = graph.fst
        E = fst.num_emitting_arcs
        L, C, Q, X, H = g.lanes, g.channels, g.Q, g.X, g.H
        up = self._upload
        # the graph (uploaded once)
        self.e_offsets = up(cupy, fst.e_offsets, np.int32)
        self.ne_offsets = up(cupy, fst.ne_offsets, np.int32)
        self.final = up(cupy, fst.final, np.float32)
        self.nextstate = up(cupy, fst.nextstate, np.int32)
        self.weight = up(cupy, fst.weight, np.float32)
        self.columns16 = score_column_bytes(g.P) == 2
        columns = graph.column_of_ilabel[fst.ilabel[:E]]
        self.score_column = up(cupy, columns, np.uint16 if self.columns16 else np.int32)
        if E == 0:  # keep a valid pointer
            self.score_column = self._alloc(cupy, (1,), np.uint16 if self.columns16 else np.int32, 0)
        # lanes
        a = self._alloc
        self.tok_slot = a(cupy, (L, Q), np.int32, -1)
        self.tok_state = a(cupy, (L, Q), np.int32, 0)
        self.tok_cost = a(cupy, (L, Q), np.float32, 0)
        self.tok_best = a(cupy, (L, Q), np.int32, -1)
        self.tok_hops = a(cupy, (L, Q), np.int32, 0)
        self.tok_best_arc = a(cupy, (L, Q), np.uint32, 0)
        self.deg_scan = a(cupy, (L, Q + 1), np.int64, 0)
        self.link_src = a(cupy, (L, X), np.int32, 0)
        self.link_dst = a(cupy, (L, X), np.int32, 0)
        self.link_arc = a(cupy, (L, X), np.int32, 0)
        self.link_ac = a(cupy, (L, X), np.float32, 0)
        self.hash = a(cupy, (L, H, layout.HASH_SLOT_INTS), np.int32, None)  # see cuda_kernels/common.cuh
        self.empty_hash()
        # each lane's emitting arcs, tokens and links in the step's flat ranges (cuda_kernels/spans.cu)
        self.arc_spans = a(cupy, (L, 2), np.int64, 0)
        self.token_spans = a(cupy, (L, 2), np.int64, 0)
        self.link_spans = a(cupy, (L, 2), np.int64, 0)
        self.staging = a(cupy, (L, g.F, max(g.P, 1)), np.float32, 0)
        self.counters = a(cupy, (L, layout.LANE_COUNTERS), np.int32, 0)
        self.params = a(cupy, (L, layout.LANE_PARAMS), np.int64, 0)
        self.window_params = a(cupy, (L, layout.LANE_PARAMS), np.int64, 0)  # the window kernels' copy
        # lattice windows (cuda_kernels/lattice_window.cu)
        self.wt_state = a(cupy, (L, g.WT), np.int32, 0)
        self.wt_cost = a(cupy, (L, g.WT), np.float32, 0)
        self.wt_best = a(cupy, (L, g.WT), np.int32, -1)
        self.wt_extra = a(cupy, (L, g.WT), np.uint32, 0)
        self.wt_new = a(cupy, (L, g.WT), np.int32, -1)
        self.wl_src = a(cupy, (L, g.WX), np.int32, 0)
        self.wl_dst = a(cupy, (L, g.WX), np.int32, 0)
        self.wl_arc = a(cupy, (L, g.WX), np.int32, 0)
        self.wl_ac = a(cupy, (L, g.WX), np.float32, 0)
        self.wl_excess = a(cupy, (L, g.WX), np.float32, 0)
        self.wl_new = a(cupy, (L, g.WX), np.int32, -1)
        self.wframes = a(cupy, (L, g.TF, layout.WINDOW_FRAME_INTS), np.int32, 0)
        # the packed windows: a region per lane group (its header, then its lanes' shares); the budget counts no
        # header (the groups' headers, 8 bytes each, and their 32 bytes of totals are not in it)
        self.packed_lane_words = packed_lane_bytes(g.SF, Q, X) // 4
        packed_words = MAX_LANE_GROUPS * layout.WINDOW_HEADER + L * self.packed_lane_words
        self.packed = a(cupy, (packed_words,), np.int32, None)
        self.totals = cupy.zeros((MAX_LANE_GROUPS, 4), np.int64)  # window_offsets': tokens, links, entries, reports
        # channels
        self.ch_state = a(cupy, (C, Q), np.int32, 0)
        self.ch_cost = a(cupy, (C, Q), np.float32, 0)
        self.ch_count = a(cupy, (C, layout.CHANNEL_COUNTERS), np.int32, 0)
        # pinned host memory
        import cupyx

        def pinned(shape, dtype):
            array = cupyx.empty_pinned(shape, dtype)
            self.pinned_bytes += array.nbytes
            return array

        self.host_packed = pinned((packed_words,), np.int32)
        self.host_staging = pinned((L, g.F, max(g.P, 1)), np.float32)
        self.host_counters = pinned((L, layout.LANE_COUNTERS), np.int32)
        self.host_params = pinned((PARAM_UPLOAD_SLOTS, L, layout.LANE_PARAMS), np.int64)  # uploaded from

    def empty_hash(self) -> None:
        """Every lane's hash map empty: each slot's key, cost, dirty flag and
        token (cuda_kernels/common.cuh: HashSlot) EMPTY_STATE, KEY_NONE, 0 and
        NO_TOKEN."""
        for field, value in enumerate((-1, np.int32(layout.KEY_NONE.view(np.int32)), 0, -1)):
            self.hash[..., field] = value

    def packed_region(self, first: int, lanes: int, group: int) -> tuple[int, int]:
        """Words [start, end) of the packed buffers (device and pinned) that lane
        group ``group``, lanes ``first .. first + lanes - 1``, packs into."""
        start = group * layout.WINDOW_HEADER + first * self.packed_lane_words
        return start, start + layout.WINDOW_HEADER + lanes * self.packed_lane_words

    def lanes_view(self, first: int, lanes: int, group: int) -> DeviceArrays:
        """These arrays as lane group ``group`` sees them: the per-lane ones cut
        to lanes ``first .. first + lanes - 1`` (views), the packed buffers to
        its region, the totals to its row; the graph and the channels whole."""
        view = copy.copy(self)
        for name in LANE_ARRAYS:
            setattr(view, name, getattr(self, name)[first:first + lanes])
        view.host_params = self.host_params[:, first:first + lanes]
        start, end = self.packed_region(first, lanes, group)
        view.packed, view.host_packed = self.packed[start:end], self.host_packed[start:end]
        view.totals = self.totals[group]
        return view

    def _upload(self, cupy, array, dtype):
        out = cupy.asarray(np.ascontiguousarray(array, dtype=dtype))
        self.device_bytes += out.nbytes
        return out

    def _alloc(self, cupy, shape, dtype, fill):
        out = cupy.empty(shape, dtype)
        if fill is not None:
            out.fill(fill)
        self.device_bytes += out.nbytes
        return out


def check_allocation(predicted: MemoryBudget, device_bytes: int, pinned_bytes: int,
                     tolerance: float = ALLOCATION_TOLERANCE) -> dict:
    """Compare the budget with what was allocated; returns the ratios and raises
    AssertionError (a bug in the budget or the allocation) beyond ``tolerance``."""
    device_ratio = device_bytes / max(predicted.device_total, 1)
    pinned_ratio = pinned_bytes / max(predicted.pinned_host, 1)
    report = {"predicted_device": predicted.device_total, "allocated_device": device_bytes,
              "device_ratio": device_ratio, "predicted_pinned": predicted.pinned_host,
              "allocated_pinned": pinned_bytes, "pinned_ratio": pinned_ratio}
    if abs(device_ratio - 1) > tolerance or abs(pinned_ratio - 1) > tolerance:
        raise AssertionError(f"allocated memory differs from wfst.budget by more than {tolerance:.0%}: {report}")
    return report
