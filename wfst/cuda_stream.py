"""A stream's search on the CUDA backend, with the interface :class:`wfst.Stream`
uses (that of :class:`wfst.cpu_backend.CpuSearch`): ``accept``, ``finish``,
``frontier`` and ``num_frames``.

Between chunks the stream's frontier (token states and costs) stays on the
device, in the channel the stream holds; its lattice so far lives on the host,
in the same channel of the backend's :class:`wfst.cuda_lattice.LatticeStore`
(the CPU's arrays). The first chunk's
job starts the utterance (the start token's epsilon closure); later jobs read
the channel. :func:`accept_chunks` runs the chunks of many streams as one
:meth:`wfst.cuda_backend.CudaDecoder.run`: a lane per stream, one launch
sequence per frame for all of them.
"""

from __future__ import annotations

import numpy as np

from .cpu_search import SearchArrays
from .cuda_backend import CudaDecoder, LaneJob, warn_capacity
from .cuda_lane_group import abandoned_result
from .cuda_scores import ScoreInput, score_input
from .errors import GraphError
from .result import Result


class CudaStreamSearch:
    """One stream's search state on the CUDA backend, on ``channel``."""

    def __init__(self, backend: CudaDecoder, channel: int):
        self._backend = backend
        self.channel = channel
        self.started = False
        self.lost = False
        self.num_frames = 0

    def job(self, source: ScoreInput) -> LaneJob:
        """The lane job that searches ``source``'s rows after the frames so far."""
        return LaneJob(source, start=not self.started, finish=False, channel=self.channel,
                       first_frame=self.num_frames, name=f"the stream on channel {self.channel}")

    def done(self, job: LaneJob) -> GraphError | None:
        """Take a finished job's outcome; the search error, if any."""
        if job.error is not None:
            return job.error
        self.started = True
        self.lost = self.lost or job.lost
        self.num_frames += job.source.frames
        return None

    def accept(self, source: ScoreInput) -> None:
        error = accept_chunks([self], [source])[0]
        if error is not None:
            raise error

    def frontier(self) -> tuple[SearchArrays, int, int]:
        """The lattice arrays and the token range of the last accepted frame
        (empty when the stream was lost to a queue overflow)."""
        self._start()
        with self._backend.turn():
            arrays = self._backend.lattices.arrays(self.channel)
        if self.lost:
            return arrays, 0, 0
        return arrays, int(arrays.tok_start[self.num_frames]), int(arrays.tok_start[self.num_frames + 1])

    def finish(self) -> Result:
        self._start()
        if self.lost:
            return abandoned_result(self.num_frames)
        with self._backend.turn():
            return self._backend.lattices.finish(self.channel)

    def _start(self) -> None:
        """Search the start frame now if no chunk has (``partial()`` or ``finish()``
        before any rows)."""
        if not self.started:
            self.accept(score_input(np.zeros((0, 1), np.float32), self._backend.graph.num_columns,
                                    device_id=self._backend.device.id))


def accept_chunks(searches: list[CudaStreamSearch], sources: list[ScoreInput]) -> list[GraphError | None]:
    """Search every stream's chunk in one run of their common backend; for each
    stream, the GraphError that ended it or None. A lost stream's chunks are
    only counted (its channel holds no usable frontier); if the run raises,
    every stream of the batch is marked lost."""
    if not searches:
        return []
    searching = [i for i, search in enumerate(searches) if not search.lost]
    jobs = {i: searches[i].job(sources[i]) for i in searching}
    backend = searches[0]._backend
    try:
        notes = backend.run(list(jobs.values()))
    except BaseException:
        for search in searches:
            search.lost = True
        raise
    out = []
    for i, (search, source) in enumerate(zip(searches, sources)):
        if i in jobs:
            out.append(search.done(jobs[i]))
        else:
            search.num_frames += source.frames
            out.append(None)
    warn_capacity(notes)
    return out
