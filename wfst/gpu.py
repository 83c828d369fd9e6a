"""Lazy access to CuPy and the GPU: nothing here runs at ``import wfst``."""

from __future__ import annotations

from dataclasses import dataclass

INSTALL_HINT = ("install CuPy for your CUDA version: pip install 'wfst-gpu[cuda12]' (CUDA 12) or "
                "'wfst-gpu[cuda13]' (CUDA 13), or decode on the CPU: device='cpu' (wfst-decode: --device cpu)")


def import_cupy():
    """Return the ``cupy`` module, or raise ImportError saying how to get it."""
    try:
        import cupy
    except ImportError as error:
        raise ImportError(f"the CUDA backend needs CuPy, which is not installed: {INSTALL_HINT}") from error
    return cupy


def host_memory_available() -> int | None:
    """Bytes of host memory the kernel could hand out now (``MemAvailable`` of
    /proc/meminfo: free, plus caches it can drop), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass(frozen=True)
class DeviceMemory:
    name: str
    free_bytes: int
    total_bytes: int


def device_memory(device: int = 0) -> DeviceMemory | None:
    """Name and free/total memory of a CUDA device, or None when there is no
    usable GPU (no CuPy, no driver, no device)."""
    try:
        cupy = import_cupy()
        with cupy.cuda.Device(device):
            free, total = cupy.cuda.runtime.memGetInfo()
            name = cupy.cuda.runtime.getDeviceProperties(device)["name"]
    except Exception:  # any failure means: no GPU to budget for
        return None
    return DeviceMemory(name.decode() if isinstance(name, bytes) else str(name), int(free), int(total))
