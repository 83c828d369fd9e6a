"""The CUDA backend against the CPU backend, on a GPU (marked gpu) and on the
CPU emulator of tests/cuda_emulator (every test runs on both: ``cupy_module``).

Same best paths, bit-equal float32 costs, alignments and word times on hundreds
of seeded random graphs, equivalent lattices, lanes refilled mid-batch,
float16/cupy/torch inputs, bad inputs, tiny capacities (overflow warning, never
garbage), and the memory budget against what was allocated."""

import dataclasses
import re
import warnings
from collections import deque

import numpy as np
import pytest

import wfst
from wfst import CapacityWarning, DecoderConfig, MemoryBudgetError, ScoresError
from wfst import cuda_layout as layout
from wfst.cuda_memory import MAX_LANE_GROUPS, check_allocation

from .decoder_graphs import epsilon_fan_in, flat_scores, graph
from .lattice_paths import assert_same_arrays
from .random_graph import random_graph, random_scores

pytestmark = pytest.mark.usefixtures("cupy_module")


def _pair(fst, config, lanes=4, **kw):
    return (wfst.Decoder(fst, config, device="cpu"), wfst.Decoder(fst, config, device="cuda", lanes=lanes, **kw))


def _same_decodes(cpu, gpu, batch, gpu_batch=None):
    """Both decoders' Results and lattices agree, with no queue overflow on the
    GPU (which decodes ``gpu_batch``, the same scores elsewhere, if given)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CapacityWarning)
        results = gpu.decode(batch if gpu_batch is None else gpu_batch)
    for got, want in zip(results, cpu.decode(batch)):
        _same(got, want)
        assert_same_arrays(got.lattice, want.lattice)


def _roomy(fst, max_active):
    """Queue capacities no frame can exceed (one token per state, one link per
    arc), so the GPU never retries with a tighter beam and must equal the CPU."""
    tokens = max(4 * max_active, fst.num_states)
    return {"token_queue_capacity": tokens, "arc_queue_capacity": max(3 * tokens, fst.num_arcs)}


def _same(got, want):
    assert got.words == want.words
    assert np.float32(got.cost).tobytes() == np.float32(want.cost).tobytes() or got.cost == want.cost
    assert np.array_equal(got.alignment, want.alignment)
    assert got.word_frames == want.word_frames
    assert got.reached_final == want.reached_final
    assert got.graph_cost == pytest.approx(want.graph_cost, abs=1e-4)


def test_a_cuda_decoder_builds_no_packed_cpu_graph():
    """The packed layout only the CPU search reads (12 bytes an arc: 370 MB on
    the full TLG) is not built by a CUDA decoder, offline or streaming."""
    fst = random_graph(1, max_states=14)
    decoder = wfst.Decoder(fst, DecoderConfig(max_active=100, min_active=1, **_roomy(fst, 100)), device="cuda", lanes=2)
    decoder.decode(random_scores(1, 6))
    stream = decoder.stream()
    stream.accept(random_scores(2, 3))
    stream.finish()
    assert decoder.graph._host_layout is None


@pytest.mark.parametrize("block,epsilon_arcs", [(b, 2) for b in range(10)] + [(b, 8) for b in range(2)])
def test_random_graphs_match_the_cpu(block, epsilon_arcs):
    """epsilon_arcs 8: many epsilon arcs into a state, their cycles positive (a
    zero cycle there is often negative in float32 sums: a GraphError)."""
    for seed in range(block * 30, block * 30 + 30):
        fst = random_graph(seed, max_states=14, zero_cycles=epsilon_arcs == 2, epsilon_arcs=epsilon_arcs)
        max_active = max(1, 2 + seed % 9)
        config = DecoderConfig(beam=float(3 + seed % 12), max_active=max_active, min_active=seed % 3,
                               lattice_beam=float(seed % 7), prune_interval=1 + seed % 5,
                               **_roomy(fst, max_active))
        batch = [random_scores(seed * 7 + i, 1 + (seed + i) % 23) for i in range(3)]
        _same_decodes(*_pair(fst, config, lanes=2), batch)


@pytest.mark.parametrize("block", range(3))
def test_graphs_full_of_ties_match_the_cpu(block):
    """Weights in eighths and scores in quarters: many emitting and epsilon
    links achieve a token's cost exactly, so the tie rule (fewest epsilon hops,
    then the lowest arc) picks the words and alignments."""
    for seed in range(block * 20, block * 20 + 20):
        fst = random_graph(seed, max_states=14, step=0.125)
        max_active = 3 + seed % 9
        config = DecoderConfig(beam=float(4 + seed % 9), max_active=max_active, min_active=seed % 3,
                               lattice_beam=float(seed % 5),
                               **_roomy(fst, max_active))
        batch = [np.round(random_scores(seed * 5 + i, 2 + (seed + i) % 15) * 4).astype(np.float32) / 4
                 for i in range(3)]
        _same_decodes(*_pair(fst, config, lanes=2), batch)


@pytest.mark.parametrize("frames, lag, table", [(1, 0, 256), (2, 8, 256), (3, 1, 256), (5, 2, 256), (64, 0, 256),
                                                (64, 8, 256), (1, 0, 4), (3, 2, 8)])
def test_lattice_windows_of_any_length_give_the_cpu_s_results(monkeypatch, frames, lag, table):
    """The device prunes each lane's window of frames and keeps what is left in
    the lane's pool of ``table`` frames, until the job's end, when it sends the
    pool pruned with the final costs: flushed every frame, every few frames,
    and (64 frames, a token capacity no larger than a frame can need) whenever
    the window's pool could not take one more, when it sends what it holds;
    each flush but a job's last keeping up to ``lag`` frames back; with small
    tables, the kept frames sent whenever the table fills."""
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_FRAMES", frames)
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_LAG", lag)
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_TABLE_FRAMES", max(table, frames + lag))
    windows = kept = utterances = held_back = 0
    for seed in range(8):
        fst = random_graph(500 + seed, max_states=14)
        config = DecoderConfig(beam=float(6 + seed % 5), max_active=8, min_active=seed % 2,
                               lattice_beam=float(seed % 5), prune_interval=1 + seed % 4,
                               token_queue_capacity=max(8, fst.num_states),
                               arc_queue_capacity=max(24, 3 * fst.num_states, fst.num_arcs),
                               use_final_probs=seed != 3)
        batch = [random_scores(seed * 11 + i, 9 + 8 * i) for i in range(3)]
        cpu, gpu = _pair(fst, config, lanes=2)
        _same_decodes(cpu, gpu, batch)
        assert (gpu._cuda.geometry.window_period, gpu._cuda.geometry.W) == (frames, frames + lag)
        windows += gpu._cuda.stats["windows"]
        kept += gpu._cuda.stats["windows_kept"]
        held_back += gpu._cuda.stats["held_back"]
        utterances += len(batch)
    assert (held_back > utterances) == (lag > 0)
    assert kept > (0 if frames == 64 else 2 * utterances)  # windows end mid-utterance, kept on the device
    assert windows - kept >= utterances  # each job's end sends
    if frames == 64 or table < 10:
        assert windows - kept > utterances  # and pools that fill send before it


@pytest.mark.parametrize("send_frames", [1, 2])
def test_a_small_packed_buffer_sends_pools_early_with_the_cpu_s_results(monkeypatch, send_frames):
    """A packed buffer of ``send_frames`` worst-case frames per lane: the plan
    sends the fullest pools early so that every step's sends fit (with one
    frame, every pool at every step: nothing stays on the device), and the
    lattices are still the CPU's."""
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_SEND_CAPACITY", send_frames)
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_FRAMES", 3)
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_LAG", 1)
    early = kept = held_back = 0
    for seed in range(6):
        fst = random_graph(700 + seed, max_states=14)
        config = DecoderConfig(beam=float(6 + seed % 5), max_active=8, min_active=seed % 2,
                               lattice_beam=float(seed % 5), token_queue_capacity=max(8, fst.num_states),
                               arc_queue_capacity=max(24, 3 * fst.num_states, fst.num_arcs),
                               use_final_probs=seed != 3)
        batch = [random_scores(seed * 13 + i, 9 + 8 * i) for i in range(3)]
        cpu, gpu = _pair(fst, config, lanes=2)
        _same_decodes(cpu, gpu, batch)
        early += gpu._cuda.stats["early_sends"]
        kept += gpu._cuda.stats["windows_kept"]
        held_back += gpu._cuda.stats["held_back"]
    assert early > 0
    if send_frames == 1:
        assert kept == held_back == 0


