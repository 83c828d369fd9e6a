"""A :class:`lattice.Lattice` as a ``pynini.Fst`` (tropical weights: graph plus
acoustic cost). pynini is imported on first use only."""

from __future__ import annotations

import numpy as np

from .lattice import Lattice


def lattice_to_pynini(lattice: Lattice):
    """A mutable ``pynini.Fst`` with the lattice's states (same numbers, start
    0), arcs (same labels; weight ``graph + acoustic`` in float32) and final
    costs. Needs pynini (``pip install pynini``)."""
    try:
        import pynini
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("Lattice.to_pynini needs pynini: pip install pynini") from error
    if lattice.num_states == 0:
        return pynini.Fst()
    from wfst.csr import CsrFst

    total = (lattice.arc_graph_cost.astype(np.float64) + lattice.arc_acoustic_cost).astype(np.float32)
    final = lattice.final_costs().astype(np.float32)
    fst = CsrFst.from_arcs(lattice.num_states, 0, final, lattice.arc_src, lattice.arc_dst, lattice.arc_ilabel,
                           lattice.arc_olabel, total)
    return fst.to_pynini()
