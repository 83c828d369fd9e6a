"""Streaming on the CPU backend: chunked streams give offline decode()'s
Result bit for bit, partial results are the best path of the frames accepted
(and cost the changed suffix only), many interleaved streams equal decoding
each alone, and misuse raises typed errors without disturbing other streams."""

import gc
import re
import threading
import time
import weakref

import numpy as np
import pytest

import wfst
from tests.decoder_graphs import assert_same_results
from tests.random_graph import random_graph, random_scores
from wfst.example import load_example
from wfst.stream_partial import BestPathTracker

PRUNING = wfst.DecoderConfig(beam=3.0, max_active=6, min_active=2, lattice_beam=2.0, prune_interval=2)
CHUNKINGS = ["1", "3", "random", "whole"]


@pytest.fixture(scope="module")
def ex():
    return load_example()


@pytest.fixture(scope="module")
def example_decoder(ex):
    return wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale), device="cpu")


@pytest.fixture(scope="module")
def offline(ex, example_decoder):
    return example_decoder.decode(ex.scores)


def chunks(scores, chunking, rng):
    """``scores`` cut into consecutive chunks: of 1 or 3 rows, of random sizes
    (zero rows included), or whole."""
    if chunking == "whole":
        return [scores]
    cuts, t = [], 0
    while t < len(scores):
        step = int(rng.integers(0, 6)) if chunking == "random" else int(chunking)
        cuts.append(scores[t:t + step])
        t += step
    return cuts


def streamed(decoder, scores, chunking, seed=0):
    stream = decoder.stream()
    for chunk in chunks(scores, chunking, np.random.default_rng(seed)):
        stream.accept(chunk)
        stream.partial()
    return stream.finish()


# ------------------------------------------------------------------ final results
@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_every_example_utterance_streams_to_the_offline_result(ex, example_decoder, offline, chunking):
    for i, scores in enumerate(ex.scores):
        assert_same_results(streamed(example_decoder, scores, chunking, seed=i), offline[i])


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_stream_to_the_offline_result_under_tight_pruning(seed):
    decoder = wfst.Decoder(random_graph(seed), PRUNING, device="cpu")
    scores = random_scores(seed, 14)
    whole = decoder.decode(scores)
    for chunking in CHUNKINGS:
        assert_same_results(streamed(decoder, scores, chunking, seed), whole)


# ---------------------------------------------------------------- partial results
@pytest.mark.parametrize("utterance", [0, 4, 12])
def test_partials_are_the_best_path_of_the_frames_accepted(ex, utterance):
    """After every chunk the partial equals offline decoding of the rows accepted
    so far without final costs: it reads exactly those frames, no later ones."""
    config = wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale, use_final_probs=False)
    decoder = wfst.Decoder(ex.fst, config, device="cpu")
    scores = ex.scores[utterance]
    stream = decoder.stream()
    accepted = 0
    for chunk in chunks(scores, "random", np.random.default_rng(utterance)):
        stream.accept(chunk)
        accepted += len(chunk)
        partial = stream.partial()
        prefix = decoder.decode(scores[:accepted])
        assert partial.num_frames == accepted == stream.num_frames
        assert (partial.words, partial.cost) == (prefix.words, pytest.approx(prefix.cost, abs=0, rel=0))
    stream.close()


def test_last_partial_is_the_final_transcript_in_the_common_case(ex, example_decoder, offline):
    same = 0
    for i, scores in enumerate(ex.scores):
        stream = example_decoder.stream()
        stream.accept(scores)
        same += stream.partial().words == offline[i].words
        stream.close()
    assert same >= 0.85 * len(ex.scores), f"only {same} of {len(ex.scores)} last partials were the final words"


def test_partials_cost_the_changed_suffix_not_the_utterance(ex, example_decoder):
    """Back-pointers walked for a partial after every frame: about one frame's
    worth each (plus epsilon hops), where tracing from scratch walks the whole
    path every time."""
    for scores in ex.scores[:5]:
        stream = example_decoder.stream()
        from_scratch = 0
        for t in range(len(scores)):
            stream.accept(scores[t:t + 1])
            stream.partial()
            from_scratch += t + 1  # at least one step per frame of the path
        frames = len(scores)
        assert stream.partial_steps <= 3 * frames
        assert stream.partial_steps * 20 < from_scratch
        stream.close()


