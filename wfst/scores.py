"""Checking and converting score matrices (frames x columns) for the decoders."""

from __future__ import annotations

import numpy as np

from .errors import ScoresError


def host_scores(scores, num_columns: int, name: str = "scores") -> np.ndarray:
    """``scores`` as a read-only, C-contiguous float32 numpy array (frames x
    columns; the caller's own when it is one, else a copy), checked.

    Accepts numpy arrays, anything with ``__array__`` (torch CPU tensors) and GPU
    arrays with ``__cuda_array_interface__`` (cupy, torch CUDA; copied to the
    host). ``num_columns`` is the narrowest width the graph allows; a zero-frame
    matrix of any width is accepted (the start state's epsilon closure decides).
    """
    scores = without_grad(scores)
    if hasattr(scores, "__cuda_array_interface__"):
        from .gpu import import_cupy

        cupy = import_cupy()
        scores = cupy.asnumpy(cupy.asarray(scores))
    elif not isinstance(scores, np.ndarray):
        if not hasattr(scores, "__array__"):
            raise ScoresError(f"{name} must be a 2-D array (numpy, cupy or torch), got {type(scores).__name__}")
        scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ScoresError(f"{name} must be 2-D (frames x columns), got shape {scores.shape}")
    if scores.dtype.kind != "f" or scores.dtype.itemsize not in (2, 4, 8):
        raise ScoresError(f"{name} must be float16, float32 or float64, got {scores.dtype}")
    frames, width = scores.shape
    if frames == 0:
        return _read_only(np.zeros((0, max(width, num_columns)), np.float32))
    if width < num_columns:
        raise ScoresError(f"{name} has {width} columns but the graph reads columns up to {num_columns - 1}: "
                          f"it needs at least {num_columns} (is this the right graph, or a pdf_map missing?)")
    given = scores
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, reported below
        scores = np.ascontiguousarray(scores, dtype=np.float32)
    finite = np.isfinite(scores)
    if not finite.all():
        frame, column = np.argwhere(~finite)[0]
        value = given[frame, column]
        if np.isfinite(value):
            raise ScoresError(f"{name}[{frame}, {column}] is {value}, beyond float32's range (the search "
                              "computes in float32): log-likelihoods should be far smaller")
        raise ScoresError(f"{name}[{frame}, {column}] is {value}: scores must be finite "
                          "(clamp -inf log-probabilities, e.g. to -1e4, and check the model for NaN)")
    return _read_only(scores)


def _read_only(scores: np.ndarray) -> np.ndarray:
    """A read-only view: the search's numba functions then meet one array type
    whether the caller's array was writable or not (each type compiles anew)."""
    view = scores.view()
    view.flags.writeable = False
    return view


def without_grad(scores):
    """A torch tensor that requires grad, detached (torch refuses to export one
    through ``__array__`` or ``__cuda_array_interface__``); anything else as is."""
    if getattr(scores, "requires_grad", False) and hasattr(scores, "detach"):
        return scores.detach()
    return scores
