"""Streaming on the CUDA backend, on a GPU (marked gpu) and on the CPU
emulator: chunked streams give the CPU's offline Result, every partial equals
the CPU stream's partial after the same chunks, many interleaved streams on
few lanes equal decoding each alone, offline batches borrow only free
channels, and misuse raises typed errors without disturbing other streams.
On the emulator the example-based tests take a few utterances only."""

import warnings

import numpy as np
import pytest

import wfst
from tests.decoder_graphs import assert_same_results
from tests.lattice_paths import assert_same_arrays
from tests.random_graph import random_graph, random_scores
from wfst.example import load_example

from .test_stream import CHUNKINGS, PRUNING, chunks, interleaved

pytestmark = pytest.mark.usefixtures("cupy_module")


@pytest.fixture(scope="module")
def ex():
    return load_example()


@pytest.fixture(scope="module")
def config(ex):
    return wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale, beam=12.0, max_active=2000, lattice_beam=6.0)


@pytest.fixture(scope="module")
def offline(ex, config):
    return wfst.Decoder(ex.fst, config, device="cpu").decode(ex.scores)


def _utterances(cupy_module, ex, emulated: int) -> list[int]:
    """Every example utterance on a GPU, the first ``emulated`` on the emulator."""
    return list(range(len(ex.scores) if cupy_module.__name__ == "cupy" else emulated))


def _lockstep(gpu_decoder, cpu_decoder, scores, chunking, seed):
    """Stream ``scores`` on both decoders with the same chunks; every partial
    must agree. Returns both final Results."""
    g, c = gpu_decoder.stream(), cpu_decoder.stream()
    for chunk in chunks(scores, chunking, np.random.default_rng(seed)):
        g.accept(chunk)
        c.accept(chunk)
        assert g.partial() == c.partial()
        assert g.num_frames == c.num_frames
    return g.finish(), c.finish()


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_example_streams_equal_the_cpu_partial_by_partial(cupy_module, ex, config, offline, chunking):
    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=2)
    cpu = wfst.Decoder(ex.fst, config, device="cpu")
    for i in _utterances(cupy_module, ex, 2):
        got, want = _lockstep(gpu, cpu, ex.scores[i], chunking, seed=i)
        assert_same_results(want, offline[i])
        _same_result(got, offline[i])


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_stream_like_the_cpu_under_tight_pruning(seed):
    fst = random_graph(seed)
    config = wfst.DecoderConfig(beam=PRUNING.beam, max_active=PRUNING.max_active, min_active=PRUNING.min_active,
                                lattice_beam=PRUNING.lattice_beam, prune_interval=PRUNING.prune_interval,
                                token_queue_capacity=max(24, fst.num_states), arc_queue_capacity=max(72, fst.num_arcs))
    gpu = wfst.Decoder(fst, config, device="cuda", lanes=1)
    cpu = wfst.Decoder(fst, config, device="cpu")
    scores = random_scores(seed, 14)
    whole = cpu.decode(scores)
    for chunking in CHUNKINGS:
        got, _ = _lockstep(gpu, cpu, scores, chunking, seed)
        _same_result(got, whole)


def test_interleaved_streams_on_few_lanes_equal_decoding_each_alone(cupy_module, ex, config):
    """Many streams on 4 lanes, random chunk sizes, random subsets advanced
    together, random finish order (the emulator: 24 streams of 40 frames)."""
    rng = np.random.default_rng(5)
    on_gpu = cupy_module.__name__ == "cupy"
    count, frames = (200, None) if on_gpu else (24, 40)
    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=4, channels=count)
    utterance = rng.integers(0, len(ex.scores), count)
    results = interleaved(gpu, [ex.scores[u][:frames] for u in utterance], rng)
    alone = wfst.Decoder(ex.fst, config, device="cpu").decode([s[:frames] for s in ex.scores])
    for k in range(count):
        _same_result(results[k], alone[utterance[k]])


def test_offline_batches_borrow_only_free_channels(ex, config, offline):
    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=2, channels=3)
    a, b = gpu.stream(), gpu.stream()
    a.accept(ex.scores[0][:9])
    b.accept(ex.scores[1][:4])
    results = gpu.decode([ex.scores[2], ex.scores[3], ex.scores[4]])  # one spare channel for three utterances
    for got, want in zip(results, offline[2:5]):
        _same_result(got, want)
    a.accept(ex.scores[0][9:])
    b.accept(ex.scores[1][4:])
    _same_result(a.finish(), offline[0])
    c = gpu.stream()
    d = gpu.stream()
    with pytest.raises(wfst.StreamError, match="all 3 channels"):
        gpu.decode(ex.scores[5])
    c.close()
    _same_result(gpu.decode(ex.scores[5]), offline[5])
    b.accept(ex.scores[1][:0])
    _same_result(b.finish(), offline[1])
    d.close()


