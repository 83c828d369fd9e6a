"""Build and cache the benchmark workload: LMs, CTC TLG graphs and test sets.

Layout under the output directory (``bench/.cache/workload`` by default)::

    lm/{size}.arpa                           the LM of each graph size
    graphs/{size}/TLG.fst, tokens.txt, words.txt, build.json
    data/{size}/{set}.npz, {set}.text        synthetic posteriors, references

Sources: pocketsphinx's US English trigram LM (``en-us.lm.bin``, converted
exactly by :mod:`.sphinx_lm`) and its CMUdict (``cmudict-en-us.dict``).
Sizes (:data:`SIZES`) cut the LM with :mod:`.lm`; test sets
(:data:`TEST_SETS`) draw sentences with :mod:`.sentences` from the size's
own LM, restricted to the graph's words, and turn them into CTC posteriors
with :mod:`.posteriors`.

Every output is cached: a file that exists is not made again unless
``force``. A graph counts as built when its ``build.json`` exists (written
last), and each file is written under a temporary name and renamed, so an
interrupted build leaves nothing half-written behind. The cache does not
notice edits to :data:`SIZES` or :data:`TEST_SETS`: rebuild with ``force``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path

from wfst.arpa import NgramModel, read_arpa, write_arpa
from wfst.errors import WfstError
from wfst.graph import build_ctc_tlg
from wfst.graph_determinize import resolve_route
from wfst.lexicon import Lexicon, read_lexicon
from wfst.symbols import SymbolTable

from .lm import prune, restrict_vocabulary
from .posteriors import synthesize
from .sentences import random_word_sentences, sample_sentences
from .sphinx_lm import read_sphinx_lm

__all__ = ["DEFAULT_OUT", "EXAMPLE_SET", "SIZES", "TEST_SETS", "GraphSize", "TestSet", "WorkloadBuildError",
           "WorkloadCache", "pocketsphinx_file"]

DEFAULT_OUT = Path("bench/.cache/workload")
FRAME_SHIFT = 0.04
"""Seconds per frame of every test set (a 4x subsampling CTC model)."""


class WorkloadBuildError(WfstError, ValueError):
    """A workload that cannot be built: an unknown size or set, or a missing source."""


@dataclass(frozen=True)
class GraphSize:
    """How a graph size's LM is cut from the full one: the ``n_words`` most
    probable words (None: all), then the ``keep_ngrams`` most probable n-grams
    of orders 2 and up (None: all)."""

    name: str
    n_words: int | None
    keep_ngrams: int | None


SIZES = {size.name: size for size in (
    GraphSize("tiny", 300, 10_000),       # TLG ~16 k states, 68 k arcs: builds in under a second
    GraphSize("small", 5_000, 680_000),   # TLG ~1.2 M states, 4.6 M arcs: about 10 s
    GraphSize("full", None, None),        # TLG ~7 M states, 26 M arcs
)}


@dataclass(frozen=True)
class TestSet:
    """A set of ``count`` synthetic utterances: sentences drawn from the LM
    (``source="lm"``) or of random graph words (``"random"``), with
    ``min_words .. max_words`` words (about 5 s of audio on average at 40 ms
    frames), scored at ``difficulty`` (0 = peaky and correct, 0.5 = medium)."""

    name: str
    source: str
    difficulty: float
    seed: int
    count: int = 50
    min_words: int = 10
    max_words: int = 20


TEST_SETS = {test_set.name: test_set for test_set in (
    TestSet("lm-d0", "lm", 0.0, seed=1),
    TestSet("lm-medium", "lm", 0.5, seed=1),      # the sentences and frame layout of lm-d0
    TestSet("random-medium", "random", 0.5, seed=2, min_words=6, max_words=14),
)}

EXAMPLE_SET = TestSet("example", "lm", 0.5, seed=3, count=20)
"""The utterances shipped with the embedded example (on the tiny graph)."""


def pocketsphinx_file(*parts: str) -> Path:
    """A file of pocketsphinx's model directory, e.g. ``("en-us", "en-us.lm.bin")``;
    :class:`WorkloadBuildError` when pocketsphinx or the file is missing."""
    try:
        import pocketsphinx
    except ImportError:
        raise WorkloadBuildError("the workload's LM and lexicon come with pocketsphinx: "
                                 "pip install pocketsphinx") from None
    path = Path(pocketsphinx.get_model_path(), *parts)
    if not path.is_file():
        raise WorkloadBuildError(f"{path} is missing from the pocketsphinx installation")
    return path


class WorkloadCache:
    """The workload under ``out``, built on demand: each ``ensure_*`` method
    returns the path of its output, building it (and what it needs) only when
    it is missing, or always with ``force``. Progress goes to ``log``."""

    def __init__(self, out: str | os.PathLike = DEFAULT_OUT, *, force: bool = False, route: str = "auto",
                 log: Callable[[str], None] = print):
        self.out = Path(out)
        self.force = force
        self.route = resolve_route(route)
        self.log = log
        self._models: dict[str, NgramModel] = {}

    # ----------------------------------------------------------------- inputs
    @cached_property
    def lexicon(self) -> Lexicon:
        return read_lexicon(pocketsphinx_file("en-us", "cmudict-en-us.dict"))

    def model(self, size: str) -> NgramModel:
        """The LM of ``size`` (from its ARPA file when that is cached)."""
        if size not in self._models:
            path = self.out / "lm" / f"{size}.arpa"
            if path.exists() and not self.force:
                self._models[size] = read_arpa(path)
            else:
                self.ensure_lm(size)
        return self._models[size]

    # ---------------------------------------------------------------- outputs
    def ensure_lm(self, size: str) -> Path:
        """``lm/{size}.arpa``."""
        spec = _size(size)
        path = self.out / "lm" / f"{size}.arpa"
        if path.exists() and not self.force:
            return path
        started = time.perf_counter()
        if "full" not in self._models:
            self._models["full"] = read_sphinx_lm(pocketsphinx_file("en-us", "en-us.lm.bin"))
        model = self._models["full"]
        if spec.n_words is not None:
            model = restrict_vocabulary(model, spec.n_words)
        if spec.keep_ngrams is not None:
            model = prune(model, spec.keep_ngrams)
        self._models[size] = model
        _write_atomically(path, lambda temporary: write_arpa(model, temporary))
        self.log(f"{path}: n-gram counts {model.counts} ({time.perf_counter() - started:.1f} s)")
        return path

    def ensure_graph(self, size: str) -> Path:
        """``graphs/{size}/`` with ``TLG.fst``, ``tokens.txt``, ``words.txt``
        and ``build.json`` (sizes, build seconds, route, machine, versions)."""
        directory = self.out / "graphs" / size
        if (directory / "build.json").exists() and not self.force:
            return directory
        model, lexicon = self.model(size), self.lexicon
        self.log(f"building the {size} TLG ({self.route}) ...")
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graph = build_ctc_tlg(lexicon, model, route=self.route)
        seconds = time.perf_counter() - started
        for warning in caught:
            self.log(f"warning: {warning.message}")
        (directory / "build.json").unlink(missing_ok=True)
        graph.write(directory)
        fst = graph.fst
        info = {
            "size": asdict(_size(size)),
            "lm_counts": list(model.counts),
            "states": fst.num_states,
            "arcs": fst.num_arcs,
            "input_epsilon_arcs": fst.num_arcs - fst.num_emitting_arcs,
            "build_seconds": round(seconds, 2),
            "route": self.route,
            "dropped_words": list(graph.dropped_words),
            "lexicon": str(pocketsphinx_file("en-us", "cmudict-en-us.dict")),
            **_machine(),
        }
        _write_atomically(directory / "build.json",
                          lambda temporary: Path(temporary).write_text(json.dumps(info, indent=2) + "\n"))
        self.log(f"{directory}: {fst.num_states:,} states, {fst.num_arcs:,} arcs in {seconds:.1f} s")
        return directory

    def ensure_set(self, size: str, name: str) -> Path:
        """``data/{size}/{name}.npz`` and ``.text`` (see :data:`TEST_SETS`)."""
        return self._ensure_set(size, _test_set(name), self.out / "data" / size / f"{name}.npz")

    def build(self, sizes: Sequence[str], sets: Sequence[str] = tuple(TEST_SETS)) -> None:
        """Everything for ``sizes``: LM, graph and the test sets ``sets``."""
        for size in sizes:
            _size(size)
        for name in sets:
            _test_set(name)
        for size in sizes:
            self.ensure_lm(size)
            self.ensure_graph(size)
            for name in sets:
                self.ensure_set(size, name)

    def example(self, out: str | os.PathLike) -> list[Path]:
        """The embedded example in ``out``: the tiny graph as
        ``example_tlg.fst``, ``example_tokens.txt``, ``example_words.txt``,
        and :data:`EXAMPLE_SET` as ``example_utts.npz`` / ``.text``."""
        out = Path(out)
        graph = self.ensure_graph("tiny")
        paths = []
        for source, target in (("TLG.fst", "example_tlg.fst"), ("tokens.txt", "example_tokens.txt"),
                               ("words.txt", "example_words.txt")):
            if self.force or not (out / target).exists():
                out.mkdir(parents=True, exist_ok=True)
                _write_atomically(out / target, lambda temporary: shutil.copyfile(graph / source, temporary))
            paths.append(out / target)
        npz = self._ensure_set("tiny", EXAMPLE_SET, out / "example_utts.npz", graph)
        return paths + [npz, npz.with_suffix(".text")]

    def _ensure_set(self, size: str, test_set: TestSet, npz: Path, graph: Path | None = None) -> Path:
        if npz.exists() and npz.with_suffix(".text").exists() and not self.force:
            return npz
        graph = graph or self.ensure_graph(size)
        tokens = SymbolTable.read(graph / "tokens.txt")
        words = {word for _, word in SymbolTable.read(graph / "words.txt")
                 if word in self.lexicon}
        if test_set.source == "lm":
            sentences = sample_sentences(self.model(size), test_set.count, test_set.seed, words=words,
                                         min_words=test_set.min_words, max_words=test_set.max_words)
        else:
            sentences = random_word_sentences(words, test_set.count, test_set.seed,
                                              min_words=test_set.min_words, max_words=test_set.max_words)
        workload = synthesize(sentences, self.lexicon, tokens, frame_shift=FRAME_SHIFT,
                              difficulty=test_set.difficulty, seed=test_set.seed,
                              utt_ids=[f"{test_set.name}-{i:04d}" for i in range(len(sentences))])
        npz.parent.mkdir(parents=True, exist_ok=True)
        text = npz.with_suffix(".text")
        temporary_npz, temporary_text = _temporary(npz), _temporary(text)
        workload.save(temporary_npz, temporary_text)
        os.replace(temporary_text, text)
        os.replace(temporary_npz, npz)
        self.log(f"{npz}: {len(workload)} utterances, {workload.audio_seconds:.0f} s of audio")
        return npz


def _size(name: str) -> GraphSize:
    if name not in SIZES:
        raise WorkloadBuildError(f"unknown graph size {name!r}; sizes: {', '.join(SIZES)}")
    return SIZES[name]


def _test_set(name: str) -> TestSet:
    if name not in TEST_SETS:
        raise WorkloadBuildError(f"unknown test set {name!r}; sets: {', '.join(TEST_SETS)}")
    return TEST_SETS[name]


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(temporary path)``, then rename it to ``path`` (directories made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    write(temporary)
    os.replace(temporary, path)


def _machine() -> dict:
    versions = {}
    for package in ("numpy", "kaldifst", "pynini", "pocketsphinx"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "versions": versions, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
