"""Invariant checks of :class:`lattice.Lattice` (see its module docstring)."""

from __future__ import annotations

import numpy as np

from .errors import LatticeError
from .lattice import Lattice

_FIELDS = (("state_frame", np.int32, "S"), ("arc_src", np.int32, "A"), ("arc_dst", np.int32, "A"),
           ("arc_ilabel", np.int32, "A"), ("arc_olabel", np.int32, "A"), ("arc_graph_cost", np.float32, "A"),
           ("arc_acoustic_cost", np.float32, "A"), ("final_graph_cost", np.float32, "S"),
           ("final_acoustic_cost", np.float32, "S"))


def _fail(lattice: Lattice, name: str, bad: np.ndarray, what: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LatticeError(f"{lattice!r}: {name}[{i}] {what}")


def validate_lattice(lattice: Lattice) -> None:
    """Raise :class:`LatticeError` at the first broken invariant: dtypes and
    lengths, state ids in range, ``arc_src < arc_dst``, arcs sorted by source,
    frames non-decreasing from 0, emitting arcs advancing one frame and epsilon
    arcs none, costs not NaN, final costs ``inf`` in both parts or in neither."""
    sizes = {"S": lattice.num_states, "A": lattice.num_arcs}
    for name, dtype, size in _FIELDS:
        array = getattr(lattice, name)
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != (sizes[size],):
            raise LatticeError(f"{name} must be a 1-D {np.dtype(dtype).name} array of length {sizes[size]} "
                               f"({size}), got {getattr(array, 'dtype', type(array).__name__)} of shape "
                               f"{np.shape(array)}")
    s = lattice.num_states
    if s == 0:
        if lattice.num_arcs:
            raise LatticeError("a lattice without states cannot have arcs")
        return
    src, dst, frame = lattice.arc_src, lattice.arc_dst, lattice.state_frame
    _fail(lattice, "arc_src", (src < 0) | (src >= s), f"is not a state id (0..{s - 1})")
    _fail(lattice, "arc_dst", (dst <= src) | (dst >= s), "is not a state after its source (arc_src < arc_dst)")
    _fail(lattice, "arc_src", np.append(False, np.diff(src) < 0), "breaks the sort by source state")
    _fail(lattice, "state_frame", np.append(frame[0] != 0, np.diff(frame) < 0),
          "breaks the frame order (state 0 in frame 0, then non-decreasing)")
    step = frame[dst] - frame[src]
    _fail(lattice, "arc_ilabel", (lattice.arc_ilabel != 0) != (step == 1),
          "does not match its frames (an emitting arc advances one frame, an epsilon arc none)")
    _fail(lattice, "arc_ilabel", (step < 0) | (step > 1), "joins states more than one frame apart")
    for name in ("arc_graph_cost", "arc_acoustic_cost", "final_graph_cost", "final_acoustic_cost"):
        _fail(lattice, name, np.isnan(getattr(lattice, name)), "is NaN")
    _fail(lattice, "final_graph_cost", np.isinf(lattice.final_graph_cost) != np.isinf(lattice.final_acoustic_cost),
          "is infinite in one part only (inf in both means not final)")
