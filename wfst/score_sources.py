"""Where ``wfst-decode`` reads score matrices from: Kaldi archives, the workload
``.npz`` and directories of ``.npy`` files.

:func:`open_scores` turns the command line's SCORES argument into a
:class:`ScoreSource`: an iterable of ``(utt_id, load)`` pairs in input order,
where ``load()`` returns that utterance's matrix (frames x columns). Loading is
deferred so that a resumed run skips finished utterances without reading them
(except from a sequential archive, which must be read through), and so that one
unreadable entry costs one utterance, not the run:

* ``load()`` raises :class:`wfst.ScoresError` when that one entry cannot be read
  (a missing or corrupt ``.npy`` file, a bad ``scp`` entry);
* iterating raises :class:`ScoreSourceError` when the source itself breaks (a
  truncated or corrupt ``ark`` stream, after which nothing can be found, or an
  ``ark:command |`` whose command exits with an error, checked once its output
  ends).

Accepted forms of SCORES:

* a Kaldi rspecifier read through kaldiio: ``ark:feats.ark``, ``ark,t:-``,
  ``ark:gunzip -c loglikes.ark.gz |``, ``scp:feats.scp`` (binary and text
  matrices alike; the ``t``, ``p``, ``s``, ``cs``, ``o`` flags are accepted and
  change nothing);
* a workload ``.npz`` (:class:`wfst.score_archive.Workload`: concatenated
  frames, offsets, utterance ids, frame shift);
* a directory of ``.npy`` files, one matrix per file, the utterance id being
  the file name without ``.npy``, in sorted order.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ScoresError, WfstError
from .score_archive import Workload

Loader = Callable[[], np.ndarray]

_RSPECIFIER = re.compile(r"^(?P<flags>(?:ark|scp|t|p|s|cs|o|b)(?:,(?:ark|scp|t|p|s|cs|o|b))*):(?P<target>.*)$", re.S)
"""``type[,flag...]:target``, the shape of a Kaldi rspecifier."""


class ScoreSourceError(WfstError, ValueError):
    """SCORES names nothing readable: a missing path, an unknown kind of file, a
    malformed rspecifier or scp file, an empty directory, an archive that
    breaks part-way through, or a command that fails."""


@dataclass(frozen=True)
class ScoreSource:
    """Score matrices of a set of utterances, in input order.

    description: what was opened, for messages. count: the number of utterances
    when known before reading (None for a sequential archive). frame_shift:
    seconds per frame when the source records it (the workload ``.npz``), else
    None.
    """

    description: str
    count: int | None
    frame_shift: float | None
    _entries: Callable[[], Iterator[tuple[str, Loader]]]

    def __iter__(self) -> Iterator[tuple[str, Loader]]:
        return self._entries()


def open_scores(spec: str) -> ScoreSource:
    """The :class:`ScoreSource` that ``spec`` names (see the module docstring).
    Raises :class:`ScoreSourceError` naming the problem when it names none."""
    match = _RSPECIFIER.match(spec)
    if match:
        return _kaldi_source(spec, match["flags"].split(","), match["target"])
    path = Path(spec)
    if path.is_dir():
        return _npy_dir_source(path)
    if not path.exists():
        raise ScoreSourceError(f"scores {spec!r}: no such file or directory (Kaldi archives are given as "
                               "rspecifiers, e.g. ark:loglikes.ark or scp:loglikes.scp)")
    if zipfile.is_zipfile(path):
        return _workload_source(path)
    raise ScoreSourceError(f"scores {spec!r}: not a workload .npz (a zip file) nor a directory of .npy files; "
                           f"for a Kaldi archive write ark:{spec} (or scp:{spec} for an index)")


def score_identity(spec: str) -> str:
    """What a resumed run compares to tell whether SCORES ``spec`` names the
    scores the run began with: an archive's or index's kind and absolute path,
    a file's or directory's absolute path; any command or stdin is the same
    (a command may be mended between the runs)."""
    target = score_file(spec)
    if target is None:
        return "a command or standard input"
    match = _RSPECIFIER.match(spec)
    kind = next((flag for flag in match["flags"].split(",") if flag in ("ark", "scp")), "") if match else ""
    return f"{kind}:{os.path.abspath(target)}" if kind else os.path.abspath(target)


def score_file(spec: str) -> str | None:
    """The file or directory SCORES ``spec`` reads (an rspecifier's target), or
    None when it reads a pipe or stdin."""
    match = _RSPECIFIER.match(spec)
    target = match["target"].strip() if match else spec
    return None if target == "-" or target.startswith("|") or target.endswith("|") else target


# ------------------------------------------------------------------- Kaldi
def _kaldi_source(spec: str, flags: list[str], target: str) -> ScoreSource:
    import kaldiio
    from kaldiio.utils import open_like_kaldi

    kinds = [flag for flag in flags if flag in ("ark", "scp")]
    if len(kinds) != 1:
        raise ScoreSourceError(f"scores {spec!r}: an rspecifier names exactly one of ark or scp before the ':' "
                               "(e.g. ark:loglikes.ark, ark,t:loglikes.txt, scp:loglikes.scp)")
    if not target:
        raise ScoreSourceError(f"scores {spec!r}: nothing after the ':' (a file, '-' for stdin, or 'command |')")
    if score_file(spec) is not None and not os.path.isfile(target):
        raise ScoreSourceError(f"scores {spec!r}: {target!r} is not a file")
    if kinds[0] == "ark":
        return ScoreSource(f"Kaldi archive {target}", None, None, lambda: _read_ark(spec, target))
    try:
        stream = open_like_kaldi(target, "r")
        try:
            lines = stream.read().splitlines()
        finally:
            status = stream.close()  # a pipe's command's status (see _command_failed), None for 0
    except UnicodeDecodeError:
        raise ScoreSourceError(f"scores {spec!r}: cannot read the scp index: it is not UTF-8 text ('utt-id "
                               f"ark-file:offset' lines); for an archive write ark:{target}") from None
    except OSError as error:
        raise ScoreSourceError(f"scores {spec!r}: cannot read the scp index: {error}") from None
    if status:
        raise _command_failed(spec, status, "")
    index = []
    for number, line in enumerate(lines, 1):
        fields = line.strip().split(None, 1)
        if not fields:
            continue
        if len(fields) != 2:
            raise ScoreSourceError(f"scores {spec!r}: line {number}: expected 'utt-id rxfilename', got {line!r}")
        index.append((fields[0], fields[1]))
    open_files = {}  # one descriptor per archive, not one per entry

    def entries():
        for utt_id, location in index:
            yield utt_id, lambda location=location: _load(
                lambda: kaldiio.load_mat(location, fd_dict=open_files), f"{location!r}")

    return ScoreSource(f"Kaldi scp index {target} ({len(index)} entries)", len(index), None, entries)


def _read_ark(spec: str, target: str) -> Iterator[tuple[str, Loader]]:
    """Matrices of a sequential archive, read one by one."""
    import kaldiio
    from kaldiio.utils import open_like_kaldi

    try:
        stream = open_like_kaldi(target, "rb")
    except OSError as error:
        raise ScoreSourceError(f"scores {spec!r}: cannot open: {error}") from None
    after, count = "at its first entry", 0
    try:
        entries = kaldiio.load_ark(stream)
        while True:
            try:
                utt_id, matrix = next(entries)
            except StopIteration:
                break
            except Exception as error:  # kaldiio raises assorted types (ValueError, struct.error, ...)
                raise ScoreSourceError(f"scores {spec!r}: the archive is unreadable {after}: "
                                       f"{type(error).__name__}: {error}") from None
            after, count = f"after utterance {utt_id!r}", count + 1
            yield utt_id, lambda matrix=matrix: matrix
    finally:
        status = stream.close()  # a pipe's command's status (see _command_failed), None for 0
    if status:
        raise _command_failed(spec, status, f" after {count} utterance(s)")


def _command_failed(spec: str, status: int, when: str) -> ScoreSourceError:
    """The error for a SCORES command that failed: ``status`` as a stream of
    ``open_like_kaldi`` closes (the exit status shifted, as ``os.popen``'s)."""
    return ScoreSourceError(f"scores {spec!r}: the command exited with status {status >> 8}{when}; see its "
                            "messages above")


# ------------------------------------------------------------ npz and .npy
def _workload_source(path: Path) -> ScoreSource:
    try:
        workload = Workload.load(path)
    except WfstError as error:
        raise ScoreSourceError(f"scores {str(path)!r}: {error}") from None

    def entries():
        for i, utt_id in enumerate(workload.utt_ids):
            yield utt_id, lambda i=i: workload.utterance(i)

    return ScoreSource(f"workload {path} ({len(workload)} utterances)", len(workload), workload.frame_shift, entries)


def _npy_dir_source(path: Path) -> ScoreSource:
    files = sorted(p for p in path.iterdir() if p.suffix == ".npy" and p.is_file())
    if not files:
        raise ScoreSourceError(f"scores {str(path)!r}: the directory holds no .npy files (one matrix per "
                               "utterance, named UTT_ID.npy)")

    def entries():
        for file in files:
            yield file.stem, lambda file=file: _load(lambda: np.load(file, allow_pickle=False), str(file))

    return ScoreSource(f"directory {path} ({len(files)} .npy files)", len(files), None, entries)


def _load(read: Callable[[], np.ndarray], name: str) -> np.ndarray:
    """``read()``, with any failure to read one entry as a :class:`ScoresError`."""
    try:
        return read()
    except Exception as error:  # numpy and kaldiio raise many types for a corrupt entry
        raise ScoresError(f"cannot read {name}: {type(error).__name__}: {error}") from None
