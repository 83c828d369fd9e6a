"""``wfst-info``: inspect a decoding graph and its GPU memory budget."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .budget import budget
from .config import DecoderConfig
from .errors import WfstError
from .example import example_dir
from .gpu import device_memory
from .reader import describe_format, read_fst


def example_graph_path() -> str:
    """Path of the embedded example's CTC TLG (see :mod:`wfst.example`)."""
    return str(example_dir() / "TLG.fst")


def graph_info(path: str, config: DecoderConfig, lanes: int, channels: int | None) -> dict:
    """Everything ``wfst-info`` reports, as a JSON-ready dict."""
    began = time.perf_counter()
    fst = read_fst(path)
    seconds = time.perf_counter() - began
    emitting = fst.ilabel[: fst.num_emitting_arcs]
    memory = budget(fst, config, lanes=lanes, channels=channels)
    info = {
        "path": path,
        "format": describe_format(path),
        "load_seconds": round(seconds, 4),
        "states": fst.num_states,
        "arcs": fst.num_arcs,
        "emitting_arcs": fst.num_emitting_arcs,
        "epsilon_arcs": fst.num_epsilon_arcs,
        "final_states": fst.num_final_states,
        "start": fst.start,
        "ilabel_range": [int(emitting.min()), int(emitting.max())] if emitting.size else None,
        "olabel_range": [int(fst.olabel.min()), int(fst.olabel.max())] if fst.num_arcs else None,
        "max_active": config.max_active,
        "budget": memory.as_dict(),
        "budget_device_fst_arrays": memory.device_fst_arrays,
    }
    gpu = device_memory()
    if gpu is not None:
        info["gpu"] = {"name": gpu.name, "free_bytes": gpu.free_bytes, "fits": memory.device_total <= gpu.free_bytes,
                       "max_lanes": memory.max_lanes(gpu.free_bytes)}
    return info, fst, memory


def _print_report(info: dict, memory) -> None:
    def count(n):
        return f"{n:,}"

    rows = [
        ("graph", f"{info['path']}  ({info['format']}, loaded in {info['load_seconds']:.3f} s)"),
        ("states", f"{count(info['states'])}  (start {info['start']}, {count(info['final_states'])} final)"),
        ("arcs", f"{count(info['arcs'])}  ({count(info['emitting_arcs'])} emitting, "
                 f"{count(info['epsilon_arcs'])} input-epsilon)"),
        ("input labels", "none" if info["ilabel_range"] is None else "{} .. {} (emitting arcs)".format(
            *info["ilabel_range"])),
        ("output labels", "none" if info["olabel_range"] is None else "{} .. {}".format(*info["olabel_range"])),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"\nGPU memory budget (max_active {info['max_active']}):")
    for line in str(memory).splitlines():
        print(f"  {line}")
    gpu = info.get("gpu")
    if gpu is None:
        print("  no GPU here: the budget is what a GPU would need")
    else:
        verdict = "fits" if gpu["fits"] else "does NOT fit"
        print(f"  {gpu['name']}: {verdict} in {gpu['free_bytes'] / 2**30:.2f} GiB free "
              f"(up to {gpu['max_lanes']} lanes)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wfst-info",
        description="Inspect a decoding graph (OpenFst vector/const, AT&T text or wfst cache): sizes, "
                    "labels and the GPU memory budget, known before anything is allocated.")
    parser.add_argument("graph", nargs="?", help="graph file; omit with --example")
    parser.add_argument("--example", action="store_true", help="inspect the small CTC TLG shipped with wfst-gpu")
    parser.add_argument("--max-active", type=int, default=DecoderConfig.max_active,
                        help="tokens kept per frame; sizes the queues (default %(default)s)")
    parser.add_argument("--lanes", type=int, default=1, help="utterances decoded at once (default 1)")
    parser.add_argument("--channels", type=int, default=None, help="open streams (default: lanes)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument("--save-cache", metavar="PATH",
                        help="also write the graph in wfst's memory-mappable cache format")
    parser.add_argument("--overwrite", action="store_true", help="let --save-cache replace an existing file")
    args = parser.parse_args(argv)
    if args.example == bool(args.graph):
        parser.error("give a graph file or --example (not both)")
    path = example_graph_path() if args.example else args.graph
    if args.save_cache is not None:
        folder = os.path.dirname(os.path.abspath(args.save_cache))
        if not args.save_cache or os.path.isdir(args.save_cache):
            parser.error(f"--save-cache {args.save_cache!r}: give a file path, e.g. graph.wfst")
        if not os.path.isdir(folder):
            parser.error(f"--save-cache {args.save_cache}: the folder {folder} does not exist")
        if os.path.exists(args.save_cache) and not args.overwrite:
            parser.error(f"{args.save_cache} exists; pass --overwrite to replace it")
    try:
        config = DecoderConfig(max_active=args.max_active, min_active=min(200, args.max_active))
        info, fst, memory = graph_info(path, config, args.lanes, args.channels)
        if args.save_cache is not None:
            fst.save(args.save_cache)
    except (WfstError, OSError) as error:
        print(f"wfst-info: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_report(info, memory)
        if args.save_cache is not None:
            print(f"\ncache written to {args.save_cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
