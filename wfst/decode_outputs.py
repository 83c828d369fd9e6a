"""The files ``wfst-decode`` writes into its output directory, written so that
finished work survives an interrupted run.

Per-utterance results go to append-only files (:class:`AppendFile`): each
batch is one ``write`` call per file, and the files are fsynced every few
seconds and at the end. A process killed at any moment therefore leaves whole
lines, except possibly a torn last line, which :class:`LineFile` drops when it
reopens the file. ``text`` is the commit record: an utterance's other results
(lattice, n-best, ctm) are written before its ``text`` line, and a resumed run
keeps only the results of utterances that ``text`` lists, so it redoes exactly
the utterances ``text`` lacks. The lattice archive is binary, so its entries
cannot be told apart by lines: ``lat.index`` records each entry's byte range,
and a resumed run truncates ``lat.ark`` after the last entry of an utterance in
``text`` (:class:`LatticeArchive`). Whole-file outputs (``wer``,
``decode.json``) are written to a temporary file and renamed into place.

Files (all UTF-8 but ``lat.ark``):

* ``text``: Kaldi transcripts, ``utt-id word word ...``, in input order;
* ``lat.ark`` (on request): a Kaldi lattice archive, one entry per decoded
  utterance keyed by its id, in input order, as Kaldi's ``latgen-faster``
  writes it: acoustic costs unscaled (divided by the acoustic scale), a
  determinized ``CompactLattice`` (determinized at the decoding scale, then
  unscaled, as Kaldi does) or the state-level ``Lattice``; binary or text;
* ``lat.index`` (with ``lat.ark``): ``utt-id start end`` per entry, the byte
  range of the entry in ``lat.ark`` (key included); the object itself starts at
  ``start + len(utt-id) + 1``;
* ``nbest`` (on request): ``utt-id rank cost graph-cost acoustic-cost word ...``
  per hypothesis, rank 1 the best, the n best distinct word sequences of the
  lattice (:meth:`lattice.Lattice.nbest`); costs at the decoding's acoustic
  scale (``cost = graph-cost + acoustic-cost``, lower is better; divide
  ``acoustic-cost`` by the acoustic scale for Kaldi's unscaled acoustic cost);
  an utterance without a complete path has no line;
* ``ctm`` (on request): ``utt-id 1 start duration word`` per word, seconds
  (from the lexicon's pronunciations when one is given);
* ``skipped``: ``utt-id reason`` per utterance this run could not decode;
* ``wer`` (with references): totals as Kaldi's ``compute-wer`` prints them, then
  one line of errors per scored utterance;
* ``decode.json``: the settings that shaped the results, checked on resume.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from lattice import AlignmentLexicon, CompactLattice, Lattice, write_lattices
from lattice.ctm import ctm_line
from lattice.nbest import nbest as lattice_nbest

from .errors import WfstError
from .file_replace import replaced
from .result import Result
from .symbols import SymbolTable
from .wer import WerStats

OUTPUT_FILES = ("text", "lat.ark", "lat.index", "nbest", "ctm", "skipped", "wer", "decode.json")
"""Every file wfst-decode may write in an output directory (what ``--overwrite``
replaces; nothing else there is touched)."""

SYNC_SECONDS = 5.0
"""Longest time between fsyncs of the line files (what a power cut may lose)."""


def complete_lines(path: Path) -> list[str]:
    """The lines of ``path`` that end in a newline (each with its newline); a
    torn last line is left out. An absent file has none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    whole = data[: data.rfind(b"\n") + 1]
    return whole.decode("utf-8", errors="replace").splitlines(keepends=True)


def utterance_id(line: str) -> str:
    """The first field of a per-utterance line (its utterance id)."""
    return line.split(maxsplit=1)[0] if line.strip() else ""


