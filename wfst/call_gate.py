"""The calls in progress on a decoder, so that :meth:`wfst.Decoder.close` lets
go of its memory and threads only once the last of them has returned.

Every public call on a decoder or on one of its streams runs inside
:meth:`CallGate.call`; once the gate is closed, new calls are refused with
:class:`wfst.DecoderClosedError` and calls already in progress run to their end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
        self._let_go: Callable[[], None] | None = None  # close()'s, until a thread runs it
        self.closed = False

    @contextmanager
    def call(self, what: str):
        """Run the body as a call in progress; :class:`DecoderClosedError`
        naming ``what`` (e.g. ``"decode()"``) once the gate is closed."""
        depth = getattr(self._depth, "calls", 0)
        entered = False
        try:
            with self._changed:
                if self.closed and depth == 0:
                    raise DecoderClosedError(f"{what}: the decoder was closed (Decoder.close()); make a new "
                                             "wfst.Decoder to decode more")
                self._calls += 1
                entered = True
            self._depth.calls = depth + 1
            yield
        finally:
            self._depth.calls = depth
            if entered:
                with self._changed:
                    self._calls -= 1
                    let_go = self._take_let_go()
                    self._changed.notify_all()
                if let_go is not None:
                    let_go()

    def close(self, let_go: Callable[[], None]) -> None:
        """Refuse new calls, then run ``let_go`` once no call is in progress:
        after the calls of other threads return or, when this thread is itself
        inside a call (a signal handler), as the last call returns. A close
        interrupted while it waits leaves ``let_go`` to that last call; each
        close runs it again, so it must do nothing the second time."""
        with self._changed:
            self.closed = True
            self._let_go = let_go
            if getattr(self._depth, "calls", 0):
                return
            self._changed.wait_for(lambda: self._calls == 0)
            let_go = self._take_let_go()
        if let_go is not None:
            let_go()

    def _take_let_go(self) -> Callable[[], None] | None:
        """close()'s ``let_go`` to run now, if no call is in progress (lock held)."""
        if self._calls:
            return None
        let_go, self._let_go = self._let_go, None
        return let_go
