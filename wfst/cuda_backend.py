"""The CUDA backend: batched offline decoding over lanes, host orchestration only
(the search runs in ``cuda_kernels/``; the lattice is assembled and pruned on
the host by :mod:`wfst.cuda_lattice` with the CPU backend's code).

One step decodes one frame of every busy lane: frame 0 (the start token's
epsilon closure) for a lane that just took an utterance, one score row for the
others. Per step, on the compute stream::

    frame_prologue (cutoff, degree prefix sums)  emit_bound  emit_expand
    eps_sweep x EPS_GRID_SWEEPS  eps_persistent  eps_links
    resolve_tokens  resolve_links  tie_bfs       -> counters to pinned memory, sync
    [lanes that overflowed: reset_lanes, the same sequence again with a tighter bound]
    lane_offsets  pack_segments  save_frontier  reset_lanes

then the packed segments go to pinned memory on the copy stream while the host
appends the previous step's segments to each utterance's lattice (double
buffering: device and pinned buffers 0 and 1 alternate, with events). A lane
whose utterance ended takes the next one at the next step.
"""

from __future__ import annotations

import warnings
from collections import deque

import numpy as np

from . import cuda_kernels_launch as K
from . import cuda_layout as layout
from .budget import DEFAULT_CHUNK_FRAMES, budget
from .config import DecoderConfig
from .cuda_lattice import HostLattice, negative_cycle_error
from .cuda_memory import DeviceArrays, check_allocation, geometry
from .cuda_scores import ScoreInput
from .decoding_graph import DecodingGraph
from .errors import CapacityWarning, ConfigError, MemoryBudgetError
from .result import Result

DEFAULT_MAX_LANES = 256
FREE_MEMORY_SHARE = 0.9
"""Default lane count: as many as fit in this share of the free device memory,
at most DEFAULT_MAX_LANES."""

_FIELD_OF_OVERFLOW = {layout.OVF_TOKENS: "token_queue_capacity", layout.OVF_HASH: "token_queue_capacity",
                      layout.OVF_LINKS: "arc_queue_capacity"}


def default_lanes(memory_one_lane, free_bytes: int) -> int:
    return max(1, min(DEFAULT_MAX_LANES, memory_one_lane.max_lanes(int(free_bytes * FREE_MEMORY_SHARE))))


