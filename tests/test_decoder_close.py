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
    """close() closes the open streams, ends the stream threads and drops the
    packed graph at once (no garbage collection); decode, stream and advance
    then raise DecoderClosedError naming the call, as does every call on a
    stream but close(). Closing again changes nothing; another decoder's
    advance() refuses a stream of this one as not its own."""
    decoder = _decoder(ex, threads=2)
    scores = ex.scores[0]
    stream, other, done, idle = decoder.stream(), decoder.stream(), decoder.stream(), decoder.stream()
    decoder.advance([(stream, scores[:4]), (other, scores[:4])])  # the stream threads start
    done.finish()
    workers = list(decoder._stream_pool._threads)
    packed = weakref.ref(decoder.graph.host_layout()[1])
    assert workers and not decoder.closed
    gc.collect()
    gc.disable()
    try:
        decoder.close()
        assert packed() is None  # (the open streams' searches held it too)
    finally:
        gc.enable()
    assert decoder.closed and "closed" in repr(decoder)
    assert not any(worker.is_alive() for worker in workers)
    assert (stream.state, other.state, done.state, idle.state) == ("closed", "closed", "finished", "closed")
    calls = {"decode()": lambda: decoder.decode(scores), "stream()": decoder.stream,
             "advance()": lambda: decoder.advance([(stream, scores[4:6])]),
             "accept()": lambda: stream.accept(scores[4:6]), "partial()": other.partial, "finish()": done.finish}
    for what, call in calls.items():
        with pytest.raises(wfst.DecoderClosedError, match=rf"{what[:-2]}\(\): the decoder was closed"):
            call()
    assert stream.num_frames == 4
    stream.close()
    decoder.close()
    with pytest.raises(wfst.DecoderClosedError):
        decoder.decode(scores)
    with pytest.raises(wfst.StreamError, match="not a stream of this decoder"):
        _decoder(ex).advance([(idle, scores[:2])])


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


def test_close_inside_a_call_of_its_own_thread_lets_go_as_the_call_returns(ex):
    """A close() made inside one of the decoder's calls on the same thread (a
    signal handler's, say) does not wait for itself: the call runs to its end,
    and the decoder lets go as it returns."""
    decoder = _decoder(ex, threads=2)
    decoder.advance([(decoder.stream(), ex.scores[0][:2]), (decoder.stream(), ex.scores[1][:2])])
    workers = list(decoder._stream_pool._threads)
    stream = decoder.stream()
    search = stream._search
    accept = search.accept

    def closing_accept(rows):
        decoder.close()  # what a signal handler would do, inside the accept() of this thread
        assert decoder.closed and all(worker.is_alive() for worker in workers)
        accept(rows)

    search.accept = closing_accept
    stream.accept(ex.scores[2][:3])
    assert stream.num_frames == 3 and not any(worker.is_alive() for worker in workers)
    with pytest.raises(wfst.DecoderClosedError):
        stream.partial()


def test_a_close_interrupted_while_it_waits_lets_go_when_the_calls_end(ex):
    """A close() interrupted while it waits for another thread's call (Ctrl-C)
    leaves the decoder closed, and it lets go as that call returns."""
    decoder = _decoder(ex, threads=2)
    decoder.advance([(decoder.stream(), ex.scores[0][:2]), (decoder.stream(), ex.scores[1][:2])])
    workers = list(decoder._stream_pool._threads)
    stream = decoder.stream()
    entered, release = threading.Event(), threading.Event()
    accept = stream._search.accept

    def held_accept(rows):
        entered.set()
        release.wait(30)
        accept(rows)

    stream._search.accept = held_accept
    accepting = threading.Thread(target=stream.accept, args=(ex.scores[2][:3],))
    accepting.start()
    assert entered.wait(30)

    class Interrupted(Exception):
        pass

    def interrupt(predicate):
        raise Interrupted  # as a KeyboardInterrupt would, while close() waits

    decoder._calls._changed.wait_for = interrupt
    with pytest.raises(Interrupted):
        decoder.close()
    assert decoder.closed and all(worker.is_alive() for worker in workers)
    release.set()
    accepting.join(30)
    assert stream.num_frames == 3 and not any(worker.is_alive() for worker in workers)


def _wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)
