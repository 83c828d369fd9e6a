"""Streaming latency: N concurrent simulated real-time streams, and the most
streams that stay real time with p99 latency under a bound.

    python -m bench.stream_latency                       # the embedded example's graph and utterances
    python -m bench.stream_latency --graph DIR/graphs/small --data DIR/data/small/lm-medium.npz \\
        --acoustic-scale 0.5 --threads 2
    python -m bench.stream_latency --device cuda --lanes 256 ...   # on a GPU

Each simulated stream plays utterances of the workload back to back (a new
``wfst.Stream`` per utterance, as after an endpoint) for ``--seconds`` of audio.
Its audio arrives in chunks of 200-400 ms (uniformly random, ``--chunk-ms``) at
real-time pace: a chunk is available when its last frame has been "spoken".
Streams start staggered, uniformly within the first 400 ms. One server loop
takes every chunk that has arrived (a stream's backlog concatenated), steps all
those streams with one ``Decoder.advance`` call, and records each chunk's
latency: from its arrival to the partial result that includes it. After an
utterance's last chunk, ``finish()`` gives the final result (its latency is
recorded apart, and its words are checked against offline ``decode``).

A trial at N streams is real time when the p99 partial latency is at most
``--p99-ms`` (100 ms). The search doubles N from 1 until a trial fails, then
bisects. On the GPU (``--device cuda``) each ``advance`` is one run of the CUDA
backend over ``--lanes`` lanes, one launch sequence per frame for all the
streams it steps; channels are allocated for the most streams tried. Results:
``bench/results/stream_latency_<graph>_<set>_t<threads>.json`` (CPU) or
``..._cuda.json`` (GPU).
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import wfst
from bench.inputs import add_input_arguments, load_inputs
from bench.launch_tuning import set_lane_groups
from bench.workload.kaldi_baseline import RESULTS_DIR, machine_info
from wfst.score_archive import Workload


@dataclass(frozen=True)
class Chunk:
    """Rows ``start:end`` of utterance ``utterance``, available at ``arrival``
    seconds after the trial starts; ``last``: the utterance's final chunk."""

    arrival: float
    utterance: int
    start: int
    end: int
    last: bool


def plan_stream(workload: Workload, rng: np.random.Generator, seconds: float, chunk_ms: tuple[float, float],
                offset: float) -> list[Chunk]:
    """One stream's chunks: random utterances back to back from ``offset``
    seconds until ``seconds`` of audio, each cut into chunks of
    ``chunk_ms`` milliseconds (uniform, at least one frame)."""
    shift = workload.frame_shift
    chunks, clock = [], offset
    while clock - offset < seconds:
        utterance = int(rng.integers(len(workload)))
        frames = int(workload.offsets[utterance + 1] - workload.offsets[utterance])
        t = 0
        while t < frames:
            size = max(1, round(rng.uniform(*chunk_ms) / 1000 / shift))
            end = min(frames, t + size)
            chunks.append(Chunk(clock + end * shift, utterance, t, end, end == frames))
            t = end
        clock += frames * shift
    return chunks