def test_a_frame_table_smaller_than_a_window_is_refused(monkeypatch):
    from wfst.errors import ConfigError

    monkeypatch.setattr("wfst.cuda_memory.WINDOW_TABLE_FRAMES", 20)
    with pytest.raises(ConfigError, match="frame table"):
        wfst.Decoder(random_graph(3, max_states=8), DecoderConfig(max_active=4, min_active=0), device="cuda",
                     lanes=1)
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_FRAMES", 5)
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_LAG", 3)
    for table, fits in ((7, False), (8, True)):  # a window: 5 frames and 3 kept back
        monkeypatch.setattr("wfst.cuda_memory.WINDOW_TABLE_FRAMES", table)
        make = lambda: wfst.Decoder(random_graph(3, max_states=8), DecoderConfig(max_active=4, min_active=0),
                                    device="cuda", lanes=1)
        if fits:
            make()
        else:
            with pytest.raises(ConfigError, match="frame table"):
                make()


@pytest.mark.parametrize("header,keeping", [((5, 0, 2, 0, 0), 0), ((2, 0, -1, 0, 0), 0), ((2, 3, 2, 3, 4), 0),
                                            ((2, 3, 2, 5, 0), 0), ((1, 1, 1, 1, 0), 0), ((0, 0, -1, 0), 1),
                                            ((0, 0, 0, 1 << 30), 1), ((1, 0, 1, 1, 1, 1, 0, 0, 0), 2),
                                            ((0, 0, 1 << 20, 0, 0, 0, 0), 1)])
def test_packed_windows_whose_counts_do_not_add_up_are_refused(header, keeping):
    """T, K, then the pool sizes (tokens, links) of ``keeping`` lanes that kept
    their windows, then (tokens, links, emitting links) of the one frame sent:
    totals that differ from the counts, a negative count or pool size, a pool
    larger than the pool, more emitting links than links, or more than was
    copied: a LatticeError before anything is read."""
    from lattice.errors import LatticeError

    gpu = wfst.Decoder(random_graph(3, max_states=8), DecoderConfig(max_active=4, min_active=0), device="cuda",
                       lanes=2)
    backend = gpu._cuda
    group = backend._lane_groups()[0]
    group.begin(deque(), [])
    packed = backend.lattices.reserve(12)
    packed[:len(header)] = header
    group.windows_done = group.windows.record()
    with pytest.raises(LatticeError, match="do not add up"):
        group._append((packed, (np.array([0]), np.array([True]), np.arange(keeping)), []))


def test_lattices_equivalent_on_a_larger_graph():
    fst = random_graph(12345, max_states=200, num_columns=8)
    config = DecoderConfig(beam=12.0, max_active=50, min_active=10, lattice_beam=5.0)
    batch = [random_scores(i, 60, num_columns=8) for i in range(9)]
    cpu, gpu = _pair(fst, config, lanes=4)
    for got, want in zip(gpu.decode(batch), cpu.decode(batch)):
        _same(got, want)
        assert_same_arrays(got.lattice, want.lattice)


def test_more_utterances_than_lanes_and_zero_frames():
    fst = random_graph(7, max_states=10)
    config = DecoderConfig(beam=10.0, max_active=20, min_active=0)
    batch = [random_scores(i, (i * 5) % 13) for i in range(11)]  # includes zero-frame utterances
    cpu, gpu = _pair(fst, config, lanes=3)
    for got, want in zip(gpu.decode(batch), cpu.decode(batch)):
        _same(got, want)


