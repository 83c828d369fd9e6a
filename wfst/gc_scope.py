"""Garbage collection while the CUDA backend runs.

A full collection of Python's cyclic garbage collector scans every object the
interpreter tracks, holding the GIL: with the decoder and numba loaded, about
120,000 objects and 45-50 ms on the development VM (``python -m
bench.gc_pause``; more with CuPy and torch). Meanwhile the step loop cannot
launch the next step and the lattice workers cannot hand back their work, so
the GPU idles. The objects a run makes (its Results, their lattices) bring
such collections on.

:func:`objects_older_than_the_run_frozen` moves the objects that exist when a
run starts to the collector's permanent generation (``gc.freeze``), so the
collections during the run scan only what the run made (a full one then takes
microseconds), and moves them back when the run ends (``gc.unfreeze``):
nothing is kept from collection past the run. It leaves the collector alone
where it is disabled, and for good once it has seen objects that something
else froze (a program that freezes its objects does so for its lifetime, and
counting them walks them all: 12 ms for a million).
"""

from __future__ import annotations

import gc
import threading
import time
from contextlib import contextmanager

_lock = threading.Lock()
_runs = 0  # runs inside the scope now (several threads may run decoders)
_froze = False  # whether the first of them froze the heap (and the last must unfreeze it)
_frozen_by_others = False  # seen once: never checked again (gc.get_freeze_count walks the frozen objects)


@contextmanager
def objects_older_than_the_run_frozen(stats: dict | None = None):
    """Freeze the tracked objects for the duration of the ``with`` block (see
    the module docstring); nested and concurrent blocks share one freeze, which
    the last to end undoes. ``stats``: its ``"gc_seconds"`` gains the time the
    collector ran during the block (in any thread)."""
    global _runs, _froze, _frozen_by_others
    started = []

    def timed(phase, info):
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            stats["gc_seconds"] = stats.get("gc_seconds", 0.0) + time.perf_counter() - started.pop()

    with _lock:
        if _runs == 0:
            _frozen_by_others = _frozen_by_others or gc.get_freeze_count() > 0  # (0 is found at once)
            _froze = gc.isenabled() and not _frozen_by_others
            if _froze:
                gc.freeze()
        _runs += 1
    if stats is not None:
        gc.callbacks.append(timed)
    try:
        yield
    finally:
        if stats is not None:
            gc.callbacks.remove(timed)
        with _lock:
            _runs -= 1
            if _runs == 0 and _froze:
                gc.unfreeze()
                _froze = False
