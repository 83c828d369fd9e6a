"""``wfst-decode``: decode a test set offline, from the command line.

::

    wfst-decode GRAPH WORDS SCORES OUTDIR [options]
    wfst-decode example [--device D --threads N --lanes N --outdir DIR]

Reads the graph and words.txt, decodes every utterance of SCORES in batches of
``--lanes``, writes results into OUTDIR as they finish (see
:mod:`wfst.decode_outputs`), and prints a summary. See :data:`EPILOG` for the
exit codes and the rules for bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import DecoderConfig, available_cores
from lattice import AlignmentLexicon, LatticeError

from .decode_outputs import (OUTPUT_FILES, DecodeOutputs, LatticeOptions, complete_lines, one_field,
                             read_settings, utterance_id, wer_report, write_atomically, write_settings)
from .errors import ConfigError, GraphError, ScoresError, WfstError
from .pdf_map import read_pdf_map
from .reader import read_fst
from .score_sources import ScoreSource, ScoreSourceError, open_scores, score_file, score_identity
from .scores import host_scores
from .symbols import SymbolTable
from .wer import compute_wer, read_transcripts

PROG = "wfst-decode"

EXIT_OK = 0
EXIT_SKIPPED = 1
EXIT_UNUSABLE = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130

DEFAULT_FRAME_SHIFT = 0.01
"""Seconds per frame when neither --frame-shift nor the scores say (Kaldi's 10 ms)."""

LANES_PER_THREAD = 4
"""Default utterances per decoder call on the CPU, per thread: enough that a slow
utterance rarely leaves a thread idle, few enough that results are written often."""
CALLS_PER_LANE = 2
"""Utterances per decoder call on CUDA, per lane: lanes are refilled within a
call, so only its last utterances leave lanes idle."""
COMPILE_NOTICE_SECONDS = 3.0
"""A warm-up that takes longer than this is compiling (a first run): say so on stderr."""

EPILOG = f"""\
SCORES is one of:
  ark:FILE, ark,t:FILE, ark:-, 'ark:CMD |', scp:FILE   a Kaldi rspecifier (kaldiio; binary or text matrices)
  FILE.npz                                            a workload file (scores, offsets, utt_ids, frame_shift)
  DIR                                                 a directory of UTT_ID.npy files, one matrix each
Each matrix is frames x columns of log-likelihoods (HCLG) or log-probabilities (CTC): input label i reads
column i-1, or column pdf(i) with --pdf-map.

OUTDIR receives, as utterances finish: text (Kaldi transcripts), lat.ark and lat.index (with --lattices),
nbest (with --nbest), ctm (with --ctm), skipped (utterances that could not be decoded, with the reason),
and at the end wer (with --ref); decode.json records the settings. A non-empty OUTDIR is refused unless
wfst-decode wrote it (it holds decode.json) and --resume (continue with the same graph, words, scores file
and settings, though a scores command may change: utterances already in text are not decoded again;
their other results are kept, and anything written for an utterance text lacks, a torn last line or
lattice included, is dropped and redone) or --overwrite (replace wfst-decode's files there; other files
are left alone) is given. No input may be one of the files written there. A run that can decode nothing
from its scores leaves no OUTDIR it made.

lat.ark is a Kaldi lattice archive keyed by utterance id, as latgen-faster writes one: acoustic costs
unscaled (divided by --acoustic-scale), each lattice determinized to a CompactLattice (at the decoding
scale, then unscaled, as Kaldi does), or the state-level Lattice with --no-determinize-lattice; binary, or
text with --lattice-format text. lat.index holds 'utt-id start end', each entry's byte range in lat.ark.
nbest holds 'utt-id rank cost graph-cost acoustic-cost word ...' lines, rank 1 the best of the N best
distinct word sequences of the lattice, costs as searched (acoustic scale applied; cost = graph + acoustic).

A bad utterance (unreadable, not 2-D, NaN or inf scores, fewer columns than the graph reads, zero frames,
an id seen before or containing whitespace or unprintable characters) is reported on stderr, listed in
OUTDIR/skipped ('utt-id reason' lines; such characters of an id written as \\xNN), and the run goes on.
Zero frames count as bad: the decoder would return the start state's epsilon closure, which is never a
transcript of real audio.
An utterance decoded without reaching a final state keeps its best partial path (as Kaldi's
--allow-partial=true), and one where no token survived the search gets an empty transcript: both are
warned about on stderr and counted in the summary.

exit codes:
  {EXIT_OK}    every utterance was decoded
  {EXIT_SKIPPED}    finished, but some utterances were skipped (see OUTDIR/skipped)
  {EXIT_UNUSABLE}    nothing decoded: bad arguments, an unusable graph, words.txt, pdf map, reference or
       scores source (one that holds no utterances, or whose command fails before any), or an OUTDIR
       that is not empty (without --resume or --overwrite)
  {EXIT_STOPPED}    stopped part-way (the scores became unreadable, their command failed, or the decoder
       failed); the utterances read before are decoded and kept: fix the cause and rerun with --resume
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); rerun with --resume

On/off options also take Kaldi's spelling: --determinize-lattice=false is --no-determinize-lattice.

WER is scored as Kaldi's compute-wer --mode=present does: over the decoded utterances that have a
reference.

  wfst-decode example   decodes the small example shipped with wfst-gpu and prints its WER and RTFx
                        (--outdir DIR keeps its outputs; it replaces only an earlier example run there).
"""

CONFIG_HELP = {
    "beam": "search beam: cost window kept around the best token of a frame",
    "max_active": "most tokens kept per frame (the beam tightens above it)",
    "min_active": "fewest tokens the adaptive beam keeps",
    "lattice_beam": "cost window of the paths kept in the lattice",
    "acoustic_scale": "multiplies the log-likelihoods before they add to graph costs (e.g. 0.1 for nnet3 "
                      "log-likelihoods, 1.0 for chain models, 0.3-1.0 for CTC log-probabilities)",
    "prune_interval": "frames between lattice prunings",
    "use_final_probs": "add final costs and prefer final states when one is reached",
    "token_queue_capacity": "tokens one frame may hold (default: derived from --max-active)",
    "arc_queue_capacity": "candidate tokens one expansion may produce (default: derived)",
}
"""Help of the option mirroring each :class:`DecoderConfig` field."""


RESUME_SETTINGS = ("config", "ctm", "frame_shift", "graph", "lattices", "lexicon", "nbest", "pdf_map", "scores",
                   "words")
"""Settings in decode.json that a resumed run must share with the run it continues."""


class UsageError(WfstError, ValueError):
    """A command line that cannot run: conflicting options or an OUTDIR that
    must not be written."""


@dataclass
class Tally:
    """What one run did."""

    decoded: int = 0
    skipped: int = 0
    not_final: int = 0  # decoded, but no final state was active at the end: a partial transcript
    no_path: int = 0  # decoded, but no token survived the search: an empty transcript
    already_done: int = 0
    frames: int = 0
    decode_seconds: float = 0.0
    output_seconds: float = 0.0  # determinizing lattices, n-best, CTM and writing OUTDIR
    first_width: int = 0  # score columns of the first utterance read
    noted_width: bool = False  # an utterance of another width was noted


# ---------------------------------------------------------------- arguments
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        usage=f"{PROG} [options] GRAPH WORDS SCORES OUTDIR\n       {PROG} example [options]",
        description="Decode a test set: a graph (HCLG or TLG; any format wfst.read_fst reads), its words.txt and "
                    "per-utterance score matrices in; transcripts, CTM and WER out, written as utterances finish.")
    parser.add_argument("graph", help="decoding graph: OpenFst vector/const, AT&T text or wfst cache")
    parser.add_argument("words", help="words.txt: the graph's output symbols")
    parser.add_argument("scores", help="score matrices: a Kaldi rspecifier, a workload .npz or a directory of "
                                       ".npy files (see below)")
    parser.add_argument("outdir", help="output directory (created if absent)")
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--pdf-map", metavar="FILE",
                        help="input label -> score column: 'transition-id pdf' text lines or a 1-D .npy (Kaldi HCLG)")
    inputs.add_argument("--ref", metavar="TEXT", help="Kaldi text of reference transcripts: write OUTDIR/wer")
    inputs.add_argument("--frame-shift", type=float, metavar="SECONDS",
                        help="seconds per score row, for CTM times and RTFx (default: the .npz's own, else "
                             f"{DEFAULT_FRAME_SHIFT}; e.g. 0.03 for chain models, 0.04 for many CTC models)")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--lattices", action="store_true",
                         help="also write OUTDIR/lat.ark, a Kaldi lattice archive (see below), and its index lat.index")
    outputs.add_argument("--determinize-lattice", action=argparse.BooleanOptionalAction,
                         help="with --lattices: write determinized CompactLattices, as Kaldi's latgen-faster does, or "
                              "(--no-determinize-lattice) the state-level Lattices (default: determinize)")
    outputs.add_argument("--lattice-format", choices=("binary", "text"),
                         help="with --lattices: binary Kaldi objects, or Kaldi's text form (ark,t) (default: binary)")
    outputs.add_argument("--nbest", type=int, metavar="N",
                         help="also write OUTDIR/nbest: the N best distinct word sequences of each lattice, with costs")
    outputs.add_argument("--ctm", action="store_true", help="also write OUTDIR/ctm (word times of the best path)")
    outputs.add_argument("--lexicon", metavar="FILE",
                         help="with --ctm, CTC graphs: word times from this lexicon (the one the graph was built from: "
                              "lexicon.txt, lexiconp.txt or CMUdict) instead of where the graph put the word labels, "
                              "which determinization makes late; needs --tokens")
    outputs.add_argument("--tokens", metavar="FILE", help="with --lexicon: tokens.txt, the graph's input symbols")
    outputs.add_argument("--blank", default="<blk>", metavar="SYMBOL",
                         help="with --lexicon: the CTC blank's symbol in --tokens (default: %(default)s)")
    outputs.add_argument("--resume", action="store_true",
                         help="continue in a non-empty OUTDIR: skip utterances already in OUTDIR/text")
    outputs.add_argument("--overwrite", action="store_true", help="replace wfst-decode's files in a non-empty OUTDIR")
    search = parser.add_argument_group("search (as wfst.DecoderConfig)")
    for f in dataclasses.fields(DecoderConfig):
        option = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            search.add_argument(option, action=argparse.BooleanOptionalAction, default=f.default,
                                help=CONFIG_HELP[f.name] + " (default: %(default)s)")
        else:
            kind = float if isinstance(f.default, float) else int
            shown = "" if f.default is None else " (default: %(default)s)"  # (None: the help says how it derives)
            search.add_argument(option, type=kind, default=f.default, metavar="N" if kind is int else "X",
                                help=CONFIG_HELP[f.name] + shown)
    _add_hardware_options(parser)
    return parser


