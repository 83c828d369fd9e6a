"""Decoder.close() and the ``with`` form on the CPU backend: threads and the
packed graph let go, every later call refused (DecoderClosedError), calls in
progress run to their end first. The CUDA backend's memory and lattice workers:
tests/test_cuda_stream.py."""

import gc
import threading
import time
import weakref

import pytest

import wfst
from tests.decoder_graphs import assert_same_results
from wfst.example import load_example


@pytest.fixture(scope="module")
def ex():
    return load_example()


def _decoder(ex, **kw):
    return wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale), device="cpu", **kw)


def test_a_closed_decoder_lets_go_and_refuses_every_call(ex):
    """close() ends the stream threads and drops the packed graph; decode,
    stream and advance then raise DecoderClosedError naming the call, as does
    every call on an open or ended stream but close(), and the open stream is
    closed. Closing again, or dropping the stream, changes nothing."""
    decoder = _decoder(ex, threads=2)
    scores = ex.scores[0]
    stream, other, done, idle = decoder.stream(), decoder.stream(), decoder.stream(), decoder.stream()
    decoder.advance([(stream, scores[:4]), (other, scores[:4])])  # the stream threads start
    done.finish()
    workers = list(decoder._stream_pool._threads)
    packed = weakref.ref(decoder.graph.host_layout()[1])
    assert workers and not decoder.closed
    decoder.close()
    assert decoder.closed and "closed" in repr(decoder)
    assert not any(worker.is_alive() for worker in workers)
    calls = {"decode()": lambda: decoder.decode(scores), "stream()": decoder.stream,
             "advance()": lambda: decoder.advance([(stream, scores[4:6])]),
             "accept()": lambda: stream.accept(scores[4:6]), "partial()": other.partial, "finish()": done.finish}
    for what, call in calls.items():
        with pytest.raises(wfst.DecoderClosedError, match=rf"{what[:-2]}\(\): the decoder was closed"):
            call()
    assert (stream.state, other.state, done.state) == ("closed", "closed", "finished")
    assert stream.num_frames == 4
    stream.close()
    del idle
    gc.collect()  # the open stream's finalizer: nothing to give back
    assert packed() is None  # (the other streams' searches were let go when they were refused)
    decoder.close()
    with pytest.raises(wfst.DecoderClosedError):
        decoder.decode(scores)


def test_with_closes_the_decoder_at_the_end_of_the_block(ex):
    """Leaving a ``with`` block closes the decoder, also when it raises."""
    with _decoder(ex) as decoder:
        result = decoder.decode(ex.scores[1])
    assert decoder.closed
    assert_same_results(result, _decoder(ex).decode(ex.scores[1]))
    with pytest.raises(KeyError), _decoder(ex) as failing:
        raise KeyError("the caller's error")
    assert failing.closed


def test_close_waits_for_a_stream_call_in_progress(ex):
    """A close() on another thread returns only once an accept() in progress
    has returned; calls made meanwhile are refused, and the accepted rows count."""
    decoder = _decoder(ex)
    stream = decoder.stream()
    entered, release, order = threading.Event(), threading.Event(), []
    accept = stream._search.accept

    def held_accept(rows):
        entered.set()
        release.wait(30)
        accept(rows)
        order.append("accepted")

    stream._search.accept = held_accept
    accepting = threading.Thread(target=stream.accept, args=(ex.scores[2][:5],))
    accepting.start()
    assert entered.wait(30)
    closing = threading.Thread(target=lambda: (decoder.close(), order.append("closed")))
    closing.start()
    _wait_until(lambda: decoder.closed)
    with pytest.raises(wfst.DecoderClosedError):
        decoder.decode(ex.scores[2])
    time.sleep(0.1)  # time enough for a close() that did not wait to return
    release.set()
    accepting.join(30)
    closing.join(30)
    assert order == ["accepted", "closed"]
    assert stream.num_frames == 5


def test_an_advance_in_progress_runs_to_its_end_after_close_began(ex):
    """advance() takes its streams one by one: those after the first are taken
    even once a close() on another thread has begun, and every stream moves."""
    decoder = _decoder(ex)
    first, second = decoder.stream(), decoder.stream()
    entered, release = threading.Event(), threading.Event()
    checked = first._checked

    def held_check(chunk, name="chunk"):
        entered.set()
        release.wait(30)
        return checked(chunk, name)

    first._checked = held_check
    partials = []
    advancing = threading.Thread(target=lambda: partials.extend(
        decoder.advance([(first, ex.scores[3][:4]), (second, ex.scores[4][:6])])))
    advancing.start()
    assert entered.wait(30)
    closing = threading.Thread(target=decoder.close)
    closing.start()
    _wait_until(lambda: decoder.closed)
    release.set()
    advancing.join(30)
    closing.join(30)
    assert [p.num_frames for p in partials] == [4, 6]
    assert (first.num_frames, second.num_frames) == (4, 6)


def _wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)
