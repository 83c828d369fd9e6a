"""Our CPU (numba) decoder against Kaldi's FasterDecoder, side by side in one run,
both on the same pinned core, graph, scores and search settings.

    python -m bench.cpu_decoder --graph DIR/graphs/full --data DIR/data/full/lm-medium.npz \\
        --acoustic-scale 0.5 --beam 15 --max-active 10000

Ours always builds lattices (lattice_beam 8, pruned every 25 frames); Kaldi's
FasterDecoder makes none. Per utterance, the timed work is ``Decoder.decode``
(including the final lattice pruning and the Result) against Kaldi's decode plus
best path. Each decoder runs ``--repeat`` times, alternating, and its fastest run
counts. Reported: frames/s, RTFx and WER of each, the speed ratio by wall time and
by the decoding thread's CPU time (steadier on a shared machine), how many
transcripts are identical, and tokens expanded per frame (untimed second pass).
Results go to ``bench/results/cpu_decoder_<graph>_<data>_<acoustic scale>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import wfst
from bench.workload.kaldi_baseline import (RESULTS_DIR, KaldiGraph, machine_info, pinned_to, run_kaldi,
                                           summarize)
from bench.workload.posteriors import Workload
from wfst.cpu_backend import CpuSearch
from wfst.wer import compute_wer


def run_ours(fst: wfst.CsrFst, workload: Workload, config: wfst.DecoderConfig, cpu: int | None,
             count_tokens: int) -> dict:
    """Decode every utterance with our CPU backend; per-utterance wall and
    thread CPU seconds."""
    decoder = wfst.Decoder(fst, config, device="cpu")
    rows = [workload.utterance(i) for i in range(len(workload))]
    seconds = np.empty(len(rows))
    cpu_seconds = np.empty(len(rows))
    results = []
    with pinned_to(cpu):
        decoder.decode(rows[0])  # loads the compiled kernels from numba's cache
        for i, scores in enumerate(rows):
            start, cpu_start = time.perf_counter(), time.thread_time()
            results.append(decoder.decode(scores))
            seconds[i] = time.perf_counter() - start
            cpu_seconds[i] = time.thread_time() - cpu_start
    expanded = frames = 0
    for scores in rows[:count_tokens]:
        search = CpuSearch(decoder.graph, config)
        search.accept(np.ascontiguousarray(scores, dtype=np.float32))
        expanded += search.expanded_tokens
        frames += scores.shape[0]
    return {"results": results, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "tokens_per_frame": expanded / frames if frames else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_decoder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--graph", type=Path, required=True, help="directory with TLG.fst and words.txt")
    parser.add_argument("--data", type=Path, required=True, help="workload .npz (references from its .text)")
    parser.add_argument("--acoustic-scale", type=float, default=0.5)
    parser.add_argument("--beam", type=float, default=15.0)
    parser.add_argument("--max-active", type=int, default=10000)
    parser.add_argument("--min-active", type=int, default=200)
    parser.add_argument("--lattice-beam", type=float, default=8.0)
    parser.add_argument("--cpu", type=int, help="core to pin both decoders to (default: the first usable one)")
    parser.add_argument("--count-tokens", type=int, default=5, metavar="N",
                        help="count tokens per frame on the first N utterances (untimed)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each decoder, alternating; the fastest of each counts (default 3)")
    parser.add_argument("--out", type=Path, help="JSON path (default under bench/results/)")
    args = parser.parse_args(argv)

    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    machine = machine_info(cpu)  # (before the runs: its load average is other work's)
    workload = Workload.load(args.data)
    words = wfst.SymbolTable.read(args.graph / "words.txt")
    fst = wfst.read_fst(args.graph / "TLG.fst")
    config = wfst.DecoderConfig(beam=args.beam, max_active=args.max_active, min_active=args.min_active,
                                lattice_beam=args.lattice_beam, acoustic_scale=args.acoustic_scale)
    kaldi_graph = KaldiGraph.from_csr(fst, path=args.graph / "TLG.fst")
    kaldi_runs, our_runs = [], []
    for rep in range(args.repeat):  # alternating, so that a noisy spell hits both
        kaldi_runs.append(run_kaldi(kaldi_graph, workload, decoder="faster", beam=args.beam,
                                    max_active=args.max_active, min_active=args.min_active,
                                    acoustic_scale=args.acoustic_scale, cpu=cpu,
                                    count_tokens=args.count_tokens if rep == 0 else 0))
        our_runs.append(run_ours(fst, workload, config, cpu, args.count_tokens if rep == 0 else 0))
    kaldi = min(kaldi_runs, key=lambda run: run.seconds)
    ours = min(our_runs, key=lambda run: run["seconds"].sum())
    kaldi_cpu = min(float(run.utt_cpu_seconds.sum()) for run in kaldi_runs)
    our_cpu = min(float(run["cpu_seconds"].sum()) for run in our_runs)
    if kaldi.tokens_per_frame is None:
        kaldi = dataclasses.replace(kaldi, tokens_per_frame=kaldi_runs[0].tokens_per_frame)
    ours["tokens_per_frame"] = our_runs[0]["tokens_per_frame"]

    results = ours["results"]
    our_words = [tuple(words[w] for w in r.words) for r in results]
    same = sum(r.words == k for r, k in zip(results, kaldi.hyps))
    frames = int(np.diff(workload.offsets).sum())
    our_seconds = float(ours["seconds"].sum())
    kaldi_record = summarize(kaldi, workload, words)
    our_wer = (None if workload.references is None
               else compute_wer(workload.references, our_words, workload.utt_ids).to_dict())
    record = {
        "command": "python -m bench.cpu_decoder " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine,
        "graph": {"path": str(args.graph), "states": fst.num_states, "arcs": fst.num_arcs,
                  "epsilon_arcs": fst.num_epsilon_arcs},
        "data": {"path": str(args.data), "utterances": len(workload), "frames": frames,
                 "audio_seconds": workload.audio_seconds, "frame_shift": workload.frame_shift},
        "config": {"beam": args.beam, "max_active": args.max_active, "min_active": args.min_active,
                   "lattice_beam": args.lattice_beam, "acoustic_scale": args.acoustic_scale,
                   "prune_interval": config.prune_interval},
        "repeat": args.repeat,
        "ours": {"seconds": our_seconds, "cpu_seconds": our_cpu, "frames_per_second": frames / our_seconds,
                 "rtfx": workload.audio_seconds / our_seconds, "wer": our_wer,
                 "tokens_per_frame": ours["tokens_per_frame"],
                 "lattice_arcs_per_frame": float(np.mean([r.lattice.num_arcs / max(r.num_frames, 1)
                                                          for r in results])),
                 "hyps": [{"utt": u, "words": " ".join(w), "cost": r.cost, "reached_final": r.reached_final}
                          for u, w, r in zip(workload.utt_ids, our_words, results)]},
        "kaldi_faster": kaldi_record,
        "identical_transcripts": same,
        "speedup_vs_kaldi": kaldi.seconds / our_seconds,
        "speedup_vs_kaldi_cpu_time": kaldi_cpu / our_cpu,
    }
    out = args.out or RESULTS_DIR / f"cpu_decoder_{args.graph.name}_{args.data.stem}_{args.acoustic_scale:.1f}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    kaldi_tokens = kaldi_record["tokens_per_frame"]["mean"] if kaldi_record["tokens_per_frame"] else float("nan")
    print(f"{'decoder':22s} {'frames/s':>10s} {'RTFx':>8s} {'WER %':>7s} {'tokens/frame':>13s}")
    def wer(record):  # (no references: no WER)
        return record["wer"] if record else float("nan")

    print(f"{'ours (cpu, lattices)':22s} {frames / our_seconds:10.0f} {workload.audio_seconds / our_seconds:8.1f} "
          f"{wer(our_wer):7.2f} {ours['tokens_per_frame'] or float('nan'):13.0f}")
    print(f"{'kaldi FasterDecoder':22s} {kaldi.frames_per_second:10.0f} {kaldi.rtfx:8.1f} "
          f"{wer(kaldi_record['wer']):7.2f} {kaldi_tokens:13.0f}")
    print(f"speed-up {kaldi.seconds / our_seconds:.2f}x wall, {kaldi_cpu / our_cpu:.2f}x CPU time (best of "
          f"{args.repeat}); identical transcripts {same}/{len(workload)}; written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