def _add_hardware_options(parser: argparse.ArgumentParser) -> None:
    hardware = parser.add_argument_group("hardware")
    hardware.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                          help="cuda, cpu, or auto: CUDA when a GPU and cupy are present (default: auto)")
    hardware.add_argument("--threads", type=int, default=available_cores(),
                          help="CPU decoding threads (default: the cores available, %(default)s)")
    hardware.add_argument("--lanes", type=int,
                          help=f"CPU: utterances per decoder call, decoded together; results are written after "
                               f"each call (default: {LANES_PER_THREAD} per thread). CUDA: the decoder's lanes, "
                               f"utterances searched at once (default: as many as fit, at most 256), with "
                               f"{CALLS_PER_LANE} utterances per lane in each call")


def _kaldi_booleans(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with Kaldi's ``--flag=true`` / ``--flag=false`` (any case) spelled ``--flag`` /
    ``--no-flag`` for the parser's on/off options (up to a ``--``)."""
    flags = {o for a in parser._actions if isinstance(a, argparse.BooleanOptionalAction)
             for o in a.option_strings if not o.startswith("--no-")}
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        name, _, value = arg.partition("=")
        if name in flags and value.lower() in ("true", "false"):
            arg = name if value.lower() == "true" else "--no-" + name[2:]
        out.append(arg)
    return out


def _config(args: argparse.Namespace) -> DecoderConfig:
    return DecoderConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DecoderConfig)})


