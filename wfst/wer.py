"""Word error rate: Levenshtein alignment of hypotheses against references.

``WER = (substitutions + insertions + deletions) / reference words``, in percent,
as Kaldi's ``compute-wer`` and sclite count it. Each utterance is aligned on its
own with the fewest errors; among alignments with as few errors, the backtrace
prefers a match or substitution, then a deletion, then an insertion (so an
error count splits the same way every time).

Transcripts are sequences of words (any hashable: ``str`` words or integer word
ids); a ``str`` transcript is split on whitespace. Kaldi ``text`` files
(``utt-id word word ...`` a line) are read and written by :func:`read_transcripts`
and :func:`write_transcripts`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import WfstError

Transcript = Sequence[Hashable]


class WerError(WfstError, ValueError):
    """References and hypotheses that cannot be scored together (different
    utterance counts or ids), or a malformed transcript file."""


@dataclass(frozen=True)
class UtteranceErrors:
    """One utterance's alignment.

    ``alignment``: ``(reference word, hypothesis word)`` pairs in order; a
    deletion has ``None`` as its hypothesis word, an insertion ``None`` as its
    reference word."""

    utt_id: str | None
    ref_words: int
    substitutions: int
    insertions: int
    deletions: int
    alignment: tuple[tuple[Hashable | None, Hashable | None], ...]

    @property
    def errors(self) -> int:
        return self.substitutions + self.insertions + self.deletions

    @property
    def correct(self) -> bool:
        return self.errors == 0


@dataclass(frozen=True)
class WerStats:
    """Corpus totals over :attr:`utterances`."""

    utterances: tuple[UtteranceErrors, ...]

    @property
    def ref_words(self) -> int:
        return sum(u.ref_words for u in self.utterances)

    @property
    def substitutions(self) -> int:
        return sum(u.substitutions for u in self.utterances)

    @property
    def insertions(self) -> int:
        return sum(u.insertions for u in self.utterances)

    @property
    def deletions(self) -> int:
        return sum(u.deletions for u in self.utterances)

    @property
    def errors(self) -> int:
        return self.substitutions + self.insertions + self.deletions

    @property
    def wer(self) -> float:
        """Word error rate in percent; ``inf`` when there are errors but no
        reference words, 0 when there are neither."""
        if self.ref_words == 0:
            return float("inf") if self.errors else 0.0
        return 100.0 * self.errors / self.ref_words

    @property
    def sentence_errors(self) -> int:
        """Utterances with at least one error."""
        return sum(not u.correct for u in self.utterances)

    @property
    def ser(self) -> float:
        """Sentence error rate in percent (0 for no utterances)."""
        return 100.0 * self.sentence_errors / len(self.utterances) if self.utterances else 0.0

    def to_dict(self) -> dict:
        """The totals as plain numbers (for JSON)."""
        return {"wer": self.wer, "errors": self.errors, "ref_words": self.ref_words,
                "substitutions": self.substitutions, "insertions": self.insertions,
                "deletions": self.deletions, "sentence_errors": self.sentence_errors,
                "utterances": len(self.utterances)}

    def __str__(self) -> str:
        """Kaldi ``compute-wer`` style: ``%WER 4.17 [ 25 / 600, 3 ins, 7 del, 15 sub ]``."""
        return (f"%WER {self.wer:.2f} [ {self.errors} / {self.ref_words}, {self.insertions} ins, "
                f"{self.deletions} del, {self.substitutions} sub ]")


def _words(transcript: Transcript | str) -> tuple:
    return tuple(transcript.split()) if isinstance(transcript, str) else tuple(transcript)


def align(ref: Transcript | str, hyp: Transcript | str, utt_id: str | None = None) -> UtteranceErrors:
    """Align one hypothesis against its reference with the fewest errors.

    The edit-distance table is filled a row (reference word) at a time with
    numpy: the insertion chain along a row is a running minimum of
    ``d - j`` plus ``j``. Time and memory are ``O(len(ref) * len(hyp))``."""
    ref, hyp = _words(ref), _words(hyp)
    n, m = len(ref), len(hyp)
    # Words to integers so that rows compare with one vectorised ==.
    vocabulary: dict[Hashable, int] = {}
    ref_ids = np.array([vocabulary.setdefault(w, len(vocabulary)) for w in ref], dtype=np.int64)
    hyp_ids = np.array([vocabulary.setdefault(w, len(vocabulary)) for w in hyp], dtype=np.int64)
    columns = np.arange(m + 1, dtype=np.int64)
    table = np.empty((n + 1, m + 1), dtype=np.int64)
    table[0] = columns
    for i in range(1, n + 1):
        above = table[i - 1]
        best = np.empty(m + 1, dtype=np.int64)
        best[0] = i
        best[1:] = np.minimum(above[1:] + 1, above[:-1] + (hyp_ids != ref_ids[i - 1]))
        table[i] = np.minimum.accumulate(best - columns) + columns
    pairs: list[tuple[Hashable | None, Hashable | None]] = []
    subs = ins = dels = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and table[i, j] == table[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            subs += int(ref[i - 1] != hyp[j - 1])
            i, j = i - 1, j - 1
            pairs.append((ref[i], hyp[j]))
        elif i > 0 and table[i, j] == table[i - 1, j] + 1:
            dels += 1
            i -= 1
            pairs.append((ref[i], None))
        else:
            ins += 1
            j -= 1
            pairs.append((None, hyp[j]))
    pairs.reverse()
    return UtteranceErrors(utt_id, n, subs, ins, dels, tuple(pairs))


def compute_wer(
    refs: Sequence[Transcript | str] | Mapping[str, Transcript | str],
    hyps: Sequence[Transcript | str] | Mapping[str, Transcript | str],
    utt_ids: Sequence[str] | None = None,
) -> WerStats:
    """Score hypotheses against references.

    Either two sequences of transcripts in the same utterance order
    (``utt_ids`` optionally names them), or two mappings ``utt id ->
    transcript`` with the same keys (scored in the references' key order).
    Raises :class:`WerError` when the counts or ids do not match."""
    if isinstance(refs, Mapping) or isinstance(hyps, Mapping):
        if not (isinstance(refs, Mapping) and isinstance(hyps, Mapping)):
            raise WerError("references and hypotheses must both be mappings (utt id -> words) or both sequences")
        if utt_ids is not None:
            raise WerError("utt_ids is only for sequences; mappings carry their own ids")
        missing, extra = sorted(set(refs) - set(hyps)), sorted(set(hyps) - set(refs))
        if missing or extra:
            raise WerError(f"utterance ids differ: {len(missing)} without a hypothesis {missing[:3]}, "
                           f"{len(extra)} without a reference {extra[:3]}")
        return WerStats(tuple(align(refs[u], hyps[u], u) for u in refs))
    refs, hyps = list(refs), list(hyps)
    if len(refs) != len(hyps):
        raise WerError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if utt_ids is not None and len(utt_ids) != len(refs):
        raise WerError(f"{len(utt_ids)} utterance ids for {len(refs)} references")
    ids = utt_ids if utt_ids is not None else [None] * len(refs)
    return WerStats(tuple(align(r, h, u) for r, h, u in zip(refs, hyps, ids)))


def read_transcripts(path: str | os.PathLike) -> dict[str, tuple[str, ...]]:
    """Read a Kaldi ``text`` file: ``utt-id word word ...`` a line (an id
    alone is an empty transcript), in file order. Raises :class:`WerError`
    naming the line for a repeated id or text that is not UTF-8."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1  # (as read below)
        raise WerError(f"{os.fspath(path)}: line {line}: not valid UTF-8 ({error.reason}); Kaldi text files must "
                       "be UTF-8 encoded: convert it (e.g. with iconv)") from None
    transcripts: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(io.StringIO(text, newline=None), 1):  # line ends as open() reads them
        fields = line.split()
        if not fields:
            continue
        if fields[0] in transcripts:
            raise WerError(f"{os.fspath(path)}: line {number}: utterance id {fields[0]!r} appears twice")
        transcripts[fields[0]] = tuple(fields[1:])
    return transcripts


def write_transcripts(path: str | os.PathLike, transcripts: Mapping[str, Iterable[str]]) -> None:
    """Write a Kaldi ``text`` file, one ``utt-id word word ...`` line per
    utterance, in the mapping's order."""
    with open(path, "w", encoding="utf-8", newline="\n") as stream:
        stream.writelines(" ".join((utt, *map(str, words))) + "\n" for utt, words in transcripts.items())
