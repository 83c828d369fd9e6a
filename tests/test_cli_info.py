import json
import re
import subprocess
import sys

import pytest
import pywrapfst

from wfst import read_fst
from wfst.cli_info import example_graph_path, main

from .random_fst import random_pynini_fst


def test_example_report(capsys):
    assert main(["--example"]) == 0
    out = capsys.readouterr().out
    fst = read_fst(example_graph_path())
    assert f"{fst.num_states:,}" in out and "OpenFst const" in out and "device FST" in out
    assert "Kaldi cudadecoder" in out


def test_json_matches_the_graph(tmp_path, capsys):
    fst = random_pynini_fst(0)
    pywrapfst.convert(fst, "const").write(str(tmp_path / "g.fst"))
    assert main([str(tmp_path / "g.fst"), "--json", "--lanes", "4", "--max-active", "500"]) == 0
    info = json.loads(capsys.readouterr().out)
    csr = read_fst(tmp_path / "g.fst")
    assert info["states"] == csr.num_states and info["arcs"] == csr.num_arcs
    assert info["emitting_arcs"] + info["epsilon_arcs"] == info["arcs"]
    assert info["budget"]["lanes"] == 4 and info["max_active"] == 500


def test_save_cache_never_overwrites(tmp_path, capsys):
    target = tmp_path / "g.wfst"
    target.write_bytes(b"precious")
    try:
        main(["--example", "--save-cache", str(target)])
    except SystemExit as stop:
        assert stop.code == 2
    assert target.read_bytes() == b"precious"
    assert main(["--example", "--save-cache", str(target), "--overwrite"]) == 0
    assert read_fst(target).same_as(read_fst(example_graph_path()))


@pytest.mark.parametrize("where, message", [
    ("", "give a file path"), (".", "give a file path"), ("missing/g.wfst", "folder .*missing does not exist")])
def test_save_cache_says_what_is_wrong_with_its_path(tmp_path, capsys, where, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["--example", "--save-cache", where])
    assert stop.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_bad_graph_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.fst"
    bad.write_bytes(pywrapfst.convert(random_pynini_fst(0), "const").write_to_string()[:-3])
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert "wfst-info: error:" in err and str(bad) in err and "truncated" in err
    assert main([str(tmp_path / "missing.fst")]) == 2


def test_import_needs_no_gpu_and_no_cupy():
    """`import wfst` works with cupy unimportable; the GPU helper says how to get it; dir(wfst) names
    the lazily loaded Decoder and Stream (help() and completion read it)."""
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import wfst, wfst.gpu\n"
        "assert 'numba' not in sys.modules, 'numba must load lazily'\n"
        "assert {'Decoder', 'Stream', 'read_fst'} <= set(dir(wfst)), 'dir() lists the lazy names'\n"
        "assert 'numba' not in sys.modules, 'dir() loads nothing'\n"
        "assert wfst.gpu.device_memory() is None\n"
        "try:\n    wfst.gpu.import_cupy()\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'wfst-gpu[cuda12]'" in out


def test_json_counts_and_label_ranges_of_a_hand_made_graph(tmp_path, capsys):
    """A graph of 4 states (start 1, final 2 and 3) and 5 arcs, 2 of them
    input-epsilon: the JSON report's counts, start and label ranges (the input
    range over the emitting arcs only, the output range over all arcs), and
    the budget's lanes and channels as given."""
    from tests.decoder_graphs import graph

    fst = graph(4, 1, {2: 0.0, 3: 1.5}, [(1, 2, 3, 7, 0.5), (1, 0, 0, 2, 0.25), (0, 2, 5, 0, 1.0),
                                         (2, 3, 0, 9, 0.0), (2, 3, 4, 4, 2.0)])
    fst.write(str(tmp_path / "g.fst"))
    assert main([str(tmp_path / "g.fst"), "--json", "--lanes", "3", "--channels", "5"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["states"], info["arcs"], info["emitting_arcs"], info["epsilon_arcs"]) == (4, 5, 3, 2)
    assert (info["final_states"], info["start"]) == (2, 1)
    assert info["ilabel_range"] == [3, 5] and info["olabel_range"] == [0, 9]
    assert (info["budget"]["lanes"], info["budget"]["channels"]) == (3, 5)


def test_a_max_active_below_the_default_min_active_is_taken(capsys):
    """--max-active below DecoderConfig's min_active (200) is a valid request:
    the report is made for it (min_active follows it down)."""
    assert main(["--example", "--json", "--max-active", "50"]) == 0
    assert json.loads(capsys.readouterr().out)["max_active"] == 50