def one_field(utt_id: str) -> str:
    """``utt_id`` as one field of a line: as it is, or (an id refused for its
    whitespace or unprintable characters) with those written as ``\\xNN``
    escapes, so the line keeps the ``utt-id ...`` form."""
    return "".join(c if c.isprintable() and not c.isspace() else f"\\x{ord(c):02x}" for c in utt_id) or '""'


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that it holds the old or the new content,
    never a mixture, whatever happens (a failed write leaves no temporary file)."""
    with replaced(path, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(text)


class ResumeError(WfstError, ValueError):
    """The files of an output directory disagree, so the run they hold cannot
    be continued (e.g. ``lat.ark`` is shorter than ``lat.index`` says)."""


class AppendFile:
    """A file opened for appending (created if absent), written in whole chunks."""

    def __init__(self, path: Path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def append_bytes(self, data: bytes) -> None:
        """Append ``data`` with one write call."""
        view = memoryview(data)
        while view:  # a regular file takes it all at once; loop in case of a short write
            view = view[os.write(self._fd, view):]

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


class LineFile(AppendFile):
    """An append-only file of whole lines.

    Opening keeps the file's complete lines for which ``keep(line)`` is true
    (all of them when ``keep`` is None) and drops a torn last line, rewriting the
    file atomically when anything is dropped; :meth:`append` then adds lines
    with one ``write`` call."""

    def __init__(self, path: Path, keep: Callable[[str], bool] | None = None):
        lines = complete_lines(path)
        kept = lines if keep is None else [line for line in lines if keep(line)]
        if path.exists() and "".join(kept).encode() != path.read_bytes():
            write_atomically(path, "".join(kept))
        self.lines_kept = kept
        super().__init__(path)

    def append(self, lines: Iterable[str]) -> None:
        """Write ``lines`` (each ending in a newline) with one write call."""
        self.append_bytes("".join(lines).encode("utf-8"))


@dataclass(frozen=True)
class LatticeOptions:
    """How ``lat.ark`` is written: ``determinize`` (a ``CompactLattice``, else the
    state-level ``Lattice``), ``binary`` (else Kaldi's text form)."""

    determinize: bool = True
    binary: bool = True


class LatticeArchive:
    """``lat.ark`` and its byte index ``lat.index`` (see the module docstring).

    Opening keeps the entries of the utterances in ``done`` and truncates the
    archive after them; it raises :class:`ResumeError` when the index does not
    describe a prefix of the archive holding exactly those utterances (the
    files were edited, or lost writes in a power cut)."""

    def __init__(self, outdir: Path, done: set[str], options: LatticeOptions):
        self.options = options
        archive = outdir / "lat.ark"
        self.index = LineFile(outdir / "lat.index", lambda line: utterance_id(line) in done)
        end = 0
        for number, line in enumerate(self.index.lines_kept, 1):
            utt_id, start, stop = (line.split() + ["", "", ""])[:3]
            if not (start.isdigit() and stop.isdigit() and int(start) == end and int(stop) > end):
                raise ResumeError(f"{self.index.path}: line {number} ({line.strip()!r}) does not continue the "
                                  f"entries before it (the archive's entries end at byte {end})")
            end = int(stop)
        size = archive.stat().st_size if archive.exists() else 0
        if len(self.index.lines_kept) != len(done) or size < end or not self._key_at_last_entry(archive):
            raise ResumeError(f"cannot resume: {archive} and {self.index.path} do not hold the lattices of the "
                              f"{len(done)} utterances in text ({len(self.index.lines_kept)} indexed, archive of "
                              f"{size} bytes, {end} expected); use --overwrite or another OUTDIR")
        if size > end:
            os.truncate(archive, end)  # entries of utterances that text does not list, or a torn one
        self.archive = AppendFile(archive)
        self._end = end

    def _key_at_last_entry(self, archive: Path) -> bool:
        """Whether the last indexed entry starts with its key (true with none)."""
        if not self.index.lines_kept:
            return True
        utt_id, start, _ = self.index.lines_kept[-1].split()
        head = f"{utt_id} ".encode()
        with open(archive, "rb") as stream:
            stream.seek(int(start))
            return stream.read(len(head)) == head

    def add(self, entries: list[tuple[str, Lattice | CompactLattice]]) -> None:
        """Append ``(utt_id, lattice)`` entries to the archive, then their index lines."""
        buffer = io.BytesIO()
        lines = []
        for utt_id, lat in entries:
            start = self._end + buffer.tell()
            write_lattices(buffer, [(utt_id, lat)], binary=self.options.binary)
            lines.append(f"{utt_id} {start} {self._end + buffer.tell()}\n")
        self.archive.append_bytes(buffer.getvalue())
        self._end += buffer.tell()
        self.index.append(lines)

    @property
    def files(self) -> list[AppendFile]:
        return [self.archive, self.index]


class DecodeOutputs:
    """The per-utterance files of one run: ``text``, ``skipped`` and, on request,
    ``lat.ark`` (with ``lat.index``), ``nbest`` and ``ctm``.

    The utterances already in ``text`` (from an earlier, interrupted run) are
    :attr:`done`, and their results are kept. ``skipped`` starts empty: a resumed
    run tries the utterances it listed again.

    acoustic_scale: the decoder's, divided out of the lattices written.
    lattices: how to write ``lat.ark`` (None: no lattices). nbest: hypotheses
    per utterance in ``nbest`` (None: no such file). lexicon: word times for
    ``ctm`` from the pronunciations (None: from the word labels' positions)."""

    def __init__(self, outdir: Path, words: SymbolTable, frame_shift: float, *, acoustic_scale: float,
                 ctm: bool = False, lattices: LatticeOptions | None = None, nbest: int | None = None,
                 lexicon: AlignmentLexicon | None = None):
        self.words = words
        self.lexicon = lexicon
        self.frame_shift = frame_shift
        self.acoustic_scale = acoustic_scale
        self.nbest_count = nbest
        self.text = LineFile(outdir / "text")
        self.done = {utterance_id(line) for line in self.text.lines_kept}

        def committed(line):
            return utterance_id(line) in self.done

        self.lattices = LatticeArchive(outdir, self.done, lattices) if lattices else None
        self.nbest = LineFile(outdir / "nbest", committed) if nbest else None
        self.ctm = LineFile(outdir / "ctm", committed) if ctm else None
        self.skipped = LineFile(outdir / "skipped", lambda line: False)
        self._files = [*(self.lattices.files if self.lattices else []),
                       *(f for f in (self.nbest, self.ctm, self.skipped) if f is not None),
                       self.text]  # the commit record is written and synced last
        self._synced = time.monotonic()

    def add(self, batch: list[tuple[str, Result]]) -> None:
        """Record decoded utterances: their lattices, n-best and ctm lines, then
        their text lines."""
        compact = {}
        if self.nbest is not None or (self.lattices and self.lattices.options.determinize):
            compact = {utt_id: result.lattice.determinize() for utt_id, result in batch}
        if self.lattices is not None:
            self.lattices.add([(utt_id, self.kaldi_lattice(result, compact.get(utt_id))) for utt_id, result in batch])
        if self.nbest is not None:
            self.nbest.append(line for utt_id, _ in batch for line in self.nbest_lines(utt_id, compact[utt_id]))
        if self.ctm is not None:
            self.ctm.append(line for utt_id, result in batch for line in self.ctm_lines(utt_id, result))
        self.text.append(self.text_line(utt_id, result) for utt_id, result in batch)
        self._sync_now_and_then()

    def skip(self, utt_id: str, reason: str) -> None:
        """Record an utterance that could not be decoded (its id as :func:`one_field`)."""
        self.skipped.append([f"{one_field(utt_id)} {' '.join(reason.split())}\n"])

    def text_line(self, utt_id: str, result: Result) -> str:
        return " ".join([utt_id, *(self.words.find(w) for w in result.words)]) + "\n"

    def kaldi_lattice(self, result: Result, compact: CompactLattice | None) -> Lattice | CompactLattice:
        """The lattice written for ``result``: ``compact`` (``result.lattice``
        determinized), or the state-level lattice when not determinizing, with
        its acoustic costs unscaled as Kaldi writes them."""
        return (result.lattice if compact is None else compact).scale(acoustic=1 / self.acoustic_scale)

    def nbest_lines(self, utt_id: str, compact: CompactLattice) -> list[str]:
        """``utt-id rank cost graph-cost acoustic-cost word ...`` for each of the
        n best word sequences of ``compact`` (the determinized lattice)."""
        return [" ".join([utt_id, str(rank), f"{path.cost:.4f}", f"{path.graph_cost:.4f}",
                          f"{path.acoustic_cost:.4f}", *(self.words.find(w) for w in path.words)]) + "\n"
                for rank, path in enumerate(lattice_nbest(compact, self.nbest_count), 1)]

    def ctm_lines(self, utt_id: str, result: Result) -> list[str]:
        """One ``utt-id 1 start duration word`` line per word of the best path,
        times from the lexicon when there is one."""
        if self.lexicon is None:
            spans = [(w, first, last) for w, (first, last) in zip(result.words, result.word_frames)]
        else:
            spans = self.lexicon.align(result.alignment, result.words)
        return [ctm_line(utt_id, self.words.find(w), first, last, self.frame_shift) for w, first, last in spans]

    def _sync_now_and_then(self) -> None:
        if time.monotonic() - self._synced >= SYNC_SECONDS:
            for file in self._files:
                file.sync()
            self._synced = time.monotonic()

    def close(self) -> None:
        for file in self._files:
            file.close()


def wer_report(stats: WerStats, missing: int) -> str:
    """The ``wer`` file: Kaldi ``compute-wer`` totals, then per utterance
    ``utt-id ref-words errors substitutions insertions deletions``."""
    lines = [str(stats), f"%SER {stats.ser:.2f} [ {stats.sentence_errors} / {len(stats.utterances)} ]",
             f"Scored {len(stats.utterances)} sentences, {missing} not present in hyp.",
             "# utt-id ref-words errors sub ins del"]
    lines += [f"{u.utt_id} {u.ref_words} {u.errors} {u.substitutions} {u.insertions} {u.deletions}"
              for u in stats.utterances]
    return "\n".join(lines) + "\n"


def read_settings(outdir: Path) -> dict | None:
    """``decode.json`` of ``outdir``, or None when there is none."""
    try:
        return json.loads((outdir / "decode.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def write_settings(outdir: Path, settings: dict) -> None:
    write_atomically(outdir / "decode.json", json.dumps(settings, indent=2, sort_keys=True) + "\n")
