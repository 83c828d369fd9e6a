"""Host throughput of the CUDA backend's lattice assembly, measured without a
GPU: every frame the device sends (tokens and links of all lanes) is appended
to its channel's lattice on the host, pruned every so many frames (as the
CUDA backend does: ``prune_interval``, times ``HOST_PRUNE_INTERVALS`` when the
device prunes windows), and each finished utterance is pruned and made into a
Result. That host work
grows with the tokens per frame, as the search does, so it bounds how much
faster than one CPU core the GPU backend can be, whatever the GPU.

    python -m bench.lattice_host --graph DIR/graphs/small --data DIR/data/small/lm-medium.npz \\
        --acoustic-scale 0.5 --lanes 64 --threads 1 2

Our CPU backend first searches ``--utterances`` utterances (one core: its time
per frame is the baseline) and keeps their raw frames; then ``--lanes`` lanes
(lane ``i`` replays utterance ``i mod N``) search a frame per step and send
their frames as the device does, appended step by step in packed form and
finished, for each ``--threads`` count: with ``--window-frames W`` (default
the backend's) each lane flushes its window every W rows (the lanes
staggered, as in the backend), pruning the window's frames, all but up to
``--window-lag`` newest kept back, and keeping them in its pool on the device
while the pool has room (``--table-frames``; else sending them), then sends
the pool at the job's end, pruned with the final costs
(:mod:`lattice.window_prune`); 0: every frame unpruned at its own step, as
before the windows.
Reports host microseconds per lane-frame (wall time, the lattice workers of
``--threads`` threads appending and finishing while the steps are queued) and
the speedup over one CPU core that this host work allows at most (CPU search
time per frame over host time per lane-frame); and the same from CPU time (all
threads: the cores' work, steadier than wall time on a shared machine): the
most speedup per host core; and the calling thread's CPU time, which in the
backend also drives the GPU, so that its share caps the speedup however many
cores the workers have; and the workers' time outside their numba calls
(which release the GIL), which with the calling thread's is the work the GIL
serializes, so that it caps the speedup however many cores the host has; and
how the store deals a step's appends to the workers (``--stagger``, :func:`wfst.cuda_lattice.partition_channels`): the
workers each step wakes and the workers the queued steps keep busy. Writes
``bench/results/lattice_host_<graph>_<set>[_window<W>[_lag<G>][_sendall]].json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

import wfst
import wfst.cuda_lattice
from bench.inputs import add_input_arguments, load_inputs
from bench.provenance import git_commit, source_digest
from lattice.window_prune import final_extras, keep_window, prune_window
from wfst.budget import WINDOW_CAPACITY, WINDOW_FRAMES, WINDOW_LAG, WINDOW_TABLE_FRAMES
from wfst.cpu_backend import CpuSearch
from wfst.cuda_backend import HOST_PRUNE_INTERVALS
from wfst.cuda_lattice import QUEUED_STEPS, LatticeStore
from wfst.cuda_layout import FLUSH_FINAL, FLUSH_KEEP
from wfst.cuda_window_plan import flush_kind, flushes, frames_kept_back, sent_words
from wfst.decoding_graph import DecodingGraph

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def raw_frames(graph: DecodingGraph, config: wfst.DecoderConfig, scores: np.ndarray) -> list[tuple]:
    """The CPU search's frames before any lattice pruning, as the device packs
    them: per frame (states, costs, best incoming link (frame-local, -1: none),
    links as frame-local (src, dst, arc, ac, excess), number of emitting links);
    emitting links' sources index the previous frame's tokens."""
    search = CpuSearch(graph, wfst.DecoderConfig(**{**config.__dict__, "prune_interval": 10**9}))
    search.accept(scores)
    a = search._arrays
    frames = []
    for f in range(search.num_frames + 1):
        t0, t1 = a.tok_start[f], a.tok_start[f + 1]
        l0, l1, e = a.link_start[f], a.link_start[f + 1], a.link_eps_start[f]
        prev0 = a.tok_start[f - 1] if f > 0 else 0
        best = a.tok_best[t0:t1].astype(np.int64)
        best = np.where(best >= 0, best - l0, -1)
        src = a.link_src[l0:l1].astype(np.int64)
        src[: e - l0] -= prev0
        src[e - l0:] -= t0
        frames.append((a.tok_state[t0:t1].copy(), a.tok_cost[t0:t1].copy(), best, src,
                       a.link_dst[l0:l1] - t0, a.link_arc[l0:l1].copy(), a.link_ac[l0:l1].copy(),
                       a.link_excess[l0:l1].copy(), int(e - l0)))
    return frames


def windowed(frames: list[tuple], window: int, config: wfst.DecoderConfig, final: np.ndarray, lane: int = 0,
             lag: int = WINDOW_LAG, table_frames: int = WINDOW_TABLE_FRAMES,
             held: list | None = None) -> list[list[tuple]]:
    """The frames as the CUDA backend's lane ``lane`` sends them with windows
    flushed every ``window`` rows, up to ``lag`` frames kept back by each flush
    but the last, which the device prunes before the copy, a flush keeping what
    it pruned on the device while its pool (of ``table_frames`` frames) has room
    (:mod:`lattice.window_prune`; the backend's rules,
    :func:`wfst.cuda_window_plan.flushes`, :func:`wfst.cuda_window_plan.frames_kept_back`
    and :func:`wfst.cuda_window_plan.flush_kind`; ``final``: the graph's final
    costs, for the utterance's end): per frame searched, the frames sent at that
    step (none but at a flush that sends); 0: unpruned, each frame at its own
    step. ``held``, if given, gets per frame searched the packed words of what
    the pool holds after that step (3 per frame, 3 per token, 5 per link): what
    the backend's packed buffer must have room for, should the lane send it
    (:func:`wfst.cuda_window_plan.plan_windows`)."""
    if window == 0:
        if held is not None:
            held.extend([0] * len(frames))
        return [[frame] for frame in frames]
    Q, X = config.token_capacity, config.arc_capacity
    pool_tokens, pool_links = WINDOW_CAPACITY * Q, WINDOW_CAPACITY * X
    out, pool, kept = [], [], 0  # the pool's frames, the first `kept` kept by earlier flushes
    for f, frame in enumerate(frames):
        pool.append(frame)
        sizes = np.array([[h[0].size, h[3].size] for h in pool], np.int64)
        tokens, links = sizes.sum(axis=0)
        last = f + 1 == len(frames)
        sent = []
        due = flushes(len(pool) - kept, tokens, links, f - 1, lane, window, window + lag, Q, X, WINDOW_CAPACITY)
        if last or due:
            back = 0 if last else frames_kept_back(sizes[kept:], len(pool) - kept, lag, pool_tokens, pool_links)
            kind = flush_kind(last, config.use_final_probs, due, kept, len(pool) - kept - back, tokens, links,
                              window + lag, table_frames, Q, X, pool_tokens, pool_links)
            if kind == FLUSH_KEEP:
                pool, kept = keep_window(pool, kept, config.lattice_beam, back)
            else:
                newest = final_extras(pool[-1][0], pool[-1][1], final, True) if kind == FLUSH_FINAL else None
                sent, pool = prune_window(pool, config.lattice_beam, back, newest)
                kept = 0
        out.append(sent)
        if held is not None:
            held.append(sent_words(len(pool), sum(h[0].size for h in pool), sum(h[3].size for h in pool)))
    return out


def pools_held_share(pools_held: list[int], lanes: int, config: wfst.DecoderConfig) -> dict:
    """What the lanes' pools held after each step (``pools_held``: words, all
    lanes'), per lane in worst-case frames (Q tokens, X links): its mean and
    largest over the steps. The backend's packed buffer holds
    ``WINDOW_SEND_CAPACITY`` worst-case frames per lane, one of them for each
    lane's next frame: a step after which the pools hold more than the rest
    sends some early (:func:`wfst.cuda_window_plan.plan_windows`)."""
    share = np.asarray(pools_held, np.float64) / lanes / sent_words(1, config.token_capacity, config.arc_capacity)
    return {"pools_held_frames_per_lane_mean": float(share.mean()) if share.size else 0.0,
            "pools_held_frames_per_lane_max": float(share.max()) if share.size else 0.0}


def packed_step(lane_frames: list[tuple]) -> tuple:
    """One step's packed buffer for lanes ``0 .. len - 1`` (see
    :mod:`wfst.cuda_lattice`) and the per-lane arguments of
    :meth:`LatticeStore.append` after ``channels``: (words, T, K, to, n, lo,
    nl, ne)."""
    n = np.array([f[0].size for f in lane_frames], np.int64)
    nl = np.array([f[3].size for f in lane_frames], np.int64)
    to, lo = np.cumsum(n) - n, np.cumsum(nl) - nl
    columns = [np.concatenate([f[i].astype(np.float32 if i in (1, 6, 7) else np.int32, copy=False).view(np.int32)
                               for f in lane_frames]) for i in range(8)]
    words = np.concatenate(columns)
    return (words, int(n.sum()), int(nl.sum()), to, n, lo, nl,
            np.array([f[8] for f in lane_frames], np.int64))


def replayed(lane: int, round_: int, count: int) -> int:
    """The utterance (of ``count``) that lane ``lane`` replays in its round
    ``round_``: drawn from a generator seeded with both, so that which lanes
    replay one utterance has nothing to do with which lanes flush together or
    share a lattice worker, as in a decoder's batch of distinct utterances
    (with ``lane + round_ * lanes`` mod ``count``, the lanes that flush
    together replayed one utterance, or each worker always the same few,
    whenever ``count`` divides the window period)."""
    return int(np.random.default_rng([lane, round_]).integers(count))


WORKER_NUMBA_CALLS = (("wfst.cuda_lattice", "append_step"), ("wfst.cuda_lattice", "finish_channel"))
"""The numba functions (module, name) the lattice workers call, which release the GIL."""


@contextlib.contextmanager
def gil_held_by_workers():
    """Within the block, the seconds the lattice workers spend outside their
    numba calls (:data:`WORKER_NUMBA_CALLS`), that is holding the GIL or
    waiting for it: yields a list that gets one entry per call the workers run
    (its time, less its numba calls'; a list's append is atomic, so the
    workers may add at once)."""
    inside = threading.local()
    held: list[float] = []

    def numba_call(function):
        def timed(*args):
            start = time.perf_counter()
            try:
                return function(*args)
            finally:  # (a numba call on a thread that runs no worker call counts nowhere)
                inside.seconds = getattr(inside, "seconds", 0.0) + time.perf_counter() - start
        return timed

    def run_call(*args):
        inside.seconds = 0.0
        start = time.perf_counter()
        try:
            return run(*args)
        finally:
            held.append(time.perf_counter() - start - inside.seconds)

    run = wfst.cuda_lattice._run_call
    originals = [(importlib.import_module(module), name) for module, name in WORKER_NUMBA_CALLS]
    originals = [(module, name, getattr(module, name)) for module, name in originals]
    wfst.cuda_lattice._run_call = run_call
    for module, name, function in originals:
        setattr(module, name, numba_call(function))
    try:
        yield held
    finally:
        wfst.cuda_lattice._run_call = run
        for module, name, function in originals:
            setattr(module, name, function)


def measure(graph: DecodingGraph, config: wfst.DecoderConfig, utterances: list[list[tuple]], lanes: int,
            threads: int, rounds: int, prune_every: int | None = None, window: int = 0,
            lag: int = WINDOW_LAG, stagger: int | None = None,
            table_frames: int = WINDOW_TABLE_FRAMES) -> tuple[dict, list]:
    """Lane ``i`` replays ``rounds`` utterances back to back (:func:`replayed`;
    each a list of raw frames), a frame searched per step, and
    sends the frames as the CUDA backend's lane ``i`` does (:func:`windowed`:
    the lanes' flushes staggered; ``window`` 0: every frame at its step): each
    step's frames (a run of frames from each lane that flushes) are put in a
    region of the store's inbox (:meth:`LatticeStore.reserve`) and queued in
    one call (:meth:`LatticeStore.append`, each partition of the channels
    appended by its own worker thread), and each finished utterance is
    finished by its channel's worker (:meth:`LatticeStore.finish_later`). The
    steps are windowed and packed before the clock starts; the time runs from
    the first step until every Result is ready, in wall time and in CPU time
    (all threads: the host cores' work; and the calling thread's alone, which
    in the backend also drives the GPU), less the copies into the inbox, which
    the device's copy engine makes in the backend; and the workers' time
    outside their numba calls (:func:`gil_held_by_workers`). Returns the timings and
    every lane's Results (lane by lane). ``prune_every``: the host's interim
    pruning interval (:class:`LatticeStore`); ``stagger``: the store's
    (default ``window``, as the backend's; 1: channel ``c`` to worker ``c %
    threads``); ``table_frames``: frames a lane's pool holds (0: its flushes
    send what they prune, never keep it). Counts of the work dealt, not timings:
    ``handoffs_per_step``, the workers a step's appends wake (each takes the
    GIL); ``workers_busy``, the workers the steps queued at once can keep busy
    (over each run of ``QUEUED_STEPS`` steps, its records over its busiest
    worker's, weighted by records; at most ``threads``); and what the pools
    held after each step (:func:`pools_held_share`)."""
    plans = [[replayed(i, r, len(utterances)) for r in range(rounds)] for i in range(lanes)]
    sends: dict = {}  # (utterance, stagger): its frames sent per step
    holds: dict = {}  # (utterance, stagger): the words its pool holds after each step

    def key_of(i: int, r: int) -> tuple:
        """Lane ``i``'s utterance and stagger in its round ``r``, its sends and holds made."""
        key = (plans[i][r], i % window if window else 0)
        if key not in sends:
            holds[key] = []
            sends[key] = windowed(utterances[key[0]], window, config, graph.fst.final, lane=key[1], lag=lag,
                                  table_frames=table_frames, held=holds[key])
        return key

    def sent(i: int, r: int) -> list[list[tuple]]:
        """Lane ``i``'s sends in its round ``r``."""
        return sends[key_of(i, r)]

    steps = []  # (channel of each frame, packed frames or None, start flags, lanes whose utterance ends)
    pools_held = []  # per step, the words all lanes' pools hold after it
    at = np.zeros((lanes, 2), np.int64)  # (round, frame) of each lane
    started = np.zeros(lanes, bool)  # the lane's utterance has sent its first frame
    while True:
        live = np.flatnonzero(at[:, 0] < rounds)
        if live.size == 0:
            break
        runs = [sent(i, at[i, 0])[at[i, 1]] for i in live]
        pools_held.append(sum(holds[key_of(i, at[i, 0])][at[i, 1]] for i in live))
        counts = np.array([len(run) for run in runs], np.int64)
        starts = np.zeros(counts.sum(), bool)
        sending = counts > 0
        starts[(np.cumsum(counts) - counts)[sending]] = ~started[live[sending]]
        started[live[sending]] = True
        frames = [frame for run in runs for frame in run]
        ends = live[np.array([at[i, 1] + 1 == len(sent(i, at[i, 0])) for i in live])]
        steps.append((np.repeat(live, counts), packed_step(frames) if frames else None, starts, ends))
        at[live, 1] += 1
        at[ends, 0] += 1
        at[ends, 1] = 0
        started[ends] = False
    lane_frames = sum(len(utterances[u]) for plan in plans for u in plan)
    largest = max((step[1][0].size for step in steps if step[1] is not None), default=0)
    inbox = np.zeros((QUEUED_STEPS + 2) * max(largest, 1), np.int32)
    stagger = stagger or window or 1
    store = LatticeStore(graph, config, lanes, threads=threads, prune_every=prune_every, inbox=inbox, stagger=stagger)
    parts = int(store.part_of.max()) + 1
    loads = np.array([np.bincount(store.part_of[channels], weights=packed[4] + packed[6], minlength=parts)
                      for channels, packed, *_ in steps if packed is not None]).reshape(-1, parts)
    queued = np.cumsum(np.vstack([np.zeros(parts), loads]), axis=0)
    queued = queued[QUEUED_STEPS:] - queued[:-QUEUED_STEPS] if len(loads) > QUEUED_STEPS else queued[-1:]
    dealing = {"stagger": stagger, "handoffs_per_step": float((loads > 0).sum(1).mean()),
               "workers_busy": float(queued.sum() / max(1.0, queued.max(1).sum()))}
    futures = [[] for _ in range(lanes)]
    copying = np.zeros(2)  # wall and CPU time of the calling thread's copies into the inbox
    with gil_held_by_workers() as held:
        start, core, main = time.perf_counter(), time.process_time(), time.thread_time()
        for channels, packed, starts, ended in steps:
            if packed is not None:
                words, *counts = packed
                region = store.reserve(words.size)
                before = np.array([time.perf_counter(), time.thread_time()])
                region[:] = words
                copying += np.array([time.perf_counter(), time.thread_time()]) - before
                store.append(channels, region, *counts, starts)
            for i in ended:
                futures[i].append(store.finish_later(int(i)))
        store.wait()
        main_seconds = time.thread_time() - main - copying[1]
        results = [[done.result() for done in lane] for lane in futures]
    seconds, core_seconds = time.perf_counter() - start - copying[0], time.process_time() - core - copying[1]
    return ({"threads": threads, "lanes": lanes, "rounds": rounds, "lane_frames": lane_frames,
             "steps": len(steps), **dealing, **pools_held_share(pools_held, lanes, config),
             "frames_per_append": sum(step[0].size for step in steps)
             / max(1, sum(step[1] is not None for step in steps)),
             "host_seconds": seconds, "host_us_per_lane_frame": seconds / lane_frames * 1e6,
             "host_core_us_per_lane_frame": core_seconds / lane_frames * 1e6,
             "main_thread_us_per_lane_frame": main_seconds / lane_frames * 1e6,
             "workers_gil_us_per_lane_frame": sum(held) / lane_frames * 1e6}, results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lattice_host", description=__doc__.split("\n\n")[0])
    add_input_arguments(parser)
    parser.add_argument("--beam", type=float, default=15.0)
    parser.add_argument("--max-active", type=int, default=10000)
    parser.add_argument("--lattice-beam", type=float, default=8.0)
    parser.add_argument("--utterances", type=int, default=8, help="distinct utterances (default 8)")
    parser.add_argument("--lanes", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="utterances per lane, back to back (default 2)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--window-frames", type=int, default=WINDOW_FRAMES,
                        help=f"most frames the device prunes together before the copy (0: none, frame by frame as "
                             f"before; default {WINDOW_FRAMES}, the CUDA backend's)")
    parser.add_argument("--window-lag", type=int, default=WINDOW_LAG,
                        help=f"most frames a flush keeps back for the next (default {WINDOW_LAG}, the CUDA backend's)")
    parser.add_argument("--table-frames", type=int, default=WINDOW_TABLE_FRAMES,
                        help=f"frames a lane's pool holds, those its flushes keep on the device and the window's "
                             f"(default {WINDOW_TABLE_FRAMES}, the CUDA backend's; 0: flushes send what they prune, as "
                             "before the device kept it)")
    parser.add_argument("--stagger", type=int, nargs="+", default=[0],
                        help="the store's channel partitions (wfst.cuda_lattice.partition_channels), each a run per "
                             "thread count; 0 (default): the window period, as the backend's; 1: channel c to "
                             "worker c modulo threads")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if 0 < args.table_frames < args.window_frames + args.window_lag:
        parser.error("--table-frames must be 0 or hold a window (--window-frames + --window-lag)")
    inputs = load_inputs(args)
    config = wfst.DecoderConfig(beam=args.beam, max_active=args.max_active, lattice_beam=args.lattice_beam,
                                acoustic_scale=inputs.acoustic_scale)
    graph = DecodingGraph(inputs.fst)
    rows = [np.ascontiguousarray(inputs.workload.utterance(i), dtype=np.float32)
            for i in range(min(args.utterances, len(inputs.workload)))]
    warm = CpuSearch(graph, config)  # compiles
    warm.accept(rows[0][:2])
    warm.finish()
    start, core = time.perf_counter(), time.process_time()
    expected = []
    for r in rows:
        search = CpuSearch(graph, config)
        search.accept(r)
        expected.append(search.finish())
    frames = sum(r.shape[0] + 1 for r in rows)
    cpu_us_per_frame = (time.perf_counter() - start) / frames * 1e6
    cpu_core_us_per_frame = (time.process_time() - core) / frames * 1e6
    raw = [raw_frames(graph, config, r) for r in rows]
    sent = (sum(f[0].size for u in raw for step in windowed(u, args.window_frames, config, graph.fst.final,
                                                             lag=args.window_lag, table_frames=args.table_frames)
                for f in step) / sum(f[0].size for u in raw for f in u))
    # the backend's host pruning interval: longer when the device prunes windows
    prune_every = HOST_PRUNE_INTERVALS * config.prune_interval if args.window_frames else config.prune_interval
    measure(graph, config, raw[:1], 2, 1, 1)  # compiles
    tokens = np.mean([f[0].size for u in raw for f in u])
    links = np.mean([f[3].size for u in raw for f in u])
    print(f"{inputs.name}: {len(rows)} utterances, {tokens:.0f} tokens and {links:.0f} links per frame; "
          f"CPU backend (one core) {cpu_us_per_frame:.1f} us per frame ({cpu_core_us_per_frame:.1f} of CPU time); "
          f"windows of {args.window_frames} frames, up to {args.window_lag} kept back, pools of {args.table_frames} "
          f"frames, send {sent:.1%} of the tokens")
    runs = []
    for threads, stagger in ((t, k) for k in args.stagger for t in args.threads):
        run, results = measure(graph, config, raw, args.lanes, threads, args.rounds, prune_every,
                               args.window_frames, args.window_lag, stagger, args.table_frames)
        got = [(r.words, r.cost) for lane in results for r in lane]
        want = [(expected[u].words, expected[u].cost)
                for u in (replayed(i, k, len(rows)) for i in range(args.lanes) for k in range(args.rounds))]
        if got != want:
            raise SystemExit("the host lattices gave other results than the CPU backend")
        run["most_speedup_over_one_core"] = cpu_us_per_frame / run["host_us_per_lane_frame"]
        run["most_speedup_per_host_core"] = cpu_core_us_per_frame / run["host_core_us_per_lane_frame"]
        run["most_speedup_main_thread"] = cpu_core_us_per_frame / run["main_thread_us_per_lane_frame"]
        run["most_speedup_gil"] = cpu_core_us_per_frame / (run["main_thread_us_per_lane_frame"]
                                                           + run["workers_gil_us_per_lane_frame"])
        runs.append(run)
        print(f"threads {threads:3d}, stagger {run['stagger']:2d} ({run['handoffs_per_step']:.1f} workers woken per "
              f"step, {run['workers_busy']:.1f} kept busy by the queued steps): "
              f"{run['host_us_per_lane_frame']:7.2f} us per lane-frame: "
              f"at most x{run['most_speedup_over_one_core']:.1f} over one core; "
              f"{run['host_core_us_per_lane_frame']:.1f} us of CPU time per lane-frame: at most "
              f"x{run['most_speedup_per_host_core']:.1f} per host core; the calling thread "
              f"{run['main_thread_us_per_lane_frame']:.1f} us: at most x{run['most_speedup_main_thread']:.1f}; "
              f"the workers outside numba {run['workers_gil_us_per_lane_frame']:.2f} us: with the calling thread, "
              f"the GIL allows at most x{run['most_speedup_gil']:.1f}; the pools held "
              f"{run['pools_held_frames_per_lane_mean']:.2f} worst-case frames per lane after a step, at most "
              f"{run['pools_held_frames_per_lane_max']:.2f}", flush=True)
    record = {"command": "python -m bench.lattice_host " + " ".join(sys.argv[1:] if argv is None else argv),
              "date": datetime.date.today().isoformat(), "commit": git_commit(), "source_digest": source_digest(),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": len(os.sched_getaffinity(0))},
              "workload": inputs.name, "utterances": len(rows),
              "config": {"beam": args.beam, "max_active": args.max_active, "lattice_beam": args.lattice_beam,
                         "acoustic_scale": inputs.acoustic_scale, "prune_interval": config.prune_interval,
                         "host_prune_every": prune_every,
                         "window_frames": args.window_frames, "window_lag": args.window_lag,
                         "table_frames": args.table_frames},
              "frames_per_utterance": [len(u) for u in raw], "tokens_per_frame": tokens,
              "links_per_frame": links, "tokens_sent_share": sent, "cpu_us_per_frame": cpu_us_per_frame,
              "cpu_core_us_per_frame": cpu_core_us_per_frame,
              "runs": runs}
    window = f"_window{args.window_frames}" if args.window_frames else ""
    window += f"_lag{args.window_lag}" if args.window_frames and args.window_lag else ""
    window += "_sendall" if args.window_frames and not args.table_frames else ""
    out = args.out or RESULTS_DIR / f"lattice_host_{inputs.name}{window}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
