"""The files ``wfst-decode`` writes into its output directory, written so that
finished work survives an interrupted run.

Per-utterance results go to append-only line files (:class:`LineFile`): each
batch of lines is one ``write`` call of whole lines, and the files are fsynced
every few seconds and at the end. A process killed at any moment therefore leaves
whole lines, except possibly a torn last line, which :class:`LineFile` drops
when it reopens the file. ``text`` is the commit record: an utterance's other
lines (``ctm``) are written before its ``text`` line, and a resumed run keeps
only the lines of utterances that ``text`` lists, so it redoes exactly the
utterances ``text`` lacks. Whole-file outputs (``wer``, ``decode.json``) are
written to a temporary file and renamed into place.

Files (all UTF-8):

* ``text``: Kaldi transcripts, ``utt-id word word ...``, in input order;
* ``ctm`` (on request): ``utt-id 1 start duration word`` per word, seconds;
* ``skipped``: ``utt-id reason`` per utterance this run could not decode;
* ``wer`` (with references): totals as Kaldi's ``compute-wer`` prints them, then
  one line of errors per scored utterance;
* ``decode.json``: the settings that shaped the results, checked on resume.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .result import Result
from .symbols import SymbolTable
from .wer import WerStats

OUTPUT_FILES = ("text", "ctm", "skipped", "wer", "decode.json")
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


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that it holds the old or the new content,
    never a mixture, whatever happens."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


class LineFile:
    """An append-only file of whole lines.

    Opening keeps the file's complete lines for which ``keep(line)`` is true
    (all of them when ``keep`` is None) and drops a torn last line, rewriting the
    file atomically when anything is dropped; :meth:`append` then adds lines
    with one ``write`` call."""

    def __init__(self, path: Path, keep: Callable[[str], bool] | None = None):
        self.path = path
        lines = complete_lines(path)
        kept = lines if keep is None else [line for line in lines if keep(line)]
        if path.exists() and "".join(kept).encode() != path.read_bytes():
            write_atomically(path, "".join(kept))
        self.lines_kept = kept
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def append(self, lines: Iterable[str]) -> None:
        """Write ``lines`` (each ending in a newline) with one write call."""
        data = "".join(lines).encode("utf-8")
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


class DecodeOutputs:
    """The per-utterance files of one run: ``text``, ``skipped`` and, on request,
    ``ctm``.

    The utterances already in ``text`` (from an earlier, interrupted run) are
    :attr:`done`, and their lines are kept. ``skipped`` starts empty: a resumed
    run tries the utterances it listed again."""

    def __init__(self, outdir: Path, words: SymbolTable, frame_shift: float, ctm: bool):
        self.words = words
        self.frame_shift = frame_shift
        self.text = LineFile(outdir / "text")
        self.done = {utterance_id(line) for line in self.text.lines_kept}
        self.skipped = LineFile(outdir / "skipped", lambda line: False)
        self.ctm = LineFile(outdir / "ctm", lambda line: utterance_id(line) in self.done) if ctm else None
        self._files = [f for f in (self.ctm, self.skipped, self.text) if f is not None]  # text syncs last
        self._synced = time.monotonic()

    def add(self, batch: list[tuple[str, Result]]) -> None:
        """Record decoded utterances: their ctm lines, then their text lines."""
        if self.ctm is not None:
            self.ctm.append(line for utt_id, result in batch for line in self.ctm_lines(utt_id, result))
        self.text.append(self.text_line(utt_id, result) for utt_id, result in batch)
        self._sync_now_and_then()

    def skip(self, utt_id: str, reason: str) -> None:
        """Record an utterance that could not be decoded."""
        self.skipped.append([f"{utt_id} {' '.join(reason.split())}\n"])

    def text_line(self, utt_id: str, result: Result) -> str:
        return " ".join([utt_id, *(self.words.find(w) for w in result.words)]) + "\n"

    def ctm_lines(self, utt_id: str, result: Result) -> list[str]:
        """One ``utt-id 1 start duration word`` line per word of the best path."""
        shift = self.frame_shift
        return [f"{utt_id} 1 {first * shift:.3f} {(last - first + 1) * shift:.3f} {self.words.find(w)}\n"
                for w, (first, last) in zip(result.words, result.word_frames)]

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
