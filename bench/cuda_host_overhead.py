"""Host time of the CUDA backend per lane-frame: the Python and numba work
around the kernels (lane bookkeeping, parameters, counters, lattice appends,
Results), which must stay far below the GPU's time per frame for hundreds of
lanes to pay off. Runs without a GPU: the kernels run on the CPU emulator of
the tests (tests/cuda_emulator, needs g++ on x86-64) and their time is
subtracted, so only the host side is measured.

    python -m bench.cuda_host_overhead --lanes 16 64 256

The embedded example at ``--beam`` (default 1: few tokens, so the emulated
kernels are quick, but tiny lattices: per-utterance work is then mostly
Python), ``--frames`` rows of each utterance, enough copies of the set to keep
every lane busy for ``--rounds`` utterances each. Reports the host's wall time
per lane-frame and per step, and the calling thread's CPU time per step (the
step loop's own work, steadier than wall time on a shared machine, where the
lattice workers take cores; it includes the emulator's stand-ins for CuPy's
calls and copies, which cost differently from CuPy's). Prints and writes
``bench/results/cuda_host_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "cuda_host_overhead.json"


class _Patch:
    def setitem(self, mapping, key, value):
        mapping[key] = value

    def setattr(self, target, name, value):
        setattr(target, name, value)


def measure(lanes: int, frames: int, rounds: int, beam: float = 1.0, lattice_beam: float = 1.0,
            threads: int | None = None, lane_groups: int = 1) -> dict:
    """One decode of ``lanes * rounds`` utterance prefixes on ``lanes`` lanes,
    stepped in ``lane_groups`` groups."""
    import wfst
    from tests.cuda_emulator import build
    from wfst.example import load_example

    kernel_seconds = [0.0, 0.0]  # wall, and CPU time of the calling thread (which runs the emulated kernels)
    launch = build.EmulatedKernel.__call__

    def timed(self, *args, **kwargs):
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return launch(self, *args, **kwargs)
        finally:
            kernel_seconds[0] += time.perf_counter() - start
            kernel_seconds[1] += time.thread_time() - cpu

    build.EmulatedKernel.__call__ = timed
    try:
        ex = load_example()
        config = wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale, beam=beam, max_active=2000, min_active=0,
                                    lattice_beam=lattice_beam)
        decoder = wfst.Decoder(ex.fst, config, device="cuda", lanes=lanes, threads=threads)
        decoder._cuda.lane_groups = lane_groups
        batch = [ex.scores[i % len(ex.scores)][:frames] for i in range(lanes * rounds)]
        decoder.decode(batch[:2])  # compiles
        kernel_seconds[:] = [0.0, 0.0]
        before = dict(decoder._cuda.stats)
        start, cpu = time.perf_counter(), time.thread_time()
        decoder.decode(batch)
        wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    finally:
        build.EmulatedKernel.__call__ = launch
    stats = {k: v - before[k] for k, v in decoder._cuda.stats.items()}  # the timed decode's alone
    host = wall - kernel_seconds[0]
    calling = cpu - kernel_seconds[1]
    return {"lanes": lanes, "lane_groups": lane_groups, "threads": decoder.threads, "utterances": len(batch),
            "lane_frames": stats["frames"], "steps": stats["steps"],
            "wall_seconds": wall, "emulated_kernel_seconds": kernel_seconds[0], "host_seconds": host,
            "host_us_per_lane_frame": host / stats["frames"] * 1e6, "host_ms_per_step": host / stats["steps"] * 1e3,
            "calling_thread_cpu_us_per_step": calling / stats["steps"] * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cuda_host_overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--frames", type=int, default=40, help="rows of each utterance (default 40)")
    parser.add_argument("--rounds", type=int, default=3, help="utterances per lane (default 3)")
    parser.add_argument("--beam", type=float, default=1.0, help="search beam (default 1: quick emulated kernels)")
    parser.add_argument("--lattice-beam", type=float, default=1.0)
    parser.add_argument("--threads", type=int, help="host lattice workers (default: the decoder's)")
    parser.add_argument("--lane-groups", type=int, nargs="+", default=[1],
                        help="lane groups to sweep with every lane count (a step is one group's; default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from tests.cuda_emulator import fake_cupy

    fake_cupy.install(_Patch())
    fake_cupy.FREE_BYTES, fake_cupy.TOTAL_BYTES = 8 << 30, 16 << 30  # a device that takes the lanes asked for
    runs = [measure(lanes, args.frames, args.rounds, args.beam, args.lattice_beam, args.threads, groups)
            for groups in args.lane_groups for lanes in args.lanes]
    for r in runs:
        print(f"lanes {r['lanes']:4d} in {r['lane_groups']} group(s), {r['threads']} lattice worker(s): host "
              f"{r['host_us_per_lane_frame']:6.1f} us per lane-frame, "
              f"{r['host_ms_per_step']:6.2f} ms per step ({r['steps']} steps, {r['lane_frames']} lane-frames); "
              f"the calling thread's CPU time {r['calling_thread_cpu_us_per_step']:6.0f} us per step")
    record = {"command": "python -m bench.cuda_host_overhead " + " ".join(sys.argv[1:] if argv is None else argv),
              "note": "host side only: the kernels ran on the CPU emulator and their time is subtracted",
              "frames": args.frames, "rounds": args.rounds, "beam": args.beam, "lattice_beam": args.lattice_beam,
              "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
