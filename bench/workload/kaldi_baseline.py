"""Kaldi's CPU decoders on a workload: the baseline every speed and accuracy
figure of wfst-gpu is compared with.

Runs Kaldi's ``FasterDecoder`` or ``LatticeSimpleDecoder`` (PyPI
``kaldi-decoder``) over the utterances of a :class:`~bench.workload.posteriors.Workload`
with a decoding graph, optionally pinned to one CPU core, and reports
hypotheses (word ids), best-path costs and wall time per utterance.

* Scores: Kaldi's ``DecodableCtc``, for which an arc with ilabel ``i`` reads
  column ``i - 1``, without a bounds check; :func:`run_kaldi` checks that the
  graph's largest ilabel fits the score matrix before anything runs. The
  acoustic scale is applied to the whole matrix beforehand (Kaldi's
  ``DecodableMatrixScaled`` multiplies on each access instead).
* Timing: per utterance, ``decode()`` plus the best path and its word labels
  (the work of Kaldi's ``decode-faster``; for ``LatticeSimpleDecoder`` the best
  path comes from the raw lattice, whose determinization the binding does not
  expose). Building the decodable (a copy of the scores) is not timed. One
  untimed decode of the first utterance warms the decoder up first.
* Active tokens: the binding exposes no token count. With ``count_tokens=N``
  a second, untimed pass decodes the first ``N`` utterances through a Python
  decodable that counts the score look-ups of blank arcs. In a CTC graph where
  every state has exactly one blank arc (true of ``T o LG``, checked on the
  graph), that count is the number of tokens the decoder expands on each frame:
  the tokens within the beam and ``max_active`` cutoff. (``FasterDecoder`` looks
  up the best token's arcs twice; the count corrects for it.) The Python
  callback makes that pass about 20 times slower than the timed one (full TLG,
  acoustic scale 0.5: some 20 ms a frame).

Command line (writes JSON under ``bench/results/``)::

    python -m bench.workload.kaldi_baseline --graph DIR/graphs/small --data DIR/data/small/lm-medium.npz \\
        --decoder faster lattice-simple --beam 10 15 --max-active 7000 10000 \\
        --acoustic-scale 1.0 0.5 --count-tokens 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import wfst
from wfst.errors import WfstError
from wfst.lexicon import read_lexicon
from wfst.reader import describe_format, read_fst
from wfst.symbols import SymbolTable
from wfst.wer import compute_wer

from .posteriors import Workload, spells

DECODERS = ("faster", "lattice-simple")
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


class BaselineError(WfstError, ValueError):
    """A baseline that cannot run: a graph Kaldi cannot read or whose labels
    exceed the score matrix, bad scores, or a configuration out of range."""


@dataclass(frozen=True, eq=False)
class KaldiGraph:
    """A decoding graph loaded for Kaldi (``fst``: a kaldifst ``StdConstFst`` or
    ``StdVectorFst``) with the facts the harness checks, taken from its
    :class:`wfst.CsrFst`: sizes, the largest ilabel, and whether every state
    has exactly one arc with ilabel ``blank_ilabel`` (needed to count tokens)."""

    fst: object
    path: str | None
    num_states: int
    num_arcs: int
    num_epsilon_arcs: int
    max_ilabel: int
    blank_ilabel: int
    one_blank_arc_per_state: bool

    @classmethod
    def load(cls, path: str | os.PathLike, blank_ilabel: int = 1) -> "KaldiGraph":
        """Read a graph in any format :func:`wfst.read_fst` reads (OpenFst
        files go to Kaldi as they are; others through a temporary const file)."""
        path = os.fspath(path)
        return cls.from_csr(read_fst(path), blank_ilabel, path=path)

    @classmethod
    def from_csr(cls, csr: wfst.CsrFst, blank_ilabel: int = 1, path: str | os.PathLike | None = None) -> "KaldiGraph":
        """From a :class:`wfst.CsrFst`; ``path``, if given, is the same graph as
        an OpenFst file Kaldi can read directly (else a temporary copy is
        written)."""
        import kaldifst

        kind = describe_format(path) if path is not None else ""
        if kind in ("OpenFst const", "OpenFst vector"):
            fst = (kaldifst.StdConstFst if kind == "OpenFst const" else kaldifst.StdVectorFst).read(os.fspath(path))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                csr.write(Path(tmp) / "graph.fst", "const")
                fst = kaldifst.StdConstFst.read(str(Path(tmp) / "graph.fst"))
        if fst is None:
            raise BaselineError(f"kaldifst could not read the graph {path!r}")
        emitting = csr.num_emitting_arcs
        is_blank = np.concatenate([[0], np.cumsum(csr.ilabel[:emitting] == blank_ilabel)])
        blank_arcs = np.diff(is_blank[csr.e_offsets])
        return cls(fst, None if path is None else os.fspath(path), csr.num_states, csr.num_arcs,
                   csr.num_epsilon_arcs, csr.max_ilabel, blank_ilabel, bool(np.all(blank_arcs == 1)))

    def sizes(self) -> dict:
        return {"path": self.path, "states": self.num_states, "arcs": self.num_arcs,
                "epsilon_arcs": self.num_epsilon_arcs, "max_ilabel": self.max_ilabel}


@dataclass(frozen=True, eq=False)
class BaselineRun:
    """One decoder configuration over a workload.

    ``hyps``: per utterance, output labels (word ids) of the best path.
    ``costs``: ``(U,)`` float64, graph plus scaled acoustic cost of the best
    path, final cost included when a final state was reached (``inf``: no
    path). ``reached_final``: ``(U,)`` bool. ``utt_seconds``: ``(U,)`` wall
    seconds; ``utt_cpu_seconds``: ``(U,)`` CPU seconds of the decoding thread
    (steadier than wall time on a shared machine). ``frames``: ``(U,)`` frames per utterance. ``tokens_per_frame``:
    tokens expanded on each frame of the first ``count_tokens`` utterances,
    concatenated (``None`` when not counted)."""

    decoder: str
    config: dict
    hyps: tuple[tuple[int, ...], ...]
    costs: np.ndarray
    reached_final: np.ndarray
    utt_seconds: np.ndarray
    frames: np.ndarray
    frame_shift: float
    cpu: int | None
    tokens_per_frame: np.ndarray | None = field(default=None)
    utt_cpu_seconds: np.ndarray | None = field(default=None)

    @property
    def seconds(self) -> float:
        return float(self.utt_seconds.sum())

    @property
    def num_frames(self) -> int:
        return int(self.frames.sum())

    @property
    def audio_seconds(self) -> float:
        return self.num_frames * self.frame_shift

    @property
    def frames_per_second(self) -> float:
        return self.num_frames / self.seconds

    @property
    def rtfx(self) -> float:
        """Audio seconds per decode second."""
        return self.audio_seconds / self.seconds

    def words(self, symbols: SymbolTable) -> tuple[tuple[str, ...], ...]:
        """The hypotheses as words."""
        return tuple(tuple(symbols[w] for w in hyp) for hyp in self.hyps)


@contextlib.contextmanager
def pinned_to(cpu: int | None) -> Iterator[None]:
    """Run the calling thread on CPU ``cpu`` only (``None``: leave it), then
    restore its affinity."""
    if cpu is None:
        yield
        return
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise BaselineError(f"cannot pin to CPU {cpu}: this process may use CPUs {sorted(allowed)}")
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def _check(graph: KaldiGraph, workload: Workload, decoder: str, beam: float, max_active: int, min_active: int,
           acoustic_scale: float, lattice_beam: float, count_tokens: int) -> None:
    if decoder not in DECODERS:
        raise BaselineError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    if not len(workload):
        raise BaselineError("the workload has no utterances")
    if count_tokens < 0:
        raise BaselineError(f"count_tokens must be a number of utterances (>= 0), got {count_tokens}")
    for name, value in (("beam", beam), ("acoustic_scale", acoustic_scale), ("lattice_beam", lattice_beam)):
        if not (np.isfinite(value) and value > 0):
            raise BaselineError(f"{name} must be a positive number, got {value!r}")
    if not 0 <= min_active < max_active:  # Kaldi aborts the process otherwise
        raise BaselineError(f"need 0 <= min_active < max_active, got min_active={min_active}, max_active={max_active}")
    if graph.max_ilabel > workload.num_columns:
        raise BaselineError(
            f"the graph has ilabels up to {graph.max_ilabel}, which read score column {graph.max_ilabel - 1}, but the "
            f"scores have {workload.num_columns} columns (Kaldi's DecodableCtc would read out of bounds)")
    empty = np.flatnonzero(np.diff(workload.offsets) == 0)
    if empty.size:
        raise BaselineError(f"utterance {workload.utt_ids[empty[0]]!r} has no frames; Kaldi's decoders need one")
    if not np.isfinite(workload.scores).all():
        row = int(np.flatnonzero(~np.isfinite(workload.scores).all(axis=1))[0])
        utt = int(np.searchsorted(workload.offsets, row, side="right")) - 1
        raise BaselineError(f"utterance {workload.utt_ids[utt]!r}, frame {row - workload.offsets[utt]}: "
                            "NaN or infinite score")
    if count_tokens and not graph.one_blank_arc_per_state:
        raise BaselineError(f"count_tokens needs a graph in which every state has exactly one arc with ilabel "
                            f"{graph.blank_ilabel} (blank); this one does not")


def _make_decoder(graph: KaldiGraph, decoder: str, beam: float, max_active: int, min_active: int,
                  lattice_beam: float):
    import kaldi_decoder

    if decoder == "faster":
        options = kaldi_decoder.FasterDecoderOptions(beam=beam, max_active=max_active, min_active=min_active)
        return kaldi_decoder.FasterDecoder(graph.fst, options)
    options = kaldi_decoder.LatticeSimpleDecoderConfig(beam=beam, lattice_beam=lattice_beam)
    return kaldi_decoder.LatticeSimpleDecoder(graph.fst, options)


def _decode(dec, decoder: str, decodable) -> tuple[tuple[int, ...], float, bool]:
    """Decode one utterance: ``(word ids, best-path cost, reached final)``."""
    import kaldifst

    dec.decode(decodable)
    found, lattice = dec.get_best_path()
    reached = dec.reached_final() if decoder == "faster" else dec.final_relative_cost() != float("inf")
    if not found:
        return (), float("inf"), bool(reached)
    _, _, olabels, weight = kaldifst.get_linear_symbol_sequence(lattice)
    return tuple(olabels), weight.value1 + weight.value2, bool(reached)


def _token_counts(dec, decoder: str, rows: np.ndarray, blank_ilabel: int) -> np.ndarray:
    """Tokens expanded per frame when ``dec`` decodes ``rows`` (see the module
    docstring)."""
    import kaldi_decoder

    class CountingDecodable(kaldi_decoder.DecodableInterface):
        def __init__(self):
            super().__init__()
            self.values = rows.tolist()  # Python floats: the fastest element access from a callback
            self.counts = [0] * len(self.values)

        def log_likelihood(self, frame: int, index: int) -> float:
            if index == blank_ilabel:
                self.counts[frame] += 1
            return self.values[frame][index - 1]

        def num_frames_ready(self) -> int:
            return len(self.values)

        def is_last_frame(self, frame: int) -> bool:
            return frame == len(self.values) - 1

        def num_indices(self) -> int:
            return rows.shape[1]

    decodable = CountingDecodable()
    _decode(dec, decoder, decodable)
    counts = np.array(decodable.counts, dtype=np.int64)
    if decoder == "faster":  # the best token's arcs are looked up twice
        counts = np.maximum(counts - 1, 0)
    return counts


def run_kaldi(
    graph: KaldiGraph | str | os.PathLike,
    workload: Workload,
    *,
    decoder: str = "faster",
    beam: float = 15.0,
    max_active: int = 10000,
    min_active: int = 20,
    acoustic_scale: float = 1.0,
    lattice_beam: float = 8.0,
    cpu: int | None = None,
    count_tokens: int = 0,
) -> BaselineRun:
    """Decode every utterance of ``workload`` with Kaldi's ``decoder``
    (``"faster"`` or ``"lattice-simple"``) on ``graph`` (a :class:`KaldiGraph`,
    or a path for :meth:`KaldiGraph.load`; load once and reuse it for several
    runs on a big graph).

    ``beam``, ``max_active``, ``min_active`` (FasterDecoder only; Kaldi's
    defaults are 16, unlimited, 20), ``lattice_beam`` (LatticeSimpleDecoder
    only), ``acoustic_scale`` (scores are multiplied by it). ``cpu``: pin the
    decoding thread to this core for the run. ``count_tokens``: count tokens
    per frame on the first this many utterances (untimed, slow; see the module
    docstring). Raises :class:`BaselineError` before decoding anything if the
    graph, scores or configuration are unusable."""
    import kaldi_decoder

    if not isinstance(graph, KaldiGraph):
        graph = KaldiGraph.load(graph)
    _check(graph, workload, decoder, beam, max_active, min_active, acoustic_scale, lattice_beam, count_tokens)
    config = {"beam": beam, "acoustic_scale": acoustic_scale}
    config.update({"max_active": max_active, "min_active": min_active} if decoder == "faster"
                  else {"lattice_beam": lattice_beam})
    scaled = workload.scores * np.float32(acoustic_scale)
    count = len(workload)
    hyps: list[tuple[int, ...]] = []
    costs = np.empty(count, dtype=np.float64)
    reached = np.empty(count, dtype=bool)
    seconds = np.empty(count, dtype=np.float64)
    cpu_seconds = np.empty(count, dtype=np.float64)
    offsets = workload.offsets
    with pinned_to(cpu):
        dec = _make_decoder(graph, decoder, beam, max_active, min_active, lattice_beam)
        _decode(dec, decoder, kaldi_decoder.DecodableCtc(scaled[offsets[0]:offsets[1]]))  # warm-up
        for i in range(count):
            decodable = kaldi_decoder.DecodableCtc(scaled[offsets[i]:offsets[i + 1]])
            start, cpu_start = time.perf_counter(), time.thread_time()
            hyp, costs[i], reached[i] = _decode(dec, decoder, decodable)
            seconds[i] = time.perf_counter() - start
            cpu_seconds[i] = time.thread_time() - cpu_start
            hyps.append(hyp)
        tokens = None
        if count_tokens:
            tokens = np.concatenate([_token_counts(dec, decoder, scaled[offsets[i]:offsets[i + 1]], graph.blank_ilabel)
                                     for i in range(min(count_tokens, count))])
    return BaselineRun(decoder, config, tuple(hyps), costs, reached, seconds, np.diff(offsets),
                       workload.frame_shift, cpu, tokens, cpu_seconds)


# ------------------------------------------------------------------ reports
def machine_info(cpu: int | None) -> dict:
    """CPU model, core counts, load average (other work on the machine skews
    timings: take it before the runs, which raise it themselves) and versions,
    for result files."""
    import importlib.metadata

    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as stream:
        model = next((line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")), model)
    versions = {"python": platform.python_version(), "wfst-gpu": wfst.__version__}
    for package in ("kaldi-decoder", "kaldifst", "numpy", "numba"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {"cpu_model": model, "logical_cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "pinned_cpu": cpu, "load_average": os.getloadavg(), "platform": platform.platform(),
            "versions": versions}


def summarize(run: BaselineRun, workload: Workload, words: SymbolTable | None,
              lexicon: Mapping[str, Sequence[Sequence[str]]] | None = None) -> dict:
    """A JSON-ready record of ``run``: speed, WER (when the workload has
    references and ``words`` is given), token counts, and per utterance the
    hypothesis (words, or word ids without ``words``), cost and whether a
    final state was reached.

    With a ``lexicon`` and a workload that knows its phones, also whether each
    hypothesis spells the reference's phones (:func:`~bench.workload.posteriors.spells`)
    and ``homophone_tolerant_wer``: the WER counting such hypotheses as correct,
    i.e. the errors the scores could have prevented."""
    hyp_words = run.words(words) if words is not None else None
    wer = tolerant = spelled = None
    if hyp_words is not None and workload.references is not None:
        wer = compute_wer(workload.references, hyp_words, workload.utt_ids).to_dict()
        if lexicon is not None and workload.phones is not None:
            spelled = [spells(h, p, lexicon) for h, p in zip(hyp_words, workload.phones)]
            tolerant = compute_wer(workload.references, [r if ok else h for r, h, ok in
                                                         zip(workload.references, hyp_words, spelled)]).to_dict()
    tokens = None
    if run.tokens_per_frame is not None:
        t = run.tokens_per_frame
        tokens = {"mean": float(t.mean()), "median": float(np.median(t)), "p95": float(np.percentile(t, 95)),
                  "max": int(t.max()), "frames": int(t.size)}
    return {
        "decoder": run.decoder, "config": run.config, "seconds": run.seconds,
        "cpu_seconds": None if run.utt_cpu_seconds is None else float(run.utt_cpu_seconds.sum()),
        "frames": run.num_frames,
        "audio_seconds": run.audio_seconds, "frames_per_second": run.frames_per_second, "rtfx": run.rtfx,
        "reached_final": int(run.reached_final.sum()), "utterances": len(run.hyps), "wer": wer,
        "homophone_tolerant_wer": tolerant, "tokens_per_frame": tokens,
        "hyps": [{"utt": u, **({"words": " ".join(hyp_words[i])} if hyp_words is not None
                               else {"word_ids": list(run.hyps[i])}), "cost": float(run.costs[i]),
                  "reached_final": bool(run.reached_final[i]), "seconds": float(run.utt_seconds[i]),
                  "cpu_seconds": None if run.utt_cpu_seconds is None else float(run.utt_cpu_seconds[i]),
                  "spells_reference_phones": None if spelled is None else spelled[i]}
                 for i, u in enumerate(workload.utt_ids)],
    }


def _one_line(record: dict) -> str:
    """A run's record as one line of the command's progress output."""
    config = record["config"]
    line = f"{record['decoder']:14s} scale {config['acoustic_scale']:<4} beam {config['beam']:<5} "
    line += f"max_active {config['max_active']:<6}" if "max_active" in config else " " * 17
    line += f" {record['frames_per_second']:9.0f} frames/s  RTFx {record['rtfx']:8.1f}"
    if record["wer"]:
        line += f"  WER {record['wer']['wer']:6.2f}%"
    if record["homophone_tolerant_wer"]:
        line += f" ({record['homophone_tolerant_wer']['wer']:.2f}% homophone-tolerant)"
    if record["tokens_per_frame"]:
        line += f"  tokens/frame {record['tokens_per_frame']['mean']:7.0f}"
    return line


def _graph_paths(graph: Path, words: Path | None) -> tuple[Path, Path | None]:
    fst_path = graph / "TLG.fst" if graph.is_dir() else graph
    if words is None and (fst_path.parent / "words.txt").exists():
        words = fst_path.parent / "words.txt"
    return fst_path, words


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workload.kaldi_baseline",
        description="Kaldi FasterDecoder / LatticeSimpleDecoder baseline on a workload; writes JSON.")
    parser.add_argument("--graph", type=Path, required=True, help="TLG.fst, or a directory holding TLG.fst")
    parser.add_argument("--words", type=Path, help="words.txt (default: beside the graph)")
    parser.add_argument("--data", type=Path, required=True, help="workload .npz (references from its .text)")
    parser.add_argument("--lexicon", type=Path,
                        help="the workload's lexicon, to also report the homophone-tolerant WER (default: the one "
                             "named in build.json beside the graph, if any)")
    parser.add_argument("--decoder", nargs="+", choices=DECODERS, default=["faster"])
    parser.add_argument("--beam", nargs="+", type=float, default=[15.0])
    parser.add_argument("--max-active", nargs="+", type=int, default=[10000], help="FasterDecoder only")
    parser.add_argument("--min-active", type=int, default=20, help="FasterDecoder only")
    parser.add_argument("--acoustic-scale", nargs="+", type=float, default=[1.0])
    parser.add_argument("--lattice-beam", type=float, default=8.0, help="LatticeSimpleDecoder only")
    parser.add_argument("--cpu", type=int, help="core to pin to (default: the first usable one)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to a core")
    parser.add_argument("--count-tokens", type=int, default=0, metavar="N",
                        help="count tokens per frame on the first N utterances (untimed, slow)")
    parser.add_argument("--out", type=Path,
                        help="JSON path (default: bench/results/kaldi_baseline_<graph>_<data>.json)")
    args = parser.parse_args(argv)

    fst_path, words_path = _graph_paths(args.graph, args.words)
    build_json = fst_path.parent / "build.json"  # written by python -m bench.workload build
    build = json.loads(build_json.read_text()) if build_json.exists() else None
    lexicon_path = args.lexicon or (Path(build["lexicon"]) if build and build.get("lexicon") else None)
    cpu = None if args.no_pin else (args.cpu if args.cpu is not None else min(os.sched_getaffinity(0)))
    try:
        workload = Workload.load(args.data)
        words = SymbolTable.read(words_path) if words_path is not None else None
        lexicon = read_lexicon(lexicon_path) if lexicon_path is not None else None
        start = time.perf_counter()
        graph = KaldiGraph.load(fst_path)
        load_seconds = time.perf_counter() - start
        runs = []
        for decoder in args.decoder:
            max_actives = args.max_active if decoder == "faster" else [args.max_active[-1]]
            for scale in args.acoustic_scale:
                for beam in args.beam:
                    for max_active in max_actives:
                        run = run_kaldi(graph, workload, decoder=decoder, beam=beam, max_active=max_active,
                                        min_active=args.min_active, acoustic_scale=scale,
                                        lattice_beam=args.lattice_beam, cpu=cpu, count_tokens=args.count_tokens)
                        record = summarize(run, workload, words, lexicon)
                        runs.append(record)
                        print(_one_line(record), flush=True)
    except (WfstError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    graph_name = fst_path.parent.name
    out = args.out or RESULTS_DIR / f"kaldi_baseline_{graph_name}_{args.data.stem}.json"
    result = {
        "description": "Kaldi CPU decoders (kaldi-decoder package) on one core; time per utterance is decode() "
                       "plus the best path, scores pre-multiplied by the acoustic scale",
        "command": "python -m bench.workload.kaldi_baseline " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(cpu),
        "graph": {**graph.sizes(), "load_seconds": load_seconds, "words": None if words is None else len(words),
                  "build": build},
        "lexicon": None if lexicon_path is None else str(lexicon_path),
        "workload": {"path": str(args.data), "utterances": len(workload), "frames": workload.num_frames,
                     "audio_seconds": workload.audio_seconds, "frame_shift": workload.frame_shift,
                     "metadata": dict(workload.metadata)},
        "token_count_note": "tokens expanded per frame, counted in a separate untimed pass over the first "
                            f"{args.count_tokens} utterances (0: not counted; the binding exposes no count)",
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
