"""The CUDA decoder over a workload, lanes swept, with a one-core CPU baseline in
the same run (Kaldi's FasterDecoder when kaldi-decoder imports, else our CPU
backend), and the GPU hypotheses checked against the CPU backend's.

    python -m bench.gpu_decoder --graph DIR/graphs/full --data DIR/data/full/lm-medium.npz \\
        --acoustic-scale 0.5 --beam 15 --max-active 10000 --lattice-beam 8 --lanes 1 32 128 512
    python -m bench.gpu_decoder --lanes 1 8          # the embedded example

Our CPU backend decodes the same utterances first (its RTFx, and each lane
count's hypotheses are compared with it: ``identical_to_cpu``, same words and
cost); Kaldi's FasterDecoder is the speed baseline when kaldi-decoder imports,
else our CPU backend. Where riva-asrlib-decoder and torch import (and unless
``--skip-riva``), each lane count's batch is also decoded by riva's batched CUDA
decoder on as many channels (:mod:`bench.riva_baseline`): its RTFx, and ours over
it. ``--blocks-per-sm``, ``--lane-groups``, ``--launch-graphs``, ``--scores-on``
(numpy input, or cupy arrays uploaded before the timer, as riva's are),
``--threads`` (lattice workers) and ``--lattice-stagger`` (how the channels are
dealt to them) are swept with the lane counts (:mod:`bench.launch_tuning`). Writes ``bench/results/gpu_decoder_<graph>_<set>.json``
(device, date, commit and source digest, versions, graph, workload, config, per-lane-count decode
seconds and RTFx, the baselines' RTFx, speedups) and a Kaldi ``text`` file of
the hypotheses beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import wfst
from bench.inputs import add_input_arguments, load_inputs
from bench.launch_tuning import add_launch_arguments, set_blocks_per_sm, set_lane_groups, set_lattice_stagger
from bench.provenance import device_name, git_commit, gpu_versions, source_digest
from bench.riva_baseline import riva_run
from bench.workload.kaldi_baseline import KaldiGraph, machine_info, pinned_to, run_kaldi
from wfst.example import example_dir
from wfst.score_archive import Workload

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _kaldi_rtfx(fst, graph_dir: Path, workload: Workload, config, core: int) -> float | None:
    """RTFx of Kaldi's FasterDecoder on core ``core`` alone over the whole
    ``workload``, or None when kaldi-decoder is not installed (the GPU machine
    may lack it)."""
    try:
        kaldi = run_kaldi(KaldiGraph.from_csr(fst, path=graph_dir / "TLG.fst"), workload, decoder="faster",
                          beam=config.beam, max_active=config.max_active, min_active=config.min_active,
                          acoustic_scale=config.acoustic_scale, cpu=core, count_tokens=0)
    except Exception as error:
        print(f"Kaldi baseline unavailable ({type(error).__name__}: {error})", file=sys.stderr)
        return None
    return workload.audio_seconds / kaldi.seconds


def _cpu_backend(fst, rows, config, frame_shift: float, core: int):
    """Our CPU backend on core ``core`` alone over ``rows``: (RTFx, Results)."""
    cpu = wfst.Decoder(fst, config, device="cpu")
    cpu.decode(rows[0][:2])  # compile
    with pinned_to(core):
        start = time.perf_counter()
        results = cpu.decode(rows)
        seconds = time.perf_counter() - start
    return sum(r.shape[0] for r in rows) * frame_shift / seconds, results


@contextlib.contextmanager
def switch_interval(seconds: float | None):
    """The interpreter's GIL switch interval set to ``seconds`` (None: left) inside, restored after."""
    saved = sys.getswitchinterval()
    if seconds is not None:
        sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


