"""One thin typed launch wrapper per CUDA kernel (``cuda_kernels/*.cu``), and
the search's three multi-kernel stages, which the step and the kernel tests
both launch.

Every scalar is passed as an explicit ``np.int32`` / ``np.float32`` (CuPy would
pass a Python int as ``long long`` and check nothing); arrays are CuPy arrays
whose dtypes the kernels expect (see :class:`wfst.cuda_memory.DeviceArrays`).
``d`` is a ``DeviceArrays``, ``g`` its :class:`wfst.cuda_memory.Geometry`. The
window kernels after ``window_store`` read ``d.window_params``, the step's
parameters as they were when its window was stored (they run on their own
stream, beside the next step's search).
"""

from __future__ import annotations

import numpy as np

import cuda_kernels

from . import cuda_layout as layout

i32, f32 = np.int32, np.float32


def _k(name: str, file: str):
    return cuda_kernels.kernel(name, file)


def frame_prologue(d, g, start_state: int, beam: float, max_active: int, min_active: int, beam_delta: float):
    _k("frame_prologue", "frame_prologue.cu")(
        (g.lanes,), (layout.PROLOGUE_THREADS,),
        (d.params, d.counters, d.ch_state, d.ch_cost, d.ch_count, i32(g.Q), d.e_offsets, d.deg_scan, d.hash,
         i32(g.H), d.tok_state, d.tok_slot, i32(start_state), f32(beam), i32(max_active), i32(min_active),
         f32(beam_delta)))


def emit_spans(d, g):
    _k("emit_spans", "spans.cu")(
        (1,), (layout.SPAN_THREADS,), (d.params, d.ch_count, i32(g.Q), d.deg_scan, i32(g.lanes), d.arc_spans))


def token_spans(d, g):
    _k("count_spans", "spans.cu")(
        (1,), (layout.SPAN_THREADS,),
        (d.params, d.counters, i32(layout.C_NTOK), i32(g.Q), i32(g.lanes), d.token_spans))


def link_spans(d, g):
    _k("count_spans", "spans.cu")(
        (1,), (layout.SPAN_THREADS,),
        (d.params, d.counters, i32(layout.C_NLINK), i32(g.X), i32(g.lanes), d.link_spans))


def emit_bound(d, g, acoustic_scale: float):
    _k("emit_bound", "emitting.cu")(
        (g.blocks_per_lane * g.lanes,), (layout.EMIT_THREADS,),
        (d.params, d.counters, d.ch_state, d.ch_cost, d.ch_count, i32(g.Q), d.deg_scan, d.e_offsets, d.weight,
         d.score_column, i32(d.columns16), f32(acoustic_scale), d.arc_spans, i32(g.lanes)))


def emit_expand(d, g, acoustic_scale: float):
    _k("emit_expand", "emitting.cu")(
        (g.blocks_per_lane * g.lanes,), (layout.EMIT_THREADS,),
        (d.params, d.counters, d.ch_state, d.ch_cost, d.ch_count, i32(g.Q), d.deg_scan, d.e_offsets, d.nextstate,
         d.weight, d.score_column, i32(d.columns16), f32(acoustic_scale), d.hash, i32(g.H),
         d.tok_state, d.tok_slot, i32(g.X), d.link_src, d.link_dst, d.link_arc, d.link_ac, d.arc_spans,
         i32(g.lanes)))


def eps_sweep(d, g):
    """One pass over the tokens every lane had at the last token_spans."""
    _k("eps_sweep", "epsilon.cu")(
        (g.blocks_per_lane * g.lanes,), (layout.EPS_THREADS,),
        (d.params, d.counters, d.ne_offsets, d.nextstate, d.weight, d.hash, i32(g.H), d.tok_state, d.tok_slot,
         i32(g.Q), d.token_spans, i32(g.lanes)))


def eps_persistent(d, g):
    _k("eps_persistent", "epsilon.cu")(
        (g.lanes,), (layout.EPS_PERSISTENT_THREADS,),
        (d.params, d.counters, d.ne_offsets, d.nextstate, d.weight, d.hash, i32(g.H), d.tok_state, d.tok_slot,
         i32(g.Q), i32(g.X)))


def eps_links(d, g):
    _k("eps_links", "epsilon.cu")(
        (g.blocks_per_lane * g.lanes,), (layout.EPS_THREADS,),
        (d.params, d.counters, d.ne_offsets, d.nextstate, d.weight, d.hash, i32(g.H), d.tok_state, d.tok_slot,
         i32(g.Q), i32(g.X), d.link_src, d.link_dst, d.link_arc, d.link_ac, d.token_spans, i32(g.lanes)))


def resolve_tokens(d, g):
    _k("resolve_tokens", "ties.cu")(
        (g.blocks_per_lane * g.lanes,), (layout.RESOLVE_THREADS,),
        (d.params, d.hash, i32(g.H), d.tok_slot, d.tok_cost, i32(g.Q), d.tok_hops, d.tok_best_arc, d.tok_best,
         d.token_spans, i32(g.lanes)))


def resolve_links(d, g):
    _k("resolve_links", "ties.cu")(
        (g.blocks_per_lane * g.lanes,), (layout.RESOLVE_THREADS,),
        (d.params, d.counters, d.hash, i32(g.H), d.link_dst, i32(g.X), d.ch_cost, i32(g.Q), d.tok_cost, d.tok_hops,
         d.tok_best_arc, d.link_src, d.link_arc, d.link_ac, d.weight, d.link_spans, i32(g.lanes)))