def test_float16_cupy_and_torch_inputs(cupy_module):
    cupy = cupy_module
    fst = random_graph(3, max_states=12)
    config = DecoderConfig(beam=9.0, max_active=30, min_active=0)
    scores = random_scores(3, 40)
    cpu, gpu = _pair(fst, config, lanes=2)
    want = cpu.decode(scores)
    _same(gpu.decode(cupy.asarray(scores)), want)
    half = scores.astype(np.float16)
    _same(gpu.decode(cupy.asarray(half)), cpu.decode(half))
    _same(gpu.decode(half), cpu.decode(half))
    _same(gpu.decode(cupy.asarray(scores.astype(np.float64))), cpu.decode(scores.astype(np.float64)))
    wide = cupy.zeros((40, 10), np.float32)
    wide[:, :4] = cupy.asarray(scores)
    _same(gpu.decode(wide[:, :]), cpu.decode(cupy.asnumpy(wide)))
    from wfst.cuda_scores import score_input

    for x in (cupy.asarray(scores), cupy.asarray(half), wide[:, :4]):  # zero-copy: rows apart, columns adjacent
        assert score_input(x, fst.max_ilabel, device_id=0).array.data.ptr == x.data.ptr
    _same(gpu.decode(wide[:, :4]), want)  # read in place, 10 columns from one row to the next
    torch = pytest.importorskip("torch")
    if cupy.__name__ != "cupy" or not torch.cuda.is_available():
        pytest.skip("torch CUDA tensors need a real GPU")
    t = torch.from_numpy(scores).cuda()
    _same(gpu.decode(t), want)
    _same(gpu.decode(t.half()), cpu.decode(half))
    _same(gpu.decode(torch.from_numpy(scores)), want)


def test_float64_device_scores_are_read_in_place_and_keep_denormals(cupy_module):
    """float64 scores on the device are not converted first (CuPy's astype would
    flush denormals to zero); the kernels round each value as they read it, as
    numpy rounds on the host: bit-equal costs, denormal acoustic costs included."""
    from wfst.cuda_scores import score_input

    cupy = cupy_module
    fst = random_graph(4, max_states=12)
    config = DecoderConfig(beam=9.0, max_active=30, min_active=0, lattice_beam=4.0)
    scores = random_scores(4, 30).astype(np.float64)
    scores[::2] *= 1e-40  # below float32's normal range (1.2e-38): denormal costs on every other frame
    scores[1::3] += 1e-9  # values that float64 -> float32 rounding changes
    x = cupy.asarray(scores)
    source = score_input(x, fst.max_ilabel, device_id=0)
    assert source.dtype_code == 2 and source.array.data.ptr == x.data.ptr
    cpu, gpu = _pair(fst, config, lanes=2)
    for got, want in zip(gpu.decode([x, x[:7]]), cpu.decode([scores, scores[:7]])):
        _same(got, want)
        assert_same_arrays(got.lattice, want.lattice)
        assert np.float32(got.cost).tobytes() == np.float32(want.cost).tobytes()


def test_zero_frame_device_scores_of_any_width_decode_as_on_the_cpu(cupy_module):
    """A matrix without frames, of any width and dtype, is accepted on the
    device as on the host (the start state's epsilon closure decides)."""
    fst = random_graph(3, max_states=12)
    cpu, gpu = _pair(fst, DecoderConfig(beam=9.0, max_active=30, min_active=0), lanes=2)
    for width in (0, 1, fst.max_ilabel + 2):
        for dtype in (np.float16, np.float32, np.float64):
            empty = np.zeros((0, width), dtype)
            for got, want in zip(gpu.decode([cupy_module.asarray(empty), random_scores(5, 3)]),
                                 cpu.decode([empty, random_scores(5, 3)])):
                _same(got, want)


def test_bad_inputs_raise_typed_errors(cupy_module):
    cupy = cupy_module
    fst = random_graph(3, max_states=12)
    gpu = wfst.Decoder(fst, DecoderConfig(), device="cuda", lanes=1)
    bad = cupy.asarray(random_scores(3, 5))
    bad[2, 1] = bad[4, 0] = cupy.nan
    with pytest.raises(ScoresError, match=r"\[2, 1\]"):  # the first bad value, as the CPU backend names it
        gpu.decode(bad)
    with pytest.raises(ScoresError, match="columns"):
        gpu.decode(cupy.zeros((4, 1), np.float32))
    with pytest.raises(ScoresError, match="2-D"):
        gpu.decode(cupy.zeros(4, np.float32))
    with pytest.raises(ScoresError):
        gpu.decode(cupy.zeros((4, 4), np.int32))


def test_scores_on_another_gpu_are_refused(cupy_module):
    """The kernels cannot read another GPU's memory: such scores are a
    ScoresError naming both GPUs, for decode() and a stream's chunk alike, and
    the stream goes on with good rows (the emulator's arrays say which GPU holds
    them; a real GPU needs a second one)."""
    cupy = cupy_module
    fst = random_graph(3, max_states=12)
    config = DecoderConfig(beam=9.0, max_active=30, min_active=0)
    cpu, gpu = _pair(fst, config, lanes=1)
    scores = random_scores(3, 5)
    if cupy.__name__ == "cupy":
        if cupy.cuda.runtime.getDeviceCount() < 2:
            pytest.skip("needs a second GPU")
        with cupy.cuda.Device(1):
            elsewhere = cupy.asarray(scores)
    else:
        elsewhere = cupy.asarray(scores)
        elsewhere.device_id = 1
    with pytest.raises(ScoresError, match=r"scores\[1\] is on GPU 1 but the decoder runs on GPU 0"):
        gpu.decode([scores, elsewhere])
    stream = gpu.stream()
    with pytest.raises(ScoresError, match="chunk is on GPU 1"):
        stream.accept(elsewhere)
    assert stream.num_frames == 0
    stream.accept(scores)
    _same(stream.finish(), cpu.decode(scores))