class CudaDecoder:
    """Device memory for ``lanes`` utterances at once, allocated here once."""

    def __init__(self, graph: DecodingGraph, config: DecoderConfig, lanes: int | None = None,
                 channels: int | None = None, pdf_map=None, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                 device_id: int = 0):
        from .gpu import import_cupy

        cupy = import_cupy()
        self.cupy = cupy
        self.graph = graph
        self.config = config
        self.device = cupy.cuda.Device(device_id)
        self.device.use()
        free, _ = cupy.cuda.runtime.memGetInfo()
        if lanes is None:
            lanes = default_lanes(budget(graph.fst, config, lanes=1, pdf_map=pdf_map, chunk_frames=chunk_frames),
                                  free)
        self.memory = budget(graph.fst, config, lanes=lanes, channels=channels, pdf_map=pdf_map,
                             chunk_frames=chunk_frames)
        self.memory.check(free)  # MemoryBudgetError before anything is allocated
        if graph.num_columns > 0 and graph.column_of_ilabel.max() >= (1 << 31):
            raise ConfigError("score columns beyond int32")
        num_columns = graph.fst.max_ilabel if pdf_map is None else int(np.max(pdf_map)) + 1
        sms = cupy.cuda.runtime.getDeviceProperties(device_id)["multiProcessorCount"]
        self.geometry = g = geometry(config, self.memory.lanes, self.memory.channels, num_columns, chunk_frames,
                                     sms)
        try:
            self.arrays = DeviceArrays(cupy, graph, g)
        except cupy.cuda.memory.OutOfMemoryError as error:  # the budget was right but memory moved
            raise MemoryBudgetError(f"device allocation failed although the budget fitted: {error}") from error
        self.allocation = check_allocation(self.memory, self.arrays.device_bytes, self.arrays.pinned_bytes,
                                           tolerance=float("inf"))
        self.compute = cupy.cuda.Stream(non_blocking=True)
        self.copy = cupy.cuda.Stream(non_blocking=True)
        self.copied = [None, None]
        self.stats = {"frames": 0, "expanded": 0, "retries": 0, "steps": 0}

    # ------------------------------------------------------------- kernels
    def _search_frame(self):
        d, g, c = self.arrays, self.geometry, self.config
        from .cpu_search import BEAM_DELTA

        K.frame_prologue(d, g, self.graph.fst.start, c.beam, c.max_active, c.min_active, BEAM_DELTA)
        K.emit_bound(d, g, c.acoustic_scale)
        K.emit_expand(d, g, c.acoustic_scale)
        for _ in range(layout.EPS_GRID_SWEEPS):
            K.eps_sweep(d, g)
        K.eps_persistent(d, g)
        K.eps_links(d, g)
        K.resolve_tokens(d, g)
        K.resolve_links(d, g)
        K.tie_bfs(d, g)

    def _counters(self) -> np.ndarray:
        d = self.arrays
        d.counters.get(stream=self.compute, out=d.host_counters)
        self.compute.synchronize()
        return d.host_counters.copy()

    def _upload_params(self, params: np.ndarray):
        self.arrays.params.set(params, stream=self.compute)

    # ------------------------------------------------------------- decoding
    def decode(self, inputs: list[ScoreInput]) -> list[Result]:
        """Decode checked score matrices; Results in input order."""
        if not inputs:
            return []
        self.device.synchronize()  # producers of device scores (torch, cupy streams) have finished
        with self.device:
            return self._decode(inputs)

    def _decode(self, inputs: list[ScoreInput]) -> list[Result]:
        g, cfg = self.geometry, self.config
        L = g.lanes
        queue = deque(range(len(inputs)))
        results: list[Result | None] = [None] * len(inputs)
        lane_utt = [-1] * L
        lane_row = [0] * L
        lane_lattice: list[HostLattice | None] = [None] * L
        params = np.zeros((L, layout.LANE_PARAMS), np.int64)
        params[:, layout.P_CHANNEL] = np.arange(L)
        overflowed_fields: set[str] = set()
        failed: list[int] = []
        pending = None
        buffer = 0
        while True:
            for lane in range(L):
                if lane_utt[lane] < 0 and queue:
                    u = queue.popleft()
                    lane_utt[lane] = u
                    lane_row[lane] = -1
                    lane_lattice[lane] = HostLattice(self.graph, cfg)
            busy = [lane for lane in range(L) if lane_utt[lane] >= 0]
            if not busy:
                break
            with self.compute:
                self._set_lane_params(params, inputs, lane_utt, lane_row)
                self._upload_params(params)
                self._search_frame()
            if pending is not None:  # the host works while the GPU searches
                self._append(pending, results)
                pending = None
            counters = self._counters()
            counters = self._retry_overflows(params, counters, overflowed_fields)
            ran = (params[:, layout.P_MODE] == layout.MODE_START) | (params[:, layout.P_MODE] == layout.MODE_EMIT)
            status = counters[:, layout.C_STATUS]
            if np.any(ran & (status == layout.STATUS_NEGATIVE_CYCLE)):
                lane = int(np.flatnonzero(ran & (status == layout.STATUS_NEGATIVE_CYCLE))[0])
                self._finish_step_on_device(buffer)
                raise negative_cycle_error(lane_row[lane] + 1)
            lost = ran & ((counters[:, layout.C_OVERFLOW] != 0) | (counters[:, layout.C_NTOK] > g.Q)
                          | (counters[:, layout.C_NLINK] > g.X))
            tok_off, T = layout.pack_offsets(counters[:, layout.C_NTOK], ran, g.Q)
            link_off, Kn = layout.pack_offsets(counters[:, layout.C_NLINK], ran, g.X)
            self._finish_step_on_device(buffer, T, Kn)
            entries = []
            for lane in busy:
                u = lane_utt[lane]
                start = lane_row[lane] < 0
                last = (lane_row[lane] + 1) >= inputs[u].frames
                entry = (lane_lattice[lane], u, int(tok_off[lane]), int(min(counters[lane, layout.C_NTOK], g.Q)),
                         int(link_off[lane]), int(min(counters[lane, layout.C_NLINK], g.X)),
                         int(counters[lane, layout.C_NEMIT]), start, last or bool(lost[lane]), bool(lost[lane]))
                entries.append(entry)
                if bool(lost[lane]):
                    failed.append(u)
                self.stats["expanded"] += int(counters[lane, layout.C_EXPANDED])
                self.stats["frames"] += 0 if start else 1
                lane_row[lane] += 1
                if last or bool(lost[lane]):
                    lane_utt[lane] = -1
                    lane_lattice[lane] = None
            pending = (buffer, T, Kn, entries)
            buffer ^= 1
            self.stats["steps"] += 1
        if pending is not None:
            self._append(pending, results)
        if overflowed_fields:
            warnings.warn(CapacityWarning(
                "lane queues overflowed; those frames were searched again with a tighter beam (results may "
                f"differ from an exact search): raise {', '.join(sorted(overflowed_fields))} in the "
                "DecoderConfig"), stacklevel=3)
        if failed:
            warnings.warn(CapacityWarning(
                f"{len(failed)} utterance(s) overflowed even at the tightest beam and were abandoned "
                f"(empty results): raise {', '.join(sorted(overflowed_fields)) or 'token_queue_capacity'}"),
                stacklevel=3)
        return results

    def _set_lane_params(self, params, inputs, lane_utt, lane_row):
        d, g = self.arrays, self.geometry
        params[:, layout.P_MODE] = layout.MODE_IDLE
        params[:, layout.P_TIGHTEN] = 0
        for lane, u in enumerate(lane_utt):
            if u < 0:
                continue
            row = lane_row[lane]
            if row < 0:
                params[lane, layout.P_MODE] = layout.MODE_START
                continue
            params[lane, layout.P_MODE] = layout.MODE_EMIT
            source = inputs[u]
            if source.on_device:
                params[lane, layout.P_SCORES] = source.array.data.ptr
                params[lane, layout.P_STRIDE] = source.row_stride
                params[lane, layout.P_DTYPE] = source.dtype_code
                params[lane, layout.P_ROW] = row
            else:
                if row % g.F == 0:
                    rows = source.array[row:row + g.F, :g.P]
                    d.host_staging[lane, :rows.shape[0], :rows.shape[1]] = rows
                    d.staging[lane].set(d.host_staging[lane], stream=self.compute)
                params[lane, layout.P_SCORES] = d.staging[lane].data.ptr
                params[lane, layout.P_STRIDE] = d.staging.shape[2]
                params[lane, layout.P_DTYPE] = 0
                params[lane, layout.P_ROW] = row % g.F

    def _retry_overflows(self, params, counters, overflowed_fields):
        g = self.geometry
        ran = (params[:, layout.P_MODE] == layout.MODE_START) | (params[:, layout.P_MODE] == layout.MODE_EMIT)
        tighten = np.zeros(g.lanes, np.int64)
        while True:
            flags = counters[:, layout.C_OVERFLOW]
            bad = ran & ((flags != 0) | (counters[:, layout.C_NTOK] > g.Q) | (counters[:, layout.C_NLINK] > g.X))
            bad &= tighten <= layout.TIGHTEN_LAST
            if not bad.any():
                return counters
            for bit, field in _FIELD_OF_OVERFLOW.items():
                if np.any(flags[bad] & bit):
                    overflowed_fields.add(field)
            self.stats["retries"] += int(bad.sum())
            tighten[bad] += 1
            retry = params.copy()
            retry[ran & ~bad, layout.P_MODE] = layout.MODE_RETRY_SKIP
            retry[:, layout.P_TIGHTEN] = tighten
            with self.compute:
                self._upload_params(retry)
                K.reset_lanes(self.arrays, g)
                self._search_frame()
                new = self._counters()
                self._upload_params(params)
            counters[bad] = new[bad]

    def _finish_step_on_device(self, buffer, T=None, Kn=None):
        d, g = self.arrays, self.geometry
        with self.compute:
            if T is not None:
                K.lane_offsets(d, g)
                if self.copied[buffer] is not None:
                    self.compute.wait_event(self.copied[buffer])
                K.pack_segments(d, g, d.packed[buffer])
                packed = self.compute.record()
            K.save_frontier(d, g)
            K.reset_lanes(d, g)
        if T is None:
            self.compute.synchronize()
            return
        words = 3 * T + 4 * Kn
        with self.copy:
            self.copy.wait_event(packed)
            if words:
                self.cupy.cuda.runtime.memcpyAsync(d.host_packed[buffer].ctypes.data, d.packed[buffer].data.ptr,
                                                   4 * words, self.cupy.cuda.runtime.memcpyDeviceToHost,
                                                   self.copy.ptr)
            self.copied[buffer] = self.copy.record()

    def _append(self, pending, results):
        buffer, T, Kn, entries = pending
        self.copied[buffer].synchronize()
        words = self.arrays.host_packed[buffer]
        floats = words.view(np.float32)
        for lattice, u, to, n, lo, nl, ne, start, last, lost in entries:
            if lost:
                results[u] = _abandoned(self.graph, lattice.num_frames if not start else 0)
                continue
            lattice.append(words, floats, T, Kn, to, n, lo, nl, ne, start)
            if last:
                results[u] = lattice.finish()


def _abandoned(graph, frames: int) -> Result:
    return Result(words=(), cost=float("inf"), graph_cost=float("inf"), acoustic_cost=float("inf"),
                  reached_final=False, alignment=np.zeros(frames, np.int32), word_frames=(), lattice=None)
