"""How unevenly a step's work falls on the CUDA backend's lanes, measured
without a GPU: a kernel that gives every lane the same blocks waits for the
busiest lane, so its time follows the largest lane's share, not the mean's.

    python -m bench.lane_imbalance --graph DIR/graphs/full --data DIR/data/full/lm-medium.npz \\
        --acoustic-scale 0.5 --lanes 128 512 1024

Our CPU backend searches ``--utterances`` utterances of the set and keeps, per
frame, the tokens, the links and the emitting arcs the next frame expands (the
out-degrees of the tokens within the exact cutoff, as ``frame_prologue``
computes it). Then, ``--draws`` times per lane count, each lane takes a frame
of a random utterance at random (the lanes of a batch are at unrelated points
of unrelated utterances) and the step's largest lane is compared with its mean:
the ratio is how much longer than balanced work a grid of blocks per lane
takes, where that lane's blocks are the last to finish. Writes
``bench/results/lane_imbalance_<graph>_<set>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import wfst
from bench.inputs import add_input_arguments, load_inputs
from bench.lattice_host import raw_frames
from bench.workload.kaldi_baseline import RESULTS_DIR, machine_info
from wfst.cpu_search import BEAM_DELTA
from wfst.cuda_layout import gpu_cutoff
from wfst.decoding_graph import DecodingGraph

MEASURES = ("emitting_arcs", "tokens", "links")


def frame_work(graph: DecodingGraph, config: wfst.DecoderConfig, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame of one utterance (int64 arrays, one entry per frame searched):
    the emitting arcs expanded from the frame before, and the new frame's tokens
    and links."""
    e_offsets = np.asarray(graph.fst.e_offsets, np.int64)
    frames = raw_frames(graph, config, scores)
    arcs = []
    for states, costs, *_ in frames[:-1]:
        cutoff, _ = gpu_cutoff(costs, config.beam, config.max_active, config.min_active, BEAM_DELTA)
        expanded = states[costs <= cutoff]
        arcs.append(int(np.sum(e_offsets[expanded + 1] - e_offsets[expanded])))
    return {"emitting_arcs": np.array(arcs, np.int64),
            "tokens": np.array([f[0].size for f in frames[1:]], np.int64),
            "links": np.array([f[3].size for f in frames[1:]], np.int64)}


def imbalance(work: list[np.ndarray], lanes: int, draws: int, rng: np.random.Generator) -> dict:
    """Mean over ``draws`` steps of ``lanes`` lanes, each at a random frame of a
    random utterance (``work``: per utterance, per frame), of the step's largest
    lane over its mean lane."""
    ratios = []
    for _ in range(draws):
        picks = rng.integers(0, len(work), lanes)
        step = np.array([work[u][rng.integers(0, work[u].size)] for u in picks], np.float64)
        ratios.append(step.max() / max(step.mean(), 1e-9))
    return {"lanes": lanes, "max_over_mean": float(np.mean(ratios)), "spread": float(np.std(ratios))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lane_imbalance", description=__doc__.split("\n\n")[0])
    add_input_arguments(parser)
    parser.add_argument("--beam", type=float, default=15.0)
    parser.add_argument("--max-active", type=int, default=10000)
    parser.add_argument("--lattice-beam", type=float, default=8.0)
    parser.add_argument("--lanes", type=int, nargs="+", default=[128, 512, 1024])
    parser.add_argument("--utterances", type=int, default=12, help="utterances searched (0: all)")
    parser.add_argument("--draws", type=int, default=200, help="random steps per lane count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON path (default under bench/results/)")
    args = parser.parse_args(argv)
    machine = machine_info(None)  # (before the runs: its load average is other work's)

    inputs = load_inputs(args)
    workload = inputs.workload
    config = wfst.DecoderConfig(beam=args.beam, max_active=args.max_active, lattice_beam=args.lattice_beam,
                                acoustic_scale=inputs.acoustic_scale)
    graph = DecodingGraph(inputs.fst)
    count = min(args.utterances or len(workload), len(workload))
    per_utterance = [frame_work(graph, config, np.ascontiguousarray(workload.utterance(i), np.float32))
                     for i in range(count)]
    rng = np.random.default_rng(args.seed)
    measures = {}
    for measure in MEASURES:
        work = [u[measure] for u in per_utterance if u[measure].size]
        every = np.concatenate(work)
        measures[measure] = {
            "per_lane_frame": {"mean": float(every.mean()), "median": float(np.median(every)),
                               "p99": float(np.percentile(every, 99)), "max": int(every.max())},
            "steps": [imbalance(work, lanes, args.draws, rng) for lanes in args.lanes]}
    record = {
        "command": "python -m bench.lane_imbalance " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine,
        "graph": {"name": inputs.name, "states": inputs.fst.num_states, "arcs": inputs.fst.num_arcs},
        "data": {"utterances": count, "frames": int(sum(u["tokens"].size for u in per_utterance))},
        "config": {"beam": args.beam, "max_active": args.max_active, "min_active": config.min_active,
                   "lattice_beam": args.lattice_beam,
                   "acoustic_scale": inputs.acoustic_scale},
        "draws": args.draws, "seed": args.seed, "measures": measures}
    out = args.out or RESULTS_DIR / f"lane_imbalance_{inputs.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"{inputs.name}: {count} utterances, {record['data']['frames']} frames; per lane-frame mean, p99, max; "
          "then the step's largest lane over its mean lane per lane count")
    for measure, m in measures.items():
        per = m["per_lane_frame"]
        steps = ", ".join(f"{s['lanes']} lanes {s['max_over_mean']:.1f}x" for s in m["steps"])
        print(f"  {measure:13s} {per['mean']:9.0f} {per['p99']:9.0f} {per['max']:9d}   {steps}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
