"""Every CUDA kernel file compiles with NVRTC, without errors or warnings, for
Hopper (sm_90) and Ampere (sm_80), with the loader's own options. NVRTC needs
no GPU and no driver: this runs in CI (the ``test`` extra installs
``nvidia-cuda-nvrtc-cu12``)."""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import cuda_kernels
from cuda_kernels import nvrtc

try:
    nvrtc.library()
    _NVRTC_ERROR = None
except nvrtc.NvrtcUnavailable as error:  # only when the library cannot be loaded at all
    _NVRTC_ERROR = str(error)

needs_nvrtc = pytest.mark.skipif(_NVRTC_ERROR is not None, reason=f"NVRTC cannot be loaded: {_NVRTC_ERROR}")


def test_kernel_file_list_is_complete():
    on_disk = sorted(p.name for p in Path(cuda_kernels.DIRECTORY).glob("*.cu"))
    assert on_disk == sorted(cuda_kernels.KERNEL_FILES)


def test_headers_are_inlined():
    for name in cuda_kernels.KERNEL_FILES:
        text = cuda_kernels.source(name)
        assert '#include "' not in text and "#pragma once" not in text
        assert "cost_key" in text


@needs_nvrtc
@pytest.mark.parametrize("arch", ["sm_90", "sm_80"])
@pytest.mark.parametrize("name", cuda_kernels.KERNEL_FILES)
def test_compiles_without_warnings(name, arch):
    result = nvrtc.compile_source(cuda_kernels.source(name), name, arch, cuda_kernels.COMPILE_OPTIONS)
    assert result.ok, f"{name} ({arch}) failed to compile:\n{result.log}"
    assert not result.warnings, f"{name} ({arch}) compiled with warnings:\n{result.log}"
    assert result.cubin[:4] == b"\x7fELF"


@needs_nvrtc
def test_a_warning_is_caught():
    """The log the test reads does report warnings (a used-before-set variable)."""
    bad = 'extern "C" __global__ void k(float* a) { int y; if (y) a[0] = 1.0f; }'
    result = nvrtc.compile_source(bad, "bad.cu", "sm_90", cuda_kernels.COMPILE_OPTIONS)
    assert result.ok and result.warnings


@needs_nvrtc
def test_fmad_false_keeps_separate_roundings():
    """With --fmad=false, a * b + c compiles to a multiply and an add, never an FMA
    (checked in the PTX NVRTC makes for compute_90)."""
    code = 'extern "C" __global__ void k(float* a) { a[0] = a[1] * a[2] + a[3]; }'
    fused = nvrtc.compile_source(code, "f.cu", "sm_90", ())
    separate = nvrtc.compile_source(code, "f.cu", "sm_90", cuda_kernels.COMPILE_OPTIONS)
    assert fused.ok and separate.ok and fused.cubin != separate.cubin


FLUSHING = re.compile(r"^\s*(?:add|sub|mul|fma|min|max|setp)\.\S*ftz", re.MULTILINE)
"""PTX float arithmetic or comparison that flushes denormals."""


@needs_nvrtc
def test_ftz_false_keeps_denormals():
    """CuPy's compiler would add -ftz=true, which flushes denormal costs to zero
    in sums and comparisons (the CPU backend keeps them): PTX's ``.ftz``
    arithmetic and comparisons. Ours have none, in this example and in every
    kernel file (libdevice's log2f may use ``lg2.approx.ftz``: it scales
    denormal inputs first)."""
    code = 'extern "C" __global__ void k(float* a) { a[0] = a[1] + a[2]; a[3] = a[4] < a[5]; }'
    flushed = nvrtc.compile_source(code, "f.cu", "compute_90", ("--fmad=false", "--ftz=true"))
    kept = nvrtc.compile_source(code, "f.cu", "compute_90", cuda_kernels.COMPILE_OPTIONS)
    assert flushed.ok and kept.ok and "add.rn.ftz.f32" in flushed.ptx and "setp.lt.ftz.f32" in flushed.ptx
    assert len(FLUSHING.findall(flushed.ptx)) == 2 and "add.rn.f32" in kept.ptx and ".ftz" not in kept.ptx
    with_floats = 0
    for name in cuda_kernels.KERNEL_FILES:
        result = nvrtc.compile_source(cuda_kernels.source(name), name, "compute_90", cuda_kernels.COMPILE_OPTIONS)
        assert result.ok and not FLUSHING.findall(result.ptx), name
        with_floats += ".f32" in result.ptx
    assert with_floats >= len(cuda_kernels.KERNEL_FILES) - 1  # (spans.cu counts without floats)


