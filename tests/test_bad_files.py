"""Each kind of bad graph file gets a typed error naming the path and offset."""

import struct

import numpy as np
import pytest
import pywrapfst

from wfst import CsrFst, FstFormatError, WfstError, read_fst
from wfst.csr import InvariantError

from .random_fst import random_pynini_fst

HEADER_FIELDS = "<iiQqqq"


def _header_end(data: bytes) -> int:
    return data.index(b"standard") + len(b"standard")


def _write(tmp_path, data):
    path = tmp_path / "bad.fst"
    path.write_bytes(data)
    return path


def _expect(tmp_path, data, *fragments):
    path = _write(tmp_path, data)
    with pytest.raises(FstFormatError) as caught:
        read_fst(path)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, WfstError)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fst"):
        read_fst(tmp_path / "nope.fst")


def test_an_empty_file_or_a_directory_is_no_graph(tmp_path):
    _expect(tmp_path, b"", "empty (0 bytes)")
    with pytest.raises(FstFormatError, match="a directory"):
        read_fst(tmp_path)


def test_unknown_binary(tmp_path):
    error = _expect(tmp_path, b"\x01\x02\x00\x00garbage", "unrecognised binary")
    assert error.offset == 0


def test_a_gzip_compressed_graph_says_to_decompress_it(tmp_path):
    import gzip
    error = _expect(tmp_path, gzip.compress(b"0 1 1 1 0.5\n1\n"), "gzip-compressed: decompress it first")
    assert error.offset == 0


def test_log_arcs_are_refused_with_advice():
    fst = pywrapfst.VectorFst(arc_type="log")
    fst.add_state()
    fst.set_start(0)
    with pytest.raises(FstFormatError, match="arc type 'log'.*to_standard"):
        CsrFst.from_pynini(fst)


def test_unsupported_fst_type(tmp_path):
    data = bytearray(random_pynini_fst(1).write_to_string())
    data[8:14] = b"vectox"
    _expect(tmp_path, bytes(data), "unsupported FST type 'vectox'", "fstconvert")


def test_unsupported_version(tmp_path):
    data = bytearray(random_pynini_fst(1).write_to_string())
    struct.pack_into("<i", data, _header_end(data), 9)
    _expect(tmp_path, bytes(data), "version 9")


def test_vector_state_count_larger_than_file(tmp_path):
    data = bytearray(random_pynini_fst(1).write_to_string())
    struct.pack_into("<q", data, _header_end(data) + 24, 10**15)
    _expect(tmp_path, bytes(data), "more than the file holds")


def test_vector_huge_arc_count(tmp_path):
    data = bytearray(random_pynini_fst(2).write_to_string())
    body = _header_end(data) + struct.calcsize(HEADER_FIELDS)
    struct.pack_into("<q", data, body + 4, 2**40)
    error = _expect(tmp_path, bytes(data), "bad arc count")
    assert error.offset == body + 4


def test_vector_states_and_arcs_beyond_the_index_limit_are_refused(tmp_path, monkeypatch):
    """At most INDEX_LIMIT states and as many arcs, a state's own count and all
    of them together (here with a limit of 3: 2**31 - 1 arcs would take 32 GiB)."""
    from wfst import openfst_binary
    from .decoder_graphs import graph

    monkeypatch.setattr(openfst_binary, "INDEX_LIMIT", 3)
    loops = graph(2, 0, {1: 0.0}, [(0, 0, 1, 0, 0.5), (0, 0, 2, 0, 0.5), (0, 1, 0, 0, 0.5)])
    assert read_fst(_write(tmp_path, openfst_binary.write_openfst(loops, "vector"))).num_arcs == 3
    spread = graph(3, 0, {2: 0.0}, [(0, 1, 1, 0, 0.5), (0, 1, 2, 0, 0.5), (1, 2, 1, 0, 0.5), (1, 2, 2, 0, 0.5)])
    _expect(tmp_path, openfst_binary.write_openfst(spread, "vector"), "more than 3 states or arcs")


def test_vector_start_beyond_the_states(tmp_path):
    fst = random_pynini_fst(2)
    data = bytearray(fst.write_to_string())
    struct.pack_into("<q", data, _header_end(data) + 16, fst.num_states())
    _expect(tmp_path, bytes(data), f"start state {fst.num_states()}")


def test_vector_negative_state_count(tmp_path):
    """-1 means 'read to the end'; anything below is corrupt."""
    data = bytearray(random_pynini_fst(2).write_to_string())
    struct.pack_into("<q", data, _header_end(data) + 24, -2)
    _expect(tmp_path, bytes(data), "bad number of states -2")