def test_tiny_capacities_warn_and_stay_valid():
    fst = random_graph(99, max_states=60, num_columns=6)
    config = DecoderConfig(beam=30.0, max_active=4, min_active=0, token_queue_capacity=4, arc_queue_capacity=6)
    batch = [random_scores(i, 30, num_columns=6) for i in range(4)]
    gpu = wfst.Decoder(fst, config, device="cuda", lanes=2)
    with pytest.warns(CapacityWarning, match="queue_capacity"):
        results = gpu.decode(batch)
    cpu_cost = wfst.Decoder(fst, DecoderConfig(beam=30.0, max_active=1000), device="cpu").decode(batch)
    finite = 0
    for got, exact, scores in zip(results, cpu_cost, batch):
        if np.isfinite(got.cost):  # no garbage: a real path, scored as its labels say
            finite += 1
            assert got.cost >= exact.cost - 1e-3  # a tighter search never beats the exact one
            assert got.graph_cost + got.acoustic_cost == pytest.approx(got.cost, abs=1e-3)
            assert got.alignment.shape == (scores.shape[0],)
            read = -config.acoustic_scale * scores[np.arange(scores.shape[0]), got.alignment - 1]
            assert got.acoustic_cost == pytest.approx(float(read.sum()), abs=1e-3)
            best = got.lattice.best_path()
            assert best.words == got.words and best.cost == pytest.approx(got.cost, abs=1e-3)
    assert finite > 0


def test_a_run_with_overflows_leaves_every_lane_s_working_memory_empty(cupy_module):
    """A new decoder's lanes start empty (a token slot of -1 is a token not yet
    published to the epsilon kernels), and the step's end empties the hash map
    slots and token slots of the tokens it searched, and the whole of an
    overflowed lane's (whose frame may hold slots no token lists), so the next
    frame on the lane starts clean."""
    fst = random_graph(99, max_states=60, num_columns=6)
    config = DecoderConfig(beam=30.0, max_active=4, min_active=0, token_queue_capacity=4, arc_queue_capacity=6)
    gpu = wfst.Decoder(fst, config, device="cuda", lanes=3)
    d = gpu._cuda.arrays
    empty = np.array([-1, -1, 0, -1], np.int32)  # key, cost key (KEY_NONE), dirty flag, token
    assert np.all(cupy_module.asnumpy(d.hash) == empty) and np.all(cupy_module.asnumpy(d.tok_slot) == -1)
    with pytest.warns(CapacityWarning):
        gpu.decode([random_scores(i, 20, num_columns=6) for i in range(5)])
    assert gpu._cuda.stats["retries"] > 0
    assert np.all(cupy_module.asnumpy(d.hash) == empty)
    assert np.all(cupy_module.asnumpy(d.tok_slot) == -1)


def test_no_warning_when_capacities_suffice():
    fst = random_graph(5, max_states=10)
    gpu = wfst.Decoder(fst, DecoderConfig(max_active=50, min_active=0), device="cuda", lanes=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CapacityWarning)
        gpu.decode([random_scores(5, 20)])


def test_negative_epsilon_loop_in_float32_is_a_graph_error_or_matches():
    fst = graph(2, 0, {1: 0.0}, [(0, 1, 1, 1, 0.5), (1, 1, 2, 0, 0.25), (1, 0, 0, 0, 1.0)])
    cpu, gpu = _pair(fst, DecoderConfig(), lanes=1)
    _same(gpu.decode(flat_scores(6)), cpu.decode(flat_scores(6)))


@pytest.mark.parametrize("lanes", [1, 3])
def test_an_epsilon_cycle_negative_only_in_float32_is_a_graph_error(lanes):
    """1 -> 2 -> 1 sums to 0 in float64 (the graph check passes it), but in
    float32 (0.683546 + w) - w < 0.683546: the device's epsilon iterations
    must stop and report it as the CPU does, not loop."""
    w = 0.39500877
    fst = graph(3, 0, {1: 0.0}, [(0, 1, 1, 0, 0.683546), (1, 2, 0, 0, w), (2, 1, 0, 0, -w)])
    cpu, gpu = _pair(fst, DecoderConfig(), lanes=lanes)
    with pytest.raises(wfst.GraphError, match="float32"):
        cpu.decode(flat_scores(1, 1))
    with pytest.raises(wfst.GraphError, match="float32"):
        gpu.decode([flat_scores(1, 1)] * lanes)


def test_a_state_lowered_by_many_epsilon_predecessors_decodes_as_on_the_cpu():
    cpu, gpu = _pair(epsilon_fan_in(), DecoderConfig(), lanes=2)
    _same_decodes(cpu, gpu, [flat_scores(1, 1), flat_scores(3, 1)])


def test_budget_matches_the_allocation():
    some = random_graph(11, max_states=40)
    no_emitting_arcs = graph(2, 0, {1: 0.0}, [(0, 1, 0, 3, 0.5)])  # (a placeholder score column and arc column)
    for fst, lanes, max_active in ((some, 1, 100), (some, 8, 1000), (some, 3, 7), (no_emitting_arcs, 2, 10)):
        gpu = wfst.Decoder(fst, DecoderConfig(max_active=max_active, min_active=0), device="cuda", lanes=lanes)
        backend = gpu._cuda
        report = check_allocation(backend.memory, backend.arrays.device_bytes, backend.arrays.pinned_bytes)
        assert abs(report["device_ratio"] - 1) <= 0.05
        # to the byte, but for the lane groups' packed-window headers, which the budget leaves out
        headers = MAX_LANE_GROUPS * layout.WINDOW_HEADER * 4
        assert backend.arrays.device_bytes - backend.memory.device_total == headers
        assert backend.arrays.pinned_bytes - backend.memory.pinned_host == headers


