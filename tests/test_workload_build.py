"""The workload cache and its command line on the tiny graph size: what gets
written, that a second run rebuilds nothing, that --force does, and the
embedded example's size."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pocketsphinx")

from bench.workload.__main__ import main  # noqa: E402
from bench.workload.build import TEST_SETS, WorkloadBuildError, WorkloadCache  # noqa: E402
from bench.workload.posteriors import Workload  # noqa: E402
from wfst import SymbolTable, read_fst  # noqa: E402
from wfst.arpa import read_arpa  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("workload")
    messages = []
    WorkloadCache(out, log=messages.append).build(["tiny"])
    return out, messages


def test_tiny_build(built):
    out, messages = built
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
    same_text = [Workload.load(out / "data" / "tiny" / f"{name}.npz").references for name in ("lm-d0", "lm-medium")]
    assert same_text[0] == same_text[1]


def test_second_build_is_cached_and_force_rebuilds(built, tmp_path):
    out, _ = built
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
    WorkloadCache(target, force=True, log=forced.append).build(["tiny"], ["lm-d0"])
    assert any("tiny.arpa" in m for m in forced) and any("graphs" in m for m in forced)
    first = Workload.load(out / "data" / "tiny" / "lm-d0.npz")
    again = Workload.load(target / "data" / "tiny" / "lm-d0.npz")
    np.testing.assert_array_equal(first.scores, again.scores)  # seeded: the same set again


def test_example_is_small(built, tmp_path, capsys):
    out, _ = built
    assert main(["example", "--out", str(tmp_path / "data"), "--cache", str(out)]) == 0
    files = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert files == ["example_tlg.fst", "example_tokens.txt", "example_utts.npz", "example_utts.text",
                     "example_words.txt"]
    assert sum(p.stat().st_size for p in (tmp_path / "data").iterdir()) < 5_000_000
    assert len(Workload.load(tmp_path / "data" / "example_utts.npz")) == 20


def test_unknown_names(tmp_path, capsys):
    with pytest.raises(WorkloadBuildError, match="unknown graph size 'huge'"):
        WorkloadCache(tmp_path).build(["huge"])
    assert main(["build", "--out", str(tmp_path), "--sets", "nope"]) == 1
    assert "unknown test set 'nope'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
