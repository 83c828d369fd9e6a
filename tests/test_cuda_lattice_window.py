"""The window kernels (cuda_kernels/lattice_window.cu: window_prune,
window_number, window_offsets, window_pack, window_shift) against their
specification, lattice.window_prune, on a GPU (marked gpu) and on the CPU
emulator: the same tokens and links kept, numbered and packed the same, and the
frames kept back moved to the front of the pool the same, for several lanes at
once."""

from types import SimpleNamespace

import numpy as np
import pytest

from bench.lattice_host import raw_frames
from lattice.window_prune import prune_window
from wfst import DecoderConfig
from wfst import cuda_kernels_launch as K
from wfst import cuda_layout as layout
from wfst.decoding_graph import DecodingGraph

from .random_graph import random_graph, random_scores

pytestmark = pytest.mark.usefixtures("cupy_module")

FIELDS = {"WF_TOK": 0, "WF_NTOK": 1, "WF_LINK": 2, "WF_NLINK": 3, "WF_NEMIT": 4}
STORED = list(FIELDS.values())
"""The frame table's fields window_store writes: first token, tokens, first link, links, emitting links."""


def _windows(seed):
    """Per lane a window of some utterance's raw frames (None: the lane does not
    flush) and the frames its flush keeps back."""
    graph = DecodingGraph(random_graph(seed, max_states=16))
    config = DecoderConfig(beam=float(5 + seed % 7), max_active=4 + seed % 6, min_active=1,
                           lattice_beam=float(seed % 6))
    windows, lags = [], []
    for lane in range(3):
        if (seed + lane) % 3 == 2:
            windows.append(None)
            lags.append(0)
            continue
        frames = raw_frames(graph, config, random_scores(seed * 3 + lane, 3 + (seed + lane) % 19))
        first = (seed * 7 + lane) % len(frames)
        windows.append(frames[first:first + 1 + (seed + 2 * lane) % 9])
        lags.append((seed + lane) % len(windows[-1]))
    return windows, lags, config.lattice_beam


def _device_pools(cupy, windows, lags):
    """The lanes' pools and frame tables as window_store leaves them."""
    W = max(len(w) for w in windows if w is not None)
    WT = max(sum(f[0].size for f in w) for w in windows if w is not None) + 3
    WX = max(sum(f[3].size for f in w) for w in windows if w is not None) + 5
    L = len(windows)
    pool = {name: np.full((L, WT), -9, dtype) for name, dtype in
            (("wt_state", np.int32), ("wt_cost", np.float32), ("wt_best", np.int32))}
    pool.update({name: np.full((L, WX), -9, dtype) for name, dtype in
                 (("wl_src", np.int32), ("wl_dst", np.int32), ("wl_arc", np.int32), ("wl_ac", np.float32),
                  ("wl_excess", np.float32))})
    wframes = np.zeros((L, W, layout.WINDOW_FRAME_INTS), np.int32)
    params = np.zeros((L, layout.LANE_PARAMS), np.int64)
    for lane, window in enumerate(windows):
        if window is None:
            params[lane, layout.P_MODE] = layout.MODE_EMIT
            params[lane, layout.P_WIN_FRAME] = 0  # stores a frame, does not flush
            continue
        t = k = 0
        for f, (state, cost, best, src, dst, arc, ac, excess, ne) in enumerate(window):
            n, nl = state.size, src.size
            for name, values in (("wt_state", state), ("wt_cost", cost), ("wt_best", best)):
                pool[name][lane, t:t + n] = values
            for name, values in (("wl_src", src), ("wl_dst", dst), ("wl_arc", arc), ("wl_ac", ac),
                                 ("wl_excess", excess)):
                pool[name][lane, k:k + nl] = values
            wframes[lane, f, STORED] = (t, n, k, nl, ne)
            t, k = t + n, k + nl
        params[lane, [layout.P_MODE, layout.P_WIN_FRAME, layout.P_FLUSH, layout.P_LAG]] = (
            layout.MODE_EMIT, len(window) - 1, 1, lags[lane])
    d = SimpleNamespace(window_params=cupy.asarray(params), wframes=cupy.asarray(wframes),
                        wt_extra=cupy.zeros((L, WT), np.uint32), wt_new=cupy.zeros((L, WT), np.int32),
                        wl_new=cupy.zeros((L, WX), np.int32), totals=cupy.zeros(3, np.int64),
                        **{name: cupy.asarray(values) for name, values in pool.items()})
    g = SimpleNamespace(lanes=L, W=W, WT=WT, WX=WX, blocks_per_lane=2)
    words = layout.WINDOW_HEADER + 3 * L * W + 3 * L * WT + 5 * L * WX
    return d, g, words


