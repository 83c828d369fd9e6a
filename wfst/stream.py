"""Streaming: one utterance decoded chunk by chunk, with partial results.

::

    decoder = wfst.Decoder(fst, config, device="cpu", channels=64)
    stream = decoder.stream()
    for chunk in chunks:                 # (frames x columns) score rows as they arrive
        stream.accept(chunk)
        print(stream.partial().words)    # best path so far, final costs not applied
    result = stream.finish()             # the Result offline decode() gives, bit for bit

    # many streams, one step (a thread pool on the CPU, one launch sequence on the GPU):
    partials = decoder.advance([(s1, chunk1), (s2, chunk2)])

A stream holds one of the decoder's channels from :meth:`wfst.Decoder.stream`
until :meth:`Stream.finish` or :meth:`Stream.close` (or until it is garbage
collected, if it was dropped while open, or its decoder is closed). Chunks of any size (zero
rows included) give the same final result as one matrix. A stream serves one
thread at a time: a call while another thread's call on the same stream is in
progress is a :class:`StreamError` (streams of one decoder may be used from
different threads).
"""

from __future__ import annotations

import math
import threading
import weakref
from concurrent.futures import wait
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from . import cpu_search
from .cpu_backend import CpuSearch
from .endpoint import EndpointConfig, final_relative_cost
from .errors import ConfigError, DecoderClosedError, GraphError, ScoresError, StreamError
from .result import Result
from .scores import host_scores
from .stream_partial import BestPathTracker, Partial

if TYPE_CHECKING:
    from .decoder import Decoder

OPEN, FINISHED, CLOSED = "open", "finished", "closed"


