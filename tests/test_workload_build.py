"""The workload cache and its command line on the tiny graph size: what gets
written, that a second run rebuilds nothing, that --force does, and that the
example command makes the embedded example."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pocketsphinx")

from bench.workload.__main__ import main  # noqa: E402
from bench.workload.build import (  # noqa: E402
    EXAMPLE_ACOUSTIC_SCALE,
    TEST_SETS,
    WorkloadBuildError,
    WorkloadCache,
)
from bench.workload.posteriors import SpellingIndex, Workload  # noqa: E402
from wfst import SymbolTable, read_fst  # noqa: E402
from wfst.arpa import read_arpa  # noqa: E402
from wfst.example import example_dir  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("workload")
    messages = []
    cache = WorkloadCache(out, log=messages.append)
    cache.build(["tiny"])
    return out, messages, cache


def test_tiny_build(built):
    out, messages, cache = built
    model = read_arpa(out / "lm" / "tiny.arpa")
    model.check_consistent()
    assert len(model.vocab) == 302  # 300 words, <s>, </s>
    graph = out / "graphs" / "tiny"
    info = json.loads((graph / "build.json").read_text())
    fst = read_fst(graph / "TLG.fst")
    assert (info["states"], info["arcs"]) == (fst.num_states, fst.num_arcs)
    assert info["lm_counts"] == list(model.counts) and info["route"] in ("kaldifst", "pynini")
    assert 1_000 < fst.num_arcs < 200_000
    tokens = SymbolTable.read(graph / "tokens.txt")
    words = SymbolTable.read(graph / "words.txt")
    assert tokens["<blk>"] == 1 and words["<eps>"] == 0
    for name, test_set in TEST_SETS.items():
        workload = Workload.load(out / "data" / "tiny" / f"{name}.npz")
        assert len(workload) == test_set.count
        assert workload.scores.shape[1] == fst.max_ilabel
        assert all(test_set.min_words <= len(r) <= test_set.max_words for r in workload.references)
        assert {w for r in workload.references for w in r} <= set(words.symbol_to_id)
        assert 2.5 < workload.audio_seconds / len(workload) < 7.5
    # lm-d0's phones name its references alone, homophones and word boundaries included.
    index = SpellingIndex(cache.lexicon.restrict(words.symbol_to_id))
    d0 = Workload.load(out / "data" / "tiny" / "lm-d0.npz")
    assert all(index.segmentations(phones) == 1 for phones in d0.phones)
    medium = Workload.load(out / "data" / "tiny" / "lm-medium.npz")
    assert sum(index.segmentations(phones) > 1 for phones in medium.phones) > 0  # not so in general


def test_second_build_is_cached_and_force_rebuilds(built, tmp_path):
    out, _, _ = built
    stamps = {path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file()}
    messages = []
    WorkloadCache(out, log=messages.append).build(["tiny"])
    assert messages == []
    assert stamps == {path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file()}

    target = tmp_path / "copy"
    for path in (out / "lm", out / "graphs"):
        for file in path.rglob("*"):
            if file.is_file():
                (target / file.relative_to(out)).parent.mkdir(parents=True, exist_ok=True)
                (target / file.relative_to(out)).write_bytes(file.read_bytes())
    forced = []
    cache = WorkloadCache(target, force=True, log=forced.append)
    cache.build(["tiny"], ["lm-d0", "lm-medium"])
    # Each output is rebuilt once, not again for each set that needs it.
    assert [sum(part in m for m in forced) for part in ("tiny.arpa", "building the tiny TLG", ".npz")] == [1, 1, 2]
    cache.record(["tiny"], target / "workload_build.json")
    assert sum("building the tiny TLG" in m for m in forced) == 1 and forced[-1].startswith("wrote")  # nor here
    record = json.loads((target / "workload_build.json").read_text())
    assert record["graphs"]["tiny"] == json.loads((target / "graphs" / "tiny" / "build.json").read_text())
    assert record["graphs"]["tiny"]["peak_rss_bytes"] > 0
    first = Workload.load(out / "data" / "tiny" / "lm-d0.npz")
    again = Workload.load(target / "data" / "tiny" / "lm-d0.npz")
    np.testing.assert_array_equal(first.scores, again.scores)  # seeded: the same set again


def test_example_command_makes_the_embedded_example(built, tmp_path, capsys):
    """`python -m bench.workload example` makes what wfst/data/example holds."""
    out, _, _ = built
    assert main(["example", "--out", str(tmp_path / "example"), "--cache", str(out)]) == 0
    made, shipped = tmp_path / "example", example_dir()
    assert sorted(p.name for p in made.iterdir()) == sorted(p.name for p in shipped.iterdir())
    for name in ("tokens.txt", "words.txt", "lexicon.txt", "text"):
        assert (made / name).read_text() == (shipped / name).read_text(), name
    assert read_fst(made / "TLG.fst").same_as(read_fst(shipped / "TLG.fst"))
    fresh, kept = Workload.load(made / "scores.npz", made / "text"), Workload.load(shipped / "scores.npz",
                                                                                  shipped / "text")
    np.testing.assert_array_equal(fresh.scores, kept.scores)
    assert fresh.metadata == kept.metadata and fresh.metadata["acoustic_scale"] == EXAMPLE_ACOUSTIC_SCALE


def test_tiny_graph_builds_without_pynini(built, tmp_path):
    """The GPU machine has no pynini: the graph build must not need it, and gives the graph the usual route
    gives (test_graph checks that the kaldifst and pynini routes agree)."""
    out, _, _ = built
    (tmp_path / "lm").mkdir()
    shutil.copy(out / "lm" / "tiny.arpa", tmp_path / "lm")  # the LM is cached: only the graph is built
    code = ("import sys\n"
            "sys.modules['pynini'] = sys.modules['pywrapfst'] = None  # import pynini now raises ImportError\n"
            "from bench.workload.build import WorkloadCache\n"
            "WorkloadCache(sys.argv[1], log=lambda message: None).ensure_graph('tiny')\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=Path(__file__).resolve().parent.parent)
    without = tmp_path / "graphs" / "tiny"
    assert json.loads((without / "build.json").read_text())["route"] == "kaldifst"
    assert read_fst(without / "TLG.fst").same_as(read_fst(out / "graphs" / "tiny" / "TLG.fst"))
    for name in ("tokens.txt", "words.txt"):
        assert (without / name).read_text() == (out / "graphs" / "tiny" / name).read_text()


def test_results_option_records_the_graphs(built, tmp_path, capsys):
    out, _, _ = built
    assert main(["build", "--out", str(out), "--sizes", "tiny", "--results", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["workload_build.json"]  # no baselines for tiny
    record = json.loads((tmp_path / "workload_build.json").read_text())
    assert list(record["graphs"]) == ["tiny"] and record["graphs"]["tiny"]["route"] == "kaldifst"


def test_unknown_names(tmp_path, capsys):
    with pytest.raises(WorkloadBuildError, match="unknown graph size 'huge'"):
        WorkloadCache(tmp_path).build(["huge"])
    assert main(["build", "--out", str(tmp_path), "--sets", "nope"]) == 1
    assert "unknown test set 'nope'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
