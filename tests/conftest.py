import os

import pytest

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