class Stream:
    """One utterance decoded as its score rows arrive; made by
    :meth:`wfst.Decoder.stream`, usable as a context manager (closed on exit).

    channel: the decoder channel this stream holds while open.
    state: ``"open"``, ``"finished"`` or ``"closed"``.
    partial_steps: back-pointers walked by all :meth:`partial` calls so far (the
        cost of partial results: it grows with the changed suffixes of the best
        path, not with the utterance length).

    One thread at a time: any call while another thread's call on the same
    stream is in progress raises :class:`StreamError` and changes nothing.
    """

    def __init__(self, decoder: Decoder, endpoint: EndpointConfig | None = None):
        if endpoint is not None and not isinstance(endpoint, EndpointConfig):
            raise ConfigError(f"endpoint must be a wfst.EndpointConfig or None, got {type(endpoint).__name__}")
        fst = decoder.graph.fst
        self._decoder = decoder
        self._calls = decoder._calls  # (kept after the stream ends, unlike the decoder)
        self._endpoint = endpoint
        self.state = OPEN
        self.channel = decoder._acquire_channel()
        # frees the channel once: at finish()/close(), or when an open stream is garbage-collected
        self._free_channel = weakref.finalize(self, decoder._release_channel, self.channel)
        try:
            if decoder._cuda is None:
                self._search = CpuSearch(decoder.graph, decoder.config)
            else:
                from .cuda_stream import CudaStreamSearch

                self._search = CudaStreamSearch(decoder._cuda, self.channel)
        except BaseException:
            self._free_channel()  # the error's traceback would keep this half-made stream, and its channel
            raise
        silence = None if endpoint is None else endpoint.silence_mask(fst.max_ilabel)
        self._tracker = BestPathTracker(fst.ilabel, fst.olabel, fst.start, silence)
        self._partial = Partial((), 0.0, -1)
        self._width: int | None = None
        self._frames_at_release = 0
        self._busy = threading.Lock()  # held by the call in progress (see _one_caller)
        decoder._streams.add(self)

    @property
    def num_frames(self) -> int:
        """Score rows accepted so far."""
        search = self._search  # (read once: a finish() on another thread may let it go)
        return self._frames_at_release if search is None else search.num_frames

    @property
    def partial_steps(self) -> int:
        return self._tracker.steps

    def accept(self, chunk) -> None:
        """Decode the score rows of ``chunk`` (frames x columns, float16/32/64;
        numpy, cupy or torch; as for :meth:`wfst.Decoder.decode`). Every chunk of
        a stream must have the same number of columns.

        Raises :class:`ScoresError` for a bad chunk (nothing is consumed: the
        stream can go on with a good one), :class:`StreamError` when the stream is
        no longer open, :class:`GraphError` (and closes the stream) when the
        search meets a negative-cost epsilon cycle."""
        with self._one_caller("accept()"):
            self._run(self._checked(chunk))

    def partial(self) -> Partial:
        """The best path after the frames accepted so far (final costs not
        applied); cheap to call after every chunk."""
        with self._one_caller("partial()"):
            self._require_open("partial()")
            return self._current_partial()

    def _current_partial(self) -> Partial:
        frames = self.num_frames
        if self._partial.num_frames != frames:
            a, first, end = self._frontier()
            fst = self._decoder.graph.fst
            best = cpu_search._best_frontier_token(a.tok_state, a.tok_cost, first, end, fst.final, False)
            if best < 0:  # no token survived: nothing can follow
                self._partial = Partial((), math.inf, frames)
            else:
                self._tracker.update(int(best), frames, a.tok_state, a.tok_best, a.link_src, a.link_arc)
                self._partial = Partial(self._tracker.words, float(a.tok_cost[best]), frames)
        return self._partial

    def endpoint_detected(self) -> bool:
        """Whether the stream's :class:`wfst.EndpointConfig` rules say the
        utterance has ended (see :mod:`wfst.endpoint`); needs a stream made with
        ``decoder.stream(endpoint=...)``."""
        if self._endpoint is None:
            raise StreamError("endpoint_detected() needs a stream made with decoder.stream(endpoint="
                              "wfst.EndpointConfig(...))")
        with self._one_caller("endpoint_detected()"):
            self._require_open("endpoint_detected()")
            self._current_partial()
            a, first, end = self._frontier()
            relative = final_relative_cost(a.tok_state[first:end], a.tok_cost[first:end],
                                           self._decoder.graph.fst.final)
            return self._endpoint.detected(self.num_frames, self._tracker.trailing_silence, relative)

    def finish(self) -> Result:
        """The utterance's :class:`wfst.Result` (final costs, lattice), exactly as
        offline :meth:`wfst.Decoder.decode` of all accepted rows; frees the
        channel. The stream cannot be used afterwards."""
        with self._one_caller("finish()"):
            self._require_open("finish()")
            try:
                return self._search.finish()
            finally:
                self._release(FINISHED)

    def close(self) -> None:
        """Abandon the utterance and free the channel (no-op when not open;
        :class:`StreamError` while another thread's call on it is in progress)."""
        with self._one_caller("close()"):
            self._close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Stream(channel={self.channel}, state={self.state!r}, frames={self.num_frames})"

    # ---------------------------------------------------------------- internal
    @contextmanager
    def _one_caller(self, what: str):
        """Hold the stream for one call: its search state is not shared, so a
        call from another thread meanwhile is a StreamError, never a mixed state.
        The call is one of its decoder's calls in progress (which
        :meth:`wfst.Decoder.close` waits for); once the decoder is closed, the
        stream is closed and every call but close() raises DecoderClosedError."""
        if not self._busy.acquire(blocking=False):
            raise StreamError(f"{what}: another thread is using this stream right now; a stream serves one thread "
                              "at a time (give each thread its own stream, or hold a lock around its calls)")
        try:
            with ExitStack() as held:
                try:
                    held.enter_context(self._calls.call(what))
                except DecoderClosedError:
                    self._close()  # its channel went with the decoder
                    if what != "close()":
                        raise
                yield
        finally:
            self._busy.release()

    def _checked(self, chunk, name: str = "chunk"):
        """``chunk`` checked for this open stream (changes nothing): float32 rows
        on the CPU backend, a :class:`wfst.cuda_scores.ScoreInput` on the GPU."""
        self._require_open("accept()")
        num_columns = self._decoder.graph.num_columns
        if self._decoder._cuda is None:
            scores = host_scores(chunk, num_columns, name=name)
        else:
            from .cuda_scores import score_input

            scores = score_input(chunk, num_columns, name=name, device_id=self._decoder._cuda.device.id)
        frames, width = _shape(scores)
        if frames and self._width is not None and width != self._width:
            raise ScoresError(f"{name} has {width} columns but this stream's earlier chunks had "
                              f"{self._width}: every chunk of a stream comes from the same model output")
        return scores

    def _step(self, scores) -> Partial:
        """Decode rows from :meth:`_checked`, then the partial result (what one
        stream does in :meth:`wfst.Decoder.advance` on the CPU)."""
        self._run(scores)
        return self._current_partial()

    def _run(self, scores) -> None:
        if _shape(scores)[0] == 0:
            return
        try:
            self._search.accept(scores)
        except GraphError:
            self._close()
            raise
        self._width = _shape(scores)[1]

    def _frontier(self):
        """The search arrays and the token range ``first:end`` of the last
        accepted frame (the frontier). On the GPU this may search the start
        frame first: a negative-cost epsilon cycle there closes the stream."""
        try:
            return self._search.frontier()
        except GraphError:
            self._close()
            raise

    def _require_open(self, what: str) -> None:
        if self.state != OPEN:
            raise StreamError(f"{what} on a {self.state} stream (channel {self.channel} was freed); "
                              "open a new one with decoder.stream()")

    def _close(self) -> None:
        if self.state == OPEN:
            self._release(CLOSED)

    def _release(self, state: str) -> None:
        self.state = state
        self._frames_at_release = self._search.num_frames
        self._search = None  # the search arrays can be large: let them go
        self._decoder = None  # nor does a stream kept after its end keep the decoder (device memory, threads)
        self._free_channel()


