"""Host-side logic of the CUDA backend, checked without a GPU against the CPU
backend's semantics: the kernels' layout constants, cost keys, the exact radix
select and cutoff, launch geometry, pack offsets, and the host lattice assembly
fed with frames in another token and link order than the CPU's."""

import re
import types

import numpy as np
import pytest

import cuda_kernels
import wfst
from wfst import DecoderConfig
from wfst import cuda_layout as layout
from wfst.cpu_backend import CpuSearch
from wfst.cpu_search import BEAM_DELTA
from bench.lattice_host import packed_step, raw_frames
from wfst.cuda_lattice import LatticeStore
from wfst.cuda_launch_graphs import LaunchGraphs
from wfst.decoding_graph import DecodingGraph

from .lattice_paths import assert_same_arrays
from .random_graph import random_graph, random_scores


def _defines() -> dict:
    text = (cuda_kernels.DIRECTORY / "common.cuh").read_text()
    return {m.group(1): int(m.group(2).rstrip("u"), 0) for m in re.finditer(r"^#define (\w+) \(?(-?\w+)\)?", text, re.M)
            if re.fullmatch(r"-?(0x[0-9a-fA-F]+|\d+)u?", m.group(2))}


def test_layout_matches_common_cuh():
    defines = _defines()
    for name, value in vars(layout).items():
        if name in defines:
            assert defines[name] == int(value), name
    assert {"C_NTOK", "P_MODE", "MODE_EMIT", "OVF_LINKS", "TIGHTEN_LAST", "LANE_COUNTERS", "P_FLUSH", "P_LAG",
            "WINDOW_FRAME_INTS", "WINDOW_HEADER", "HASH_SLOT_INTS"} <= set(defines)


@pytest.mark.parametrize("file,macro,name", [
    ("frame_prologue.cu", "PROLOGUE_THREADS", "PROLOGUE_THREADS"), ("emitting.cu", "EMIT_THREADS", "EMIT_THREADS"),
    ("spans.cu", "SPAN_THREADS", "SPAN_THREADS"),
    ("epsilon.cu", "EPS_THREADS", "EPS_THREADS"), ("epsilon.cu", "EPS_PERSISTENT_THREADS", "EPS_PERSISTENT_THREADS"),
    ("ties.cu", "RESOLVE_THREADS", "RESOLVE_THREADS"), ("ties.cu", "TIE_THREADS", "TIE_THREADS"),
    ("frame_end.cu", "FRAME_END_THREADS", "FRAME_END_THREADS"), ("lattice_window.cu", "WINDOW_THREADS", "WINDOW_THREADS"),
    ("lattice_window.cu", "WINDOW_LANE_THREADS", "WINDOW_LANE_THREADS")])
def test_block_sizes_match_launch_bounds(file, macro, name):
    """The launch's block size is the kernel's, and whole warps: each_span_item's
    warp collectives (__syncwarp, full-mask shuffles, warp_increment) need every
    warp of a block full, which the emulator cannot check."""
    text = (cuda_kernels.DIRECTORY / file).read_text()
    assert re.search(rf"#define {macro} (\d+)", text).group(1) == str(getattr(layout, name))
    assert getattr(layout, name) % 32 == 0 and getattr(layout, name) <= 1024


def _kaldi_cutoff(costs, beam, max_active, min_active):
    """wfst/cpu_search.py's _cutoff as committed (Kaldi's GetCutoff), in numpy."""
    n = costs.size
    best = costs.min() if n else np.float32(np.inf)
    beam_cutoff = np.float32(best + beam)
    max_active_cutoff = min_active_cutoff = np.float32(np.inf)
    if n > max_active:
        max_active_cutoff = np.partition(costs, max_active)[max_active]
    if max_active_cutoff < beam_cutoff:
        return max_active_cutoff, np.float32(np.float32(max_active_cutoff - best) + BEAM_DELTA)
    if n > min_active:
        min_active_cutoff = best if min_active == 0 else np.partition(costs, min_active)[min_active]
    if min_active_cutoff > beam_cutoff:
        return min_active_cutoff, np.float32(np.float32(min_active_cutoff - best) + BEAM_DELTA)
    return beam_cutoff, np.float32(beam)


