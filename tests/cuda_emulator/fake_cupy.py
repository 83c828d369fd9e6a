"""A stand-in for the parts of CuPy the CUDA backend uses, backed by host
memory, whose ``RawModule`` runs the kernels on the CPU (:mod:`.build`).

Device arrays are numpy arrays of the subclass :class:`ndarray` (with
``.data.ptr``, ``.get``, ``.set`` and ``__cuda_array_interface__``). A stream
queues the launches and copies made on it and runs them in order only when it
must: when the host waits for it or for one of its events, when another
stream's queued work waits for one of its events, when the device is
synchronized, or, under :func:`schedule_streams` with a seed, also at random
moments after they were queued. So work that reads what another stream writes
without an event between them, or a host that reads pinned memory before it
waited for the copy, sees stale data here as it could on a GPU. Launches and
copies outside any stream (the legacy default stream) run at once. A stream's
graph capture records the launches and copies for its graph to run again;
``cupy.empty`` fills its memory with a poison byte so that a kernel reading
memory nobody wrote shows up. :func:`install` puts this module in
``sys.modules`` as ``cupy`` and ``cupyx``.
"""

from __future__ import annotations

import ctypes
import functools
import random
import sys
import time
import types
import weakref
from collections import deque

import numpy as np

from . import build

POISON = 0xA5
FREE_BYTES = 2 << 30
TOTAL_BYTES = 4 << 30
MULTIPROCESSORS = 2
BLOCKS_PER_SM = 4
"""The decoder's grid depth under the emulator, which runs a grid's blocks one after another on one core:
a deep grid buys nothing there and each block without work still costs its threads' start (the results do
not depend on the depth: test_cuda_graphs_and_deeper_grids_change_nothing)."""
DEVICE_NAME = b"wfst-gpu CUDA emulator (CPU)"


class _Pointer:
    def __init__(self, ptr: int):
        self.ptr = ptr


class ndarray(np.ndarray):  # noqa: N801 (CuPy's name)
    """A "device" array: host memory that kernels and the host both read."""

    device_id = 0  # the GPU holding it: a test sets another to see such scores refused

    @property
    def device(self):
        return _ArrayDevice(self.device_id)

    @property
    def data(self):
        return _Pointer(self.ctypes.data)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ctypes.data, False),
                "strides": self.strides, "version": 3}

    def get(self, stream=None, out=None):
        """As CuPy's: ``out`` a numpy array of the same dtype and shape, both contiguous."""
        if out is None:
            return np.array(self, copy=True).view(np.ndarray)
        _check_copy("get", self, out)
        np.copyto(out, self.view(np.ndarray))
        return out

    def set(self, array, stream=None):
        """As CuPy's: ``array`` a numpy array of the same dtype and shape, both contiguous."""
        _check_copy("set", self, array)
        np.copyto(self.view(np.ndarray), array)


class _ArrayDevice:
    """What ``ndarray.device`` gives: the id of the GPU holding the array."""

    def __init__(self, device_id: int):
        self.id = device_id


def _check_copy(what: str, device, host) -> None:
    if not isinstance(host, np.ndarray) or isinstance(host, ndarray):
        raise TypeError(f"{what}: the host side must be a numpy.ndarray, got {type(host).__name__}")
    if host.dtype != device.dtype:
        raise TypeError(f"{what}: dtype {host.dtype} != {device.dtype}")
    if host.shape != device.shape:
        raise ValueError(f"{what}: shape {host.shape} != {device.shape}")
    if not (device.flags.c_contiguous and host.flags.c_contiguous):
        raise RuntimeError(f"{what}: both sides must be contiguous")


def _device(array) -> ndarray:
    return array.view(ndarray)


def asarray(a, dtype=None):
    if isinstance(a, ndarray) and (dtype is None or a.dtype == dtype):
        return a
    return _device(np.array(a, dtype=dtype, copy=True))


def ascontiguousarray(a, dtype=None):
    return _device(np.ascontiguousarray(a, dtype=dtype))


def asnumpy(a):
    return np.array(a, copy=True).view(np.ndarray)


def empty(shape, dtype=np.float32):
    out = np.empty(shape, dtype)
    out.view(np.uint8).fill(POISON)
    return _device(out)