def test_frame_table_fields_match_the_kernel_file():
    import cuda_kernels

    text = (cuda_kernels.DIRECTORY / "lattice_window.cu").read_text()
    for name, value in FIELDS.items():
        assert f"#define {name} {value} " in text or f"#define {name} {value}\n" in text, name


@pytest.mark.parametrize("seed", range(30))
def test_window_kernels_equal_the_specification(cupy_module, seed):
    windows, lags, lattice_beam = _windows(seed)
    if all(w is None for w in windows):
        pytest.skip("no lane flushes")
    if cupy_module.__name__ != "cupy" and seed % 2:
        cupy_module.schedule(True, seed=seed)  # emulator: racy orders of the epsilon relaxation's atomics
    d, g, words = _device_pools(cupy_module, windows, lags)
    out = cupy_module.zeros(words, np.int32)
    K.window_prune(d, g, lattice_beam)
    K.window_number(d, g)
    K.window_offsets(d, g, out)
    K.window_pack(d, g, out)
    K.window_shift(d, g)
    packed = cupy_module.asnumpy(out)
    flushed = [prune_window(w, lattice_beam, lag) if w is not None else ([], []) for w, lag in zip(windows, lags)]
    want = [f for sent, _ in flushed for f in sent]
    T, Kn, E = int(packed[0]), int(packed[1]), len(want)
    assert (T, Kn) == (sum(f[0].size for f in want), sum(f[3].size for f in want))
    counts = packed[layout.WINDOW_HEADER:layout.WINDOW_HEADER + 3 * E].reshape(E, 3)
    assert counts.tolist() == [[f[0].size, f[3].size, f[8]] for f in want]
    data = packed[layout.WINDOW_HEADER + 3 * E:]
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
    pool = {name: cupy_module.asnumpy(getattr(d, name)) for name in
            ("wt_state", "wt_cost", "wt_best", "wl_src", "wl_dst", "wl_arc", "wl_ac", "wl_excess", "wframes")}
    for lane, (_, held) in enumerate(flushed):  # the held frames, at the front of the pool and the frame table
        t = k = 0
        for f, (state, cost, best, src, dst, arc, ac, excess, ne) in enumerate(held):
            n, nl = state.size, src.size
            table = pool["wframes"][lane, f]
            assert [table[FIELDS[name]] for name in FIELDS] == [t, n, k, nl, ne]
            for name, values in (("wt_state", state), ("wt_cost", cost), ("wt_best", best)):
                assert np.array_equal(pool[name][lane, t:t + n], values), name
            for name, values in (("wl_src", src), ("wl_dst", dst), ("wl_arc", arc), ("wl_ac", ac),
                                 ("wl_excess", excess)):
                assert np.array_equal(pool[name][lane, k:k + nl], values), name
            t, k = t + n, k + nl


def test_some_held_frames_move_and_lose_sources():
    """The cases above hold frames back, move them and renumber their sources."""
    moved = lost = 0
    for seed in range(30):
        windows, lags, lattice_beam = _windows(seed)
        for window, lag in zip(windows, lags):
            if window is not None and lag:
                _, held = prune_window(window, lattice_beam, lag)
                moved += 1
                lost += int((held[0][3][:held[0][8]] < 0).sum())
    assert moved > 20 and lost > 0


@pytest.mark.parametrize("sent_sizes,kept_sizes", [
    ([(5, 7, 3)], [(1300, 2600, 1200), (1700, 2100, 900)]),  # a small offset: source and target overlap
    ([(0, 0, 0)], [(1500, 2500, 1100), (40, 60, 10)]),  # nothing sent before: each element onto itself
    ([(1024, 1024, 500), (1, 2049, 0)], [(3000, 4100, 2048)]),  # offsets of a chunk and of a chunk and one
    ([(2000, 3000, 10)], [(1023, 1025, 1025)]),  # no overlap; every link of the first kept frame emits
])
def test_shift_moves_pools_of_many_chunks(cupy_module, sent_sizes, kept_sizes):
    """window_shift on pools longer than one CTA (several barrier-separated
    chunks), frames given as (tokens, links, emitting links): the kept frames'
    arrays at the start of the pool, the oldest's emitting sources renumbered
    through the last sent frame's new indices, the frame table rebased."""
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
        layout.MODE_EMIT, W - 1, 1, len(kept_sizes))
    d = SimpleNamespace(window_params=cupy_module.asarray(params), wframes=cupy_module.asarray(wframes),
                        wt_new=cupy_module.asarray(wt_new),
                        **{name: cupy_module.asarray(values) for name, values in pools.items()})
    K.window_shift(d, SimpleNamespace(lanes=1, W=W + 1, WT=WT, WX=WX))
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
