"""The benchmark harnesses' own logic (not their timings): the streaming
benchmark's chunk schedule, its search for the most real-time streams and one
short real trial, the lattice cost harness's sizes, the host lattice
benchmark's replay (its Results checked against the CPU's), and the GPU benchmarks
end to end on a few example utterances (on the CPU emulator of the kernels
here, on the device in a GPU session), and the device calls' choice of GPU
tests, so a GPU session spends no time on harness bugs."""

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import wfst
from bench.lattice_cost import measure
from bench.stream_latency import most_streams, plan_stream, run_trial
from wfst.decoding_graph import DecodingGraph
from wfst.example import load_example
from wfst.score_archive import Workload


@pytest.fixture(scope="module")
def example():
    ex = load_example()
    return ex, Workload.load(ex.scores_path)


def test_stream_plan_covers_utterances_in_chunks_at_real_time_pace(example):
    _, workload = example
    shift = workload.frame_shift
    chunks = plan_stream(workload, np.random.default_rng(3), seconds=12.0, chunk_ms=(200.0, 400.0), offset=0.25)
    clock, expected_start = 0.25, 0
    for chunk in chunks:
        assert chunk.start == expected_start
        assert 5 <= chunk.end - chunk.start <= 10 or chunk.last  # 200-400 ms of 40 ms frames
        assert chunk.arrival == pytest.approx(clock + chunk.end * shift)
        frames = int(workload.offsets[chunk.utterance + 1] - workload.offsets[chunk.utterance])
        assert chunk.end <= frames and chunk.last == (chunk.end == frames)
        expected_start = 0 if chunk.last else chunk.end
        if chunk.last:
            clock += frames * shift
    assert chunks[-1].last and clock - 0.25 >= 12.0


def test_lattice_host_replays_lanes_into_the_cpu_s_results(tmp_path):
    from bench import lattice_host

    out = tmp_path / "host.json"
    assert lattice_host.main(["--utterances", "3", "--lanes", "4", "--rounds", "2", "--threads", "1", "3",
                              "--stagger", "1", "0", "--beam", "10", "--max-active", "500", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [(r["threads"], r["stagger"]) for r in record["runs"]] == [(1, 1), (3, 1), (1, 16), (3, 16)]
    assert all(1 <= r["handoffs_per_step"] <= r["threads"] for r in record["runs"])  # (job ends flush off-stagger)
    assert all(1 <= r["workers_busy"] <= r["threads"] for r in record["runs"])
    frames = sum(int(record["frames_per_utterance"][lattice_host.replayed(i, k, 3)]) for i in range(4) for k in range(2))
    assert all(r["lane_frames"] == frames and r["host_us_per_lane_frame"] > 0 and r["most_speedup_per_host_core"] > 0
               for r in record["runs"])
    assert record["tokens_per_frame"] > 1 and record["cpu_us_per_frame"] > 0
    assert {"date", "commit", "source_digest"} <= set(record)
    assert all(0 < r["pools_held_frames_per_lane_mean"] <= r["pools_held_frames_per_lane_max"]
               for r in record["runs"])
    with pytest.raises(SystemExit):  # a pool's table must hold a window (16 + 8 frames)
        lattice_host.main(["--table-frames", "20", "--out", str(out)])


@pytest.mark.parametrize("start", [1, 16])
@pytest.mark.parametrize("capacity", [0, 1, 5, 37, 300])
def test_most_streams_finds_the_largest_passing_count_within_an_eighth(capacity, start):
    def trial(n):
        return {"streams": n, "partial_latency_ms": {"p50": 1.0, "p99": 50.0 if n <= capacity else 500.0}}

    best, runs = most_streams(trial, bound_ms=100.0, limit=256, start=start)
    assert runs[0]["streams"] == start
    assert best <= capacity and best >= min(capacity, 256) * 7 / 8
    assert all(r["real_time"] == (r["streams"] <= capacity) for r in runs)


def test_a_short_streaming_trial_matches_offline(example):
    ex, workload = example
    decoder = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale), device="cpu", channels=3)
    offline = [r.words for r in decoder.decode([workload.utterance(i) for i in range(len(workload))])]
    record = run_trial(decoder, workload, offline, streams=3, seed=1, seconds=0.5, chunk_ms=(200.0, 400.0))
    assert record["streams"] == 3 and record["utterances_finished"] == 3
    assert record["finals_differing_from_offline"] == 0
    assert record["chunks"] >= 3 and record["partial_latency_ms"]["p50"] >= 0
    assert decoder._channel_pool.in_use == 0


