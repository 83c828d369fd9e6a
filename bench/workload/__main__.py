"""``python -m bench.workload``: build the benchmark workload (see
:mod:`bench.workload.build` for what and where).

    python -m bench.workload build [--out DIR] [--sizes tiny,small,full] [--sets ...] [--force] [--results DIR]
    python -m bench.workload example [--out wfst/data/example] [--force]

Outputs are cached: nothing that exists is rebuilt unless ``--force``. With
``--results``, ``build`` also writes ``workload_build.json`` (graph sizes,
build times, peak memory) and runs the Kaldi baseline grid
(:data:`BASELINE_GRID`) on the small and full graphs, one
``kaldi_baseline_{size}_{set}.json`` per test set, into that directory.
"""

from __future__ import annotations

import argparse
import sys
import time

from pathlib import Path

from wfst.errors import WfstError

from . import kaldi_baseline
from .build import DEFAULT_OUT, EXAMPLE_DIR, SIZES, TEST_SETS, WorkloadBuildError, WorkloadCache

BASELINE_SIZES = ("small", "full")
BASELINE_GRID = ["--decoder", "faster", "lattice-simple", "--beam", "10", "15", "--max-active", "7000", "10000",
                 "--acoustic-scale", "1.0", "0.5"]
"""Kaldi baseline configurations (``python -m bench.workload.kaldi_baseline`` arguments)."""
COUNT_TOKENS = {"lm-medium": 10, "random-medium": 5}
"""Utterances of each set whose active tokens per frame are counted (an untimed, slow pass)."""


def run_baselines(cache: WorkloadCache, sizes: list[str], sets: list[str], results: Path) -> None:
    """The Kaldi baseline grid for each of ``sizes`` in :data:`BASELINE_SIZES`
    and each test set (built already), written to
    ``results/kaldi_baseline_{size}_{set}.json``."""
    for size in (s for s in sizes if s in BASELINE_SIZES):
        for name in sets:
            graph, data = cache.out / "graphs" / size, cache.out / "data" / size / f"{name}.npz"
            argv = ["--graph", str(graph), "--data", str(data), *BASELINE_GRID, "--count-tokens",
                    str(COUNT_TOKENS.get(name, 0)), "--out", str(results / f"kaldi_baseline_{size}_{name}.json")]
            print(f"Kaldi baselines: {size} {name}", flush=True)
            if kaldi_baseline.main(argv) != 0:
                raise WorkloadBuildError(f"the Kaldi baseline on {data} failed (see above)")


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workload",
        description="Build the benchmark workload (LMs, CTC TLG graphs, synthetic test sets) or the embedded "
                    "example. Outputs are cached: nothing that exists is rebuilt unless --force.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="LMs, TLG graphs and test sets")
    build.add_argument("--out", default=str(DEFAULT_OUT), help=f"output directory (default {DEFAULT_OUT})")
    build.add_argument("--sizes", type=_names, default=list(SIZES),
                       help=f"comma-separated graph sizes (default {','.join(SIZES)})")
    build.add_argument("--sets", type=_names, default=list(TEST_SETS),
                       help=f"comma-separated test sets (default {','.join(TEST_SETS)})")
    build.add_argument("--results", type=Path,
                       help="also write workload_build.json and the Kaldi baselines of the small and full graphs "
                            "into this directory (e.g. bench/results)")
    example = commands.add_parser("example", help="the small embedded example: tiny graph and 20 utterances")
    example.add_argument("--out", default=str(EXAMPLE_DIR),
                         help="directory for the example files (default: wfst/data/example in this checkout)")
    example.add_argument("--cache", default=str(DEFAULT_OUT), help="workload cache holding the tiny graph")
    for command in (build, example):
        command.add_argument("--force", action="store_true", help="rebuild outputs that exist")
        command.add_argument("--route", default="auto", choices=("auto", "kaldifst", "pynini"),
                             help="library that determinizes and minimizes (default: kaldifst if installed)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        if args.command == "build":
            cache = WorkloadCache(args.out, force=args.force, route=args.route)
            cache.build(args.sizes, args.sets)
            if args.results:
                cache.record(args.sizes, args.results / "workload_build.json")
                run_baselines(cache, args.sizes, args.sets, args.results)
        else:
            cache = WorkloadCache(args.cache, force=args.force, route=args.route)
            for path in cache.example(args.out):
                print(f"{path}: {path.stat().st_size:,} bytes")
    except WfstError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
