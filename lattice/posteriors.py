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
    in the same region of the utterance, capped at 1.

    A word arc's time is the frame of its source state (clipped to the last
    frame), and its region on a path runs from the frame after the previous
    word arc's time to the frame before the next one's (the utterance's ends
    where there is none), always including its own time. Where a word's
    output label sits depends on the alignment (determinization moves labels,
    and two alignments of one word sequence may put them a frame apart), so
    the confidence of best-path word ``w`` sums, over every path and every arc
    of it with ``w`` whose region overlaps the region of the best path's
    ``w``, the path's posterior. A lattice of one word sequence gives every
    word 1; an arc is counted once per best-path word whose region it
    overlaps (so two equal neighbours may share an alternative's word)."""
    if lattice.num_states == 0:
        return np.zeros(0)
    from .best_path import best_path_arcs

    arcs, end = best_path_arcs(lattice)
    if end < 0:
        return np.zeros(0)
    scale = _check_scale(scale)
    time = np.minimum(lattice.state_frame[lattice.arc_src], max(lattice.num_frames - 1, 0)).astype(np.int64)
    path = arcs[lattice.arc_olabel[arcs] != 0]
    times = np.concatenate(([-1], time[path], [lattice.num_frames]))
    lo = np.minimum(times[:-2] + 1, times[1:-1])
    hi = np.maximum(times[2:] - 1, times[1:-1])
    logp, final_logp = -scale * lattice.arc_costs(), -scale * lattice.final_costs()
    alpha, beta = _log_forward_backward(lattice.num_states, lattice.arc_src, lattice.arc_dst, logp, final_logp)
    return _region_posteriors(lattice.arc_src, lattice.arc_dst, lattice.arc_olabel, time, logp, final_logp, alpha,
                              beta, lattice.arc_olabel[path].astype(np.int64), lo, hi)


@numba.njit(cache=True, nogil=True)
def _region_posteriors(arc_src, arc_dst, arc_olabel, time, logp, final_logp, alpha, beta, words, lo, hi):
    """For each best-path word ``words[i]`` with region ``[lo[i], hi[i]]``, the
    summed posteriors of the (path, arc with that word) pairs whose regions
    overlap it, capped at 1 (see :func:`word_confidences`). An arc's region
    overlaps when its time lies in ``[lo, hi]``, or, on the side where it does
    not, the previous word arc's time is before ``hi`` (forward sums
    ``before``) or the next one's after ``lo`` (backward sums ``after``)."""
    num_states, num_arcs = alpha.shape[0], arc_src.shape[0]
    total = beta[0]
    out = np.zeros(words.shape[0])
    for i in range(words.shape[0]):
        before = np.full(num_states, -np.inf)  # prefixes whose last word arc is before hi[i] (or none)
        before[0] = 0.0
        for a in range(num_arcs):
            s, d = arc_src[a], arc_dst[a]
            if arc_olabel[a] == 0:
                before[d] = _log_add(before[d], before[s] + logp[a])
            elif time[a] < hi[i]:
                before[d] = _log_add(before[d], alpha[s] + logp[a])
        after = final_logp.copy()  # suffixes whose first word arc is after lo[i] (or none)
        for a in range(num_arcs - 1, -1, -1):
            s, d = arc_src[a], arc_dst[a]
            if arc_olabel[a] == 0:
                after[s] = _log_add(after[s], logp[a] + after[d])
            elif time[a] > lo[i]:
                after[s] = _log_add(after[s], logp[a] + beta[d])
        mass = -np.inf
        for a in range(num_arcs):
            if arc_olabel[a] == words[i]:
                forward = alpha[arc_src[a]] if time[a] <= hi[i] else before[arc_src[a]]
                backward = beta[arc_dst[a]] if time[a] >= lo[i] else after[arc_dst[a]]
                mass = _log_add(mass, forward + logp[a] + backward)
        out[i] = min(1.0, np.exp(mass - total))
    return out
