"""Seeded fuzzing of every format: a truncated or corrupted file either
raises FstFormatError or loads an FST that passes validate(); nothing else, and
nothing hangs."""

import numpy as np
import pynini
import pytest
import pywrapfst

from wfst import CsrFst, FstFormatError, read_fst
from wfst.openfst_binary import write_openfst

from .random_fst import random_pynini_fst


def _with_symbols(fst):
    table = pynini.SymbolTable()
    for i in range(8):
        table.add_symbol(f"sym{i}", i)
    fst = fst.copy()
    fst.set_input_symbols(table)
    fst.set_output_symbols(table)
    return fst


def _valid_files(tmp_path):
    fst = random_pynini_fst(12, max_states=10)
    assert fst.num_states() > 3
    csr = CsrFst.from_pynini(fst)
    csr.save(tmp_path / "cache")
    return {
        "vector": fst.write_to_string(),
        "vector+symbols": _with_symbols(fst).write_to_string(),
        "const": pywrapfst.convert(fst, "const").write_to_string(),
        "const+symbols": pywrapfst.convert(_with_symbols(fst), "const").write_to_string(),
        "const aligned": write_openfst(csr, "const", align=True),
        "cache": (tmp_path / "cache").read_bytes(),
        "text": fst.print().encode(),
    }


def _load_or_reject(path, data):
    path.write_bytes(data)
    try:
        fst = read_fst(path)
    except FstFormatError as error:
        assert str(path) in str(error)
        return "rejected"
    fst.validate()
    return "loaded"


@pytest.mark.timeout(300)
def test_truncations_and_byte_flips(tmp_path):
    rng = np.random.default_rng(2026)
    outcomes = {"rejected": 0, "loaded": 0}
    for kind, data in _valid_files(tmp_path).items():
        assert _load_or_reject(tmp_path / "case", data) == "loaded", kind
        for cut in range(len(data)):  # every truncation
            outcome = _load_or_reject(tmp_path / "case", data[:cut])
            assert cut == 0 or kind == "text" or outcome == "rejected", (kind, cut)
            outcomes[outcome] += 1
        for _ in range(600):  # random flips of 1 to 4 bytes
            corrupt = bytearray(data)
            for where in rng.integers(0, len(data), size=rng.integers(1, 5)):
                corrupt[where] ^= int(rng.integers(1, 256))
            outcomes[_load_or_reject(tmp_path / "case", bytes(corrupt))] += 1
    assert sum(outcomes.values()) > 3000
    assert outcomes["rejected"] > 1000 and outcomes["loaded"] > 100  # both branches really exercised