def test_device_chunks_and_misuse(cupy_module, ex, config, offline):
    cupy = cupy_module
    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=1, channels=2)
    scores = ex.scores[6]
    stream = gpu.stream()
    stream.accept(cupy.asarray(scores[:5]))
    with pytest.raises(wfst.ScoresError, match="columns"):
        stream.accept(cupy.zeros((2, scores.shape[1] + 1), np.float32))
    bad = cupy.asarray(scores[5:8])
    bad[1, 2] = np.nan
    with pytest.raises(wfst.ScoresError, match=r"\[1, 2\]"):
        gpu.advance([(stream, bad)])
    assert stream.num_frames == 5
    gpu.advance([(stream, scores[5:])])
    _same_result(stream.finish(), offline[6])
    with pytest.raises(wfst.StreamError, match="finished stream"):
        stream.accept(scores[:3])
    empty = gpu.stream()
    assert empty.partial() == wfst.Partial((), 0.0, 0)
    _same_result(empty.finish(), wfst.Decoder(ex.fst, config, device="cpu").decode(scores[:0]))


def test_endpoints_fire_where_the_cpus_do(ex, config):
    endpoint = wfst.EndpointConfig(frame_shift=ex.frame_shift)
    blank = np.full((30, ex.scores[0].shape[1]), -30.0, np.float32)
    blank[:, 0] = 0.0
    fired = []
    for decoder in (wfst.Decoder(ex.fst, config, device="cpu"), wfst.Decoder(ex.fst, config, device="cuda", lanes=1)):
        with decoder.stream(endpoint=endpoint) as stream:
            stream.accept(ex.scores[0])
            detected = [stream.endpoint_detected()]
            for t in range(len(blank)):
                stream.accept(blank[t:t + 1])
                detected.append(stream.endpoint_detected())
        fired.append(detected)
    assert fired[0] == fired[1] and any(fired[0])


def _same_result(got, want):
    """The GPU's Result equals the CPU's: words, cost bits, alignment, word
    times, and an equivalent lattice (test_cuda_decoder's comparison)."""
    from .test_cuda_decoder import _same

    _same(got, want)
    assert_same_arrays(got.lattice, want.lattice)


def _overflowing_decoder():
    """Two lanes with queues so small that frames overflow and some utterances
    are abandoned (random_scores(i, 30, num_columns=6) for i in range(6))."""
    fst = random_graph(99, max_states=60, num_columns=6)
    config = wfst.DecoderConfig(beam=30.0, max_active=4, min_active=0, token_queue_capacity=4, arc_queue_capacity=6)
    return wfst.Decoder(fst, config, device="cuda", lanes=2)


def test_streams_under_overflow_equal_offline_decoding_with_warnings_as_errors():
    """Tiny queues: frames are searched again with a tighter beam, some
    utterances are abandoned. Each CapacityWarning raised by accept() comes
    after the stream took its chunk's outcome, so the stream goes on exactly as
    the same decoder's offline decode; an abandoned stream searches nothing
    more and finishes empty."""
    gpu = _overflowing_decoder()
    utterances = [random_scores(i, 30, num_columns=6) for i in range(6)]
    with pytest.warns(wfst.CapacityWarning):
        offline = gpu.decode(utterances)
    assert any(not np.isfinite(r.cost) for r in offline) and any(np.isfinite(r.cost) for r in offline)
    for scores, want in zip(utterances, offline):
        stream = gpu.stream()
        for t in range(0, len(scores), 5):
            with warnings.catch_warnings():
                warnings.simplefilter("error", wfst.CapacityWarning)
                try:
                    stream.accept(scores[t:t + 5])
                except wfst.CapacityWarning:
                    pass
            assert stream.num_frames == min(t + 5, len(scores))
        got = stream.finish()
        assert (got.words, got.cost) == (want.words, want.cost)


def test_capacity_warnings_of_streams_point_at_the_caller():
    """accept() and advance() warn at the user's line, however deep in
    the library the run that overflowed was."""
    gpu = _overflowing_decoder()
    calls = (lambda: gpu.stream().accept(random_scores(0, 30, num_columns=6)),
             lambda: gpu.advance([(gpu.stream(), random_scores(1, 30, num_columns=6))]))
    for call in calls:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        assert caught and {w.category for w in caught} == {wfst.CapacityWarning}
        assert {w.filename for w in caught} == {__file__}


def test_a_closed_or_dropped_stream_lets_its_lattice_go(ex, config):
    import gc

    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=1, channels=2)
    store = gpu._cuda.lattices
    stream = gpu.stream()
    stream.accept(ex.scores[0][:30])
    assert store.num_frames(stream.channel) == 30 and store.arrays(0).tok_state.size >= 100
    stream.close()
    assert store.num_frames(0) == 0 and store.arrays(0).tok_state.size < 100
    dropped = gpu.stream()
    dropped.accept(ex.scores[1][:30])
    del dropped
    gc.collect()
    assert gpu._channel_pool.in_use == 0 and store.arrays(0).tok_state.size < 100