GENERIC = re.compile(r"^\s*(?:atom|red|ld\.volatile|st\.volatile)\.(?!shared|global)\S*", re.MULTILINE)
"""PTX atomics and volatile accesses through a generic address (resolved to shared or global memory at run
time, where the space's own instruction would not need to)."""


@needs_nvrtc
def test_atomics_and_volatile_accesses_name_their_memory_space():
    """A kernel that makes one pointer to either shared or global memory (window_prune's extra costs, say)
    compiles its atomics on it to generic ones; ours name their space, in every kernel file (and the check
    sees a generic one where a pointer may be either)."""
    either = ('extern "C" __global__ void k(unsigned* g, int t) { __shared__ unsigned s[32];'
              ' unsigned* p = t ? s : g; atomicMin(p + threadIdx.x, 1u); g[0] = s[t]; }')
    result = nvrtc.compile_source(either, "e.cu", "compute_90", cuda_kernels.COMPILE_OPTIONS)
    assert result.ok and GENERIC.findall(result.ptx)
    for name in cuda_kernels.KERNEL_FILES:
        result = nvrtc.compile_source(cuda_kernels.source(name), name, "compute_90", cuda_kernels.COMPILE_OPTIONS)
        assert result.ok and not GENERIC.findall(result.ptx), (name, GENERIC.findall(result.ptx)[:3])


@needs_nvrtc
def test_the_gpu_loads_a_cubin_compiled_with_the_tested_options(monkeypatch, tmp_path):
    """The loader gives CuPy a cubin (a path: no source, no options for CuPy's own
    compiler), compiled with COMPILE_OPTIONS for the device's architecture,
    once per source text: a second load reads the cached file."""
    import types

    loaded = []
    device = types.SimpleNamespace(compute_capability="90")
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=lambda: device),
                                 RawModule=lambda **kw: loaded.append(kw) or kw)
    monkeypatch.setattr("wfst.gpu.import_cupy", lambda: fake)
    monkeypatch.setattr(cuda_kernels, "CUBIN_CACHE", tmp_path / "cache")
    cuda_kernels.module.cache_clear()
    try:
        cuda_kernels.module("frame_end.cu")
    finally:
        cuda_kernels.module.cache_clear()
    (kw,) = loaded
    assert set(kw) == {"path"}
    path = Path(kw["path"])
    want = nvrtc.compile_source(cuda_kernels.source("frame_end.cu"), "frame_end.cu", "sm_90",
                                cuda_kernels.COMPILE_OPTIONS)
    assert path.parent == tmp_path / "cache" and path.read_bytes() == want.cubin
    stamp = path.stat().st_mtime_ns
    assert cuda_kernels.cubin_file("frame_end.cu", "sm_90") == path and path.stat().st_mtime_ns == stamp
    assert cuda_kernels.cubin_file("frame_end.cu", "sm_80") != path


@needs_nvrtc
def test_threads_loading_a_kernel_file_at_once_compile_it_once(monkeypatch, tmp_path):
    """Two decoders' first decodes on two threads: a file compiles once and
    every thread gets its whole cubin (threads wrote one temporary file, whose
    rename by one took it from the other: FileNotFoundError)."""
    monkeypatch.setattr(cuda_kernels, "CUBIN_CACHE", tmp_path / "cache")
    compiled = []
    compile_source = nvrtc.compile_source

    def slow_compile(text, name, arch, options):
        compiled.append(name)
        time.sleep(0.2)  # every thread finds no cubin unless the first holds the others back
        return compile_source(text, name, arch, options)

    monkeypatch.setattr(nvrtc, "compile_source", slow_compile)
    barrier = threading.Barrier(4)

    def load(_):
        barrier.wait()
        return cuda_kernels.cubin_file("frame_end.cu", "sm_90")

    with ThreadPoolExecutor(4) as pool:
        paths = set(pool.map(load, range(4)))
    assert compiled == ["frame_end.cu"]
    (path,) = paths
    want = compile_source(cuda_kernels.source("frame_end.cu"), "frame_end.cu", "sm_90", cuda_kernels.COMPILE_OPTIONS)
    assert path.read_bytes() == want.cubin