def _alignment_lexicon(args: argparse.Namespace, words: SymbolTable, labels) -> AlignmentLexicon | None:
    """The lexicon for CTM word times (None without --lexicon); :class:`UsageError`
    for --lexicon without --ctm or --tokens, or a lexicon that does not fit the
    graph's tables or lacks one of the words the graph can output (``labels``,
    its distinct output labels)."""
    if args.lexicon is None:
        if args.tokens is not None:
            raise UsageError("--tokens: only with --lexicon (it names the lexicon's phones)")
        return None
    if not args.ctm or args.tokens is None:
        raise UsageError("--lexicon needs --ctm (it sets the CTM's word times) and --tokens (the graph's tokens.txt)")
    try:
        lexicon = AlignmentLexicon(args.lexicon, words, args.tokens, blank=args.blank)
    except OSError as error:
        raise UsageError(f"--lexicon {args.lexicon} or --tokens {args.tokens}: cannot read it: "
                         f"{error.strerror or error} ({error.filename})") from None
    except LatticeError as error:
        raise UsageError(f"--lexicon {args.lexicon}: {error}") from error
    missing = [int(w) for w in labels[labels != 0] if int(w) not in lexicon.pronunciations]
    if missing:
        names = ", ".join(repr(words.find(w)) for w in missing[:5])
        raise UsageError(f"--lexicon {args.lexicon}: {len(missing)} words the graph can output have no "
                         f"pronunciation there (e.g. {names}); give the lexicon the graph was built from")
    return lexicon


