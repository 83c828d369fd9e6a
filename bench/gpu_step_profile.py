"""Where the CUDA backend's step loop spends its time, on a machine with a GPU,
for each lane count: the calling thread's wall time in each part of a step
(timers around the step loop's methods), the device's time in each launch
sequence and in each kernel (CUDA events on the compute stream, read after the
decode); then (``as_run``) a second decode as the decoder runs, replaying CUDA
graphs, with only the host timers: each part's wall time and the calling
thread's CPU time in it (a part whose wall time is well above its CPU time
waited: for the device, the workers or the GIL); and a profile (cProfile, a
third decode: its overhead stays out of the timings; on Python 3.12 it sees
every thread). The first decode launches kernel by kernel (an event around
each launch; a CUDA graph would hide them), which slows the host's parts.

    python -m bench.gpu_step_profile --graph DIR/graphs/full --data DIR/data/full/lm-medium.npz \\
        --acoustic-scale 0.5 --lanes 512 --out profile.json

A step is one lane group's (``--lane-groups``: groups of lanes stepped in turn,
each on its own streams). When the device's milliseconds per step come near the step's own, the GPU
bounds the step and the kernel table says where; the host's parts then include
their waits for the device (reading the counters, the copy of the packed
windows)."""

from __future__ import annotations

import argparse
import cProfile
import datetime
import functools
import gc
import io
import json
import pstats
import sys
import time
from pathlib import Path

import numpy as np

import wfst
from bench.inputs import add_input_arguments, load_inputs
from bench.launch_tuning import add_launch_arguments, set_blocks_per_sm, set_lane_groups
from bench.provenance import device_name, git_commit, gpu_versions, source_digest

TIMED_METHODS = ("_assign", "_set_lane_params", "_stage_params", "_search_frame", "_append", "_counters",
                 "_retry_overflows", "_finish_step_on_device")
"""The step loop's parts (methods of wfst.cuda_lane_group.LaneGroup), timed on the calling thread
(nested calls count in both: _stage_params inside _finish_step_on_device, for one)."""
DEVICE_PARTS = ("_search_frame", "_finish_step_on_device")
"""Parts whose launches are bracketed by events on the compute stream (the second
holds window_store, save_frontier, reset_lanes and the wait for the last flush's
window work; that work runs on its own stream and shows kernel by kernel, its
times including what it shares of the GPU with the search beside it)."""


def _instrument(cuda_lane_group, host: dict, cupy, device: dict | None = None, kernels: dict | None = None,
                cpu: dict | None = None):
    """Wrap the timed methods (and close_step): their wall time into
    ``host``, their thread's CPU time into ``cpu``, events on the compute
    stream around the device parts into ``device``, and events around every
    kernel launch (on the current stream, by kernel name) into ``kernels`` (each
    where given); returns a function that undoes it."""
    from wfst import cuda_kernels_launch

    cls, saved = cuda_lane_group.LaneGroup, {}
    kernel = cuda_kernels_launch._k

    def kernel_timed(name, file):
        launch = kernel(name, file)

        def timed_launch(*args, **kwargs):
            stream = cupy.cuda.get_current_stream()
            before = stream.record()
            launch(*args, **kwargs)
            kernels.setdefault(name, []).append((before, stream.record()))
        return timed_launch

    if kernels is not None:
        cuda_kernels_launch._k = kernel_timed

    def timed(name, method):
        on_device = device is not None and name in DEVICE_PARTS

        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            if on_device:
                before = self.compute.record()
            start, start_cpu = time.perf_counter(), time.thread_time()
            try:
                return method(self, *args, **kwargs)
            finally:
                host[name] = host.get(name, 0.0) + time.perf_counter() - start
                if cpu is not None:
                    cpu[name] = cpu.get(name, 0.0) + time.thread_time() - start_cpu
                if on_device:
                    device.setdefault(name, []).append((before, self.compute.record()))
        return wrapper

    for name in TIMED_METHODS:
        saved[name] = getattr(cls, name)
        setattr(cls, name, timed(name, saved[name]))
    close = cuda_lane_group.close_step

    def close_timed(*args):
        start, start_cpu = time.perf_counter(), time.thread_time()
        try:
            return close(*args)
        finally:
            host["close_step"] = host.get("close_step", 0.0) + time.perf_counter() - start
            if cpu is not None:
                cpu["close_step"] = cpu.get("close_step", 0.0) + time.thread_time() - start_cpu

    cuda_lane_group.close_step = close_timed

    def undo():
        for name, method in saved.items():
            setattr(cls, name, method)
        cuda_lane_group.close_step = close
        cuda_kernels_launch._k = kernel
    return undo


def _timed_decode(decoder, batch: list[np.ndarray], cupy, graphs: bool, **timers) -> tuple[float, int]:
    """One decode of ``batch`` with the timers of :func:`_instrument` and CUDA
    graphs on or off; its seconds and steps."""
    from wfst import cuda_lane_group

    cuda = decoder._cuda
    undo = _instrument(cuda_lane_group, cupy=cupy, **timers)
    saved, cuda.launch_graphs.enabled = cuda.launch_graphs.enabled, graphs
    try:
        cupy.cuda.Device().synchronize()
        steps_before, start = cuda.stats["steps"], time.perf_counter()
        decoder.decode(batch)
        return time.perf_counter() - start, cuda.stats["steps"] - steps_before
    finally:
        undo()
        cuda.launch_graphs.enabled = saved


