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
