"""``python -m bench.workload``: build the benchmark workload (see
:mod:`bench.workload.build` for what and where).

    python -m bench.workload build [--out DIR] [--sizes tiny,small,full] [--sets ...] [--force]
    python -m bench.workload example [--out wfst/data] [--force]

Outputs are cached: nothing that exists is rebuilt unless ``--force``.
"""

from __future__ import annotations

import argparse
import sys
import time

from wfst.errors import WfstError

from .build import DEFAULT_OUT, SIZES, TEST_SETS, WorkloadCache


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
    example = commands.add_parser("example", help="the small embedded example: tiny graph and 20 utterances")
    example.add_argument("--out", default="wfst/data", help="directory for the example files (default wfst/data)")
    example.add_argument("--cache", default=str(DEFAULT_OUT), help="workload cache holding the tiny graph")
    for command in (build, example):
        command.add_argument("--force", action="store_true", help="rebuild outputs that exist")
        command.add_argument("--route", default="auto", choices=("auto", "kaldifst", "pynini"),
                             help="library that determinizes and minimizes (default: kaldifst if installed)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        if args.command == "build":
            WorkloadCache(args.out, force=args.force, route=args.route).build(args.sizes, args.sets)
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
