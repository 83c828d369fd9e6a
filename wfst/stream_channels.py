"""Channels: the slots that hold open streams' saved search state.

A decoder has a fixed number of channels (on the GPU, device memory for each
is allocated with the decoder; on the CPU the number only bounds memory). A
stream takes the lowest free channel when it opens and gives it back when it
finishes or closes.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque

from .errors import StreamError


class ChannelPool:
    """``capacity`` channels numbered ``0 .. capacity - 1``; thread-safe.

    A channel given back waits in a queue until the pool's lock is free: a
    dropped stream's finalizer may run inside :meth:`acquire` on the thread
    that holds the lock (a garbage collection started by one of its
    allocations), where waiting for the lock would wait forever."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._fresh = 0  # channels below it were taken at some time; those at or above, never
        self._free = []  # a heap of the channels given back (each below _fresh), so memory grows with use only
        self._returned: deque[int] = deque()  # given back, not yet in _free (appends are atomic)
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        with self._lock:
            self._take_returned()
            return self._fresh - len(self._free)

    def acquire(self) -> int:
        """The lowest free channel; :class:`StreamError` when all are taken."""
        with self._lock:
            channel = self._take_lowest()
            if channel is not None:
                return channel
        raise StreamError(f"all {self.capacity} channels hold open streams: finish() or close() one "
                          "first, or make the Decoder with more channels=")

    def acquire_up_to(self, n: int) -> list[int]:
        """Up to ``n`` of the lowest free channels, at least one (:class:`StreamError`
        when all are taken): what an offline batch borrows on the GPU."""
        taken = [self.acquire()]
        with self._lock:
            while len(taken) < n and (channel := self._take_lowest()) is not None:
                taken.append(channel)
        return taken

    def release(self, channel: int) -> None:
        self._returned.append(channel)
        if self._lock.acquire(blocking=False):  # else the holder, or the next caller, takes it
            try:
                self._take_returned()
            finally:
                self._lock.release()

    def _take_lowest(self) -> int | None:
        """The lowest free channel, now taken, or None (with the lock held)."""
        self._take_returned()
        if self._free:
            return heapq.heappop(self._free)
        if self._fresh < self.capacity:
            self._fresh += 1
            return self._fresh - 1
        return None

    def _take_returned(self) -> None:
        """Move the channels given back into the free heap (with the lock held)."""
        while self._returned:
            heapq.heappush(self._free, self._returned.popleft())