def test_too_many_lanes_is_a_budget_error_before_allocating(cupy_module, monkeypatch):
    """Twice the lanes the free memory holds (a margin for other processes on
    the GPU, such as a sanitizer's tests beside these) are refused before the
    decoder's arrays, all its device and pinned memory, are made."""
    from wfst import cuda_memory

    cupy = cupy_module
    fst = random_graph(11, max_states=40)
    cupy.get_default_memory_pool().free_all_blocks()  # as the decoder does before it reads the free memory
    cupy.get_default_pinned_memory_pool().free_all_blocks()
    free, _ = cupy.cuda.runtime.memGetInfo()
    one = wfst.budget(fst, DecoderConfig(max_active=100000), lanes=1)
    lanes = 2 * (free - one.device_fst) // (one.per_lane + one.per_channel) + 1  # (max_lanes stops at the limit)

    def allocates(*args):
        raise AssertionError("the decoder allocated its arrays")

    monkeypatch.setattr(cuda_memory.DeviceArrays, "__init__", allocates)
    with pytest.raises(MemoryBudgetError, match="lanes"):
        wfst.Decoder(fst, DecoderConfig(max_active=100000), device="cuda", lanes=lanes)


def test_an_allocation_that_fails_although_the_budget_fitted_is_a_budget_error(cupy_module, monkeypatch):
    """Memory taken between the budget's check and the allocation: a device
    allocation or a pinned one (CuPy's CUDARuntimeError with
    cudaErrorMemoryAllocation) that fails is a MemoryBudgetError naming lanes;
    another runtime error is left as it is."""
    import cupyx

    from wfst.cuda_memory import DeviceArrays

    fst = random_graph(11, max_states=40)

    def out_of_device_memory(*args):
        raise cupy_module.cuda.memory.OutOfMemoryError(1024, 0)

    with monkeypatch.context() as patch:
        patch.setattr(DeviceArrays, "_alloc", out_of_device_memory)
        with pytest.raises(MemoryBudgetError, match="device allocation failed although 2 lanes fitted"):
            wfst.Decoder(fst, device="cuda", lanes=2)
    for status, error in ((2, MemoryBudgetError), (1, cupy_module.cuda.runtime.CUDARuntimeError)):
        def refused(*args, status=status):
            raise cupy_module.cuda.runtime.CUDARuntimeError(status)

        with monkeypatch.context() as patch:
            patch.setattr(cupyx, "empty_pinned", refused)
            with pytest.raises(error, match="2 lanes could not pin" if status == 2 else None):
                wfst.Decoder(fst, device="cuda", lanes=2)


def test_a_decoder_hands_back_the_blocks_cupy_s_pools_cache_before_its_budget(cupy_module):
    """Blocks CuPy's pools keep from freed arrays (an earlier decoder's) count
    as used in the free memory the budget is checked against: a new decoder
    frees them first (a larger lane count after a smaller one then fits)."""
    pools = (cupy_module.get_default_memory_pool(), cupy_module.get_default_pinned_memory_pool())
    if cupy_module.__name__ != "cupy":  # the emulator caches nothing: the calls are what it can see
        before = [pool.frees for pool in pools]
        wfst.Decoder(random_graph(2), device="cuda", lanes=1)
        assert [pool.frees for pool in pools] == [n + 1 for n in before]
        return
    cached = cupy_module.empty(64 << 20, np.uint8)
    del cached
    assert pools[0].free_bytes() >= 64 << 20
    wfst.Decoder(random_graph(2), device="cuda", lanes=1)
    assert pools[0].free_bytes() < 64 << 20


def test_auto_picks_cuda_here():
    assert wfst.Decoder(random_graph(1), device="auto").device == "cuda"


def test_the_embedded_example_matches_the_cpu():
    from wfst.example import load_example

    ex = load_example()
    config = DecoderConfig(acoustic_scale=ex.acoustic_scale, beam=12.0, max_active=2000, lattice_beam=6.0)
    batch = ex.scores[:6]
    _same_decodes(*_pair(ex.fst, config, lanes=4), batch)


@pytest.mark.parametrize("seed", range(4))
def test_random_interleavings_of_the_threads_change_nothing(cupy_module, seed):
    """Emulator only: a seeded random thread order with a preemption point at
    every atomic (the races of hash insertion, epsilon relaxation, link counts)."""
    if cupy_module.__name__ == "cupy":
        pytest.skip("a real GPU picks its own interleavings")
    cupy_module.schedule(True, seed=seed)
    for graph_seed in range(seed * 10, seed * 10 + 10):
        fst = random_graph(graph_seed, max_states=16)
        config = DecoderConfig(beam=9.0, max_active=6, min_active=1, lattice_beam=4.0, **_roomy(fst, 6))
        batch = [random_scores(graph_seed * 5 + i, 4 + i * 3) for i in range(3)]
        cpu, gpu = _pair(fst, config, lanes=2)
        for got, want in zip(gpu.decode(batch), cpu.decode(batch)):
            _same(got, want)


@pytest.mark.parametrize("seed", range(3))
def test_random_stream_schedules_change_nothing(cupy_module, monkeypatch, seed):
    """Emulator only: each stream's queued work also runs at seeded random
    moments (in the stream's order, after what it waits for), not only when
    waited for: two lane groups, windows flushed every few frames, more
    utterances than lanes; the CPU's Results and lattices."""
    if cupy_module.__name__ == "cupy":
        pytest.skip("a real GPU picks its own schedules")
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_FRAMES", 2 + seed)
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_LAG", seed)
    cupy_module.schedule_streams(seed)
    fst = random_graph(80 + seed, max_states=16)
    config = DecoderConfig(beam=9.0, max_active=8, min_active=0, lattice_beam=4.0, **_roomy(fst, 8))
    batch = [random_scores(400 + i, 3 + (i * 5) % 14) for i in range(7)]
    cpu, gpu = _pair(fst, config, lanes=4)
    gpu._cuda.lane_groups = 2
    _same_decodes(cpu, gpu, batch)


