"""The OpenFst AT&T text format, as written by ``fstprint`` and pynini's
``Fst.print()`` and read by ``fstcompile``.

One line per arc, ``src dst ilabel olabel [weight]`` (acceptors: ``src dst
label [weight]``), and one per final state, ``state [weight]``; fields are
separated by spaces or tabs; a missing weight is 0 (the tropical one);
``Infinity`` is the tropical zero (a final line with it means "not final").
The start state is the source of the first line. State ids are kept as
written; the FST has ``1 + the largest state id`` states.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .csr import INDEX_LIMIT, CsrFst, InvariantError
from .errors import FstFormatError
from .symbols import LABEL_LIMIT, SymbolTable, decode_utf8, integer_field, iter_fields

DENSE_STATES = 2**22
"""State ids may leave ids unused (e.g. ``0 9 1 1`` has 10 states) up to this
many states; beyond it, a file must have at least a quarter as many lines as
states. Each line mentions at most two states, so a file that numbers its
states without gaps always passes; the check stops a bogus large id in a small
file from allocating gigabytes."""

_NUMERIC_BYTES = np.zeros(256, dtype=bool)
_NUMERIC_BYTES[list(b"0123456789.+-eE Infinity\t\n")] = True
_SEPARATOR_BYTES = np.zeros(256, dtype=bool)
_SEPARATOR_BYTES[list(b" \t\n")] = True


def parse_text_fst(
    data: bytes,
    path: str | os.PathLike | None = None,
    isymbols: SymbolTable | None = None,
    osymbols: SymbolTable | None = None,
    acceptor: bool = False,
) -> CsrFst:
    """Parse an AT&T text FST (the bytes of a file) into a validated :class:`CsrFst`.

    ``isymbols``/``osymbols``: tables for symbolic input/output labels;
    without one, labels on that side must be non-negative integers. With
    ``acceptor=True`` arc lines are ``src dst label [weight]``, the label (looked
    up in ``isymbols``, as ``fstcompile --acceptor`` does) being both input and
    output label. A state listed final twice gets the weight of its last line.

    Every problem with the data raises :class:`FstFormatError` (a
    ``ValueError``) naming ``path`` and the 1-based line.
    """
    path = None if path is None else os.fspath(path)
    parsed = None
    if isymbols is None and osymbols is None:
        parsed = _parse_numeric(data, acceptor)
    if parsed is None:
        parsed = _parse_lines(decode_utf8(data, path), path, isymbols, osymbols, acceptor)
    num_states, start, final_state, final_weight, src, nextstate, ilabel, olabel, weight = parsed
    final = np.full(num_states, np.inf, dtype=np.float32)
    # The last line for a state wins: take each state's last occurrence.
    states, last = np.unique(final_state[::-1], return_index=True)
    final[states] = final_weight[::-1][last]
    try:
        return CsrFst.from_arcs(num_states, start, final, src, nextstate, ilabel, olabel, weight).validate()
    except InvariantError as error:
        raise FstFormatError(error.reason, path) from error


def _dense_enough(num_states: int, num_lines: int) -> bool:
    return num_states <= max(DENSE_STATES, 4 * num_lines)


def _parse_lines(text, path, isymbols, osymbols, acceptor):
    """Line-by-line parse; words every error."""
    src, nextstate, ilabel, olabel, weight = [], [], [], [], []
    final_state, final_weight = [], []
    start = max_state = -1
    max_state_line = number = 0
    arc_fields = (3, 4) if acceptor else (4, 5)
    isymbols = None if isymbols is None else isymbols.symbol_to_id
    osymbols = None if osymbols is None else osymbols.symbol_to_id

    def fail(message):
        return FstFormatError(f"line {number}: {message}", path)

    def state(field):
        value = integer_field(field)
        if value is None:
            raise fail(f"state id {field!r} is not a non-negative integer")
        if value >= INDEX_LIMIT:
            raise fail(f"state id {field[:30]} is too large: state ids must be < 2**31 - 1 ({INDEX_LIMIT})")
        return value

    def label(field, table, side):
        if table is not None:
            value = table.get(field)
            if value is None:
                raise fail(f"{side} symbol {field!r} is not in the {side} symbol table")
            return value
        value = integer_field(field)
        if value is None:
            option = "isymbols" if side == "input" else "osymbols"
            raise fail(
                f"{side} label {field!r} is not a non-negative integer; for symbolic labels pass "
                f"{option}=SymbolTable.read('words.txt') (a wfst.SymbolTable)")
        if value > LABEL_LIMIT:
            raise fail(f"{side} label {field[:30]} is too large: labels must be <= {LABEL_LIMIT}")
        return value

    def cost(field):
        try:
            if not field.isascii() or "_" in field:
                raise ValueError
            value = float(field)
        except ValueError:
            raise fail(f"weight {field!r} is not a number (examples: 0.5, -2, 1e-3, Infinity)") from None
        if math.isnan(value) or value == -math.inf:
            raise fail(f"weight {field!r} is not allowed: weights must not be NaN or -Infinity")
        return value

    for number, fields in iter_fields(text):
        count = len(fields)
        if count in arc_fields:
            s, d = state(fields[0]), state(fields[1])
            i = label(fields[2], isymbols, "input")
            o = i if acceptor else label(fields[3], osymbols, "output")
            src.append(s)
            nextstate.append(d)
            ilabel.append(i)
            olabel.append(o)
            weight.append(cost(fields[-1]) if count == arc_fields[1] else 0.0)
            top = d if d > s else s
        elif count <= 2:
            s = state(fields[0])
            final_state.append(s)
            final_weight.append(cost(fields[1]) if count == 2 else 0.0)
            top = s
        elif count == 3:
            raise fail(
                "3 fields, but transducer arc lines are 'src dst ilabel olabel [weight]'; "
                "this looks like an acceptor ('src dst label [weight]'): pass acceptor=True")
        elif acceptor and count == 5:
            raise fail(
                "5 fields, but acceptor arc lines are 'src dst label [weight]'; "
                "this looks like a transducer: pass acceptor=False")
        else:
            raise fail(
                f"{count} fields, too many: arc lines are "
                f"{'src dst label [weight]' if acceptor else 'src dst ilabel olabel [weight]'}, "
                "final lines 'state [weight]'")
        if start < 0:
            start = s
        if top > max_state:
            max_state, max_state_line = top, number
    num_states = max_state + 1
    num_lines = text.count("\n") + 1
    if not _dense_enough(num_states, num_lines):
        number = max_state_line
        raise fail(
            f"state id {max_state} makes {num_states} states in a file of {num_lines} lines; numbering "
            f"this sparse would allocate about {num_states * 28 / 2**30:.1f} GiB for unused states: "
            "number the states from 0 without large gaps (fstcompile without --keep_state_numbering does)")
    return (
        num_states, start,
        np.array(final_state, dtype=np.int32), np.array(final_weight, dtype=np.float32),
        np.array(src, dtype=np.int32), np.array(nextstate, dtype=np.int32),
        np.array(ilabel, dtype=np.int32), np.array(olabel, dtype=np.int32),
        np.array(weight, dtype=np.float32),
    )


def _parse_numeric(data: bytes, acceptor: bool):
    """Vectorized parse of a file of numbers only (no symbol tables). Returns
    None whenever anything is unusual; :func:`_parse_lines` then decides, and
    words the error, so both give the same results."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if not _NUMERIC_BYTES[raw].all():
        return None
    separator = _SEPARATOR_BYTES[raw]
    token = ~separator
    starts = np.flatnonzero(token & np.concatenate(([True], separator[:-1])))
    ends = np.flatnonzero(token & np.concatenate((separator[1:], [True]))) + 1
    num_tokens = starts.shape[0]
    if num_tokens == 0:
        return None
    newlines = np.flatnonzero(raw == ord("\n"))
    first = np.flatnonzero(np.diff(np.searchsorted(newlines, starts), prepend=-1))  # first token of each line
    count = np.diff(first, append=num_tokens)
    label_fields = 1 if acceptor else 2
    is_arc = (count == 2 + label_fields) | (count == 3 + label_fields)
    is_final = count <= 2
    if not np.all(is_arc | is_final):
        return None
    arc, fin = first[is_arc], first[is_final]

    # Integers: up to 10 ASCII digits each.
    int_parts = [arc + k for k in range(2 + label_fields)] + [fin]
    index = np.concatenate(int_parts)
    lo, hi = starts[index], ends[index]
    non_digit = np.logical_or.reduceat(((raw < ord("0")) | (raw > ord("9"))) & token, starts)
    if np.any(hi - lo > 10) or np.any(non_digit[index]):
        return None
    value = np.zeros(index.shape[0], dtype=np.int64)
    for k in range(int((hi - lo).max())):
        more = lo + k < hi
        digit = raw[np.minimum(lo + k, raw.shape[0] - 1)].astype(np.int64) - ord("0")
        value = np.where(more, value * 10 + digit, value)
    src, nextstate, ilabel, *rest = np.split(value, np.cumsum([p.shape[0] for p in int_parts])[:-1])
    olabel = ilabel if acceptor else rest[0]
    final_state = rest[-1]

    # Weights: Python's float on each token, as the line parser does.
    arc_has_weight = count[is_arc] == 3 + label_fields
    final_has_weight = count[is_final] == 2
    index = np.concatenate((arc[arc_has_weight] + 2 + label_fields, fin[final_has_weight] + 1))
    try:
        parsed = np.array(list(map(float, map(data.__getitem__, map(slice, starts[index].tolist(),
                                                                      ends[index].tolist())))))
    except ValueError:
        return None
    if np.any(np.isnan(parsed) | (parsed == -np.inf)):
        return None
    weight = np.zeros(arc.shape[0])
    weight[arc_has_weight] = parsed[:arc_has_weight.sum()]
    final_weight = np.zeros(fin.shape[0])
    final_weight[final_has_weight] = parsed[arc_has_weight.sum():]

    num_states = int(max(src.max(initial=0), nextstate.max(initial=0), final_state.max(initial=0))) + 1
    if (
        num_states > INDEX_LIMIT
        or not _dense_enough(num_states, newlines.shape[0] + 1)
        or max(ilabel.max(initial=0), olabel.max(initial=0)) > LABEL_LIMIT
    ):
        return None
    return (
        num_states, int(data[starts[0]:ends[0]]),
        final_state.astype(np.int32), final_weight.astype(np.float32),
        src.astype(np.int32), nextstate.astype(np.int32),
        ilabel.astype(np.int32), olabel.astype(np.int32), weight.astype(np.float32),
    )


