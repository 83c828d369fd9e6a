"""``wfst-decode --lattices`` and ``--nbest``: the archive and the n-best list
against the Python API, read back through kaldifst and ``lattice.read_lattices``,
and resumption after a crash that left uncommitted or torn lattice entries.

The example is decoded at acoustic scale 0.5 (not its own 1.0), so that a
lattice written with its acoustic costs still scaled would differ."""

import io

import pytest

import wfst
from lattice import CompactLattice, Lattice, read_lattices, write_lattices
from lattice.convert import compact_to_lattice
from tests.lattice_paths import assert_same_arrays
from tests.test_cli_decode import decode, workload
from wfst.cli_decode import EXIT_OK, EXIT_UNUSABLE
from wfst.decode_outputs import complete_lines
from wfst.example import load_example

kaldifst = pytest.importorskip("kaldifst")

SCALE = 0.5
IDS = [0, 3, 7, 11]


@pytest.fixture(scope="module")
def ex():
    return load_example()


@pytest.fixture(scope="module")
def subset(ex, tmp_path_factory):
    """Four of the example's utterances as a workload .npz, and their API results."""
    data = workload(ex, ids=IDS)
    path = tmp_path_factory.mktemp("scores") / "subset.npz"
    data.save(path)
    results = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=SCALE)).decode(
        [data.utterance(i) for i in range(len(data))])
    return path, dict(zip(data.utt_ids, results))


def run(ex, scores, outdir, *options):
    return decode(ex, scores, outdir, "--acoustic-scale", SCALE, *options)


def entry_objects(outdir):
    """``utt-id -> bytes of its object`` in lat.ark, cut at the ranges lat.index gives."""
    data = (outdir / "lat.ark").read_bytes()
    objects = {}
    for line in complete_lines(outdir / "lat.index"):
        utt_id, start, end = line.split()
        assert data[int(start):int(start) + len(utt_id) + 1] == f"{utt_id} ".encode()
        objects[utt_id] = data[int(start) + len(utt_id) + 1:int(end)]
    assert int(end) == len(data)
    return objects


@pytest.mark.parametrize("determinize", [True, False])
def test_binary_lattices_equal_the_api_unscaled(ex, subset, tmp_path, determinize):
    scores, results = subset
    out = tmp_path / "out"
    assert run(ex, scores, out, "--lattices", *([] if determinize else ["--no-determinize-lattice"])) == EXIT_OK
    back = list(read_lattices(f"ark:{out / 'lat.ark'}"))
    assert [key for key, _ in back] == list(results)
    for (utt_id, lat), result in zip(back, results.values()):
        if determinize:  # determinized at the decoding scale, then unscaled, as latgen-faster does
            expected = result.lattice.determinize().scale(acoustic=1 / SCALE)
        else:
            expected = result.lattice.scale(acoustic=1 / SCALE)
        assert_same_arrays(lat, expected)
        # Rescaled by the decoding's scale, its best path is the decoder's.
        state_level = lat if isinstance(lat, Lattice) else compact_to_lattice(lat)
        best = state_level.scale(acoustic=SCALE).best_path()
        assert best.words == result.words and best.cost == pytest.approx(result.cost, rel=1e-5)
    if not determinize:  # OpenFst's own reader (kaldifst has no CompactLattice) reads each object
        from tests.test_lattice_kaldi_archive import kaldifst_contents, our_contents

        for (utt_id, lat), (key, body) in zip(back, entry_objects(out).items()):
            (tmp_path / "one.fst").write_bytes(body)
            assert key == utt_id
            assert kaldifst_contents(kaldifst.Lattice.read(str(tmp_path / "one.fst"))) == our_contents(lat)


@pytest.mark.parametrize("determinize", [True, False])
def test_text_lattices_are_what_the_api_writes(ex, subset, tmp_path, determinize):
    scores, results = subset
    out = tmp_path / "out"
    options = ["--lattices", "--lattice-format", "text", *([] if determinize else ["--no-determinize-lattice"])]
    assert run(ex, scores, out, *options) == EXIT_OK
    expected = io.BytesIO()
    write_lattices(expected, [(u, r.lattice.determinize().scale(acoustic=1 / SCALE) if determinize
                               else r.lattice.scale(acoustic=1 / SCALE)) for u, r in results.items()], binary=False)
    assert (out / "lat.ark").read_bytes() == expected.getvalue()
    kinds = {type(lat) for _, lat in read_lattices(f"ark,t:{out / 'lat.ark'}")}
    assert kinds == {CompactLattice if determinize else Lattice}


def test_nbest_equals_the_api(ex, subset, tmp_path):
    scores, results = subset
    out = tmp_path / "out"
    assert run(ex, scores, out, "--nbest", 4) == EXIT_OK
    lines = [line.split() for line in (out / "nbest").read_text().splitlines()]
    expected = [[u, str(rank), f"{p.cost:.4f}", f"{p.graph_cost:.4f}", f"{p.acoustic_cost:.4f}",
                 *(ex.words[w] for w in p.words)]
                for u, r in results.items() for rank, p in enumerate(r.lattice.nbest(4), 1)]
    assert lines == expected
    assert len(lines) > len(results)  # some utterances have alternatives
    firsts = {fields[0]: fields[5:] for fields in lines if fields[1] == "1"}
    assert firsts == {u: [ex.words[w] for w in r.words] for u, r in results.items()}


