"""The CUDA decoder over a workload, lanes swept, with a one-core CPU baseline in
the same run (Kaldi's FasterDecoder when kaldi-decoder imports, else our CPU
backend), and the GPU hypotheses checked against the CPU backend's.

    python -m bench.gpu_decoder --graph DIR/graphs/full --data DIR/data/full/lm-medium.npz \\
        --acoustic-scale 0.5 --beam 15 --max-active 10000 --lattice-beam 8 --lanes 1 32 128 512

Writes ``bench/results/gpu_decoder_<graph>_<data>.json`` (device, date, commit,
versions, graph, workload, config, per-lane-count decode seconds and RTFx, the
baseline's RTFx, speedups) and a Kaldi ``text`` file of the hypotheses beside it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import wfst
from bench.workload.posteriors import Workload

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _versions(cupy) -> dict:
    import numba

    return {"python": sys.version.split()[0], "numpy": np.__version__, "numba": numba.__version__,
            "cupy": cupy.__version__, "cuda_driver": cupy.cuda.runtime.driverGetVersion(),
            "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion()}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return "unknown"


def _baseline(fst, rows, config, args):
    try:
        from bench.workload.kaldi_baseline import KaldiGraph, run_kaldi

        kaldi = run_kaldi(KaldiGraph.from_csr(fst, path=args.graph / "TLG.fst"), args.workload, decoder="faster",
                          beam=config.beam, max_active=config.max_active, min_active=config.min_active,
                          acoustic_scale=config.acoustic_scale, cpu=min(os.sched_getaffinity(0)), count_tokens=0)
        return "kaldi FasterDecoder (1 core)", kaldi.seconds, None
    except Exception as error:  # kaldi-decoder missing on the GPU machine: our CPU backend instead
        print(f"Kaldi baseline unavailable ({type(error).__name__}: {error}); using the CPU backend",
              file=sys.stderr)
    cpu = wfst.Decoder(fst, config, device="cpu")
    subset = rows[: args.baseline_utterances] if args.baseline_utterances else rows
    cpu.decode(subset[0][:2])  # compile
    start = time.perf_counter()
    results = cpu.decode(subset)
    seconds = time.perf_counter() - start
    share = sum(r.shape[0] for r in subset) / sum(r.shape[0] for r in rows)
    return "wfst cpu backend (1 core)", seconds / share, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_decoder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--graph", type=Path, required=True, help="directory with TLG.fst and words.txt")
    parser.add_argument("--data", type=Path, required=True, help="workload .npz")
    parser.add_argument("--acoustic-scale", type=float, default=0.5)
    parser.add_argument("--beam", type=float, default=15.0)
    parser.add_argument("--max-active", type=int, default=10000)
    parser.add_argument("--min-active", type=int, default=200)
    parser.add_argument("--lattice-beam", type=float, default=8.0)
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 32, 128, 512])
    parser.add_argument("--repeat", type=int, default=1, help="copies of the set per lane count (more work)")
    parser.add_argument("--baseline-utterances", type=int, default=0,
                        help="CPU-backend baseline on the first N utterances only (0: all)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    from wfst.gpu import import_cupy

    cupy = import_cupy()
    args.workload = workload = Workload.load(args.data)
    words = wfst.SymbolTable.read(args.graph / "words.txt")
    fst = wfst.read_fst(args.graph / "TLG.fst")
    config = wfst.DecoderConfig(beam=args.beam, max_active=args.max_active, min_active=args.min_active,
                                lattice_beam=args.lattice_beam, acoustic_scale=args.acoustic_scale)
    rows = [np.ascontiguousarray(workload.utterance(i), dtype=np.float32) for i in range(len(workload))]
    audio = workload.audio_seconds * args.repeat
    baseline_name, baseline_seconds, cpu_results = _baseline(fst, rows, config, args)
    baseline_rtfx = workload.audio_seconds / baseline_seconds
    runs, hyps = [], None
    for lanes in args.lanes:
        try:
            decoder = wfst.Decoder(fst, config, device="cuda", lanes=lanes)
        except wfst.MemoryBudgetError as error:
            runs.append({"lanes": lanes, "error": str(error)})
            continue
        decoder.decode(rows[:1])  # compiles the kernels
        batch = rows * args.repeat
        cupy.cuda.Device().synchronize()
        start = time.perf_counter()
        results = decoder.decode(batch)
        seconds = time.perf_counter() - start
        hyps = results[: len(rows)]
        run = {"lanes": lanes, "decode_seconds": seconds, "rtfx": audio / seconds,
               "speedup_vs_baseline": (audio / seconds) / baseline_rtfx, "stats": dict(decoder._cuda.stats),
               "memory": decoder._cuda.memory.as_dict()}
        if cpu_results is not None:
            run["identical_to_cpu"] = sum(a.words == b.words and a.cost == b.cost
                                          for a, b in zip(results, cpu_results))
        runs.append(run)
        print(f"lanes {lanes:5d}: {seconds:8.3f} s  RTFx {audio / seconds:10.1f}  "
              f"x{(audio / seconds) / baseline_rtfx:8.1f} over {baseline_name}", flush=True)
        del decoder
    name = f"gpu_decoder_{args.graph.name}_{args.data.stem}"
    out = args.out or RESULTS_DIR / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text_path = out.with_suffix(".text")
    if hyps is not None:
        text_path.write_text("".join(f"{u} {' '.join(words[w] for w in r.words)}\n"
                                     for u, r in zip(workload.utt_ids, hyps)), encoding="utf-8")
    props = cupy.cuda.runtime.getDeviceProperties(0)
    best = max((r for r in runs if "rtfx" in r), key=lambda r: r["rtfx"], default=None)
    record = {
        "command": "python -m bench.gpu_decoder " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
        "date": datetime.date.today().isoformat(), "commit": _commit(), "versions": _versions(cupy),
        "graph": {"name": args.graph.name, "states": fst.num_states, "arcs": fst.num_arcs},
        "workload": {"set": args.data.stem, "seed": getattr(workload, "seed", None), "utterances": len(workload),
                     "frames": int(sum(r.shape[0] for r in rows)), "audio_seconds": workload.audio_seconds,
                     "repeat": args.repeat},
        "config": {"beam": args.beam, "max_active": args.max_active, "min_active": args.min_active,
                   "lattice_beam": args.lattice_beam, "acoustic_scale": args.acoustic_scale, "lanes": args.lanes},
        "backend": "cuda", "baseline": baseline_name, "baseline_rtfx": baseline_rtfx, "runs": runs,
        "decode_seconds": best["decode_seconds"] if best else None, "rtfx": best["rtfx"] if best else None,
        "speedup": best["speedup_vs_baseline"] if best else None, "hypotheses": text_path.name,
    }
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
