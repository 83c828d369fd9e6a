"""Lattices shared by both decoder backends: the per-frame segment format the
searches produce, and (to come) assembly into ``Lattice`` with its operations."""

from .segments import LatticeSegments

__all__ = ["LatticeSegments"]