def test_a_run_that_raises_midway_leaves_the_decoder_usable(monkeypatch):
    fst = random_graph(21, max_states=20)
    config = DecoderConfig(beam=10.0, max_active=30, min_active=0, **_roomy(fst, 30))
    batch = [random_scores(i, 20 + 5 * i) for i in range(4)]  # (lanes keep their windows: an append per end)
    cpu, gpu = _pair(fst, config, lanes=2)
    store = gpu._cuda.lattices
    append, calls = store.append, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return append(*args, **kwargs)

    monkeypatch.setattr(store, "append", failing)
    with pytest.raises(KeyboardInterrupt):
        gpu.decode(batch)
    monkeypatch.setattr(store, "append", append)
    assert gpu._channel_pool.in_use == 0
    _same_decodes(cpu, gpu, batch)


def test_lattice_worker_threads_change_nothing():
    from wfst.config import available_cores

    fst = random_graph(31, max_states=20)
    config = DecoderConfig(beam=8.0, max_active=10, min_active=0, lattice_beam=3.0, **_roomy(fst, 10))
    batch = [random_scores(i, 5 + i) for i in range(12)]
    one = wfst.Decoder(fst, config, device="cuda", lanes=3, threads=1).decode(batch)
    many = wfst.Decoder(fst, config, device="cuda", lanes=3, threads=4)
    assert many.threads == 4
    for got, want in zip(many.decode(batch), one):
        _same(got, want)
        assert_same_arrays(got.lattice, want.lattice)
    assert wfst.Decoder(fst, config, device="cuda", lanes=1).threads == available_cores()


def test_cuda_graphs_and_deeper_grids_change_nothing():
    """The launch sequences replayed as CUDA graphs (the default), launched
    kernel by kernel, and on grids of another depth give the same Results and
    lattices; the graphs are captured once per sequence and grid."""
    fst = random_graph(44, max_states=20)
    config = DecoderConfig(beam=8.0, max_active=10, min_active=0, lattice_beam=3.0, **_roomy(fst, 10))
    batch = [random_scores(100 + i, 3 + 7 * i) for i in range(7)]
    cpu, gpu = _pair(fst, config, lanes=3)
    graphs = gpu._cuda.launch_graphs
    graphs.enabled = False
    _same_decodes(cpu, gpu, batch)
    assert graphs.captured == 0
    graphs.enabled = True
    _same_decodes(cpu, gpu, batch)
    assert graphs.captured == 4  # search, store, reset, pack
    steps = gpu._cuda.stats["steps"]
    _same_decodes(cpu, gpu, batch)  # replayed: nothing captured again
    assert graphs.captured == 4 and gpu._cuda.stats["steps"] > steps
    deeper = gpu._cuda.geometry.blocks_per_lane + 3
    gpu._cuda.geometry = dataclasses.replace(gpu._cuda.geometry, blocks_per_lane=deeper)
    _same_decodes(cpu, gpu, batch)
    assert graphs.captured == 8  # the same sequences on the deeper grids


@pytest.mark.parametrize("groups", [2, 3, 5])
def test_lane_groups_change_nothing(cupy_module, monkeypatch, groups):
    """Lanes stepped in groups, each on its own streams, packing into its own
    region and inbox ring and borrowing only its share of the spare channels,
    give the CPU's Results and lattices: windows flushed every few frames and
    kept back, host and device scores mixed, more utterances than lanes (some
    of zero frames). Each group captures its own launch graphs."""
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_FRAMES", 3)
    monkeypatch.setattr("wfst.cuda_memory.WINDOW_LAG", 1)
    fst = random_graph(71, max_states=20)
    config = DecoderConfig(beam=9.0, max_active=10, min_active=0, lattice_beam=4.0, **_roomy(fst, 10))
    batch = [random_scores(300 + i, (i * 7) % 19) for i in range(13)]
    cpu, gpu = _pair(fst, config, lanes=5)
    gpu._cuda.lane_groups = groups
    _same_decodes(cpu, gpu, batch, [cupy_module.asarray(s) if i % 2 else s for i, s in enumerate(batch)])
    captured = {key[:2] for key in gpu._cuda.launch_graphs._graphs}
    assert {("search", k) for k in range(groups)} <= captured
    assert gpu._cuda.channels.in_use == 0


def test_lane_groups_under_overflow_give_one_group_s_results():
    """Tiny queues: each group searches its overflowed lanes again on its own
    streams; the Results and the warning are those of one group."""
    fst = random_graph(99, max_states=60, num_columns=6)
    config = DecoderConfig(beam=30.0, max_active=4, min_active=0, token_queue_capacity=4, arc_queue_capacity=6)
    batch = [random_scores(i, 16, num_columns=6) for i in range(5)]
    outcomes = []
    for groups in (1, 3):
        gpu = wfst.Decoder(fst, config, device="cuda", lanes=3)
        gpu._cuda.lane_groups = groups
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = gpu.decode(batch)
        outcomes.append(([(r.words, r.cost, r.alignment.tolist()) for r in results],
                         sorted(str(w.message) for w in caught), gpu._cuda.stats["retries"]))
    assert outcomes[0][2] > 0 and "queue_capacity" in outcomes[0][1][0]
    assert outcomes[1] == outcomes[0]


def test_lane_groups_must_fit_the_lanes():
    gpu = wfst.Decoder(random_graph(5, max_states=10), DecoderConfig(max_active=5, min_active=0), device="cuda",
                       lanes=3)
    for bad in (0, 4, 2.0, True):
        gpu._cuda.lane_groups = bad
        with pytest.raises(wfst.ConfigError, match="lane_groups"):
            gpu.decode([random_scores(1, 4)])
    gpu._cuda.lane_groups = 3
    assert len(gpu.decode([random_scores(1, 4)] * 4)) == 4