def zeros(shape, dtype=np.float32):
    return _device(np.zeros(shape, dtype))


def isfinite(a):
    return _device(np.isfinite(a))


def argwhere(a):
    return _device(np.argwhere(a))


def from_dlpack(a):
    raise TypeError("the CUDA emulator has no DLPack devices")


nan = np.nan


class _Synchronous:
    """Everything has already happened: synchronize and the context do nothing."""

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Event:
    """A point in a stream's queue: reached when the stream has run what was
    queued before it (``time``: when)."""

    def __init__(self, stream=None):
        self.stream, self.position, self.time = stream, 0, None
        if stream is None:
            self.time = time.perf_counter()

    def _reach(self):
        self.time = time.perf_counter()

    def synchronize(self):
        if self.stream is not None:
            self.stream._run_until(self.position)


def _get_elapsed_time(start: _Event, end: _Event) -> float:
    start.synchronize()
    end.synchronize()
    return 1e3 * (end.time - start.time)


_capture: list | None = None
"""While a stream captures a graph: the launches and copies it took instead of running them."""
_current: list = []
"""The streams entered with ``with``, innermost last."""
_queued: set = set()
"""Streams with queued work."""
_early: random.Random | None = None
"""Under schedule_streams(seed): when queued work also runs early."""


def _submit(run, stream=None):
    """Capture ``run``, or queue it on ``stream`` (default: the current stream;
    outside any, run it now)."""
    if _capture is not None:
        _capture.append(run)
        return
    (stream or _current_stream())._queue(run)


def schedule_streams(seed: int | None):
    """Queued work runs only when something waits for it (None, the default),
    or also, with a seeded chance after each queuing, some of any stream's
    queued work at once (in each stream's order)."""
    global _early
    _early = None if seed is None else random.Random(seed)


def _run_early():
    while _early is not None and _queued and _early.random() < 0.5:
        stream = _early.choice(sorted(_queued, key=lambda s: s.ptr))
        stream._run_until(stream._done + 1)


class _Graph:
    """A captured sequence: ``launch`` queues its launches and copies again, with the arguments they were given."""

    def __init__(self, runs: list):
        self.runs = runs

    def launch(self, stream=None):
        runs = self.runs
        _submit(lambda: [run() for run in runs], stream)


class _Stream:
    """A queue of launches and copies, run in order when waited for (see the module docstring); ``ptr``
    names it to ``memcpyAsync``."""

    _made = 0

    def __init__(self, non_blocking=False, _ptr=None):
        if _ptr is None:
            _Stream._made += 1
        self.ptr = _Stream._made if _ptr is None else _ptr
        _streams[self.ptr] = self
        self._pending: deque = deque()
        self._done = 0  # work run so far
        self._count = 0  # work queued so far

    def _queue(self, run):
        self._pending.append(run)
        self._count += 1
        _queued.add(self)
        _run_early()

    def _run_until(self, position):
        while self._done < position:
            run = self._pending.popleft()
            self._done += 1
            if not self._pending:
                _queued.discard(self)
            run()

    def synchronize(self):
        self._run_until(self._count)

    def __enter__(self):
        _current.append(self)
        return self

    def __exit__(self, *exc):
        _current.pop()
        return False

    def begin_capture(self, mode=None):
        global _capture
        if _capture is not None:
            raise RuntimeError("the CUDA emulator captures one stream at a time")
        _capture = []

    def end_capture(self):
        global _capture
        if _capture is None:
            raise RuntimeError("end_capture without begin_capture")
        graph, _capture = _Graph(_capture), None
        return graph

    def record(self):
        event = _Event(self)
        _submit(event._reach, self)
        event.position = self._count
        return event

    def wait_event(self, event):
        _submit(event.synchronize, self)


class _NullStream(_Stream):
    """The legacy default stream: its work runs at once."""

    def _queue(self, run):
        self._count += 1
        self._done += 1
        run()


_streams: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_NULL = _NullStream(_ptr=0)


def _current_stream():
    return _current[-1] if _current else _NULL


class _Device(_Synchronous):
    def __init__(self, device_id=0):
        if int(device_id) != 0:
            raise RuntimeError(f"the CUDA emulator has one device (0), not {device_id}")
        self.id = 0

    def synchronize(self):
        """Run every stream's queued work."""
        while _queued:
            min(_queued, key=lambda s: s.ptr).synchronize()

    def use(self):
        pass


