"""Kaldi lattice archives (lattice.kaldi_archive): our writer and reader against
kaldifst (OpenFst's own ``VectorFst<LatticeArc>`` reader, writer and printer,
and a real Kaldi decoder's lattices), hand-written archives, malformed input,
and ConvertLattice (lattice.convert)."""

import io
import os
import struct

import numpy as np
import pytest

from lattice import CompactLattice, Lattice
from lattice.convert import compact_to_lattice, lattice_to_compact
from lattice.errors import LatticeError
from lattice.kaldi_archive import read_lattices, write_lattices
from lattice.kaldi_fst import KaldiLatticeError
from tests.lattice_paths import random_costs, random_lattice
from wfst.errors import WfstError

kaldifst = pytest.importorskip("kaldifst")
PROPERTIES = slice(8 + 6 + 4 + 8 + 8, 8 + 6 + 4 + 8 + 8 + 8)  # the uint64 of a 'lattice4' vector header
INF = np.float32(np.inf)


# ------------------------------------------------------------------ random lattices
def random_compact_lattice(rng, num_states=6, final_strings=True) -> CompactLattice:
    """A random DAG in topological order, every state reached; strings of 0-3
    transition ids on arcs and (if ``final_strings``) on final weights."""
    src, dst = [], []
    for s in range(1, num_states):
        src.append(int(rng.integers(0, s))), dst.append(s)
    for _ in range(num_states if num_states > 1 else 0):
        a, b = sorted(rng.choice(num_states, 2, replace=False).tolist())
        src.append(a), dst.append(b)
    order = np.argsort(src, kind="stable")
    src, dst = np.asarray(src, np.int32)[order], np.asarray(dst, np.int32)[order]
    A = len(src)
    lengths = rng.integers(0, 4, A)
    final = rng.random(num_states) < 0.4
    final[-1] = True
    final_lengths = rng.integers(0, 3, num_states) * final * final_strings
    return CompactLattice(
        arc_src=src, arc_dst=dst, arc_word=(rng.integers(1, 50, A) * (rng.random(A) < 0.7)).astype(np.int32),
        arc_graph_cost=random_costs(rng, A), arc_acoustic_cost=random_costs(rng, A),
        string_start=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        string=rng.integers(1, 300, int(lengths.sum())).astype(np.int32),
        final_graph_cost=np.where(final, random_costs(rng, num_states), INF).astype(np.float32),
        final_acoustic_cost=np.where(final, random_costs(rng, num_states), INF).astype(np.float32),
        final_string_start=np.concatenate(([0], np.cumsum(final_lengths))).astype(np.int64),
        final_string=rng.integers(1, 300, int(final_lengths.sum())).astype(np.int32))


def empty_compact_lattice() -> CompactLattice:
    i, f, z = np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(1, np.int64)
    return CompactLattice(i, i, i, f, f, z, i, f, f, z, i)


def assert_same(a, b):
    assert type(a) is type(b)
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name  # floats bit-for-bit (inf == inf)


def text_rounded(lat):
    """``lat`` with its costs as a text archive stores them (``%.7g``)."""
    fields = {name: getattr(lat, name) for name in lat.__dataclass_fields__}
    for name, value in fields.items():
        if value.dtype == np.float32:
            fields[name] = np.asarray([float("%.7g" % v) for v in value.tolist()], dtype=np.float32)
    return type(lat)(**fields)


def archive(items, binary=True) -> bytes:
    out = io.BytesIO()
    write_lattices(out, items, binary=binary)
    return out.getvalue()


def read_all(data, kind=None):
    return list(read_lattices(io.BytesIO(data), kind=kind))


# ------------------------------------------------------------------ kaldifst helpers
def to_kaldifst(lat: Lattice, state_order=None):
    """``lat`` as a kaldifst Lattice, its state ``s`` numbered ``state_order[s]``."""
    n = lat.num_states
    order = np.arange(n) if state_order is None else np.asarray(state_order)
    fst = kaldifst.Lattice()
    for _ in range(n):
        fst.add_state()
    if n:
        fst.start = int(order[0])
    position = np.argsort(order)
    for new in range(n):
        s = int(position[new])
        if lat.final_graph_cost[s] != np.inf:
            fst.set_final(new, kaldifst.LatticeWeight(float(lat.final_graph_cost[s]), float(lat.final_acoustic_cost[s])))
        for a in np.flatnonzero(lat.arc_src == s).tolist():
            weight = kaldifst.LatticeWeight(float(lat.arc_graph_cost[a]), float(lat.arc_acoustic_cost[a]))
            fst.add_arc(new, kaldifst.LatticeArc(int(lat.arc_ilabel[a]), int(lat.arc_olabel[a]), weight,
                                                 int(order[lat.arc_dst[a]])))
    return fst


