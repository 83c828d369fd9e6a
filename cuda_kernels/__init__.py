"""CUDA C++ sources of the GPU decoder and their one memoized loader.

Each ``.cu`` file holds one kernel family (``extern "C"`` kernels); ``.cuh``
headers are inlined textually by :func:`source`, so a file compiles on its own
and CuPy's compile cache (keyed on the source text) sees header changes.

Nothing is compiled or imported (no cupy) until :func:`kernel` is first called.
:data:`COMPILE_OPTIONS` are the options of every build, for the GPU and in the
NVRTC compile test alike: ``--fmad=false`` and ``--ftz=false`` because the CPU
backend's float32 arithmetic is reproduced bit for bit (no fused multiply-add;
denormal costs kept, not flushed to zero, in sums and comparisons alike).

The kernels are compiled by NVRTC here (:mod:`cuda_kernels.nvrtc`) to a cubin
that CuPy loads, not by CuPy's compiler: that one appends ``-ftz=true`` to the
caller's options (every CuPy version), and NVRTC refuses a conflicting
``--ftz=false`` beside it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
COMPILE_OPTIONS = ("--std=c++17", "--fmad=false", "--ftz=false")
CUBIN_CACHE = Path(tempfile.gettempdir()) / f"wfst-gpu-kernels-{getattr(os, 'getuid', lambda: 0)()}"
"""Where compiled kernels are kept, one file per source text, options, arch and NVRTC version."""
KERNEL_FILES = ("frame_prologue.cu", "spans.cu", "emitting.cu", "epsilon.cu", "ties.cu", "lattice_window.cu", "frame_end.cu")
"""Every kernel family, one file each (the compile test checks this list is complete)."""

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)
_COMPILING = threading.Lock()  # held while a thread compiles and writes a cubin


def source(name: str) -> str:
    """The text of ``name`` with every ``#include "x.cuh"`` replaced by the file
    (each header once; ``#pragma once`` lines dropped)."""
    seen: set[str] = set()

    def expand(text: str) -> str:
        def one(match):
            header = match.group(1)
            if header in seen:
                return ""
            seen.add(header)
            body = (DIRECTORY / header).read_text()
            body = re.sub(r"^\s*#\s*pragma\s+once\s*$", "", body, flags=re.MULTILINE)
            return f"// ---- {header}\n{expand(body)}\n// ---- end of {header}"
        return _INCLUDE.sub(one, text)

    return expand((DIRECTORY / name).read_text())


@functools.lru_cache(maxsize=None)
def module(name: str):
    """The CuPy ``RawModule`` of kernel file ``name`` (memoized), loaded from its
    cubin for the current device's architecture (:func:`cubin_file`)."""
    from wfst.gpu import import_cupy

    cupy = import_cupy()
    arch = "sm_" + str(cupy.cuda.Device().compute_capability)
    return cupy.RawModule(path=os.fspath(cubin_file(name, arch)))


def cubin_file(name: str, arch: str) -> Path:
    """The cubin of kernel file ``name`` for ``arch`` (e.g. ``"sm_90"``), compiled
    with :data:`COMPILE_OPTIONS` on first use and kept in :data:`CUBIN_CACHE`.
    RuntimeError with NVRTC's log if it does not compile."""
    from . import nvrtc

    text = source(name)
    key = hashlib.sha256(repr((text, COMPILE_OPTIONS, arch, nvrtc.version())).encode()).hexdigest()[:24]
    path = CUBIN_CACHE / f"{Path(name).stem}-{arch}-{key}.cubin"
    with _COMPILING:  # threads (two decoders' first decodes) compile a file once
        if not path.exists():
            result = nvrtc.compile_source(text, name, arch, COMPILE_OPTIONS)
            if not result.ok:
                raise RuntimeError(f"NVRTC could not compile {name} for {arch}:\n{result.log}")
            CUBIN_CACHE.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            partial.write_bytes(result.cubin)
            os.replace(partial, path)  # (atomic: another process may be writing the same file)
    return path


@functools.lru_cache(maxsize=None)
def kernel(name: str, file: str):
    """The ``RawKernel`` ``name`` of kernel file ``file`` (memoized)."""
    return module(file).get_function(name)
