"""What every benchmark record says about the code and the machine that made
it: the git commit, a digest of the decoder's sources, library versions and
the GPU's name.

A device machine runs a copy of the working tree whose git metadata may be
missing or stale, so ``WFST_COMMIT`` (set by ``bench/gpu_session_common.sh``
from ``COMMIT``) names the commit there, and the source digest names the code
that actually ran."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_DIR = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("wfst", "cuda_kernels", "lattice")


def git_commit() -> str:
    """``WFST_COMMIT`` when set; else HEAD, with ``+dirty`` when tracked files
    differ from it; ``unknown`` without git or its metadata."""
    if os.environ.get("WFST_COMMIT"):
        return os.environ["WFST_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_DIR, capture_output=True, text=True, timeout=10)
        if head.returncode != 0 or not head.stdout.strip():
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_DIR,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty else "")


def source_digest() -> str:
    """sha256 over the decoder's sources (the .py, .cu and .cuh files of
    SOURCE_DIRS, by path)."""
    digest = hashlib.sha256()
    for path in sorted(p for d in SOURCE_DIRS for p in (REPO_DIR / d).rglob("*")
                       if p.suffix in (".py", ".cu", ".cuh")):
        digest.update(path.relative_to(REPO_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def gpu_versions(cupy) -> dict:
    """Python, numpy, numba, CuPy and the CUDA driver and runtime versions."""
    import numba

    return {"python": sys.version.split()[0], "numpy": np.__version__, "numba": numba.__version__,
            "cupy": cupy.__version__, "cuda_driver": cupy.cuda.runtime.driverGetVersion(),
            "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion()}


def device_name() -> str:
    """The GPU's name, or ``cpu`` where there is none."""
    from wfst.gpu import device_memory

    memory = device_memory()
    return "cpu" if memory is None else memory.name
