"""Lattices shared by both decoder backends: the per-frame segment format the
searches produce, its assembly into a state-level ``Lattice`` and the word-level
``CompactLattice``."""

from .compact_lattice import CompactLattice
from .lattice import Lattice
from .segments import LatticeSegments

__all__ = ["CompactLattice", "Lattice", "LatticeSegments"]