def test_a_negative_cycle_in_a_later_chunk_names_the_stream_s_frame():
    """The epsilon cycle 1 -> 2 -> 1 (negative only in float32) is reached at
    the stream's fourth row, in its second chunk: both backends close the
    stream with a GraphError naming the same frame, counted from the stream's
    start."""
    from tests.decoder_graphs import flat_scores, graph

    w = 0.39500877
    fst = graph(6, 0, {1: 0.0}, [(0, 3, 1, 0, 0.0), (3, 4, 1, 0, 0.0), (4, 5, 1, 0, 0.0),
                                 (5, 1, 1, 0, 0.683546), (1, 2, 0, 0, w), (2, 1, 0, 0, -w)])
    messages = []
    for decoder in (wfst.Decoder(fst, device="cpu"), wfst.Decoder(fst, device="cuda", lanes=1)):
        stream = decoder.stream()
        stream.accept(flat_scores(2, 1))
        with pytest.raises(wfst.GraphError, match="float32") as caught:
            stream.accept(flat_scores(3, 1))
        messages.append(str(caught.value))
    assert messages[1] == messages[0] and "at frame 4" in messages[0]


def test_a_run_that_raises_abandons_its_streams(ex, config, monkeypatch):
    """A run interrupted midway leaves its streams' channels in an unknown
    state: they are abandoned (an empty Result of the frames accepted
    before), not decoded from garbage; a new stream decodes as the CPU does."""
    from wfst.cuda_lane_group import LaneGroup

    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=2, channels=3)
    a, b = gpu.stream(), gpu.stream()
    gpu.advance([(a, ex.scores[0][:6]), (b, ex.scores[1][:4])])
    step = LaneGroup.step
    calls = []

    def interrupted(self):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(LaneGroup, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gpu.advance([(a, ex.scores[0][6:12]), (b, ex.scores[1][4:10])])
    monkeypatch.setattr(LaneGroup, "step", step)
    assert a.partial().words == () and b.partial().words == ()
    for stream, frames in ((a, 6), (b, 4)):
        got = stream.finish()
        assert (got.words, got.cost, got.alignment.shape) == ((), float("inf"), (frames,))
    c = gpu.stream()
    c.accept(ex.scores[2][:12])
    _same_result(c.finish(), wfst.Decoder(ex.fst, config, device="cpu").decode(ex.scores[2][:12]))


def test_an_abandoned_stream_s_partial_is_empty():
    """A stream whose queues overflowed even at the tightest beam has no
    frontier: its partial result is empty, as its final Result is."""
    gpu = _overflowing_decoder()
    utterances = [random_scores(i, 30, num_columns=6) for i in range(6)]
    with pytest.warns(wfst.CapacityWarning):
        offline = gpu.decode(utterances)
    lost = next(i for i, r in enumerate(offline) if not np.isfinite(r.cost))
    stream = gpu.stream()
    with pytest.warns(wfst.CapacityWarning) as caught:
        stream.accept(utterances[lost])
    assert any(f"abandoned (empty results: the stream on channel {stream.channel})" in str(w.message) for w in caught)
    assert stream.partial() == wfst.Partial((), float("inf"), 30)
    result = stream.finish()
    assert result.words == () and result.lattice.num_states == 0


def _turns_watched(monkeypatch):
    """Wrap the CUDA decoder's runs so a test sees calls from threads: ``most``,
    the most runs inside their turn at once. The first run, once ``started``,
    lingers until the test sets ``second`` (just before its call on another
    thread), then until a run has started on another thread, or 2 s."""
    import threading

    from wfst.cuda_backend import CudaDecoder

    run_jobs = CudaDecoder._run_jobs
    watch = {"inside": 0, "most": 0, "started": threading.Event(), "second": threading.Event(),
             "entered": threading.Event()}
    lock = threading.Lock()

    def inside(self, jobs, spares):
        with lock:
            watch["inside"] += 1
            watch["most"] = max(watch["most"], watch["inside"])
            first = not watch["started"].is_set()
            watch["started"].set()
        if first:
            watch["second"].wait(60)
            watch["entered"].wait(2)
        else:
            watch["entered"].set()
        try:
            return run_jobs(self, jobs, spares)
        finally:
            with lock:
                watch["inside"] -= 1

    monkeypatch.setattr(CudaDecoder, "_run_jobs", inside)
    return watch


def _in_thread(call):
    """Start ``call`` on a thread; its join() returns what it returned (or raises)."""
    import threading

    out = {}

    def target():
        try:
            out["value"] = call()
        except BaseException as error:  # re-raised by join
            out["error"] = error

    thread = threading.Thread(target=target)
    thread.start()

    def join():
        thread.join(600)
        assert not thread.is_alive(), "the call did not end"
        if "error" in out:
            raise out["error"]
        return out["value"]

    return join


def test_decode_calls_from_two_threads_take_turns(ex, config, offline, monkeypatch):
    """One CUDA decoder shared by two threads: the second thread's decode waits
    until the first's run has ended (its lanes, channels and lattice store are
    the decoder's), and each gets the CPU's Results. The first run lingers until
    the second call has been made, so without the turns the two would overlap."""
    watch = _turns_watched(monkeypatch)
    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=2, channels=4, threads=1)
    first = _in_thread(lambda: gpu.decode([ex.scores[0], ex.scores[1], ex.scores[2]]))
    watch["started"].wait(600)
    watch["second"].set()
    second = gpu.decode([ex.scores[3], ex.scores[4]])
    for got, want in zip(first() + second, offline[:5]):
        _same_result(got, want)
    assert watch["most"] == 1