def run_trial(decoder: wfst.Decoder, workload: Workload, offline_words: list[tuple[int, ...]], streams: int,
              seed: int, seconds: float, chunk_ms: tuple[float, float]) -> dict:
    """Serve ``streams`` simulated streams in real time; latencies in seconds."""
    rng = np.random.default_rng(seed)
    plans = [plan_stream(workload, rng, seconds, chunk_ms, rng.uniform(0, chunk_ms[1] / 1000))
             for _ in range(streams)]
    rows = [workload.utterance(i) for i in range(len(workload))]
    position = [0] * streams  # next chunk of each stream
    open_streams: list[wfst.Stream | None] = [None] * streams
    arrivals = [(plan[0].arrival, k) for k, plan in enumerate(plans)]
    heapq.heapify(arrivals)
    partial_latency, final_latency, batch_sizes = [], [], []
    mismatches = finished = 0
    start = time.perf_counter()
    while arrivals:
        now = time.perf_counter() - start
        if arrivals[0][0] > now:
            time.sleep(arrivals[0][0] - now)
            continue
        pairs, taken = [], []
        while arrivals and arrivals[0][0] <= now:
            _, k = heapq.heappop(arrivals)
            plan, first = plans[k], position[k]
            last = first  # the stream's backlog, up to its utterance's end
            while last + 1 < len(plan) and not plan[last].last and plan[last + 1].arrival <= now:
                last += 1
            chunk = plan[first]
            if open_streams[k] is None:
                open_streams[k] = decoder.stream()
            pairs.append((open_streams[k], rows[chunk.utterance][chunk.start:plan[last].end]))
            taken.append((k, first, last))
        decoder.advance(pairs)
        done = time.perf_counter() - start
        batch_sizes.append(len(pairs))
        for k, first, last in taken:
            plan = plans[k]
            partial_latency.extend(done - plan[i].arrival for i in range(first, last + 1))
            if plan[last].last:
                words = open_streams[k].finish().words
                final_latency.append(time.perf_counter() - start - plan[last].arrival)
                mismatches += words != offline_words[plan[last].utterance]
                finished += 1
                open_streams[k] = None
            position[k] = last + 1
            if last + 1 < len(plan):
                heapq.heappush(arrivals, (plan[last + 1].arrival, k))
    wall = time.perf_counter() - start
    audio = sum((c.end - c.start) * workload.frame_shift for plan in plans for c in plan)
    return {"streams": streams, "seed": seed, "wall_seconds": wall, "audio_seconds": audio,
            "chunks": len(partial_latency), "utterances_finished": finished,
            "finals_differing_from_offline": mismatches,
            "mean_streams_per_advance": float(np.mean(batch_sizes)),
            "partial_latency_ms": _percentiles(partial_latency), "final_latency_ms": _percentiles(final_latency)}


def _percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {name: float(np.percentile(ms, q)) for name, q in (("p50", 50), ("p90", 90), ("p99", 99))} | \
        {"max": float(ms.max())}