def profile(decoder, batch: list[np.ndarray], cupy, top: int = 30) -> dict:
    """Time one decode of ``batch`` part by part and kernel by kernel, a second
    as the decoder runs (CUDA graphs, the parts timed on the host only: wall
    and CPU time), then profile a third."""
    host, device, kernels = {}, {}, {}
    seconds, steps = _timed_decode(decoder, batch, cupy, False, host=host, device=device, kernels=kernels)
    host_graphs, cpu_graphs = {}, {}
    seconds_graphs, steps_graphs = _timed_decode(decoder, batch, cupy, decoder._cuda.launch_graphs.enabled,
                                                 host=host_graphs, cpu=cpu_graphs)
    cupy.cuda.Device().synchronize()

    def ms_per_step(events: dict) -> dict:
        totals = {name: sum(cupy.cuda.get_elapsed_time(a, b) for a, b in pairs) / steps
                  for name, pairs in events.items()}
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    def host_ms(seconds_of: dict, per: int) -> dict:
        return {name: 1e3 * s / per for name, s in sorted(seconds_of.items(), key=lambda kv: -kv[1])}

    profiler = cProfile.Profile()
    profiler.enable()
    decoder.decode(batch)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return {"steps": steps, "decode_seconds": seconds, "ms_per_step": 1e3 * seconds / steps,
            "host_ms_per_step": host_ms(host, steps),
            "device_ms_per_step": ms_per_step(device), "kernel_ms_per_step": ms_per_step(kernels),
            "kernel_launches_per_step": {name: len(pairs) / steps for name, pairs in kernels.items()},
            "as_run": {"steps": steps_graphs, "decode_seconds": seconds_graphs,
                       "ms_per_step": 1e3 * seconds_graphs / steps_graphs,
                       "host_ms_per_step": host_ms(host_graphs, steps_graphs),
                       "host_cpu_ms_per_step": host_ms(cpu_graphs, steps_graphs)},
            "profile_by_own_time": text.getvalue()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_step_profile", description=__doc__.split("\n\n")[0])
    add_input_arguments(parser)
    parser.add_argument("--beam", type=float, default=15.0)
    parser.add_argument("--max-active", type=int, default=10000)
    parser.add_argument("--lattice-beam", type=float, default=8.0)
    parser.add_argument("--lanes", type=int, nargs="+", default=[512])
    add_launch_arguments(parser, graphs=False)
    parser.add_argument("--per-lane", type=int, default=2, help="utterances per lane (the set repeated as needed)")
    parser.add_argument("--utterances", type=int, default=0, help="the first N utterances of the set only (0: all)")
    parser.add_argument("--out", type=Path, help="JSON record (default: print only)")
    args = parser.parse_args(argv)

    from wfst.gpu import import_cupy

    cupy = import_cupy()
    inputs = load_inputs(args)
    workload = inputs.workload
    config = wfst.DecoderConfig(beam=args.beam, max_active=args.max_active, lattice_beam=args.lattice_beam,
                                acoustic_scale=inputs.acoustic_scale)
    count = min(args.utterances or len(workload), len(workload))
    rows = [np.ascontiguousarray(workload.utterance(i), dtype=np.float32) for i in range(count)]
    record = {"command": "python -m bench.gpu_step_profile " + " ".join(sys.argv[1:] if argv is None else argv),
              "device": device_name(), "date": datetime.date.today().isoformat(), "commit": git_commit(),
              "source_digest": source_digest(), "versions": gpu_versions(cupy),
              "graph": {"name": args.graph.name if args.graph else "example", "states": inputs.fst.num_states,
                        "arcs": inputs.fst.num_arcs},
              "set": inputs.name, "utterances": count,
              "config": {"beam": args.beam, "max_active": args.max_active, "lattice_beam": args.lattice_beam,
                         "acoustic_scale": inputs.acoustic_scale},
              "runs": []}
    for depth, groups, lanes in [(d, k, n) for d in args.blocks_per_sm for k in args.lane_groups for n in args.lanes]:
        decoder = wfst.Decoder(inputs.fst, config, device="cuda", lanes=lanes)
        grid = set_blocks_per_sm(decoder, depth)
        groups = set_lane_groups(decoder, groups)
        decoder.decode(rows[:1])  # compiles
        batch = rows * max(1, -(-args.per_lane * lanes // len(rows)))
        run = {"lanes": lanes, "blocks_per_sm": depth, "blocks_per_lane": grid, "lane_groups": groups,
               "threads": decoder.threads, "utterances": len(batch), **profile(decoder, batch, cupy)}
        record["runs"].append(run)
        print(f"lanes {lanes} ({run['blocks_per_lane']} blocks each, {groups} lane groups), {decoder.threads} "
              f"threads: {run['ms_per_step']:.3f} ms per step (of one group) over {run['steps']} steps")
        print("  host ms per step: " + ", ".join(f"{k} {v:.3f}" for k, v in run["host_ms_per_step"].items()))
        print("  device ms per step: " + ", ".join(f"{k} {v:.3f}" for k, v in run["device_ms_per_step"].items()))
        print("  kernel ms per step: " + ", ".join(f"{k} {v:.3f}" for k, v in run["kernel_ms_per_step"].items()))
        as_run = run["as_run"]
        print(f"  as run (CUDA graphs, no events): {as_run['ms_per_step']:.3f} ms per step; host ms per step "
              "(its CPU time): " + ", ".join(f"{k} {v:.3f} ({as_run['host_cpu_ms_per_step'][k]:.3f})"
                                             for k, v in as_run["host_ms_per_step"].items()))
        print(run["profile_by_own_time"])
        del decoder
        gc.collect()  # its device memory free for the next lane count's, should a cycle still hold it
        if args.out:  # after every run: a run cut short keeps the runs it finished
            args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
