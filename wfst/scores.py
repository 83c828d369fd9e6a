"""Checking and converting score matrices (frames x columns) for the decoders."""

from __future__ import annotations

import numpy as np

from .errors import ScoresError

LOGLIKE_MAX = 1e6
"""The largest score accepted: no model's log-likelihood comes near it, and
path costs of that size (negated, per frame) leave float32 no room for the beam
(large negative scores are fine: they only make paths expensive)."""


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
    check_values(scores, given, name)
    return _read_only(scores)


PROBABILITY_SUM_TOLERANCE = 1e-3
"""How far from 1 a row of non-negative scores may sum and still read as probabilities."""


def check_values(scores, given, name: str) -> None:
    """:class:`ScoresError` naming the first cell of ``scores`` (2-D float32 or
    float16, numpy or cupy, at least one row; ``given``: the values as passed,
    for the message) that is not finite or is above :data:`LOGLIKE_MAX`, or
    when the rows look like probabilities. Two reductions where all is well (a
    NaN makes both the minimum and the maximum NaN; both backends' hot path, so
    the cell is looked for only when one fails), a third when nothing is negative."""
    lowest, highest = (float(v) for v in (scores.min(), scores.max()))  # (on a GPU: both launched, one wait)
    if not (lowest > -np.inf and highest <= LOGLIKE_MAX):  # (NaN is neither)
        wide = scores.astype(np.float32)  # (float16: 1e6 would overflow in the comparison's cast)
        bad = ~((wide > -np.inf) & (wide <= LOGLIKE_MAX))
        frame, column = (int(index[0]) for index in bad.nonzero())  # (row-major: the first bad cell)
        raise _bad_score(name, frame, column, float(given[frame, column]), float(scores[frame, column]))
    if lowest < 0 or scores.shape[1] < 2:
        return
    if float(abs(scores.sum(axis=1, dtype=np.float64) - 1).max()) <= PROBABILITY_SUM_TOLERANCE:
        raise ScoresError(f"{name} looks like probabilities (no value below 0, every row sums to 1): the decoder "
                          "reads log-probabilities or log-likelihoods; pass their log (log_softmax, not softmax)")


def _bad_score(name: str, frame: int, column: int, value, value32) -> ScoresError:
    """The error for a score, ``value`` as given and ``value32`` in float32,
    that is not finite there or is above :data:`LOGLIKE_MAX`."""
    if np.isfinite(value) and not np.isfinite(value32):
        return ScoresError(f"{name}[{frame}, {column}] is {value}, beyond float32's range (the search computes "
                           "in float32): log-likelihoods should be far smaller")
    if np.isfinite(value):
        return ScoresError(f"{name}[{frame}, {column}] is {value}: scores above {LOGLIKE_MAX:g} are refused (no "
                           "log-likelihood is that large, and path costs that size lose the beam to float32 "
                           "rounding): check that these are the model's log-likelihoods")
    return ScoresError(f"{name}[{frame}, {column}] is {value}: scores must be finite "
                       "(clamp -inf log-probabilities, e.g. to -1e4, and check the model for NaN)")


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