def most_streams(trial, bound_ms: float, limit: int, start: int = 1) -> tuple[int, list[dict]]:
    """The largest N (up to ``limit``) whose ``trial(N)`` keeps p99 partial
    latency within ``bound_ms``: doubling from ``start`` (a count expected to
    pass: fewer trials), then bisection. Returns it (0 when even one stream is
    too slow) and every trial run."""
    runs = []

    def passes(n):
        record = trial(n)
        record["real_time"] = record["partial_latency_ms"]["p99"] <= bound_ms
        runs.append(record)
        print(f"  {n:5d} streams: p50 {record['partial_latency_ms']['p50']:7.1f} ms  "
              f"p99 {record['partial_latency_ms']['p99']:7.1f} ms  {'ok' if record['real_time'] else 'too slow'}",
              file=sys.stderr)
        return record["real_time"]

    good, bad = 0, None
    n = max(1, min(start, limit))
    while n <= limit and passes(n):
        good, n = n, n * 2
    bad = n if n <= limit else None
    while bad is not None and bad - good > max(1, good // 8):
        middle = (good + bad) // 2
        if passes(middle):
            good = middle
        else:
            bad = middle
    return good, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_latency", description=__doc__.split("\n\n")[0])
    add_input_arguments(parser)
    parser.add_argument("--beam", type=float, default=15.0)
    parser.add_argument("--max-active", type=int, default=10000)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads stepping streams (default 1; the CUDA decoder's lattice workers are its own, "
                             "the cores available)")
    parser.add_argument("--lanes", type=int, default=None, help="CUDA lanes (default: the decoder's)")
    parser.add_argument("--lane-groups", type=int, default=None,
                        help="CUDA lane groups stepped in turn on their own streams (default: the decoder's)")
    parser.add_argument("--chunk-ms", type=float, nargs=2, default=(200.0, 400.0), metavar=("MIN", "MAX"))
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per stream in each trial (default 10)")
    parser.add_argument("--p99-ms", type=float, default=100.0, help="latency bound for real time (default 100)")
    parser.add_argument("--max-streams", type=int, default=1024, help="stop the search here (default 1024)")
    parser.add_argument("--start-streams", type=int, default=1,
                        help="the search's first count, doubled from there (default 1)")
    parser.add_argument("--streams", type=int, nargs="+", help="run these stream counts only, no search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON path (default under bench/results/)")
    args = parser.parse_args(argv)
    machine = machine_info(None)  # (before the runs: its load average is other work's)

    inputs = load_inputs(args)
    fst, workload, scale, name = inputs.fst, inputs.workload, inputs.acoustic_scale, inputs.name
    config = wfst.DecoderConfig(beam=args.beam, max_active=args.max_active, acoustic_scale=scale)
    limit = max(args.streams or [args.max_streams])
    if args.device == "cuda":
        decoder = wfst.Decoder(fst, config, device="cuda", lanes=args.lanes, channels=limit)
        if args.lane_groups is not None:
            set_lane_groups(decoder, args.lane_groups)
    else:
        decoder = wfst.Decoder(fst, config, device="cpu", threads=args.threads, channels=limit)
    offline = decoder.decode([workload.utterance(i) for i in range(len(workload))])  # also warms the kernels
    with decoder.stream() as warm:  # and a stream's own calls (its partials' best-token search)
        warm.accept(workload.utterance(0)[:2])
        warm.partial()
    offline_words = [r.words for r in offline]
    chunk_ms = tuple(args.chunk_ms)

    def trial(n):
        return run_trial(decoder, workload, offline_words, n, args.seed, args.seconds, chunk_ms)

    if args.streams:
        runs = [trial(n) for n in args.streams]
        for r in runs:
            r["real_time"] = r["partial_latency_ms"]["p99"] <= args.p99_ms
        best = None
    else:
        best, runs = most_streams(trial, args.p99_ms, args.max_streams, args.start_streams)
    record = {
        "command": "python -m bench.stream_latency " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine, "device": _device_name(decoder), "threads": decoder.threads,
        "lanes": decoder._cuda.geometry.lanes if decoder._cuda is not None else None,
        "lane_groups": decoder._cuda.lane_groups if decoder._cuda is not None else None,
        "graph": {"name": name, "states": fst.num_states, "arcs": fst.num_arcs},
        "data": {"utterances": len(workload), "audio_seconds": workload.audio_seconds,
                 "frame_shift": workload.frame_shift},
        "config": {"beam": args.beam, "max_active": args.max_active, "min_active": config.min_active,
                   "acoustic_scale": scale,
                   "lattice_beam": config.lattice_beam, "prune_interval": config.prune_interval},
        "chunk_ms": list(chunk_ms), "seconds_per_stream": args.seconds, "p99_bound_ms": args.p99_ms,
        "most_real_time_streams": best, "trials": runs,
    }
    suffix = "cuda" if args.device == "cuda" else f"t{args.threads}"
    out = args.out or RESULTS_DIR / f"stream_latency_{name}_{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    if best is not None:
        print(f"{name}, {suffix}: at most {best} real-time streams with p99 <= {args.p99_ms:g} ms")
    for r in runs:
        lat = r["partial_latency_ms"]
        print(f"{r['streams']:5d} streams: partial p50 {lat['p50']:.1f} / p90 {lat['p90']:.1f} / p99 {lat['p99']:.1f} ms, "
              f"final p99 {r['final_latency_ms']['p99']:.1f} ms, {r['finals_differing_from_offline']} finals differ")
    print(f"wrote {out}")
    return 0


def _device_name(decoder: wfst.Decoder) -> str:
    from wfst.gpu import device_memory

    return "cpu" if decoder._cuda is None else device_memory().name


if __name__ == "__main__":
    sys.exit(main())