def test_tracker_walks_back_only_to_where_the_new_best_path_joins_the_old():
    """Tokens by hand: path 0 -> a -> b -> c, then the best moves to d, whose
    path joins at a: the update walks d and its predecessor e only."""
    # arcs: 0 start->a (word 5), 1 a->b, 2 b->c (word 6), 3 a->e (word 7), 4 e->d; all emitting, label 1
    ilabel = np.ones(5, np.int32)
    olabel = np.array([5, 0, 6, 7, 0], np.int32)
    # tokens: 0 start (frame 0, state 0); 1 a (f1, s1); 2 b (f2, s2); 3 c (f3, s3); 4 e (f2, s4); 5 d (f3, s5)
    tok_state = np.array([0, 1, 2, 3, 4, 5], np.int32)
    link_src = np.array([0, 1, 2, 1, 4], np.int32)  # link i uses arc i
    link_arc = np.arange(5, dtype=np.int32)
    tok_best = np.array([-1, 0, 1, 2, 3, 4], np.int32)
    tracker = BestPathTracker(ilabel, olabel, start_state=0)
    tracker.update(3, 3, tok_state, tok_best, link_src, link_arc)
    assert tracker.words == (5, 6) and tracker.last_steps == 3
    tracker.update(5, 3, tok_state, tok_best, link_src, link_arc)
    assert tracker.words == (5, 7) and tracker.last_steps == 2
    tracker.update(5, 3, tok_state, tok_best, link_src, link_arc)
    assert tracker.last_steps == 0 and tracker.steps == 5


def test_tracker_drops_the_words_of_an_abandoned_branch():
    """The best path moves from a branch with a word to one without: the
    partial loses that word although the new suffix adds none."""
    # arcs: 0 start->a (word 5), 1 start->b (no word); both emitting, label 1
    ilabel, olabel = np.ones(2, np.int32), np.array([5, 0], np.int32)
    tok_state = np.array([0, 1, 2], np.int32)  # tokens: start (frame 0), a and b (frame 1)
    link_src, link_arc = np.zeros(2, np.int32), np.arange(2, dtype=np.int32)  # link i uses arc i
    tok_best = np.array([-1, 0, 1], np.int32)
    tracker = BestPathTracker(ilabel, olabel, start_state=0)
    tracker.update(1, 1, tok_state, tok_best, link_src, link_arc)
    assert tracker.words == (5,)
    tracker.update(2, 1, tok_state, tok_best, link_src, link_arc)
    assert tracker.words == () and tracker.last_steps == 1


# ----------------------------------------------------------------- many streams
@pytest.mark.parametrize("threads", [1, 2])
def test_hundreds_of_interleaved_streams_equal_decoding_each_alone(ex, offline, threads):
    rng = np.random.default_rng(threads)
    count = 200
    decoder = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale), device="cpu",
                           threads=threads, channels=count)
    utterance = rng.integers(0, len(ex.scores), count)
    results = interleaved(decoder, [ex.scores[u] for u in utterance], rng)
    for k in range(count):
        assert_same_results(results[k], offline[utterance[k]])


def interleaved(decoder, utterances, rng) -> list:
    """Stream every utterance at once in random chunks: random subsets of the
    open streams advance together, finished streams leave in random order (some
    a few steps late). Returns the final Results in order."""
    pending = {k: chunks(scores, "random", rng) for k, scores in enumerate(utterances)}
    streams = {k: decoder.stream() for k in pending}
    results = {}
    while streams:
        open_ids = list(streams)
        step = rng.choice(open_ids, size=int(rng.integers(1, min(len(open_ids), 60) + 1)), replace=False)
        moving = [k for k in step if pending[k]]
        partials = decoder.advance([(streams[k], pending[k].pop(0)) for k in moving])
        for k, partial in zip(moving, partials):
            assert partial.num_frames == streams[k].num_frames
        for k in step:
            if not pending[k] and rng.random() < 0.5:
                results[k] = streams.pop(k).finish()
    assert decoder._channel_pool.in_use == 0
    return [results[k] for k in range(len(utterances))]