def kaldifst_contents(fst):
    """``(start, finals, arcs)`` of a kaldifst Lattice, float32 values."""
    from kaldifst.lib._kaldifst import _ArcIteratorLattice

    finals, arcs = [], []
    for s in range(fst.num_states):
        w = fst.final(s)
        finals.append((np.float32(w.value1), np.float32(w.value2)))
        it = _ArcIteratorLattice(fst, s)
        while not it.done:
            a = it.value
            arcs.append((s, a.nextstate, a.ilabel, a.olabel, np.float32(a.weight.value1), np.float32(a.weight.value2)))
            it.next()
    return fst.start, finals, arcs


def our_contents(lat: Lattice):
    finals = list(zip(lat.final_graph_cost.tolist(), lat.final_acoustic_cost.tolist()))
    arcs = list(zip(lat.arc_src.tolist(), lat.arc_dst.tolist(), lat.arc_ilabel.tolist(), lat.arc_olabel.tolist(),
                    lat.arc_graph_cost.tolist(), lat.arc_acoustic_cost.tolist()))
    return (0 if lat.num_states else -1), finals, arcs


def paths(start, finals, arcs):
    """Sorted complete paths (arc label/weight tuples, then the final weight):
    equal for two lattices that differ only in state numbering."""
    out = []

    def walk(s, prefix):
        if finals[s][0] != np.inf:
            out.append((tuple(prefix), finals[s]))
        for a in arcs:
            if a[0] == s:
                walk(a[1], prefix + [a[2:]])

    if start >= 0:
        walk(start, [])
    return sorted(out)


# ------------------------------------------------------------------ against kaldifst / Kaldi
@pytest.mark.parametrize("seed", range(6))
def test_binary_lattice_is_openfst_vector_bytes(tmp_path, seed):
    """Each binary object is byte for byte what OpenFst's VectorFst<LatticeArc>::Write
    gives (bar the properties word), and kaldifst reads it back with the same arcs."""
    lat = random_lattice(np.random.default_rng(seed))
    ours = archive([("utt", lat)])[len(b"utt "):]
    fst = to_kaldifst(lat)
    fst.write(str(tmp_path / "theirs.fst"))
    theirs = (tmp_path / "theirs.fst").read_bytes()
    assert len(ours) == len(theirs)
    assert ours[:PROPERTIES.start] + ours[PROPERTIES.stop:] == theirs[:PROPERTIES.start] + theirs[PROPERTIES.stop:]
    (tmp_path / "ours.fst").write_bytes(ours)
    assert kaldifst_contents(kaldifst.Lattice.read(str(tmp_path / "ours.fst"))) == our_contents(lat)


def test_empty_binary_lattice_matches_openfst(tmp_path):
    kaldifst.Lattice().write(str(tmp_path / "e.fst"))
    theirs = (tmp_path / "e.fst").read_bytes()
    ours = archive([("e", Lattice.empty())])[2:]
    assert ours[:PROPERTIES.start] + ours[PROPERTIES.stop:] == theirs[:PROPERTIES.start] + theirs[PROPERTIES.stop:]
    [(key, back)] = read_all(b"e " + theirs)
    assert key == "e" and back.num_states == 0


@pytest.mark.parametrize("seed", range(4))
def test_text_lattice_is_openfst_printer_text(seed):
    """Text objects are FstPrinter's lines (tabs, weight One left out), between
    the newline after the key and a blank line; kaldifst's print reads back."""
    lat = random_lattice(np.random.default_rng(seed), quantized=True)
    printed = to_kaldifst(lat).to_str(fst_field_separator="\t")
    assert archive([("u", lat)], binary=False) == b"u \n" + printed.encode() + b"\n"
    [(_, back)] = read_all(b"u \n" + printed.encode() + b"\n")
    assert_same(back, lat)


