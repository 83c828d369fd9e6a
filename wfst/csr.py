"""The decoding graph in compressed sparse row (CSR) form, emitting and
non-emitting arcs apart.

Index naming (used everywhere in wfst-gpu, on the host and in the kernels):

``S``, ``A``, ``E``, ``N``
    number of states, of arcs, of emitting arcs (``ilabel != 0``) and of
    non-emitting arcs (``ilabel == 0``, epsilon input); ``A = E + N``.
``s`` -- a state id, ``0 <= s < S``, exactly as numbered in the source file.
``a`` -- an arc index, ``0 <= a < A``. Arcs are stored in two blocks:

    * the emitting block, ``0 <= a < E``: the emitting arcs of state ``s`` are
      ``e_offsets[s] <= a < e_offsets[s + 1]``;
    * the non-emitting block, ``E <= a < A``: the non-emitting arcs of state
      ``s`` are ``ne_offsets[s] <= a < ne_offsets[s + 1]``.

    ``e_offsets`` and ``ne_offsets`` are the two ``row_splits`` arrays (length
    ``S + 1``, int32, non-decreasing; ``e_offsets[0] = 0``, ``e_offsets[S] = E``,
    ``ne_offsets[0] = E``, ``ne_offsets[S] = A``). Within a state, arcs keep the
    order of the source file.

Per-arc arrays (length ``A``): ``nextstate`` (int32), ``weight`` (float32
tropical cost), ``ilabel`` and ``olabel`` (int32). Per-state: ``final``
(float32 cost, ``+inf`` = not final). ``start`` is a state id or -1 (no start
state, as OpenFst's ``kNoStateId``).

Invariants checked by :meth:`CsrFst.validate`: the shapes and dtypes above;
offsets as described; ``0 <= nextstate < S``; ``ilabel >= 1`` in the emitting
block and ``ilabel == 0`` in the non-emitting block; ``olabel >= 0``; weights
and final costs neither NaN nor ``-inf``; ``-1 <= start < S``; fewer than 2**31
arcs and states (indices are int32 on the device).
"""

from __future__ import annotations

import os
import dataclasses
from dataclasses import dataclass

import numpy as np

from .errors import FstFormatError, GraphError

INDEX_LIMIT = 2**31 - 1
"""Largest number of states or arcs: indices are int32 on the device."""

ARC_FIELDS = ("nextstate", "weight", "ilabel", "olabel")
ARC_DTYPES = {"nextstate": np.int32, "weight": np.float32, "ilabel": np.int32, "olabel": np.int32}
ARC_RECORD = np.dtype([(name, ARC_DTYPES[name]) for name in ARC_FIELDS])


class InvariantError(FstFormatError):
    """A broken :class:`CsrFst` invariant; ``array`` and ``index`` name the first
    offending element so that file readers can turn it into a byte offset."""

    def __init__(self, message: str, array: str | None = None, index: int | None = None):
        super().__init__(message)
        self.array = array
        self.index = index


