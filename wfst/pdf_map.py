"""Reading a Kaldi transition-id to pdf map, the ``pdf_map`` of :class:`wfst.Decoder`.

A Kaldi HCLG's input labels are transition ids (1-based); the acoustic model's
output column for transition id ``t`` is its pdf, ``TransitionIdToPdf(t)``.
Two file forms are accepted:

* text: one ``transition-id pdf`` pair per line (blank lines and ``#``
  comments ignored), e.g. from Kaldi's ``show-transitions`` (see the README);
* ``.npy``: a 1-D integer array indexed by transition id (entry 0, epsilon,
  is ignored).

Transition ids the file does not list map to -1; the decoder reports any such
id that the graph uses.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import WfstError
from .symbols import LABEL_LIMIT, integer_field


class PdfMapError(WfstError, ValueError):
    """A transition-id to pdf map file that cannot be read: not 1-D integers,
    a malformed or repeated line, or ids out of range."""


def read_pdf_map(path: str | os.PathLike) -> np.ndarray:
    """The map in ``path`` as an int32 array indexed by transition id (see the
    module docstring); :class:`PdfMapError` naming the file and line when it
    is malformed, ``OSError`` when it cannot be opened."""
    path = os.fspath(path)
    with open(path, "rb") as stream:
        is_npy = stream.read(6) == b"\x93NUMPY"
    if is_npy:
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise PdfMapError(f"{path}: cannot read the .npy pdf map: {error}") from None
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise PdfMapError(f"{path}: a .npy pdf map must be a 1-D integer array indexed by transition id, got "
                              f"shape {array.shape} and dtype {array.dtype}")
        if array.size and (array.max() > LABEL_LIMIT or array.min() < -1):
            raise PdfMapError(f"{path}: pdf ids must lie in 0..{LABEL_LIMIT} (or -1 for none)")
        return array.astype(np.int32)
    pairs: dict[int, int] = {}
    with open(path, "rb") as stream:
        try:
            text = stream.read().decode("utf-8")
        except UnicodeDecodeError:
            raise PdfMapError(f"{path}: neither a .npy file nor UTF-8 text 'transition-id pdf' lines") from None
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        values = [integer_field(f) for f in fields]
        if len(fields) != 2 or None in values:
            raise PdfMapError(f"{path}: line {number}: expected 'transition-id pdf' (two non-negative "
                              f"integers), got {line.strip()[:80]!r}")
        tid, pdf = values
        if tid > LABEL_LIMIT or pdf > LABEL_LIMIT:
            raise PdfMapError(f"{path}: line {number}: ids must not exceed {LABEL_LIMIT}")
        if pairs.setdefault(tid, pdf) != pdf:
            raise PdfMapError(f"{path}: line {number}: transition id {tid} maps to pdf {pairs[tid]} "
                              f"and to {pdf}")
    if not pairs:
        raise PdfMapError(f"{path}: the pdf map is empty")
    array = np.full(max(pairs) + 1, -1, np.int32)
    array[list(pairs)] = list(pairs.values())
    return array