def advance_streams(decoder: Decoder, pairs, pool=None) -> list[Partial]:
    """:meth:`wfst.Decoder.advance`: check every ``(stream, chunk)`` pair, then
    decode each chunk and take its stream's partial result (on the CPU on
    ``pool``, a ``concurrent.futures`` executor, when given), holding every
    stream for the call."""
    try:
        pairs = list(pairs)
    except TypeError:
        raise StreamError(f"advance() takes a list of (stream, chunk) pairs, got {type(pairs).__name__}") from None
    with ExitStack() as held:
        streams, checked, seen = [], [], set()
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise StreamError(f"pairs[{i}] must be a (stream, chunk) pair, got {type(pair).__name__}"
                                  + (f" of {len(pair)}" if isinstance(pair, (tuple, list)) else ""))
            stream, chunk = pair
            if not isinstance(stream, Stream) or stream._calls is not decoder._calls:
                raise StreamError(f"pairs[{i}]: not a stream of this decoder (make it with decoder.stream())")
            if id(stream) in seen:
                raise StreamError(f"pairs[{i}]: the same stream twice in one advance(); concatenate its chunks")
            seen.add(id(stream))
            held.enter_context(stream._one_caller(f"pairs[{i}]"))
            streams.append(stream)
            checked.append(stream._checked(chunk, name=f"pairs[{i}] chunk"))

        def step(i):
            try:
                return streams[i]._step(checked[i])
            except GraphError as error:  # the stream is closed; the others still advance
                return error

        if decoder._cuda is not None:
            out = _advance_on_gpu(streams, checked)
        elif pool is None or len(pairs) < 2:
            out = [step(i) for i in range(len(pairs))]
        else:  # every step ends before the streams are let go, whatever one raises
            futures = [pool.submit(step, i) for i in range(len(pairs))]
            wait(futures)
            out = [future.result() for future in futures]
        for o in out:
            if isinstance(o, GraphError):
                raise o
        return out


def _advance_on_gpu(streams: list[Stream], checked: list) -> list:
    """Every stream's chunk in one run of the CUDA backend (a lane each, one
    launch sequence per frame), then each stream's partial result or the
    GraphError that closed it."""
    from .cuda_stream import accept_chunks

    moving = [i for i, scores in enumerate(checked) if _shape(scores)[0] or not streams[i]._search.started]
    errors = accept_chunks([streams[i]._search for i in moving], [checked[i] for i in moving])
    out: list = [None] * len(streams)
    for i, error in zip(moving, errors):
        if error is not None:
            streams[i]._close()
            out[i] = error
        elif _shape(checked[i])[0]:
            streams[i]._width = _shape(checked[i])[1]
    return [o if o is not None else s._current_partial() for o, s in zip(out, streams)]


def _shape(scores) -> tuple[int, int]:
    """(frames, columns) of checked rows: a float32 matrix or a ScoreInput."""
    array = getattr(scores, "array", scores)
    frames = getattr(scores, "frames", array.shape[0])
    return int(frames), int(array.shape[1]) if array.ndim == 2 else 0
