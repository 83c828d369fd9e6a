"""CUDA C++ sources of the GPU decoder and their one memoized loader.

Each ``.cu`` file holds one kernel family (``extern "C"`` kernels); ``.cuh``
headers are inlined textually by :func:`source`, so a file compiles on its own
and CuPy's compile cache (keyed on the source text) sees header changes.

Nothing is compiled or imported (no cupy) until :func:`kernel` is first called.
:data:`COMPILE_OPTIONS` are the options of every build, in CuPy and in the NVRTC
compile test alike: ``--fmad=false`` because the CPU backend's float32 sums
``(cost + ac) + weight`` are reproduced bit for bit (no fused multiply-add).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
COMPILE_OPTIONS = ("--std=c++17", "--fmad=false")
KERNEL_FILES = ("frame_prologue.cu", "emitting.cu", "epsilon.cu", "ties.cu", "lattice_window.cu", "segments.cu")
"""Every kernel family, one file each (the compile test checks this list is complete)."""

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


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
    """The compiled CuPy ``RawModule`` of kernel file ``name`` (memoized)."""
    from wfst.gpu import import_cupy

    cupy = import_cupy()
    return cupy.RawModule(code=source(name), options=COMPILE_OPTIONS, backend="nvrtc")


@functools.lru_cache(maxsize=None)
def kernel(name: str, file: str):
    """The ``RawKernel`` ``name`` of kernel file ``file`` (memoized)."""
    return module(file).get_function(name)
