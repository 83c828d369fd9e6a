"""Kaldi lattices as FSTs in any state order, brought into the invariants of
:class:`~lattice.Lattice` and :class:`~lattice.CompactLattice`.

Kaldi and OpenFst number states freely (any start state, arcs in both
directions); readers and :mod:`lattice.convert` build arcs that way and call
:func:`build_lattice` / :func:`build_compact_lattice`, which

* drop states the start state does not reach (they lie on no path);
* renumber the rest topologically, the start state 0: among the states whose
  predecessors are all numbered, the one with the lowest old id comes next, so
  an FST already in topological order with start 0 keeps its numbering;
* for a ``Lattice``, count the non-epsilon input labels from the start
  (``state_frame``) and order states by frame, then by that topological rank;
* keep each state's arcs in their given order.

A cycle, or a state reached after different numbers of frames (a ``Lattice``
only), raises :class:`KaldiLatticeError`.
"""

from __future__ import annotations

import heapq

import numpy as np

from .compact_lattice import CompactLattice
from .errors import LatticeError
from .lattice import Lattice


class KaldiLatticeError(LatticeError):
    """A malformed Kaldi lattice archive or object, a lattice our types cannot
    hold (cyclic; a state reached after different numbers of frames), or a key
    or lattice that cannot be written.

    ``path``, ``key`` (the archive entry), ``offset`` (bytes from the start of
    the archive) and ``line`` (1-based, text archives) say where, when known.
    """

    def __init__(self, message: str, path=None, key: str | None = None,
                 offset: int | None = None, line: int | None = None):
        self.reason, self.path, self.key, self.offset, self.line = message, path, key, offset, line
        where = [str(path)] if path is not None else []
        if key is not None:
            where.append(f"key {key!r}")
        if line is not None:
            where.append(f"line {line}")
        elif offset is not None:
            where.append(f"byte {offset}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def located(self, path=None, key=None, offset=None, line=None) -> KaldiLatticeError:
        """This error with the location filled in where it was unknown."""
        return KaldiLatticeError(self.reason, self.path if self.path is not None else path,
                                 self.key if self.key is not None else key,
                                 self.offset if self.offset is not None else offset,
                                 self.line if self.line is not None else line)


def topological_order(num_states: int, start: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Old ids of the states reachable from ``start`` in topological order
    (lowest old id first among the ready ones); empty when ``start`` is -1.
    Raises :class:`KaldiLatticeError` on a cycle."""
    if start < 0:
        return np.zeros(0, dtype=np.int64)
    if start == 0 and bool(np.all(src < dst)):
        indegree = np.bincount(dst, minlength=num_states)
        if num_states == 1 or bool(np.all(indegree[1:] > 0)):
            return np.arange(num_states, dtype=np.int64)  # sorted, and every state reached
    order_by_src = np.argsort(src, kind="stable")
    row_splits = np.searchsorted(src[order_by_src], np.arange(num_states + 1))
    succ = dst[order_by_src].tolist()
    splits = row_splits.tolist()
    reached = np.zeros(num_states, dtype=bool)
    stack = [start]
    reached[start] = True
    while stack:  # reachability, then Kahn's algorithm on the reached states
        s = stack.pop()
        for d in succ[splits[s]:splits[s + 1]]:
            if not reached[d]:
                reached[d] = True
                stack.append(d)
    live = reached[src]
    indegree = np.bincount(dst[live], minlength=num_states).tolist()
    ready = [start] if indegree[start] == 0 else []
    order = []
    while ready:
        s = heapq.heappop(ready)
        order.append(s)
        for d in succ[splits[s]:splits[s + 1]]:
            indegree[d] -= 1
            if indegree[d] == 0:
                heapq.heappush(ready, d)
    if len(order) < int(reached.sum()):
        stuck = int(np.flatnonzero(reached & (np.asarray(indegree) > 0))[0])
        raise KaldiLatticeError(f"the lattice has a cycle (through state {stuck}); lattices must be acyclic")
    return np.asarray(order, dtype=np.int64)


def _ragged_take(starts: np.ndarray, values: np.ndarray, index: np.ndarray):
    """Rows ``index`` of the ragged array ``(starts, values)`` as a new one."""
    lengths = (starts[1:] - starts[:-1])[index]
    new_starts = np.zeros(len(index) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_starts[1:])
    within = np.arange(new_starts[-1], dtype=np.int64) - np.repeat(new_starts[:-1], lengths)
    return new_starts, values[np.repeat(starts[:-1][index], lengths) + within].astype(np.int32)


def _renumber(num_states, order, src, dst):
    """``(new_id of each old state (-1: dropped), kept arcs sorted by new
    source, stably)``."""
    new_id = np.full(num_states, -1, dtype=np.int64)
    new_id[order] = np.arange(len(order))
    kept = np.flatnonzero(new_id[src] >= 0)
    kept = kept[np.argsort(new_id[src[kept]], kind="stable")]
    return new_id, kept


def build_lattice(start, final_graph, final_acoustic, src, dst, ilabel, olabel, graph, acoustic) -> Lattice:
    """A :class:`Lattice` from Kaldi ``Lattice`` arrays in any state order
    (``start`` -1: empty); see the module docstring."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    ilabel = np.asarray(ilabel, dtype=np.int32)
    num_states = len(final_graph)
    order = topological_order(num_states, start, src, dst)
    new_id, kept = _renumber(num_states, order, src, dst)
    s, d, emits = new_id[src[kept]].tolist(), new_id[dst[kept]].tolist(), (ilabel[kept] != 0).tolist()
    frame = [-1] * len(order)
    if order.size:
        frame[0] = 0
    for a, b, e in zip(s, d, emits):  # sources come in topological order
        if frame[b] < 0:
            frame[b] = frame[a] + e
        elif frame[b] != frame[a] + e:
            raise KaldiLatticeError(
                f"state {int(order[b])} is reached after both {frame[b]} and {frame[a] + e} frames; a Lattice "
                "needs every path to a state to read the same number of frames (read it as a CompactLattice)")
    frame = np.asarray(frame, dtype=np.int64)
    by_frame = np.argsort(frame, kind="stable")  # a topological order too: arcs never go back in time
    order = order[by_frame]
    new_id, kept = _renumber(num_states, order, src, dst)
    return Lattice(
        state_frame=frame[by_frame].astype(np.int32),
        arc_src=new_id[src[kept]].astype(np.int32),
        arc_dst=new_id[dst[kept]].astype(np.int32),
        arc_ilabel=ilabel[kept],
        arc_olabel=np.asarray(olabel, dtype=np.int32)[kept],
        arc_graph_cost=np.asarray(graph, dtype=np.float32)[kept],
        arc_acoustic_cost=np.asarray(acoustic, dtype=np.float32)[kept],
        final_graph_cost=np.asarray(final_graph, dtype=np.float32)[order],
        final_acoustic_cost=np.asarray(final_acoustic, dtype=np.float32)[order],
    )


def build_compact_lattice(start, final_graph, final_acoustic, final_string_start, final_string,
                          src, dst, word, graph, acoustic, string_start, string) -> CompactLattice:
    """A :class:`CompactLattice` from Kaldi ``CompactLattice`` arrays in any
    state order (``start`` -1: empty; strings ragged as in the dataclass); see
    the module docstring."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    num_states = len(final_graph)
    order = topological_order(num_states, start, src, dst)
    new_id, kept = _renumber(num_states, order, src, dst)
    arc_string_start, arc_string = _ragged_take(np.asarray(string_start, dtype=np.int64),
                                                np.asarray(string, dtype=np.int32), kept)
    final_start, final = _ragged_take(np.asarray(final_string_start, dtype=np.int64),
                                      np.asarray(final_string, dtype=np.int32), order)
    return CompactLattice(
        arc_src=new_id[src[kept]].astype(np.int32),
        arc_dst=new_id[dst[kept]].astype(np.int32),
        arc_word=np.asarray(word, dtype=np.int32)[kept],
        arc_graph_cost=np.asarray(graph, dtype=np.float32)[kept],
        arc_acoustic_cost=np.asarray(acoustic, dtype=np.float32)[kept],
        string_start=arc_string_start,
        string=arc_string,
        final_graph_cost=np.asarray(final_graph, dtype=np.float32)[order],
        final_acoustic_cost=np.asarray(final_acoustic, dtype=np.float32)[order],
        final_string_start=final_start,
        final_string=final,
    )
