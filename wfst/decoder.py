"""``wfst.Decoder``: the public entry point, one object for both backends."""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .call_gate import CallGate
from .config import DecoderConfig, available_cores, checked_config
from .cpu_backend import CpuSearch
from .csr import CsrFst
from .decoding_graph import DecodingGraph
from .errors import ConfigError
from .result import Result
from .scores import host_scores
from .stream import Stream, advance_streams
from .stream_channels import ChannelPool
from .stream_partial import Partial

DEVICES = ("auto", "cpu", "cuda")
DEFAULT_CPU_CHANNELS = 256
"""Open streams a CPU decoder allows when ``channels`` is not given (each holds its
utterance's search state and lattice so far: about 1 MB per minute of audio)."""


class Decoder:
    """Decode score matrices against one graph.

    fst: the decoding graph (:class:`wfst.CsrFst`, e.g. from :func:`wfst.read_fst`).
    config: search settings (:class:`wfst.DecoderConfig`; defaults if None).
    device: ``"cpu"`` (numba), ``"cuda"``, or ``"auto"`` (CUDA when cupy and a GPU
        are present, else CPU).
    pdf_map: optional int array, input label -> score column (Kaldi transition-id
        to pdf); without it, input label ``i`` reads column ``i - 1``.
    threads: CPU backend: threads decoding a batch (one utterance per thread at
        a time; numba releases the GIL; default 1). CUDA backend: host threads
        that append the lattice segments the device sends, prune finished
        utterances' lattices and make their Results, each for its share of the
        channels, while the GPU searches on (default: the cores available, as
        Kaldi's CUDA pipeline does: this host work grows with the tokens per
        frame like the search does, so at hundreds of lanes it needs many cores
        to keep up with the GPU; fewer threads leave cores to other work).
    lanes: CUDA only: utterances (or stream chunks) searched at once, one frame
        of each per launch sequence (default: as many as fit in 90% of the free
        device memory, at most 256).
    channels: the most open streams. On CUDA each channel is device memory
        for one utterance's frontier (default ``lanes``); an offline
        :meth:`decode` borrows up to ``lanes`` of the free ones while it runs.
        All device memory is allocated here, as :func:`wfst.budget` predicts;
        :class:`MemoryBudgetError` if it does not fit. On the CPU, ``channels``
        only caps the open streams (default 256).

    :meth:`close` (or leaving a ``with wfst.Decoder(...) as decoder:`` block)
    lets go of the threads and memory now; otherwise they go with the last
    reference to the decoder.
    """

    def __init__(self, fst: CsrFst, config: DecoderConfig | None = None, device: str = "auto", pdf_map=None,
                 threads: int | None = None, lanes: int | None = None, channels: int | None = None):
        config = checked_config(config)
        if device not in DEVICES:
            raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
        for name, value in (("threads", threads), ("lanes", lanes), ("channels", channels)):
            whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            if value is not None and not (whole and value >= 1):
                raise ConfigError(f"{name} must be an integer >= 1 or None, got {value!r}")
        threads, lanes, channels = (None if v is None else int(v) for v in (threads, lanes, channels))
        self.graph = DecodingGraph(fst, pdf_map)
        self.config = config.validate()
        self.device = _pick_device(device)
        if threads is None:
            threads = 1 if self.device == "cpu" else available_cores()
        self.threads = threads
        self._cuda = None
        self._calls = CallGate()  # the calls in progress, which close() waits for
        self._streams: weakref.WeakSet[Stream] = weakref.WeakSet()  # open ones, which close() closes
        self._closing = threading.Lock()
        self._released = False  # whether close() has let go of everything
        self._stream_pool = None  # the CPU's threads for advance() (they start on first use)
        if self.device == "cpu":
            self._channel_pool = ChannelPool(DEFAULT_CPU_CHANNELS if channels is None else channels)
            if threads > 1:
                self._stream_pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wfst-stream")
        if self.device == "cuda":
            from .cuda_backend import CudaDecoder

            self._cuda = CudaDecoder(self.graph, self.config, lanes=lanes, channels=channels, pdf_map=pdf_map,
                                     threads=threads)
            self._channel_pool = self._cuda.channels

    @property
    def fst(self) -> CsrFst:
        """The decoding graph the decoder was made with."""
        return self.graph.fst

    def decode(self, scores) -> Result | list[Result]:
        """Decode one score matrix (frames x columns; float16, float32 or
        float64; numpy, cupy or torch) or a list of them; returns a Result or a list in order.
        Column ``i - 1`` (or ``pdf_map[i]``) holds the log-likelihood of input
        label ``i``. Every matrix is checked before any decoding starts. On CUDA,
        :class:`StreamError` when open streams hold every channel."""
        with self._calls.call("decode()"):
            return self._decode(scores)

    def _decode(self, scores) -> Result | list[Result]:
        single = not isinstance(scores, (list, tuple))
        batch = [scores] if single else list(scores)
        if self._cuda is not None:
            from .cuda_scores import score_input

            inputs = [score_input(s, self.graph.num_columns, name=f"scores[{i}]" if not single else "scores",
                                  device_id=self._cuda.device.id) for i, s in enumerate(batch)]
            results = self._cuda.decode(inputs)
            return results[0] if single else results
        checked = [host_scores(s, self.graph.num_columns, name=f"scores[{i}]" if not single else "scores")
                   for i, s in enumerate(batch)]
        if self.threads == 1 or len(checked) <= 1:
            results = [self._decode_one(s) for s in checked]
        else:
            with ThreadPoolExecutor(max_workers=min(self.threads, len(checked))) as pool:
                results = list(pool.map(self._decode_one, checked))
        return results[0] if single else results

    def __call__(self, scores) -> Result | list[Result]:
        """``decoder(scores)`` is ``decoder.decode(scores)``, as torchaudio's
        decoders are called."""
        return self.decode(scores)

    def stream(self, endpoint=None) -> Stream:
        """A new :class:`wfst.Stream` on a free channel, to feed score chunks as
        they arrive (see :mod:`wfst.stream`). ``endpoint``: optional
        :class:`wfst.EndpointConfig` for :meth:`Stream.endpoint_detected`.
        :class:`StreamError` when all ``channels`` hold open streams. A start
        state whose epsilon closure meets a cycle that float32 sums make
        negative is a :class:`GraphError`: here on the CPU, at the stream's first
        call on CUDA (which searches the start frame with the first chunk; the
        stream is then closed), as :meth:`decode` raises it on both."""
        with self._calls.call("stream()"):
            return Stream(self, endpoint)

    def advance(self, pairs) -> list[Partial]:
        """Decode one chunk for each of many streams, ``[(stream, chunk), ...]``
        (each stream at most once), as one batch: on ``threads`` threads when
        ``threads > 1``. Returns each stream's :class:`wfst.Partial` after its
        chunk, in order. Every pair is checked first: a bad chunk or stream raises
        (:class:`ScoresError`, :class:`StreamError`) before any stream moves."""
        with self._calls.call("advance()"):
            return advance_streams(self, pairs, self._stream_pool)

    def close(self) -> None:
        """Let go of the decoder's threads and memory now: its open streams
        are closed; on CUDA its device memory (back to the driver: CuPy's pools
        drop their unused blocks) and pinned host memory; on the CPU the
        packed copy of the graph its search reads (12 bytes an arc). Waits
        for calls in progress on other threads to return (called inside a
        call of this thread, e.g. from a signal handler, it lets go as that
        call returns). Afterwards every call on the decoder or its streams
        raises :class:`DecoderClosedError` (a stream's ``close()`` is a no-op);
        closing again does nothing. ``with wfst.Decoder(...) as decoder:``
        closes it at the block's end."""
        self._calls.close(self._let_go)

    def _let_go(self) -> None:
        """What :meth:`close` lets go of, once no call is in progress (once only)."""
        with self._closing:
            if self._released:
                return
            for stream in list(self._streams):
                # a stream held now is closed by its holder: a call refused meanwhile (it closes the stream), or
                # this thread's own call when close() ran inside it (the stream's next call closes it)
                if stream._busy.acquire(blocking=False):
                    try:
                        stream._close()
                    finally:
                        stream._busy.release()
            if self._stream_pool is not None:
                self._stream_pool.shutdown()
            if self._cuda is not None:
                self._cuda.close()
            self.graph.forget_host_layout()
            self._released = True

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._calls.closed

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _acquire_channel(self) -> int:
        """A free channel for a new stream (on CUDA, once no other call has the decoder)."""
        return self._channel_pool.acquire() if self._cuda is None else self._cuda.acquire_channel()

    def _release_channel(self, channel: int) -> None:
        """A stream's channel back to the pool (on CUDA, its host lattice let go too)."""
        if self._cuda is None:
            self._channel_pool.release(channel)
        else:
            self._cuda.release_channel(channel)

    def _decode_one(self, scores: np.ndarray) -> Result:
        search = CpuSearch(self.graph, self.config)
        search.accept(scores)
        return search.finish()

    def __repr__(self) -> str:
        closed = ", closed" if self.closed else ""
        return f"Decoder({self.fst!r}, device={self.device!r}, threads={self.threads}{closed})"


def _pick_device(device: str) -> str:
    if device == "cpu":
        return "cpu"
    from .gpu import device_memory, import_cupy

    if device == "cuda":
        import_cupy()  # ImportError with the install hint when cupy is missing
        if device_memory() is None:
            raise ConfigError("device='cuda' but no usable CUDA GPU was found (driver and device visible to "
                              "cupy?); use device='cpu' or 'auto' (wfst-decode: --device cpu or auto)")
        return "cuda"
    return "cuda" if device_memory() is not None else "cpu"
