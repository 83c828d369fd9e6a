"""Typed errors of the lattice operations."""

from __future__ import annotations

from wfst.errors import WfstError


class LatticeError(WfstError, ValueError):
    """A lattice operation used wrongly (e.g. ``nbest(0)``, a non-finite scale)
    or a lattice whose arrays break the :class:`lattice.Lattice` /
    :class:`lattice.CompactLattice` invariants."""