@pytest.mark.parametrize("options", [["--lattices", "--nbest", "2"],
                                     ["--lattices", "--no-determinize-lattice", "--lattice-format", "text"]])
def test_resume_drops_uncommitted_and_torn_lattices(ex, tmp_path, options):
    """A crash after lat.ark and lat.index were written for utterances that text
    lacks, the last entry torn: resuming gives the uninterrupted run's files."""
    full, part = tmp_path / "full", tmp_path / "part"
    assert decode(ex, ex.scores_path, full, *options) == EXIT_OK
    assert decode(ex, ex.scores_path, part, *options) == EXIT_OK
    index = complete_lines(part / "lat.index")
    text = complete_lines(part / "text")
    (part / "text").write_text("".join(text[:5]) + text[5][:4])
    torn_at = int(index[8].split()[1]) + 40  # inside the ninth entry
    (part / "lat.ark").write_bytes((part / "lat.ark").read_bytes()[:torn_at])
    (part / "lat.index").write_text("".join(index[:8]) + index[8][:6])
    if (part / "nbest").exists():
        (part / "nbest").write_text((part / "nbest").read_text()[:-3])
    assert decode(ex, ex.scores_path, part, *options, "--resume") == EXIT_OK
    for name in ("text", "lat.ark", "lat.index", "nbest"):
        assert (part / name).exists() == (full / name).exists()
        if (full / name).exists():
            assert (part / name).read_bytes() == (full / name).read_bytes(), name


def test_resume_refuses_an_archive_shorter_than_its_index(ex, tmp_path, capsys):
    out = tmp_path / "out"
    assert decode(ex, ex.scores_path, out, "--lattices") == EXIT_OK
    data = (out / "lat.ark").read_bytes()
    (out / "lat.ark").write_bytes(data[:-10])
    assert decode(ex, ex.scores_path, out, "--lattices", "--resume") == EXIT_UNUSABLE
    assert (out / "lat.ark").read_bytes() == data[:-10]
    assert decode(ex, ex.scores_path, out, "--resume") == EXIT_UNUSABLE  # other lattice settings
    err = capsys.readouterr().err
    assert "do not hold the lattices" in err and "lattices" in err.splitlines()[-1] and "Traceback" not in err


def test_lattice_options_need_lattices(ex, tmp_path, capsys):
    for options in (["--lattice-format", "text"], ["--no-determinize-lattice"], ["--nbest", "0"]):
        assert decode(ex, ex.scores_path, tmp_path / "out", *options) == EXIT_UNUSABLE
        assert not (tmp_path / "out").exists()
    err = capsys.readouterr().err
    assert err.count("only with --lattices") == 2 and "--nbest must be >= 1" in err and "Traceback" not in err


def test_resume_cuts_a_single_torn_byte_from_the_archive(ex, tmp_path):
    """A crash that left exactly one byte of an uncommitted entry at the end of
    lat.ark: the resumed run cuts it, so its files are the uninterrupted run's."""
    full, part = tmp_path / "full", tmp_path / "part"
    assert decode(ex, ex.scores_path, full, "--lattices") == EXIT_OK
    assert decode(ex, ex.scores_path, part, "--lattices") == EXIT_OK
    index = complete_lines(part / "lat.index")
    (part / "text").write_text("".join(complete_lines(part / "text")[:5]))
    (part / "lat.index").write_text("".join(index[:5]))
    (part / "lat.ark").write_bytes((part / "lat.ark").read_bytes()[:int(index[4].split()[2]) + 1])
    assert decode(ex, ex.scores_path, part, "--lattices", "--resume") == EXIT_OK
    for name in ("text", "lat.ark", "lat.index"):
        assert (part / name).read_bytes() == (full / name).read_bytes(), name


@pytest.mark.parametrize("damage", ["index lacks entries of text", "archive shifted", "index has a gap"])
def test_resume_refuses_an_index_that_does_not_describe_the_archive(ex, tmp_path, capsys, damage):
    """lat.index must list every utterance of text, each entry starting where the
    one before ends and the last starting with its key where the index says;
    otherwise --resume is refused (exit 2) and the files are left as they are."""
    out = tmp_path / "out"
    assert decode(ex, ex.scores_path, out, "--lattices") == EXIT_OK
    index = complete_lines(out / "lat.index")
    data = (out / "lat.ark").read_bytes()
    if damage == "index lacks entries of text":  # a consistent prefix, two utterances short
        (out / "lat.index").write_text("".join(index[:-2]))
        (out / "lat.ark").write_bytes(data[:int(index[-3].split()[2])])
    elif damage == "archive shifted":
        (out / "lat.ark").write_bytes(b"garbage!" + data)
    else:  # the second entry said to start a byte after the first ends
        utt_id, start, end = index[1].split()
        (out / "lat.index").write_text("".join([index[0], f"{utt_id} {int(start) + 1} {end}\n", *index[2:]]))
    before = {name: (out / name).read_bytes() for name in ("text", "lat.ark", "lat.index")}
    assert decode(ex, ex.scores_path, out, "--lattices", "--resume") == EXIT_UNUSABLE
    assert {name: (out / name).read_bytes() for name in before} == before
    err = capsys.readouterr().err
    assert "lat.index" in err and "Traceback" not in err
