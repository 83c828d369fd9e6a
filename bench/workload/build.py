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
import resource
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
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
from .posteriors import SpellingIndex, synthesize
from .sentences import random_word_sentences, sample_sentences
from .sphinx_lm import read_sphinx_lm

__all__ = ["DEFAULT_OUT", "EXAMPLE_ACOUSTIC_SCALE", "EXAMPLE_DIR", "EXAMPLE_SET", "SIZES", "TEST_SETS", "GraphSize",
           "TestSet", "WorkloadBuildError", "WorkloadCache", "pocketsphinx_file"]

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
    frames), scored at ``difficulty`` (0 = peaky and correct, 0.5 = medium).
    Random words are drawn uniformly, or with probability proportional to
    ``P_unigram(word) ** unigram_power`` (from the size's LM).

    ``unambiguous``: words are spelled with a pronunciation that spells no
    other graph word or word sequence, and a sentence is drawn again unless its
    phones spell no other sequence of graph words
    (:class:`.posteriors.SpellingIndex`; with the full graph's 72 k words,
    about two in three such sentences have another reading across word
    boundaries). The reference is then the only transcript the phones allow:
    at difficulty 0, where the phones are exact, a decoder must recover it
    word for word."""

    name: str
    source: str
    difficulty: float
    seed: int
    count: int = 50
    min_words: int = 10
    max_words: int = 20
    unambiguous: bool = False
    unigram_power: float = 0.0

    def __post_init__(self):
        if self.source not in ("lm", "random"):
            raise WorkloadBuildError(f"test set {self.name!r}: source must be 'lm' or 'random', got {self.source!r}")
        if not self.unigram_power >= 0:
            raise WorkloadBuildError(f"test set {self.name!r}: unigram_power must be >= 0, got {self.unigram_power!r}")


TEST_SETS = {test_set.name: test_set for test_set in (
    TestSet("lm-d0", "lm", 0.0, seed=1, unambiguous=True),
    TestSet("lm-medium", "lm", 0.5, seed=1),
    # Uniformly random graph words at difficulty 0.5 gave Kaldi 11-54% WER (21% on the full graph even at
    # difficulty 0: rare words the LM reads as homophones or as other words). Unambiguous words drawn with
    # probability ~ P_unigram ** 0.75 at difficulty 0.37 give 1-10% on the small and full graphs at acoustic
    # scales 1.0 and 0.5 (bench/results/kaldi_baseline_*_random-medium.json).
    TestSet("random-medium", "random", 0.37, seed=2, min_words=6, max_words=14, unambiguous=True,
            unigram_power=0.75),
)}

EXAMPLE_SET = TestSet("example", "lm", 0.5, seed=3, count=20)
"""The utterances shipped with the embedded example (on the tiny graph)."""

EXAMPLE_DIR = Path(__file__).resolve().parent.parent.parent / "wfst" / "data" / "example"
"""Where ``python -m bench.workload example`` writes the embedded example by default."""

EXAMPLE_ACOUSTIC_SCALE = 1.0
"""The acoustic scale :mod:`wfst.example` recommends for its scores."""


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
    it is missing, or with ``force`` once per cache object (what this object
    built is not built again). Progress goes to ``log``."""

    def __init__(self, out: str | os.PathLike = DEFAULT_OUT, *, force: bool = False, route: str = "auto",
                 log: Callable[[str], None] = print):
        self.out = Path(out)
        self.force = force
        self.route = resolve_route(route)
        self.log = log
        self._models: dict[str, NgramModel] = {}
        self._built: set[Path] = set()

    def _stale(self, *paths: Path) -> bool:
        """Whether an output made of ``paths`` must be built: one is missing,
        or ``force`` and this object has not built them yet."""
        return not all(path.exists() for path in paths) or (self.force and not set(paths) <= self._built)

    # ----------------------------------------------------------------- inputs
    @cached_property
    def lexicon(self) -> Lexicon:
        return read_lexicon(pocketsphinx_file("en-us", "cmudict-en-us.dict"))

    def model(self, size: str) -> NgramModel:
        """The LM of ``size`` (from its ARPA file when that is cached)."""
        if size not in self._models:
            path = self.out / "lm" / f"{size}.arpa"
            if not self._stale(path):
                self._models[size] = read_arpa(path)
            else:
                self.ensure_lm(size)
        return self._models[size]

    # ---------------------------------------------------------------- outputs
    def ensure_lm(self, size: str) -> Path:
        """``lm/{size}.arpa``."""
        spec = _size(size)
        path = self.out / "lm" / f"{size}.arpa"
        if not self._stale(path):
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
        self._built.add(path)
        self.log(f"{path}: n-gram counts {model.counts} ({time.perf_counter() - started:.1f} s)")
        return path

    def ensure_graph(self, size: str) -> Path:
        """``graphs/{size}/`` with ``TLG.fst``, ``tokens.txt``, ``words.txt``
        and ``build.json`` (sizes, build seconds, route, machine, versions,
        and the peak resident memory of this process while building: the LM
        and lexicon already loaded count too)."""
        directory = self.out / "graphs" / size
        if not self._stale(directory / "build.json"):
            return directory
        model, lexicon = self.model(size), self.lexicon
        self.log(f"building the {size} TLG ({self.route}) ...")
        peak_scope = "graph build" if _reset_peak_rss() else "process lifetime"
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graph = build_ctc_tlg(lexicon, model, route=self.route)
        seconds = time.perf_counter() - started
        peak = _peak_rss_bytes()
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
            "peak_rss_bytes": peak,
            "peak_rss_scope": peak_scope,
            "route": self.route,
            "dropped_words": list(graph.dropped_words),
            "lexicon": str(pocketsphinx_file("en-us", "cmudict-en-us.dict")),
            **_machine(),
        }
        _write_atomically(directory / "build.json",
                          lambda temporary: Path(temporary).write_text(json.dumps(info, indent=2) + "\n"))
        self._built.add(directory / "build.json")
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

    def record(self, sizes: Sequence[str], path: str | os.PathLike) -> Path:
        """Write ``path`` (JSON): the ``build.json`` of each graph size in
        ``sizes`` (states, arcs, input-epsilon arcs, build seconds, peak
        memory, route, machine, versions); the graphs must be built."""
        missing = [size for size in sizes if not (self.out / "graphs" / size / "build.json").exists()]
        if missing:
            raise WorkloadBuildError(f"no {', '.join(missing)} graph under {self.out / 'graphs'}: build it first")
        record = {
            "description": "CTC TLG graphs of the benchmark workload (python -m bench.workload build): sizes, build "
                           "time and the peak resident memory of the building process",
            "out": str(self.out),
            "graphs": {size: json.loads((self.out / "graphs" / size / "build.json").read_text()) for size in sizes},
        }
        path = Path(path)
        _write_atomically(path, lambda temporary: Path(temporary).write_text(json.dumps(record, indent=2) + "\n"))
        self.log(f"wrote {path}")
        return path

    def example(self, out: str | os.PathLike = EXAMPLE_DIR) -> list[Path]:
        """The embedded example (:mod:`wfst.example`) in ``out``: the tiny
        graph (``TLG.fst``, ``tokens.txt``, ``words.txt``), the pronunciations
        of its words (``lexicon.txt``) and :data:`EXAMPLE_SET` on it
        (``scores.npz``, ``text``), with the recommended acoustic scale
        :data:`EXAMPLE_ACOUSTIC_SCALE` in the scores' metadata."""
        out = Path(out)
        graph = self.ensure_graph("tiny")
        paths = []
        for name in ("TLG.fst", "tokens.txt", "words.txt"):
            if self._stale(out / name):
                _write_atomically(out / name, lambda temporary: shutil.copyfile(graph / name, temporary))
                self._built.add(out / name)
            paths.append(out / name)
        if self._stale(out / "lexicon.txt"):
            words = (word for _, word in SymbolTable.read(graph / "words.txt"))
            _write_atomically(out / "lexicon.txt", self.lexicon.restrict(words).write)
            self._built.add(out / "lexicon.txt")
        paths.append(out / "lexicon.txt")
        npz = self._ensure_set("tiny", EXAMPLE_SET, out / "scores.npz", graph, text=out / "text",
                               metadata={"acoustic_scale": EXAMPLE_ACOUSTIC_SCALE})
        return paths + [npz, out / "text"]

    def _ensure_set(self, size: str, test_set: TestSet, npz: Path, graph: Path | None = None, *,
                    text: Path | None = None, metadata: dict | None = None) -> Path:
        """``npz`` and ``text`` (default: ``npz`` with suffix ``.text``) for
        ``test_set`` on the ``size`` graph; ``metadata`` is added to the
        workload's."""
        text = text or npz.with_suffix(".text")
        if not self._stale(npz, text):
            return npz
        graph = graph or self.ensure_graph(size)
        tokens = SymbolTable.read(graph / "tokens.txt")
        lexicon = self.lexicon.restrict(word for _, word in SymbolTable.read(graph / "words.txt"))
        spelling, accept = lexicon, None
        if test_set.unambiguous:
            index = SpellingIndex(lexicon)
            spelling = {word: prons[:1] for word, prons in index.unambiguous_pronunciations().items()}

            def accept(sentence: tuple[str, ...]) -> bool:
                return index.segmentations([p for word in sentence for p in spelling[word][0]]) == 1

        if test_set.source == "lm":
            sentences = sample_sentences(self.model(size), test_set.count, test_set.seed, words=set(spelling),
                                         min_words=test_set.min_words, max_words=test_set.max_words, accept=accept)
        else:
            model = self.model(size)
            weights = (dict(zip(model.vocab, 10.0 ** (test_set.unigram_power * model.orders[0].logprob)))
                       if test_set.unigram_power else None)
            sentences = random_word_sentences(spelling, test_set.count, test_set.seed, min_words=test_set.min_words,
                                              max_words=test_set.max_words, weights=weights, accept=accept)
        workload = synthesize(sentences, spelling, tokens, frame_shift=FRAME_SHIFT,
                              difficulty=test_set.difficulty, seed=test_set.seed,
                              utt_ids=[f"{test_set.name}-{i:04d}" for i in range(len(sentences))])
        if metadata:
            workload = replace(workload, metadata={**workload.metadata, **metadata})
        npz.parent.mkdir(parents=True, exist_ok=True)
        temporary_npz, temporary_text = _temporary(npz), _temporary(text)
        workload.save(temporary_npz, temporary_text)
        os.replace(temporary_text, text)
        os.replace(temporary_npz, npz)
        self._built.update((npz, text))
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


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident set size (Linux ``clear_refs``);
    False where that cannot be done (the peak then covers the whole process)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as stream:
            stream.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process in bytes (``VmHWM``, else ``ru_maxrss``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as stream:
            return next(int(line.split()[1]) * 1024 for line in stream if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
