"""Sets of utterances' score matrices with their reference transcripts, stored
as one ``.npz`` file plus a Kaldi ``text`` file: the format of the benchmark
test sets (``bench.workload``) and of the embedded example (:mod:`wfst.example`).

Needs numpy only (``kaldiio`` for :meth:`Workload.write_kaldi_ark`).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import WfstError
from .wer import WerError, read_transcripts, write_transcripts

__all__ = ["Workload", "WorkloadError"]


class WorkloadError(WfstError, ValueError):
    """A workload that cannot be built, stored or read: inconsistent arrays, a
    malformed workload file, or (when synthesizing one) a word missing from the
    lexicon, a phone missing from the tokens or an out-of-range parameter."""


@dataclass(frozen=True, eq=False)
class Workload:
    """Score matrices of ``U`` utterances, concatenated, with their references.

    ``scores``: ``(total_frames, P)`` float32 log-probabilities (each row a
    log-softmax); column ``j`` is token id ``j + 1``.
    ``offsets``: ``(U + 1,)`` int64; utterance ``i`` is rows
    ``offsets[i]:offsets[i + 1]``.
    ``utt_ids``: ``U`` ids (no whitespace). ``frame_shift``: seconds per frame.
    ``references``: ``U`` word tuples, or ``None`` when unknown.
    ``metadata``: how the workload was made (JSON-serialisable), stored with it.
    ``phones``: ``U`` tuples of the phones the frames spell (the pronunciations
    the synthesizer chose for the references), or ``None``; with homophones in
    the lexicon, several word sequences spell the same phones (see
    ``bench.workload.posteriors.spells``).
    """

    scores: np.ndarray
    offsets: np.ndarray
    utt_ids: tuple[str, ...]
    frame_shift: float
    references: tuple[tuple[str, ...], ...] | None = None
    metadata: Mapping = field(default_factory=dict)
    phones: tuple[tuple[str, ...], ...] | None = None

    def __post_init__(self):
        scores, offsets = self.scores, self.offsets
        if not (isinstance(scores, np.ndarray) and scores.ndim == 2 and scores.dtype == np.float32):
            raise WorkloadError(f"scores must be a 2-D float32 array, got "
                                f"{getattr(scores, 'dtype', type(scores).__name__)} of shape {np.shape(scores)}")
        if not (isinstance(offsets, np.ndarray) and offsets.ndim == 1 and offsets.dtype == np.int64):
            raise WorkloadError(f"offsets must be a 1-D int64 array, got "
                                f"{getattr(offsets, 'dtype', type(offsets).__name__)} of shape {np.shape(offsets)}")
        if offsets.size == 0 or offsets[0] != 0 or offsets[-1] != scores.shape[0] or np.any(np.diff(offsets) < 0):
            raise WorkloadError(f"offsets must rise from 0 to the {scores.shape[0]} score rows, got "
                                f"{offsets[:3].tolist()}...{offsets[-2:].tolist()}")
        if len(self.utt_ids) != len(offsets) - 1:
            raise WorkloadError(f"{len(self.utt_ids)} utterance ids for {len(offsets) - 1} utterances")
        if len(set(self.utt_ids)) != len(self.utt_ids):
            raise WorkloadError("utterance ids must be unique")
        bad = [u for u in self.utt_ids if not isinstance(u, str) or not u or re.search(r"\s", u)]
        if bad:
            raise WorkloadError(f"utterance ids must be non-empty strings without whitespace, got {bad[0]!r}")
        if not (isinstance(self.frame_shift, numbers.Real) and 0 < self.frame_shift < math.inf):
            raise WorkloadError(f"frame_shift must be a positive finite number of seconds, got {self.frame_shift!r}")
        if self.references is not None and len(self.references) != len(self.utt_ids):
            raise WorkloadError(f"{len(self.references)} references for {len(self.utt_ids)} utterances")
        if self.phones is not None and len(self.phones) != len(self.utt_ids):
            raise WorkloadError(f"{len(self.phones)} phone sequences for {len(self.utt_ids)} utterances")

    # ----------------------------------------------------------------- access
    def head(self, count: int) -> "Workload":
        """The first ``count`` utterances (all when there are fewer), as a Workload."""
        count = min(max(count, 0), len(self))
        return Workload(self.scores[:int(self.offsets[count])], self.offsets[:count + 1].copy(),
                        self.utt_ids[:count], self.frame_shift,
                        None if self.references is None else self.references[:count], self.metadata,
                        None if self.phones is None else self.phones[:count])

    def __len__(self) -> int:
        return len(self.utt_ids)

    def utterance(self, i: int) -> np.ndarray:
        """Utterance ``i``'s scores, a ``(frames, P)`` view."""
        return self.scores[self.offsets[i]:self.offsets[i + 1]]

    @property
    def num_frames(self) -> int:
        return int(self.offsets[-1])

    @property
    def num_columns(self) -> int:
        """``P``, score columns (token ids 1..P)."""
        return int(self.scores.shape[1])

    @property
    def audio_seconds(self) -> float:
        """Total audio duration: frames times the frame shift."""
        return self.num_frames * self.frame_shift

    # -------------------------------------------------------------------- I/O
    def save(self, npz_path: str | os.PathLike, text_path: str | os.PathLike | None = None) -> None:
        """Write ``npz_path`` (arrays ``scores``, ``offsets``, ``utt_ids``,
        ``frame_shift``, ``metadata`` as a JSON string and, when known,
        ``phones``, one space-separated string per utterance; uncompressed,
        readable without pickle) and, when there are references, a Kaldi ``text`` file at
        ``text_path`` (default: ``npz_path`` with suffix ``.text``)."""
        npz_path = Path(npz_path)
        arrays = {"scores": self.scores, "offsets": self.offsets, "utt_ids": np.array(self.utt_ids, dtype=str),
                  "frame_shift": np.float64(self.frame_shift), "metadata": np.array(json.dumps(dict(self.metadata)))}
        if self.phones is not None:
            arrays["phones"] = np.array([" ".join(p) for p in self.phones], dtype=str)
        with open(npz_path, "wb") as stream:  # an open file: numpy adds no ".npz" to the name
            np.savez(stream, **arrays)
        if self.references is not None:
            write_transcripts(text_path or npz_path.with_suffix(".text"), dict(zip(self.utt_ids, self.references)))

    @classmethod
    def load(cls, npz_path: str | os.PathLike, text_path: str | os.PathLike | None = None) -> "Workload":
        """Read what :meth:`save` wrote. References come from ``text_path``
        (default: ``npz_path`` with suffix ``.text``, if that file exists;
        otherwise none); its ids must be the workload's. Raises
        :class:`WorkloadError` naming the file (and the array) when something
        is missing, malformed or inconsistent."""
        npz_path = Path(npz_path)
        try:
            with np.load(npz_path, allow_pickle=False) as data:
                missing = {"scores", "offsets", "utt_ids", "frame_shift"} - set(data.files)
                if missing:
                    raise WorkloadError(f"{npz_path}: not a workload file, it lacks {sorted(missing)}")
                arrays = {name: data[name] for name in data.files}
        except (ValueError, OSError) as error:
            if isinstance(error, WorkloadError):
                raise
            raise WorkloadError(f"{npz_path}: cannot read the workload: {error}") from error
        fields = {}
        for name, parse in (("utt_ids", _strings), ("frame_shift", _seconds), ("metadata", _json_object),
                            ("phones", _strings)):
            try:
                fields[name] = parse(arrays[name]) if name in arrays else None
            except ValueError as error:
                raise WorkloadError(f"{npz_path}: array {name!r}: {error} (not as Workload.save writes it)") from None
        if text_path is None and npz_path.with_suffix(".text").exists():
            text_path = npz_path.with_suffix(".text")
        utt_ids = fields["utt_ids"]
        references = None
        if text_path is not None:
            try:
                transcripts = read_transcripts(text_path)
            except WerError as error:  # a repeated id, or text that is not UTF-8 (it names the file and line)
                raise WorkloadError(str(error)) from None
            if set(transcripts) != set(utt_ids):
                raise WorkloadError(f"{text_path}: its utterance ids are not those of {npz_path} "
                                    f"({len(transcripts)} vs {len(utt_ids)} ids)")
            references = tuple(transcripts[u] for u in utt_ids)
        phones = None if fields["phones"] is None else tuple(tuple(p.split()) for p in fields["phones"])
        try:
            return cls(arrays["scores"], arrays["offsets"], utt_ids, fields["frame_shift"], references,
                       fields["metadata"] or {}, phones)
        except WorkloadError as error:
            raise WorkloadError(f"{npz_path}: {error}") from None

    def write_kaldi_ark(self, path: str | os.PathLike, scp: str | os.PathLike | None = None,
                        text: bool = False) -> None:
        """Write the score matrices as a Kaldi archive (binary float matrices,
        or text with ``text=True``) through kaldiio, with an optional ``.scp``
        index; read back with ``kaldiio.load_ark`` or Kaldi's tools. Kaldi
        readers expect the columns Kaldi's ``DecodableCtc`` does (ilabel ``i``
        reads column ``i - 1``)."""
        import kaldiio

        kaldiio.save_ark(os.fspath(path), {u: self.utterance(i) for i, u in enumerate(self.utt_ids)},
                         scp=None if scp is None else os.fspath(scp), text=text)


def _strings(array: np.ndarray) -> tuple[str, ...]:
    """The strings of a 1-D string array; ``ValueError`` for anything else."""
    if array.ndim != 1 or array.dtype.kind != "U":
        raise ValueError(f"expected a 1-D array of strings, got {array.dtype} of shape {array.shape}")
    return tuple(str(item) for item in array)


def _seconds(array: np.ndarray) -> float:
    """The number a 0-d numeric array holds; ``ValueError`` for anything else."""
    if array.ndim != 0 or array.dtype.kind not in "iuf":
        raise ValueError(f"expected a number of seconds, got {array.dtype} of shape {array.shape}")
    return float(array)


def _json_object(array: np.ndarray) -> dict:
    """The JSON object a 0-d string array holds; ``ValueError`` for anything else."""
    if array.ndim != 0 or array.dtype.kind != "U":
        raise ValueError(f"expected a JSON string, got {array.dtype} of shape {array.shape}")
    try:
        value = json.loads(str(array))
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value
