"""Launch sequences replayed as CUDA graphs.

A step issues about twenty kernel launches, each a Python call that packs its
arguments (10-30 us of host time apiece), and the GPU waits for the host
wherever those calls outrun the kernels (between steps). A sequence whose
launches take the same arguments every step (the per-step values live in
device memory: ``params``) is captured once into a CUDA graph and replayed
with one call from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable


class LaunchGraphs:
    """Replays each named launch sequence as a CUDA graph. A sequence runs
    launch by launch the first time (so its kernels are loaded outside any
    capture), is captured the second time and replayed from then on. The key
    names the sequence and everything its arguments depend on (the launch
    geometry). ``enabled = False``: always launch by launch (what the step
    profiler times, kernel by kernel)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._graphs: dict[Hashable, object] = {}
        self._issued: set[Hashable] = set()

    def run(self, key: Hashable, stream, issue: Callable[[], None]) -> None:
        """Issue ``issue``'s launches on ``stream`` (``issue`` launches on the
        current stream: it runs inside ``with stream``)."""
        if not self.enabled or key not in self._issued:
            self._issued.add(key)
            with stream:
                issue()
            return
        graph = self._graphs.get(key)
        if graph is None:
            with stream:
                stream.begin_capture()
                try:
                    issue()
                finally:
                    graph = stream.end_capture()
            self._graphs[key] = graph
        graph.launch(stream)

    @property
    def captured(self) -> int:
        """Sequences captured so far."""
        return len(self._graphs)
