"""The window kernels (cuda_kernels/lattice_window.cu: window_prune,
window_number, window_offsets, window_pack, window_compact) against their
specification, lattice.window_prune, on a GPU (marked gpu) and on the CPU
emulator, for several lanes at once, each sending, keeping, sending at the
utterance's end or not flushing: the same tokens and links kept, numbered and
packed the same, the keeping lanes' pools compacted the same (and their sizes
reported), and the frames held back moved the same; and window_store, which
fills the pools, against the CPU search's excess of each link."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

from bench.lattice_host import raw_frames
from lattice.window_prune import final_extras, keep_window, prune_window
from wfst import DecoderConfig
from wfst import cuda_kernels_launch as K
from wfst import cuda_layout as layout
from wfst.decoding_graph import DecodingGraph

from .random_graph import random_graph, random_scores

pytestmark = pytest.mark.usefixtures("cupy_module")

FIELDS = {"WF_TOK": 0, "WF_NTOK": 1, "WF_LINK": 2, "WF_NLINK": 3, "WF_NEMIT": 4}
STORED = list(FIELDS.values())
"""The frame table's fields window_store writes: first token, tokens, first link, links, emitting links."""
KINDS = (layout.FLUSH_NONE, layout.FLUSH_SEND, layout.FLUSH_KEEP, layout.FLUSH_FINAL)