def _lattice_options(args: argparse.Namespace) -> LatticeOptions | None:
    """How to write lat.ark (None without --lattices); :class:`UsageError` for
    a lattice option given without --lattices, or a bad --nbest."""
    if args.nbest is not None and args.nbest < 1:
        raise UsageError(f"--nbest must be >= 1 (hypotheses per utterance), got {args.nbest}")
    if not args.lattices:
        given = [option for option, value in (("--[no-]determinize-lattice", args.determinize_lattice),
                                              ("--lattice-format", args.lattice_format)) if value is not None]
        if given:
            raise UsageError(f"{' and '.join(given)}: only with --lattices (these options shape OUTDIR/lat.ark)")
        return None
    return LatticeOptions(determinize=args.determinize_lattice is not False, binary=args.lattice_format != "text")


# ------------------------------------------------------------------ set-up
def _prepare_outdir(outdir: Path, resume: bool, overwrite: bool, settings: dict, inputs: dict,
                    rerun: bool = False) -> None:
    """Make ``outdir`` ready: create it, or check that it may be continued
    (``resume``: its decode.json has the same ``settings`` where
    :data:`RESUME_SETTINGS` name them) or replaced (``overwrite``: only a
    directory that wfst-decode wrote, with a decode.json; ``rerun``, for
    ``wfst-decode example --outdir``: only one holding a run with the same
    ``settings``, as for ``resume``); raise
    :class:`UsageError` if not, or if one of the ``inputs`` (option: path or
    None) is one of the files wfst-decode writes there."""
    for option, path in inputs.items():
        clash = path is not None and next((name for name in OUTPUT_FILES if _same_file(path, outdir / name)), None)
        if clash:
            raise UsageError(f"{option} {path} is OUTDIR's {clash}, which {PROG} writes: move it, or choose "
                             "another OUTDIR")
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other: continue the run, or start it again")
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"OUTDIR {outdir} exists and is not a directory")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not (outdir / "decode.json").is_file():
            raise UsageError(f"OUTDIR {outdir} holds files that {PROG} did not write (it has no decode.json), so "
                             "it can be neither resumed nor overwritten: choose another OUTDIR")
        if overwrite:
            _remove_outputs(outdir)
        elif rerun:
            try:
                changed = _changed_settings(outdir, settings)
                reason = changed and f"decoded with other {', '.join(changed)}"
            except ValueError as error:
                reason = f"its decode.json is unreadable: {error}"
            if reason:
                raise UsageError(f"--outdir {outdir} holds another run ({reason}), which the example does not "
                                 "replace: choose another --outdir")
            _remove_outputs(outdir)
        elif not resume:
            raise UsageError(f"OUTDIR {outdir} is not empty: pass --resume to continue the run it holds, or "
                             "--overwrite to replace its results")
        else:
            try:
                changed = _changed_settings(outdir, settings)
            except ValueError as error:
                raise UsageError(f"cannot resume in {outdir}: its decode.json is unreadable ({error}); use "
                                 "--overwrite or another OUTDIR") from None
            if changed:
                raise UsageError(f"cannot resume in {outdir}: it was decoded with other {', '.join(changed)} "
                                 f"({', '.join(f'{k}={v}' for k, v in changed.items())}); rerun with the same "
                                 "options, or use --overwrite or another OUTDIR")
    outdir.mkdir(parents=True, exist_ok=True)
    write_settings(outdir, settings)


