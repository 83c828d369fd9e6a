"""Lattice cost and density: what lattice assembly and pruning cost per frame,
and how many arcs per frame the lattices keep, at several lattice beams.

    python -m bench.lattice_cost                          # the embedded example
    python -m bench.lattice_cost --graph DIR/graphs/small --data DIR/data/small/lm-medium.npz \\
        --acoustic-scale 0.5 --lattice-beams 4 8 10

For each lattice beam, every utterance is decoded by the CPU backend, one
thread, and timed in parts (per frame, summed over the set):

* search: the frames' token passing, which also records a lattice link for
  every arc followed and prunes the links every ``prune_interval`` frames;
* finish: ``CpuSearch.finish()``, the final pruning of the links with final
  costs, the assembly of the :class:`lattice.Lattice` with its exact
  forward-backward pruning, and the best path;
* assembly + exact pruning alone: ``Lattice.from_segments`` again on the same
  segments (part of finish);
* determinize: ``Lattice.determinize()`` to the word lattice (CompactLattice).

Density: states and arcs per frame of the pruned state-level lattice, and arcs
per frame of the determinized one (Kaldi's "lattice density" counts those).
The fastest of ``--repeat`` runs counts for each time. Results:
``bench/results/lattice_cost_<graph>_<set>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import wfst
from bench.inputs import add_input_arguments, load_inputs
from bench.workload.kaldi_baseline import RESULTS_DIR, machine_info
from lattice import Lattice
from wfst.cpu_backend import CpuSearch
from wfst.decoding_graph import DecodingGraph

PARTS = ("search", "finish", "assembly_and_pruning", "determinize")


def measure(graph: DecodingGraph, rows: list[np.ndarray], config: wfst.DecoderConfig) -> dict:
    """Seconds of each part summed over ``rows``, and the lattices' sizes."""
    seconds = dict.fromkeys(PARTS, 0.0)
    states = arcs = word_arcs = 0
    for scores in rows:
        search = CpuSearch(graph, config)
        t0 = time.perf_counter()
        search.accept(scores)
        t1 = time.perf_counter()
        result = search.finish()
        t2 = time.perf_counter()
        Lattice.from_segments(search.segments, graph.fst, lattice_beam=config.lattice_beam,
                              use_final_probs=config.use_final_probs)
        t3 = time.perf_counter()
        compact = result.lattice.determinize()
        t4 = time.perf_counter()
        for part, spent in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            seconds[part] += spent
        states += result.lattice.num_states
        arcs += result.lattice.num_arcs
        word_arcs += compact.num_arcs
    return {"seconds": seconds, "states": states, "arcs": arcs, "word_arcs": word_arcs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lattice_cost", description=__doc__.split("\n\n")[0])
    add_input_arguments(parser)
    parser.add_argument("--beam", type=float, default=15.0)
    parser.add_argument("--max-active", type=int, default=10000)
    parser.add_argument("--lattice-beams", type=float, nargs="+", default=[4.0, 8.0, 10.0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per lattice beam; the fastest counts")
    parser.add_argument("--out", type=Path, help="JSON path (default under bench/results/)")
    args = parser.parse_args(argv)
    machine = machine_info(None)  # (before the runs: its load average is other work's)

    inputs = load_inputs(args)
    fst, workload, scale, name = inputs.fst, inputs.workload, inputs.acoustic_scale, inputs.name
    graph = DecodingGraph(fst)
    rows = [workload.utterance(i) for i in range(len(workload))]
    frames = workload.num_frames
    measure(graph, rows[:1], wfst.DecoderConfig(acoustic_scale=scale))  # loads the compiled kernels
    beams = []
    for lattice_beam in args.lattice_beams:
        config = wfst.DecoderConfig(beam=args.beam, max_active=args.max_active, acoustic_scale=scale,
                                    lattice_beam=lattice_beam)
        runs = [measure(graph, rows, config) for _ in range(args.repeat)]
        best = {part: min(run["seconds"][part] for run in runs) for part in PARTS}
        size = runs[0]
        beams.append({
            "lattice_beam": lattice_beam,
            "us_per_frame": {part: best[part] / frames * 1e6 for part in PARTS},
            "finish_share_of_decode": best["finish"] / (best["search"] + best["finish"]),
            "states_per_frame": size["states"] / frames, "arcs_per_frame": size["arcs"] / frames,
            "word_lattice_arcs_per_frame": size["word_arcs"] / frames})
    record = {
        "command": "python -m bench.lattice_cost " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine,
        "graph": {"name": name, "states": fst.num_states, "arcs": fst.num_arcs},
        "data": {"utterances": len(workload), "frames": frames, "audio_seconds": workload.audio_seconds},
        "config": {"beam": args.beam, "max_active": args.max_active, "min_active": wfst.DecoderConfig().min_active,
                   "acoustic_scale": scale,
                   "prune_interval": wfst.DecoderConfig().prune_interval},
        "repeat": args.repeat, "lattice_beams": beams}
    out = args.out or RESULTS_DIR / f"lattice_cost_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"{name}: {len(workload)} utterances, {frames} frames, acoustic scale {scale:g}, beam {args.beam:g}")
    print("lattice beam | search us/frame | finish us/frame | assembly+pruning us/frame | determinize us/frame "
          "| states/frame | arcs/frame | word-lattice arcs/frame")
    for b in beams:
        us = b["us_per_frame"]
        print(f"{b['lattice_beam']:12g} | {us['search']:15.1f} | {us['finish']:15.1f} | "
              f"{us['assembly_and_pruning']:25.1f} | {us['determinize']:20.1f} | {b['states_per_frame']:12.1f} | "
              f"{b['arcs_per_frame']:10.1f} | {b['word_lattice_arcs_per_frame']:.1f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