@dataclass(frozen=True, eq=False)
class CsrFst:
    """A weighted FST (tropical semiring) in CSR layout; see the module docstring
    for the index naming and invariants. The arrays are read-only views of
    those given (which stay as they were; a memory-mapped cache is never
    written): every graph reaches the numba functions as the same array types,
    so each compiles once, whether the graph came from a file, a cache or
    pynini."""

    start: int
    final: np.ndarray
    e_offsets: np.ndarray
    ne_offsets: np.ndarray
    nextstate: np.ndarray
    weight: np.ndarray
    ilabel: np.ndarray
    olabel: np.ndarray

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if field.name != "start":
                view = np.asarray(getattr(self, field.name)).view()
                view.flags.writeable = False
                object.__setattr__(self, field.name, view)

    # ----------------------------------------------------------------- sizes
    @property
    def num_states(self) -> int:
        """States, numbered ``0 .. num_states - 1``."""
        return int(self.final.shape[0])

    @property
    def num_arcs(self) -> int:
        """Arcs, emitting and non-emitting."""
        return int(self.nextstate.shape[0])

    @property
    def num_emitting_arcs(self) -> int:
        """Arcs with ``ilabel != 0`` (they read a score row); they come first."""
        return int(self.e_offsets[-1])

    @property
    def num_epsilon_arcs(self) -> int:
        """Arcs with ``ilabel == 0`` (non-emitting)."""
        return self.num_arcs - self.num_emitting_arcs

    @property
    def num_final_states(self) -> int:
        """States with a finite final cost."""
        return int(np.count_nonzero(self.final != np.inf))

    @property
    def max_ilabel(self) -> int:
        """Largest input label (0 when there is no emitting arc)."""
        return int(self.ilabel.max()) if self.num_arcs else 0

    @property
    def max_olabel(self) -> int:
        """Largest output label (0 when the graph has no arc)."""
        return int(self.olabel.max()) if self.num_arcs else 0

    def __repr__(self) -> str:
        return (
            f"CsrFst(states={self.num_states}, arcs={self.num_arcs}, "
            f"emitting={self.num_emitting_arcs}, start={self.start})"
        )

    # ----------------------------------------------------------- construction
    @classmethod
    def from_arcs(
        cls,
        num_states: int,
        start: int,
        final: np.ndarray,
        src: np.ndarray,
        nextstate: np.ndarray,
        ilabel: np.ndarray,
        olabel: np.ndarray,
        weight: np.ndarray,
    ) -> "CsrFst":
        """Build the CSR layout from arcs in any order (``src`` is each arc's
        source state). Arcs of one state keep their relative order. Does not
        validate labels, weights or next states: call :meth:`validate`."""
        src = np.asarray(src)
        num_arcs = src.shape[0]
        if num_arcs and (src.min() < 0 or src.max() >= num_states):
            bad = int(np.flatnonzero((src < 0) | (src >= num_states))[0])
            raise InvariantError(f"arc {bad} leaves state {int(src[bad])}, not in [0, {num_states})", "src", bad)
        arcs = np.empty(num_arcs, dtype=ARC_RECORD)
        for name, values in (("nextstate", nextstate), ("weight", weight), ("ilabel", ilabel), ("olabel", olabel)):
            arcs[name] = values
        if num_arcs > 1 and np.any(src[1:] < src[:-1]):
            order = np.argsort(src, kind="stable")
            src, arcs = src[order], arcs[order]
        row_splits = np.zeros(num_states + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=num_states), out=row_splits[1:])
        return cls.from_arc_records(start, final, row_splits, arcs)

    @classmethod
    def from_arc_records(cls, start: int, final: np.ndarray, row_splits: np.ndarray, arcs: np.ndarray) -> "CsrFst":
        """Build the CSR layout from arc records already grouped by source state:
        state ``s`` owns ``arcs[row_splits[s]:row_splits[s + 1]]``. ``arcs`` is a
        structured array with fields ``nextstate, weight, ilabel, olabel`` (an
        OpenFst file's arc records, memory-mapped, work as they are). Does not
        validate: call :meth:`validate`."""
        num_states, num_arcs = len(row_splits) - 1, len(arcs)
        if num_states > INDEX_LIMIT or num_arcs > INDEX_LIMIT:
            raise InvariantError(
                f"{num_states} states and {num_arcs} arcs: at most {INDEX_LIMIT} of each are supported"
            )
        emitting = arcs["ilabel"] != 0
        emitting_before = np.zeros(num_arcs + 1, dtype=np.int64)
        np.cumsum(emitting, out=emitting_before[1:])
        e_offsets = emitting_before[row_splits]
        num_emitting = int(e_offsets[-1])
        ne_offsets = num_emitting + np.asarray(row_splits, dtype=np.int64) - e_offsets
        # Gather whole records through a raw view: numpy copies fixed-size blobs
        # several times faster than structured records.
        raw = arcs.view(np.dtype(f"V{arcs.dtype.itemsize}"))
        blocks = [raw[emitting].view(arcs.dtype), raw[~emitting].view(arcs.dtype)]
        fields = {
            name: np.concatenate([block[name] for block in blocks]).astype(ARC_DTYPES[name], copy=False)
            for name in ARC_FIELDS
        }
        return cls(
            start=int(start),
            final=np.ascontiguousarray(final, dtype=np.float32),
            e_offsets=e_offsets.astype(np.int32),
            ne_offsets=ne_offsets.astype(np.int32),
            **fields,
        )

    # ------------------------------------------------------------ inspection
    def arc_sources(self) -> np.ndarray:
        """Source state of every arc, int32, shape ``(A,)``."""
        states = np.arange(self.num_states, dtype=np.int32)
        return np.concatenate(
            [np.repeat(states, np.diff(self.e_offsets)), np.repeat(states, np.diff(self.ne_offsets))]
        )

    def arc_table(self) -> np.ndarray:
        """All arcs as one structured array (``src, ilabel, olabel, weight,
        nextstate``) sorted lexicographically: two FSTs with the same state
        numbering have equal tables if and only if every state has the same
        multiset of arcs, whatever their order."""
        table = np.empty(
            self.num_arcs,
            dtype=[("src", np.int32), ("ilabel", np.int32), ("olabel", np.int32),
                   ("weight", np.float32), ("nextstate", np.int32)],
        )
        table["src"] = self.arc_sources()
        for name in ("ilabel", "olabel", "weight", "nextstate"):
            table[name] = getattr(self, name)
        table.sort(order=["src", "ilabel", "olabel", "weight", "nextstate"])
        return table

    def same_as(self, other: "CsrFst") -> bool:
        """Same start, final costs and multiset of arcs per state (bit-exact
        weights), arc order within a state ignored."""
        return (
            self.start == other.start
            and np.array_equal(self.final.view(np.uint32), other.final.view(np.uint32))
            and np.array_equal(self.arc_table(), other.arc_table())
        )

    # ------------------------------------------------------------ validation
    def validate(self) -> "CsrFst":
        """Check every invariant of the module docstring; raise
        :class:`InvariantError` (an :class:`FstFormatError`) on the first broken
        one. Returns ``self`` so that it chains."""
        S, A = self.num_states, self.num_arcs
        if S > INDEX_LIMIT or A > INDEX_LIMIT:
            raise InvariantError(f"{S} states and {A} arcs: at most {INDEX_LIMIT} of each are supported")
        expected = {"final": (np.float32, S), "e_offsets": (np.int32, S + 1), "ne_offsets": (np.int32, S + 1)}
        expected.update({name: (ARC_DTYPES[name], A) for name in ARC_FIELDS})
        for name, (dtype, length) in expected.items():
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != (length,):
                got = f"{getattr(array, 'dtype', type(array).__name__)} {getattr(array, 'shape', '')}"
                raise InvariantError(f"{name} must be {np.dtype(dtype)} of shape ({length},), got {got}", name)
        if isinstance(self.start, bool) or not isinstance(self.start, (int, np.integer)):
            raise InvariantError(f"start must be an integer state id (or -1), got {self.start!r}", "start")
        if not -1 <= self.start < S:
            raise InvariantError(f"start state {self.start} is not -1 or in [0, {S})", "start")
        E = int(self.e_offsets[-1])
        _require_offsets(self.e_offsets, "e_offsets", 0, E)
        _require_offsets(self.ne_offsets, "ne_offsets", E, A)
        if not 0 <= E <= A or self.ne_offsets[-1] != A:
            raise InvariantError(f"offsets end at {E} and {int(self.ne_offsets[-1])}, expected E <= A = {A}", "ne_offsets", S)
        _require(self.nextstate, (self.nextstate < 0) | (self.nextstate >= S), "nextstate", f"not in [0, {S})")
        _require(self.ilabel[:E], self.ilabel[:E] <= 0, "ilabel", "in the emitting block must be >= 1")
        _require(self.ilabel[E:], self.ilabel[E:] != 0, "ilabel", "in the non-emitting block must be 0", E)
        _require(self.olabel, self.olabel < 0, "olabel", "must be >= 0")
        _require(self.weight, np.isnan(self.weight) | (self.weight == -np.inf), "weight", "must not be NaN or -inf")
        _require(self.final, np.isnan(self.final) | (self.final == -np.inf), "final", "must not be NaN or -inf")
        return self

    # -------------------------------------------------------------- file I/O
    def save(self, path: str | os.PathLike) -> None:
        """Write the native cache format (memory-mapped by :func:`wfst.read_fst`)."""
        from .cache_format import write_cache

        write_cache(self, path)

    def write(self, path: str | os.PathLike, fst_type: str = "const") -> None:
        """Write an OpenFst binary file (``fst_type`` ``"vector"`` or ``"const"``,
        arc type ``standard``) that OpenFst, pynini and Kaldi read; ``path``
        may be the file this graph was read from."""
        from .file_replace import replaced
        from .openfst_binary import write_openfst

        data = write_openfst(self, fst_type)
        with replaced(path) as stream:  # (truncating in place would pull the file from under a mapped graph)
            stream.write(data)

    # ----------------------------------------------------------------- pynini
    @classmethod
    def from_pynini(cls, fst) -> "CsrFst":
        """Convert a pynini/pywrapfst FST with standard (tropical) arcs, keeping
        its state numbering."""
        from .openfst_binary import parse_openfst

        return parse_openfst(fst.write_to_string()).validate()

    def to_pynini(self):
        """A ``pynini.Fst`` (mutable, vector) with the same states, start, final
        costs and arcs. Needs pynini (``pip install pynini``)."""
        try:
            import pynini
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("to_pynini needs pynini: pip install pynini") from error
        from .openfst_binary import write_openfst

        return pynini.Fst.read_from_string(write_openfst(self, "vector"))


def _require(values: np.ndarray, bad: np.ndarray, name: str, what: str, base: int = 0) -> None:
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise InvariantError(f"{name}[{base + index}] = {values[index]} {what}", name, base + index)


def _require_offsets(offsets: np.ndarray, name: str, first: int, last: int) -> None:
    if offsets[0] != first:
        raise InvariantError(f"{name}[0] = {int(offsets[0])}, expected {first}", name, 0)
    steps = np.diff(offsets)
    _require(steps, steps < 0, f"{name} step", "is negative (offsets must not decrease)", 0)
    if offsets[-1] != last:
        raise InvariantError(f"{name}[-1] = {int(offsets[-1])}, expected {last}", name, offsets.shape[0] - 1)


def require_csr_fst(fst) -> CsrFst:
    """``fst`` if it is a :class:`CsrFst`; else :class:`GraphError` (for a
    path: read the file first)."""
    if not isinstance(fst, CsrFst):
        hint = ": read the file first, wfst.read_fst(path)" if isinstance(fst, (str, os.PathLike)) else ""
        raise GraphError(f"expected a wfst.CsrFst (see wfst.read_fst), got {type(fst).__name__}{hint}")
    return fst