def _changed_settings(outdir: Path, settings: dict) -> dict:
    """Each of :data:`RESUME_SETTINGS` whose value in ``outdir``'s decode.json
    differs from ``settings``, with that value; ``ValueError`` if decode.json is
    not a settings object."""
    before = read_settings(outdir)
    if not isinstance(before, dict):
        raise ValueError("not a JSON object")
    return {k: before.get(k) for k in RESUME_SETTINGS if before.get(k) != settings[k]}


def _remove_outputs(outdir: Path) -> None:
    """Every file wfst-decode writes in ``outdir`` (others stay)."""
    for name in OUTPUT_FILES:
        (outdir / name).unlink(missing_ok=True)


def _same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name one file (links included)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def _read_input(option: str, path: str, read):
    """``read(path)``, an ``OSError`` or a typed error of the reader (which
    names the file) as a :class:`UsageError` naming ``option``."""
    try:
        return read(path)
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot read it: {error.strerror or error}") from None
    except WfstError as error:
        raise UsageError(f"{option} {error}") from None


def _read_words(path: str, labels: np.ndarray) -> SymbolTable:
    """words.txt, checked against the graph's distinct output ``labels``."""
    words = _read_input("WORDS", path, SymbolTable.read)
    missing = labels[~np.isin(labels, np.fromiter(words.id_to_symbol, np.int64, len(words)))]
    missing = missing[missing != 0]
    if missing.size:
        raise UsageError(f"{path}: the graph has output labels that are not in this words.txt ({missing.size} "
                         f"missing, e.g. {missing[:5].tolist()}); is it the words.txt the graph was built with?")
    return words


# ---------------------------------------------------------------- decoding
def _checked(utt_id: str, load, num_columns: int, seen: set[str]) -> np.ndarray:
    """The utterance's checked float32 matrix; :class:`ScoresError` if it is bad."""
    if one_field(utt_id) != utt_id:
        raise ScoresError(f"utterance id {utt_id!r} is empty or contains whitespace or unprintable characters")
    if utt_id in seen:
        raise ScoresError("this utterance id appeared before in the scores; only the first is decoded")
    seen.add(utt_id)
    scores = host_scores(load(), num_columns, name=f"scores of {utt_id}")
    if scores.shape[0] == 0:
        raise ScoresError("zero frames (empty audio, or a failed feature extraction upstream?)")
    return scores


