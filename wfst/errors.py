"""Typed errors of wfst-gpu.

Every error subclasses :class:`WfstError` and, where one fits, the builtin kind a
caller would already catch (``ValueError``, ``MemoryError``), as pywrapfst does.
"""

from __future__ import annotations


class WfstError(Exception):
    """Root of every error raised on purpose by wfst-gpu."""


class FstFormatError(WfstError, ValueError):
    """A malformed, truncated or unsupported FST or symbol-table file, or an FST
    whose arrays break a :class:`wfst.CsrFst` invariant.

    ``path`` and ``offset`` (bytes from the start of the file; for text files the
    line number is in the message) say where, when known.
    """

    def __init__(self, message: str, path: str | None = None, offset: int | None = None):
        self.reason = message
        self.path = path
        self.offset = offset
        where = []
        if path is not None:
            where.append(str(path))
        if offset is not None:
            where.append(f"byte {offset}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class MemoryBudgetError(WfstError, MemoryError):
    """A graph or batch does not fit in the memory available for it; raised before
    anything is allocated."""


class ConfigError(WfstError, ValueError):
    """A decoder configuration value is out of range or inconsistent."""


class GraphError(WfstError, ValueError):
    """A graph that cannot be decoded: empty, without a start state, with a
    negative-cost epsilon cycle, or with input labels the pdf map does not cover."""


class ScoresError(WfstError, ValueError):
    """A score matrix the decoder cannot use: wrong type, dtype or rank, NaN or
    infinite values, or fewer columns than the graph reads."""


class DecoderClosedError(WfstError, RuntimeError):
    """A :class:`wfst.Decoder`, or one of its streams, used after
    :meth:`wfst.Decoder.close` (a stream's ``close()`` stays a no-op)."""


class CapacityWarning(UserWarning):
    """A GPU lane's token or arc queue overflowed: the frame was searched again
    with a tighter beam. The message names the DecoderConfig field to raise
    (``token_queue_capacity`` or ``arc_queue_capacity``)."""


class StreamError(WfstError, RuntimeError):
    """A :class:`wfst.Stream` used out of turn: a chunk, ``partial()``,
    ``endpoint_detected()`` or ``finish()`` after the stream finished or was
    closed, a call while another thread's call on the same stream is in
    progress, ``endpoint_detected()`` on a stream made without an
    :class:`wfst.EndpointConfig`, more open streams than the decoder's
    ``channels``, a stream given to another decoder's ``advance``, or one stream
    twice in one ``advance``. Raised before anything changes, so other streams
    (and, except after finish/close, this one) are left as they were."""
