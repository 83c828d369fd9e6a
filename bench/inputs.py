"""The graph and utterances a benchmark runs on: the embedded example by
default, or a workload graph directory and test set (``--graph``, ``--data``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import wfst
from wfst.example import load_example
from wfst.score_archive import Workload


@dataclass(frozen=True)
class BenchInputs:
    """``fst``: the graph; ``workload``: its utterances; ``acoustic_scale``:
    the scale to decode them with; ``name``: ``example`` or ``<graph>_<set>``,
    for result file names."""

    fst: wfst.CsrFst
    workload: Workload
    acoustic_scale: float
    name: str


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """``--graph``, ``--data`` and ``--acoustic-scale``."""
    parser.add_argument("--graph", type=Path, help="directory with TLG.fst (default: the embedded example)")
    parser.add_argument("--data", type=Path, help="workload .npz, with --graph")
    parser.add_argument("--acoustic-scale", type=float, help="default: the example's own, else 1.0")


def load_inputs(args: argparse.Namespace) -> BenchInputs:
    """What :func:`add_input_arguments`' options name."""
    if args.graph is None:
        example = load_example()
        return BenchInputs(example.fst, Workload.load(example.scores_path),
                           args.acoustic_scale or example.acoustic_scale, "example")
    if args.data is None:
        raise SystemExit("--graph needs --data (a workload .npz)")
    return BenchInputs(wfst.read_fst(args.graph / "TLG.fst"), Workload.load(args.data), args.acoustic_scale or 1.0,
                       f"{args.graph.name}_{args.data.stem}")
