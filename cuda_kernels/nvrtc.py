"""NVRTC through ctypes: compile CUDA C++ to a cubin without a GPU or a driver.

CuPy's own compile path needs a CUDA driver, so the compile test (which runs in
CI on machines without a GPU) calls ``libnvrtc`` directly. ctypes keeps this to
one shared library, found in this order: the ``nvidia-cuda-nvrtc-cu12`` /
``-cu13`` wheels (``nvidia/cuda_nvrtc/lib``, ``nvidia/cu13/lib``), ``$CUDA_PATH``,
``$CUDA_HOME`` or ``/usr/local/cuda``, then the system loader. The GPU path
compiles its kernels with it too (see :mod:`cuda_kernels`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import importlib.util
import os

NVRTC_SUCCESS = 0


class NvrtcUnavailable(RuntimeError):
    """libnvrtc could not be found or loaded."""


def _candidates():
    """Paths and names to try, in order (a generator: CuPy is imported only when
    nothing else loads)."""
    for package in ("nvidia.cuda_nvrtc", "nvidia.cu13", "nvidia"):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        for root in (spec.submodule_search_locations or []) if spec else []:
            for pattern in ("lib/libnvrtc.so*", "cuda_nvrtc/lib/libnvrtc.so*", "cu13/lib/libnvrtc.so*",
                            "bin/nvrtc64_*.dll"):
                yield from sorted(p for p in glob.glob(os.path.join(root, pattern)) if "builtins" not in p)
    for root in (os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if root:
            yield from sorted(p for p in glob.glob(os.path.join(root, "lib*", "libnvrtc.so*")) if "builtins" not in p)
    found = ctypes.util.find_library("nvrtc")
    if found:
        yield found
    sonames = ("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so")
    yield from sonames
    try:  # where CuPy is installed, it knows where its libnvrtc is: once loaded, its soname opens it again
        from cupy_backends.cuda.libs import nvrtc as cupy_nvrtc

        cupy_nvrtc.getVersion()
    except Exception:  # (no CuPy, or CuPy without NVRTC: nothing more to try)
        return
    yield from sonames


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """The loaded libnvrtc (memoized); raises :class:`NvrtcUnavailable`."""
    errors = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as error:
            errors.append(f"{path}: {error}")
            continue
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        lib.nvrtcCreateProgram.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_char_p,
                                           ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        lib.nvrtcCompileProgram.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        lib.nvrtcGetProgramLogSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        lib.nvrtcGetProgramLog.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nvrtcGetCUBINSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        lib.nvrtcGetCUBIN.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nvrtcGetPTXSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        lib.nvrtcGetPTX.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nvrtcDestroyProgram.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        lib.nvrtcVersion.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
        return lib
    raise NvrtcUnavailable("libnvrtc not found; install it with pip install nvidia-cuda-nvrtc-cu12 (or -cu13, "
                           "matching the CUDA driver), or set CUDA_PATH to a CUDA toolkit "
                           "(tried: " + "; ".join(errors[-3:]) + ")")


def version() -> tuple[int, int]:
    lib = library()
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return major.value, minor.value


class CompileResult:
    """``ok``: NVRTC returned success; ``log``: its full log (warnings and
    errors); ``cubin``: the machine code for an ``sm_XX`` arch, ``ptx``: the
    PTX text for a ``compute_XX`` one (each empty otherwise, and on failure)."""

    def __init__(self, ok: bool, log: str, cubin: bytes, ptx: str = ""):
        self.ok, self.log, self.cubin, self.ptx = ok, log, cubin, ptx

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.log.splitlines() if "warning" in line.lower()]


def compile_source(source: str, name: str, arch: str, options: tuple[str, ...] = ()) -> CompileResult:
    """Compile ``source`` for ``arch`` (``"sm_90"``: a cubin; ``"compute_90"``:
    PTX) with ``options``."""
    lib = library()
    prog = ctypes.c_void_p()
    status = lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None)
    if status != NVRTC_SUCCESS:
        raise RuntimeError(f"nvrtcCreateProgram: {lib.nvrtcGetErrorString(status).decode()}")
    try:
        args = [f"--gpu-architecture={arch}", *options]
        argv = (ctypes.c_char_p * len(args))(*[a.encode() for a in args])
        status = lib.nvrtcCompileProgram(prog, len(args), argv)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        text = log.value.decode(errors="replace")
        cubin, ptx = b"", ""
        if status == NVRTC_SUCCESS and arch.startswith("sm_"):
            lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
            buf = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetCUBIN(prog, buf)
            cubin = buf.raw
        elif status == NVRTC_SUCCESS:
            lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
            buf = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetPTX(prog, buf)
            ptx = buf.value.decode()
        elif not text:
            text = lib.nvrtcGetErrorString(status).decode()
        return CompileResult(status == NVRTC_SUCCESS, text, cubin, ptx)
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