# ------------------------------------------------------------------------ misuse
def test_a_finished_or_closed_stream_refuses_more_work(ex, example_decoder):
    stream = example_decoder.stream()
    stream.accept(ex.scores[0][:10])
    stream.finish()
    assert stream.state == "finished" and stream.num_frames == 10
    for call in (lambda: stream.accept(ex.scores[0][10:20]), stream.partial, stream.finish):
        with pytest.raises(wfst.StreamError, match="finished stream"):
            call()
    with example_decoder.stream() as closed:
        closed.accept(ex.scores[1][:5])
    assert closed.state == "closed"
    with pytest.raises(wfst.StreamError, match="closed stream"):
        closed.accept(ex.scores[1][5:10])
    closed.close()  # a no-op


def test_a_stream_serves_one_thread_at_a_time(ex, example_decoder, offline):
    """While one thread's accept() is in progress, a call on the same stream
    from another thread is a StreamError naming the call (the search's state is
    not shared), an advance() naming it moves no stream, other streams go on,
    and the stream decodes as if nothing had happened."""
    scores = ex.scores[3]
    stream, other = example_decoder.stream(), example_decoder.stream()
    entered, release = threading.Event(), threading.Event()
    search = stream._search
    accept = search.accept

    def held_accept(rows):
        entered.set()
        release.wait(30)
        accept(rows)

    search.accept = held_accept
    worker = threading.Thread(target=stream.accept, args=(scores[:9],))
    worker.start()
    try:
        assert entered.wait(30)
        calls = {"accept()": lambda: stream.accept(scores[9:12]), "partial()": stream.partial,
                 "finish()": stream.finish, "close()": stream.close,
                 "pairs[1]": lambda: example_decoder.advance([(other, scores[:2]), (stream, scores[9:12])])}
        for what, call in calls.items():
            with pytest.raises(wfst.StreamError, match=re.escape(what) + ": another thread is using this stream"):
                call()
        assert other.num_frames == 0 and stream.state == "open"
        example_decoder.advance([(other, scores[:4])])  # advance() let go of the stream it held
    finally:
        release.set()
        worker.join(30)
    assert not worker.is_alive()
    del search.accept
    stream.accept(scores[9:])
    assert_same_results(stream.finish(), offline[3])
    assert_same_results(other.finish(), example_decoder.decode(scores[:4]))


def test_advance_lets_go_of_its_streams_once_every_step_has_ended(ex):
    """When one stream's step raises something unexpected on the decoder's
    threads, advance() raises it only after the other steps end, so no stream
    is let go while a thread still works on it."""
    decoder = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale), device="cpu", threads=2)
    broken, slow = decoder.stream(), decoder.stream()
    ended = threading.Event()
    accept = slow._search.accept

    def slow_accept(rows):
        time.sleep(0.3)
        accept(rows)
        ended.set()

    def broken_accept(rows):
        raise RuntimeError("a bug in one step")

    broken._search.accept, slow._search.accept = broken_accept, slow_accept
    with pytest.raises(RuntimeError, match="a bug"):
        decoder.advance([(broken, ex.scores[0][:3]), (slow, ex.scores[1][:3])])
    assert ended.is_set()
    assert slow.num_frames == 3


def test_an_ended_stream_does_not_keep_its_decoder(ex, example_decoder):
    """Streams kept after finish() or close() let their decoder go (on CUDA its
    device memory and threads), and still refuse more work (another decoder's
    advance() refuses them as not its streams)."""
    decoder = wfst.Decoder(ex.fst, device="cpu")
    finished, closed = decoder.stream(), decoder.stream()
    finished.accept(ex.scores[0][:3])
    finished.finish()
    closed.close()
    gone = weakref.ref(decoder)
    del decoder
    gc.collect()
    assert gone() is None
    for stream, state in ((finished, "finished"), (closed, "closed")):
        with pytest.raises(wfst.StreamError, match=f"{state} stream"):
            stream.accept(ex.scores[0][3:6])
        with pytest.raises(wfst.StreamError, match="not a stream of this decoder"):
            example_decoder.advance([(stream, ex.scores[0][3:6])])
    assert finished.num_frames == 3