def _decode_all(decoder, source: ScoreSource, outputs: DecodeOutputs, lanes: int, progress, tally: Tally) -> None:
    """Decode every utterance of ``source`` not already done, ``lanes`` per
    decoder call, recording results as each call returns and counting them in
    ``tally``. When the source breaks, the utterances read before are decoded
    and recorded first, then its :class:`ScoreSourceError` is raised."""
    seen: set[str] = set()
    batch: list[tuple[str, np.ndarray]] = []

    def flush():
        began = time.perf_counter()
        results = decoder.decode([scores for _, scores in batch])
        tally.decode_seconds += time.perf_counter() - began
        began = time.perf_counter()
        outputs.add([(utt_id, result) for (utt_id, _), result in zip(batch, results)])
        tally.output_seconds += time.perf_counter() - began
        for (utt_id, _), result in zip(batch, results):
            if not result.reached_final:
                failed = result.cost == np.inf
                tally.no_path += failed
                tally.not_final += not failed
                why = ("no token survived the search (a dead end in the graph, or too tight a beam): its "
                       "transcript is empty" if failed else
                       "no final state reached: its transcript is the best partial path")
                progress.write(f"{PROG}: warning: {one_field(utt_id)}: {why}", file=sys.stderr)
        tally.decoded += len(batch)
        tally.frames += sum(scores.shape[0] for _, scores in batch)
        progress.update(len(batch))
        batch.clear()

    entries = iter(source)
    while True:
        try:
            utt_id, load = next(entries)
        except StopIteration:
            break
        except ScoreSourceError:
            if batch:
                flush()
            raise
        if utt_id in outputs.done and utt_id not in seen:
            seen.add(utt_id)
            tally.already_done += 1
            progress.update(1)
            continue
        try:
            batch.append((utt_id, _checked(utt_id, load, decoder.graph.num_columns, seen)))
            width = batch[-1][1].shape[1]
            tally.first_width = tally.first_width or width
            if width != tally.first_width and not tally.noted_width:  # one model's outputs are one width
                tally.noted_width = True
                progress.write(f"{PROG}: note: {utt_id} has {width} score columns, an earlier utterance "
                               f"{tally.first_width}; the scores are read as frames x columns (the graph reads "
                               f"{decoder.graph.num_columns}): transpose them if they are columns x frames",
                               file=sys.stderr)
        except ScoresError as error:
            outputs.skip(utt_id, str(error))
            tally.skipped += 1
            progress.write(f"{PROG}: skipped {one_field(utt_id)}: {error}", file=sys.stderr)
            progress.update(1)
            continue
        if len(batch) == lanes:
            flush()
    if batch:
        flush()


def _warm_up(decoder) -> None:
    """Compile the search kernels (numba, cached on disk) before the clock runs;
    a warm-up past COMPILE_NOTICE_SECONDS says why the command is quiet."""
    notice = threading.Timer(COMPILE_NOTICE_SECONDS, print, [
        f"{PROG}: compiling the decoder's kernels (once per install, cached for later runs: about 40 s to a minute)"],
        {"file": sys.stderr, "flush": True})
    notice.daemon = True
    notice.start()
    try:
        decoder.decode(np.zeros((1, max(decoder.graph.num_columns, 1)), np.float32))
    finally:
        notice.cancel()


def _score(outdir: Path, refs: dict[str, tuple[str, ...]]) -> tuple[object, int, int] | None:
    """WER of OUTDIR/text against ``refs`` (Kaldi's --mode=present), written to
    OUTDIR/wer; returns (stats, references without a hypothesis, hypotheses
    without a reference), or None (and no file) when no utterance has both."""
    hyps = {utterance_id(line): tuple(line.split()[1:]) for line in complete_lines(outdir / "text")}
    scored = [u for u in refs if u in hyps]
    if not scored:
        return None
    stats = compute_wer({u: refs[u] for u in scored}, {u: hyps[u] for u in scored})
    missing = len(refs) - len(scored)
    write_atomically(outdir / "wer", wer_report(stats, missing))
    return stats, missing, len(hyps) - len(scored)


