"""The kernels stay inside their device arrays and their threads' stacks: the
emulated tests of every kernel file and of the decoder's windows, overflows and
example run again with the kernels built under AddressSanitizer
(``WFST_EMULATOR_ASAN``, tests/cuda_emulator/build.py), as compute-sanitizer's
memcheck checks them on a GPU; a kernel that writes one past its array shows
that the check sees it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .cuda_emulator import build

REPO = Path(__file__).resolve().parent.parent
WINDOWS = "tests/test_cuda_decoder.py::test_lattice_windows_of_any_length_give_the_cpu_s_results"
CHECKED = ("tests/test_cuda_emitting.py", "tests/test_cuda_prologue.py", "tests/test_cuda_epsilon_sweep.py",
           "tests/test_cuda_lattice_window.py", "tests/test_cuda_ties.py",
           "tests/test_cuda_decoder.py::test_the_embedded_example_matches_the_cpu",
           "tests/test_cuda_decoder.py::test_tiny_capacities_warn_and_stay_valid",
           "tests/test_cuda_decoder.py::test_a_run_with_overflows_leaves_every_lane_s_working_memory_empty",
           f"{WINDOWS}[emulator-64-8-256]", f"{WINDOWS}[emulator-3-2-8]")
"""The tests run under ASan (their emulated cases): every kernel file's own
tests, and the decoder's runs through overflows, windows of 64 frames and a
small frame table that fills (about two minutes on the development VM)."""

WRITES_PAST_ITS_ARRAY = """
import numpy as np
from tests.cuda_emulator import fake_cupy

code = 'extern "C" __global__ void past_the_end(int* out, int n) { if (threadIdx.x <= n) out[threadIdx.x] = 1; }'
kernel = fake_cupy.RawModule(code=code).get_function("past_the_end")
kernel((1,), (128,), (fake_cupy.zeros(100, np.int32), np.int32(100)))
"""


def _under_asan(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, str]:
    """Python run with ``args`` in the repository, the emulated kernels built
    under ASan; its outcome and ASan's reports."""
    try:
        cxx = build.compiler()
    except build.EmulatorUnavailable as error:
        pytest.skip(str(error))
    runtime = subprocess.run([cxx, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(runtime):
        pytest.skip(f"{cxx} has no AddressSanitizer runtime (libasan.so)")
    env = {**os.environ, "WFST_EMULATOR_ASAN": "1", "LD_PRELOAD": runtime, "PYTHONPATH": str(REPO),
           "ASAN_OPTIONS": f"detect_leaks=0:log_path={tmp_path / 'asan'}"}
    run = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True)
    return run, "".join(path.read_text(errors="replace") for path in sorted(tmp_path.glob("asan.*")))


def test_a_kernel_writing_past_its_array_is_reported(tmp_path):
    run, reports = _under_asan(["-c", WRITES_PAST_ITS_ARRAY], tmp_path)
    assert run.returncode != 0
    assert "heap-buffer-overflow" in reports and "past_the_end" in reports, reports[:3000] or run.stderr[-3000:]


def test_the_kernels_stay_inside_their_arrays(tmp_path):
    run, reports = _under_asan(["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *CHECKED, "-k", "emulator"],
                               tmp_path)
    assert not reports, reports[:6000]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
