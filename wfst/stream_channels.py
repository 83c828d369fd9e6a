"""Channels: the slots that hold open streams' saved search state.

A decoder has a fixed number of channels (on the GPU, device memory for each
is allocated with the decoder; on the CPU the number only bounds memory). A
stream takes the lowest free channel when it opens and gives it back when it
finishes or closes.
"""

from __future__ import annotations

import heapq
import threading

from .errors import StreamError


class ChannelPool:
    """``capacity`` channels numbered ``0 .. capacity - 1``; thread-safe."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._free = list(range(capacity))
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self.capacity - len(self._free)

    def acquire(self) -> int:
        """The lowest free channel; :class:`StreamError` when all are taken."""
        with self._lock:
            if not self._free:
                raise StreamError(f"all {self.capacity} channels hold open streams: finish() or close() one "
                                  "first, or make the Decoder with more channels=")
            return heapq.heappop(self._free)

    def acquire_up_to(self, n: int) -> list[int]:
        """Up to ``n`` of the lowest free channels, at least one (:class:`StreamError`
        when all are taken): what an offline batch borrows on the GPU."""
        first = self.acquire()
        with self._lock:
            return [first] + [heapq.heappop(self._free) for _ in range(min(n - 1, len(self._free)))]

    def release(self, channel: int) -> None:
        with self._lock:
            heapq.heappush(self._free, channel)