def test_channels_are_capped_and_freed(ex):
    decoder = wfst.Decoder(ex.fst, device="cpu", channels=2)
    a, b = decoder.stream(), decoder.stream()
    assert (a.channel, b.channel) == (0, 1)
    with pytest.raises(wfst.StreamError, match="all 2 channels"):
        decoder.stream()
    a.accept(ex.scores[0][:3])
    a.finish()
    c = decoder.stream()
    assert c.channel == 0
    b.close()
    assert decoder.stream().channel == 1
    with pytest.raises(wfst.ConfigError, match="channels"):
        wfst.Decoder(ex.fst, device="cpu", channels=0)


def test_a_batch_borrows_at_most_the_channels_it_asks_for():
    """ChannelPool.acquire_up_to (what an offline batch on the GPU borrows):
    the lowest free channels, never more than asked, at least one."""
    from wfst.stream_channels import ChannelPool

    pool = ChannelPool(5)
    assert pool.acquire() == 0
    assert pool.acquire_up_to(2) == [1, 2] and pool.in_use == 3
    assert pool.acquire_up_to(9) == [3, 4] and pool.in_use == 5
    with pytest.raises(wfst.StreamError, match="all 5 channels"):
        pool.acquire_up_to(1)
    pool.release(3)
    assert pool.acquire_up_to(1) == [3]


def test_a_pool_s_memory_grows_with_the_channels_used_not_its_capacity():
    """On the CPU ``channels`` only caps the open streams: a huge cap costs
    nothing up front (it held a list of every channel: 2**26 took 2.8 GB)."""
    import tracemalloc

    from wfst.stream_channels import ChannelPool

    tracemalloc.start()
    try:
        pool = ChannelPool(2**40)
        assert tracemalloc.get_traced_memory()[0] < 100_000
    finally:
        tracemalloc.stop()
    assert pool.acquire_up_to(3) == [0, 1, 2]
    pool.release(1)
    assert pool.in_use == 2 and pool.acquire() == 1 and pool.acquire() == 3