def test_lattice_cost_counts_the_lattices_it_times(example):
    ex, workload = example
    config = wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale, lattice_beam=4.0)
    rows = [workload.utterance(i) for i in range(3)]
    record = measure(DecodingGraph(ex.fst), rows, config)
    results = wfst.Decoder(ex.fst, config, device="cpu").decode(rows)
    assert record["arcs"] == sum(r.lattice.num_arcs for r in results)
    assert record["word_arcs"] == sum(r.lattice.determinize().num_arcs for r in results)
    assert set(record["seconds"]) == {"search", "finish", "assembly_and_pruning", "determinize"}


def test_a_workload_s_head_is_its_first_utterances():
    from wfst.example import load_example
    from wfst.score_archive import Workload

    example = Workload.load(load_example().scores_path)
    workload = Workload(example.scores, example.offsets, example.utt_ids, example.frame_shift,
                        tuple((u,) for u in example.utt_ids))
    head = workload.head(3)
    assert len(head) == 3 and head.utt_ids == workload.utt_ids[:3] and head.references == workload.references[:3]
    assert all(np.array_equal(head.utterance(i), workload.utterance(i)) for i in range(3))
    assert head.num_frames == sum(workload.utterance(i).shape[0] for i in range(3))
    assert len(workload.head(10**6)) == len(workload) and len(workload.head(0)) == 0