def step_loop_shares(stats: dict) -> dict:
    """Where the CUDA decoder's step loop spent its wall time (from its stats
    over one decode): waiting for the device (its counters, the copy of the
    packed windows: GPU time the host's work did not hide), waiting for the
    lattice workers, and the calling thread's own work (launches, lane
    bookkeeping), as shares; ``host_cpu``, the calling thread's CPU time over
    the wall time (its work, and device waits where they spin: a host share
    well above ``host_cpu - device_wait`` is time it waited for the GIL);
    ``gc``, the garbage collector's share (it holds the GIL); and ms per step."""
    run = stats["run_seconds"]
    device, lattice = stats["device_wait_seconds"], stats["lattice_wait_seconds"]
    return {"ms_per_step": 1e3 * run / max(stats["steps"], 1), "host": (run - device - lattice) / run,
            "device_wait": device / run, "lattice_wait": lattice / run, "host_cpu": stats["host_cpu_seconds"] / run,
            "gc": stats["gc_seconds"] / run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_decoder", description=__doc__.split("\n\n")[0])
    add_input_arguments(parser)
    parser.add_argument("--beam", type=float, default=15.0)
    parser.add_argument("--max-active", type=int, default=10000)
    parser.add_argument("--min-active", type=int, default=200)
    parser.add_argument("--lattice-beam", type=float, default=8.0)
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 32, 128, 512])
    parser.add_argument("--per-lane", type=int, default=2,
                        help="decode at least this many utterances per lane: the set is repeated as needed "
                             "(default 2, so every lane is busy, then refilled)")
    parser.add_argument("--utterances", type=int, default=0, help="the first N utterances of the set only (0: all)")
    parser.add_argument("--threads", type=int, nargs="+", default=[None],
                        help="host threads for the lattices, swept with the lane counts (default: the decoder's, "
                             "the cores available; fewer leave the step loop's thread fewer rivals for the GIL)")
    add_launch_arguments(parser)
    parser.add_argument("--switch-interval", type=float,
                        help="seconds between the interpreter's GIL hand-overs during the runs (sys.setswitchinterval; "
                             "default Python's, 0.005): shorter lets the step loop's thread take the GIL back sooner "
                             "from the lattice workers")
    parser.add_argument("--scores-on", choices=("host", "device"), nargs="+", default=["host"],
                        help="where the timed decode finds the scores: numpy arrays (host, the default: the decoder "
                             "stages them) or cupy arrays uploaded before the timer starts (device: as riva's runs "
                             "get theirs, and as an acoustic model on the GPU hands them over); both: an A/B")
    parser.add_argument("--lattice-stagger", type=int, nargs="+", default=[0],
                        help="how the lattice store deals the channels to its workers, swept with the lane counts "
                             "(wfst.cuda_lattice.partition_channels): 0 (default), the decoder's own (a step's "
                             "flushes spread over the workers); 1, channel c to worker c modulo threads (a step's "
                             "flushes on fewer workers, fewer of them woken per step)")
    parser.add_argument("--skip-riva", action="store_true",
                        help="do not decode with riva-asrlib-decoder even where it imports")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    from wfst.gpu import import_cupy

    cupy = import_cupy()
    inputs = load_inputs(args)
    fst, workload = inputs.fst, inputs.workload
    graph_dir = args.graph or example_dir()
    words = wfst.SymbolTable.read(graph_dir / "words.txt")
    config = wfst.DecoderConfig(beam=args.beam, max_active=args.max_active, min_active=args.min_active,
                                lattice_beam=args.lattice_beam, acoustic_scale=inputs.acoustic_scale)
    count = min(args.utterances or len(workload), len(workload))
    workload = workload.head(count)  # the baselines decode what the GPU decodes
    rows = [np.ascontiguousarray(workload.utterance(i), dtype=np.float32) for i in range(count)]
    audio_seconds = sum(r.shape[0] for r in rows) * workload.frame_shift
    core = min(os.sched_getaffinity(0))  # both baselines run on this core alone
    machine = machine_info(core)  # (before the runs: its load average is other work's)
    cpu_rtfx, cpu_results = _cpu_backend(fst, rows, config, workload.frame_shift, core)
    kaldi_rtfx = _kaldi_rtfx(fst, graph_dir, workload, config, core)
    baseline_name, baseline_rtfx = (("kaldi FasterDecoder (1 core)", kaldi_rtfx) if kaldi_rtfx is not None
                                    else ("wfst cpu backend (1 core)", cpu_rtfx))
    runs, hyps = [], None
    out = args.out or RESULTS_DIR / f"gpu_decoder_{inputs.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text_path = out.with_suffix(".text")

    digest, device = source_digest(), device_name()

    def write_record():  # after every run: a run cut short keeps the runs it finished
        if hyps is not None:
            text_path.write_text("".join(f"{u} {' '.join(words[w] for w in r.words)}\n"
                                         for u, r in zip(workload.utt_ids, hyps)), encoding="utf-8")
        best = max((r for r in runs if "rtfx" in r), key=lambda r: r["rtfx"], default=None)
        riva_best = max((r["riva"]["rtfx"] for r in runs if "rtfx" in r.get("riva", {})), default=None)
        record = {
            "command": "python -m bench.gpu_decoder " + " ".join(sys.argv[1:] if argv is None else argv),
            "device": device, "machine": machine,
            "date": datetime.date.today().isoformat(), "commit": git_commit(),
            "source_digest": digest, "versions": gpu_versions(cupy),
            "graph": {"name": graph_dir.name, "states": fst.num_states, "arcs": fst.num_arcs},
            "workload": {"set": inputs.name, "seed": workload.metadata.get("seed"), "utterances": count,
                         "frames": int(sum(r.shape[0] for r in rows)), "audio_seconds": audio_seconds,
                         "per_lane": args.per_lane},
            "config": {"beam": args.beam, "max_active": args.max_active, "min_active": args.min_active,
                       "lattice_beam": args.lattice_beam, "acoustic_scale": inputs.acoustic_scale,
                       "lanes": args.lanes, "blocks_per_sm": args.blocks_per_sm, "launch_graphs": args.launch_graphs,
                       "lane_groups": args.lane_groups, "scores_on": args.scores_on, "threads": args.threads,
                       "lattice_stagger": args.lattice_stagger,
                       "switch_interval": args.switch_interval or sys.getswitchinterval()},
            "backend": "cuda", "baseline": baseline_name, "baseline_rtfx": baseline_rtfx,
            "kaldi_faster_rtfx": kaldi_rtfx, "cpu_backend_rtfx": cpu_rtfx, "runs": runs,
            "decode_seconds": best["decode_seconds"] if best else None, "rtfx": best["rtfx"] if best else None,
            "speedup": best["speedup_vs_baseline"] if best else None, "hypotheses": text_path.name,
            "riva_rtfx": riva_best, "ours_over_riva": best["rtfx"] / riva_best if best and riva_best else None,
        }
        out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")

    with switch_interval(args.switch_interval):
        for depth, graphs, groups, scores_on, workers, dealing, lanes in itertools.product(
                args.blocks_per_sm, args.launch_graphs, args.lane_groups, args.scores_on, args.threads,
                args.lattice_stagger, args.lanes):
            try:
                decoder = wfst.Decoder(fst, config, device="cuda", lanes=lanes, threads=workers)
            except wfst.MemoryBudgetError as error:
                runs.append({"lanes": lanes, "error": str(error)})
                # said in the log (and so in the device call's summary), not only in the record
                print(f"lanes {lanes:5d}: refused, MemoryBudgetError: {error}", flush=True)
                write_record()
                continue
            grid = set_blocks_per_sm(decoder, depth)
            groups_set = set_lane_groups(decoder, groups)
            stagger = set_lattice_stagger(decoder, dealing)
            decoder._cuda.launch_graphs.enabled = graphs == "on"
            decoder.decode(rows[:1])  # compiles the kernels
            copies = max(1, -(-args.per_lane * lanes // len(rows)))
            batch = rows * copies if scores_on == "host" else [cupy.asarray(r) for r in rows] * copies
            audio = audio_seconds * copies
            cupy.cuda.Device().synchronize()
            before = dict(decoder._cuda.stats)
            start = time.perf_counter()
            results = decoder.decode(batch)
            seconds = time.perf_counter() - start
            hyps = results[: len(rows)]
            stats = {k: v - before[k] for k, v in decoder._cuda.stats.items()}  # this decode's
            runs.append({"lanes": lanes, "blocks_per_sm": depth, "blocks_per_lane": grid, "launch_graphs": graphs,
                         "lane_groups": groups_set, "scores_on": scores_on, "threads": decoder.threads,
                         "lattice_stagger": stagger,
                         "copies_of_the_set": copies,
                         "decode_seconds": seconds, "rtfx": audio / seconds,
                         "speedup_vs_baseline": (audio / seconds) / baseline_rtfx,
                         "identical_to_cpu": sum(a.words == b.words and a.cost == b.cost
                                                 for a, b in zip(hyps, cpu_results)),
                         "step_loop": step_loop_shares(stats), "stats": stats,
                         "memory": decoder._cuda.memory.as_dict()})
            threads = decoder.threads
            del decoder, results, batch
            gc.collect()  # its device memory free for the next lane count's, should a cycle still hold it
            first_of_lanes = (depth, graphs, groups, scores_on, workers, dealing) == (
                args.blocks_per_sm[0], args.launch_graphs[0], args.lane_groups[0], args.scores_on[0], args.threads[0],
                args.lattice_stagger[0])
            if not args.skip_riva and first_of_lanes:  # the same batch on riva's decoder, as many channels
                riva = riva_run(graph_dir, rows[0].shape[1], config, lanes, threads, rows * copies,
                                [r.words for r in cpu_results], audio)
                runs[-1]["riva"] = riva
                if "rtfx" in riva:
                    runs[-1]["ours_over_riva"] = runs[-1]["rtfx"] / riva["rtfx"]
                    print(f"  riva-asrlib-decoder, {lanes} channels: RTFx {riva['rtfx']:10.1f}, ours over riva "
                          f"{runs[-1]['ours_over_riva']:.2f}, {riva['identical_words_to_cpu']}/{count} words as the "
                          "CPU backend's", flush=True)
            shares = runs[-1]["step_loop"]
            print(f"lanes {lanes:5d} ({grid} blocks each, graphs {graphs}, {groups_set} lane groups, scores on "
                  f"{scores_on}), {threads} threads (stagger {stagger}): {seconds:8.3f} s  "
                  f"RTFx {audio / seconds:10.1f}  "
                  f"x{(audio / seconds) / baseline_rtfx:8.1f} over {baseline_name}  "
                  f"{runs[-1]['identical_to_cpu']}/{count} identical to the CPU backend; step loop "
                  f"{shares['ms_per_step']:.2f} ms per step: host {shares['host']:.0%}, waiting for the device "
                  f"{shares['device_wait']:.0%}, for the lattice workers {shares['lattice_wait']:.0%}; its CPU time "
                  f"{shares['host_cpu']:.0%}; garbage collection {shares['gc']:.1%}", flush=True)
            write_record()
    write_record()
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
