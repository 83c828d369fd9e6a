"""The calls in progress on a decoder, so that :meth:`wfst.Decoder.close` lets
go of its memory and threads only once the last of them has returned.

Every public call on a decoder or on one of its streams runs inside
:meth:`CallGate.call`; once the gate is closed, new calls are refused with
:class:`wfst.DecoderClosedError` and calls already in progress run to their end.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from .errors import DecoderClosedError


class CallGate:
    """Counts a decoder's calls in progress; thread-safe. A call made inside
    another on the same thread (``advance()`` holding its streams) is let in
    even once the gate is closed, since the outer call runs to its end."""

    def __init__(self):
        self._changed = threading.Condition()
        self._calls = 0
        self._depth = threading.local()  # this thread's calls in progress
        self.closed = False

    @contextmanager
    def call(self, what: str):
        """Run the body as a call in progress; :class:`DecoderClosedError`
        naming ``what`` (e.g. ``"decode()"``) once the gate is closed."""
        depth = getattr(self._depth, "calls", 0)
        with self._changed:
            if self.closed and depth == 0:
                raise DecoderClosedError(f"{what}: the decoder was closed (Decoder.close()); make a new "
                                         "wfst.Decoder to decode more")
            self._calls += 1
        self._depth.calls = depth + 1
        try:
            yield
        finally:
            self._depth.calls = depth
            with self._changed:
                self._calls -= 1
                self._changed.notify_all()

    def close(self) -> bool:
        """Refuse new calls, then wait for the calls in progress to return. True
        for the call that closed the gate, False if it was closed before."""
        with self._changed:
            first = not self.closed
            self.closed = True
            self._changed.wait_for(lambda: self._calls == 0)
            return first
