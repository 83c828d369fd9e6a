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
    scale = _check_scale(scale)
    if lattice.num_states == 0:
        return np.zeros(0)
    from .best_path import best_path_arcs

    arcs, end = best_path_arcs(lattice)
    if end < 0:
        return np.zeros(0)
    stime = np.minimum(lattice.state_frame, max(lattice.num_frames - 1, 0)).astype(np.int64)
    time = stime[lattice.arc_src]  # non-decreasing: the arcs are sorted by source, the states by frame
    path = arcs[lattice.arc_olabel[arcs] != 0]
    times = np.concatenate(([-1], time[path], [lattice.num_frames]))
    lo = np.minimum(times[:-2] + 1, times[1:-1])
    hi = np.maximum(times[2:] - 1, times[1:-1])
    logp, final_logp = -scale * lattice.arc_costs(), -scale * lattice.final_costs()
    alpha, beta = _log_forward_backward(lattice.num_states, lattice.arc_src, lattice.arc_dst, logp, final_logp)
    first_arc = np.searchsorted(time, np.arange(int(stime[-1]) + 2))  # first arc of each time, and the end
    finals = stime[np.isfinite(final_logp)]
    return _region_posteriors(lattice.arc_src, lattice.arc_dst, lattice.arc_olabel, stime, first_arc, logp,
                              final_logp, alpha, beta, int(finals.min()) if finals.size else int(stime[-1]) + 1,
                              lattice.arc_olabel[path].astype(np.int64), lo, hi)


@numba.njit(cache=True, nogil=True)
def _region_posteriors(arc_src, arc_dst, arc_olabel, stime, first_arc, logp, final_logp, alpha, beta,
                       first_final, words, lo, hi):
    """For each best-path word ``words[i]`` with region ``[lo[i], hi[i]]``, the
    summed posteriors of the (path, arc with that word) pairs whose regions
    overlap it, capped at 1 (see :func:`word_confidences`). An arc's region
    overlaps when its time lies in ``[lo, hi]``, or, on the side where it does
    not, the previous word arc's time is before ``hi`` (``before``: the mass of
    such prefixes) or the next one's after ``lo`` (``after``: of such
    suffixes). ``stime``: each state's time; an arc's is its source's.

    ``before`` is ``alpha`` at states of times before ``hi`` (every arc of a
    prefix to them is), and is summed only forward of there, through arcs
    without words, until no state holds any (a stretch without words ends);
    ``after`` likewise backward from ``lo``. So each word costs the arcs of its
    neighbourhood, not the lattice's. ``first_arc[t]``: the first arc of time
    ``t`` or later; ``first_final``: the earliest time of a final state."""
    num_states, num_arcs = alpha.shape[0], arc_src.shape[0]
    total = beta[0]
    out = np.zeros(words.shape[0])
    before, after = np.full(num_states, -np.inf), np.full(num_states, -np.inf)  # -inf: none (yet)
    has_after = np.zeros(num_states, np.bool_)  # after[s] set (its final cost at least; it may be -inf)
    touched = np.empty(2 * num_states, np.int64)  # the states set for this word (each at most twice)
    for i in range(words.shape[0]):
        h, l, n = hi[i], lo[i], 0
        reach = h - 1  # the latest time at which a state holds a prefix mass
        if stime[0] >= h:
            before[0] = 0.0
            touched[n] = 0
            n += 1
            reach = max(reach, stime[0])
        a = first_arc[max(h - 1, 0)]
        while a < num_arcs and stime[arc_src[a]] <= reach:
            s, d = arc_src[a], arc_dst[a]
            if stime[d] >= h:
                if arc_olabel[a] != 0:
                    mass = alpha[s] + logp[a] if stime[s] < h else -np.inf
                else:
                    mass = (alpha[s] if stime[s] < h else before[s]) + logp[a]
                if mass > -np.inf:
                    if before[d] == -np.inf:
                        touched[n] = d
                        n += 1
                    before[d] = _log_add(before[d], mass)
                    reach = max(reach, stime[d])
            a += 1
        start = min(l + 1, first_final)  # the earliest time at which a state holds a suffix mass
        a = first_arc[min(l + 1, first_arc.shape[0] - 1)] - 1
        while a >= 0 and stime[arc_src[a]] + 1 >= start:
            s, d = arc_src[a], arc_dst[a]
            if not has_after[s]:
                has_after[s], after[s] = True, final_logp[s]
                touched[n] = s
                n += 1
            if arc_olabel[a] == 0:
                after[s] = _log_add(after[s], logp[a] + _suffix(d, l, stime, beta, after, has_after, final_logp))
            if after[s] > -np.inf:
                start = min(start, stime[s])
            a -= 1
        mass = -np.inf
        for a in range(first_arc[max(start - 1, 0)], first_arc[max(reach, h) + 1]):  # where both can be finite
            if arc_olabel[a] == words[i]:
                s, d, t = arc_src[a], arc_dst[a], stime[arc_src[a]]
                forward = alpha[s] if t <= h else before[s]
                backward = beta[d] if t >= l else _suffix(d, l, stime, beta, after, has_after, final_logp)
                mass = _log_add(mass, forward + logp[a] + backward)
        out[i] = min(1.0, np.exp(mass - total))
        for k in range(n):  # back to unset, for the next word
            v = touched[k]
            before[v], after[v], has_after[v] = -np.inf, -np.inf, False
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _suffix(d, lo, stime, beta, after, has_after, final_logp):
    """The mass of suffixes from state ``d`` whose first word arc is after ``lo`` (or none)."""
    if stime[d] > lo:
        return beta[d]
    return after[d] if has_after[d] else final_logp[d]
