"""Kaldi lattices in text, as Kaldi's lattice holders write them (``ark,t:``)
with OpenFst's ``FstPrinter``, and read them (``LatticeReader::ReadText``).

In an archive the object follows ``key``, one space and a newline; it is one
line per arc, then a blank line::

    Lattice         src dst ilabel olabel [graph,acoustic]      state [graph,acoustic]
    CompactLattice  src dst word [graph,acoustic,t1_t2_..]      state [graph,acoustic,t1_t2_..]

Fields are separated by tabs (spaces are read too). The start state's lines
come first, then the other states in order, each state's arcs and then its final
line. A weight of One (``0,0``; ``0,0,`` with no string) is left out; a state
with no arcs gets a final line even when not final (``Infinity,Infinity``).
Costs are written as Kaldi writes them: C++ stream precision 7, i.e. ``%.7g``
(7 significant digits: text round trips are within 5e-7 relative, binary ones
exact), ``Infinity`` for +inf. Any float syntax Python reads is accepted.

Which type an object is shows in its lines: 5 fields or a one-comma weight
(Lattice), 3 fields or a two-comma weight (CompactLattice). An object with
neither (no lines, or only bare final states) fits both.
"""

from __future__ import annotations

import math

import numpy as np

from .compact_lattice import CompactLattice
from .kaldi_fst import KaldiLatticeError
from .lattice import Lattice

STATE_LIMIT = LABEL_LIMIT = 2**31 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)


# ------------------------------------------------------------------ writing
def _cost(value: float) -> str:
    return "Infinity" if value == math.inf else "%.7g" % value


def _weight(graph: float, acoustic: float, string=None) -> str:
    """``\\tgraph,acoustic[,string]``, or nothing for the weight One."""
    if graph == 0 and acoustic == 0 and (string is None or not len(string)):
        return ""
    text = f"\t{_cost(graph)},{_cost(acoustic)}"
    return text if string is None else text + "," + "_".join(map(str, string))


def encode(lat: Lattice | CompactLattice) -> bytes:
    """The text form of ``lat``: a newline, the lines, a blank line."""
    compact = isinstance(lat, CompactLattice)
    S = lat.num_states
    row_splits = np.zeros(S + 1, dtype=np.int64)
    np.cumsum(np.bincount(lat.arc_src, minlength=S), out=row_splits[1:])
    src, dst = lat.arc_src.tolist(), lat.arc_dst.tolist()
    graph, acoustic = lat.arc_graph_cost.tolist(), lat.arc_acoustic_cost.tolist()
    final_graph, final_acoustic = lat.final_graph_cost.tolist(), lat.final_acoustic_cost.tolist()
    if compact:
        labels = lat.arc_word.tolist()
        strings = np.split(lat.string, lat.string_start[1:-1]) if lat.num_arcs else []
        final_strings = np.split(lat.final_string, lat.final_string_start[1:-1]) if S else []
    else:
        labels = [f"{i}\t{o}" for i, o in zip(lat.arc_ilabel.tolist(), lat.arc_olabel.tolist())]
    lines = [""]
    for s in range(S):
        first, last = row_splits[s], row_splits[s + 1]
        for a in range(first, last):
            lines.append(f"{src[a]}\t{dst[a]}\t{labels[a]}"
                         + _weight(graph[a], acoustic[a], strings[a] if compact else None))
        if final_graph[s] != math.inf or first == last:
            lines.append(f"{s}" + _weight(final_graph[s], final_acoustic[s], final_strings[s] if compact else None))
    return ("\n".join(lines) + "\n\n").encode()


# ------------------------------------------------------------------ reading
class _Object:
    """The lines of one text object as read so far."""

    def __init__(self):
        self.kind = None  # Lattice, CompactLattice, or None while both fit
        self.kind_line = 0
        self.start = -1
        self.arc_state, self.arc_dst, self.arc_labels, self.arc_weight = [], [], [], []
        self.final_state, self.final_weight = [], []


def decode(buf, pos: int):
    """Parse the text lattice starting at byte ``pos`` of ``buf`` (just after
    the newline that follows the key) up to a blank line or the end. Returns
    ``(type, build, end)``: ``type`` is :class:`Lattice`, :class:`CompactLattice`
    or None where the lines fit both; ``build(type)`` gives the arguments of
    :func:`~lattice.kaldi_fst.build_lattice` / ``build_compact_lattice`` for
    the type chosen; ``end`` is the offset after the blank line. Raises
    :class:`KaldiLatticeError` naming the line."""
    obj = _Object()
    end = len(buf)
    while pos < end:
        newline = buf.find(b"\n", pos)
        stop = end if newline < 0 else newline
        fields = buf[pos:stop].split()
        line_at, pos = pos, stop + 1
        if not fields:
            break
        try:
            _parse_line(obj, fields)
        except KaldiLatticeError as error:
            line = bytes(buf[:line_at]).count(b"\n") + 1
            raise KaldiLatticeError(error.reason, offset=line_at, line=line) from None
    return obj.kind, lambda kind: _arrays(obj, kind), min(pos, end)


def _set_kind(obj: _Object, kind, what: str) -> None:
    if obj.kind is None:
        obj.kind = kind
    elif obj.kind is not kind:
        raise KaldiLatticeError(f"{what} is a {kind.__name__} line, but earlier lines were {obj.kind.__name__} lines")


def _integer(field: bytes, what: str, limit: int) -> int:
    if not field.isdigit():
        raise KaldiLatticeError(f"{what} {field[:40].decode(errors='replace')!r} is not a non-negative integer")
    value = int(field) if len(field) < 20 else limit + 1
    if value > limit:
        raise KaldiLatticeError(f"{what} {field[:40].decode()} is too large (at most {limit})")
    return value


