"""Lattice pruning of a window of recent frames, as the CUDA backend does it on
the device before it copies the frames back (``cuda_kernels/lattice_window.cu``);
this numpy version is its specification, the tests' oracle and the benchmarks'
stand-in for a GPU.

A frame is the tuple ``(state, cost, best, src, dst, arc, ac, excess, ne)`` of
the segment format (see :mod:`wfst.cuda_lattice`): per token its state, cost
and best incoming link (frame-local link index, -1: none); per link its source
(the previous frame's token for the first ``ne``, emitting, links; this frame's
for the epsilon links), destination, arc, acoustic cost and excess.

Extra costs are taken relative to the window's newest frame, every one of whose
tokens counts as extra cost 0, as interim pruning does
(:mod:`wfst.cpu_lattice_prune`): a link whose extra cost (its destination's
plus its excess) exceeds ``lattice_beam`` goes, then every token left without a
link to the newest frame. Extra costs only grow as frames are added and at the
end, where final costs count, so what goes here would also go in the CPU's
final pruning: the pruned frames give the same final lattice, words and costs.
The newest frame keeps every token (later frames may still reach any of them),
so frames after the window refer to its tokens by their index unchanged.

At an utterance's end (:func:`final_extras`) the newest frame's tokens start
from the extra costs the CPU's final pruning gives them instead, so what is left
is what the CPU's final lattice keeps (and every token of the newest frame
beyond the beam goes too).

A flush may instead keep what it prunes on the device (:func:`keep_window`):
the frames after those kept by earlier flushes are pruned and put after them,
so the device holds the utterance's lattice, pruned, and sends it once, at the
end, pruned with the final costs (the kept frames pruned again with the rest).

A flush may keep its newest ``lag`` frames back: they stay in the window as
they were and are pruned again at the next flush, against a newer frame, so
fewer of their tokens reach the host (the frames next to the newest keep
nearly all of theirs). The oldest of them then names its emitting links'
sources by the sent frames' new numbers (-1: removed; such a link cannot be
within the beam at the next flush either, extra costs only grow, and goes).
"""

from __future__ import annotations

import numpy as np


def final_extras(state: np.ndarray, cost: np.ndarray, final: np.ndarray, use_final_probs: bool) -> np.ndarray:
    """The extra costs (float32) of an utterance's last frame's tokens (states
    ``state``, costs ``cost``) as the CPU's final pruning starts them: cost, plus
    the state's final cost (``final``, the graph's) when ``use_final_probs`` and
    some token's state is final, less the least of these totals."""
    cost = np.asarray(cost, np.float32)
    with_final = use_final_probs and bool(np.any(final[state] < np.inf))
    total = cost + final[state].astype(np.float32) if with_final else cost
    return total - total.min() if total.size else total


def window_extras(frames: list[tuple], lattice_beam: float,
                  newest_extra: np.ndarray | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per frame, the tokens' extra costs (float32, inf: pruned) and the links
    kept (bool), the newest frame's tokens from ``newest_extra`` (None: 0).
    Emitting links of the oldest frame start outside the window: they are kept
    or not by their own extra cost. ``frames`` must not be empty."""
    beam = np.float32(lattice_beam)
    extras = [None] * len(frames)
    kept = [None] * len(frames)
    after = None  # extra costs of the frame after this one
    for f in range(len(frames) - 1, -1, -1):
        state, _, _, src, dst, _, _, excess, ne = frames[f]
        n = state.size
        if after is None:
            extra = np.zeros(n, np.float32) if newest_extra is None else newest_extra.astype(np.float32)
        else:
            extra = np.full(n, np.inf, np.float32)
            nxt = frames[f + 1]
            via = after[nxt[4][:nxt[8]]] + nxt[7][:nxt[8]]
            keep = via <= beam
            kept[f + 1][:nxt[8]] = keep
            np.minimum.at(extra, nxt[3][:nxt[8]][keep], via[keep])
        eps_src, eps_dst, eps_excess = src[ne:], dst[ne:], excess[ne:]
        while True:  # epsilon links stay inside the frame: relax to the fixpoint
            via = extra[eps_dst] + eps_excess
            better = via < extra[eps_src]
            if not better.any():
                break
            np.minimum.at(extra, eps_src[better], via[better])
        extra[extra > beam] = np.inf
        kept[f] = np.ones(src.size, bool)
        kept[f][ne:] = extra[eps_dst] + eps_excess <= beam
        extras[f] = extra
        after = extra
    oldest = frames[0]
    kept[0][:oldest[8]] = after[oldest[4][:oldest[8]]] + oldest[7][:oldest[8]] <= beam
    return extras, kept


def prune_window(frames: list[tuple], lattice_beam: float, lag: int = 0,
                 newest_extra: np.ndarray | None = None) -> tuple[list[tuple], list[tuple]]:
    """The window's frames but the newest ``lag`` with the links beyond
    ``lattice_beam`` and the tokens left without links removed, in the same
    format, indices renumbered (order kept); and the ``lag`` frames held back,
    unpruned, the oldest's emitting sources renumbered as the sent frames are.
    ``newest_extra``: as in :func:`window_extras`."""
    if not frames:
        return [], []
    send = len(frames) - lag
    if not 0 < send <= len(frames):
        raise ValueError(f"a flush sends at least one frame: lag {lag} of {len(frames)} frames")
    extras, kept = window_extras(frames, lattice_beam, newest_extra)
    pruned = []
    previous = None  # new index of each token of the previous frame (-1: removed)
    for f, (state, cost, best, src, dst, arc, ac, excess, ne) in enumerate(frames[:send]):
        keep_tok = np.isfinite(extras[f])
        new_tok = np.cumsum(keep_tok) - 1
        keep = kept[f]
        new_link = np.where(keep, np.cumsum(keep) - 1, -1)
        src = src.astype(np.int64)
        src_new = np.concatenate([src[:ne] if previous is None else previous[src[:ne]], new_tok[src[ne:]]])
        new_best = best[keep_tok].astype(np.int64)
        new_best[new_best >= 0] = new_link[new_best[new_best >= 0]]
        pruned.append((state[keep_tok], cost[keep_tok], new_best, src_new[keep], new_tok[dst][keep], arc[keep],
                       ac[keep], excess[keep], int(keep[:ne].sum())))
        previous = np.where(keep_tok, new_tok, -1)
    held = list(frames[send:])
    if held:
        state, cost, best, src, dst, arc, ac, excess, ne = held[0]
        src = src.astype(np.int64)
        src[:ne] = previous[src[:ne]]
        held[0] = (state, cost, best, src, dst, arc, ac, excess, ne)
    return pruned, held


def keep_window(pool: list[tuple], kept: int, lattice_beam: float, lag: int = 0) -> tuple[list[tuple], int]:
    """A flush that keeps: the frames of ``pool`` after its ``kept`` first
    pruned (:func:`prune_window`, the first of them taking its emitting sources
    as they are), all but the newest ``lag`` put after the kept ones. Returns
    the new pool and how many of its frames are kept."""
    pruned, held = prune_window(pool[kept:], lattice_beam, lag)
    return pool[:kept] + pruned + held, kept + len(pruned)
