"""A :class:`CsrFst` checked and prepared for decoding, shared by both backends.

Preparation is done once per decoder: the checks that make a search well defined
(the CsrFst invariants, a start state, no negative-cost epsilon cycle) and the map
from input label to score column (``ilabel - 1``, or ``pdf_map[ilabel]``).
"""

from __future__ import annotations

import threading

import numba
import numpy as np

from .csr import CsrFst, require_csr_fst
from .errors import GraphError


class DecodingGraph:
    """A validated graph plus its label-to-column map.

    ``column_of_ilabel``: int32, length ``max_ilabel + 1``; entry ``i`` is the score
    column an emitting arc with input label ``i`` reads (entry 0 is unused, -1).
    ``num_columns``: the narrowest score matrix the graph can be decoded with
    (1 + the largest column any emitting arc reads; 0 without emitting arcs).

    For the CPU search, :meth:`host_layout` packs what one expansion reads into
    as few cache lines as possible (12 bytes per arc, 8 per state).
    """

    def __init__(self, fst: CsrFst, pdf_map=None):
        # FstFormatError: a graph built in memory may break an invariant the search relies on
        require_csr_fst(fst).validate()
        if fst.num_states == 0:
            raise GraphError("the graph has no states; nothing can be decoded")
        if fst.start < 0:
            raise GraphError("the graph has no start state; set one (OpenFst: fst.set_start) before decoding")
        self.fst = fst
        self.column_of_ilabel = _column_map(fst, pdf_map)
        emitting_labels = np.unique(fst.ilabel[: fst.num_emitting_arcs])
        columns = self.column_of_ilabel[emitting_labels]
        self.num_columns = int(columns.max()) + 1 if columns.size else 0
        self._host_layout = None
        self._host_layout_lock = threading.Lock()
        cycle_state = negative_epsilon_cycle_state(fst.ne_offsets, fst.nextstate, fst.weight)
        if cycle_state >= 0:
            raise GraphError(f"the graph has a negative-cost epsilon cycle through state {cycle_state}: the best "
                             "path is unbounded. Remove it (e.g. push weights or fix the grammar) before decoding")

    def host_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(state_arcs, arc_int, arc_float), built on first use, once whichever
        threads ask at once (:func:`_packed_layout`)."""
        with self._host_layout_lock:
            if self._host_layout is None:
                self._host_layout = _packed_layout(self.fst)
        return self._host_layout

    def forget_host_layout(self) -> None:
        """Let the packed layout go (a closed decoder's); built again if asked."""
        with self._host_layout_lock:
            self._host_layout = None


def _packed_layout(fst: CsrFst) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What one CPU expansion reads, in few cache lines:

    * ``state_arcs`` int32 (S + 1, 2): ``[e_offsets[s], ne_offsets[s]]``, so that
      both arc ranges of a state come from one cache line;
    * ``arc_int`` int32 (A, 3): ``[nextstate, ilabel, weight bits]`` per arc;
    * ``arc_float``: the same memory as float32, ``arc_float[a, 2]`` the weight.
    """
    state_arcs = np.stack([fst.e_offsets, fst.ne_offsets], axis=1).astype(np.int32)
    arc_int = np.empty((fst.num_arcs, 3), np.int32)
    arc_int[:, 0] = fst.nextstate
    arc_int[:, 1] = fst.ilabel
    arc_int[:, 2] = fst.weight.view(np.int32)
    return state_arcs, arc_int, arc_int.view(np.float32)


def _column_map(fst: CsrFst, pdf_map) -> np.ndarray:
    size = fst.max_ilabel + 1
    if pdf_map is None:
        columns = np.arange(-1, size - 1, dtype=np.int32)
        columns[0] = -1
        return columns
    pdf_map = np.asarray(pdf_map)
    if pdf_map.ndim != 1 or not np.issubdtype(pdf_map.dtype, np.integer):
        raise GraphError(f"pdf_map must be a 1-D integer array indexed by input label, got shape "
                         f"{pdf_map.shape} and dtype {pdf_map.dtype}")
    if pdf_map.shape[0] < size:
        raise GraphError(f"pdf_map has {pdf_map.shape[0]} entries (input labels 0..{pdf_map.shape[0] - 1}) but "
                         f"the graph uses input labels up to {size - 1}; it needs at least {size} (is it the map "
                         "of this graph's model?)")
    if pdf_map.size and pdf_map.max() > np.iinfo(np.int32).max:
        bad = int(np.argmax(pdf_map))
        raise GraphError(f"pdf_map[{bad}] = {int(pdf_map[bad])} is beyond the score columns a decoder reads "
                         f"(at most {np.iinfo(np.int32).max}); it should map each input label to a column "
                         "of the score matrix")
    columns = pdf_map[:size].astype(np.int32)
    used = np.unique(fst.ilabel[: fst.num_emitting_arcs])
    if used.size and columns[used].min() < 0:
        bad = int(used[np.argmin(columns[used])])
        raise GraphError(f"pdf_map[{bad}] = {int(pdf_map[bad])} is negative, but input label {bad} is used by "
                         "emitting arcs: the map has no column for it (a transition id missing from a map file?)")
    columns[0] = -1
    return columns


@numba.njit(cache=True, nogil=True)
def negative_epsilon_cycle_state(ne_offsets, nextstate, weight):
    """A state on a negative-cost cycle of epsilon-input arcs, or -1 if none.

    Bellman-Ford (FIFO queue) from a virtual source joined to every state at cost 0,
    in float64 over the epsilon arcs: only states reached more cheaply than 0 are
    ever queued, so a graph without negative epsilon arcs costs one pass over the
    states. A state whose best path needs ``S`` arcs lies behind a negative cycle.
    """
    num_states = ne_offsets.shape[0] - 1
    dist = np.zeros(num_states, np.float64)
    hops = np.zeros(num_states, np.int64)
    queued = np.ones(num_states, np.bool_)
    queue = np.empty(num_states, np.int64)
    for s in range(num_states):
        queue[s] = s
    head = 0
    size = num_states
    while size > 0:
        s = queue[head]
        head = (head + 1) % num_states
        size -= 1
        queued[s] = False
        for a in range(ne_offsets[s], ne_offsets[s + 1]):
            t = nextstate[a]
            d = dist[s] + weight[a]
            if d < dist[t]:
                dist[t] = d
                hops[t] = hops[s] + 1
                if hops[t] >= num_states:
                    return t
                if not queued[t]:
                    queued[t] = True
                    queue[(head + size) % num_states] = t
                    size += 1
    return -1
