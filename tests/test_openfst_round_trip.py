"""OpenFst binaries written by pynini read back exactly; ours read back in
pynini; the native cache round-trips bit for bit."""

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import pywrapfst

from wfst import CsrFst, read_fst
from wfst.openfst_binary import write_openfst

from .random_fst import csr_via_pynini_api, random_pynini_fst

SEEDS = range(300)


def assert_same(got: CsrFst, expected: CsrFst):
    assert got.num_states == expected.num_states
    assert got.start == expected.start
    np.testing.assert_array_equal(got.final, expected.final)
    np.testing.assert_array_equal(got.arc_table(), expected.arc_table())
    assert got.same_as(expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_pynini_files_read_back(tmp_path, seed):
    fst = random_pynini_fst(seed)
    expected = csr_via_pynini_api(fst)
    fst.write(str(tmp_path / "g.vector.fst"))
    pywrapfst.convert(fst, "const").write(str(tmp_path / "g.const.fst"))
    for name in ("g.vector.fst", "g.const.fst"):
        got = read_fst(tmp_path / name)
        assert_same(got, expected)
        assert got.num_emitting_arcs == int(np.count_nonzero(expected.ilabel))


@pytest.mark.parametrize("seed", SEEDS)
def test_to_pynini_equals_original(seed):
    fst = random_pynini_fst(seed)
    back = CsrFst.from_pynini(fst).to_pynini()
    assert back.num_states() == fst.num_states() and back.start() == fst.start()
    assert_same(csr_via_pynini_api(back), csr_via_pynini_api(fst))


@pytest.mark.parametrize("seed", range(0, 300, 3))
@pytest.mark.parametrize("fst_type, align", [("vector", False), ("const", False), ("const", True)])
def test_our_openfst_files_read_by_pynini(tmp_path, seed, fst_type, align):
    fst = random_pynini_fst(seed)
    path = tmp_path / "ours.fst"
    path.write_bytes(write_openfst(CsrFst.from_pynini(fst), fst_type, align=align))
    theirs = pywrapfst.Fst.read(str(path))
    assert theirs.fst_type() == fst_type
    assert_same(csr_via_pynini_api(theirs), csr_via_pynini_api(fst))
    assert_same(read_fst(path), csr_via_pynini_api(fst))
    # what OpenFst takes from the file without recounting: a const FST's per-state epsilon counts, the
    # header's expanded / mutable properties (as OpenFst's own writer of that type records them)
    states = list(fst.states())
    assert [theirs.num_input_epsilons(s) for s in states] == [fst.num_input_epsilons(s) for s in states]
    assert [theirs.num_output_epsilons(s) for s in states] == [fst.num_output_epsilons(s) for s in states]
    static = pywrapfst.EXPANDED | pywrapfst.MUTABLE
    own = pywrapfst.convert(fst, fst_type)
    assert theirs.properties(static, False) == own.properties(static, False)


@pytest.mark.parametrize("seed", range(0, 300, 2))
def test_cache_round_trips_bit_for_bit(tmp_path, seed):
    original = CsrFst.from_pynini(random_pynini_fst(seed))
    original.save(tmp_path / "g.wfst")
    loaded = read_fst(tmp_path / "g.wfst")
    for name in ("final", "e_offsets", "ne_offsets", "nextstate", "weight", "ilabel", "olabel"):
        a, b = getattr(original, name), getattr(loaded, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert loaded.start == original.start
    loaded.save(tmp_path / "again.wfst")
    assert (tmp_path / "again.wfst").read_bytes() == (tmp_path / "g.wfst").read_bytes()


def test_cache_is_memory_mapped_read_only(tmp_path):
    CsrFst.from_pynini(random_pynini_fst(11)).save(tmp_path / "g.wfst")
    loaded = read_fst(tmp_path / "g.wfst")
    assert isinstance(loaded.nextstate.base, np.memmap) or isinstance(loaded.nextstate.base.base, np.memmap)
    assert not loaded.weight.flags.writeable
    with pytest.raises(IsADirectoryError, match="is a directory"):
        loaded.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.wfst"]  # no temporary file left


def test_threads_saving_one_cache_at_once_leave_it_whole(tmp_path):
    """Threads saving graphs to one path while others read it: each writer has
    its own temporary file (one per process was shared: one thread's rename
    took another's, FileNotFoundError, and readers saw truncated caches), so
    every read and the file left hold one of the graphs, whole."""
    graphs = [CsrFst.from_pynini(random_pynini_fst(seed)) for seed in range(3)]
    path = tmp_path / "g.wfst"
    graphs[0].save(path)
    barrier = threading.Barrier(5)

    def save(k):
        barrier.wait()
        for _ in range(40):
            graphs[k].save(path)

    def read(_):
        barrier.wait()
        for _ in range(40):
            loaded = read_fst(path)
            assert any(loaded.same_as(g) for g in graphs)

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(save, k) for k in range(3)] + [pool.submit(read, k) for k in range(2)]
        for future in futures:
            future.result()
    assert any(read_fst(path).same_as(g) for g in graphs)
    assert [p.name for p in tmp_path.iterdir()] == ["g.wfst"]


@pytest.mark.parametrize("fst_type", ["const", "vector"])
def test_writing_over_the_file_a_graph_was_read_from_keeps_both(tmp_path, fst_type):
    """A graph read from a cache (memory-mapped) written as OpenFst over that
    same file: the file holds the new graph and the graph read from it stays
    readable. Writing in place truncated the file under the mapping first: the
    process died of SIGBUS and the file was left empty (a subprocess, so that
    such a death fails this test rather than the run)."""
    path = tmp_path / "g.fst"
    original = CsrFst.from_pynini(random_pynini_fst(5))
    original.save(path)
    script = (f"import sys, wfst\nfst = wfst.read_fst(sys.argv[1])\nfst.write(sys.argv[1], {fst_type!r})\n"
              "assert wfst.read_fst(sys.argv[1]).same_as(fst)\nprint(fst.validate().num_arcs)")  # reads every array
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == original.num_arcs
    assert read_fst(path).same_as(original)
    assert [p.name for p in tmp_path.iterdir()] == ["g.fst"]


def test_writing_through_a_symbolic_link_replaces_its_target(tmp_path):
    """Graphs are often linked into place (Kaldi's graph directories): writing
    through the link replaces what it points to and leaves the link a link."""
    target, link = tmp_path / "HCLG.fst", tmp_path / "linked.fst"
    CsrFst.from_pynini(random_pynini_fst(5)).save(target)
    link.symlink_to(target)
    graph = CsrFst.from_pynini(random_pynini_fst(6))
    graph.write(link)
    assert link.is_symlink() and read_fst(target).same_as(graph)
    graph.save(link)
    assert link.is_symlink() and read_fst(target).same_as(graph)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["HCLG.fst", "linked.fst"]


def test_a_file_replaced_keeps_its_permissions(tmp_path):
    """A graph written over a file keeps that file's permission bits (a
    read-only-for-others graph stays so), as truncating it in place did."""
    path = tmp_path / "HCLG.fst"
    CsrFst.from_pynini(random_pynini_fst(5)).write(path)
    path.chmod(0o640)
    CsrFst.from_pynini(random_pynini_fst(6)).write(path)
    CsrFst.from_pynini(random_pynini_fst(7)).save(path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_embedded_symbol_tables_are_skipped(tmp_path):
    import pynini

    fst = random_pynini_fst(5)
    table = pynini.SymbolTable()
    for i in range(8):
        table.add_symbol(f"w{i}", i)
    fst.set_input_symbols(table)
    fst.set_output_symbols(table)
    fst.write(str(tmp_path / "v.fst"))
    pywrapfst.convert(fst, "const").write(str(tmp_path / "c.fst"))
    for name in ("v.fst", "c.fst"):
        assert_same(read_fst(tmp_path / name), csr_via_pynini_api(fst))


def test_format_is_detected_from_content_not_name(tmp_path):
    fst = random_pynini_fst(21)
    pywrapfst.convert(fst, "const").write(str(tmp_path / "graph.txt"))
    CsrFst.from_pynini(fst).save(tmp_path / "graph.fst")
    assert_same(read_fst(tmp_path / "graph.txt"), csr_via_pynini_api(fst))
    assert_same(read_fst(tmp_path / "graph.fst"), csr_via_pynini_api(fst))


def test_version_1_const_files_are_aligned(tmp_path):
    """Const files of version 1 (older OpenFst) are always 16-byte aligned,
    whatever their flags say."""
    import struct

    fst = random_pynini_fst(6)
    data = bytearray(write_openfst(CsrFst.from_pynini(fst), "const", align=True))
    header_end = data.index(b"standard") + len(b"standard")
    struct.pack_into("<ii", data, header_end, 1, 0)  # version 1, no flags
    (tmp_path / "v1.fst").write_bytes(bytes(data))
    assert_same(read_fst(tmp_path / "v1.fst"), csr_via_pynini_api(fst))


def test_vector_with_unknown_state_count_reads_to_end(tmp_path):
    """OpenFst leaves num_states = -1 when it cannot seek back to fix the header."""
    import struct

    fst = random_pynini_fst(4)
    data = bytearray(fst.write_to_string())
    header_end = data.index(b"standard") + len(b"standard") + 4 + 4 + 8
    struct.pack_into("<q", data, header_end + 8, -1)
    (tmp_path / "v.fst").write_bytes(bytes(data))
    assert_same(read_fst(tmp_path / "v.fst"), csr_via_pynini_api(fst))


def test_csr_layout_splits_emitting_and_epsilon_arcs():
    fst = CsrFst.from_pynini(random_pynini_fst(8))
    src = fst.arc_sources()
    E = fst.num_emitting_arcs
    assert np.all(fst.ilabel[:E] != 0) and np.all(fst.ilabel[E:] == 0)
    for s in range(fst.num_states):
        assert np.all(src[fst.e_offsets[s]:fst.e_offsets[s + 1]] == s)
        assert np.all(src[fst.ne_offsets[s]:fst.ne_offsets[s + 1]] == s)
    assert fst.max_ilabel == max(int(fst.ilabel.max(initial=0)), 0)


def test_cache_file_is_laid_out_as_documented(tmp_path):
    """wfst.cache_format's layout: a 64-byte header (magic, version 1, reserved
    0, S, A, E, start), then final, e_offsets, ne_offsets, nextstate, weight,
    ilabel and olabel, little-endian, each starting at a multiple of 64 bytes,
    and nothing after the last."""
    import struct

    fst = CsrFst.from_arcs(3, 1, np.array([np.inf, 0.5, 0.0], np.float32), np.array([0, 1, 1, 2, 2]),
                           np.array([1, 2, 0, 2, 0]), np.array([3, 0, 4, 1, 0]), np.array([7, 0, 8, 9, 0]),
                           np.array([0.25, 1.0, 0.5, 2.0, 0.0], np.float32)).validate()
    fst.save(tmp_path / "g.wfst")
    data = (tmp_path / "g.wfst").read_bytes()
    S, A = fst.num_states, fst.num_arcs  # 3 and 5: arrays of 12 to 20 bytes, each padded to the next 64
    assert data[:8] == b"WFSTCSR\0"
    assert struct.unpack_from("<IIqqqq", data, 8) == (1, 0, S, A, fst.num_emitting_arcs, fst.start)
    assert data[48:64] == bytes(16)
    offset = 64
    for name, dtype, length in [("final", "<f4", S), ("e_offsets", "<i4", S + 1), ("ne_offsets", "<i4", S + 1),
                                ("nextstate", "<i4", A), ("weight", "<f4", A), ("ilabel", "<i4", A),
                                ("olabel", "<i4", A)]:
        offset = (offset + 63) // 64 * 64
        assert data[offset:offset + 4 * length] == getattr(fst, name).astype(dtype).tobytes(), name
        offset += 4 * length
    assert len(data) == offset


def test_from_arcs_groups_arcs_by_state_keeping_their_order():
    """from_arcs takes arcs in any order: each state's emitting arcs, then (in
    the non-emitting block) its epsilon arcs, each in their input order, with
    offsets counting them; an arc from a state beyond num_states is refused.
    The arrays are read-only; the caller's stay writable."""
    from wfst.csr import InvariantError

    rng = np.random.default_rng(0)
    S, n = 7, 500
    src = rng.integers(0, S, n).astype(np.int32)
    ilabel = rng.integers(0, 3, n).astype(np.int32)  # a third are epsilons
    position = np.arange(n, dtype=np.int32)  # carried as the output label
    fst = CsrFst.from_arcs(S, 0, np.zeros(S, np.float32), src, np.zeros(n, np.int32), ilabel, position,
                           np.zeros(n, np.float32)).validate()
    E = int(np.count_nonzero(ilabel))
    assert fst.num_emitting_arcs == E and fst.e_offsets[0] == 0 and fst.ne_offsets[0] == E
    for s in range(S):
        emitting = [a for a in range(n) if src[a] == s and ilabel[a] != 0]
        epsilon = [a for a in range(n) if src[a] == s and ilabel[a] == 0]
        assert fst.olabel[fst.e_offsets[s]:fst.e_offsets[s + 1]].tolist() == emitting, s
        assert fst.olabel[fst.ne_offsets[s]:fst.ne_offsets[s + 1]].tolist() == epsilon, s
    assert not fst.olabel.flags.writeable and position.flags.writeable
    src[-1] = S
    with pytest.raises(InvariantError, match=f"leaves state {S}"):
        CsrFst.from_arcs(S, 0, np.zeros(S, np.float32), src, np.zeros(n, np.int32), ilabel, position,
                         np.zeros(n, np.float32))