def test_a_channel_given_back_inside_acquire_on_the_same_thread_is_not_lost():
    """A dropped stream's finalizer may run inside acquire() on the thread that
    holds the pool's lock (a garbage collection started by an allocation there):
    its release must not wait for that lock, which would wait forever, and the
    channel is free for the next acquire."""
    from wfst.stream_channels import ChannelPool

    pool = ChannelPool(2)
    first, _ = pool.acquire(), pool.acquire()

    def collection_inside_acquire():
        with pool._lock:
            pool.release(first)

    worker = threading.Thread(target=collection_inside_acquire, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "release() waited on the lock its own thread holds"
    assert pool.in_use == 1
    assert pool.acquire() == first
    with pytest.raises(wfst.StreamError, match="all 2 channels"):
        pool.acquire()


def test_a_dropped_open_stream_frees_its_channel(ex):
    decoder = wfst.Decoder(ex.fst, device="cpu", channels=1)
    stream = decoder.stream()
    stream.accept(ex.scores[0][:4])
    del stream
    gc.collect()
    assert decoder._channel_pool.in_use == 0
    assert decoder.stream().channel == 0


def test_a_stream_whose_start_fails_frees_its_channel_at_once():
    """The start closure meets an epsilon cycle negative only in float32: the
    GraphError of stream() leaves its channel free even while the caller
    keeps the error (and so its traceback)."""
    from tests.decoder_graphs import graph

    w = 0.39500877  # (0.683546 + w) - w < 0.683546 in float32
    fst = graph(3, 0, {1: 0.0}, [(0, 1, 0, 0, 0.683546), (1, 2, 0, 0, w), (2, 1, 0, 0, -w)])
    decoder = wfst.Decoder(fst, device="cpu", channels=1)
    with pytest.raises(wfst.GraphError, match="float32") as kept:
        decoder.stream()
    assert kept.value.__traceback__ is not None
    assert decoder._channel_pool.in_use == 0


def test_a_bad_chunk_is_refused_and_the_stream_goes_on(ex, example_decoder, offline):
    scores = ex.scores[2]
    stream = example_decoder.stream()
    stream.accept(scores[:7])
    nan = scores[7:9].copy()
    nan[1, 3] = np.nan
    with pytest.raises(wfst.ScoresError, match="nan|NaN"):
        stream.accept(nan)
    with pytest.raises(wfst.ScoresError, match="columns"):
        stream.accept(np.zeros((2, scores.shape[1] + 1), np.float32))
    with pytest.raises(wfst.ScoresError):
        stream.accept(scores[7])  # 1-D
    assert stream.num_frames == 7
    stream.accept(scores[7:])
    assert_same_results(stream.finish(), offline[2])


def test_advance_checks_every_pair_before_any_stream_moves(ex, example_decoder, offline):
    other_decoder = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale), device="cpu")
    a, b = example_decoder.stream(), example_decoder.stream()
    foreign = other_decoder.stream()
    good_a, good_b = ex.scores[0][:5], ex.scores[1][:5]
    bad = np.full((3, ex.scores[1].shape[1]), np.inf, np.float32)
    cases = [([(a, good_a), (b, bad)], wfst.ScoresError, "pairs\\[1\\]"),
             ([(a, good_a), (foreign, good_b)], wfst.StreamError, "not a stream of this decoder"),
             ([(a, good_a), (a, good_a)], wfst.StreamError, "same stream twice"),
             ([(a, good_a), (b, good_b, 3)], wfst.StreamError, "pairs\\[1\\] .* pair, got tuple of 3"),
             ([(a, good_a), b], wfst.StreamError, "pairs\\[1\\] .* pair, got Stream"),
             (a, wfst.StreamError, "a list of \\(stream, chunk\\) pairs, got Stream")]
    for pairs, error, message in cases:
        with pytest.raises(error, match=message):
            example_decoder.advance(pairs)
        assert (a.num_frames, b.num_frames) == (0, 0)
    example_decoder.advance([(a, ex.scores[0]), [b, ex.scores[1]]])  # (a pair may be a list)
    assert_same_results(a.finish(), offline[0])
    assert_same_results(b.finish(), offline[1])
    foreign.close()


def test_a_zero_row_chunk_of_any_width_changes_nothing(ex, example_decoder, offline):
    """Only chunks with rows must match the stream's width: an empty chunk of
    another width (even 0 columns) is a no-op, in accept() and advance()."""
    scores = ex.scores[3]
    stream = example_decoder.stream()
    stream.accept(scores[:6])
    for empty in (np.zeros((0, 0), np.float32), np.zeros((0, scores.shape[1] + 5), np.float32)):
        stream.accept(empty)
        example_decoder.advance([(stream, empty)])
        assert stream.num_frames == 6
    stream.accept(scores[6:])
    assert_same_results(stream.finish(), offline[3])


def test_zero_rows_and_zero_frames(ex, example_decoder):
    stream = example_decoder.stream()
    stream.accept(ex.scores[0][:0])
    assert stream.partial() == wfst.Partial((), 0.0, 0)
    assert_same_results(stream.finish(), example_decoder.decode(ex.scores[0][:0]))


# ---------------------------------------------------------------------- endpoints
def _blank_frames(ex, frames):
    """Score rows where the CTC blank (column 0) is certain."""
    rows = np.full((frames, ex.scores[0].shape[1]), -30.0, np.float32)
    rows[:, 0] = 0.0
    return rows


