"""The CUDA backend: batched decoding over lanes, host orchestration only (the
search runs in ``cuda_kernels/``; the lattice is assembled and pruned on the
host by :mod:`wfst.cuda_lattice` with the CPU backend's code).

Work comes as :class:`LaneJob` s: an offline utterance (start frame, every row,
then its Result) or a stream's chunk (start frame only for the first chunk; the
frontier stays in the stream's channel between chunks, see
:mod:`wfst.cuda_stream`). One step decodes one frame of every busy lane: the
start token's epsilon closure for a lane whose job starts an utterance, one
score row for the others. Per step, on the compute stream::

    frame_prologue (cutoff, degree prefix sums)  emit_bound  emit_expand
    eps_sweep x EPS_GRID_SWEEPS  eps_persistent  eps_links
    resolve_tokens  resolve_links  tie_bfs       -> counters to pinned memory, sync
    [lanes that overflowed: reset_lanes, the same sequence again with a tighter bound]
    window_store (and the step's parameters copied for the window stream)
    save_frontier  reset_lanes
    and on the window stream, for lanes that flush, beside the next step's search:
    window_prune  window_number  window_offsets  window_pack | window_shift

The search, the store, the reset and the packing (up to window_pack) are each
captured into a CUDA graph at their second run and replayed (:mod:`wfst.cuda_launch_graphs`:
one call for the sequence, where each launch costs the host 10-30 us).

Each frame's lattice segments go to its lane's window on the device; a lane
flushes its window (prunes it against its newest frame and packs what is left)
every ``WINDOW_FRAMES`` frames (staggered over the lanes), when its pool could
not take one more frame, and when its job ends. A flush before the job's end
keeps up to ``WINDOW_LAG`` newest frames back (``window_shift``), to be pruned
again at the next flush against a newer frame
(:func:`wfst.cuda_window_plan.frames_kept_back`). The packed windows go to a region of
the pinned buffer (the lattice store's inbox, a ring: see
:meth:`wfst.cuda_lattice.LatticeStore.reserve`) on the copy stream while the
device searches the next step; the host queues them to the lattice workers
before it queues that step's packing (so one packed buffer on the device
serves: the copy is done when the host reads it, the host is done when the
device writes it again), and the workers read them where they arrived. A lane
whose job ended takes the next one at the next step.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from lattice.errors import LatticeError

from . import cuda_kernels_launch as K
from . import cuda_layout as layout
from .budget import DEFAULT_CHUNK_FRAMES, budget
from .config import DecoderConfig
from .cuda_lattice import LatticeStore, negative_cycle_error
from .cuda_launch_graphs import LaunchGraphs
from .cuda_memory import DeviceArrays, check_allocation, geometry
from .cuda_scores import ScoreInput
from .cuda_window_plan import plan_windows
from .decoding_graph import DecodingGraph
from .errors import CapacityWarning, ConfigError, GraphError, MemoryBudgetError
from .result import Result
from .stream_channels import ChannelPool

HOST_PRUNE_INTERVALS = 4
"""The device prunes every lattice window before the copy, so the host's interim
pruning, which only keeps long utterances' lattices small, runs every
HOST_PRUNE_INTERVALS x ``prune_interval`` frames (the results do not depend on it)."""
DEFAULT_MAX_LANES = 256
FREE_MEMORY_SHARE = 0.9
"""Default lane count: as many as fit in this share of the free device memory,
at most DEFAULT_MAX_LANES."""

_FIELD_OF_OVERFLOW = {layout.OVF_TOKENS: "token_queue_capacity", layout.OVF_HASH: "token_queue_capacity",
                      layout.OVF_LINKS: "arc_queue_capacity"}


def default_lanes(memory_one_lane, free_bytes: int) -> int:
    return max(1, min(DEFAULT_MAX_LANES, memory_one_lane.max_lanes(int(free_bytes * FREE_MEMORY_SHARE))))


@dataclass(eq=False)
class LaneJob:
    """Frames for one lane: the start frame first when ``start``, then rows
    ``0 .. source.frames - 1``, searched on ``channel`` (None: a spare channel
    while the job runs) and appended to that channel's lattice.
    ``first_frame``: frames searched before (for messages). Outcome:
    ``result`` (when ``finish``; a Future of the lattice workers until the
    run ends), ``error`` (a negative-cost epsilon cycle) or ``lost``
    (overflowed even at the tightest beam)."""

    source: ScoreInput
    start: bool
    finish: bool
    channel: int | None = None
    first_frame: int = 0
    borrowed: bool = False
    result: Result | Future | None = None
    error: GraphError | None = None
    lost: bool = False


class CudaDecoder:
    """Device memory for ``lanes`` utterances at once, allocated here once."""

    def __init__(self, graph: DecodingGraph, config: DecoderConfig, lanes: int | None = None,
                 channels: int | None = None, pdf_map=None, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                 device_id: int = 0, threads: int = 1):
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
        self.windows = cupy.cuda.Stream(non_blocking=True)  # flushed windows, beside the next step's search
        self.copy = cupy.cuda.Stream(non_blocking=True)
        self.windows_done = None  # the event of the last flush's window work (it moves the pools)
        self.launch_graphs = LaunchGraphs()
        self.copied = None  # the event of the last copy of packed windows
        # counts over every run; the seconds split the step loop's wall time: waiting for the device (its
        # counters, the copy of the packed windows: the GPU's time the host's work did not hide), waiting
        # for the lattice workers (they fall behind), and the rest, the calling thread's own work, of
        # which host_cpu_seconds is its CPU time (the rest it waited for the GIL; a device wait that spins
        # counts as CPU time too)
        self.stats = {"frames": 0, "expanded": 0, "retries": 0, "steps": 0, "windows": 0, "held_back": 0,
                      "run_seconds": 0.0, "device_wait_seconds": 0.0, "lattice_wait_seconds": 0.0,
                      "host_cpu_seconds": 0.0}
        self.channels = ChannelPool(g.channels)
        # the lattice workers append the copied windows and finish utterances while the GPU goes on
        self.lattices = LatticeStore(graph, config, g.channels, threads=threads,
                                     prune_every=HOST_PRUNE_INTERVALS * config.prune_interval,
                                     inbox=self.arrays.host_packed)

    # ------------------------------------------------------------- kernels
    def _search_frame(self):
        self.launch_graphs.run(("search", self.geometry), self.compute, self._issue_search)

    def _issue_search(self):
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
        self._copy_to_host(d.host_counters, d.counters, d.counters.nbytes, self.compute)
        self._wait_for(self.compute)
        return d.host_counters.copy()

    def _copy_to_host(self, pinned: np.ndarray, device_array, nbytes: int, stream):
        """Queue a copy into pinned host memory on ``stream`` (CuPy's ``get``
        would block until it is done, hiding that wait in the caller's time)."""
        runtime = self.cupy.cuda.runtime
        runtime.memcpyAsync(pinned.ctypes.data, device_array.data.ptr, nbytes, runtime.memcpyDeviceToHost,
                            stream.ptr)

    def _wait_for(self, stream_or_event):
        """Synchronize, the time counted as waiting for the device."""
        waiting = time.perf_counter()
        stream_or_event.synchronize()
        self.stats["device_wait_seconds"] += time.perf_counter() - waiting

    def _upload_params(self, params: np.ndarray):
        self.arrays.params.set(params, stream=self.compute)

    # ------------------------------------------------------------- decoding
    def decode(self, inputs: list[ScoreInput]) -> list[Result]:
        """Decode checked score matrices; Results in input order. Borrows up to
        ``lanes`` free channels (StreamError when open streams hold them all)."""
        if not inputs:
            return []
        jobs = [LaneJob(s, start=True, finish=True) for s in inputs]
        spares = self.channels.acquire_up_to(min(self.geometry.lanes, len(jobs)))
        try:
            notes = self.run(jobs, spares)
        finally:
            for channel in spares:
                self.channels.release(channel)
        warn_capacity(notes)
        for job in jobs:
            if job.error is not None:
                raise job.error
        return [job.result for job in jobs]

    def run(self, jobs: list[LaneJob], spare_channels: list[int] = ()) -> list[str]:
        """Search the frames of every job: a lane per job, one frame of every busy
        lane per step (one launch sequence), a lane taking the next job as soon as
        its own ends. A job without a channel takes one of ``spare_channels`` while
        it runs. Outcomes are left in the jobs (``result``, ``error``, ``lost``);
        returns the capacity notes for :func:`warn_capacity`, which the caller
        issues once it has taken the outcomes. If anything raises midway, every
        lane's working memory is emptied first (the jobs' outcomes are then
        undefined)."""
        if not jobs:
            return []
        self.device.synchronize()  # producers of device scores (torch, cupy streams) have finished
        started, cpu, lattice_waits = time.perf_counter(), time.thread_time(), self.lattices.wait_seconds
        with self.device:
            try:
                overflowed, lost = self._run(jobs, list(spare_channels))
            except BaseException:
                self.lattices.settle()  # no worker appends any more
                self._empty_lanes()
                raise
            finally:
                self.stats["run_seconds"] += time.perf_counter() - started
                self.stats["host_cpu_seconds"] += time.thread_time() - cpu
                self.stats["lattice_wait_seconds"] += self.lattices.wait_seconds - lattice_waits
        notes = []
        if overflowed:
            notes.append("lane queues overflowed; those frames were searched again with a tighter beam (results "
                         f"may differ from an exact search): raise {', '.join(sorted(overflowed))} in the "
                         "DecoderConfig")
        if lost:
            notes.append(f"{lost} utterance(s) overflowed even at the tightest beam and were abandoned (empty "
                         f"results): raise {', '.join(sorted(overflowed)) or 'token_queue_capacity'}")
        return notes

    def _empty_lanes(self):
        """Every lane's hash map and token slots back to empty, after a run that
        stopped midway (reset_lanes runs at the end of a normal step only)."""
        d = self.arrays
        self.device.synchronize()
        for array, value in ((d.hash_key, -1), (d.hash_cost, layout.KEY_NONE), (d.hash_dirty, 0),
                             (d.hash_tok, -1), (d.tok_slot, -1)):
            array.fill(value)
        self.device.synchronize()

    def _run(self, jobs: list[LaneJob], spares: list[int]) -> tuple[set[str], int]:
        """The step loop. Per-lane state lives in numpy arrays and a step's host
        work is vectorized (Python touches a lane only when its job starts or
        ends, or to stage host scores every ``chunk_frames`` rows), so the host
        keeps up with hundreds of lanes."""
        g = self.geometry
        L = g.lanes
        queue = deque(jobs)
        lane_job: list[LaneJob | None] = [None] * L
        busy = np.zeros(L, bool)
        row = np.zeros(L, np.int64)  # row to search next; -1: the start frame
        rows = np.zeros(L, np.int64)  # rows of the lane's job
        on_host = np.zeros(L, bool)  # scores staged from host memory
        params = np.zeros((L, layout.LANE_PARAMS), np.int64)
        window_frames = np.zeros(L, np.int64)  # frames in each lane's lattice window
        window_sizes = np.zeros((L, g.W, 2), np.int64)  # tokens and links of each of them (0 beyond)
        window_starts = np.zeros(L, bool)  # the window begins with its utterance's start frame
        overflowed: set[str] = set()
        lost = 0
        pending = None
        while True:
            if queue and not busy.all():
                self._assign(queue, spares, lane_job, busy, row, rows, on_host, params)
            if not busy.any():
                break
            with self.compute:
                self._set_lane_params(params, lane_job, busy, row, on_host)
                self._upload_params(params)
                self._search_frame()
            if pending is not None:  # the host works while the GPU searches
                self._append(pending)
                pending = None
            counters = self._counters()
            counters = self._retry_overflows(params, counters, overflowed)
            ran = busy.copy()
            cycle = ran & (counters[:, layout.C_STATUS] == layout.STATUS_NEGATIVE_CYCLE)
            dropped = ran & ~cycle & ((counters[:, layout.C_OVERFLOW] != 0) | (counters[:, layout.C_NTOK] > g.Q)
                                      | (counters[:, layout.C_NLINK] > g.X))
            ended = ran & ((row + 1 >= rows) | cycle | dropped)
            good = ran & ~cycle & ~dropped
            sizes = np.minimum(counters[:, [layout.C_NTOK, layout.C_NLINK]], [g.Q, g.X]).astype(np.int64)
            *entries, words, flushing, held_back = plan_windows(
                params, good, ended, row, sizes, window_frames, window_sizes, window_starts, g.window_period,
                g.window_lag, g.Q, g.X, g.WT, g.WX)
            self.stats["windows"] += flushing
            self.stats["held_back"] += held_back
            arrived = self._finish_step_on_device(params, words)
            done = []  # (job, how it ended) for the jobs whose last frame this was
            for lane in np.flatnonzero(ended):
                job = lane_job[lane]
                if cycle[lane]:
                    job.error = negative_cycle_error(job.first_frame + int(row[lane]) + 1)
                done.append((job, "lost" if dropped[lane] else "error" if cycle[lane] else "searched"))
                lane_job[lane] = None
                if job.borrowed:
                    spares.append(job.channel)
            lost += int(dropped.sum())
            self.stats["expanded"] += int(counters[ran, layout.C_EXPANDED].sum())
            self.stats["frames"] += int((ran & (row >= 0)).sum())
            self.stats["steps"] += 1
            row[ran] += 1
            busy &= ~ended
            window_frames[ended] = 0
            window_sizes[ended] = 0
            pending = (arrived, entries, done)
        if pending is not None:
            self._append(pending)
        for stream in (self.compute, self.windows):  # nothing of this run left running on the device
            self._wait_for(stream)
        self.lattices.wait()
        for job in jobs:
            if isinstance(job.result, Future):
                job.result = job.result.result()
        return overflowed, lost

    def _assign(self, queue, spares, lane_job, busy, row, rows, on_host, params):
        """Give free lanes the next jobs (a job without a channel waits for a spare one)."""
        d, g = self.arrays, self.geometry
        for lane in np.flatnonzero(~busy):
            while queue:
                job = queue[0]
                if not job.start and job.source.frames == 0:  # nothing to search
                    queue.popleft()
                    continue
                if job.channel is None:
                    if not spares:
                        return
                    job.channel = spares.pop()
                    job.borrowed = True
                queue.popleft()
                lane_job[lane] = job
                busy[lane] = True
                row[lane] = -1 if job.start else 0
                rows[lane] = job.source.frames
                source = job.source
                on_host[lane] = not source.on_device
                params[lane, layout.P_CHANNEL] = job.channel
                if source.on_device:
                    params[lane, layout.P_SCORES] = source.array.data.ptr
                    params[lane, layout.P_STRIDE] = source.row_stride
                    params[lane, layout.P_DTYPE] = source.dtype_code
                else:
                    params[lane, layout.P_SCORES] = d.staging[lane].data.ptr
                    params[lane, layout.P_STRIDE] = d.staging.shape[2]
                    params[lane, layout.P_DTYPE] = 0
                break

    def _set_lane_params(self, params, lane_job, busy, row, on_host):
        """Modes and score rows of this step; host scores staged every F rows."""
        d, g = self.arrays, self.geometry
        params[:, layout.P_MODE] = np.where(~busy, layout.MODE_IDLE,
                                            np.where(row < 0, layout.MODE_START, layout.MODE_EMIT))
        params[:, layout.P_TIGHTEN] = 0
        params[:, layout.P_ROW] = np.where(on_host, row % g.F, row)
        for lane in np.flatnonzero(busy & on_host & (row >= 0) & (row % g.F == 0)):
            r = int(row[lane])
            scores = lane_job[lane].source.array[r:r + g.F, :g.P]
            d.host_staging[lane, :scores.shape[0], :scores.shape[1]] = scores
            d.staging[lane].set(d.host_staging[lane], stream=self.compute)

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

    def _finish_step_on_device(self, params, words):
        """The step's last kernels, and the copy of ``words`` packed words into
        a region of the lattice inbox, which it returns (None: no flush). The
        flushing lanes' window work runs on its own stream, beside the next
        step's search, from a copy of this step's parameters; the next step's
        window_store waits for it (it moves the pools). The packed buffer is
        free again: the host waited for its last copy before this call."""
        d, g = self.arrays, self.geometry
        assert words <= d.packed.size, "the flush plan exceeds the packed buffer"  # see _plan_windows
        with self.compute:
            self._upload_params(params)
            if self.windows_done is not None:
                self.compute.wait_event(self.windows_done)
        self.launch_graphs.run(("store", g), self.compute, self._issue_store)
        stored = self.compute.record()
        self.launch_graphs.run(("reset", g), self.compute, self._issue_reset)
        if not words:
            return None
        self.windows.wait_event(stored)
        self.launch_graphs.run(("pack", g), self.windows, self._issue_pack)
        packed = self.windows.record()
        with self.windows:
            K.window_shift(d, g)
        self.windows_done = self.windows.record()
        region = self.lattices.reserve(words)
        with self.copy:
            self.copy.wait_event(packed)
            self._copy_to_host(region, d.packed, 4 * words, self.copy)
            self.copied = self.copy.record()
        return region

    def _issue_store(self):
        """The step's frame into the lanes' windows, and the step's parameters
        copied for the window stream (which has finished with the last copy:
        the compute stream waited for it)."""
        d = self.arrays
        K.window_store(d, self.geometry)
        runtime = self.cupy.cuda.runtime
        runtime.memcpyAsync(d.window_params.data.ptr, d.params.data.ptr, d.params.nbytes,
                            runtime.memcpyDeviceToDevice, self.compute.ptr)

    def _issue_reset(self):
        K.save_frontier(self.arrays, self.geometry)
        K.reset_lanes(self.arrays, self.geometry)

    def _issue_pack(self):
        d, g = self.arrays, self.geometry
        K.window_prune(d, g, self.config.lattice_beam)
        K.window_number(d, g)
        K.window_offsets(d, g, d.packed)
        K.window_pack(d, g, d.packed)

    def _append(self, pending):
        """Append a step's flushed windows (packed as ``window_offsets`` says) to
        the lattices, then finish the jobs that ended."""
        packed, (channels, starts), done = pending
        if packed is not None:
            self._wait_for(self.copied)
            E = channels.size
            T, Kn = int(packed[0]), int(packed[1])
            counts = packed[layout.WINDOW_HEADER:layout.WINDOW_HEADER + 3 * E].reshape(E, 3).astype(np.int64)
            n, nl, ne = counts[:, 0], counts[:, 1], counts[:, 2]
            if (np.any(counts < 0) or np.any(ne > nl) or n.sum() != T or nl.sum() != Kn
                    or layout.WINDOW_HEADER + 3 * E + 3 * T + 5 * Kn > packed.size):
                raise LatticeError("lattice windows from the device: counts that do not add up")
            data = packed[layout.WINDOW_HEADER + 3 * E:]
            self.lattices.append(channels, data, T, Kn, np.cumsum(n) - n, n,
                                 np.cumsum(nl) - nl, nl, ne, starts)
        for job, how in done:
            if how == "lost":
                job.lost = True
                if job.finish:
                    job.result = abandoned_result(self.graph, job.first_frame + job.source.frames)
            elif how == "searched" and job.finish:
                job.result = self.lattices.finish_later(job.channel)


def warn_capacity(notes: list[str]) -> None:
    """Issue :meth:`CudaDecoder.run`'s capacity notes as :class:`CapacityWarning` s
    (pointing at the caller of ``wfst.Decoder.decode`` or ``advance``)."""
    for note in notes:
        warnings.warn(CapacityWarning(note), stacklevel=4)


def abandoned_result(graph, frames: int) -> Result:
    """The Result of an utterance given up after a queue overflow: no words, cost inf."""
    return Result(words=(), cost=float("inf"), graph_cost=float("inf"), acoustic_cost=float("inf"),
                  reached_final=False, alignment=np.zeros(frames, np.int32), word_frames=(), lattice=None)