def tie_bfs(d, g):
    _k("tie_bfs", "ties.cu")(
        (g.lanes,), (layout.TIE_THREADS,),
        (d.params, d.counters, i32(g.Q), d.tok_cost, d.tok_hops, d.tok_best_arc, d.tok_best, i32(g.X), d.link_src,
         d.link_dst, d.link_arc, d.weight))


def emitting_expansion(d, g, acoustic_scale: float):
    """The search's emitting stage: the lanes' arc spans, each lane's cheapest
    candidate, then the tokens and links of the candidates below its bound."""
    emit_spans(d, g)
    emit_bound(d, g, acoustic_scale)
    emit_expand(d, g, acoustic_scale)


def epsilon_closure(d, g):
    """The search's epsilon stage: EPS_GRID_SWEEPS sweeps over the whole grid,
    the persistent kernel to the fixpoint, then the epsilon links."""
    for _ in range(layout.EPS_GRID_SWEEPS):
        token_spans(d, g)
        eps_sweep(d, g)
    eps_persistent(d, g)
    token_spans(d, g)
    eps_links(d, g)


def resolve_ties(d, g):
    """The search's last stage: token indices and costs, each link's
    destination token, then each token's best link by the tie rule."""
    resolve_tokens(d, g)
    link_spans(d, g)
    resolve_links(d, g)
    tie_bfs(d, g)


def window_store(d, g):
    _k("window_store", "lattice_window.cu")(
        (g.blocks_per_lane * g.lanes,), (layout.WINDOW_THREADS,),
        (d.params, d.counters, i32(g.Q), i32(g.X), i32(g.WT), i32(g.WX), i32(g.TF), d.tok_state, d.tok_cost,
         d.tok_best, d.link_src, d.link_dst, d.link_arc, d.link_ac, d.ch_cost, d.weight, d.wt_state, d.wt_cost,
         d.wt_best, d.wl_src, d.wl_dst, d.wl_arc, d.wl_ac, d.wl_excess, d.wframes, d.token_spans, d.link_spans,
         i32(g.lanes)))


def window_prune(d, g, lattice_beam: float, use_final_probs: bool):
    _k("window_prune", "lattice_window.cu")(
        (g.lanes,), (layout.WINDOW_LANE_THREADS,),
        (d.window_params, i32(g.WT), i32(g.WX), i32(g.TF), f32(lattice_beam), i32(use_final_probs), d.final,
         d.wt_state, d.wt_cost, d.wl_src, d.wl_dst, d.wl_excess, d.wt_extra, d.wl_new, d.wframes))


def window_number(d, g):
    _k("window_number", "lattice_window.cu")(
        (g.W, g.lanes), (layout.WINDOW_THREADS,),
        (d.window_params, i32(g.WT), i32(g.WX), i32(g.TF), d.wt_extra, d.wt_new, d.wl_new, d.wframes))


def window_offsets(d, g, out):
    _k("window_offsets", "lattice_window.cu")(
        (1,), (layout.WINDOW_THREADS,), (d.window_params, i32(g.lanes), i32(g.TF), d.wframes, d.totals, out))


def window_pack(d, g, out):
    _k("window_pack", "lattice_window.cu")(
        (g.W, g.lanes), (layout.WINDOW_THREADS,),
        (d.window_params, i32(g.WT), i32(g.WX), i32(g.TF), d.wframes, d.totals, d.wt_state, d.wt_cost, d.wt_best,
         d.wt_new, d.wl_src, d.wl_dst, d.wl_arc, d.wl_ac, d.wl_excess, d.wl_new, out))


def window_compact(d, g):
    _k("window_compact", "lattice_window.cu")(
        (g.lanes,), (layout.WINDOW_LANE_THREADS,),
        (d.window_params, i32(g.WT), i32(g.WX), i32(g.TF), d.wt_state, d.wt_cost, d.wt_best, d.wt_new, d.wl_src,
         d.wl_dst, d.wl_arc, d.wl_ac, d.wl_excess, d.wl_new, d.wframes))


def save_frontier(d, g):
    _k("save_frontier", "frame_end.cu")(
        (g.blocks_per_lane * g.lanes,), (layout.FRAME_END_THREADS,),
        (d.params, d.counters, i32(g.Q), d.tok_state, d.tok_cost, d.ch_state, d.ch_cost, d.ch_count, d.token_spans,
         i32(g.lanes)))


def reset_lanes(d, g):
    """The searched lanes' hash maps and token slots empty again: their tokens'
    (reset_lanes), the whole of an overflowed lane's (reset_overflowed)."""
    _k("reset_lanes", "frame_end.cu")(
        (g.blocks_per_lane * g.lanes,), (layout.FRAME_END_THREADS,),
        (d.params, d.counters, d.hash, i32(g.H), d.tok_slot, i32(g.Q), d.token_spans, i32(g.lanes)))
    _k("reset_overflowed", "frame_end.cu")(
        (g.blocks_per_lane, g.lanes), (layout.FRAME_END_THREADS,),
        (d.params, d.counters, d.hash, i32(g.H), d.tok_slot, i32(g.Q)))