def test_a_lane_group_sees_its_rows_of_every_lane_array():
    """lanes_view cuts every array with a row per lane (and only those) to the
    group's rows, and gives each group its own packed region and totals."""
    from wfst.cuda_memory import LANE_ARRAYS

    gpu = wfst.Decoder(random_graph(5, max_states=10), DecoderConfig(max_active=5, min_active=0), device="cuda",
                       lanes=5, channels=7)
    d = gpu._cuda.arrays
    per_lane = {name for name, value in vars(d).items() if getattr(value, "shape", (0,))[:1] == (5,)}
    assert per_lane == set(LANE_ARRAYS)
    view = d.lanes_view(2, 3, 1)
    for name in LANE_ARRAYS:
        whole, part = getattr(d, name), getattr(view, name)
        assert part.shape == (3,) + whole.shape[1:]
        assert _address(part) == _address(whole) + 2 * whole.strides[0]
    first = d.lanes_view(0, 2, 0)
    a, b = d.packed_region(0, 2, 0), d.packed_region(2, 3, 1)
    assert a[1] <= b[0] and b[1] <= d.packed.size and view.packed.size == b[1] - b[0]
    assert _address(first.totals) != _address(view.totals) and view.host_params.shape[1] == 3


def _address(array) -> int:
    """Where a device or host array's data starts."""
    if hasattr(array, "__cuda_array_interface__"):
        return array.__cuda_array_interface__["data"][0]
    return array.ctypes.data