class OutOfMemoryError(MemoryError):
    pass


class CUDARuntimeError(RuntimeError):
    """CuPy's error for a failed runtime call; ``status`` is the cudaError_t."""

    def __init__(self, status: int):
        super().__init__(f"cudaError {status}")
        self.status = status


class _MemoryPool:
    """CuPy's pools of blocks freed by arrays but kept for reuse: the emulator
    keeps none, so freeing them frees nothing (``frees`` counts the calls)."""

    def __init__(self):
        self.frees = 0

    def free_all_blocks(self):
        self.frees += 1


_pools = (_MemoryPool(), _MemoryPool())


def get_default_memory_pool() -> _MemoryPool:
    return _pools[0]


def get_default_pinned_memory_pool() -> _MemoryPool:
    return _pools[1]


def _memcpy_async(dst: int, src: int, nbytes: int, kind: int, stream: int):
    _submit(lambda: ctypes.memmove(dst, src, nbytes), _streams.get(stream))


__version__ = "emulator"
_runtime = types.SimpleNamespace(
    memGetInfo=lambda: (FREE_BYTES, TOTAL_BYTES), driverGetVersion=lambda: 0, runtimeGetVersion=lambda: 0,
    getDeviceCount=lambda: 1,
    getDeviceProperties=lambda device_id: {"multiProcessorCount": MULTIPROCESSORS, "name": DEVICE_NAME},
    memcpyAsync=_memcpy_async, memcpyHostToDevice=1, memcpyDeviceToHost=2, memcpyDeviceToDevice=3,
    CUDARuntimeError=CUDARuntimeError)
cuda = types.SimpleNamespace(Device=_Device, Stream=_Stream, runtime=_runtime, get_elapsed_time=_get_elapsed_time,
                             get_current_stream=_current_stream,
                             memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError))

_scheduling = {"preempt": 0, "seed": 0}
_libraries: dict[str, ctypes.CDLL] = {}


def schedule(preempt: bool, seed: int = 0):
    """FIFO fibers (``preempt=False``) or a seeded random interleaving with a
    preemption point at every atomic, for every kernel module built so far and later."""
    _scheduling.update(preempt=int(preempt), seed=int(seed))
    for library in _libraries.values():
        library.emu_configure(ctypes.c_int(_scheduling["preempt"]), ctypes.c_ulonglong(_scheduling["seed"]))


class RawModule:
    """A kernel file's kernels built for the CPU from its source (``cuda_kernels.module``'s stand-in)."""

    def __init__(self, code: str):
        self.library, self.kernels = build.build(code)
        _libraries[self.library._name] = self.library
        schedule(bool(_scheduling["preempt"]), _scheduling["seed"])

    def get_function(self, name: str):
        if name not in self.kernels:
            raise AttributeError(f"no kernel {name} in this module")
        kernel = build.EmulatedKernel(self.library, name, self.kernels[name])
        return lambda *args, **kwargs: _submit(functools.partial(kernel, *args, **kwargs))


def _pinned(shape, dtype=np.float32):
    out = np.empty(shape, dtype)
    out.view(np.uint8).fill(POISON)
    return out


def install(monkeypatch):
    """Make ``import cupy`` / ``import cupyx`` give the emulator for one test, the decoder's grids
    ``BLOCKS_PER_SM`` deep."""
    import cuda_kernels
    from wfst import cuda_layout

    build.compiler()  # EmulatorUnavailable without g++
    me = sys.modules[__name__]
    cupyx = types.ModuleType("cupyx")
    cupyx.empty_pinned = _pinned
    monkeypatch.setitem(sys.modules, "cupy", me)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    monkeypatch.setattr(cuda_layout, "BLOCKS_PER_SM", BLOCKS_PER_SM)
    schedule_streams(None)
    cuda_kernels.module.cache_clear()
    cuda_kernels.kernel.cache_clear()
    # the kernels from their source (the GPU's loader compiles a cubin with NVRTC first)
    monkeypatch.setattr(cuda_kernels, "module", functools.lru_cache(maxsize=None)(
        lambda name: RawModule(cuda_kernels.source(name))))
    schedule(False)
