"""The tie rule, and results that do not depend on runs, chunking or threads."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import wfst
from tests.decoder_graphs import assert_same_results, flat_scores, graph
from tests.random_graph import random_graph, random_scores
from wfst import decoding_graph
from wfst.cpu_backend import CpuSearch
from wfst.decoding_graph import DecodingGraph

PRUNING = wfst.DecoderConfig(beam=3.0, max_active=6, min_active=2, lattice_beam=2.0, prune_interval=2)


def _same_segments(a, b):
    for name in ("tok_state", "tok_cost", "tok_best", "tok_start", "link_src", "link_dst", "link_arc", "link_ac",
                 "link_start", "link_eps_start"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.best_token, a.reached_final) == (b.best_token, b.reached_final)


def _same_searches(a, b):
    """Two finished CpuSearches: the same results and the same raw segments."""
    assert_same_results(a.finish(), b.finish())
    _same_segments(a.segments, b.segments)


@pytest.mark.parametrize("first_label", [5, 6])
def test_equal_costs_pick_the_lowest_arc_index(first_label):
    other = 11 - first_label
    fst = graph(2, 0, {1: 0.0}, [(0, 1, 1, first_label, 1.0), (0, 1, 1, other, 1.0)])
    assert wfst.Decoder(fst, device="cpu").decode(flat_scores(1, 1)).words == (first_label,)


@pytest.mark.parametrize("arcs", [
    # 1 reaches 2 in one epsilon hop (word 7) or in two, through 3 (word 9): the one-hop path's last arc, 1 -> 2,
    # also has the lower index (arcs are numbered by source state, file order within a state)
    [(0, 1, 1, 0, 0.0), (3, 2, 0, 9, 0.0), (1, 3, 0, 0, 0.0), (1, 2, 0, 7, 0.0)],
    # the same with states 1 and 3 swapped: the two-hop path's last arc, 1 -> 2 (word 9), has the lower index
    [(0, 3, 1, 0, 0.0), (1, 2, 0, 9, 0.0), (3, 1, 0, 0, 0.0), (3, 2, 0, 7, 0.0)],
])
def test_equal_costs_pick_fewer_epsilon_hops_before_arc_index(arcs):
    fst = graph(4, 0, {2: 0.0}, arcs)
    assert wfst.Decoder(fst, device="cpu").decode(flat_scores(1, 1)).words == (7,)


@pytest.mark.parametrize("label", [1, 0], ids=["emitting", "epsilon"])
def test_equal_costs_from_different_tokens_pick_the_lowest_arc_index(label):
    # frame 1 makes state 2's token (word 6) before state 1's (word 5), in the start state's arc order; both reach
    # state 3 at the same cost, by an emitting arc (frame 2) or an epsilon arc (frame 1). 1 -> 3 has the lower
    # index, so the tie goes to word 5 although the link from state 2's token was made first
    fst = graph(4, 0, {3: 0.0}, [(0, 2, 1, 6, 0.0), (0, 1, 1, 5, 0.0), (1, 3, label, 0, 0.0), (2, 3, label, 0, 0.0)])
    assert wfst.Decoder(fst, device="cpu").decode(flat_scores(2 if label else 1, 1)).words == (5,)


def _whole_and_other(seed, **other):
    """A random graph's search fed all 12 frames at once, and a second search
    (made with ``other``) on the same graph, plus the scores."""
    graph_ = DecodingGraph(random_graph(seed))
    scores = random_scores(seed, 12)
    whole = CpuSearch(graph_, PRUNING)
    whole.accept(scores)
    return whole, CpuSearch(graph_, PRUNING, **other), scores


@pytest.mark.parametrize("seed", range(60))
def test_chunking_does_not_change_anything(seed):
    whole, chunked, scores = _whole_and_other(seed)
    rng = np.random.default_rng(seed)
    t = 0
    while t < scores.shape[0]:
        step = int(rng.integers(1, 5))
        chunked.accept(np.ascontiguousarray(scores[t: t + step]))
        t += step
    _same_searches(whole, chunked)


@pytest.mark.parametrize("seed", range(40))
def test_growing_every_array_does_not_change_anything(seed):
    roomy, tiny, scores = _whole_and_other(
        seed, capacity=dict(frames=1, tokens=1, links=1, hash_slots=2, frame_tokens=1))
    tiny.accept(scores)
    _same_searches(roomy, tiny)


def test_runs_and_threads_give_identical_results():
    batch = [random_scores(seed, 10 + seed % 7) for seed in range(40)]
    fst = random_graph(3, max_states=10)
    one = wfst.Decoder(fst, PRUNING, device="cpu").decode(batch)
    again = wfst.Decoder(fst, PRUNING, device="cpu").decode(batch)
    threaded = wfst.Decoder(fst, PRUNING, device="cpu", threads=4).decode(batch)
    for a, b, c in zip(one, again, threaded):
        assert_same_results(a, b)
        assert_same_results(a, c)


def test_a_cpu_decoder_shared_by_threads_gives_each_its_results():
    """Threads calling one CPU decoder at once (decode, and streams fed chunk by
    chunk) each get the Results a lone call gives."""
    batch = [random_scores(seed, 12 + seed % 9) for seed in range(24)]
    fst = random_graph(5, max_states=10)
    alone = wfst.Decoder(fst, PRUNING, device="cpu").decode(batch)
    shared = wfst.Decoder(fst, PRUNING, device="cpu", threads=2)

    def streamed(scores):
        with shared.stream() as stream:
            for first in range(0, len(scores), 5):
                stream.accept(scores[first:first + 5])
            return stream.finish()

    with ThreadPoolExecutor(4) as pool:
        decoded = list(pool.map(lambda i: shared.decode(batch[i:i + 3]), range(0, len(batch), 3)))
        streams = list(pool.map(streamed, batch))
    for got, want in zip([r for results in decoded for r in results] + streams, alone + alone):
        assert_same_results(got, want)


def test_threads_first_decoding_at_once_share_one_packed_graph(monkeypatch):
    """The CPU search's packed copy of the graph (12 bytes an arc: 370 MB on the
    full TLG) is built once per decoder, however many threads make the first
    call at once, and each search uses it."""
    built = []
    pack = decoding_graph._packed_layout

    def slow_pack(fst):
        built.append(fst)
        time.sleep(0.2)  # every thread finds no layout unless the first holds the others back
        return pack(fst)

    monkeypatch.setattr(decoding_graph, "_packed_layout", slow_pack)
    fst = random_graph(5, max_states=10)
    decoder = wfst.Decoder(fst, PRUNING, device="cpu")
    barrier = threading.Barrier(4)

    def first_stream(_):
        barrier.wait()
        with decoder.stream() as stream:
            return stream._search._layout

    with ThreadPoolExecutor(4) as pool:
        layouts = list(pool.map(first_stream, range(4)))
    assert len(built) == 1
    assert all(layout is decoder.graph.host_layout() for layout in layouts)


@pytest.mark.parametrize("prune_interval", [1, 2, 3])
def test_lattice_pruning_every_prune_interval_frames_drops_dead_ends(prune_interval):
    """Every ``prune_interval`` frames the lattice so far is pruned: a token that
    no path links to the newest frame goes (what the search holds shrinks, the
    results do not change). State 0 loops and also reaches state 1, which has
    no arcs: each frame holds states 0 and 1, and state 1's token is a dead end
    once the next frame exists."""
    fst = graph(2, 0, {0: 0.0}, [(0, 0, 1, 0, 0.0), (0, 1, 1, 0, 0.0)])
    search = CpuSearch(DecodingGraph(fst), wfst.DecoderConfig(prune_interval=prune_interval))
    for frames in range(1, 8):
        search.accept(flat_scores(1, 1))
        pruned = frames - frames % prune_interval  # the last frame pruning ran at (0: none yet)
        # the start token, one token in each frame before the pruned one, two from it on
        want = 1 + max(pruned - 1, 0) + 2 * (frames - max(pruned, 1) + 1)
        _, _, held = search.frontier()
        assert held == want, frames
    assert search.finish().words == ()


@pytest.mark.parametrize("seed", range(100))
def test_lattice_segment_invariants(seed):
    fst = random_graph(seed)
    scores = random_scores(seed, 15)
    config = wfst.DecoderConfig(beam=4.0, max_active=8, min_active=2, lattice_beam=3.0,
                                prune_interval=1 + seed % 4)
    search = CpuSearch(DecodingGraph(fst), config)
    search.accept(scores)
    result = search.finish()
    seg = search.segments
    frames = scores.shape[0]
    if seg.best_token < 0:  # a dead end: no token survived, nothing is kept
        assert seg.num_tokens == 0 and result.cost == float("inf")
        return
    assert seg.num_frames == frames
    assert seg.tok_start[0] == 0 and seg.tok_start[-1] == seg.num_tokens
    assert seg.link_start[0] == 0 and seg.link_start[-1] == seg.num_links
    assert (np.diff(seg.tok_start) >= 0).all() and (np.diff(seg.link_start) >= 0).all()
    tok_frame = np.repeat(np.arange(frames + 1), np.diff(seg.tok_start))
    link_frame = seg.link_frames()
    # one token per (frame, state)
    assert len(set(zip(tok_frame, seg.tok_state))) == seg.num_tokens
    emitting = fst.ilabel[seg.link_arc] != 0
    eps_split = seg.link_eps_start[link_frame]
    assert (emitting == (np.arange(seg.num_links) < eps_split)).all()
    assert (tok_frame[seg.link_dst] == link_frame).all()
    assert (tok_frame[seg.link_src] == link_frame - emitting).all()
    assert (seg.tok_state[seg.link_src] == fst.arc_sources()[seg.link_arc]).all()
    assert (seg.tok_state[seg.link_dst] == fst.nextstate[seg.link_arc]).all()
    through = (seg.tok_cost[seg.link_src] + seg.link_ac) + fst.weight[seg.link_arc]
    assert (through >= seg.tok_cost[seg.link_dst]).all()
    expected_ac = np.where(emitting, -scores[np.maximum(link_frame - 1, 0), fst.ilabel[seg.link_arc] - 1], 0)
    np.testing.assert_array_equal(seg.link_ac, expected_ac.astype(np.float32))
    # best links achieve their token's cost and lead back to the start token
    has_best = seg.tok_best >= 0
    assert has_best.sum() == seg.num_tokens - 1
    best = seg.tok_best[has_best]
    assert (seg.link_dst[best] == np.flatnonzero(has_best)).all()
    assert (through[best] == seg.tok_cost[has_best]).all()
    assert tok_frame[seg.best_token] == frames and np.isfinite(result.cost)
    # every kept link lies on a complete path within lattice_beam of the best
    with_final = result.reached_final and config.use_final_probs
    beta = np.full(seg.num_tokens, np.inf)
    frontier = tok_frame == frames
    beta[frontier] = fst.final[seg.tok_state[frontier]] if with_final else 0.0
    link_cost = seg.link_ac.astype(np.float64) + fst.weight[seg.link_arc]
    for _ in range(seg.num_tokens + 1):
        before = beta.copy()
        np.minimum.at(beta, seg.link_src, link_cost + beta[seg.link_dst])
        if np.array_equal(before, beta):
            break
    slack = seg.tok_cost[seg.link_src] + link_cost + beta[seg.link_dst] - result.cost
    assert (slack <= config.lattice_beam + 1e-3).all()
    assert beta[0] == pytest.approx(result.cost, rel=1e-5, abs=1e-4)