def _summary(tally: Tally, frame_shift: float, assumed: bool, wall: float, decoder, wer) -> str:
    """The run's summary; ``assumed``: neither --frame-shift nor the scores gave the frame shift."""
    audio = tally.frames * frame_shift
    lines = [f"utterances  {tally.decoded} decoded, {tally.skipped} skipped"
             + (f", {tally.already_done} already done (resumed)" if tally.already_done else "")
             + (f"; {tally.not_final} without a final state (partial)" if tally.not_final else "")
             + (f"; {tally.no_path} with no surviving token (empty)" if tally.no_path else ""),
             f"audio       {audio:.1f} s ({tally.frames} frames of {frame_shift:g} s"
             + (", assumed: --frame-shift sets it, e.g. 0.04 for many CTC models)" if assumed else ")"),
             f"decode      {tally.decode_seconds:.2f} s in the decoder ({wall:.2f} s wall), device "
             f"{decoder.device}, {decoder.threads} thread(s)",
             "RTFx        " + (f"{audio / tally.decode_seconds:.1f} in the decoder, "
                                  f"{audio / (tally.decode_seconds + tally.output_seconds):.1f} with the outputs "
                                  f"(lattice determinization, n-best, CTM, writing: {tally.output_seconds:.2f} s)"
                                  if tally.decode_seconds > 0 else "n/a")]
    if wer is not None:
        stats, missing, unscored = wer
        note = [f"{len(stats.utterances)} utterances scored"]
        if missing:
            note.append(f"{missing} references without a hypothesis")
        if unscored:
            note.append(f"{unscored} hypotheses without a reference")
        lines.append(f"WER         {stats}  ({', '.join(note)})")
    return "\n".join(lines)


# -------------------------------------------------------------------- main
def run(args: argparse.Namespace, rerun: bool = False) -> int:
    """Decode as ``args`` say; returns the exit code. User errors raise
    :class:`WfstError` or ``OSError`` before anything is written. ``rerun``:
    replace the results of an earlier run with the same settings in OUTDIR."""
    from tqdm import tqdm

    from .decoder import Decoder

    started = time.perf_counter()
    if args.lanes is not None and args.lanes < 1:
        raise ConfigError(f"--lanes must be >= 1, got {args.lanes}")
    config = _config(args)
    lattices = _lattice_options(args)
    refs = _read_input("--ref", args.ref, read_transcripts) if args.ref else None
    pdf_map = _read_input("--pdf-map", args.pdf_map, read_pdf_map) if args.pdf_map else None
    source = open_scores(args.scores)
    frame_shift = args.frame_shift if args.frame_shift is not None else source.frame_shift or DEFAULT_FRAME_SHIFT
    if not 0 < frame_shift < math.inf:
        raise UsageError(f"--frame-shift must be a positive finite number of seconds, got {args.frame_shift}")
    fst = read_fst(args.graph)
    labels = np.unique(fst.olabel)
    words = _read_words(args.words, labels)
    aligner = _alignment_lexicon(args, words, labels)
    try:
        decoder = Decoder(fst, config, device=args.device, pdf_map=pdf_map, threads=args.threads, lanes=args.lanes)
    except ImportError as error:  # --device cuda without CuPy
        raise UsageError(f"--device {args.device}: {error}") from None
    except GraphError as error:
        raise UsageError(f"graph {args.graph}" + (f" with --pdf-map {args.pdf_map}" if args.pdf_map else "")
                         + f": {error}") from None
    if decoder.device == "cuda":
        lanes = CALLS_PER_LANE * decoder._cuda.geometry.lanes
    else:
        lanes = args.lanes or LANES_PER_THREAD * decoder.threads
    outdir = Path(args.outdir)
    settings = {"config": dataclasses.asdict(config), "ctm": args.ctm, "frame_shift": frame_shift,
                "lexicon": args.lexicon and {"path": os.path.abspath(args.lexicon),
                                             "tokens": os.path.abspath(args.tokens), "blank": args.blank},
                "lattices": lattices and dataclasses.asdict(lattices), "nbest": args.nbest,
                "graph": os.path.abspath(args.graph), "words": os.path.abspath(args.words),
                "scores": score_identity(args.scores), "scores_given": args.scores,
                "pdf_map": args.pdf_map and os.path.abspath(args.pdf_map)}
    inputs = {"GRAPH": args.graph, "WORDS": args.words, "SCORES": score_file(args.scores), "--ref": args.ref,
              "--pdf-map": args.pdf_map, "--lexicon": args.lexicon, "--tokens": args.tokens}
    existed = outdir.exists()
    # whether this run starts OUTDIR (undone if it decodes nothing; a file there is refused by _prepare_outdir)
    fresh = not existed or outdir.is_dir() and not any(outdir.iterdir())
    _prepare_outdir(outdir, args.resume, args.overwrite, settings, inputs, rerun)
    _warm_up(decoder)

    outputs = DecodeOutputs(outdir, words, frame_shift, acoustic_scale=config.acoustic_scale, ctm=args.ctm,
                            lattices=lattices, nbest=args.nbest, lexicon=aligner)
    interactive = sys.stderr.isatty() and sys.stdout.isatty()
    progress = tqdm(total=source.count, unit="utt", desc=PROG, disable=not interactive, file=sys.stderr)
    stopped = None
    tally = Tally()
    try:
        _decode_all(decoder, source, outputs, lanes, progress, tally)
    except (WfstError, OSError) as error:  # a source broken part-way, a full disk, a decoder error
        stopped = error
    finally:
        progress.close()
        outputs.close()
    done = len(complete_lines(outdir / "text"))
    if stopped is not None and (done or not isinstance(stopped, ScoreSourceError)):
        print(f"{PROG}: error: {stopped}\n{PROG}: stopped; {done} utterances are in {outdir / 'text'}: fix the "
              "cause and rerun with --resume", file=sys.stderr)
        return EXIT_STOPPED
    if stopped is not None or not (done or tally.skipped):  # the scores gave nothing to decode
        print(f"{PROG}: error: {stopped or f'scores {args.scores!r} hold no utterances'}", file=sys.stderr)
        if fresh:  # nothing to keep: the rerun starts as this one did
            _remove_outputs(outdir)
            if not existed and not any(outdir.iterdir()):
                outdir.rmdir()
        return EXIT_UNUSABLE
    wer = _score(outdir, refs) if refs is not None else None
    if refs is not None and wer is None and done:
        print(f"{PROG}: warning: no WER: none of the {done} utterances in {outdir / 'text'} has a reference in "
              f"--ref {args.ref} (is it the Kaldi text of this test set, 'utt-id word ...' lines?)", file=sys.stderr)
    assumed = args.frame_shift is None and source.frame_shift is None
    print(_summary(tally, frame_shift, assumed, time.perf_counter() - started, decoder, wer))
    if tally.skipped:
        print(f"{PROG}: {tally.skipped} utterance(s) skipped, listed in {outdir / 'skipped'}", file=sys.stderr)
        return EXIT_SKIPPED
    return EXIT_OK