@pytest.mark.parametrize("seed", range(60))
def test_gpu_cutoff_equals_the_cpu_cutoff(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    costs = (rng.exponential(8, n) + rng.normal(0, 50)).astype(np.float32)
    if seed % 4 == 0:
        costs = np.round(costs).astype(np.float32)  # ties
    beam = np.float32(rng.uniform(0.5, 20))
    max_active = int(rng.integers(1, 300))
    min_active = int(rng.integers(0, max_active + 1))
    expected = _kaldi_cutoff(costs.copy(), beam, max_active, min_active)
    got = layout.gpu_cutoff(costs, beam, max_active, min_active)
    assert got[0] == expected[0] and got[1] == expected[1]
    assert np.float32(got[0]).tobytes() == np.float32(expected[0]).tobytes() or got[0] == 0


class _CapturingStream:
    """Records what LaunchGraphs asks of a stream; its graphs record their launches."""

    def __init__(self):
        self.log, self.current = [], False

    def __enter__(self):
        self.current = True

    def __exit__(self, *exc):
        self.current = False

    def begin_capture(self):
        self.log.append("begin")

    def end_capture(self):
        self.log.append("end")
        return types.SimpleNamespace(launch=lambda stream: self.log.append(("launch", stream is self)))


def test_launch_graphs_issue_then_capture_then_replay():
    stream = _CapturingStream()
    issued = []

    def issue():
        assert stream.current  # launches go to the current stream
        issued.append(stream.log[-1] if stream.log else None)

    graphs = LaunchGraphs()
    graphs.run(("search", 1), stream, issue)  # launch by launch: the kernels load outside a capture
    assert issued == [None] and stream.log == [] and graphs.captured == 0
    graphs.run(("search", 1), stream, issue)  # captured, then launched
    assert issued == [None, "begin"] and stream.log == ["begin", "end", ("launch", True)]
    graphs.run(("search", 1), stream, issue)  # replayed: not issued again
    assert len(issued) == 2 and stream.log[-1] == ("launch", True) and graphs.captured == 1
    graphs.run(("search", 2), stream, issue)  # another key (grid) is a sequence of its own
    assert len(issued) == 3 and graphs.captured == 1
    graphs.enabled = False
    before = list(stream.log)
    graphs.run(("search", 1), stream, issue)  # off: launch by launch, the graph left alone
    assert len(issued) == 4 and stream.log == before


def test_a_capture_that_fails_is_ended_and_not_kept():
    stream = _CapturingStream()
    graphs = LaunchGraphs()
    graphs.run("k", stream, lambda: None)

    def fail():
        raise RuntimeError("launch failed")

    with pytest.raises(RuntimeError, match="launch failed"):
        graphs.run("k", stream, fail)
    assert stream.log == ["begin", "end"] and graphs.captured == 0


def test_blocks_per_lane():
    assert layout.blocks_per_lane(1, 132, per_sm=2) == 2 * 132
    assert layout.blocks_per_lane(1, 132) == layout.MAX_BLOCKS_PER_LANE < layout.BLOCKS_PER_SM * 132  # capped
    assert layout.blocks_per_lane(512, 132, per_sm=4) == 2
    assert layout.blocks_per_lane(512, 132, per_sm=16) == 5  # deeper grids: more blocks for each lane
    assert layout.blocks_per_lane(512, 132) == -(-layout.BLOCKS_PER_SM * 132 // 512)
    assert layout.blocks_per_lane(100000, 132) == 1
    with pytest.raises(ValueError):
        layout.blocks_per_lane(0, 132)
    with pytest.raises(ValueError):
        layout.blocks_per_lane(512, 132, per_sm=0)
    from wfst.cuda_memory import geometry

    for lanes in (1, 512):  # the decoder's grids: BLOCKS_PER_SM deep over the device's multiprocessors
        blocks = geometry(DecoderConfig(), lanes, lanes, 40, 64, 132).blocks_per_lane
        assert blocks == layout.blocks_per_lane(lanes, 132)


def test_tightened_bound():
    assert layout.tightened_bound(1.0, 8.0, 0) == 9.0
    assert layout.tightened_bound(1.0, 8.0, 3) == 2.0
    assert layout.tightened_bound(1.0, 8.0, layout.TIGHTEN_LAST) == np.nextafter(np.float32(1), np.float32(2))
    assert layout.tightened_bound(np.inf, 8.0, 20) == np.inf
    above = np.nextafter(np.float32(3e8), np.float32(np.inf))
    assert layout.tightened_bound(3e8, 15.0, 0) == above and layout.tightened_bound(3e8, 64.0, 2) == above
    assert layout.tightened_bound(-0.0, 8.0, layout.TIGHTEN_LAST) > 0.0


def _shuffled(frames, rng):
    """The same frames with tokens and links in another order (as the GPU makes them)."""
    out = []
    prev_perm = None
    for f, (state, cost, best, src, dst, arc, ac, excess, ne) in enumerate(frames):
        n, nl = state.size, src.size
        perm = rng.permutation(n)          # new position of old token i: inv[i]
        inv = np.empty(n, np.int64)
        inv[perm] = np.arange(n)
        lperm = np.concatenate([rng.permutation(ne), ne + rng.permutation(nl - ne)]).astype(np.int64)
        linv = np.empty(nl, np.int64)
        linv[lperm] = np.arange(nl)
        new_src = src.copy()
        if f > 0:
            new_src[:ne] = prev_perm[src[:ne]]
        new_src[ne:] = inv[src[ne:]]
        new_best = np.array([linv[b] if b >= 0 else -1 for b in best], np.int64)
        out.append((state[perm], cost[perm], new_best[perm], new_src[lperm], inv[dst][lperm], arc[lperm],
                    ac[lperm], excess[lperm], ne))
        prev_perm = inv
    return out


_JUNK = (np.array([-7]), np.array([-7.0], np.float32), np.array([-7]), np.array([-7]), np.array([-7]),
         np.array([-7]), np.array([-7.0], np.float32), np.array([-7.0], np.float32), 0)
"""A packed frame of one token and one link, all -7."""


def _feed(store, channel, frames, first=0):
    """Each frame as a step of three lanes: ours on ``channel`` between two
    others whose junk data sits in the step around ours but whose frames are
    empty (it must not be read), the next region of the store's inbox filled
    with junk as soon as the step is queued (no queued step may read it);
    ``first``: frames appended before."""
    for f, frame in enumerate(frames, start=first):
        words, T, K, to, n, lo, nl, ne = packed_step([_JUNK, frame, _JUNK])
        n[[0, 2]] = 0
        nl[[0, 2]] = 0
        region = store.reserve(words.size)
        region[:] = words
        store.append(np.array([channel ^ 1, channel, channel ^ 2]), region, T, K, to, n, lo, nl, ne,
                     np.array([True, f == 0, True]))
        store.reserve(words.size)[:] = -7


def _step_words(frames):
    """The most words of a step that :func:`_feed` makes of these frames."""
    return max(packed_step([_JUNK, frame, _JUNK])[0].size for frame in frames)


@pytest.mark.parametrize("seed", range(40))
def test_host_lattice_from_reordered_frames_matches_the_cpu(seed):
    fst = random_graph(seed, max_states=12)
    graph = DecodingGraph(fst)
    frames_n = 1 + seed % 17
    scores = random_scores(seed, frames_n)
    config = DecoderConfig(beam=float(4 + seed % 9), max_active=max(1, 3 + seed % 7), min_active=seed % 3,
                           lattice_beam=float(seed % 6), prune_interval=1 + seed % 4)
    expected = CpuSearch(graph, config)
    expected.accept(scores)
    want = expected.finish()
    frames = _shuffled(raw_frames(graph, config, scores), np.random.default_rng(seed))
    inbox = np.empty(_step_words(frames) * (1 + seed % 3) + seed % 5, np.int32)  # steps wrap round it, and wait
    store = LatticeStore(graph, config, channels=4, threads=1 + seed % 3, inbox=inbox)  # channel 1: partition 1
    _feed(store, 1, frames)
    got = store.finish(1)
    assert got.words == want.words
    assert got.cost == want.cost or (np.isinf(got.cost) and np.isinf(want.cost))
    assert np.array_equal(got.alignment, want.alignment)
    assert got.reached_final == want.reached_final
    assert got.word_frames == want.word_frames
    assert_same_arrays(got.lattice, want.lattice)


@pytest.mark.parametrize("column,position,value", [(2, -1, 99), (3, 0, -1), (3, 0, 99), (3, -1, 99), (4, -1, 99),
                                                   (4, 0, -2), (2, -1, "links"), (3, 0, "previous tokens"),
                                                   (3, -1, "tokens"), (4, -1, "tokens")])
def test_device_segments_with_an_index_out_of_range_are_refused(column, position, value):
    """best link, link source (emitting, epsilon) or destination out of range,
    far or exactly one past it (the frame's links for a best link, the previous
    frame's tokens for an emitting source, the frame's tokens for an epsilon
    source and a destination): a LatticeError, not an out-of-bounds access."""
    from lattice.errors import LatticeError

    fst = random_graph(5, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=6, min_active=1, lattice_beam=3.0)
    frames = raw_frames(graph, config, random_scores(5, 4))
    assert 0 < frames[2][8] < frames[2][3].size  # emitting and epsilon links
    value = {"links": frames[2][3].size, "previous tokens": frames[1][0].size,
             "tokens": frames[2][0].size}.get(value, value)
    store = LatticeStore(graph, config, channels=4)
    _feed(store, 1, frames[:2])
    frame = list(frames[2])
    frame[column] = frame[column].copy()
    frame[column][position] = value
    with pytest.raises(LatticeError, match="out of range"):
        _feed(store, 1, [tuple(frame)], first=2)
        store.wait()
    assert store.num_frames(1) == 1  # the refused frame was not counted


def test_a_bad_frame_within_a_channel_s_run_keeps_the_frames_before_it():
    """A channel's consecutive frames in a step (a flushed window) are appended
    to its arrays taken once: a bad one among them raises, and the frames
    before it stay appended, in the grown arrays that hold them."""
    from lattice.errors import LatticeError
    from wfst.cpu_lattice_prune import NUM_TOKENS
    from wfst.cuda_lattice import EMPTY_TOKENS

    fst = random_graph(5, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=6, min_active=1, lattice_beam=3.0, prune_interval=100)
    frames = raw_frames(graph, config, random_scores(5, 30))
    bad = 20
    frames[bad] = tuple(frames[bad][:4]) + (np.full_like(frames[bad][4], 99),) + tuple(frames[bad][5:])
    store = LatticeStore(graph, config, channels=2)
    words, T, K, to, n, lo, nl, ne = packed_step(frames[:25])
    region = store.reserve(words.size)
    region[:] = words
    store.append(np.ones(25, np.int64), region, T, K, to, n, lo, nl, ne, np.arange(25) == 0)
    with pytest.raises(LatticeError, match="out of range"):
        store.wait()
    assert store.num_frames(1) == bad - 1
    arrays = store.arrays(1)
    assert arrays.tok_state.size >= arrays.counters[NUM_TOKENS] == arrays.tok_start[bad] > EMPTY_TOKENS


def test_an_append_that_fails_before_others_are_queued_raises_once_they_are_done():
    """The workers go on with the steps queued after a bad one; its error is
    raised (wait() used to spin forever on a failed step with others queued
    behind it)."""
    import threading

    from lattice.errors import LatticeError

    fst = random_graph(5, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=6, min_active=1, lattice_beam=3.0)
    frames = raw_frames(graph, config, random_scores(5, 6))
    store = LatticeStore(graph, config, channels=4, threads=2)
    bad = list(frames[2])
    bad[4] = bad[4].copy()
    bad[4][0] = 99
    raised = []

    def waiting():
        try:  # raised by a later append (more than QUEUED_STEPS steps) or by wait
            _feed(store, 1, frames[:2] + [tuple(bad)] + frames[3:])
            _feed(store, 2, frames)
            store.wait()
        except LatticeError as error:
            raised.append(error)

    waiter = threading.Thread(target=waiting, daemon=True)
    waiter.start()
    waiter.join(60)
    assert not waiter.is_alive() and len(raised) == 1
    store.settle()  # what was left (channel 1's later frames may fail too, against the uncounted one)
    assert store.settle() is None


@pytest.mark.parametrize("threads,workers", [(3, 3), (6, 4)])  # no more workers than the 4 channels
def test_a_store_s_worker_threads_end_once_it_is_collected(threads, workers):
    import gc
    import threading

    fst = random_graph(5, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=6, min_active=1, lattice_beam=3.0)
    before = set(threading.enumerate())
    store = LatticeStore(graph, config, channels=4, threads=threads)
    _feed(store, 1, raw_frames(graph, config, random_scores(5, 6)))
    assert store.finish_later(1).result().words is not None  # (a finish holds the store while it runs)
    started = [t for t in threading.enumerate() if t not in before]
    assert len(started) == workers and all(t.name.startswith("wfst-lattice") for t in started)
    del store
    gc.collect()
    for thread in started:
        thread.join(10)
        assert not thread.is_alive()


def test_a_worker_runs_its_calls_in_order_and_reports_each_outcome():
    from wfst.cuda_lattice import LatticeWorker

    worker, seen = LatticeWorker("wfst-lattice-test"), []
    worker.append(seen.append, 1)
    failed = worker.finish(lambda: 1 / 0)
    worker.append(lambda: seen.append(2) or [][0])
    ok = worker.finish(lambda: seen.append(3) or "done")
    assert ok.result(timeout=10) == "done" and seen == [1, 2, 3]
    assert isinstance(failed.exception(), ZeroDivisionError)
    assert worker.done.get(timeout=10) is None and isinstance(worker.done.get(timeout=10), IndexError)
    LatticeWorker.stop_all([worker])


def test_ring_offsets_never_hand_out_a_region_in_use():
    """Random steps through rings of several sizes, freed in order when the
    next does not fit: each region lies in the ring and overlaps none in use."""
    from collections import deque

    from wfst.cuda_lattice import ring_offset

    assert ring_offset((10, 20), 10, 30) == 20
    assert ring_offset((10, 20), 11, 30) is None
    assert ring_offset((12, 20), 11, 30) == 0
    assert ring_offset((20, 5), 15, 30) == 5
    assert ring_offset((20, 5), 16, 30) is None
    assert ring_offset((5, 5), 1, 30) is None  # wrapped round and full
    assert ring_offset(None, 30, 30) == 0 and ring_offset(None, 31, 30) is None
    rng = np.random.default_rng(0)
    for capacity in (1, 7, 64):
        live, used, waits = deque(), np.zeros(capacity, bool), 0
        for _ in range(3000):
            words = int(rng.integers(1, capacity + 1))
            while (start := ring_offset((live[0][0], live[-1][1]) if live else None, words, capacity)) is None:
                used[slice(*live.popleft())] = False
                waits += 1
            assert 0 <= start and start + words <= capacity and not used[start:start + words].any()
            used[start:start + words] = True
            live.append((start, start + words))
            while live and rng.random() < 0.2:  # steps done meanwhile
                used[slice(*live.popleft())] = False
        assert waits > 100


def test_append_takes_only_the_region_last_reserved():
    """The workers read a step where it lies, so it must be in the inbox region
    the store handed out (and handed out once)."""
    fst = random_graph(5, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=6, min_active=1, lattice_beam=3.0)
    frames = raw_frames(graph, config, random_scores(5, 2))
    store = LatticeStore(graph, config, channels=2, inbox=np.empty(1000, np.int32))
    words, T, K, to, n, lo, nl, ne = packed_step([frames[0]])
    args = (T, K, to, n, lo, nl, ne, np.array([True]))
    with pytest.raises(ValueError, match="reserve"):
        store.append(np.array([0]), words, *args)  # not in the inbox
    region = store.reserve(words.size)
    region[:] = words
    with pytest.raises(ValueError, match="reserve"):
        store.append(np.array([0]), store.inbox[region.size:2 * region.size], *args)  # beside the region
    store.append(np.array([0]), region, *args)
    with pytest.raises(ValueError, match="reserve"):
        store.append(np.array([0]), region, *args)  # appended already
    with pytest.raises(ValueError, match="does not fit"):
        store.reserve(1001)
    short = store.reserve(words.size - 1)
    with pytest.raises(ValueError, match="do not lie in"):
        store.append(np.array([0]), short, *args)  # the step's last word is beyond its region
    assert store.num_frames(0) == 0


def test_a_bad_start_frame_leaves_the_channel_s_arrays_as_they_were():
    """A start frame reuses arrays that may hold the channel's last utterance:
    refused, it must not have written over them."""
    from lattice.errors import LatticeError

    fst = random_graph(5, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=6, min_active=1, lattice_beam=3.0)
    frames = raw_frames(graph, config, random_scores(5, 8))
    store = LatticeStore(graph, config, channels=4)
    _feed(store, 1, frames)
    before = [a.copy() for a in store.arrays(1)]
    bad = list(frames[0])
    bad[2] = np.full_like(bad[2], 99)  # best links out of range
    with pytest.raises(LatticeError, match="out of range"):
        _feed(store, 1, [tuple(bad)])
        store.wait()
    # bytes compared: the arrays' unused tails may hold NaNs, never equal to themselves
    assert all(a.tobytes() == b.tobytes() for a, b in zip(store.arrays(1), before))


def test_geometry_refuses_steps_whose_pack_offsets_overflow_int32():
    from wfst.cuda_memory import geometry

    config = DecoderConfig(max_active=10000)
    assert geometry(config, 256, 256, 40, 50, 132).X == config.arc_capacity
    assert geometry(config, 2982, 2982, 40, 50, 132).lanes == 2982  # 6 x arc_capacity links each within int32
    with pytest.raises(wfst.ConfigError, match="2983 lanes: the kernels take at most 2982.*counted in int32"):
        geometry(config, 2983, 2983, 40, 50, 132)


def test_geometry_refuses_more_lanes_than_a_grid_dimension_holds():
    from wfst.cuda_memory import geometry

    config = DecoderConfig(max_active=1, min_active=0, token_queue_capacity=4, arc_queue_capacity=4)
    assert geometry(config, 65535, 65535, 40, 50, 132).lanes == 65535
    with pytest.raises(wfst.ConfigError, match="65535"):
        geometry(config, 65536, 65536, 40, 50, 132)


@pytest.mark.parametrize("threads", [1, 2])
def test_host_lattices_of_later_utterances_in_reused_arrays_match_the_cpu(threads):
    """A finished utterance's arrays go to a later one (a finish hands its
    channel the oldest finished set), with every counter and frame of the
    earlier one forgotten."""
    fst = random_graph(3, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=6, min_active=1, lattice_beam=3.0, prune_interval=2)
    store = LatticeStore(graph, config, channels=4, threads=threads)
    taken = []
    for k, frames_n in enumerate([17, 5, 11, 2, 9]):  # a long one first: later ones reuse its bigger arrays
        scores = random_scores(100 + k, frames_n)
        expected = CpuSearch(graph, config)
        expected.accept(scores)
        want = expected.finish()
        _feed(store, 1, raw_frames(graph, config, scores))
        arrays = store.arrays(1)
        taken.append(arrays.link_src)
        if k >= 2:  # the spare arrays of utterance k - 2 (finish hands a channel the oldest finished set)
            assert np.shares_memory(arrays.link_src, taken[k - 2]) or arrays.link_src.size > taken[k - 2].size
        got = store.finish(1)
        assert (got.words, got.cost, got.word_frames) == (want.words, want.cost, want.word_frames)
        assert np.array_equal(got.alignment, want.alignment)
        assert_same_arrays(got.lattice, want.lattice)


def test_a_cleared_channel_s_arrays_serve_a_later_utterance():
    """A stream's finish hands its channel a spare set, which the stream's
    release (clear) gives back instead of dropping."""
    fst = random_graph(3, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=6, min_active=1, lattice_beam=3.0, prune_interval=2)
    store = LatticeStore(graph, config, channels=4, prune_every=1000)  # lattices that outgrow the empty set
    grown = []
    for channel in (1, 2):  # two streams, each finished and released
        _feed(store, channel, raw_frames(graph, config, random_scores(channel, 40)))
        grown.append(store.arrays(channel).link_src)
        store.finish(channel)
        store.clear(channel)
    # the spares now: the second stream's set (finished), the first's (handed to channel 2, then cleared),
    # which finished utterances on channels 0 and 3 take
    for channel in (0, 3):
        _feed(store, channel, raw_frames(graph, config, random_scores(channel, 1)))
        store.finish(channel)
    assert np.shares_memory(store.arrays(0).link_src, grown[1])
    assert np.shares_memory(store.arrays(3).link_src, grown[0])


def test_spare_arrays_stay_as_few_as_their_partition_s_channels():
    """A stream finished and released over and over (each release gives its
    grown arrays to the spares) leaves at most one spare set per channel of
    its partition."""
    fst = random_graph(4, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=6, min_active=1, lattice_beam=3.0, prune_interval=2)
    store = LatticeStore(graph, config, channels=4, threads=2, prune_every=1000)
    for k in range(6):
        _feed(store, 1, raw_frames(graph, config, random_scores(k, 40)))
        store.finish(1)
        store.clear(1)
    part = store.part_of[1]
    assert len(store._spares[part]) == int(np.sum(store.part_of == part))


@pytest.mark.parametrize("threads,window", [(1, 0), (3, 0), (3, 2)])
def test_host_lattices_of_busy_channels_appended_in_parallel_match_the_cpu(threads, window):
    """Lanes in lockstep on several channels (every partition busy at once),
    each running utterances back to back, as bench.lattice_host replays them
    (``window``: their windows flushed every 2 frames, staggered, the store's
    partitions following the stagger)."""
    from bench.lattice_host import measure, replayed

    fst = random_graph(8, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=8, min_active=1, lattice_beam=3.0, prune_interval=3)
    rows = [random_scores(200 + k, 4 + 3 * k) for k in range(3)]
    wants = []
    for scores in rows:
        search = CpuSearch(graph, config)
        search.accept(scores)
        wants.append(search.finish())
    _, results = measure(graph, config, [raw_frames(graph, config, r) for r in rows], lanes=5, threads=threads,
                         rounds=2, window=window, lag=1)
    for lane, lane_results in enumerate(results):
        for r, got in enumerate(lane_results):
            want = wants[replayed(lane, r, 3)]
            assert (got.words, got.cost, got.word_frames) == (want.words, want.cost, want.word_frames)
            assert_same_arrays(got.lattice, want.lattice)


@pytest.mark.parametrize("channels,parts,stagger", [(512, 16, 32), (512, 3, 32), (100, 7, 24), (40, 4, 1)])
def test_channel_partitions_spread_consecutive_and_staggered_channels(channels, parts, stagger):
    """Each channel has one place (a partition and an index, numbered from 0
    in each); consecutive channels in a block of ``stagger``, and channels
    ``stagger`` apart (those whose windows the backend flushes at one step),
    fall on as many different partitions as they can: plain ``c % parts``
    would put every flush of a step on one worker when ``parts`` divides
    ``stagger``."""
    from wfst.cuda_lattice import partition_channels

    part_of, index_of = partition_channels(channels, parts, stagger)
    places = set(zip(part_of.tolist(), index_of.tolist()))
    assert len(places) == channels
    for k in range(parts):
        assert sorted(index_of[part_of == k].tolist()) == list(range(int(np.sum(part_of == k))))
    for first in range(stagger):
        together = part_of[first::stagger]
        assert len(set(together[:parts].tolist())) == min(parts, together[:parts].size)
    for first in range(0, channels - parts + 1):
        if first // stagger == (first + parts - 1) // stagger:  # (across a block of stagger channels some may repeat)
            assert len(set(part_of[first:first + parts].tolist())) == parts


def test_lanes_split_into_even_groups_and_spare_channels_in_proportion():
    from wfst.cuda_backend import _share
    from wfst.cuda_lane_group import split_lanes

    assert split_lanes(7, 3) == [(0, 3), (3, 2), (5, 2)]
    assert split_lanes(4, 4) == [(0, 1), (1, 1), (2, 1), (3, 1)]
    assert split_lanes(5, 1) == [(0, 5)]
    assert _share([9, 8, 7], [3, 2, 2]) == [[9, 8], [7], []]
    assert _share(list(range(7)), [3, 2, 2]) == [[0, 1, 2], [3, 4], [5, 6]]
    assert _share([], [2, 2]) == [[], []]


def test_inbox_rings_take_their_steps_in_turn():
    """Two producers (the backend's lane groups) each reserve in their own ring
    of the inbox and append what they reserved a turn later, their
    reservations outstanding at once; steps wrap round each ring; both
    channels' lattices equal the CPU's. A ring's region is appended only once,
    and only from where it was handed out."""
    fst = random_graph(6, max_states=12)
    graph = DecodingGraph(fst)
    config = DecoderConfig(beam=8.0, max_active=6, min_active=1, lattice_beam=3.0)
    scores = random_scores(6, 15)
    expected = CpuSearch(graph, config)
    expected.accept(scores)
    want = expected.finish()
    frames = raw_frames(graph, config, scores)
    most = max(packed_step([frame])[0].size for frame in frames)
    store = LatticeStore(graph, config, channels=2, threads=2, inbox=np.zeros(5 * most + 3, np.int32))
    with pytest.raises(ValueError, match="rings"):
        store.use_rings([(0, 2 * most), (2 * most, 6 * most)])  # beyond the inbox
    rings = [(0, 2 * most + 1), (2 * most + 1, 5 * most + 3)]
    store.use_rings(rings)
    reserved = {}
    for t, frame in enumerate(frames):
        for ring in (0, 1):  # channel == ring
            words, T, K, to, n, lo, nl, ne = packed_step([frame])
            if ring in reserved:
                region, step = reserved.pop(ring)
                store.append(np.array([ring]), region, *step)
                with pytest.raises(ValueError, match="reserve"):
                    store.append(np.array([ring]), region, *step)  # appended already
            region = store.reserve(words.size, ring)
            offset = (region.ctypes.data - store.inbox.ctypes.data) // 4
            assert rings[ring][0] <= offset and offset + region.size <= rings[ring][1]
            region[:] = words
            reserved[ring] = (region, (T, K, to, n, lo, nl, ne, np.array([t == 0])))
    for ring, (region, step) in reserved.items():
        store.append(np.array([ring]), region, *step)
    none, nothing = np.zeros(0, np.int64), np.zeros(0, bool)
    empty = [store.reserve(0, ring) for ring in (0, 1)]
    with pytest.raises(ValueError, match="reserve"):  # an empty view does not say which ring's it is
        store.append(none, empty[1], 0, 0, none, none, none, none, none, nothing)
    for ring in (1, 0):
        store.append(none, empty[ring], 0, 0, none, none, none, none, none, nothing, ring=ring)
    for channel in (0, 1):
        got = store.finish(channel)
        assert (got.words, got.cost) == (want.words, want.cost)
        assert_same_arrays(got.lattice, want.lattice)
