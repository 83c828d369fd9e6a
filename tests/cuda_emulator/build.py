"""Compile a kernel file of ``cuda_kernels/`` for the CPU (g++, with
``emulation.h``) and call its kernels through ctypes.

Each ``extern "C" __global__`` kernel gets a generated launcher
``emu_launch_<name>(gx, gy, gz, bx, void** args)``; :class:`EmulatedKernel`
checks every argument against the kernel's C signature (pointer dtypes, exact
scalar types: stricter than CuPy, which checks nothing) before launching.
Builds are cached by the hash of their text under the temp directory.

``WFST_EMULATOR_ASAN=1`` builds the kernels with AddressSanitizer, which then
reports any access outside a device array or a thread's stack (the GPU's
compute-sanitizer memcheck, without a GPU); the process must load the ASan
runtime first (:data:`ASAN_HINT`).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HEADER = Path(__file__).resolve().parent / "emulation.h"
FLAGS = ("-std=c++17", "-O1", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-fcf-protection=none",
         "-w")
ASAN_FLAGS = ("-fsanitize=address", "-fno-omit-frame-pointer")
ASAN_HINT = ("run Python with the ASan runtime loaded first: LD_PRELOAD=$(g++ -print-file-name=libasan.so) "
             "ASAN_OPTIONS=detect_leaks=0")

_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)',
                     re.S)
_SCALARS = {"int": (np.int32, ctypes.c_int32), "unsigned": (np.uint32, ctypes.c_uint32),
            "float": (np.float32, ctypes.c_float), "long long": (np.int64, ctypes.c_int64)}
_POINTEES = {"int": np.int32, "unsigned": np.uint32, "float": np.float32, "long long": np.int64}


class EmulatorUnavailable(RuntimeError):
    """No C++ compiler here: the emulated GPU tests are skipped."""


class KernelLaunchError(RuntimeError):
    """A launch the GPU would reject or that never ends (deadlock), or a wrong argument."""


def compiler() -> str:
    """The C++ compiler; EmulatorUnavailable off x86-64 (the fiber switch is x86-64 assembly) or without one."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise EmulatorUnavailable(f"the CUDA emulator runs on x86-64 only, not {platform.machine()}")
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise EmulatorUnavailable("no C++ compiler (g++) found")
    return cxx


def signatures(code: str) -> dict[str, list[str]]:
    """Kernel name -> C types of its parameters (``const`` dropped)."""
    out = {}
    for match in _KERNEL.finditer(code):
        params = []
        for param in match.group(2).split(","):
            decl = " ".join(param.replace("*", " * ").split())
            ctype = re.sub(r"\s*\w+$", "", decl).replace("const ", "").replace(" *", "*")
            params.append(ctype)
        out[match.group(1)] = params
    return out


def _launcher(name: str, params: list[str]) -> str:
    args = ", ".join(f"*({t}*)args[{i}]" for i, t in enumerate(params))
    return (f'extern "C" int emu_launch_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, void** args) '
            f'{{ return emu::launch(gx, gy, gz, bx, [&] {{ {name}({args}); }}); }}\n')


def build(code: str) -> tuple[ctypes.CDLL, dict[str, list[str]]]:
    """The shared library of one kernel file's text and its kernels' signatures."""
    kernels = signatures(code)
    flags = FLAGS
    if os.environ.get("WFST_EMULATOR_ASAN"):
        if "libasan" not in Path("/proc/self/maps").read_text():  # (else the ASan build's load ends the process)
            raise KernelLaunchError(f"WFST_EMULATOR_ASAN is set but the ASan runtime is not loaded: {ASAN_HINT}")
        flags += ASAN_FLAGS
    text = (f'#include "{HEADER}"\n{code}\n' + "".join(_launcher(n, p) for n, p in kernels.items()))
    digest = hashlib.sha256((text + HEADER.read_text() + " ".join(flags)).encode()).hexdigest()[:20]
    cache = Path(tempfile.gettempdir()) / f"wfst-cuda-emulator-{os.getuid()}"
    cache.mkdir(exist_ok=True)
    library = cache / f"{digest}.so"
    if not library.exists():
        source = cache / f"{digest}.cpp"
        source.write_text(text)
        partial = cache / f"{digest}.{os.getpid()}.so"
        run = subprocess.run([compiler(), *flags, str(source), "-o", str(partial)], capture_output=True,
                             encoding="utf-8", errors="replace")  # (g++'s quotes, whatever the locale)
        if run.returncode != 0:
            raise KernelLaunchError(f"the kernels do not compile for the CPU emulator:\n{run.stderr[-4000:]}")
        partial.replace(library)
    return ctypes.CDLL(str(library)), kernels


def _dims(value) -> tuple[int, int, int]:
    dims = tuple(int(v) for v in (value if isinstance(value, tuple) else (value,)))
    return (dims + (1, 1, 1))[:3]


class EmulatedKernel:
    """``kernel(grid, block, args)`` as CuPy's ``RawKernel`` is called."""

    def __init__(self, library: ctypes.CDLL, name: str, params: list[str]):
        self.name = name
        self.params = params
        self.function = getattr(library, f"emu_launch_{name}")
        self.function.restype = ctypes.c_int
        self.function.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint,
                                  ctypes.POINTER(ctypes.c_void_p)]
        self.error = library.emu_error
        self.error.restype = ctypes.c_char_p

    def _argument(self, i: int, ctype: str, value):
        where = f"{self.name} argument {i} ({ctype})"
        if ctype.endswith("*"):
            if not isinstance(value, np.ndarray) or not hasattr(value, "__cuda_array_interface__"):
                raise KernelLaunchError(f"{where}: expected a device array, got {type(value).__name__}")
            pointee = ctype[:-1].strip()
            if pointee in _POINTEES and value.dtype != _POINTEES[pointee]:
                raise KernelLaunchError(f"{where}: array of {value.dtype}")
            return ctypes.c_void_p(value.ctypes.data)
        dtype, c_type = _SCALARS[ctype]
        if not isinstance(value, dtype):
            raise KernelLaunchError(f"{where}: expected {np.dtype(dtype)}, got {type(value).__name__}")
        return c_type(value)

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        if len(args) != len(self.params):
            raise KernelLaunchError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}")
        values = [self._argument(i, t, v) for i, (t, v) in enumerate(zip(self.params, args))]
        pointers = (ctypes.c_void_p * max(len(values), 1))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        gx, gy, gz = _dims(grid)
        bx, by, bz = _dims(block)
        if by != 1 or bz != 1:
            raise KernelLaunchError(f"{self.name}: the emulator runs 1-D blocks only, got {block}")
        if not (0 < gx < 2**31 and 0 < gy < 2**16 and 0 < gz < 2**16):
            raise KernelLaunchError(f"{self.name}: a grid of {grid} blocks (a GPU takes 1 to 2^31-1 in x, "
                                    "1 to 65535 in y and z)")
        status = self.function(gx, gy, gz, bx, pointers)
        if status == 1:
            raise KernelLaunchError(f"{self.name}: deadlock (threads wait at barriers that cannot open)")
        if status == 3:
            raise KernelLaunchError(f"{self.name}: {self.error().decode()}")
        if status:
            raise KernelLaunchError(f"{self.name}: bad launch geometry block={block}")