def format_text_fst(
    fst: CsrFst,
    isymbols: SymbolTable | None = None,
    osymbols: SymbolTable | None = None,
    acceptor: bool = False,
) -> str:
    """The FST in the layout of pynini's ``Fst.print()`` / ``fstprint``.

    The start state comes first, then the others in increasing order; a
    state's arcs (non-emitting ones first, then emitting ones, in CSR order),
    then its final line if it is final (``state`` alone for cost 0), or
    ``state<TAB>Infinity`` if it has neither arcs nor a final cost, so that
    every state reads back. Fields are tab-separated; a weight of 0 is omitted;
    weights are written as OpenFst does (``%g``, 6 significant digits) when
    that reads back to the same float32, else with up to 9 digits.
    ``acceptor=True`` writes 3/4-field arc lines and needs
    ``ilabel == olabel`` on every arc (``ValueError`` otherwise). Labels missing
    from a given symbol table raise ``KeyError``. Like ``fstprint``, an FST
    without a start state prints as the empty string.
    """
    if fst.start < 0:
        return ""
    if acceptor and not np.array_equal(fst.ilabel, fst.olabel):
        bad = int(np.flatnonzero(fst.ilabel != fst.olabel)[0])
        raise ValueError(
            f"not an acceptor: arc {bad} has ilabel {int(fst.ilabel[bad])} != olabel {int(fst.olabel[bad])}; "
            "print it with acceptor=False")
    ilabels = _label_strings(fst.ilabel, isymbols, "input")
    olabels = ilabels if acceptor else _label_strings(fst.olabel, osymbols, "output")
    # One line per arc, in CSR order, then gathered state by state.
    arcs = zip(fst.arc_sources().tolist(), fst.nextstate.tolist(), ilabels, olabels)
    if acceptor:
        arc_lines = [f"{s}\t{d}\t{i}" for s, d, i, _ in arcs]
    else:
        arc_lines = [f"{s}\t{d}\t{i}\t{o}" for s, d, i, o in arcs]
    for a, weight in enumerate(_weight_strings(fst.weight)):
        if weight:
            arc_lines[a] += "\t" + weight
    e_offsets, ne_offsets = fst.e_offsets.tolist(), fst.ne_offsets.tolist()
    final = _weight_strings(fst.final)
    lines = []
    for s in [fst.start] + [s for s in range(fst.num_states) if s != fst.start]:
        lines += arc_lines[ne_offsets[s]:ne_offsets[s + 1]]
        lines += arc_lines[e_offsets[s]:e_offsets[s + 1]]
        if not final[s]:
            lines.append(str(s))
        elif final[s] != "Infinity" or ne_offsets[s] == ne_offsets[s + 1] and e_offsets[s] == e_offsets[s + 1]:
            lines.append(f"{s}\t{final[s]}")
    return "".join(line + "\n" for line in lines)


def _label_strings(labels: np.ndarray, table: SymbolTable | None, side: str) -> list[str]:
    if table is None:
        return labels.tolist()
    names = table.id_to_symbol
    missing = [label for label in np.unique(labels).tolist() if label not in names]
    if missing:
        raise KeyError(f"{side} label {missing[0]} is not in the {side} symbol table {table!r}")
    return [names[label] for label in labels.tolist()]


def _weight_strings(weights: np.ndarray) -> list[str]:
    """Text of each float32 weight: '' for 0, 'Infinity', else ``%g`` with 6
    significant digits as OpenFst prints, or the fewest more (up to 9, which
    always suffice) that read back to the same float32."""
    values = weights.tolist()
    texts = [f"{value:.6g}" for value in values]
    inexact = np.arange(len(texts))
    for digits in (7, 8, 9):
        parsed = np.array([float(texts[a]) for a in inexact.tolist()], dtype=np.float32)
        inexact = inexact[parsed != weights[inexact]]
        for a in inexact.tolist():
            texts[a] = f"{values[a]:.{digits}g}"
    for a in np.flatnonzero(weights == 0).tolist():
        texts[a] = ""
    for a in np.flatnonzero(weights == np.inf).tolist():
        texts[a] = "Infinity"
    return texts
