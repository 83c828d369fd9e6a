import hashlib
import os
import shutil
from pathlib import Path

import pytest


def _numba_cache_for_these_sources() -> None:
    """Keep the tests' numba compilations in a folder named by a digest of the
    package's sources (unless ``NUMBA_CACHE_DIR`` is set): numba's
    ``cache=True`` compiles again when a function's own file changes, not when
    a numba function it calls from another file does (that one is compiled
    into it), so an edit to, say, the window plan would leave the cached step
    bookkeeping running the old plan. Older folders are removed."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted([*root.glob("wfst/*.py"), *root.glob("lattice/*.py")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    caches = root / ".pytest_cache" / "numba"
    mine = caches / digest.hexdigest()[:16]
    for older in caches.glob("*"):
        if older != mine:
            shutil.rmtree(older, ignore_errors=True)
    os.environ["NUMBA_CACHE_DIR"] = str(mine)


_numba_cache_for_these_sources()

try:
    import cupy  # noqa: F401

    _HAS_GPU = cupy.cuda.runtime.getDeviceCount() > 0
except Exception:  # no cupy, no driver, or no device
    _HAS_GPU = False


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs a CUDA GPU and cupy")
    for item in items:
        if "gpu" in item.keywords and not _HAS_GPU:
            item.add_marker(skip)


@pytest.fixture(params=[pytest.param("gpu", marks=pytest.mark.gpu), "emulator"])
def cupy_module(request, monkeypatch):
    """The CuPy that ``device="cuda"`` runs on: the real one (marked gpu: needs a
    GPU), or the CPU emulator of tests/cuda_emulator (kernels compiled with g++;
    skipped off x86-64 or without a compiler). ``WFST_EMULATOR_PREEMPT=SEED``
    runs every emulated test under that seed's random preemptive schedule of
    the threads, ``WFST_EMULATOR_STREAMS=SEED`` under that seed's random
    schedule of the streams' queued work."""
    import cuda_kernels

    if request.param == "gpu":
        import cupy

        yield cupy
        return
    from .cuda_emulator import build, fake_cupy

    try:
        fake_cupy.install(monkeypatch)
    except build.EmulatorUnavailable as error:
        pytest.skip(str(error))
    if os.environ.get("WFST_EMULATOR_PREEMPT"):
        fake_cupy.schedule(True, int(os.environ["WFST_EMULATOR_PREEMPT"]))
    if os.environ.get("WFST_EMULATOR_STREAMS"):
        fake_cupy.schedule_streams(int(os.environ["WFST_EMULATOR_STREAMS"]))
    yield fake_cupy
    cuda_kernels.module.cache_clear()  # no emulated kernel outlives the test
    cuda_kernels.kernel.cache_clear()
