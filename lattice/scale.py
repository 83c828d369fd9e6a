"""Cost scaling and word insertion penalty, as Kaldi's ``lattice-scale`` and
``lattice-add-penalty`` do (scaling for lattices and compact lattices alike). Both return a new lattice; non-final states stay
non-final (``inf`` is never scaled to NaN)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .compact_lattice import CompactLattice
from .errors import LatticeError
from .lattice import Lattice


def _finite(name: str, value) -> float:
    """``value`` as a float; :class:`LatticeError` unless it is a number finite in float32."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or abs(float(value)) > float(np.finfo(np.float32).max):
        raise LatticeError(f"{name} must be a number finite in float32 (the costs' type), got {value!r}")
    return float(value)


def _scaled(costs: np.ndarray, factor: float) -> np.ndarray:
    """``costs * factor`` in float32, infinities kept (``inf * 0`` is not NaN)."""
    out = costs.astype(np.float32)  # a copy
    finite = ~np.isinf(out)
    out[finite] *= np.float32(factor)
    return out


def scale(lattice: Lattice | CompactLattice, acoustic: float = 1.0, graph: float = 1.0) -> Lattice | CompactLattice:
    """Acoustic costs times ``acoustic``, graph costs times ``graph`` (arcs and
    final costs) of a :class:`Lattice` or a :class:`CompactLattice`. E.g.
    ``scale(acoustic=1 / 0.5)`` undoes a decode at acoustic scale 0.5 before
    writing for Kaldi's tools."""
    acoustic = _finite("acoustic", acoustic)
    graph = _finite("graph", graph)
    return dataclasses.replace(
        lattice, arc_graph_cost=_scaled(lattice.arc_graph_cost, graph),
        arc_acoustic_cost=_scaled(lattice.arc_acoustic_cost, acoustic),
        final_graph_cost=_scaled(lattice.final_graph_cost, graph),
        final_acoustic_cost=_scaled(lattice.final_acoustic_cost, acoustic))


def add_word_penalty(lattice: Lattice, penalty: float) -> Lattice:
    """``penalty`` added to the graph cost of each arc with an output label
    (positive: fewer words win)."""
    penalty = _finite("penalty", penalty)
    graph = lattice.arc_graph_cost + np.where(lattice.arc_olabel != 0, np.float32(penalty), np.float32(0.0))
    return Lattice(lattice.state_frame, lattice.arc_src, lattice.arc_dst, lattice.arc_ilabel, lattice.arc_olabel,
                   graph.astype(np.float32), lattice.arc_acoustic_cost, lattice.final_graph_cost,
                   lattice.final_acoustic_cost)
