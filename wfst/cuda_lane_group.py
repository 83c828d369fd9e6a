"""A group of the CUDA decoder's lanes that steps on streams of its own.

:meth:`wfst.cuda_backend.CudaDecoder.run` splits the lanes into
``lane_groups`` groups of consecutive lanes and steps them in turn: while the
host reads one group's counters, plans its lattice windows and launches its
step's end, the device searches the other groups' frames. With one group the
device waits for the host between the search and the step's end (the host's
share of a step); with two or more the host's work of one group overlaps the
device's work of the others, and the groups' kernels share the GPU.

A group sees the decoder's arrays cut to its lanes
(:meth:`wfst.cuda_memory.DeviceArrays.lanes_view`: the kernels index its lanes
from 0, its launches cover only its lanes), packs its windows into its own
region of the packed buffers, and copies them into its own ring of the lattice
inbox (:meth:`wfst.cuda_lattice.LatticeStore.use_rings`). A job that needs a
spare channel takes one of its group's (a channel written on one group's
streams is not read on another's). Per step, on the group's compute stream::

    the step's parameters up (from a pinned slot)
    frame_prologue (cutoff, degree prefix sums)  emit_spans  emit_bound  emit_expand
    (token_spans  eps_sweep) x EPS_GRID_SWEEPS  eps_persistent  token_spans  eps_links
    resolve_tokens  link_spans  resolve_links  tie_bfs  -> counters to pinned memory; the host waits
    [lanes that overflowed: reset_lanes, the same sequence again with a tighter bound]
    the parameters up again (with the window plan)  window_store (and the parameters copied for
    the window stream)  save_frontier  reset_lanes  reset_overflowed
    and on the group's window stream, for lanes that flush, beside the next step's search:
    window_prune  window_number  window_offsets  window_pack  window_compact -> the packed windows
    to the host

The search, the store, the reset and the packing are each captured into a CUDA
graph at their second run and replayed (:mod:`wfst.cuda_launch_graphs`): the
host pays for one call per sequence where each launch or copy would cost it
10-30 us, and each such call also lets a lattice worker take the GIL, which the
calling thread then waits to get back.

Each frame's lattice segments go to its lane's window on the device; a lane
flushes its window (prunes it against its newest frame) every
``WINDOW_FRAMES`` frames (staggered over the lanes), when its pool could not
take one more frame, and when its job ends; and where the next step's sends
might not fit the packed buffer, the lanes that hold most send all they hold
(early sends: :func:`wfst.cuda_window_plan.plan_windows`). A flush before the job's end keeps
what it pruned in the lane's pool, compacted (``window_compact``), unless the
pool would then not take a worst-case frame if nothing were pruned, or its frame
table another window (then it sends all it holds); so the host gets an
utterance's lattice mostly at once, at its end, pruned with the final costs when
the job ends the utterance and the config uses them (a stream's chunk sends its
pool pruned against its newest frame; :func:`wfst.cuda_window_plan.flush_kind`). The host learns a keeping lane's
pool size from the flush's report, before it plans the lane's next frame. A
flush before the job's end keeps up to ``WINDOW_LAG`` newest frames back, as
they are, to be pruned again at the next flush against a newer frame
(:func:`wfst.cuda_window_plan.frames_kept_back`). The packed windows go to a
region of the group's inbox ring (:meth:`wfst.cuda_lattice.LatticeStore.reserve`)
on the window stream while the device searches the next step; the host queues
them to the lattice workers before it queues the group's next packing (so one
packed buffer on the device serves: the copy is done when the host reads it,
the host is done when the device writes it again), and the workers read them
where they arrived. A lane whose job ended takes the next one at its group's
next step.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from lattice.errors import LatticeError
from lattice.lattice import Lattice

from . import cuda_kernels_launch as K
from . import cuda_layout as layout
from .cuda_lattice import negative_cycle_error
from .cuda_lane_steps import LOST, NEGATIVE_CYCLE, SEARCHED, close_step, overflowing, set_lane_params
from .result import Result

if TYPE_CHECKING:
    from .cuda_backend import CudaDecoder, LaneJob

SEARCH_SLOT, STORE_SLOT = 0, 1
"""The pinned slots (``DeviceArrays.host_params``) the search and the step's end
upload the step's parameters from, each inside its launch graph. A slot is
written again only after the host waited for the step's counters, so its last
upload has run (the search's ran before them; the last store's before the search)."""

_FIELD_OF_OVERFLOW = {layout.OVF_TOKENS: "token_queue_capacity", layout.OVF_HASH: "token_queue_capacity",
                      layout.OVF_LINKS: "arc_queue_capacity"}


def abandoned_result(frames: int) -> Result:
    """The Result of an utterance given up after a queue overflow: no words,
    cost inf and an empty lattice, as the CPU's when no token survives."""
    return Result(words=(), cost=float("inf"), graph_cost=float("inf"), acoustic_cost=float("inf"),
                  reached_final=False, alignment=np.zeros(frames, np.int32), word_frames=(),
                  lattice=Lattice.empty())