def test_a_stream_opened_during_another_thread_s_batch_waits_for_a_channel(ex, config, offline, monkeypatch):
    """An offline batch borrows every free channel while it runs; a stream
    opened meanwhile on another thread waits for the batch to end and gets one,
    rather than a StreamError saying that open streams hold them all."""
    watch = _turns_watched(monkeypatch)
    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=2, channels=2, threads=1)
    batch = _in_thread(lambda: gpu.decode([ex.scores[0], ex.scores[1], ex.scores[2]]))
    watch["started"].wait(600)
    watch["second"].set()
    stream = gpu.stream()  # (the batch's run lingers 2 s for a run on this thread that does not come)
    assert gpu._channel_pool.in_use == 1
    for got, want in zip(batch(), offline[:3]):
        _same_result(got, want)
    stream.accept(ex.scores[3])
    _same_result(stream.finish(), offline[3])


def test_a_stream_given_back_during_another_call_s_turn_is_let_go_when_it_ends(ex, config):
    """A stream dropped (or closed) while a call holds the decoder, on another
    thread or by the garbage its run makes, does not wait for that call: its
    channel and lattice are let go as the turn ends."""
    import gc

    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=1, channels=2)
    store = gpu._cuda.lattices
    kept, dropped = gpu.stream(), gpu.stream()
    kept.accept(ex.scores[0][:20])
    dropped.accept(ex.scores[1][:30])
    channel = dropped.channel
    with gpu._cuda.turn():
        del dropped
        gc.collect()
        assert gpu._channel_pool.in_use == 2 and store._parts[store.part_of[channel]][store._index_of[channel]][
            0].size >= 100
    assert gpu._channel_pool.in_use == 1 and store.arrays(channel).tok_state.size < 100
    assert store.num_frames(kept.channel) == 20
    kept.close()
    assert gpu._channel_pool.in_use == 0


def test_close_lets_go_of_device_memory_and_lattice_workers(cupy_module, ex, config, offline):
    """close() frees the device arrays without the garbage collector, CuPy's
    pools give their blocks back, the lattice workers end, the stats stay, and
    open streams are refused; a stream given back afterwards changes nothing."""
    import gc
    import weakref

    gpu = wfst.Decoder(ex.fst, config, device="cuda", lanes=2, channels=3, threads=2)
    kept, dropped = gpu.stream(), gpu.stream()
    kept.accept(ex.scores[0][:10])
    dropped.accept(ex.scores[1][:5])
    assert_same_results(gpu.decode(ex.scores[2]), offline[2])
    backend, pool = gpu._cuda, cupy_module.get_default_memory_pool()
    buffers = [weakref.ref(backend.arrays)] + [weakref.ref(view) for view in backend._views.values()]
    store = backend.lattices  # (held: close() ends the workers even so)
    workers = [worker.thread for worker in store._workers]
    emulated = cupy_module.__name__ != "cupy"
    pooled, device_bytes = pool.frees if emulated else pool.total_bytes(), backend.arrays.device_bytes
    gc.collect()
    gc.disable()
    try:
        gpu.close()
        assert all(buffer() is None for buffer in buffers)
    finally:
        gc.enable()
    assert pool.frees == pooled + 1 if emulated else pool.total_bytes() <= pooled - device_bytes
    for worker in workers:
        worker.join(30)
    assert workers and not any(worker.is_alive() for worker in workers)
    assert backend.stats["frames"] > 0
    with pytest.raises(wfst.DecoderClosedError, match=r"accept\(\)"):
        kept.accept(ex.scores[0][10:12])
    with pytest.raises(wfst.DecoderClosedError, match=r"decode\(\)"):
        gpu.decode(ex.scores[2])
    dropped._free_channel()  # what its finalizer does: nothing to give back