def _lanes(seed):
    """Per lane: (flush kind, pool, kept frames, lag), the pool some utterance's
    frames after an earlier keeping flush (its first ``kept`` frames pruned and
    compacted, the frames it held back, then raw frames); the graph's final
    costs, the config."""
    graph = DecodingGraph(random_graph(seed, max_states=16))
    config = DecoderConfig(beam=float(5 + seed % 7), max_active=4 + seed % 6, min_active=1,
                           lattice_beam=float(seed % 6), use_final_probs=seed % 5 != 4)
    lanes = []
    for lane in range(4):
        kind = KINDS[(seed + lane) % 4]
        frames = raw_frames(graph, config, random_scores(seed * 3 + lane, 3 + (seed + lane) % 19))
        first = 0 if kind == layout.FLUSH_FINAL else (seed * 7 + lane) % len(frames)
        frames = frames[first:] if kind == layout.FLUSH_FINAL else frames[first:first + 1 + (seed + 2 * lane) % 11]
        before = (seed + lane) % len(frames)  # frames an earlier flush saw
        pool, kept = (keep_window(frames[:before], 0, config.lattice_beam, (seed // 3 + lane) % before)
                      if before else ([], 0))
        pool = pool + frames[before:]
        lag = 0 if kind == layout.FLUSH_FINAL else (seed + lane) % (len(pool) - kept)
        lanes.append((kind, pool, kept, lag))
    return lanes, graph.fst.final, config


def _device_pools(cupy, lanes, final):
    """The lanes' pools and frame tables as window_store and the earlier flush leave them."""
    W = max(len(pool) for _, pool, _, _ in lanes)
    WT = max(sum(f[0].size for f in pool) for _, pool, _, _ in lanes) + 3
    WX = max(sum(f[3].size for f in pool) for _, pool, _, _ in lanes) + 5
    L = len(lanes)
    arrays = {name: np.full((L, WT), -9, dtype) for name, dtype in
              (("wt_state", np.int32), ("wt_cost", np.float32), ("wt_best", np.int32))}
    arrays.update({name: np.full((L, WX), -9, dtype) for name, dtype in
                   (("wl_src", np.int32), ("wl_dst", np.int32), ("wl_arc", np.int32), ("wl_ac", np.float32),
                    ("wl_excess", np.float32))})
    wframes = np.zeros((L, W, layout.WINDOW_FRAME_INTS), np.int32)
    params = np.zeros((L, layout.LANE_PARAMS), np.int64)
    for lane, (kind, pool, kept, lag) in enumerate(lanes):
        _put(arrays, wframes, lane, pool)
        params[lane, [layout.P_MODE, layout.P_WIN_FRAME, layout.P_FLUSH, layout.P_LAG, layout.P_KEPT]] = (
            layout.MODE_EMIT, len(pool) - 1, kind, lag, kept)
    d = SimpleNamespace(window_params=cupy.asarray(params), wframes=cupy.asarray(wframes), final=cupy.asarray(final),
                        wt_extra=cupy.zeros((L, WT), np.uint32), wt_new=cupy.zeros((L, WT), np.int32),
                        wl_new=cupy.zeros((L, WX), np.int32), totals=cupy.zeros(4, np.int64),
                        **{name: cupy.asarray(values) for name, values in arrays.items()})
    g = SimpleNamespace(lanes=L, W=3, TF=W, WT=WT, WX=WX, blocks_per_lane=2)  # (W: CTAs per lane, fewer than frames)
    words = layout.WINDOW_HEADER + 2 * L + 3 * L * W + 3 * L * WT + 5 * L * WX
    return d, g, words


def _put(arrays, wframes, lane, frames):
    """``frames`` into a lane's pool arrays and frame table, one after another."""
    t = k = 0
    for f, (state, cost, best, src, dst, arc, ac, excess, ne) in enumerate(frames):
        n, nl = state.size, src.size
        for name, values in (("wt_state", state), ("wt_cost", cost), ("wt_best", best)):
            arrays[name][lane, t:t + n] = values
        for name, values in (("wl_src", src), ("wl_dst", dst), ("wl_arc", arc), ("wl_ac", ac),
                             ("wl_excess", excess)):
            arrays[name][lane, k:k + nl] = values
        wframes[lane, f, STORED] = (t, n, k, nl, ne)
        t, k = t + n, k + nl


def _assert_pool(pool, lane, frames, slots):
    """A lane's pool holds ``frames`` one after another from its start, in table entries ``slots``."""
    t = k = 0
    for f, (state, cost, best, src, dst, arc, ac, excess, ne) in zip(slots, frames):
        n, nl = state.size, src.size
        assert pool["wframes"][lane, f, STORED].tolist() == [t, n, k, nl, ne]
        for name, values in (("wt_state", state), ("wt_cost", cost), ("wt_best", best)):
            assert np.array_equal(pool[name][lane, t:t + n], values), name
        for name, values in (("wl_src", src), ("wl_dst", dst), ("wl_arc", arc), ("wl_ac", ac),
                             ("wl_excess", excess)):
            assert np.array_equal(pool[name][lane, k:k + nl], values), name
        t, k = t + n, k + nl


def test_frame_table_fields_match_the_kernel_file():
    import cuda_kernels

    text = (cuda_kernels.DIRECTORY / "lattice_window.cu").read_text()
    for name, value in FIELDS.items():
        assert f"#define {name} {value} " in text or f"#define {name} {value}\n" in text, name


@pytest.mark.parametrize("seed", range(40))
def test_window_kernels_equal_the_specification(cupy_module, seed):
    lanes, final, config = _lanes(seed)
    if cupy_module.__name__ != "cupy" and seed % 2:
        cupy_module.schedule(True, seed=seed)  # emulator: racy orders of the epsilon relaxation's atomics
    _assert_kernels_equal_the_specification(cupy_module, lanes, final, config)


def _random_frame(rng, n, nl, ne, before, states):
    """A raw frame of ``n`` tokens (states below ``states``) and ``nl`` links,
    the first ``ne`` emitting from the ``before`` tokens of the frame before,
    the rest epsilon links between random tokens of its own; excesses of 0-0.6."""
    src = np.concatenate([rng.integers(0, max(before, 1), ne), rng.integers(0, n, nl - ne)]).astype(np.int32)
    best = np.where(rng.random(n) < 0.9, rng.integers(0, nl, n), -1).astype(np.int32)
    return (rng.integers(0, states, n).astype(np.int32), rng.random(n).astype(np.float32) * 50, best, src,
            rng.integers(0, n, nl).astype(np.int32), rng.integers(0, 1 << 20, nl).astype(np.int32),
            rng.random(nl).astype(np.float32), (rng.random(nl) * 0.6).astype(np.float32), ne)


@pytest.mark.parametrize("kind", KINDS[1:])
def test_window_kernels_on_frames_beyond_the_shared_tile(cupy_module, kind):
    """Frames of more tokens than window_prune keeps in shared memory
    (PRUNE_TILE), walked between smaller ones (each kind of frame after the
    other), sending, keeping after kept frames, or at the utterance's end: the
    same as the specification."""
    import cuda_kernels

    tile = int(re.search(r"#define PRUNE_TILE (\d+)", (cuda_kernels.DIRECTORY / "lattice_window.cu").read_text())[1])
    rng = np.random.default_rng(kind)
    sizes = [(200, 400, 0), (tile + 900, 9000, 600), (300, 3000, 2500), (tile + 100, 9000, 600), (tile + 1, 9000, 6000),
             (150, 4000, 3000), (tile, 9000, 600)]
    frames, before = [], 1
    for n, nl, ne in sizes:
        frames.append(_random_frame(rng, n, nl, ne, before, states=40))
        before = n
    config = SimpleNamespace(lattice_beam=1.5, use_final_probs=True)
    final = np.where(rng.random(40) < 0.3, rng.random(40) * 5, np.inf).astype(np.float32)
    kept = 2 if kind == layout.FLUSH_KEEP else 0
    pool = frames
    if kept:
        pool, kept = keep_window(frames[:3], 0, config.lattice_beam, 1)
        pool = pool + frames[3:]
    lag = 0 if kind == layout.FLUSH_FINAL else 2
    _assert_kernels_equal_the_specification(cupy_module, [(kind, pool, kept, lag)], final, config)


def _assert_kernels_equal_the_specification(cupy_module, lanes, final, config):
    """The window kernels on ``lanes`` (per lane: flush kind, pool, kept frames, lag) send, report and leave in
    the pools what lattice.window_prune does."""
    beam = config.lattice_beam
    d, g, words = _device_pools(cupy_module, lanes, final)
    out = cupy_module.zeros(words, np.int32)
    K.window_prune(d, g, beam, config.use_final_probs)
    K.window_number(d, g)
    K.window_offsets(d, g, out)
    K.window_pack(d, g, out)
    K.window_compact(d, g)
    packed = cupy_module.asnumpy(out)
    want, reports, pools = [], [], []  # sent frames; keeping lanes' pool sizes; each lane's pool after, its slots
    for kind, pool, kept, lag in lanes:
        if kind == layout.FLUSH_KEEP:
            after, kept_after = keep_window(pool, kept, beam, lag)
            reports.append([sum(f[0].size for f in after[:kept_after]), sum(f[3].size for f in after[:kept_after])])
            pools.append((after, range(len(after))))
        elif kind != layout.FLUSH_NONE:
            newest = (final_extras(pool[-1][0], pool[-1][1], final, config.use_final_probs)
                      if kind == layout.FLUSH_FINAL else None)
            sent, held = prune_window(pool, beam, lag, newest)
            want += sent
            pools.append((held, range(len(held))))
        else:
            pools.append((pool, range(len(pool))))
    R = len(reports)
    T, Kn, E = int(packed[0]), int(packed[1]), len(want)
    assert (T, Kn) == (sum(f[0].size for f in want), sum(f[3].size for f in want))
    at = layout.WINDOW_HEADER + 2 * R
    assert packed[layout.WINDOW_HEADER:at].reshape(R, 2).tolist() == reports
    counts = packed[at:at + 3 * E].reshape(E, 3)
    assert counts.tolist() == [[f[0].size, f[3].size, f[8]] for f in want]
    data = packed[at + 3 * E:]
    floats = data.view(np.float32)
    to = lo = 0
    for state, cost, best, src, dst, arc, ac, excess, _ in want:
        n, nl = state.size, src.size
        assert np.array_equal(data[to:to + n], state)
        assert np.array_equal(floats[T + to:T + to + n], cost)
        assert np.array_equal(data[2 * T + to:2 * T + to + n], best)
        links = 3 * T + lo
        for i, values in enumerate((src, dst, arc)):
            assert np.array_equal(data[links + i * Kn:links + i * Kn + nl], values)
        for i, values in enumerate((ac, excess), start=3):
            assert np.array_equal(floats[links + i * Kn:links + i * Kn + nl], values)
        to, lo = to + n, lo + nl
    device = {name: cupy_module.asnumpy(getattr(d, name)) for name in
              ("wt_state", "wt_cost", "wt_best", "wl_src", "wl_dst", "wl_arc", "wl_ac", "wl_excess", "wframes")}
    for lane, (frames, slots) in enumerate(pools):  # what stays in each pool, from its start
        _assert_pool(device, lane, frames, slots)


def test_the_cases_keep_send_and_hold_frames_back():
    """The cases above keep after kept frames, hold frames back after them and
    renumber their sources, and prune with the final costs."""
    kinds = {kind: 0 for kind in KINDS}
    after_kept = held = lost = final_drops = 0
    for seed in range(40):
        lanes, final, config = _lanes(seed)
        for kind, pool, kept, lag in lanes:
            kinds[kind] += 1
            after_kept += kind == layout.FLUSH_KEEP and kept > 0
            if lag and kind in (layout.FLUSH_SEND, layout.FLUSH_KEEP):
                _, held_frames = prune_window(pool[kept if kind == layout.FLUSH_KEEP else 0:], config.lattice_beam,
                                              lag)
                held += 1
                lost += int((held_frames[0][3][:held_frames[0][8]] < 0).sum())
            if kind == layout.FLUSH_FINAL:
                newest = final_extras(pool[-1][0], pool[-1][1], final, config.use_final_probs)
                sent, _ = prune_window(pool, config.lattice_beam, 0, newest)
                final_drops += sent[-1][0].size < pool[-1][0].size
    assert min(kinds.values()) >= 8 and after_kept > 5 and held > 10 and lost > 0 and final_drops > 3


@pytest.mark.parametrize("sent_sizes,kept_sizes", [
    ([(5, 7, 3)], [(1300, 2600, 1200), (1700, 2100, 900)]),  # a small offset: source and target overlap
    ([(0, 0, 0)], [(1500, 2500, 1100), (40, 60, 10)]),  # nothing sent before: each element onto itself
    ([(1024, 1024, 500), (1, 2049, 0)], [(3000, 4100, 2048)]),  # offsets of a chunk and of a chunk and one
    ([(2000, 3000, 10)], [(1023, 1025, 1025)]),  # no overlap; every link of the first kept frame emits
])
def test_compact_moves_held_frames_of_many_chunks(cupy_module, sent_sizes, kept_sizes):
    """window_compact of a sending lane on pools longer than one CTA (several
    barrier-separated chunks), frames given as (tokens, links, emitting links):
    the frames held back at the start of the pool, the oldest's emitting sources
    renumbered through the last sent frame's new indices, the frame table
    rebased."""
    rng = np.random.default_rng(0)
    frames = sent_sizes + kept_sizes
    WT, WX, W = sum(f[0] for f in frames) + 3, sum(f[1] for f in frames) + 5, len(frames)
    wframes = np.zeros((1, W + 1, layout.WINDOW_FRAME_INTS), np.int32)
    t = k = 0
    for f, (n, nl, ne) in enumerate(frames):
        wframes[0, f, STORED] = (t, n, k, nl, ne)
        t, k = t + n, k + nl
    pools = {name: rng.integers(-5, 1 << 20, (1, WT)).astype(np.int32) for name in ("wt_state", "wt_best")}
    pools["wt_cost"] = rng.random((1, WT)).astype(np.float32)
    pools.update({name: rng.integers(-3, 2000, (1, WX)).astype(np.int32) for name in ("wl_src", "wl_dst", "wl_arc")})
    pools.update({name: rng.random((1, WX)).astype(np.float32) for name in ("wl_ac", "wl_excess")})
    wt_new = rng.integers(-1, 5000, (1, WT)).astype(np.int32)
    params = np.zeros((1, layout.LANE_PARAMS), np.int64)
    params[0, [layout.P_MODE, layout.P_WIN_FRAME, layout.P_FLUSH, layout.P_LAG]] = (
        layout.MODE_EMIT, W - 1, layout.FLUSH_SEND, len(kept_sizes))
    d = SimpleNamespace(window_params=cupy_module.asarray(params), wframes=cupy_module.asarray(wframes),
                        wt_new=cupy_module.asarray(wt_new), wl_new=cupy_module.zeros((1, WX), np.int32),
                        **{name: cupy_module.asarray(values) for name, values in pools.items()})
    K.window_compact(d, SimpleNamespace(lanes=1, TF=W + 1, WT=WT, WX=WX))
    sent = len(sent_sizes)
    t0, l0 = wframes[0, sent, FIELDS["WF_TOK"]], wframes[0, sent, FIELDS["WF_LINK"]]
    nt, nl = WT - 3 - t0, WX - 5 - l0
    for name in ("wt_state", "wt_cost", "wt_best"):
        assert np.array_equal(cupy_module.asnumpy(getattr(d, name))[0, :nt], pools[name][0, t0:t0 + nt]), name
    for name in ("wl_dst", "wl_arc", "wl_ac", "wl_excess"):
        assert np.array_equal(cupy_module.asnumpy(getattr(d, name))[0, :nl], pools[name][0, l0:l0 + nl]), name
    last_sent = wframes[0, sent - 1]
    renumber = wt_new[0, last_sent[FIELDS["WF_TOK"]]:]
    want = pools["wl_src"][0, l0:l0 + nl].copy()
    ne, before = kept_sizes[0][2], last_sent[FIELDS["WF_NTOK"]]
    sources = want[:ne]
    want[:ne] = np.where((sources >= 0) & (sources < before), renumber[np.clip(sources, 0, renumber.size - 1)], -1)
    assert np.array_equal(cupy_module.asnumpy(d.wl_src)[0, :nl], want)
    table = cupy_module.asnumpy(d.wframes)[0]
    t = k = 0
    for j, (n, nl, ne) in enumerate(kept_sizes):
        assert table[j, STORED].tolist() == [t, n, k, nl, ne]
        t, k = t + n, k + nl


@pytest.mark.parametrize("kept_frame,pruned,held", [
    ((300, 500, 0), [(1500, 2600, 900), (1100, 1030, 1030)], [(1200, 2100, 700)]),  # chunks of frames overlap
    ((0, 0, 0), [(2050, 3000, 10), (7, 9, 3)], []),  # nothing kept before, nothing held back
    ((5, 8, 2), [(1025, 1024, 1)], [(40, 60, 10), (1030, 2000, 900)]),
])
def test_compact_keeps_pruned_frames_of_many_chunks(cupy_module, kept_frame, pruned, held):
    """window_compact of a keeping lane on frames longer than one CTA (several
    barrier-separated chunks of an in-place compaction), frames given as
    (tokens, links, emitting links) with random survivors: each pruned frame's
    survivors after the kept frame, renumbered (best links, sources and
    destinations), the table entries rewritten, the held frames after them,
    the oldest's emitting sources renumbered through the last pruned frame's."""
    rng = np.random.default_rng(len(pruned) + len(held))
    if cupy_module.__name__ != "cupy":
        cupy_module.schedule(True, seed=len(pruned))  # emulator: threads preempted anywhere
    frames = [kept_frame] + pruned + held
    WT, WX, W = sum(f[0] for f in frames) + 3, sum(f[1] for f in frames) + 5, len(frames)
    wframes = np.zeros((1, W + 2, layout.WINDOW_FRAME_INTS), np.int32)
    pools = {name: rng.integers(0, 1 << 20, (1, WT)).astype(np.int32) for name in ("wt_state",)}
    pools["wt_cost"] = rng.random((1, WT)).astype(np.float32)
    pools["wt_best"] = np.full((1, WT), -1, np.int32)
    pools.update({name: np.zeros((1, WX), np.int32) for name in ("wl_src", "wl_dst")})
    pools["wl_arc"] = rng.integers(0, 1 << 20, (1, WX)).astype(np.int32)
    pools.update({name: rng.random((1, WX)).astype(np.float32) for name in ("wl_ac", "wl_excess")})
    wt_new, wl_new = np.full((1, WT), -7, np.int32), np.full((1, WX), -7, np.int32)
    t = k = 0
    starts = []
    for f, (n, nl, ne) in enumerate(frames):
        before = frames[f - 1][0] if f else 1
        pools["wl_src"][0, k:k + ne] = rng.integers(0, max(before, 1), ne)
        pools["wl_src"][0, k + ne:k + nl] = rng.integers(0, max(n, 1), nl - ne)
        pools["wl_dst"][0, k:k + nl] = rng.integers(0, max(n, 1), nl)
        if nl:
            pools["wt_best"][0, t:t + n] = np.where(rng.random(n) < 0.8, rng.integers(0, nl, n), -1)
        wframes[0, f, STORED] = (t, n, k, nl, ne)
        starts.append((t, k))
        t, k = t + n, k + nl
    out_t, out_l = kept_frame[0], kept_frame[1]  # where window_offsets puts each pruned frame's survivors
    for f in range(1, 1 + len(pruned)):
        (t0, l0), (n, nl, ne) = starts[f], frames[f]
        keep_t, keep_l = rng.random(n) < 0.6, rng.random(nl) < 0.5
        wt_new[0, t0:t0 + n] = np.where(keep_t, np.cumsum(keep_t) - 1, -1)
        wl_new[0, l0:l0 + nl] = np.where(keep_l, np.cumsum(keep_l) - 1, -1)
        wframes[0, f, 5:10] = (keep_t.sum(), keep_l.sum(), keep_l[:ne].sum(), out_t, out_l)
        out_t, out_l = out_t + keep_t.sum(), out_l + keep_l.sum()
    params = np.zeros((1, layout.LANE_PARAMS), np.int64)
    params[0, [layout.P_MODE, layout.P_WIN_FRAME, layout.P_FLUSH, layout.P_LAG, layout.P_KEPT]] = (
        layout.MODE_EMIT, W - 1, layout.FLUSH_KEEP, len(held), 1)
    d = SimpleNamespace(window_params=cupy_module.asarray(params), wframes=cupy_module.asarray(wframes),
                        wt_new=cupy_module.asarray(wt_new), wl_new=cupy_module.asarray(wl_new),
                        **{name: cupy_module.asarray(values) for name, values in pools.items()})
    K.window_compact(d, SimpleNamespace(lanes=1, TF=W + 2, WT=WT, WX=WX))
    got = {name: cupy_module.asnumpy(getattr(d, name))[0] for name in (*pools, "wframes")}
    want = {name: values[0].copy() for name, values in pools.items()}  # the kept frame stays as it was
    table = [tuple(wframes[0, 0, STORED])]
    to_t, to_l = kept_frame[0], kept_frame[1]
    for f in range(1, 1 + len(pruned)):
        (t0, l0), (n, nl, ne) = starts[f], frames[f]
        tok_new, link_new = wt_new[0, t0:t0 + n], wl_new[0, l0:l0 + nl]
        kt, kl = tok_new >= 0, link_new >= 0
        best = pools["wt_best"][0, t0:t0 + n]
        src, dst = pools["wl_src"][0, l0:l0 + nl], pools["wl_dst"][0, l0:l0 + nl]
        emitting = np.arange(nl) < ne
        previous = wt_new[0, starts[f - 1][0]:] if f > 1 else None
        new_src = np.where(emitting, src if previous is None else previous[np.minimum(src, previous.size - 1)],
                           tok_new[np.minimum(src, max(n - 1, 0))] if n else src)
        moved = {"wt_state": pools["wt_state"][0, t0:t0 + n][kt], "wt_cost": pools["wt_cost"][0, t0:t0 + n][kt],
                 "wt_best": np.where(best >= 0, link_new[np.maximum(best, 0)], -1)[kt] if nl else best[kt]}
        for name, values in moved.items():
            want[name][to_t:to_t + kt.sum()] = values
        moved = {"wl_src": new_src[kl], "wl_dst": tok_new[dst][kl] if n else dst[kl],
                 **{name: pools[name][0, l0:l0 + nl][kl] for name in ("wl_arc", "wl_ac", "wl_excess")}}
        for name, values in moved.items():
            want[name][to_l:to_l + kl.sum()] = values
        table.append((to_t, kt.sum(), to_l, kl.sum(), kl[:ne].sum()))
        to_t, to_l = to_t + kt.sum(), to_l + kl.sum()
    last_t0, last_n = starts[len(pruned)][0], frames[len(pruned)][0]
    for j, f in enumerate(range(1 + len(pruned), len(frames))):
        (t0, l0), (n, nl, ne) = starts[f], frames[f]
        for name in ("wt_state", "wt_cost", "wt_best"):
            want[name][to_t:to_t + n] = pools[name][0, t0:t0 + n]
        for name in ("wl_src", "wl_dst", "wl_arc", "wl_ac", "wl_excess"):
            want[name][to_l:to_l + nl] = pools[name][0, l0:l0 + nl]
        if j == 0:  # the oldest held frame's emitting sources, as the last pruned frame's tokens are numbered
            sources = pools["wl_src"][0, l0:l0 + ne]
            want["wl_src"][to_l:to_l + ne] = np.where(sources < last_n, wt_new[0, last_t0 + np.minimum(
                sources, last_n - 1)], -1)
        table.append((to_t, n, to_l, nl, ne))
        to_t, to_l = to_t + n, to_l + nl
    for name in pools:
        assert np.array_equal(got[name][:to_t if name.startswith("wt") else to_l],
                              want[name][:to_t if name.startswith("wt") else to_l]), name
    assert [tuple(row) for row in got["wframes"][:len(frames), STORED]] == table


@pytest.mark.parametrize("seed", range(4))
def test_window_store_puts_each_frame_in_its_window_with_each_link_s_excess(cupy_module, seed):
    """window_store (cuda_kernels/lattice_window.cu) on lanes that store a frame (emitting, or the start
    frame: no emitting links), lanes that do not (no window slot, idle): each storing lane's frame table
    entry (first token, tokens, first link, links, emitting links), its tokens and links copied where its
    parameters say, and each link's excess (cost[src] + ac + weight[arc]) - cost[dst] in float32 as the CPU
    search computes it, the source's cost from the previous frame's frontier (the channel) for the
    emitting links and from the frame's own tokens for the epsilon links; the other lanes' windows are
    left alone."""
    xp = cupy_module
    rng = np.random.default_rng(seed)
    lanes, Q, X, WT, WX, WF, A = 5, 40, 80, 128, 256, 4, 300
    modes = np.array([layout.MODE_EMIT, layout.MODE_START, layout.MODE_EMIT, layout.MODE_IDLE, layout.MODE_EMIT])
    win_frame = np.array([1, 0, -1, 2, 3])
    params = np.zeros((lanes, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_MODE], params[:, layout.P_WIN_FRAME] = modes, win_frame
    params[:, layout.P_WIN_TOK], params[:, layout.P_WIN_LINK] = rng.integers(0, 60, lanes), rng.integers(0, 150, lanes)
    params[:, layout.P_CHANNEL] = rng.permutation(lanes)
    n = rng.integers(1, Q + 1, lanes)
    nl = rng.integers(0, X + 1, lanes)
    ne = np.where(modes == layout.MODE_START, 0, rng.integers(0, nl + 1))
    counters = np.zeros((lanes, layout.LANE_COUNTERS), np.int32)
    counters[:, layout.C_NTOK], counters[:, layout.C_NLINK], counters[:, layout.C_NEMIT] = n, nl, ne
    tok_state = rng.integers(0, 1000, (lanes, Q)).astype(np.int32)
    tok_cost = rng.normal(20, 5, (lanes, Q)).astype(np.float32)
    tok_best = rng.integers(-1, X, (lanes, Q)).astype(np.int32)
    ch_cost = rng.normal(10, 5, (lanes, Q)).astype(np.float32)  # the previous frame's frontier, per channel
    weight = rng.normal(1, 1, A).astype(np.float32)
    link_src = np.stack([np.where(np.arange(X) < ne[lane], rng.integers(0, Q, X), rng.integers(0, n[lane], X))
                         for lane in range(lanes)]).astype(np.int32)
    link_dst = np.stack([rng.integers(0, n[lane], X) for lane in range(lanes)]).astype(np.int32)
    link_arc = rng.integers(0, A, (lanes, X)).astype(np.int32)
    link_ac = np.where(np.arange(X) < ne[:, None], rng.normal(3, 1, (lanes, X)), 0).astype(np.float32)
    pool = {name: np.full((lanes, size), -7, dtype) for name, size, dtype in
            (("wt_state", WT, np.int32), ("wt_cost", WT, np.float32), ("wt_best", WT, np.int32),
             ("wl_src", WX, np.int32), ("wl_dst", WX, np.int32), ("wl_arc", WX, np.int32),
             ("wl_ac", WX, np.float32), ("wl_excess", WX, np.float32))}
    wframes = np.full((lanes, WF, layout.WINDOW_FRAME_INTS), -7, np.int32)
    d = SimpleNamespace(params=xp.asarray(params), counters=xp.asarray(counters), tok_state=xp.asarray(tok_state),
                        tok_cost=xp.asarray(tok_cost), tok_best=xp.asarray(tok_best), link_src=xp.asarray(link_src),
                        link_dst=xp.asarray(link_dst), link_arc=xp.asarray(link_arc), link_ac=xp.asarray(link_ac),
                        ch_cost=xp.asarray(ch_cost), weight=xp.asarray(weight), wframes=xp.asarray(wframes),
                        token_spans=xp.zeros((lanes, 2), np.int64), link_spans=xp.zeros((lanes, 2), np.int64),
                        **{name: xp.asarray(values) for name, values in pool.items()})
    if xp.__name__ != "cupy" and seed % 2:
        xp.schedule(True, seed=seed)  # emulator: preemptive schedules of the threads
    g = SimpleNamespace(lanes=lanes, Q=Q, X=X, WT=WT, WX=WX, TF=WF, blocks_per_lane=1 + seed % 2)
    K.token_spans(d, g)
    K.link_spans(d, g)
    K.window_store(d, g)
    got = {name: xp.asnumpy(getattr(d, name)) for name in (*pool, "wframes")}
    for lane in range(lanes):
        if modes[lane] == layout.MODE_IDLE or win_frame[lane] < 0:
            assert all(np.array_equal(got[name][lane], (wframes if name == "wframes" else pool[name])[lane])
                       for name in got), lane
            continue
        t0, l0, k, m = params[lane, layout.P_WIN_TOK], params[lane, layout.P_WIN_LINK], n[lane], nl[lane]
        assert got["wframes"][lane, win_frame[lane], :5].tolist() == [t0, k, l0, m, ne[lane]], lane
        for name, values in (("wt_state", tok_state), ("wt_cost", tok_cost), ("wt_best", tok_best)):
            assert np.array_equal(got[name][lane, t0:t0 + k], values[lane, :k]), name
        for name, values in (("wl_src", link_src), ("wl_dst", link_dst), ("wl_arc", link_arc), ("wl_ac", link_ac)):
            assert np.array_equal(got[name][lane, l0:l0 + m], values[lane, :m]), name
        frontier = ch_cost[params[lane, layout.P_CHANNEL]]
        src, dst = link_src[lane, :m], link_dst[lane, :m]
        cu = np.where(np.arange(m) < ne[lane], frontier[src], tok_cost[lane, src]).astype(np.float32)
        excess = ((cu + link_ac[lane, :m]) + weight[link_arc[lane, :m]]) - tok_cost[lane, dst]
        assert got["wl_excess"][lane, l0:l0 + m].tobytes() == excess.astype(np.float32).tobytes(), lane
        assert np.all(got["wt_state"][lane, t0 + k:] == -7) and np.all(got["wl_src"][lane, l0 + m:] == -7)