def test_kaldi_decoder_lattice_reads_back(tmp_path):
    """A raw lattice from Kaldi's LatticeSimpleDecoder (states not in topological
    order, epsilon arcs), written by OpenFst, reads back with the same paths."""
    kaldi_decoder = pytest.importorskip("kaldi_decoder")
    graph = kaldifst.compile("0 1 1 1 0.5\n1 1 1 0 0.1\n1 2 2 2 0.2\n0 2 2 3 1.0\n2 2 2 0 0.1\n2 0 0 0 0.3\n2 0.0\n")
    decoder = kaldi_decoder.LatticeSimpleDecoder(graph, kaldi_decoder.LatticeSimpleDecoderConfig(beam=20, lattice_beam=10))
    loglikes = np.log(np.random.default_rng(0).dirichlet(np.ones(3), size=6)).astype(np.float32)
    decoder.decode(kaldi_decoder.DecodableCtc(loglikes))
    ok, raw = decoder.get_raw_lattice()
    assert ok
    raw.write(str(tmp_path / "raw.fst"))
    contents = kaldifst_contents(raw)
    assert any(src > dst for src, dst, *_ in contents[2])  # the case that needs renumbering
    [(_, lat)] = read_all(b"utt1 " + (tmp_path / "raw.fst").read_bytes())
    assert np.all(lat.arc_src < lat.arc_dst) and np.all(np.diff(lat.state_frame) >= 0)
    assert np.array_equal(lat.state_frame[lat.arc_dst], lat.state_frame[lat.arc_src] + (lat.arc_ilabel != 0))
    assert lat.state_frame.max() == 6
    assert paths(*our_contents(lat)) == paths(*contents)
    [(_, text_lat)] = read_all(b"utt1 \n" + raw.to_str().encode() + b"\n")  # kaldifst's print, 6 digits
    assert np.array_equal(text_lat.arc_ilabel, lat.arc_ilabel) and np.allclose(
        text_lat.arc_acoustic_cost, lat.arc_acoustic_cost, rtol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_kaldifst_lattices_in_any_state_order_read_back(tmp_path, seed):
    rng = np.random.default_rng(seed)
    data = b""
    originals = []
    for i in range(3):
        lat = random_lattice(rng)
        fst = to_kaldifst(lat, state_order=rng.permutation(lat.num_states))
        fst.write(str(tmp_path / "x.fst"))
        data += f"utt{i} ".encode() + (tmp_path / "x.fst").read_bytes()
        originals.append((f"utt{i}", fst, lat))
    back = read_all(data)
    for (key, fst, lat), (got_key, got) in zip(originals, back):
        assert got_key == key
        assert paths(*our_contents(got)) == paths(*kaldifst_contents(fst)) == paths(*our_contents(lat))
        assert np.array_equal(np.sort(got.state_frame), np.sort(lat.state_frame))


# ------------------------------------------------------------------ our round trips
def _mixed_items(rng):
    return [("empty", Lattice.empty()), ("one", random_lattice(rng, frames=0)), ("l1", random_lattice(rng)),
            ("c1", random_compact_lattice(rng)), ("cempty", empty_compact_lattice()),
            ("c2", random_compact_lattice(rng, num_states=1)), ("l2", random_lattice(rng, frames=6))]


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip_appended_per_utterance(tmp_path, binary):
    rng = np.random.default_rng(7)
    items = _mixed_items(rng)
    path = tmp_path / "lat.ark"
    spec = f"ark{'' if binary else ',t'}:{path}"
    for i, item in enumerate(items):
        write_lattices(spec, [item], append=i > 0)
    back = list(read_lattices(spec))
    assert [k for k, _ in back] == [k for k, _ in items]
    for (_, want), (key, got) in zip(items, back):
        if key in ("empty", "one") and not binary:
            want = lattice_to_compact(want)  # no arcs, weight One: the text fits both types
        assert_same(got, want if binary else text_rounded(want))


def test_plain_path_binary_default_and_mixed_archive(tmp_path):
    rng = np.random.default_rng(3)
    lat, clat = random_lattice(rng), random_compact_lattice(rng)
    write_lattices(tmp_path / "a.ark", [("b", lat)])
    write_lattices(tmp_path / "a.ark", [("t", clat)], binary=False, append=True)
    data = (tmp_path / "a.ark").read_bytes()
    assert data.startswith(b"b \xd6\xfd\xb2\x7e") and b"t \n0\t" in data
    (_, got_lat), (_, got_clat) = read_lattices(str(tmp_path / "a.ark"))
    assert_same(got_lat, lat)
    assert_same(got_clat, text_rounded(clat))


def test_compact_lattice_binary_layout():
    """compactlattice44: weight = graph, acoustic, int32 n, n int32 ids (Kaldi's
    CompactLatticeWeightTpl::Write), assembled here by hand."""
    clat = CompactLattice(
        arc_src=np.array([0, 0], np.int32), arc_dst=np.array([1, 1], np.int32), arc_word=np.array([7, 0], np.int32),
        arc_graph_cost=np.array([0.5, 1.25], np.float32), arc_acoustic_cost=np.array([2.0, -1.0], np.float32),
        string_start=np.array([0, 2, 2]), string=np.array([11, 12], np.int32),
        final_graph_cost=np.array([INF, 0.25], np.float32), final_acoustic_cost=np.array([INF, 3.0], np.float32),
        final_string_start=np.array([0, 0, 1]), final_string=np.array([13], np.int32))
    header = (struct.pack("<Ii6si16siiQqqq", 0x7EB2FDD6, 6, b"vector", 16, b"compactlattice44", 2, 0, 3, 0, 2, 0))
    state0 = (struct.pack("<ffi", np.inf, np.inf, 0) + struct.pack("<q", 2)
              + struct.pack("<iiffi2ii", 7, 7, 0.5, 2.0, 2, 11, 12, 1) + struct.pack("<iiffii", 0, 0, 1.25, -1.0, 0, 1))
    state1 = struct.pack("<ffii", 0.25, 3.0, 1, 13) + struct.pack("<q", 0)
    expected = b"k " + header + state0 + state1
    assert archive([("k", clat)]) == expected
    [(_, back)] = read_all(expected)
    assert_same(back, clat)
    olabel_at = len(b"k " + header) + 12 + 8 + 4
    not_acceptor = expected[:olabel_at] + struct.pack("<i", 8) + expected[olabel_at + 4:]
    with pytest.raises(KaldiLatticeError, match=f"byte {olabel_at - 4}: .* acceptor"):
        read_all(not_acceptor)


def test_embedded_symbol_tables_are_skipped():
    lat = random_lattice(np.random.default_rng(9))
    obj = archive([("a", lat)])[2:]
    symbols = b"".join(struct.pack("<i", len(s)) + s + struct.pack("<q", k) for k, s in enumerate([b"<eps>", b"hi"]))
    table = struct.pack("<Ii", 0x7EB2FB74, 5) + b"words" + struct.pack("<qq", 2, 2) + symbols
    flags_at, body_at = PROPERTIES.start - 4, PROPERTIES.stop + 24
    obj = obj[:flags_at] + struct.pack("<i", 1) + obj[flags_at + 4:body_at] + table + obj[body_at:]
    [(_, back)] = read_all(b"a " + obj)
    assert_same(back, lat)


@pytest.mark.parametrize("seed", range(4))
def test_compact_round_trip_exact_in_binary_rounded_in_text(seed):
    rng = np.random.default_rng(100 + seed)
    clat = random_compact_lattice(rng, num_states=int(rng.integers(2, 9)))
    [(_, back)] = read_all(archive([("k", clat)]))
    assert_same(back, clat)
    [(_, back)] = read_all(archive([("k", clat)], binary=False))
    assert_same(back, text_rounded(clat))


# ------------------------------------------------------------------ hand-written text
def test_hand_written_compact_lattice_text():
    text = (b"utt-a \n"
            b"0\t1\t12\t1.5,20.25,3_3_4\n"
            b"0 2 0 0.5,1,5\n"   # spaces work too
            b"1\t2\t13\n"         # weight One
            b"2\t0.75,0,6_7\n"
            b"\n"
            b"utt-b \n0\n\n")     # a lone final state of weight One
    (key_a, a), (key_b, b) = read_all(text)
    assert (key_a, key_b) == ("utt-a", "utt-b")
    assert a.arc_word.tolist() == [12, 0, 13] and a.arc_dst.tolist() == [1, 2, 2]
    assert a.arc_graph_cost.tolist() == [1.5, 0.5, 0] and a.arc_acoustic_cost.tolist() == [20.25, 1, 0]
    assert a.string.tolist() == [3, 3, 4, 5] and a.string_start.tolist() == [0, 3, 4, 4]
    assert a.final_string.tolist() == [6, 7] and a.final_graph_cost[2] == np.float32(0.75)
    assert isinstance(b, CompactLattice) and b.num_states == 1 and b.final_graph_cost[0] == 0
    [(_, lat_b)] = read_all(b"utt-b \n0\n\n", kind=Lattice)
    assert isinstance(lat_b, Lattice) and lat_b.num_states == 1


def test_hand_written_lattice_text_out_of_order():
    """Start state 7, ids with gaps, an arc to a lower id: renumbered
    topologically, frames counted."""
    text = (b"x \n"
            b"7\t3\t4\t0\t1,2\n"
            b"7\t9\t0\t5\t0.5,0\n"
            b"9\t3\t6\t0\n"
            b"3\t1\t2\t8\t0,1\n"
            b"1\t2,3\n\n")
    [(_, lat)] = read_all(text)
    assert lat.state_frame.tolist() == [0, 0, 1, 2]
    assert lat.arc_src.tolist() == [0, 0, 1, 2] and lat.arc_dst.tolist() == [2, 1, 2, 3]
    assert lat.arc_ilabel.tolist() == [4, 0, 6, 2] and lat.arc_olabel.tolist() == [0, 5, 0, 8]
    assert lat.final_graph_cost.tolist() == [np.inf, np.inf, np.inf, 2.0]


def test_frames_that_disagree_need_compact_lattice():
    text = b"x \n0\t1\t3\t0\n0\t2\t0\t0\n2\t1\t0\t4\n1\n\n"
    with pytest.raises(KaldiLatticeError, match=r"key 'x'.*reached after both"):
        read_all(text)
    [(_, clat)] = read_all(text, kind=CompactLattice)
    assert sorted(clat.arc_word.tolist()) == [0, 0, 4] and clat.string.tolist() == [3]


def test_cycle_is_a_typed_error():
    with pytest.raises(KaldiLatticeError, match="cycle"):
        read_all(b"x \n0\t1\t3\t0\n1\t2\t3\t0\n2\t1\t3\t0\n2\n\n")


# ------------------------------------------------------------------ malformed input
@pytest.mark.parametrize("binary", [True, False])
def test_every_truncation_is_a_typed_error_or_a_shorter_archive(binary):
    rng = np.random.default_rng(5)
    data = archive([("a", random_lattice(rng, frames=2)), ("b", random_compact_lattice(rng, num_states=3))], binary)
    for cut in range(len(data)):
        try:
            got = read_all(data[:cut])
        except KaldiLatticeError as error:
            assert isinstance(error, LatticeError) and isinstance(error, WfstError) and isinstance(error, ValueError)
            assert error.key in ("a", "b", None) and (error.offset is not None or error.line is not None)
        else:
            assert not binary or len(got) < 2 or cut == len(data)  # binary objects cannot end early


def test_random_corruption_never_crashes():
    rng = np.random.default_rng(11)
    data = bytearray(archive([("a", random_lattice(rng)), ("b", random_compact_lattice(rng))]))
    for _ in range(300):
        bad = bytearray(data)
        for i in rng.integers(0, len(bad), 3):
            bad[i] = int(rng.integers(0, 256))
        try:
            read_all(bytes(bad))
        except KaldiLatticeError:
            pass


@pytest.mark.parametrize("field, value, message", [
    (PROPERTIES.stop + 8, 2**40, "claims"),  # num_states
    (PROPERTIES.stop + 24 + 8, 2**40, "bad arc count"),  # narcs of state 0
])
def test_bogus_counts_allocate_nothing(field, value, message):
    data = bytearray(archive([("a", random_lattice(np.random.default_rng(1)))]))
    struct.pack_into("<q", data, len(b"a ") + field, value)
    with pytest.raises(KaldiLatticeError, match=message):
        read_all(bytes(data))


def test_bogus_string_length():
    data = bytearray(archive([("a", random_compact_lattice(np.random.default_rng(1)))]))
    header = 4 + 10 + 20 + 4 + 4 + 8 + 24
    struct.pack_into("<i", data, 2 + header + 8, 2**30)  # state 0's final string length
    with pytest.raises(KaldiLatticeError, match="bad final string length"):
        read_all(bytes(data))


@pytest.mark.parametrize("text, message", [
    (b"k \n0\t1\t2\t3\t4\t5\n\n", "6 fields"),
    (b"k \n0\t1\t2\t3\tnan,0\n\n", "not allowed"),
    (b"k \n0\t1\t2\t3\t1,-Infinity\n\n", "not allowed"),
    (b"k \n0\t1\t2\t3\tInfinity,Infinity\n\n", "not finite"),
    (b"k \n0\t1\t2\t3\n1\t1,2,3\n\n", "earlier lines were Lattice"),
    (b"k \n0\t1\t2\t1,2,0\n1\n\n", "transition ids are positive"),
    (b"k \n0\t1\tx\t3\n\n", "input label 'x'"),
    (b"k \n-1\t1\t2\t3\n\n", "state id '-1'"),
    (b"k \n0\tInfinity,0\n\n", "both parts"),
    (b"k \n0\t1_0,2\n\n", "not a number"),
    (b"k 0\t1\n\n", "neither a text lattice"),
    (b"k \0B\x01", "another type"),
    (b"k", "ends after the key"),
])
def test_malformed_text_is_a_typed_error(text, message):
    with pytest.raises(KaldiLatticeError, match=message) as info:
        read_all(text)
    assert "'k'" in str(info.value) or "key" not in str(info.value)


def test_binary_header_errors(tmp_path):
    writer = kaldifst.VectorFstWriter(f"ark:{tmp_path}/g.ark")  # an archive of plain (tropical) FSTs
    writer.write("g", kaldifst.compile("0 1 1 1 0.5\n1 0\n"))
    writer.close()
    with pytest.raises(KaldiLatticeError, match="key 'g'.*arc type 'standard' is not a Kaldi lattice"):
        list(read_lattices(f"ark:{tmp_path}/g.ark"))
    data = archive([("a", random_lattice(np.random.default_rng(2)))])
    with pytest.raises(KaldiLatticeError, match="FST type 'const_'"):
        read_all(data.replace(b"vector", b"const_"))


def _two_state_lattice() -> Lattice:
    """0 -3:4/(1,2)-> 1, state 1 final (0.5, 0.25)."""
    [(_, lat)] = read_all(b"x \n0\t1\t3\t4\t1,2\n1\t0.5,0.25\n\n")
    return lat


# byte offsets in a 'lattice4' object: version, start, state 0's final acoustic cost, its first arc's ilabel
@pytest.mark.parametrize("at, fmt, value, message", [
    (PROPERTIES.start - 8, "<i", 1, "unsupported vector FST version 1"),
    (PROPERTIES.stop, "<q", 2, "start state 2 does not exist"),
    (PROPERTIES.stop + 24 + 4, "<f", 1.0, r"state 0: final weight \(inf, 1.0\) is not a lattice weight"),
    (PROPERTIES.stop + 24 + 16, "<i", -1, "arc 0: negative label -1"),
])
def test_binary_values_no_lattice_holds_are_refused(at, fmt, value, message):
    data = bytearray(archive([("a", _two_state_lattice())]))
    assert read_all(bytes(data))  # (as written, it reads)
    struct.pack_into(fmt, data, len(b"a ") + at, value)
    with pytest.raises(KaldiLatticeError, match=message):
        read_all(bytes(data))


def test_a_zero_transition_id_in_a_binary_string_names_its_arc():
    [(_, clat)] = read_all(b"k \n0\t1\t5\t1,2,7_8\n0\t1\t6\t1,2,9_10\n1\n\n")
    data = bytearray(archive([("k", clat)]))
    tid = data.index(struct.pack("<ii", 9, 10))  # the second arc's string
    data[tid:tid + 4] = struct.pack("<i", 0)
    with pytest.raises(KaldiLatticeError, match="transition ids are positive") as info:
        read_all(bytes(data))
    assert info.value.offset == tid - 20  # the arc's record: ilabel, olabel, graph, acoustic, string length


def test_text_weights_keep_their_strings():
    # an arc of weight (0, 0) still carries its string; a later final line for a state replaces an earlier one
    [(_, clat)] = read_all(b"k \n0\t1\t5\t0,0,3_4\n1\t1,2,5_6\n1\n\n")
    assert clat.string.tolist() == [3, 4] and clat.final_string.size == 0
    assert clat.final_graph_cost.tolist() == [np.inf, 0.0]
    [(_, back)] = read_all(archive([("k", clat)], binary=False))
    assert_same(back, clat)
    with pytest.raises(KaldiLatticeError, match="the weight Zero has no string"):
        read_all(b"k \n0\t1\t5\n1\tInfinity,Infinity,3\n\n")


def test_archive_layouts_kaldi_reads():
    lat = _two_state_lattice()
    text = b"x \n0\t1\t3\t4\t1,2\n1\t0.5,0.25\n\n"
    # a key followed by its text object's newline (no space), and Windows line ends
    for variant in (text.replace(b"x \n", b"x\n"), text.replace(b"\n", b"\r\n")):
        [(key, got)] = read_all(variant)
        assert key == "x"
        assert_same(got, lat)
    # a file object is written in binary unless told otherwise
    out = io.BytesIO()
    write_lattices(out, [("x", lat)])
    assert out.getvalue() == archive([("x", lat)], binary=True)


def test_an_empty_archive_file_holds_no_entries(tmp_path):
    (tmp_path / "empty.ark").write_bytes(b"")
    assert list(read_lattices(tmp_path / "empty.ark")) == []


def test_specifier_and_argument_errors(tmp_path):
    lat = _two_state_lattice()
    for spec, message in [(f"ark,t,b:{tmp_path}/a.ark", "both 't' and 'b'"), ("ark:", "no path after"),
                          (f"ark,zz:{tmp_path}/a.ark", "unsupported option")]:
        with pytest.raises(KaldiLatticeError, match=message):
            write_lattices(spec, [("k", lat)])
        with pytest.raises(KaldiLatticeError, match=message):
            list(read_lattices(spec))
    assert not (tmp_path / "a.ark").exists()
    with pytest.raises(TypeError, match="kind must be"):
        list(read_lattices(io.BytesIO(archive([("k", lat)])), kind=str))
    with pytest.raises(TypeError, match="binary mode"):
        list(read_lattices(io.StringIO("k \n0\n\n")))


def test_commands_and_gzip_archives_say_to_pass_a_gzip_file_object(tmp_path):
    """Kaldi keeps lattices as lat.N.gz, read through 'ark:gunzip -c lat.N.gz |': no command is run
    here, and a compressed archive is refused by name; gzip.open reads it."""
    import gzip
    lat = _two_state_lattice()
    with gzip.open(tmp_path / "lat.1.gz", "wb") as file:
        write_lattices(file, [("k", lat)])
    with pytest.raises(KaldiLatticeError, match=r"commands \('\|'\) are not run.*gzip.open"):
        list(read_lattices(f"ark:gunzip -c {tmp_path}/lat.1.gz |"))
    with pytest.raises(KaldiLatticeError, match=r"commands \('\|'\) are not run"):
        write_lattices(f"ark:| gzip -c > {tmp_path}/lat.2.gz", [("k", lat)])
    with pytest.raises(KaldiLatticeError, match="gzip-compressed.*gzip.open"):
        list(read_lattices(f"ark:{tmp_path}/lat.1.gz"))
    assert [key for key, _ in read_lattices(gzip.open(tmp_path / "lat.1.gz"))] == ["k"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lat.1.gz"]


def test_a_mapping_is_written_as_its_items(tmp_path):
    lats = {"a": random_lattice(np.random.default_rng(1)), "b": random_lattice(np.random.default_rng(2))}
    write_lattices(tmp_path / "m.ark", lats)
    assert [key for key, _ in read_lattices(tmp_path / "m.ark")] == ["a", "b"]


def test_an_archive_rewritten_from_itself_is_never_lost(tmp_path):
    """A generator may read the archive it rewrites: the file keeps its old
    content until the last entry is written, and keeps it whole when the
    writing fails part-way (no temporary file is left). Appending reads the
    entries that were there; a device is written, not replaced."""
    lats = [(f"u{i}", random_lattice(np.random.default_rng(i))) for i in range(3)]
    path = tmp_path / "lat.ark"
    write_lattices(f"ark:{path}", lats)
    original = path.read_bytes()
    write_lattices(f"ark:{path}", ((key, lat) for key, lat in read_lattices(f"ark:{path}")))
    assert path.read_bytes() == original

    def failing():
        yield from read_lattices(path)
        yield "bad key", lats[0][1]
    with pytest.raises(KaldiLatticeError, match="Kaldi keys"):
        write_lattices(f"ark,t:{path}", failing())
    assert path.read_bytes() == original and sorted(p.name for p in tmp_path.iterdir()) == ["lat.ark"]
    write_lattices(path, read_lattices(path), append=True)
    assert path.read_bytes() == original * 2
    write_lattices("ark:/dev/null", lats)
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_write_errors(tmp_path):
    lat = random_lattice(np.random.default_rng(0))
    for key in ["", "two words", "tab\tkey", 5]:
        with pytest.raises(KaldiLatticeError, match="Kaldi keys"):
            archive([(key, lat)])
    bad = Lattice(**{**{n: getattr(lat, n) for n in lat.__dataclass_fields__},
                     "arc_graph_cost": np.full(lat.num_arcs, np.nan, np.float32)})
    with pytest.raises(KaldiLatticeError, match="arc cost is not finite"):
        archive([("k", bad)])
    fields = {n: getattr(lat, n) for n in lat.__dataclass_fields__}
    infinite = np.array(lat.arc_acoustic_cost)
    infinite[0] = np.inf  # (read_lattices refuses it: the writer must too)
    with pytest.raises(KaldiLatticeError, match="arc cost is not finite"):
        archive([("k", Lattice(**{**fields, "arc_acoustic_cost": infinite}))])
    nan_final = np.array(lat.final_graph_cost)
    nan_final[-1] = np.nan
    with pytest.raises(KaldiLatticeError, match="final cost is NaN"):
        archive([("k", Lattice(**{**fields, "final_graph_cost": nan_final}))])
    neg_final = np.array(lat.final_graph_cost)
    neg_final[-1] = -np.inf
    with pytest.raises(KaldiLatticeError, match="-inf"):
        archive([("k", Lattice(**{**fields, "final_graph_cost": neg_final}))])
    with pytest.raises(KaldiLatticeError, match="Kaldi keys"):
        archive([("bell\x07", lat)])  # unprintable: no Kaldi tool reads it back
    with pytest.raises(TypeError):
        archive([("k", "not a lattice")])
    with pytest.raises(KaldiLatticeError, match="scp"):
        write_lattices(f"ark,scp:{tmp_path}/a.ark,{tmp_path}/a.scp", [("k", lat)])
    with pytest.raises(KaldiLatticeError, match="binary=True"):
        write_lattices(f"ark,t:{tmp_path}/a.ark", [("k", lat)], binary=True)
    with pytest.raises(TypeError, match="binary mode"):
        write_lattices(io.StringIO(), [("k", lat)])


# ------------------------------------------------------------------ ConvertLattice
def _no_chain_states(clat: CompactLattice) -> CompactLattice:
    """``clat`` with a word on the arc out of every state that Kaldi's Factor
    would merge (one arc in, one out, not final, not the start)."""
    word = clat.arc_word.copy()
    into = np.bincount(clat.arc_dst, minlength=clat.num_states)
    out = np.bincount(clat.arc_src, minlength=clat.num_states)
    for a in range(clat.num_arcs):
        s = clat.arc_src[a]
        if s and into[s] == 1 and out[s] == 1 and clat.final_graph_cost[s] == np.inf and word[a] == 0:
            word[a] = 99
    return CompactLattice(**{**{n: getattr(clat, n) for n in clat.__dataclass_fields__}, "arc_word": word})


def _frame_synchronous(clat: CompactLattice) -> bool:
    frames = np.full(clat.num_states, -1)
    frames[0] = 0
    for a in range(clat.num_arcs):
        n = clat.string_start[a + 1] - clat.string_start[a]
        d, f = clat.arc_dst[a], frames[clat.arc_src[a]] + n
        if frames[d] not in (-1, f):
            return False
        frames[d] = f
    return True


def test_compact_lattice_to_lattice_and_back():
    rng = np.random.default_rng(21)
    done = 0
    for _ in range(60):
        clat = _no_chain_states(random_compact_lattice(rng, num_states=int(rng.integers(1, 7)), final_strings=False))
        if not _frame_synchronous(clat):
            continue
        lat = compact_to_lattice(clat)
        assert np.all(lat.arc_src < lat.arc_dst) and np.all(np.diff(lat.state_frame) >= 0)
        assert np.array_equal(lat.state_frame[lat.arc_dst], lat.state_frame[lat.arc_src] + (lat.arc_ilabel != 0))
        assert_same(lattice_to_compact(lat), clat)
        done += 1
    assert done >= 10


def test_final_strings_become_chains():
    clat = random_compact_lattice(np.random.default_rng(4), num_states=1)
    clat = CompactLattice(**{**{n: getattr(clat, n) for n in clat.__dataclass_fields__},
                             "final_graph_cost": np.array([1.5], np.float32),
                             "final_acoustic_cost": np.array([2.5], np.float32),
                             "final_string_start": np.array([0, 2]), "final_string": np.array([8, 9], np.int32)})
    lat = compact_to_lattice(clat)
    assert lat.state_frame.tolist() == [0, 1, 2]
    assert lat.arc_ilabel.tolist() == [8, 9] and lat.arc_olabel.tolist() == [0, 0]
    assert lat.arc_graph_cost.tolist() == [1.5, 0] and lat.final_graph_cost.tolist() == [np.inf, np.inf, 0]
    back = lattice_to_compact(lat)  # Factor leaves final strings empty: the string moves onto an arc
    assert back.arc_word.tolist() == [0] and back.string.tolist() == [8, 9] and back.final_string.size == 0


def test_a_compact_arc_becomes_a_chain_with_its_word_and_weight_on_the_first_arc():
    """ConvertLattice: an arc with word w, weight W and string t1 t2 t3 becomes
    t1:w/W, t2:0/One, t3:0/One (lattice.convert's docstring), so the word's
    label sits at its first frame, where Kaldi puts it."""
    clat = CompactLattice(
        arc_src=np.array([0], np.int32), arc_dst=np.array([1], np.int32), arc_word=np.array([7], np.int32),
        arc_graph_cost=np.array([1.5], np.float32), arc_acoustic_cost=np.array([2.5], np.float32),
        string_start=np.array([0, 3]), string=np.array([3, 4, 5], np.int32),
        final_graph_cost=np.array([INF, 0.5], np.float32), final_acoustic_cost=np.array([INF, 0.25], np.float32),
        final_string_start=np.zeros(3, np.int64), final_string=np.zeros(0, np.int32))
    lat = compact_to_lattice(clat).validate()
    assert lat.state_frame.tolist() == [0, 1, 2, 3] and lat.arc_src.tolist() == [0, 1, 2]
    assert lat.arc_ilabel.tolist() == [3, 4, 5] and lat.arc_olabel.tolist() == [7, 0, 0]
    assert lat.arc_graph_cost.tolist() == [1.5, 0, 0] and lat.arc_acoustic_cost.tolist() == [2.5, 0, 0]
    assert lat.final_graph_cost.tolist() == [INF, INF, INF, 0.5]
    assert lat.final_acoustic_cost.tolist() == [INF, INF, INF, 0.25]
    assert lat.word_alignment() == [(7, 0, 2)]


def test_factor_never_makes_the_start_state_the_middle_of_a_chain():
    """Kaldi's Factor keeps the start state a state even when it has one arc in
    (here from a state it does not reach, as a lattice read in any state order
    may have) and one arc out without a word: the start's path survives."""
    from lattice.convert import factor
    from tests.lattice_paths import compact_paths

    # start 1; 0 -4:9-> 1 (0 unreachable from the start), 1 -5:0/2-> 2 -6:7/3-> 3, final 0.5 + 0.5
    final = np.array([INF, INF, INF, 0.5], np.float32)
    clat = factor(1, final, final.copy(), [0, 1, 2], [1, 2, 3], [4, 5, 6], [9, 0, 7],
                  np.array([1, 2, 3], np.float32), np.zeros(3, np.float32))
    assert compact_paths(clat) == [((7,), 5.5, 0.5, (5, 6))]


@pytest.mark.parametrize("seed", range(3))
def test_lattice_to_compact_keeps_paths(seed):
    lat = random_lattice(np.random.default_rng(seed), frames=5)
    clat = lattice_to_compact(lat)
    again = compact_to_lattice(clat)

    def word_paths(lattice):
        start, finals, arcs = our_contents(lattice)
        return sorted(
            (tuple(a[0] for a in p if a[0]), tuple(a[1] for a in p if a[1]),
             round(sum(a[2] for a in p) + f[0], 3), round(sum(a[3] for a in p) + f[1], 3))
            for p, f in paths(start, finals, arcs))

    assert word_paths(again) == word_paths(lat)
    [(_, read_as_compact)] = read_all(archive([("k", lat)]), kind=CompactLattice)
    assert_same(read_as_compact, clat)
    [(_, read_as_lattice)] = read_all(archive([("k", clat)]), kind=Lattice)
    assert_same(read_as_lattice, again)