def test_const_arcs_without_states(tmp_path):
    from wfst.openfst_binary import write_openfst

    fst = CsrFst.from_pynini(random_pynini_fst(2))
    assert fst.num_arcs
    data = write_openfst(fst, "const")
    body = _header_end(data) + struct.calcsize(HEADER_FIELDS)
    header = bytearray(data[:body])
    struct.pack_into("<q", header, _header_end(data) + 24, 0)  # no states, the arcs kept
    _expect(tmp_path, bytes(header) + data[body + 20 * fst.num_states:], f"{fst.num_arcs} arcs but no states")


def test_const_counts_beyond_file(tmp_path):
    data = bytearray(pywrapfst.convert(random_pynini_fst(2), "const").write_to_string())
    struct.pack_into("<q", data, _header_end(data) + 32, 10**9)
    _expect(tmp_path, bytes(data), "truncated")


def test_truncated_const(tmp_path):
    data = pywrapfst.convert(random_pynini_fst(2), "const").write_to_string()
    error = _expect(tmp_path, data[:-5], "truncated")
    assert error.offset == len(data) - 5


def test_trailing_bytes(tmp_path):
    _expect(tmp_path, random_pynini_fst(2).write_to_string() + b"junk", "unexpected bytes")


def test_arc_to_missing_state_names_its_offset(tmp_path):
    fst = CsrFst.from_pynini(random_pynini_fst(2))
    data = bytearray(pywrapfst.convert(fst.to_pynini(), "const").write_to_string())
    arcs_at = len(data) - 16 * fst.num_arcs
    struct.pack_into("<i", data, arcs_at + 12, fst.num_states + 5)
    error = _expect(tmp_path, bytes(data), f"= {fst.num_states + 5} not in [0, {fst.num_states})")
    assert error.offset == arcs_at


def test_nan_final_cost(tmp_path):
    data = bytearray(pywrapfst.convert(random_pynini_fst(2), "const").write_to_string())
    states_at = _header_end(data) + struct.calcsize(HEADER_FIELDS)
    struct.pack_into("<f", data, states_at, float("nan"))
    error = _expect(tmp_path, bytes(data), "final[0] = nan must not be NaN")
    assert error.offset == states_at


def test_corrupt_cache_names_array_offset(tmp_path):
    fst = CsrFst.from_pynini(random_pynini_fst(2))
    fst.save(tmp_path / "g.wfst")
    data = bytearray((tmp_path / "g.wfst").read_bytes())
    from wfst.cache_format import _layout

    offset = _layout(fst.num_states, fst.num_arcs)[0]["nextstate"][0]
    struct.pack_into("<i", data, offset, -3)
    error = _expect(tmp_path, bytes(data), "nextstate[0] = -3")
    assert error.offset == offset


@pytest.mark.parametrize("claim, message, offset", [("negative", "bad counts in the cache header", 16),
                                                    ("one too many", "header says", 32),
                                                    ("more than all arcs", "bad counts in the cache header", 16)])
def test_cache_emitting_arc_count_must_match_the_offsets(tmp_path, claim, message, offset):
    fst = CsrFst.from_pynini(random_pynini_fst(2))
    assert 0 < fst.num_emitting_arcs < fst.num_arcs
    fst.save(tmp_path / "g.wfst")
    data = bytearray((tmp_path / "g.wfst").read_bytes())
    emitting = {"negative": -1, "one too many": fst.num_emitting_arcs + 1, "more than all arcs": fst.num_arcs + 1}
    struct.pack_into("<q", data, 32, emitting[claim])  # the header's E
    error = _expect(tmp_path, bytes(data), message)
    assert error.offset == offset


def test_cache_version_mismatch(tmp_path):
    CsrFst.from_pynini(random_pynini_fst(2)).save(tmp_path / "g.wfst")
    data = bytearray((tmp_path / "g.wfst").read_bytes())
    struct.pack_into("<I", data, 8, 99)
    _expect(tmp_path, bytes(data), "cache version 99", "CsrFst.save")


