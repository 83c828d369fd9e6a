"""How long a full garbage collection holds the GIL in a decoding process, and
how long inside a CUDA run, where :mod:`wfst.gc_scope` freezes the objects
older than the run. Runs without a GPU: the embedded example is decoded on the
CPU first, so numba's compiled functions and the decoder's modules are loaded
(and, where it imports, CuPy).

    python -m bench.gc_pause

Prints and writes ``bench/results/gc_pause.json``: the tracked objects, and the
best and median of ``--repeat`` full collections (``gc.collect()``) outside and
inside the scope, in milliseconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "gc_pause.json"


def collections_ms(repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        gc.collect()
        times.append(1e3 * (time.perf_counter() - start))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gc_pause", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import wfst
    from wfst.example import load_example
    from wfst.gc_scope import objects_older_than_the_run_frozen

    try:
        import cupy  # noqa: F401  (its objects count too, as in a GPU process)
    except ImportError:
        pass
    ex = load_example()
    decoder = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale), device="cpu")
    decoder.decode(ex.scores)
    gc.collect()
    objects = len(gc.get_objects())
    outside = collections_ms(args.repeat)
    with objects_older_than_the_run_frozen():
        inside = collections_ms(args.repeat)
    record = {"command": "python -m bench.gc_pause " + " ".join(sys.argv[1:] if argv is None else argv),
              "python": platform.python_version(), "modules_loaded": len(sys.modules), "tracked_objects": objects,
              "full_collection_ms": {"outside": {"best": min(outside), "median": statistics.median(outside)},
                                     "inside_a_run": {"best": min(inside), "median": statistics.median(inside)}}}
    print(f"{objects} tracked objects, {len(sys.modules)} modules: a full collection takes {min(outside):.2f} ms "
          f"(median {statistics.median(outside):.2f}) outside a run, {min(inside):.3f} ms "
          f"(median {statistics.median(inside):.3f}) inside one")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