def _float(field: bytes, where: str) -> float:
    if field == b"Infinity":
        return math.inf
    try:
        if not field.isascii() or b"_" in field:
            raise ValueError
        value = float(field)
    except ValueError:
        raise KaldiLatticeError(f"{where}: {field[:40].decode(errors='replace')!r} is not a number") from None
    if math.isnan(value) or value == -math.inf:
        raise KaldiLatticeError(f"{where}: {field.decode()!r} is not allowed (no NaN or -Infinity)")
    return float(np.float32(value)) if abs(value) <= FLOAT32_MAX else math.copysign(math.inf, value)


def _lattice_weight(field: bytes, final: bool) -> tuple[float, float]:
    parts = field.split(b",")
    if len(parts) != 2:
        raise KaldiLatticeError(f"weight {field[:60].decode(errors='replace')!r}: expected 'graph,acoustic'")
    graph, acoustic = _float(parts[0], "graph cost"), _float(parts[1], "acoustic cost")
    if final and (graph == math.inf) != (acoustic == math.inf):
        raise KaldiLatticeError(f"final weight {field.decode()!r}: +inf must be in both parts or in neither")
    if not final and math.inf in (graph, acoustic):
        raise KaldiLatticeError(f"arc weight {field.decode()!r} is not finite")
    return graph, acoustic


def _compact_weight(field: bytes, final: bool) -> tuple[float, float, list[int]]:
    weight, _, string = field.rpartition(b",")
    graph, acoustic = _lattice_weight(weight, final)
    tids = [_integer(t, "transition id", LABEL_LIMIT) for t in string.split(b"_")] if string else []
    if 0 in tids:
        raise KaldiLatticeError(f"weight {field[:60].decode()!r}: transition ids are positive")
    if graph == math.inf and tids:
        raise KaldiLatticeError(f"final weight {field[:60].decode()!r}: the weight Zero has no string")
    return graph, acoustic, tids


def _parse_line(obj: _Object, fields: list[bytes]) -> None:
    count = len(fields)
    state = _integer(fields[0], "state id", STATE_LIMIT - 1)
    if obj.start < 0:
        obj.start = state
    if count <= 2:  # final state, weight One when left out
        weight = None
        if count == 2:
            commas = fields[1].count(b",")
            if commas not in (1, 2):
                raise KaldiLatticeError(f"final weight {fields[1][:60].decode(errors='replace')!r}: expected "
                                        "'graph,acoustic' (Lattice) or 'graph,acoustic,t1_t2_..' (CompactLattice)")
            kind = Lattice if commas == 1 else CompactLattice
            _set_kind(obj, kind, "this final line")
            weight = (_lattice_weight if kind is Lattice else _compact_weight)(fields[1], final=True)
        obj.final_state.append(state)
        obj.final_weight.append(weight)
        return
    if count > 5:
        raise KaldiLatticeError(f"{count} fields: lattice lines have at most 5")
    dst = _integer(fields[1], "next state", STATE_LIMIT - 1)
    if count == 5 or (count == 4 and b"," not in fields[3]):
        _set_kind(obj, Lattice, f"this {count}-field arc line")
        labels = (_integer(fields[2], "input label", LABEL_LIMIT), _integer(fields[3], "output label", LABEL_LIMIT))
        weight = _lattice_weight(fields[4], final=False) if count == 5 else None
    else:
        _set_kind(obj, CompactLattice, f"this {count}-field arc line")
        labels = _integer(fields[2], "word", LABEL_LIMIT)
        weight = _compact_weight(fields[3], final=False) if count == 4 else None
    obj.arc_state.append(state)
    obj.arc_dst.append(dst)
    obj.arc_labels.append(labels)
    obj.arc_weight.append(weight)


def _arrays(obj: _Object, kind) -> tuple:
    """Build arguments for ``kind``, states renamed to 0..n-1 in id order (ids
    no line mentions are isolated states: dropping them changes nothing)."""
    ids = np.unique(np.asarray(obj.arc_state + obj.arc_dst + obj.final_state, dtype=np.int64))
    rename = {old: new for new, old in enumerate(ids.tolist())}
    S, A = len(ids), len(obj.arc_state)
    src = np.asarray([rename[s] for s in obj.arc_state], dtype=np.int64)
    dst = np.asarray([rename[s] for s in obj.arc_dst], dtype=np.int64)
    start = rename[obj.start] if S else -1
    final_graph = np.full(S, np.inf, dtype=np.float32)
    final_acoustic = np.full(S, np.inf, dtype=np.float32)
    final_strings: list = [[] for _ in range(S)]
    for state, weight in zip(obj.final_state, obj.final_weight):  # the last line for a state wins
        s = rename[state]
        final_graph[s], final_acoustic[s] = weight[:2] if weight else (0, 0)
        final_strings[s] = weight[2] if weight and len(weight) == 3 else []
    graph = np.asarray([w[0] if w else 0 for w in obj.arc_weight], dtype=np.float32)
    acoustic = np.asarray([w[1] if w else 0 for w in obj.arc_weight], dtype=np.float32)
    if kind is Lattice:
        labels = np.asarray(obj.arc_labels, dtype=np.int32).reshape(A, 2)
        return start, final_graph, final_acoustic, src, dst, labels[:, 0], labels[:, 1], graph, acoustic
    final_start, final_string = _flatten(final_strings)
    string_start, string = _flatten([w[2] if w else [] for w in obj.arc_weight])
    return (start, final_graph, final_acoustic, final_start, final_string, src, dst,
            np.asarray(obj.arc_labels, dtype=np.int32).reshape(A), graph, acoustic, string_start, string)


def _flatten(rows: list[list[int]]):
    starts = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=starts[1:])
    return starts, np.asarray([t for r in rows for t in r], dtype=np.int32)