def test_the_gpu_decoder_benchmark_writes_its_record(cupy_module, tmp_path, monkeypatch):
    from bench import gpu_decoder, provenance

    monkeypatch.setenv("WFST_COMMIT", "abc123")

    out = tmp_path / "gpu.json"
    assert gpu_decoder.main(["--lanes", "1", "3", "--utterances", "3", "--beam", "10", "--max-active", "500",
                             "--lattice-beam", "4", "--threads", "2", "--blocks-per-sm", "1", "3",
                             "--launch-graphs", "off", "on", "--switch-interval", "0.0007", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["config"]["switch_interval"] == 0.0007 and sys.getswitchinterval() == pytest.approx(0.005)
    assert record["workload"]["utterances"] == 3 and record["workload"]["set"] == "example"
    assert record["source_digest"] == provenance.source_digest() and len(record["source_digest"]) == 64
    assert record["workload"]["seed"] == 3  # the example's
    assert record["commit"] == "abc123"  # the device machine's copy of the tree names it (WFST_COMMIT)
    # the fields the GPU issue asks of every record
    assert record["device"] and set(record["versions"]) >= {"cuda_driver", "cuda_runtime", "cupy", "numba"}
    ex = load_example()
    assert record["graph"] == {"name": "example", "states": ex.fst.num_states, "arcs": ex.fst.num_arcs}
    assert record["backend"] == "cuda" and record["baseline"].endswith("(1 core)") and record["baseline_rtfx"] > 0
    assert {"beam", "max_active", "lattice_beam", "acoustic_scale"} <= set(record["config"])
    assert record["machine"]["pinned_cpu"] == min(os.sched_getaffinity(0))  # where both baselines ran
    assert [(run["lanes"], run["copies_of_the_set"], run["threads"]) for run in record["runs"]] == [
        (1, 1, 2), (3, 2, 2)] * 4
    # every grid depth and launch mode with every lane count: blocks per lane as deep as asked
    sms = cupy_module.cuda.runtime.getDeviceProperties(0)["multiProcessorCount"]
    assert [(run["blocks_per_sm"], run["launch_graphs"], run["blocks_per_lane"]) for run in record["runs"]] == [
        (1, "off", sms), (1, "off", -(-sms // 3)), (1, "on", sms), (1, "on", -(-sms // 3)),
        (3, "off", 3 * sms), (3, "off", sms), (3, "on", 3 * sms), (3, "on", sms)]
    assert all(run["identical_to_cpu"] == 3 and run["rtfx"] > 0 for run in record["runs"])
    one_lane = record["runs"][0]["stats"]  # this decode's alone: one step per frame and per start frame
    assert one_lane["frames"] == record["workload"]["frames"] and one_lane["steps"] == one_lane["frames"] + 3
    for run in record["runs"]:
        stats, shares = run["stats"], run["step_loop"]
        assert 0 < stats["run_seconds"] <= run["decode_seconds"]
        assert stats["device_wait_seconds"] > 0 and stats["lattice_wait_seconds"] >= 0
        assert 0 < shares["host"] < 1 and shares["device_wait"] > 0
        assert 0 < stats["host_cpu_seconds"] <= stats["run_seconds"] * 1.05 and shares["host_cpu"] > 0
        assert 0 <= stats["gc_seconds"] < stats["run_seconds"] and shares["gc"] == stats["gc_seconds"] / stats[
            "run_seconds"]
    assert record["cpu_backend_rtfx"] > 0 and record["speedup"] == max(r["speedup_vs_baseline"] for r in record["runs"])
    assert len((tmp_path / "gpu.text").read_text().splitlines()) == 3
    if "riva" not in sys.modules and cupy_module.__name__ != "cupy":  # no riva wheel: said, and the run goes on
        assert all("error" in run["riva"] for run in record["runs"][:2]) and record["ours_over_riva"] is None
    assert not any("riva" in run for run in record["runs"][2:])  # riva decodes each lane count once


def test_the_gpu_decoder_benchmark_sweeps_lane_groups_scores_and_workers(cupy_module, tmp_path):
    from bench import gpu_decoder
    from bench.launch_tuning import set_lane_groups
    from wfst.example import load_example

    out = tmp_path / "gpu.json"
    assert gpu_decoder.main(["--lanes", "3", "--utterances", "3", "--beam", "10", "--max-active", "500",
                             "--lattice-beam", "4", "--threads", "1", "2", "--lane-groups", "1", "2",
                             "--scores-on", "host", "device", "--skip-riva", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    config = record["config"]
    assert (config["lane_groups"], config["scores_on"], config["threads"]) == ([1, 2], ["host", "device"], [1, 2])
    assert [(run["lane_groups"], run["scores_on"], run["threads"]) for run in record["runs"]] == [
        (groups, scores, threads) for groups in (1, 2) for scores in ("host", "device") for threads in (1, 2)]
    assert all(run["identical_to_cpu"] == 3 for run in record["runs"])
    one, two = record["runs"][0]["stats"], record["runs"][4]["stats"]  # one group, two groups
    assert one["frames"] == two["frames"] and two["steps"] > one["steps"]  # a step is one group's
    ex = load_example()
    assert set_lane_groups(wfst.Decoder(ex.fst, device="cuda", lanes=1), 2) == 1  # at most the lanes


def test_the_gpu_decoder_benchmark_sweeps_the_lattice_workers_dealing(cupy_module, tmp_path):
    from bench import gpu_decoder
    from bench.launch_tuning import set_lattice_stagger
    from wfst.cuda_lattice import partition_channels
    from wfst.example import load_example

    out = tmp_path / "gpu.json"
    assert gpu_decoder.main(["--lanes", "3", "--utterances", "3", "--beam", "10", "--max-active", "500",
                             "--lattice-beam", "4", "--threads", "2", "--lattice-stagger", "0", "1", "--skip-riva",
                             "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["config"]["lattice_stagger"] == [0, 1]
    ex = load_example()
    decoder = wfst.Decoder(ex.fst, device="cuda", lanes=3, threads=2)
    period = decoder._cuda.geometry.window_period
    assert [run["lattice_stagger"] for run in record["runs"]] == [period, 1]
    assert all(run["identical_to_cpu"] == 3 for run in record["runs"])
    channels = decoder._cuda.geometry.channels
    for stagger in (1, 0):
        assert set_lattice_stagger(decoder, stagger) == (stagger or period)
        assert np.array_equal(decoder._cuda.lattices.part_of, partition_channels(channels, 2, stagger or period)[0])
    assert [r.words for r in decoder.decode(ex.scores[:2])] == [
        r.words for r in wfst.Decoder(ex.fst, device="cpu").decode(ex.scores[:2])]


def test_the_gpu_decoder_benchmark_says_which_lane_counts_were_refused(cupy_module, tmp_path, monkeypatch, capsys):
    """A lane count the memory budget refuses is a line of the log (the device call's summary greps it), and
    a run of the record, and the sweep goes on."""
    from bench import gpu_decoder

    made = wfst.Decoder

    def decoder(*args, **kwargs):
        if kwargs.get("device") == "cuda" and kwargs.get("lanes") == 3:
            raise wfst.MemoryBudgetError("3 lanes need more device memory than is free: use at most 2 lanes")
        return made(*args, **kwargs)

    monkeypatch.setattr(wfst, "Decoder", decoder)
    out = tmp_path / "gpu.json"
    assert gpu_decoder.main(["--lanes", "3", "1", "--utterances", "1", "--beam", "10", "--max-active", "500",
                             "--lattice-beam", "4", "--threads", "1", "--skip-riva", "--out", str(out)]) == 0
    assert re.search(r"^lanes +3: refused, MemoryBudgetError: 3 lanes", capsys.readouterr().out, re.MULTILINE)
    refused, ran = json.loads(out.read_text())["runs"]
    assert refused["lanes"] == 3 and "use at most 2 lanes" in refused["error"]
    assert ran["lanes"] == 1 and ran["identical_to_cpu"] == 1


class _FakeTensor:
    def __init__(self, array):
        self.array = array

    def cuda(self):
        return self


class _FakeRiva:
    """riva's BatchedMappedDecoderCuda played by our CPU backend at acoustic
    scale 1 (riva is handed scaled scores): records what it was given."""

    made = []

    def __init__(self, config, fst_path, words_path, num_columns):
        self.config, self.paths, self.num_columns, self.batches = config, (fst_path, words_path), num_columns, []
        opts = config.online_opts.decoder_opts
        self.cpu = wfst.Decoder(wfst.read_fst(fst_path), wfst.DecoderConfig(
            acoustic_scale=1.0, beam=opts.default_beam, max_active=opts.max_active,
            lattice_beam=opts.lattice_beam), device="cpu")
        _FakeRiva.made.append(self)

    def decode_nbest(self, scores, lengths):
        self.batches.append(scores.array.shape)
        results = self.cpu.decode([scores.array[i, :n] for i, n in enumerate(lengths.array)])
        return [[types.SimpleNamespace(words=list(r.words))] for r in results]


def test_the_gpu_decoder_benchmark_compares_with_riva_where_it_imports(cupy_module, tmp_path, monkeypatch):
    from bench import gpu_decoder

    torch = types.ModuleType("torch")
    torch.from_numpy = _FakeTensor
    torch.cuda = types.SimpleNamespace(synchronize=lambda: None)
    riva = types.ModuleType("riva.asrlib.decoder.python_decoder")
    riva.BatchedMappedDecoderCuda = _FakeRiva
    riva.BatchedMappedDecoderCudaConfig = lambda: types.SimpleNamespace(online_opts=types.SimpleNamespace(
        decoder_opts=types.SimpleNamespace(), lattice_postprocessor_opts=types.SimpleNamespace()))
    for name in ("riva", "riva.asrlib", "riva.asrlib.decoder"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "riva.asrlib.decoder.python_decoder", riva)
    monkeypatch.setitem(sys.modules, "torch", torch)
    _FakeRiva.made.clear()
    out = tmp_path / "gpu.json"
    assert gpu_decoder.main(["--lanes", "2", "--utterances", "3", "--beam", "10", "--max-active", "500",
                             "--lattice-beam", "4", "--threads", "2", "--out", str(out)]) == 0
    (run,) = json.loads(out.read_text())["runs"]
    assert run["riva"]["identical_words_to_cpu"] == 3 and run["riva"]["rtfx"] > 0
    assert run["ours_over_riva"] == pytest.approx(run["rtfx"] / run["riva"]["rtfx"])
    (fake,) = _FakeRiva.made
    opts = fake.config.online_opts
    assert (opts.max_batch_size, opts.num_channels, opts.decoder_opts.default_beam, opts.decoder_opts.max_active,
            opts.decoder_opts.lattice_beam, opts.lattice_postprocessor_opts.acoustic_scale) == (2, 2, 10, 500, 4, 1.0)
    assert fake.paths[0].endswith("TLG.fst") and fake.paths[1].endswith("words.txt") and fake.num_columns > 1
    # a warm-up batch, then the three utterances twice over (two per lane), in batches of two
    assert [shape[0] for shape in fake.batches] == [2, 2, 2, 2]


def test_the_host_overhead_benchmark_counts_the_timed_decode_alone(cupy_module):
    from bench import cuda_host_overhead

    run = cuda_host_overhead.measure(lanes=2, frames=6, rounds=2)
    # four 6-row utterances on two lanes, after a warm-up decode of two: two rounds of 7 steps each
    assert (run["utterances"], run["lane_frames"], run["steps"]) == (4, 24, 14)
    assert 0 < run["host_seconds"] <= run["wall_seconds"]
    grouped = cuda_host_overhead.measure(lanes=2, frames=6, rounds=2, lane_groups=2)
    assert (grouped["lane_groups"], grouped["lane_frames"], grouped["steps"]) == (2, 24, 28)  # a step per group


def test_the_streaming_benchmark_runs_on_the_gpu_backend(cupy_module, tmp_path):
    from bench import stream_latency

    out = tmp_path / "stream.json"
    assert stream_latency.main(["--device", "cuda", "--lanes", "2", "--lane-groups", "2", "--streams", "2",
                                "--seconds", "0.5", "--beam", "10", "--max-active", "500", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["lanes"] == 2 and record["lane_groups"] == 2 and record["device"] != "cpu"
    (trial,) = record["trials"]
    assert trial["streams"] == 2 and trial["utterances_finished"] >= 2
    assert trial["finals_differing_from_offline"] == 0


def test_the_step_profile_splits_a_step_into_host_and_device_parts(cupy_module, tmp_path):
    from bench import gpu_step_profile

    out = tmp_path / "profile.json"
    assert gpu_step_profile.main(["--lanes", "2", "--utterances", "3", "--beam", "10", "--max-active", "500",
                                  "--lattice-beam", "4", "--blocks-per-sm", "5", "--lane-groups", "2", "--out",
                                  str(out)]) == 0
    record = json.loads(out.read_text())
    assert {"date", "commit", "source_digest", "versions", "graph", "config"} <= set(record)
    assert record["graph"]["arcs"] > 0 and record["config"]["max_active"] == 500
    (run,) = record["runs"]
    assert run["lane_groups"] == 2
    sms = cupy_module.cuda.runtime.getDeviceProperties(0)["multiProcessorCount"]
    assert run["blocks_per_sm"] == 5 and run["blocks_per_lane"] == -(-5 * sms // 2)
    assert run["lanes"] == 2 and run["utterances"] == 6 and run["steps"] > 0
    host, device = run["host_ms_per_step"], run["device_ms_per_step"]
    assert set(host) == set(gpu_step_profile.TIMED_METHODS) | {"close_step"}
    assert set(device) == set(gpu_step_profile.DEVICE_PARTS) and all(v > 0 for v in device.values())
    kernels = run["kernel_ms_per_step"]
    assert {"emit_expand", "eps_persistent", "window_store", "reset_lanes"} <= set(kernels)
    assert run["kernel_launches_per_step"]["emit_expand"] == 1
    assert sum(kernels.values()) <= sum(device.values()) * 1.01
    # the parts run inside the step loop: each takes less than the whole step
    assert all(0 < v < run["ms_per_step"] for v in host.values())
    as_run = run["as_run"]  # the second decode, as the decoder runs: host timers only
    assert as_run["steps"] == run["steps"] and 0 < as_run["ms_per_step"]
    assert set(as_run["host_ms_per_step"]) == set(host) == set(as_run["host_cpu_ms_per_step"])
    assert all(0 <= as_run["host_cpu_ms_per_step"][k] <= v * 1.05 + 0.05 for k, v in as_run["host_ms_per_step"].items())
    assert "_search_frame" in run["profile_by_own_time"] or "launch" in run["profile_by_own_time"]
    # the timers are removed afterwards
    from wfst.cuda_lane_group import LaneGroup
    assert not hasattr(LaneGroup._search_frame, "__wrapped__")


def test_the_gc_pause_benchmark_times_full_collections_outside_and_inside_a_run(tmp_path):
    from bench import gc_pause

    out = tmp_path / "gc.json"
    assert gc_pause.main(["--repeat", "2", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    times = record["full_collection_ms"]
    assert record["tracked_objects"] > 1000 and record["modules_loaded"] > 100
    assert times["inside_a_run"]["best"] < times["outside"]["best"]  # only the run's own objects are scanned


def test_lane_imbalance_compares_a_step_s_largest_lane_with_its_mean(tmp_path):
    from bench import lane_imbalance

    rng = np.random.default_rng(0)
    assert lane_imbalance.imbalance([np.full(5, 7)], 16, 10, rng)["max_over_mean"] == 1.0
    one_heavy = lane_imbalance.imbalance([np.array([0, 0, 0, 40])], 4, 50, rng)
    assert 1.0 < one_heavy["max_over_mean"] <= 4.0  # at most 4 lanes' mean in one lane
    out = tmp_path / "imbalance.json"
    assert lane_imbalance.main(["--lanes", "1", "4", "--utterances", "2", "--draws", "5", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record["measures"]) == {"emitting_arcs", "tokens", "links"}
    for measure in record["measures"].values():
        assert [s["lanes"] for s in measure["steps"]] == [1, 4]
        assert measure["steps"][0]["max_over_mean"] == 1.0 and measure["steps"][1]["max_over_mean"] >= 1.0
        assert measure["per_lane_frame"]["max"] >= measure["per_lane_frame"]["mean"] > 0


DEVICE_LACKS = ("pynini", "pywrapfst", "hypothesis", "torch")
"""What the device machine's Python does not have (the GPU tests must import without it)."""


def test_the_device_calls_run_every_gpu_test_file_and_it_imports_without_pynini(tmp_path):
    """The device calls' GPU tests (bench/gpu_session_common.sh: ``$GPU_TESTS``)
    are every test file with gpu-marked tests but the workload's, which has a
    step of its own, the kernels' own tests first, and pytest collects them on a Python without pynini
    (collecting every file of tests/ would stop at those that import it, and
    run no test)."""
    repo = Path(__file__).resolve().parent.parent
    script = (repo / "bench" / "gpu_session_common.sh").read_text(encoding="utf-8")
    line = re.search(r"^GPU_TESTS=.*$", script, re.MULTILINE).group(0)
    listed = subprocess.run(["bash", "-c", f"{line}\necho $GPU_TESTS"], cwd=repo, capture_output=True, text=True,
                            check=True).stdout.split()
    marked = sorted(f"tests/{path.name}" for path in (repo / "tests").glob("test_*.py")
                    if re.search(r"mark\.gpu|cupy_module", path.read_text(encoding="utf-8")))
    assert sorted(listed) == [f for f in marked if f != "tests/test_cuda_workload.py"]
    kinds = [0 if re.search(r"test_cuda_(?!decoder|stream)", f) else 1 if "test_cuda_" in f else 2 for f in listed]
    assert kinds == sorted(kinds) and kinds[0] == 0  # the kernels' tests, the decoder's and streams', the rest
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class Lacks:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {DEVICE_LACKS!r}:\n"
        "            raise ImportError(name + ' is not on the device machine')\n"
        "sys.meta_path.insert(0, Lacks())\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo)])}
    collected = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                                "-m", "gpu", *listed], cwd=repo, env=env, capture_output=True, text=True)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert re.search(r"^(\d+)/\d+ tests collected", collected.stdout, re.MULTILINE), collected.stdout[-2000:]
