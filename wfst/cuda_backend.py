"""The CUDA backend: batched decoding over lanes, host orchestration only (the
search runs in ``cuda_kernels/``; the lattice is assembled and pruned on the
host by :mod:`wfst.cuda_lattice` with the CPU backend's code).

Work comes as :class:`LaneJob` s: an offline utterance (start frame, every row,
then its Result) or a stream's chunk (start frame only for the first chunk; the
frontier stays in the stream's channel between chunks, see
:mod:`wfst.cuda_stream`). One step decodes one frame of every busy lane of a
lane group (:mod:`wfst.cuda_lane_group`, which describes a step): the start
token's epsilon closure for a lane whose job starts an utterance, one score row
for the others. The groups step in turn, each on its own streams, so the host's
work on one group's step overlaps the device's work on the others'. A lane
whose job ended takes the next one at its group's next step.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .budget import DEFAULT_CHUNK_FRAMES, budget
from .config import DecoderConfig
from .cuda_lane_group import LaneGroup, split_lanes
from .cuda_lattice import LatticeStore
from .cuda_launch_graphs import LaunchGraphs
from .cuda_memory import MAX_LANE_GROUPS, DeviceArrays, geometry
from .cuda_scores import ScoreInput
from .decoding_graph import DecodingGraph
from .errors import CapacityWarning, ConfigError, GraphError, MemoryBudgetError
from .gc_scope import objects_older_than_the_run_frozen
from .result import Result
from .stream_channels import ChannelPool
from .user_warnings import warn_user

HOST_PRUNE_INTERVALS = 4
"""The device prunes every lattice window before the copy, so the host's interim
pruning, which only keeps long utterances' lattices small, runs every
HOST_PRUNE_INTERVALS x ``prune_interval`` frames (the results do not depend on it)."""
DEFAULT_MAX_LANES = 256
FREE_MEMORY_SHARE = 0.9
"""Default lane count: as many as fit in this share of the free device memory,
with their pinned buffers in this share of the available host memory, at most
DEFAULT_MAX_LANES."""

CUDA_ERROR_MEMORY_ALLOCATION = 2
"""cudaErrorMemoryAllocation, the status of CuPy's ``CUDARuntimeError`` when
page-locked host memory cannot be allocated."""
LOST_NAMED = 10
"""Abandoned utterances a capacity warning names (the rest it counts)."""
DEFAULT_LANE_GROUPS = 1
"""Lane groups a run steps in turn (:mod:`wfst.cuda_lane_group`); ``CudaDecoder.lane_groups``."""


def default_lanes(memory_one_lane, free_bytes: int, host_bytes: int | None = None) -> int:
    lanes = min(DEFAULT_MAX_LANES, memory_one_lane.max_lanes(int(free_bytes * FREE_MEMORY_SHARE)))
    if host_bytes is not None:
        lanes = min(lanes, memory_one_lane.max_lanes_pinned(int(host_bytes * FREE_MEMORY_SHARE)))
    return max(1, lanes)


@dataclass(eq=False)
class LaneJob:
    """Frames for one lane: the start frame first when ``start``, then rows
    ``0 .. source.frames - 1``, searched on ``channel`` (None: a spare channel
    while the job runs) and appended to that channel's lattice.
    ``first_frame``: frames searched before and ``name`` what the job decodes
    (both for messages). Outcome:
    ``result`` (when ``finish``; a Future of the lattice workers until the
    run ends), ``error`` (a negative-cost epsilon cycle) or ``lost``
    (overflowed even at the tightest beam)."""

    source: ScoreInput
    start: bool
    finish: bool
    channel: int | None = None
    first_frame: int = 0
    name: str = "an utterance"
    borrowed: bool = False
    result: Result | Future | None = None
    error: GraphError | None = None
    lost: bool = False


class CudaDecoder:
    """Device memory for ``lanes`` utterances at once, allocated here once.

    Calls from several threads take turns (:meth:`turn`): a run uses every
    lane and the lattice store's queues, so a second thread's run, or its
    reading of a stream's lattice, waits for the first to end."""

    def __init__(self, graph: DecodingGraph, config: DecoderConfig, lanes: int | None = None,
                 channels: int | None = None, pdf_map=None, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                 device_id: int = 0, threads: int = 1):
        from .gpu import host_memory_available, import_cupy

        cupy = import_cupy()
        self.cupy = cupy
        self.graph = graph
        self.config = config
        self.device = cupy.cuda.Device(device_id)
        self.device.use()
        # blocks CuPy's pools keep from arrays since freed (an earlier decoder's) count as used below
        cupy.get_default_memory_pool().free_all_blocks()
        cupy.get_default_pinned_memory_pool().free_all_blocks()
        free, _ = cupy.cuda.runtime.memGetInfo()
        host = host_memory_available()
        if lanes is None:
            lanes = default_lanes(budget(graph.fst, config, lanes=1, pdf_map=pdf_map, chunk_frames=chunk_frames),
                                  free, host)
        self.memory = budget(graph.fst, config, lanes=lanes, channels=channels, pdf_map=pdf_map,
                             chunk_frames=chunk_frames)
        self.memory.check(free, host)  # MemoryBudgetError before anything is allocated
        sms = cupy.cuda.runtime.getDeviceProperties(device_id)["multiProcessorCount"]
        self.geometry = g = geometry(config, self.memory.lanes, self.memory.channels, self.memory.score_columns,
                                     chunk_frames, sms)
        try:
            self.arrays = DeviceArrays(cupy, graph, g)
        except cupy.cuda.memory.OutOfMemoryError as error:  # the budget was right but memory moved
            raise MemoryBudgetError(
                f"device allocation failed although {self.memory.lanes} lanes fitted the free memory a moment "
                f"before (another process may have taken some): {error}; use fewer lanes") from error
        except cupy.cuda.runtime.CUDARuntimeError as error:  # cupyx.empty_pinned: cudaHostAlloc refused
            if error.status != CUDA_ERROR_MEMORY_ALLOCATION:
                raise
            seen = "an unknown amount" if host is None else f"{host:,} bytes"
            raise MemoryBudgetError(
                f"{self.memory.lanes} lanes could not pin {self.memory.pinned_host:,} bytes of host memory with "
                f"{seen} available a moment before (other processes, or a limit on page-locked memory): use fewer "
                "lanes") from error
        self._streams: list[tuple] = []  # (compute, windows) of each lane group, made when first needed
        self._views: dict[tuple, DeviceArrays] = {}  # each lane group's arrays, by (group, first lane, lanes)
        self.lane_groups = DEFAULT_LANE_GROUPS
        """Lane groups of each run, stepped in turn (1 .. min(lanes, MAX_LANE_GROUPS)); can change between runs."""
        self.launch_graphs = LaunchGraphs()
        # counts over every run; the seconds split the step loop's wall time: waiting for the device (its
        # counters, the copy of the packed windows: the GPU's time the host's work did not hide), waiting
        # for the lattice workers (they fall behind), and the rest, the calling thread's own work, of
        # which host_cpu_seconds is its CPU time (the rest it waited for the GIL; a device wait that spins
        # counts as CPU time too); gc_seconds: the garbage collector's time during the runs (any thread's;
        # it holds the GIL, see wfst.gc_scope)
        self.stats = {"frames": 0, "expanded": 0, "retries": 0, "steps": 0, "windows": 0, "windows_kept": 0,
                      "held_back": 0, "early_sends": 0,
                      "run_seconds": 0.0, "device_wait_seconds": 0.0, "lattice_wait_seconds": 0.0,
                      "host_cpu_seconds": 0.0, "gc_seconds": 0.0}
        self.channels = ChannelPool(g.channels)
        self.threads = threads
        self.lattices = self.lattice_store(g.window_period)
        self._turn = threading.Lock()
        self._dropped: deque[int] = deque()  # channels given back while another call had the turn

    def lattice_store(self, stagger: int) -> LatticeStore:
        """A store for the lattices of this decoder's channels, whose workers
        append the copied windows and finish utterances while the GPU goes on;
        ``stagger``: how it deals the channels to them (the window period: a
        step's flushes spread; see :func:`wfst.cuda_lattice.partition_channels`)."""
        return LatticeStore(self.graph, self.config, self.geometry.channels, threads=self.threads,
                            prune_every=HOST_PRUNE_INTERVALS * self.config.prune_interval,
                            inbox=self.arrays.host_packed, stagger=stagger)

    # ------------------------------------------------------------- device helpers
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

    # ------------------------------------------------------------- turns
    @contextmanager
    def turn(self):
        """Hold the decoder for one caller: its run, or its reading of a
        channel's lattice; callers on other threads wait. Channels given back
        meanwhile are let go when the turn ends."""
        try:
            with self._turn:
                yield
        finally:
            self.release_channel()

    def acquire_channel(self) -> int:
        """A free channel for a new stream, once no other call has the turn
        (an offline run borrows the free channels while it runs)."""
        with self.turn():
            return self.channels.acquire()

    def release_channel(self, channel: int | None = None) -> None:
        """Give ``channel`` back: its lattice let go, the channel free for the
        next stream. When another call has the turn (a stream dropped on
        another thread, or while a run makes garbage) that call lets it go as
        its turn ends, so a finalizer never waits on a run."""
        if channel is not None:
            self._dropped.append(channel)
        while self._dropped and self.lattices is not None and self._turn.acquire(blocking=False):
            try:
                self._let_go_dropped()
            finally:
                self._turn.release()

    def _let_go_dropped(self) -> None:
        """The channels given back meanwhile: each lattice cleared (which needs
        the turn, hence this queue before the pool's own), then the channel freed."""
        while self._dropped and self.lattices is not None:  # (none once closed)
            channel = self._dropped.popleft()
            self.lattices.clear(channel)
            self.channels.release(channel)

    def close(self) -> None:
        """Let go of the device and pinned memory, the lattice workers and the
        streams, once no call has the turn; CuPy's pools give their unused
        blocks back to the driver. The stats stay. Only
        :meth:`wfst.Decoder.close` calls this, once no call is in progress
        (again if an earlier close raised)."""
        with self._turn:
            self._dropped.clear()
            if self.lattices is not None:
                self.lattices.close()
            self.lattices = self.arrays = self.launch_graphs = None
            self._views.clear()
            self._streams.clear()
        with self.device:
            self.cupy.get_default_memory_pool().free_all_blocks()
            self.cupy.get_default_pinned_memory_pool().free_all_blocks()

    # ------------------------------------------------------------- decoding
    def decode(self, inputs: list[ScoreInput]) -> list[Result]:
        """Decode checked score matrices; Results in input order. Borrows up to
        ``lanes`` free channels (StreamError when open streams hold them all)."""
        jobs = [LaneJob(s, start=True, finish=True, name=f"scores[{i}]") for i, s in enumerate(inputs)]
        warn_capacity(self.run(jobs))
        for job in jobs:
            if job.error is not None:
                raise job.error
        return [job.result for job in jobs]

    def run(self, jobs: list[LaneJob]) -> list[str]:
        """Search the frames of every job, in a :meth:`turn` of its own: a lane
        per job, one frame of every busy lane of a lane group per step (one
        launch sequence), a lane taking the next job as soon as its own ends.
        Jobs without a channel borrow up to ``lanes`` free ones (StreamError
        when open streams hold them all), dealt to the groups in proportion to
        their lanes, each taken by a job while it runs. Outcomes are left in
        the jobs (``result``, ``error``, ``lost``); returns the capacity notes
        for :func:`warn_capacity`, which the caller issues once it has taken
        the outcomes. If anything raises midway, every lane's working memory is
        emptied first (the jobs' outcomes are then undefined)."""
        if not jobs:
            return []
        with self.turn():
            borrowing = sum(job.channel is None for job in jobs)
            spares = self.channels.acquire_up_to(min(self.geometry.lanes, borrowing)) if borrowing else []
            try:
                return self._run_jobs(jobs, spares)
            finally:
                for channel in spares:
                    self.channels.release(channel)

    def _run_jobs(self, jobs: list[LaneJob], spares: list[int]) -> list[str]:
        """:meth:`run`'s search, once it has the turn and its spare channels."""
        self.device.synchronize()  # producers of device scores (torch, cupy streams) have finished
        started, cpu, lattice_waits = time.perf_counter(), time.thread_time(), self.lattices.wait_seconds
        with self.device, objects_older_than_the_run_frozen(self.stats):
            try:
                overflowed = self._run(jobs, spares)
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
        lost = [job.name for job in jobs if job.lost]
        if lost:
            named = ", ".join(lost[:LOST_NAMED]) + (", ..." if len(lost) > LOST_NAMED else "")
            notes.append(f"{len(lost)} utterance(s) overflowed even at the tightest beam and were abandoned (empty "
                         f"results: {named}): raise {', '.join(sorted(overflowed)) or 'token_queue_capacity'}")
        return notes

    def _empty_lanes(self):
        """Every lane's hash map and token slots back to empty, after a run that
        stopped midway (reset_lanes runs at the end of a normal step only)."""
        d = self.arrays
        self.device.synchronize()
        d.empty_hash()
        d.tok_slot.fill(-1)
        self.device.synchronize()

    def _run(self, jobs: list[LaneJob], spares: list[int]) -> set[str]:
        """The step loop: the lane groups in turn, each launching its next
        search right after its step's end, so the device searches one group
        while the host finishes another's step. Per-lane state lives in numpy
        arrays and a step's host work over them is a few numba calls
        (:mod:`wfst.cuda_lane_steps`; Python touches a lane only when its job
        starts or ends, or to stage host scores every ``chunk_frames`` rows),
        so the host keeps up with hundreds of lanes."""
        groups = self._lane_groups()
        queue = deque(jobs)
        for group, share in zip(groups, _share(spares, [group.geometry.lanes for group in groups])):
            group.begin(queue, share)
        for group in groups:
            group.launch()
        while any(group.searching for group in groups):
            for group in groups:
                if group.searching:
                    group.step()
                group.launch()
        for group in groups:
            group.drain()
        for stream in [s for group in groups for s in (group.compute, group.windows)]:
            self._wait_for(stream)  # nothing of this run left running on the device
        self.lattices.wait()
        for job in jobs:
            if isinstance(job.result, Future):
                job.result = job.result.result()
        return set().union(*(group.overflowed for group in groups))

    def _lane_groups(self) -> list[LaneGroup]:
        """The run's lane groups (``lane_groups`` of them, consecutive lanes), each
        with its streams and its ring of the lattice inbox."""
        count = self.lane_groups
        most = min(self.geometry.lanes, MAX_LANE_GROUPS)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most:
            raise ConfigError(f"lane_groups must be an integer from 1 to {most} (the lanes, at most "
                              f"{MAX_LANE_GROUPS}), got {count!r}")
        bounds = split_lanes(self.geometry.lanes, count)
        self.lattices.use_rings([self.arrays.packed_region(first, n, k) for k, (first, n) in enumerate(bounds)])
        while len(self._streams) < count:
            self._streams.append(tuple(self.cupy.cuda.Stream(non_blocking=True) for _ in range(2)))
        for k, (first, n) in enumerate(bounds):  # (a stream's run of a chunk or two should not slice them again)
            if (k, first, n) not in self._views:
                self._views[k, first, n] = self.arrays.lanes_view(first, n, k)
        return [LaneGroup(self, k, first, n, self._views[k, first, n], *self._streams[k])
                for k, (first, n) in enumerate(bounds)]


def _share(channels: list[int], lanes: list[int]) -> list[list[int]]:
    """``channels`` dealt to groups of ``lanes`` lanes in proportion, the first
    groups taking the rest (a group's borrowed channels stay on its streams)."""
    counts = [len(channels) * n // sum(lanes) for n in lanes]
    for k in range(len(channels) - sum(counts)):
        counts[k] += 1
    ends = np.cumsum(counts)
    return [list(channels[end - count:end]) for count, end in zip(counts, ends)]


def warn_capacity(notes: list[str]) -> None:
    """Issue :meth:`CudaDecoder.run`'s capacity notes as :class:`CapacityWarning` s
    (pointing at the user's call of ``decode``, ``accept``, ``advance`` ...)."""
    for note in notes:
        warn_user(CapacityWarning(note))
