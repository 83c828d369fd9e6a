"""Closed-form memory budget of the CUDA decoder, known before anything is
allocated.

Symbols: ``S`` states, ``A`` arcs, ``E`` emitting arcs, ``P`` score columns
(``max_ilabel``, or ``max(pdf_map) + 1``; at least 1), ``Q`` token queue
capacity and ``X`` arc queue capacity (:class:`~wfst.config.DecoderConfig`,
derived from ``max_active``), ``H`` the smallest power of two >= 2Q (hash map slots), ``F``
frames of host scores staged per upload, ``W`` frames a lattice window's
frame table holds (``WINDOW_TABLE_FRAMES`` = 256), ``L`` lanes, ``C`` channels.
All sizes in bytes.

Device FST (uploaded once)::

    fst = 12 S + 8 + 8 A + w E,   w = 2 if P <= 65536 else 4

(``e_offsets`` and ``ne_offsets`` 4(S+1) each, final costs 4S, next state and
weight 4A each, score column of each emitting arc wE: 16-bit where it fits;
a graph without emitting arcs counts, and gets, one, so that every device
pointer is valid.)
Kaldi's cudadecoder CudaFst takes ``12 S + 8 A + 4 E``; we save 2E bytes on every
graph with fewer than 65,537 score columns, i.e. all of them in practice
(48 MB on the full TLG's 23.9 M emitting arcs).

Per lane (working memory of one batch slot, reset each frame)::

    lane = 188 Q + 220 X + 16 H + 4 P F + 64 W + 564

(token queue: hash slot, state, cost, best link, BFS hops and best arc, 6 x 4
bytes, plus the 64-bit prefix sum of the expanded tokens' out-degrees, 8 (Q + 1);
link queue: source, destination, arc, acoustic cost, 4 x 4; hash map slot:
state, cost key, dirty flag, token, 4 x 4; score staging for host input,
float32 P x F; 256 bytes of counters and 2 x 104 of parameters (the step's, and
the copy the window kernels read while the next step is searched); 3 x 16 for
the spans of the lane's emitting arcs, tokens and links in the step's flat
ranges; the lattice window,
room for ``WINDOW_CAPACITY`` = 6 worst-case frames, 20 bytes per token (state,
cost, best link, extra cost, new index) and 24 per link (source, destination,
arc, acoustic cost, excess, new index), and 64 per frame of its frame table:
6 (20 Q + 24 X) + 64 W; its share of the pruned windows packed for the copy
to the host, room for ``WINDOW_SEND_CAPACITY`` = 3 worst-case frames, 12 bytes
per token, 20 per link and 12 per frame, and 8 for the lane's pool size:
3 (12 Q + 20 X + 12) + 8.)

Per channel (an utterance's saved frontier between frames and chunks)::

    channel = 8 Q + 64          (state and cost per token; counters)

Pinned host memory (packed windows, score staging, counters, and
``PARAM_UPLOAD_SLOTS`` = 2 slots of 104 bytes the step's parameters are uploaded from)::

    pinned = L (36 Q + 60 X + 4 P F + 508)

Total device memory: ``fst + L * lane + C * channel``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import DecoderConfig, checked_config
from .csr import CsrFst, require_csr_fst
from .cuda_layout import WINDOW_FRAME_INTS
from .errors import ConfigError, GraphError, MemoryBudgetError

LANE_COUNTER_BYTES = 256
PARAM_ROW_BYTES = 104  # a lane's step parameters: 13 int64
LANE_PARAM_BYTES = 2 * PARAM_ROW_BYTES
LANE_SPAN_BYTES = 48  # the lane's emitting arcs, tokens and links in the step's flat ranges: int64 first, end
PARAM_UPLOAD_SLOTS = 2  # the search's and the step's end's (wfst.cuda_lane_group.SEARCH_SLOT, STORE_SLOT)
CHANNEL_COUNTER_BYTES = 64
TOKEN_QUEUE_BYTES = 32
"""Per token of a lane: six int32 rows and the int64 degree prefix sum (which has
one more entry: 8 bytes more per lane)."""
ARC_QUEUE_BYTES = 16
HASH_SLOT_BYTES = 16
CHANNEL_TOKEN_BYTES = 8
SEGMENT_TOKEN_BYTES = 12
SEGMENT_LINK_BYTES = 20
SEGMENT_FRAME_BYTES = 12
POOL_REPORT_BYTES = 8  # a keeping lane's pool size after the flush (tokens, links)
WINDOW_FRAMES = 16
"""Rows between a lane's regular lattice window flushes (staggered over the
lanes): the device prunes the window's frames against the newest and keeps what
is left in the lane's pool (cuda_kernels/lattice_window.cu). Fewer: less of the
pool held unpruned (so it holds longer utterances, which it then sends once,
pruned with the final costs: on the full TLG, 0.75% of the tokens searched
reach the host at 16, 1.6% at 32), more walks back on the device. A stream's
chunk ends its window, so partial results never wait for it."""
WINDOW_LAG = 8
"""Frames a flush keeps back at most (not at a job's end), as stored, to be
pruned again at the next flush against a newer frame: the frames next to the
newest keep nearly all their tokens, so pruning them later keeps fewer."""
WINDOW_CAPACITY = 6
"""Worst-case frames (Q tokens, X links) a window's pool holds: a lane flushes
its window early when the pool could not take one more, and keeps what it
prunes only while the pool would still take one if nothing were pruned. On the
full TLG, 4 sent 3.7% of the tokens searched to the host (longer utterances'
pools filled and were sent, pruned against their newest frame only), 6 sent
0.75%, 8 no fewer."""
WINDOW_SEND_CAPACITY = 3
"""Worst-case frames (Q tokens, X links) per lane the packed buffer holds: the
windows a step's flushes send, packed for the copy to the host, on the device
and pinned. The host's plan keeps every step within it: when what the lanes'
pools hold and a worst-case frame each might not fit at the next step, the
lanes that hold most send their pools now
(:func:`wfst.cuda_window_plan.plan_windows`). Fewer: 12 Q + 20 X bytes less
per lane each, on the device and pinned, and pools sent early more often
(pruned against a nearer frame, so more of their tokens reach the host). On the
full TLG (lm-medium, beam 15), what the pools held after a step came to at
most 0.89 worst-case frames per lane at 512 lanes and 1.40 at 8 lanes (a
frame is about 3% of the worst case; ``python -m bench.lattice_host --lanes
512``, results/lattice_host_full_lm-medium_pools_lanes*.json), so 3 sends
none early there; it was ``WINDOW_CAPACITY`` = 6, the pools' own size,
before the plan kept steps within it."""
WINDOW_TABLE_FRAMES = 256
"""Frames a lane's pool holds at most (its frame table): the frames its flushes
pruned and kept on the device (so the host gets an utterance's lattice once, at
its end, pruned with the final costs) and the window's. A pool whose kept frames
would leave no room for a window's sends them to the host at its next flush
(:mod:`wfst.cuda_window_plan`). More: long utterances sent in fewer pieces,
``WINDOW_FRAME_BYTES`` (64) of device memory per frame and lane."""
WINDOW_TOKEN_BYTES = 20
WINDOW_LINK_BYTES = 24
WINDOW_FRAME_BYTES = 4 * WINDOW_FRAME_INTS  # the frame table's int32 fields
DEFAULT_CHUNK_FRAMES = 64


MAX_LANES = 65535
"""CUDA's limit on a grid's second dimension, which holds the lanes."""


def lane_limit(config: DecoderConfig) -> int:
    """Most lanes the kernels take under ``config``: a grid's second dimension
    holds them (:data:`MAX_LANES`), and one step may pack every lane's full
    lattice pool, whose links (``WINDOW_CAPACITY`` x the arc queue capacity
    each) the kernels count in int32."""
    return min(MAX_LANES, (2**31 - 1) // (WINDOW_CAPACITY * config.arc_capacity))


def score_column_bytes(num_columns: int) -> int:
    """Bytes per emitting arc for its score column on the device."""
    return 2 if num_columns <= 1 << 16 else 4


def packed_lane_bytes(frames: int, Q: int, X: int) -> int:
    """A lane's share of the packed buffer: ``frames`` worst-case frames (``Q``
    tokens and ``X`` links each, and their counts) and its pool size."""
    return frames * (SEGMENT_TOKEN_BYTES * Q + SEGMENT_LINK_BYTES * X + SEGMENT_FRAME_BYTES) + POOL_REPORT_BYTES


def hash_slots(token_capacity: int) -> int:
    """Hash map slots per lane: the smallest power of two >= 2 * capacity."""
    return 1 << (2 * token_capacity - 1).bit_length()


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes the CUDA decoder allocates for one graph, config, lane and channel
    count. ``device_fst_arrays`` breaks the graph down array by array."""

    device_fst: int
    per_lane: int
    per_channel: int
    lanes: int
    channels: int
    pinned_host: int
    device_fst_arrays: dict = field(default_factory=dict)
    kaldi_device_fst: int = 0
    lane_limit: int = MAX_LANES  # most lanes the kernels take (:func:`lane_limit`)
    score_columns: int = 0  # P: the score columns staged for each lane's host scores (device and pinned)
    score_staging: int = 0  # bytes of those per lane: 4 P F

    @property
    def device_total(self) -> int:
        """Device bytes: the graph plus every lane and channel."""
        return self.device_fst + self.lanes * self.per_lane + self.channels * self.per_channel

    @property
    def total(self) -> int:
        """Device plus pinned host bytes."""
        return self.device_total + self.pinned_host

    def max_lanes(self, device_bytes: int) -> int:
        """Most lanes (with as many channels) that fit in ``device_bytes``, at
        most :attr:`lane_limit`."""
        room = device_bytes - self.device_fst
        return max(0, min(self.lane_limit, room // (self.per_lane + self.per_channel)))

    def max_lanes_pinned(self, host_bytes: int) -> int:
        """Most lanes whose pinned host memory fits in ``host_bytes``."""
        return min(self.lane_limit, host_bytes // (self.pinned_host // self.lanes))

    def check(self, device_bytes: int, host_bytes: int | None = None) -> "MemoryBudget":
        """Raise :class:`MemoryBudgetError` if this budget does not fit in
        ``device_bytes`` (e.g. the free memory of the GPU), or its pinned
        (page-locked) memory in ``host_bytes`` of host memory (None: not
        checked), saying what to change."""
        if self.device_fst > device_bytes:
            raise MemoryBudgetError(
                f"the graph alone needs {_size(self.device_fst)} of device memory, {_size(device_bytes)} "
                "available: use a smaller graph (prune the LM) or a GPU with more memory")
        if self.device_total > device_bytes:
            room = device_bytes - self.device_fst - self.channels * self.per_channel
            fits = max(0, min(self.lane_limit, room // self.per_lane))
            advice = (f"use at most {fits} lanes with these channels, fewer channels," if fits else
                      f"not one lane ({_size(self.per_lane)}) fits beside the graph and these channels: use "
                      "fewer channels")
            raise MemoryBudgetError(
                f"{self.lanes} lanes and {self.channels} channels need {_size(self.device_total)} of device "
                f"memory, {_size(device_bytes)} available: {advice} or {self._smaller_lanes()}")
        if host_bytes is not None and self.pinned_host > host_bytes:
            raise MemoryBudgetError(
                f"{self.lanes} lanes need {_size(self.pinned_host)} of pinned (page-locked) host memory, "
                f"{_size(host_bytes)} of host memory available: use at most {self.max_lanes_pinned(host_bytes)} "
                f"lanes or {self._smaller_lanes()}")
        return self

    def _smaller_lanes(self) -> str:
        """What makes a lane smaller: its queues, or where staging the scores
        takes most of it, fewer score columns."""
        if 2 * self.score_staging > self.per_lane:
            return (f"fewer score columns: the graph reads {self.score_columns:,} (its largest input label, or "
                    f"pdf_map's largest entry + 1), staged at {_size(self.score_staging)} a lane; number the "
                    "input labels densely or map them to columns with a pdf_map")
        return "a smaller max_active / token_queue_capacity"

    def as_dict(self) -> dict:
        """The byte counts by name (what ``wfst-info --json`` and the benchmark records hold)."""
        return {
            "device_fst": self.device_fst, "per_lane": self.per_lane, "per_channel": self.per_channel,
            "lanes": self.lanes, "channels": self.channels, "device_total": self.device_total,
            "pinned_host": self.pinned_host, "total": self.total, "kaldi_device_fst": self.kaldi_device_fst,
        }

    def __str__(self) -> str:
        return "\n".join([
            f"device FST      {_mib(self.device_fst)}  (Kaldi cudadecoder: {_mib(self.kaldi_device_fst)})",
            f"per lane        {_mib(self.per_lane)}  x {self.lanes} lanes",
            f"per channel     {_mib(self.per_channel)}  x {self.channels} channels",
            f"device total    {_mib(self.device_total)}",
            f"pinned host     {_mib(self.pinned_host)}",
        ])


def device_fst_arrays(fst: CsrFst, num_columns: int) -> dict:
    """Device bytes of each graph array: ``{name: (dtype, length)}``."""
    S, A, E = fst.num_states, fst.num_arcs, fst.num_emitting_arcs
    column = np.uint16 if score_column_bytes(num_columns) == 2 else np.int32
    return {
        "e_offsets": (np.int32, S + 1), "ne_offsets": (np.int32, S + 1), "final": (np.float32, S),
        "nextstate": (np.int32, A), "weight": (np.float32, A), "score_column": (column, max(E, 1)),
    }


def budget(fst: CsrFst, config: DecoderConfig | None = None, *, lanes: int = 1, channels: int | None = None,
           pdf_map=None, chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> MemoryBudget:
    """The closed-form budget of the module docstring for ``fst`` under ``config``.

    ``lanes``: utterances decoded at once; ``channels`` (default ``lanes``):
    utterances with saved state (streams open at once), at least ``lanes``;
    ``pdf_map``: Kaldi transition-id to pdf array, which sets the number of score
    columns; ``chunk_frames``: frames of host scores staged per upload.
    Bad arguments raise what :class:`wfst.Decoder` raises for them
    (:class:`GraphError` for something else than a CsrFst, :class:`ConfigError`
    for something else than a DecoderConfig, a count below 1).
    """
    fst, config = require_csr_fst(fst), checked_config(config)
    channels = lanes if channels is None else channels
    for name, value in (("lanes", lanes), ("channels", channels), ("chunk_frames", chunk_frames)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    lanes, channels, chunk_frames = int(lanes), int(channels), int(chunk_frames)  # (numpy ints would wrap)
    if channels < lanes:
        raise ConfigError(f"channels ({channels}) must be at least lanes ({lanes})")
    if pdf_map is not None and np.size(pdf_map) == 0:
        raise GraphError("pdf_map is empty: it maps each input label (transition id) to a score column (pdf)")
    P = max(fst.max_ilabel if pdf_map is None else int(np.max(pdf_map)) + 1, 1)  # (one staged column at least)
    Q, X = config.token_capacity, config.arc_capacity
    arrays = device_fst_arrays(fst, P)
    device_fst = sum(np.dtype(dtype).itemsize * length for dtype, length in arrays.values())
    window = (WINDOW_CAPACITY * (WINDOW_TOKEN_BYTES * Q + WINDOW_LINK_BYTES * X)
              + WINDOW_FRAME_BYTES * WINDOW_TABLE_FRAMES)
    packed = packed_lane_bytes(WINDOW_SEND_CAPACITY, Q, X)
    per_lane = (TOKEN_QUEUE_BYTES * Q + 8 + ARC_QUEUE_BYTES * X + HASH_SLOT_BYTES * hash_slots(Q)
                + 4 * P * chunk_frames + LANE_COUNTER_BYTES + LANE_PARAM_BYTES + LANE_SPAN_BYTES + window + packed)
    per_channel = CHANNEL_TOKEN_BYTES * Q + CHANNEL_COUNTER_BYTES
    pinned = lanes * (packed + 4 * P * chunk_frames + LANE_COUNTER_BYTES
                      + PARAM_UPLOAD_SLOTS * PARAM_ROW_BYTES)
    kaldi = 12 * fst.num_states + 8 * fst.num_arcs + 4 * fst.num_emitting_arcs
    return MemoryBudget(int(device_fst), int(per_lane), int(per_channel), int(lanes), int(channels), int(pinned),
                        {name: np.dtype(d).itemsize * n for name, (d, n) in arrays.items()}, int(kaldi),
                        lane_limit(config), P, 4 * P * chunk_frames)


def _mib(n: int) -> str:
    """Bytes in the largest binary unit that keeps the number >= 1."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:9.2f} {unit}"
    return f"{n:9d} B  "


def _size(n: int) -> str:
    """Bytes in the largest binary unit that keeps the number >= 1, unpadded."""
    return _mib(n).strip()
