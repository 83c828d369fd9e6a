"""Arc posteriors by forward-backward in the log semiring, and word
confidences from them (no MBR decoding).

With ``scale`` (Kaldi's acoustic scale for posteriors, e.g. 1/LM weight), a
path's probability is proportional to ``exp(-scale * cost)``; an arc's
posterior is the probability mass of the complete paths through it, so the
arcs leaving the start state (or any cut through the lattice) sum to 1.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .errors import LatticeError
from .lattice import Lattice


@numba.njit(cache=True, nogil=True, inline="always")
def _log_add(a, b):
    if a < b:
        a, b = b, a
    if b == -np.inf:
        return a
    return a + np.log1p(np.exp(b - a))


@numba.njit(cache=True, nogil=True)
def _log_forward_backward(num_states, arc_src, arc_dst, arc_logp, final_logp):
    """Log forward (from state 0) and backward (to the end) sums, float64."""
    alpha = np.full(num_states, -np.inf)
    alpha[0] = 0.0
    for a in range(arc_src.shape[0]):
        alpha[arc_dst[a]] = _log_add(alpha[arc_dst[a]], alpha[arc_src[a]] + arc_logp[a])
    beta = final_logp.copy()
    for a in range(arc_src.shape[0] - 1, -1, -1):
        beta[arc_src[a]] = _log_add(beta[arc_src[a]], arc_logp[a] + beta[arc_dst[a]])
    return alpha, beta


def _check_scale(scale) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)) \
            or not math.isfinite(scale) or scale <= 0:
        raise LatticeError(f"scale must be a finite number > 0 (it multiplies costs before exp(-cost)), "
                           f"got {scale!r}")
    return float(scale)


def arc_posteriors(lattice: Lattice, scale: float = 1.0) -> np.ndarray:
    """Posterior of each arc (float64, A, in [0, 1]); all zero for a lattice
    without a complete path."""
    scale = _check_scale(scale)
    if lattice.num_states == 0:
        return np.zeros(0)
    alpha, beta = _log_forward_backward(lattice.num_states, lattice.arc_src, lattice.arc_dst,
                                        -scale * lattice.arc_costs(), -scale * lattice.final_costs())
    total = beta[0]
    if total == -np.inf:
        return np.zeros(lattice.num_arcs)
    post = np.exp(alpha[lattice.arc_src] + (-scale * lattice.arc_costs()) + beta[lattice.arc_dst] - total)
    return np.minimum(post, 1.0)


def word_confidences(lattice: Lattice, scale: float = 1.0) -> np.ndarray:
    """Confidence of each best-path word (float64, one per entry of
    ``best_path().words``): the posterior that the lattice has the same word
    at that time, i.e. the summed posteriors of the arcs with that word whose
    time (the frame of their source state, clipped to the last frame) falls in
    the word's frames (:meth:`Lattice.word_alignment`), capped at 1."""
    spans = lattice.word_alignment()
    if not spans:
        return np.zeros(0)
    post = arc_posteriors(lattice, scale)
    time = np.minimum(lattice.state_frame[lattice.arc_src], max(lattice.num_frames - 1, 0))
    confidence = np.empty(len(spans))
    for i, (word, first, last) in enumerate(spans):
        same = (lattice.arc_olabel == word) & (time >= first) & (time <= last)
        confidence[i] = min(1.0, float(post[same].sum()))
    return confidence
