"""Lattices shared by both decoder backends: the per-frame segment format the
searches produce, its assembly into a state-level ``Lattice`` and the word-level
``CompactLattice``."""

from .compact_lattice import CompactLattice
from .kaldi_archive import read_lattices, write_lattices
from .lattice import Lattice
from .segments import LatticeSegments
from .best_path import LatticePath
from .errors import LatticeError
from .lexicon_alignment import AlignmentLexicon, WordAlignmentError

__all__ = ["AlignmentLexicon", "CompactLattice", "Lattice", "LatticeError", "LatticePath", "LatticeSegments",
           "WordAlignmentError", "read_lattices", "write_lattices"]