def split_lanes(lanes: int, groups: int) -> list[tuple[int, int]]:
    """(first lane, lanes) of each of ``groups`` groups of consecutive lanes,
    as even as can be, the larger first."""
    size, extra = divmod(lanes, groups)
    bounds, first = [], 0
    for k in range(groups):
        n = size + (k < extra)
        bounds.append((first, n))
        first += n
    return bounds


class LaneGroup:
    """Lanes ``first .. first + lanes - 1`` of ``decoder`` (group ``index``),
    whose ``arrays`` are the decoder's cut to them
    (:meth:`wfst.cuda_memory.DeviceArrays.lanes_view`), stepped on the
    ``compute`` and ``windows`` streams; made for one run (it refers to the
    decoder, which must not refer to it: a cycle would keep the device memory
    of a deleted decoder until the next garbage collection). :meth:`begin` takes a
    run's shared job queue and the group's spare channels; then the decoder
    alternates :meth:`launch` (the next step's search, if any lane has work)
    and :meth:`step` (the rest of the searched step), and calls :meth:`drain`
    at the end. Outcomes go to the jobs; ``overflowed`` collects the queues
    named in the run's capacity notes."""

    def __init__(self, decoder: CudaDecoder, index: int, first: int, lanes: int, arrays, compute, windows):
        self.decoder = decoder
        self.cupy = decoder.cupy
        self.config = decoder.config
        self.index, self.first = index, first
        self.geometry = dataclasses.replace(decoder.geometry, lanes=lanes)
        self.arrays = arrays
        self.compute, self.windows = compute, windows
        self.windows_done = None  # the event of the last flush's window work and copy (it moves the pools)

    # ------------------------------------------------------------- a run
    def begin(self, queue: deque, spares: list[int]) -> None:
        """Per-lane state for a run; jobs come from ``queue`` (shared with the other groups)."""
        L, g = self.geometry.lanes, self.geometry
        self.queue, self.spares = queue, spares
        self.lane_job: list[LaneJob | None] = [None] * L
        self.busy = np.zeros(L, bool)
        self.row = np.zeros(L, np.int64)  # row to search next; -1: the start frame
        self.rows = np.zeros(L, np.int64)  # rows of the lane's job
        self.on_host = np.zeros(L, bool)  # scores staged from host memory
        self.params = np.zeros((L, layout.LANE_PARAMS), np.int64)
        self.window_frames = np.zeros(L, np.int64)  # frames in each lane's lattice window (after the kept ones)
        self.window_sizes = np.zeros((L, g.W, 2), np.int64)  # tokens and links of each of them (0 beyond)
        self.window_starts = np.zeros(L, bool)  # the pool begins with its utterance's start frame
        self.kept_frames = np.zeros(L, np.int64)  # frames the lane's flushes kept in its pool
        self.kept_sizes = np.zeros((L, 2), np.int64)  # their tokens and links (as the device reports them)
        self.finishing = np.zeros(L, bool)  # the lane's job ends its utterance and final costs count
        self.overflowed: set[str] = set()
        self.pending = None  # the last step's flushed windows and ended jobs, for _append
        self.searching = False

    def launch(self) -> bool:
        """Give free lanes the next jobs and launch the search of the next frame
        of every busy lane; False when no lane has work."""
        if self.queue and not self.busy.all():
            self._assign()
        if not self.busy.any():
            return False
        with self.compute:
            self._set_lane_params()
            self._stage_params(self.params, SEARCH_SLOT)
            self._search_frame()
        self.searching = True
        return True

    def step(self) -> None:
        """The rest of the step launched last: append the previous step's windows
        (the host works while the GPU searches), read the counters, search the
        overflowed lanes again, plan the windows, launch the step's end and the
        flushes, and note the jobs that ended."""
        g = self.geometry
        if self.pending is not None:
            self._append(self.pending)
            self.pending = None
        counters = self._retry_overflows(self._counters())
        *entries, words, flushing, held_back, early, ended_lanes, how, expanded, frames = close_step(
            counters, self.busy, self.row, self.rows, self.finishing, self.params, self.window_frames,
            self.window_sizes, self.window_starts, self.kept_frames, self.kept_sizes, g.window_period, g.window_lag,
            g.Q, g.X, g.WT, g.WX, g.TF, self.arrays.packed.size)
        stats = self.decoder.stats
        stats["windows"] += flushing
        stats["windows_kept"] += entries[2].size
        stats["held_back"] += held_back
        stats["early_sends"] += early
        arrived = self._finish_step_on_device(words)
        done = []  # (job, how it ended) for the jobs whose last frame this was
        for lane, outcome in zip(ended_lanes.tolist(), how.tolist()):
            job = self.lane_job[lane]
            if outcome == NEGATIVE_CYCLE:
                job.error = negative_cycle_error(job.first_frame + int(self.row[lane]))  # (row, advanced: the frame)
            done.append((job, outcome))
            self.lane_job[lane] = None
            if job.borrowed:
                self.spares.append(job.channel)
        stats["expanded"] += expanded
        stats["frames"] += frames
        stats["steps"] += 1
        self.pending = (arrived, entries, done)
        self.searching = False

    def drain(self) -> None:
        """Append the last step's windows and finish its jobs."""
        if self.pending is not None:
            self._append(self.pending)
            self.pending = None

    # ------------------------------------------------------------- the parts of a step
    def _assign(self):
        """Give free lanes the next jobs (a job without a channel waits for a spare one)."""
        d = self.arrays
        params = self.params
        for lane in np.flatnonzero(~self.busy):
            while self.queue:
                job = self.queue[0]
                if not job.start and job.source.frames == 0:  # nothing to search
                    self.queue.popleft()
                    continue
                if job.channel is None:
                    if not self.spares:
                        return
                    job.channel = self.spares.pop()
                    job.borrowed = True
                self.queue.popleft()
                self.lane_job[lane] = job
                self.busy[lane] = True
                self.row[lane] = -1 if job.start else 0
                self.rows[lane] = job.source.frames
                self.finishing[lane] = job.finish and self.config.use_final_probs
                source = job.source
                self.on_host[lane] = not source.on_device
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

    def _set_lane_params(self):
        """Modes and score rows of this step; host scores staged every F rows."""
        d, g = self.arrays, self.geometry
        runtime = self.cupy.cuda.runtime
        for lane in set_lane_params(self.params, self.busy, self.row, self.on_host, g.F).tolist():
            r = int(self.row[lane])
            scores = self.lane_job[lane].source.array[r:r + g.F, :g.P]
            host = d.host_staging[lane]  # pinned; its last upload was done by the time of the step's counters
            host[:scores.shape[0], :scores.shape[1]] = scores
            runtime.memcpyAsync(d.staging[lane].data.ptr, host.ctypes.data, host.nbytes,
                                runtime.memcpyHostToDevice, self.compute.ptr)

    def _stage_params(self, params: np.ndarray, slot: int):
        """Write ``params`` into pinned slot ``slot``, which the search's (or the
        store's) launch graph copies to the device (see :data:`SEARCH_SLOT`)."""
        self.arrays.host_params[slot][...] = params

    def _issue_params(self, slot: int):
        d = self.arrays
        runtime = self.cupy.cuda.runtime
        host = d.host_params[slot]
        runtime.memcpyAsync(d.params.data.ptr, host.ctypes.data, host.nbytes, runtime.memcpyHostToDevice,
                            self.cupy.cuda.get_current_stream().ptr)

    def _search_frame(self):
        self.decoder.launch_graphs.run(("search", self.index, self.first, self.geometry), self.compute,
                                       self._issue_search)

    def _issue_search(self):
        """The step's parameters up, the search, its counters down (to the pinned copy)."""
        d, g, c = self.arrays, self.geometry, self.config
        from .cpu_search import BEAM_DELTA

        self._issue_params(SEARCH_SLOT)
        K.frame_prologue(d, g, self.decoder.graph.fst.start, c.beam, c.max_active, c.min_active, BEAM_DELTA)
        K.emitting_expansion(d, g, c.acoustic_scale)
        K.epsilon_closure(d, g)
        K.resolve_ties(d, g)
        self.decoder._copy_to_host(d.host_counters, d.counters, d.counters.nbytes,
                                   self.cupy.cuda.get_current_stream())

    def _counters(self) -> np.ndarray:
        """The counters of the search launched last (copied to the host by its graph)."""
        self.decoder._wait_for(self.compute)
        return self.arrays.host_counters.copy()

    def _retry_overflows(self, counters):
        """Search the lanes whose queues overflowed again, with a tighter beam,
        until none overflows or they reach the tightest; the counters then."""
        g, params = self.geometry, self.params
        tighten = np.zeros(g.lanes, np.int64)
        while True:
            count, bad = overflowing(counters, params, tighten, g.Q, g.X)
            if not count:
                return counters
            flags = counters[bad, layout.C_OVERFLOW]
            for bit, field in _FIELD_OF_OVERFLOW.items():
                if np.any(flags & bit):
                    self.overflowed.add(field)
            self.decoder.stats["retries"] += count
            tighten[bad] += 1
            ran = (params[:, layout.P_MODE] == layout.MODE_START) | (params[:, layout.P_MODE] == layout.MODE_EMIT)
            retry = params.copy()
            retry[ran & ~bad, layout.P_MODE] = layout.MODE_RETRY_SKIP
            retry[:, layout.P_TIGHTEN] = tighten
            with self.compute:  # (the store's graph uploads the step's own parameters again)
                self._stage_params(retry, SEARCH_SLOT)
                self._issue_params(SEARCH_SLOT)  # before reset_lanes, which reads the modes
                K.reset_lanes(self.arrays, g)
                self._search_frame()
                new = self._counters()
            counters[bad] = new[bad]

    def _finish_step_on_device(self, words):
        """The step's last kernels, and the copy of ``words`` packed words into
        a region of the group's inbox ring, which it returns (None: no flush).
        The flushing lanes' window work and the copy run on the window stream,
        beside the next step's search, from a copy of this step's parameters;
        the next step's window_store waits for them (they move the pools). The
        packed buffer is free again: the host waited for its last copy before
        this call."""
        d, g = self.arrays, self.geometry
        graphs = self.decoder.launch_graphs
        assert words <= d.packed.size, "the flush plan exceeds the packed buffer"  # see plan_windows
        self._stage_params(self.params, STORE_SLOT)
        if self.windows_done is not None:
            self.compute.wait_event(self.windows_done)
        graphs.run(("store", self.index, self.first, g), self.compute, self._issue_store)
        if not words:
            graphs.run(("reset", self.index, self.first, g), self.compute, self._issue_reset)
            return None
        stored = self.compute.record()
        graphs.run(("reset", self.index, self.first, g), self.compute, self._issue_reset)
        self.windows.wait_event(stored)
        graphs.run(("pack", self.index, self.first, g), self.windows, self._issue_pack)
        region = self.decoder.lattices.reserve(words, self.index)
        self.decoder._copy_to_host(region, d.packed, 4 * words, self.windows)
        self.windows_done = self.windows.record()
        return region

    def _issue_store(self):
        """The step's parameters up (with the window slots planned), its frame
        into the lanes' windows, and the parameters copied for the window stream
        (which has finished with the last copy: the compute stream waited for it)."""
        d = self.arrays
        self._issue_params(STORE_SLOT)
        K.window_store(d, self.geometry)
        runtime = self.cupy.cuda.runtime
        runtime.memcpyAsync(d.window_params.data.ptr, d.params.data.ptr, d.params.nbytes,
                            runtime.memcpyDeviceToDevice, self.cupy.cuda.get_current_stream().ptr)

    def _issue_reset(self):
        K.save_frontier(self.arrays, self.geometry)
        K.reset_lanes(self.arrays, self.geometry)

    def _issue_pack(self):
        """The flushing lanes' windows pruned; the sending lanes' packed, the
        keeping lanes' compacted in their pools; the frames each keeps back moved
        after what stays."""
        d, g = self.arrays, self.geometry
        K.window_prune(d, g, self.config.lattice_beam, self.config.use_final_probs)
        K.window_number(d, g)
        K.window_offsets(d, g, d.packed)
        K.window_pack(d, g, d.packed)
        K.window_compact(d, g)

    def _append(self, pending):
        """Note the pool sizes the keeping lanes of a step's flushes report and
        append its sent windows (packed as ``window_offsets`` says) to the
        lattices, then finish the jobs that ended."""
        packed, (channels, starts, keepers), done = pending
        decoder = self.decoder
        if packed is not None:
            decoder._wait_for(self.windows_done)  # (the flush's copy)
            g = self.geometry
            E, R = channels.size, keepers.size
            T, Kn = int(packed[0]), int(packed[1])
            at = layout.WINDOW_HEADER + 2 * R
            pools = packed[layout.WINDOW_HEADER:at].reshape(R, 2).astype(np.int64)
            counts = packed[at:at + 3 * E].reshape(E, 3).astype(np.int64)
            n, nl, ne = counts[:, 0], counts[:, 1], counts[:, 2]
            if (np.any(counts < 0) or np.any(ne > nl) or n.sum() != T or nl.sum() != Kn
                    or np.any(pools < 0) or np.any(pools > [g.WT, g.WX])
                    or at + 3 * E + 3 * T + 5 * Kn > packed.size):
                raise LatticeError("lattice windows from the device: counts that do not add up")
            self.kept_sizes[keepers] = pools
            if E:
                decoder.lattices.append(channels, packed[at + 3 * E:], T, Kn, np.cumsum(n) - n, n,
                                        np.cumsum(nl) - nl, nl, ne, starts, ring=self.index)
        for job, how in done:
            if how == LOST:
                job.lost = True
                if job.finish:
                    job.result = abandoned_result(job.first_frame + job.source.frames)
            elif how == SEARCHED and job.finish:
                job.result = decoder.lattices.finish_later(job.channel)