def test_endpoint_after_speech_then_trailing_blank(ex):
    """Kaldi's rule 2 (0.5 s of trailing silence where the grammar may end)
    fires on the first blank frame that makes the best path's trailing blank
    run 0.5 s long."""
    decoder = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale), device="cpu")
    endpoint = wfst.EndpointConfig(frame_shift=ex.frame_shift)
    alignment = decoder.decode(ex.scores[0]).alignment
    blank = int(ex.tokens["<blk>"])
    trailing = len(alignment) - np.flatnonzero(alignment != blank)[-1] - 1  # the utterance's own trailing blanks
    needed = int(np.ceil(0.5 / ex.frame_shift - 1e-9))
    assert 0 < trailing < needed
    with decoder.stream(endpoint=endpoint) as stream:
        stream.accept(ex.scores[0])
        detected = [stream.endpoint_detected()]
        for _ in range(needed):
            stream.accept(_blank_frames(ex, 1))
            detected.append(stream.endpoint_detected())
        assert detected.index(True) == needed - trailing
        assert stream.partial().words == decoder.decode(ex.scores[0]).words


def test_endpoint_rules_are_kaldis():
    rule = wfst.EndpointRule(min_trailing_silence=0.5, max_relative_cost=2.0)
    assert rule.holds(3.0, 0.5, 2.0)
    assert not rule.holds(3.0, 0.4, 2.0) and not rule.holds(3.0, 0.5, 2.5)
    assert not rule.holds(0.5, 0.5, 0.0)  # only silence: no nonsilence frame
    config = wfst.EndpointConfig(frame_shift=0.1)
    assert config.detected(200, 0, np.inf) and not config.detected(199, 0, np.inf)  # 20 s utterance rule
    assert config.detected(60, 50, np.inf)  # 5 s of nothing but silence
    assert config.detected(50, 50, np.inf)  # rule 1 needs no speech before the 5 s (rule 4 would)
    assert not config.detected(60, 4, 0.0) and config.detected(60, 5, 0.0)
    mask = wfst.EndpointConfig(silence_labels=(1, np.int64(3))).silence_mask(4)
    assert mask.tolist() == [False, True, False, True, False]
    with pytest.raises(wfst.ConfigError, match=r"silence_labels \[99\] are beyond the graph's input labels"):
        wfst.EndpointConfig(silence_labels=(1, 3, 99)).silence_mask(4)  # (a stream would never see silence)
    for bad in (dict(silence_labels=(0,)), dict(silence_labels=[1]), dict(frame_shift=0), dict(rules=[rule])):
        with pytest.raises(wfst.ConfigError):
            wfst.EndpointConfig(**bad)
    with pytest.raises(wfst.ConfigError, match="min_trailing_silence"):
        wfst.EndpointRule(min_trailing_silence=-1)


def test_endpoint_needs_a_config(ex, example_decoder):
    with example_decoder.stream() as stream:
        with pytest.raises(wfst.StreamError, match="EndpointConfig"):
            stream.endpoint_detected()
    with pytest.raises(wfst.ConfigError, match="EndpointConfig"):
        example_decoder.stream(endpoint={"frame_shift": 0.04})
    stream = example_decoder.stream(endpoint=wfst.EndpointConfig(frame_shift=ex.frame_shift))
    stream.accept(ex.scores[0][:5])
    stream.finish()
    with pytest.raises(wfst.StreamError, match=r"endpoint_detected\(\) on a finished stream"):
        stream.endpoint_detected()


def test_kaldi_s_endpoint_rules_3_and_4_and_the_final_relative_cost():
    from wfst.endpoint import final_relative_cost

    config = wfst.EndpointConfig(frame_shift=0.1)
    assert not config.detected(60, 9, 7.9) and config.detected(60, 10, 7.9)  # rule 3: 1 s, relative cost < 8
    assert not config.detected(60, 10, 8.1)
    assert not config.detected(60, 19, 100.0) and config.detected(60, 20, 100.0)  # rule 4: 2 s, any cost
    assert final_relative_cost(np.array([0, 1]), np.array([1.0, 3.0], np.float32),
                               np.array([np.inf, 0.5], np.float32)) == pytest.approx(2.5)
    assert final_relative_cost(np.zeros(0, int), np.zeros(0, np.float32), np.zeros(2, np.float32)) == np.inf
    wfst.EndpointConfig(silence_labels=(4,)).silence_mask(4)  # the largest label is a label
    with pytest.raises(wfst.ConfigError):
        wfst.EndpointRule(min_trailing_silence=float("inf"))