def test_validate_reports_each_broken_invariant():
    good = CsrFst.from_pynini(random_pynini_fst(0))
    assert good.num_emitting_arcs > 0 and good.num_epsilon_arcs > 0

    def broken(**changes):
        fields = {name: getattr(good, name) for name in
                  ("start", "final", "e_offsets", "ne_offsets", "nextstate", "weight", "ilabel", "olabel")}
        for name, change in changes.items():
            fields[name] = change(fields[name].copy() if isinstance(fields[name], np.ndarray) else fields[name])
        return CsrFst(**fields)

    def set_at(index, value):
        def change(array):
            array[index] = value
            return array
        return change

    E = good.num_emitting_arcs
    cases = {
        "nextstate": broken(nextstate=set_at(0, good.num_states)),
        "emitting block": broken(ilabel=set_at(0, 0)),
        "non-emitting block": broken(ilabel=set_at(E, 4)),
        "olabel": broken(olabel=set_at(0, -1)),
        "weight": broken(weight=set_at(0, np.nan)),
        "final": broken(final=set_at(0, -np.inf)),
        "start state": broken(start=lambda s: good.num_states),
        "e_offsets": broken(e_offsets=set_at(0, 1)),
        "must not decrease": broken(ne_offsets=set_at(1, E - 1)),
        "must be int32": broken(nextstate=lambda a: a.astype(np.int64)),
    }
    for fragment, fst in cases.items():
        with pytest.raises(InvariantError, match=fragment):
            fst.validate()


@pytest.mark.parametrize("fst_type", ["vector", "const"])
def test_every_bad_arc_is_reported_at_its_own_offset(tmp_path, fst_type):
    """Arcs are regrouped (emitting first) in the CSR; errors must still point
    at the arc's bytes in the file, for emitting and epsilon arcs alike."""
    from wfst.openfst_binary import write_openfst

    fst = CsrFst.from_pynini(random_pynini_fst(0))
    assert fst.num_emitting_arcs and fst.num_epsilon_arcs
    data = write_openfst(fst, fst_type)
    offsets = _arc_offsets(data, fst, fst_type)
    assert len(offsets) == fst.num_arcs
    for offset in offsets:
        corrupt = bytearray(data)
        struct.pack_into("<i", corrupt, offset + 12, -7)  # this arc's next state
        error = _expect(tmp_path, bytes(corrupt), "= -7 not in")
        assert error.offset == offset


def _arc_offsets(data, fst, fst_type):
    """Byte offset of every arc record, in file order."""
    body = _header_end(data) + struct.calcsize(HEADER_FIELDS)
    counts = np.diff(fst.e_offsets) + np.diff(fst.ne_offsets)
    if fst_type == "const":
        first = body + 20 * fst.num_states
        return [first + 16 * i for i in range(fst.num_arcs)]
    offsets, pos = [], body
    for count in counts:
        offsets += [pos + 12 + 16 * k for k in range(count)]
        pos += 12 + 16 * count
    return offsets


def test_corrupt_cache_names_the_offset_of_a_later_element(tmp_path):
    """The offset an error names is the bad element's own byte, 4 bytes per
    element into its array, not its index."""
    fst = CsrFst.from_pynini(random_pynini_fst(2))
    assert fst.num_arcs > 3
    fst.save(tmp_path / "g.wfst")
    data = bytearray((tmp_path / "g.wfst").read_bytes())
    from wfst.cache_format import _layout

    offset = _layout(fst.num_states, fst.num_arcs)[0]["nextstate"][0] + 3 * 4
    struct.pack_into("<i", data, offset, -3)
    error = _expect(tmp_path, bytes(data), "nextstate[3] = -3")
    assert error.offset == offset


def test_cache_with_trailing_bytes_is_refused(tmp_path):
    """The cache's size must be exactly what its header's counts imply."""
    CsrFst.from_pynini(random_pynini_fst(2)).save(tmp_path / "g.wfst")
    data = (tmp_path / "g.wfst").read_bytes()
    _expect(tmp_path, data + bytes(64), f"need {len(data)} bytes, the file has {len(data) + 64}")


def test_saving_an_invalid_graph_raises_and_writes_nothing(tmp_path):
    """CsrFst.save validates first: a broken invariant is an InvariantError and
    no cache (nor temporary file) is left to be read later."""
    good = CsrFst.from_pynini(random_pynini_fst(0))
    nextstate = good.nextstate.copy()
    nextstate[0] = good.num_states
    bad = CsrFst(good.start, good.final, good.e_offsets, good.ne_offsets, nextstate, good.weight, good.ilabel,
                 good.olabel)
    with pytest.raises(InvariantError, match="nextstate"):
        bad.save(tmp_path / "g.wfst")
    assert list(tmp_path.iterdir()) == []
