"""Score matrices for the CUDA backend: host arrays are checked as the CPU
backend checks them (:func:`wfst.scores.host_scores`); GPU arrays (cupy, torch
CUDA tensors, anything with ``__cuda_array_interface__`` or DLPack) stay on the
device, zero-copy when float32, float16 or float64 with unit column stride, and get the
same checks there (shape, dtype, width, finite values); the kernels round each
float64 value to float32 as they read it. A GPU array must be on the decoder's
GPU: the kernels cannot read another GPU's memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ScoresError
from .scores import check_values, host_scores, without_grad

DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.float64): 2}


@dataclass
class ScoreInput:
    """``array``: numpy float32 (host) or cupy float32/float16/float64 (device)
    frames x columns with unit column stride; ``row_stride`` in elements."""

    array: object
    on_device: bool
    frames: int
    row_stride: int
    dtype_code: int


def _as_cupy(scores, cupy):
    if hasattr(scores, "__cuda_array_interface__"):
        return cupy.asarray(scores)
    if hasattr(scores, "__dlpack_device__"):
        device_type, _ = scores.__dlpack_device__()
        if int(device_type) in (2, 13):  # kDLCUDA, kDLCUDAManaged
            return cupy.from_dlpack(scores)
    return None


def score_input(scores, num_columns: int, *, device_id: int, name: str = "scores") -> ScoreInput:
    """Check and wrap one score matrix for a decoder on GPU ``device_id`` (see
    the module docstring)."""
    scores = without_grad(scores)
    on_gpu = hasattr(scores, "__cuda_array_interface__") or (
        hasattr(scores, "__dlpack_device__") and not isinstance(scores, np.ndarray)
        and int(scores.__dlpack_device__()[0]) in (2, 13))
    if not on_gpu:
        array = host_scores(scores, num_columns, name=name)
        return ScoreInput(array, False, int(array.shape[0]), int(array.shape[1]) if array.ndim == 2 else 0, 0)
    from .gpu import import_cupy

    cupy = import_cupy()
    x = _as_cupy(scores, cupy)
    if x is None:
        raise ScoresError(f"{name}: cannot read this GPU array ({type(scores).__name__}) with cupy")
    if x.ndim != 2:
        raise ScoresError(f"{name} must be 2-D (frames x columns), got shape {x.shape}")
    if x.dtype not in (np.float16, np.float32, np.float64):
        raise ScoresError(f"{name} must be float16, float32 or float64, got {x.dtype}")
    if int(x.device.id) != device_id:
        raise ScoresError(f"{name} is on GPU {x.device.id} but the decoder runs on GPU {device_id}: copy it there "
                          f"first (torch: .to('cuda:{device_id}'); cupy: cupy.asarray inside "
                          f"cupy.cuda.Device({device_id})), or pass it as a numpy array")
    with cupy.cuda.Device(device_id):
        return _checked_on_device(x, cupy, num_columns, name)


def _checked_on_device(x, cupy, num_columns: int, name: str) -> ScoreInput:
    """Width and finite values of ``x`` (a 2-D float cupy array on the current device)."""
    frames, width = x.shape
    if frames == 0:
        return ScoreInput(cupy.zeros((0, max(width, num_columns, 1)), np.float32), True, 0, max(width, 1), 0)
    if width < num_columns:
        raise ScoresError(f"{name} has {width} columns but the graph reads columns up to {num_columns - 1}: "
                          f"it needs at least {num_columns} (is this the right graph, or a pdf_map missing?)")
    # float64 stays as it is: the kernels round each value they read to float32 (to nearest, as numpy
    # does on the host; CuPy's astype would flush denormals to zero). Finite means finite in float32.
    check_values(x.astype(np.float32) if x.dtype == np.float64 else x, x, name)
    item = x.dtype.itemsize
    if x.strides[1] != item or x.strides[0] % item or x.strides[0] < 0:
        x = cupy.ascontiguousarray(x)
    return ScoreInput(x, True, int(frames), int(x.strides[0] // item), DTYPE_CODES[np.dtype(x.dtype)])