def test_a_run_freezes_the_objects_older_than_it_and_unfreezes_them_after(monkeypatch):
    """The garbage collector scans only what the run made while it runs (a full
    collection of everything would hold the GIL for tens of milliseconds, the
    GPU idle), and everything again once it ends, also when it raises."""
    import gc

    from wfst.cuda_lane_group import LaneGroup

    seen, step = [], LaneGroup.step

    def watched(self):
        seen.append(gc.get_freeze_count())
        gc.collect()  # (timed into the decoder's stats)
        return step(self)

    monkeypatch.setattr(LaneGroup, "step", watched)
    gpu = wfst.Decoder(random_graph(5, max_states=10), DecoderConfig(max_active=5, min_active=0), device="cuda",
                       lanes=2)
    gpu.decode([random_scores(i, 4) for i in range(3)])
    assert seen and min(seen) > 0 and gc.get_freeze_count() == 0
    assert gpu._cuda.stats["gc_seconds"] > 0
    monkeypatch.setattr(LaneGroup, "step", lambda self: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        gpu.decode([random_scores(5, 4)])
    assert gc.get_freeze_count() == 0


def test_a_deleted_decoder_is_freed_without_the_garbage_collector():
    """Nothing a run makes keeps the decoder alive (a reference cycle would hold
    its device memory until a collection, while the benchmarks make one large
    decoder after another)."""
    import gc
    import weakref

    gpu = wfst.Decoder(random_graph(5, max_states=10), DecoderConfig(max_active=5, min_active=0), device="cuda",
                       lanes=3)
    gpu._cuda.lane_groups = 2
    gpu.decode([random_scores(i, 6) for i in range(4)])
    gc.collect()
    gc.disable()
    try:
        backend = weakref.ref(gpu._cuda)
        del gpu
        assert backend() is None
    finally:
        gc.enable()


def test_costs_too_large_for_the_beam_keep_the_cheapest_path_as_on_the_cpu():
    """The kernels' bound keeps the cheapest candidate where float32 rounds
    cheapest + beam back to it, as the CPU's does (both dropped every token)."""
    from .test_decoder_inputs import LARGE_COSTS, large_cost_graph

    for weight, beam in LARGE_COSTS:
        cpu, gpu = _pair(large_cost_graph(weight), DecoderConfig(beam=beam, max_active=100, min_active=0), lanes=2)
        scores = [np.zeros((frames, 1), np.float32) for frames in (3, 1, 5)]
        for got, want, frames in zip(gpu.decode(scores), cpu.decode(scores), (3, 1, 5)):
            assert want.words == (5,) + (6,) * (frames - 1) and want.reached_final
            _same(got, want)


def test_capacity_warnings_name_the_queue_that_overflowed_and_count_the_abandoned():
    """Only the links overflow (a token queue with a slot per state): the
    warning names arc_queue_capacity alone. Tiny queues that make some
    utterances overflow even at the tightest beam: a warning counts exactly the
    abandoned ones (those whose Result has cost inf). Both warnings point at the
    caller of decode."""
    fst = random_graph(99, max_states=60, num_columns=6)
    assert fst.num_states <= 64
    gpu = wfst.Decoder(fst, DecoderConfig(beam=30.0, max_active=16, min_active=0, token_queue_capacity=64,
                                          arc_queue_capacity=64), device="cuda", lanes=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gpu.decode([random_scores(i, 20, num_columns=6) for i in range(3)])
    assert [w.category for w in caught] == [CapacityWarning]
    assert "arc_queue_capacity" in str(caught[0].message) and "token_queue_capacity" not in str(caught[0].message)
    assert caught[0].filename == __file__
    tiny = DecoderConfig(beam=30.0, max_active=4, min_active=0, token_queue_capacity=4, arc_queue_capacity=6)
    gpu = wfst.Decoder(fst, tiny, device="cuda", lanes=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = gpu.decode([random_scores(i, 30, num_columns=6) for i in range(6)])
    abandoned = [i for i, r in enumerate(results) if not np.isfinite(r.cost)]
    assert 0 < len(abandoned) < len(results)
    notes = [str(w.message) for w in caught if "abandoned" in str(w.message)]
    assert len(notes) == 1 and notes[0].startswith(f"{len(abandoned)} utterance(s) overflowed")
    assert re.findall(r"scores\[(\d+)\]", notes[0]) == [str(i) for i in abandoned]  # named, in order
    assert all(w.filename == __file__ for w in caught)
    for i in abandoned:  # an empty lattice, as the CPU's when no token survives (wfst-decode writes it)
        assert results[i].lattice.num_states == 0 and results[i].lattice.nbest(2) == []


def test_a_pdf_map_may_read_the_widest_column(cupy_module):
    """Kaldi's setup, input labels (transition ids) reading score columns (pdfs)
    through a pdf_map: the map sends input label 1 (the example's blank, on most
    frames) to the last column of a matrix one column wider than the graph's
    labels, the others in reverse order: host and device scores keep that column
    (the Results and lattices of the CPU on the original scores)."""
    from wfst.example import load_example

    ex = load_example()
    config = DecoderConfig(acoustic_scale=ex.acoustic_scale, beam=12.0, max_active=2000, lattice_beam=6.0)
    width = ex.scores[0].shape[1]
    pdf_map = np.concatenate([[0], width - np.arange(width)]).astype(np.int64)  # label i reads column width + 1 - i
    moved = [np.concatenate([np.full((m.shape[0], 1), -7.0, np.float32), m[:, ::-1]], axis=1) for m in ex.scores[:2]]
    assert np.array_equal(moved[0][:, width], ex.scores[0][:, 0])
    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=2, pdf_map=pdf_map)
    cpu = wfst.Decoder(ex.fst, config, device="cpu")
    _same_decodes(cpu, gpu, ex.scores[:2], gpu_batch=moved)
    _same_decodes(cpu, gpu, ex.scores[:2], gpu_batch=[cupy_module.asarray(m) for m in moved])


def test_device_scores_of_any_strides_are_read_as_their_values(cupy_module):
    """Device views with reversed rows or every other column (not read in
    place: copied) decode as their values do on the CPU."""
    cupy = cupy_module
    fst = random_graph(3, max_states=12)
    config = DecoderConfig(beam=9.0, max_active=30, min_active=0, lattice_beam=4.0)
    scores = random_scores(3, 40)
    cpu, gpu = _pair(fst, config, lanes=2)
    spread = cupy.asarray(np.repeat(scores, 2, axis=1) + np.tile([0.0, -5.0], scores.shape).astype(np.float32))
    for view, values in ((cupy.asarray(scores)[::-1], scores[::-1]), (spread[:, ::2], scores),
                         (spread[::-2, ::2], scores[::-2])):
        got, want = gpu.decode(view), cpu.decode(np.ascontiguousarray(values))
        _same(got, want)
        assert_same_arrays(got.lattice, want.lattice)


def test_device_scores_beyond_float32_or_a_column_short_are_refused(cupy_module):
    """float64 device scores are checked as float32 (as host scores are: 1e39
    is inf there), and a matrix one column narrower than the graph reads is refused."""
    cupy = cupy_module
    fst = random_graph(3, max_states=12)
    gpu = wfst.Decoder(fst, DecoderConfig(), device="cuda", lanes=1)
    big = cupy.asarray(random_scores(3, 5).astype(np.float64))
    big[3, 2] = -1e39
    # (the emulator casts with numpy, which warns of the overflow)
    with pytest.raises(ScoresError, match=r"\[3, 2\]"), np.errstate(over="ignore"):
        gpu.decode(big)
    with pytest.raises(ScoresError, match=r"\[3, 2\]"):
        wfst.Decoder(fst, DecoderConfig(), device="cpu").decode(cupy.asnumpy(big))
    with pytest.raises(ScoresError, match="columns"):
        gpu.decode(cupy.zeros((4, fst.max_ilabel - 1), np.float32))
    huge = cupy.asarray(random_scores(3, 5))
    huge[2, 1] = 1e10
    with pytest.raises(ScoresError, match=r"\[2, 1\] is 10000000000.0: scores above 1e\+06 are refused"):
        gpu.decode(huge)
    with pytest.raises(ScoresError, match="looks like probabilities"):
        gpu.decode(cupy.asarray(np.exp(random_scores(3, 5))))
    for value in (np.inf, -np.inf, np.nan):  # float16 on the device: read in place, checked as it is
        half = cupy.asarray(random_scores(3, 5).astype(np.float16))
        half[1, 3] = value
        with pytest.raises(ScoresError, match=rf"\[1, 3\] is {value}: scores must be finite"):
            gpu.decode(half)


def test_more_lane_groups_than_the_packed_buffers_hold_are_refused():
    """With more lanes than MAX_LANE_GROUPS, lane_groups is still capped at
    MAX_LANE_GROUPS (each group packs into a region with its own header)."""
    lanes = MAX_LANE_GROUPS + 1
    gpu = wfst.Decoder(random_graph(5, max_states=10), DecoderConfig(max_active=5, min_active=0), device="cuda",
                       lanes=lanes)
    gpu._cuda.lane_groups = lanes
    with pytest.raises(wfst.ConfigError, match=f"lane_groups must be an integer from 1 to {MAX_LANE_GROUPS}"):
        gpu.decode([random_scores(1, 4)])
    assert gpu._channel_pool.in_use == 0


def test_a_lane_takes_the_next_job_as_soon_as_its_own_ends(monkeypatch):
    """Two lanes, utterances of 8, 2, 2 and 2 frames: one lane searches the
    first (its start frame and 8 rows: 9 steps) while the other searches the
    three short ones in turn (3 steps each), so the run takes 9 steps and
    searches 14 score rows; an offline batch borrows no more channels than
    its lanes, however many are free."""
    from wfst.cuda_lane_group import LaneGroup

    fst = random_graph(5, max_states=10)
    config = DecoderConfig(beam=10.0, max_active=20, min_active=0, **_roomy(fst, 20))
    gpu = wfst.Decoder(fst, config, device="cuda", lanes=2, channels=8)
    borrowed, step = [], LaneGroup.step

    def watched(self):
        borrowed.append(gpu._channel_pool.in_use)
        return step(self)

    monkeypatch.setattr(LaneGroup, "step", watched)
    batch = [random_scores(30 + i, n) for i, n in enumerate((8, 2, 2, 2))]
    cpu = wfst.Decoder(fst, config, device="cpu")
    for got, want in zip(gpu.decode(batch), cpu.decode(batch)):
        _same(got, want)
    stats = gpu._cuda.stats
    assert (stats["steps"], stats["frames"]) == (9, 14)
    assert max(borrowed) == 2 and gpu._channel_pool.in_use == 0
