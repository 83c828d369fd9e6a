"""The device's window pruning (lattice.window_prune, the specification of
cuda_kernels/lattice_window.cu): frames pruned in windows, kept in the pool or
sent, and pruned with the final costs at the end, give the CPU backend's
Results exactly, whatever the window, the pool and the frames each flush keeps
back."""

import numpy as np
import pytest

from bench.lattice_host import measure, raw_frames, windowed
from lattice.window_prune import prune_window, window_extras
from wfst import DecoderConfig
from wfst.cpu_backend import CpuSearch
from wfst.decoding_graph import DecodingGraph

from .random_graph import random_graph, random_scores


def _case(seed):
    graph = DecodingGraph(random_graph(seed, max_states=14))
    scores = random_scores(seed, 1 + seed % 23)
    config = DecoderConfig(beam=float(5 + seed % 9), max_active=3 + seed % 9, min_active=seed % 3,
                           lattice_beam=float(seed % 5) + 0.5 * (seed % 2), prune_interval=1 + seed % 5)
    return graph, scores, config


@pytest.mark.parametrize("seed", range(60))
def test_frames_pruned_in_windows_give_the_cpu_s_result_and_lattice(seed):
    graph, scores, config = _case(seed)
    search = CpuSearch(graph, config)
    search.accept(scores)
    want = search.finish()
    frames = raw_frames(graph, config, scores)
    window = 1 + seed % 7 if seed % 4 else len(frames)
    lag = (0, 1, 2, 8)[seed // 4 % 4]
    lanes = 1 + seed % 5  # lanes flush at staggered rows
    table = (0, window + lag + 2, 256)[seed % 3]  # never keep, keep and send (a small pool), keep
    _, results = measure(graph, config, [frames], lanes=lanes, threads=1, rounds=1, window=window, lag=lag,
                         table_frames=table)
    for lane in range(lanes):
        got = results[lane][0]
        assert (got.words, got.cost, got.word_frames, got.reached_final) == (want.words, want.cost,
                                                                              want.word_frames, want.reached_final)
        assert np.array_equal(got.alignment, want.alignment)
        for name in ("arc_src", "arc_dst", "arc_ilabel", "arc_olabel", "arc_graph_cost", "arc_acoustic_cost",
                     "final_graph_cost", "final_acoustic_cost", "state_frame"):
            assert np.array_equal(getattr(got.lattice, name), getattr(want.lattice, name)), name


def test_window_pruning_removes_what_cannot_reach_the_newest_frame_within_the_beam():
    removed = 0
    for seed in range(40):
        graph, scores, config = _case(seed)
        frames = raw_frames(graph, config, scores)
        window = frames[len(frames) // 3:]
        pruned, held = prune_window(window, config.lattice_beam)
        assert held == []
        extras, kept = window_extras(window, config.lattice_beam)
        assert pruned[-1][0].size == window[-1][0].size  # later frames refer to the newest frame's tokens
        assert np.all(extras[-1] == 0)
        for f, (frame, out) in enumerate(zip(window, pruned)):
            alive = np.isfinite(extras[f])
            assert np.all(extras[f][alive] <= np.float32(config.lattice_beam))
            assert out[0].size == alive.sum() and out[3].size == kept[f].sum()
            assert np.array_equal(out[1], frame[1][alive])  # order kept
            has_best = out[2] >= 0
            assert np.all(has_best | (f == 0))  # every kept token keeps its best link
            assert np.all(out[7][out[2][has_best]] == 0)  # which has excess 0
            ne = out[8]
            assert np.all(out[4] < out[0].size) and np.all(out[3][ne:] < out[0].size)
            if f > 0:
                assert np.all(out[3][:ne] < pruned[f - 1][0].size)
            removed += frame[0].size - out[0].size
    assert removed > 100


def test_a_flush_keeping_frames_back_sends_the_same_frames_and_renumbers_the_held_sources():
    checked = 0
    for seed in range(40):
        graph, scores, config = _case(seed)
        frames = raw_frames(graph, config, scores)
        if len(frames) < 3:
            continue
        lag = 1 + seed % (len(frames) - 1)
        whole, _ = prune_window(frames, config.lattice_beam)
        sent, held = prune_window(frames, config.lattice_beam, lag)
        send = len(frames) - lag
        assert len(sent) == send and len(held) == lag
        for a, b in zip(sent, whole[:send]):
            assert all(np.array_equal(x, y) for x, y in zip(a, b))
        for f, frame in enumerate(held):  # unpruned, as stored
            original = frames[send + f]
            for i in (0, 1, 2, 4, 5, 6, 7, 8):
                assert np.array_equal(frame[i], original[i])
        extras, _ = window_extras(frames, config.lattice_beam)
        alive = np.isfinite(extras[send - 1])
        ne = held[0][8]
        old = frames[send][3][:ne]
        assert np.array_equal(held[0][3][:ne] >= 0, alive[old])
        assert np.array_equal(held[0][3][:ne][alive[old]], (np.cumsum(alive) - 1)[old[alive[old]]])
        assert np.array_equal(held[0][3][ne:], frames[send][3][ne:])
        checked += int((~alive[old]).sum())
    assert checked > 10  # some held link lost its source


def test_keeping_frames_back_and_keeping_pruned_frames_on_the_device_send_fewer_tokens():
    sent = {(0, 0): 0, (0, 4): 0, (256, 4): 0}  # (frames a pool holds (0: flushes send), frames kept back)
    for seed in range(40):
        graph, scores, config = _case(seed)
        frames = raw_frames(graph, config, scores)
        for table, lag in sent:
            sent[table, lag] += sum(f[0].size for step in windowed(frames, 4, config, graph.fst.final, lag=lag,
                                                                    table_frames=table) for f in step)
    assert sent[256, 4] < sent[0, 4] < 0.9 * sent[0, 0]  # (small graphs: the final pruning does most)


def test_a_flush_must_send_at_least_one_frame():
    """prune_window keeps back at most all but one of the window's frames: a
    lag of the whole window (or more, or negative) is a ValueError, not a flush
    that sends nothing; an empty window sends nothing."""
    graph, scores, config = _case(5)
    frames = raw_frames(graph, config, scores)
    assert len(frames) >= 2
    for lag in (len(frames), len(frames) + 1, -1):
        with pytest.raises(ValueError, match="a flush sends at least one frame"):
            prune_window(frames, config.lattice_beam, lag)
    sent, held = prune_window(frames, config.lattice_beam, len(frames) - 1)
    assert (len(sent), len(held)) == (1, len(frames) - 1)
    assert prune_window([], config.lattice_beam) == ([], [])
