"""The device's window pruning (lattice.window_prune, the specification of
cuda_kernels/lattice_window.cu): frames pruned in windows give the CPU
backend's Results exactly, whatever the window."""

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
    _, results = measure(graph, config, [windowed(frames, window, config, lane=seed % 5)], lanes=1, threads=1,
                         rounds=1)
    got = results[0][0]
    assert (got.words, got.cost, got.word_frames, got.reached_final) == (want.words, want.cost, want.word_frames,
                                                                          want.reached_final)
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
        pruned = prune_window(window, config.lattice_beam)
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