def test_kaldi_s_endpoint_rule_2_needs_a_relative_cost_of_at_most_2():
    """Kaldi's rule 2 (OnlineEndpointConfig: rule2.min_trailing_silence 0.5,
    rule2.max_relative_cost 2.0): after 0.5 s of trailing silence, where no
    other default rule holds yet, a final relative cost of 2 ends the
    utterance and one of 2.25 does not."""
    config = wfst.EndpointConfig(frame_shift=0.1)
    assert config.detected(60, 5, 2.0) and not config.detected(60, 5, 2.25)

def test_a_non_silence_frame_ends_the_trailing_silence():
    from tests.decoder_graphs import graph

    # 0 -blank(1)-> 0, 0 -token 2:word 7-> 1, 1 -blank-> 1, 1 -token 3-> 2, 2 -blank-> 2; all final
    fst = graph(3, 0, {0: 0.0, 1: 0.0, 2: 0.0},
                [(0, 0, 1, 0, 0.0), (0, 1, 2, 7, 0.0), (1, 1, 1, 0, 0.0), (1, 2, 3, 0, 0.0), (2, 2, 1, 0, 0.0)])
    rows = np.full((8, 3), -30.0, np.float32)
    for t, column in enumerate([1, 0, 0, 0, 2, 0, 0, 0]):  # token 2, 3 blanks, token 3, 3 blanks
        rows[t, column] = 0.0
    rule = (wfst.EndpointRule(must_contain_nonsilence=False, min_trailing_silence=0.35),)
    decoder = wfst.Decoder(fst, device="cpu")
    assert decoder.decode(rows).words == (7,)
    with decoder.stream(endpoint=wfst.EndpointConfig(frame_shift=0.1, rules=rule)) as stream:
        stream.accept(rows)
        assert not stream.endpoint_detected()  # 3 trailing blanks, 0.3 s (6 since the word)


def test_an_epsilon_hop_does_not_end_the_trailing_silence():
    from tests.decoder_graphs import graph

    # 0 -token 2:word 7-> 1 -blank(1)-> 2 -<eps>-> 3, 3 -blank-> 3; 3 final: the path hops over an epsilon arc
    # between its first and second blank frames
    fst = graph(4, 0, {3: 0.0}, [(0, 1, 2, 7, 0.0), (1, 2, 1, 0, 0.0), (2, 3, 0, 0, 0.0), (3, 3, 1, 0, 0.0)])
    rows = np.full((5, 2), -30.0, np.float32)
    for t, column in enumerate([1, 0, 0, 0, 0]):  # token 2, then 4 blanks
        rows[t, column] = 0.0
    rule = (wfst.EndpointRule(must_contain_nonsilence=False, min_trailing_silence=0.35),)
    decoder = wfst.Decoder(fst, device="cpu")
    assert decoder.decode(rows).words == (7,)
    with decoder.stream(endpoint=wfst.EndpointConfig(frame_shift=0.1, rules=rule)) as stream:
        stream.accept(rows[:4])
        assert not stream.endpoint_detected()  # 3 trailing blanks, 0.3 s
        stream.accept(rows[4:])
        assert stream.endpoint_detected()  # 4 trailing blanks, 0.4 s, the epsilon hop among them


def test_a_dead_stream_s_partial_costs_inf_and_is_no_endpoint():
    from tests.decoder_graphs import flat_scores, graph

    fst = graph(2, 0, {1: 0.0}, [(0, 1, 1, 7, 1.0)])
    with wfst.Decoder(fst, device="cpu").stream(endpoint=wfst.EndpointConfig()) as stream:
        stream.accept(flat_scores(3, 1))
        assert stream.partial() == wfst.Partial((), float("inf"), 3)
        assert not stream.endpoint_detected()  # no token, no final state: relative cost inf
