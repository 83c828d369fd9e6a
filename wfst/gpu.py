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


MEMINFO = "/proc/meminfo"
CGROUP = "/sys/fs/cgroup"  # cgroup v2: memory.max and memory.current of this process's group


def host_memory_available() -> int | None:
    """Bytes of host memory this process could get now: ``MemAvailable`` of
    /proc/meminfo (free, plus caches the kernel can drop), less where a
    cgroup (a container's limit) leaves less; None where unknown."""
    available = None
    try:
        with open(MEMINFO, encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"{CGROUP}/memory.max", encoding="ascii") as limit, \
                open(f"{CGROUP}/memory.current", encoding="ascii") as current:
            room = limit.read().strip(), int(current.read())
        if room[0] != "max":
            left = max(0, int(room[0]) - room[1])
            available = left if available is None else min(available, left)
    except (OSError, ValueError):
        pass
    return available


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
