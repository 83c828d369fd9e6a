"""The exact reference decoder: pure numpy, no pruning, float64, small graphs.

Viterbi over every (frame, state): emitting arcs then a Bellman-Ford epsilon
closure per frame, with back-pointers that change only on strict improvement
(so they form a tree). Independent of the numba backend by construction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wfst import CsrFst


@dataclass
class ExactResult:
    costs: np.ndarray          # (frames + 1, S) float64, best cost of every (frame, state)
    cost: float                # best total cost (final cost included when a final state is reachable)
    words: tuple[int, ...]
    reached_final: bool


def _relax(best, back, back_frame, frame, src, dst, cand, arcs):
    """One vectorised relaxation: per destination the cheapest candidate, kept
    where it strictly improves. Returns whether anything improved."""
    order = np.lexsort((cand, dst))
    dst_sorted = dst[order]
    first = np.ones(order.size, bool)
    first[1:] = dst_sorted[1:] != dst_sorted[:-1]
    winners = order[first]
    better = cand[winners] < best[dst[winners]]
    winners = winners[better]
    best[dst[winners]] = cand[winners]
    back[dst[winners]] = arcs[winners]
    back_frame[dst[winners]] = frame
    return bool(winners.size)


def exact_decode(fst: CsrFst, scores: np.ndarray, acoustic_scale: float = 1.0,
                 use_final_probs: bool = True) -> ExactResult:
    num_states = fst.num_states
    frames = scores.shape[0]
    src = fst.arc_sources()
    emitting = np.arange(fst.num_emitting_arcs)
    epsilon = np.arange(fst.num_emitting_arcs, fst.num_arcs)
    weight = fst.weight.astype(np.float64)
    costs = np.full((frames + 1, num_states), np.inf)
    back = np.full((frames + 1, num_states), -1)
    back_frame = np.full((frames + 1, num_states), -1)

    def closure(t):
        for _ in range(num_states + 1):
            cand = costs[t, src[epsilon]] + weight[epsilon]
            keep = np.isfinite(cand)
            if not keep.any() or not _relax(costs[t], back[t], back_frame[t], t, src[epsilon][keep],
                                            fst.nextstate[epsilon][keep], cand[keep], epsilon[keep]):
                return
        raise AssertionError("negative epsilon cycle")

    costs[0, fst.start] = 0.0
    closure(0)
    for t in range(frames):
        ac = -(acoustic_scale * scores[t].astype(np.float64))
        cand = costs[t, src[emitting]] + ac[fst.ilabel[emitting] - 1] + weight[emitting]
        keep = np.isfinite(cand)
        if keep.any():
            _relax(costs[t + 1], back[t + 1], back_frame[t + 1], t, src[emitting][keep],
                   fst.nextstate[emitting][keep], cand[keep], emitting[keep])
        closure(t + 1)
    last = costs[frames]
    with_final = last + fst.final.astype(np.float64)
    reached_final = bool(np.isfinite(with_final).any())
    total = with_final if (reached_final and use_final_probs) else last
    state = int(np.argmin(total))
    if not np.isfinite(total[state]):
        return ExactResult(costs, float("inf"), (), False)
    words = []
    t = frames
    while back[t, state] >= 0:
        arc = back[t, state]
        if fst.olabel[arc]:
            words.append(int(fst.olabel[arc]))
        t, state = int(back_frame[t, state]), int(src[arc])
    return ExactResult(costs, float(total[np.argmin(total)]), tuple(reversed(words)), reached_final)