def _example(argv: list[str]) -> int:
    """``wfst-decode example``: decode the embedded example through :func:`run`."""
    from .example import example_dir, load_example

    parser = argparse.ArgumentParser(
        prog=f"{PROG} example",
        description="Decode the small example shipped with wfst-gpu (a CTC TLG and 20 synthetic utterances) on "
                    "the best available device; print WER and RTFx.")
    parser.add_argument("--outdir", help="keep the outputs here, replacing an earlier example run's but no other "
                                         "(default: a temporary directory, removed after)")
    _add_hardware_options(parser)
    options = parser.parse_args(argv)
    example = load_example()
    directory = example_dir()
    outdir = options.outdir or tempfile.mkdtemp(prefix="wfst-decode-example-")
    print(f"decoding the example in {directory}")
    args = _parser().parse_args([
        str(example.graph_path), str(example.words_path), str(example.scores_path), outdir,
        "--ref", str(example.text_path), "--acoustic-scale", str(example.acoustic_scale),
        "--device", options.device, "--threads", str(options.threads),
        *(["--lanes", str(options.lanes)] if options.lanes is not None else []),
    ])
    try:
        return run(args, rerun=True)
    finally:
        if not options.outdir:
            shutil.rmtree(outdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["example"]:
            return _example(argv[1:])
        parser = _parser()
        return run(parser.parse_args(_kaldi_booleans(parser, argv)))
    except (WfstError, OSError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; the utterances finished so far are kept: rerun with --resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
