"""Synthetic CTC posteriors with known references.

:func:`synthesize` turns word sentences into per-frame CTC log-probabilities
shaped like a real model's output, and keeps the sentences as references:

* Each word takes one pronunciation from the lexicon (the first, or a seeded
  choice among its variants).
* Frame layout: blank silence at both edges (0.1-0.4 s) and, with probability
  ``pause_prob``, between two words; each phone lasts ``phone_frames`` frames
  (default 1-3 at a frame shift of 20 ms and more, 2-8 below), of which the
  first one or more carry the phone and the rest are blank; a repeated phone is
  always followed by a blank frame, as CTC needs to keep both.
* Scores: per frame, background logits ``N(0, noise)``, the target token
  ``margin`` above them, then a log-softmax. ``difficulty`` in ``[0, 1]`` sets
  the margin and noise and adds competitors: a phone of the same articulatory
  class (:data:`PHONE_CLASSES`) close to or above a phone's target
  (substitutions), blank close to or above it (deletions), and stray phones
  on blank frames (insertions). Difficulty 0 has no competitors and a margin of
  30 nats: Kaldi's decoders recover the phones of every reference, and so
  every reference unless other words spell the same phones (homophones: 0.3%
  and 0.7% WER on LM-sampled sentences with the small and full TLG). At 0.5
  (medium), a competitor wins about 3% of phone frames: 1-4% WER on LM-sampled
  sentences at acoustic scales 1.0 and 0.5, and much more on random-word
  sentences, where the LM works against the references (see
  ``bench/results/kaldi_baseline_*.json``).

Synthetic posteriors are peakier than a real model's; decoding them with an
acoustic scale of 0.5 gives a realistic search load.

Score matrices have ``P`` columns, one per non-epsilon token: column ``j`` is
token id ``j + 1`` (the layout of Kaldi's ``DecodableCtc`` and of wfst-gpu's
decoders, ilabel ``i`` reads column ``i - 1``). ``P`` is the largest token id
other than disambiguation symbols (``#...``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wfst.errors import WfstError
from wfst.symbols import SymbolTable
from wfst.wer import read_transcripts, write_transcripts

PHONE_CLASSES: dict[str, frozenset[str]] = {
    "vowel": frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()),
    "stop": frozenset("B D G K P T".split()),
    "fricative": frozenset("CH DH F HH JH S SH TH V Z ZH".split()),  # with the affricates
    "nasal": frozenset("M N NG".split()),
    "approximant": frozenset("L R W Y".split()),
}
"""ARPAbet phones (CMUdict's 39) grouped by articulatory class; confusions stay
within a class. Stress digits are ignored (``AH0`` is ``AH``); a token outside
every class is confusable with any phone."""

_STRESS = re.compile(r"\d+$")


class WorkloadError(WfstError, ValueError):
    """A workload that cannot be built, stored or read: a word missing from the
    lexicon, a phone missing from the tokens, an out-of-range parameter,
    inconsistent arrays, or a malformed workload file."""


@dataclass(frozen=True)
class Difficulty:
    """The score model at one difficulty ``d`` in ``[0, 1]`` (all logits in nats).

    ``margin``: mean gap of the target logit over the background mean;
    ``noise``: standard deviation of background logits;
    ``substitution_prob``, ``deletion_prob``: per phone, chance of a same-class
    phone, resp. blank, competitor; ``insertion_prob``: per blank frame, chance
    of a stray phone; a competitor's logit is the target's minus a gap drawn
    from ``N(gap_mean, gap_sd)`` (a negative gap makes it win the frame)."""

    margin: float
    noise: float
    substitution_prob: float
    deletion_prob: float
    insertion_prob: float
    gap_mean: float
    gap_sd: float

    @classmethod
    def at(cls, d: float) -> "Difficulty":
        if not 0.0 <= d <= 1.0:  # also rejects NaN
            raise WorkloadError(f"difficulty must be in [0, 1] (0 = peaky and correct), got {d!r}")
        return cls(margin=4.0 + 26.0 * (1.0 - d) ** 2, noise=0.5 + 1.5 * d, substitution_prob=0.8 * d,
                   deletion_prob=0.4 * d, insertion_prob=0.05 * d, gap_mean=8.0 * (1.0 - d), gap_sd=2.5)


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
    :func:`synthesize` chose for the references), or ``None``; with homophones
    in the lexicon, several word sequences spell the same phones (see
    :func:`spells`).
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
        if not self.frame_shift > 0:
            raise WorkloadError(f"frame_shift must be a positive number of seconds, got {self.frame_shift!r}")
        if self.references is not None and len(self.references) != len(self.utt_ids):
            raise WorkloadError(f"{len(self.references)} references for {len(self.utt_ids)} utterances")
        if self.phones is not None and len(self.phones) != len(self.utt_ids):
            raise WorkloadError(f"{len(self.phones)} phone sequences for {len(self.utt_ids)} utterances")

    # ----------------------------------------------------------------- access
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
        :class:`WorkloadError` naming the file when something is missing or
        inconsistent."""
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
        if text_path is None and npz_path.with_suffix(".text").exists():
            text_path = npz_path.with_suffix(".text")
        utt_ids = tuple(str(u) for u in arrays["utt_ids"])
        references = None
        if text_path is not None:
            transcripts = read_transcripts(text_path)
            if set(transcripts) != set(utt_ids):
                raise WorkloadError(f"{text_path}: its utterance ids are not those of {npz_path} "
                                    f"({len(transcripts)} vs {len(utt_ids)} ids)")
            references = tuple(transcripts[u] for u in utt_ids)
        metadata = json.loads(str(arrays["metadata"])) if "metadata" in arrays else {}
        phones = tuple(tuple(str(p).split()) for p in arrays["phones"]) if "phones" in arrays else None
        try:
            return cls(arrays["scores"], arrays["offsets"], utt_ids, float(arrays["frame_shift"]), references,
                       metadata, phones)
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


def num_score_columns(tokens: SymbolTable) -> int:
    """``P`` for a token table: the largest id that is neither ``<eps>`` nor a
    disambiguation symbol (``#...``)."""
    ids = [i for i, name in tokens if i > 0 and not name.startswith("#")]
    if not ids:
        raise WorkloadError("the token table has no tokens besides <eps> and disambiguation symbols")
    return max(ids)


def _confusable_columns(tokens: SymbolTable, num_columns: int, blank_column: int) -> tuple[np.ndarray, np.ndarray]:
    """``(table, sizes)``: row ``c`` of ``table`` lists in its first ``sizes[c]``
    entries the phone columns column ``c`` may be confused with (its class
    mates, or every other phone column for a token outside
    :data:`PHONE_CLASSES`)."""
    names = {i - 1: name for i, name in tokens if 0 < i <= num_columns and not name.startswith("#")}
    phone_columns = np.array(sorted(c for c in names if c != blank_column), dtype=np.int64)
    kind_of = {c: next((k for k, members in PHONE_CLASSES.items() if _STRESS.sub("", names[c]).upper() in members),
                       None) for c in phone_columns}
    pools = []
    for column in range(num_columns):
        kind = kind_of.get(column)
        mates = [c for c in phone_columns if c != column and kind is not None and kind_of[c] == kind]
        pools.append(mates or [c for c in phone_columns if c != column])
    sizes = np.array([len(pool) for pool in pools], dtype=np.int64)
    table = np.zeros((num_columns, max(1, sizes.max())), dtype=np.int64)
    for column, pool in enumerate(pools):
        table[column, :len(pool)] = pool
    return table, sizes


def _default_phone_frames(frame_shift: float) -> tuple[int, int]:
    return (1, 3) if frame_shift >= 0.02 else (2, 8)


def synthesize(
    sentences: Iterable[Sequence[str] | str],
    lexicon: Mapping[str, Sequence[Sequence[str]]],
    tokens: SymbolTable | str | os.PathLike,
    *,
    frame_shift: float = 0.04,
    difficulty: float = 0.5,
    seed: int = 0,
    blank: str = "<blk>",
    pronunciation: str = "random",
    phone_frames: tuple[int, int] | None = None,
    pause_prob: float = 0.15,
    utt_ids: Sequence[str] | None = None,
) -> Workload:
    """Synthetic CTC posteriors for ``sentences`` (see the module docstring).

    ``sentences``: word sequences (a ``str`` is split on whitespace); an empty
    one gives an utterance of silence. ``lexicon``: word -> pronunciations
    (a :class:`wfst.lexicon.Lexicon` or any such mapping), phones named as in
    ``tokens`` (a :class:`SymbolTable` or the path of ``tokens.txt``).
    ``frame_shift``: seconds per frame. ``difficulty``: 0 (peaky, correct) to
    1. ``pronunciation``: ``"random"`` (seeded choice among a word's variants)
    or ``"first"``. ``phone_frames``: ``(min, max)`` frames per phone.
    ``pause_prob``: chance of a silence between two words. ``utt_ids``:
    defaults to ``utt0000``, ``utt0001``, ...

    The result depends only on the arguments (``seed`` included), and the
    frame layout (which token each frame carries) only on the sentences,
    lexicon, tokens, ``seed`` and the layout parameters, not on
    ``difficulty``: sets made with one seed at several difficulties are
    aligned frame by frame. Raises
    :class:`WorkloadError` for a word not in the lexicon, a phone not in the
    tokens, or a parameter out of range."""
    if not isinstance(tokens, SymbolTable):
        tokens = SymbolTable.read(tokens)
    model = Difficulty.at(difficulty)
    if not frame_shift > 0:
        raise WorkloadError(f"frame_shift must be a positive number of seconds, got {frame_shift!r}")
    lo, hi = phone_frames or _default_phone_frames(frame_shift)
    if not 1 <= lo <= hi:
        raise WorkloadError(f"phone_frames must be (min, max) with 1 <= min <= max, got {(lo, hi)}")
    if not 0.0 <= pause_prob <= 1.0:
        raise WorkloadError(f"pause_prob must be in [0, 1], got {pause_prob!r}")
    if pronunciation not in ("random", "first"):
        raise WorkloadError(f"pronunciation must be 'random' or 'first', got {pronunciation!r}")
    if blank not in tokens:
        raise WorkloadError(f"blank token {blank!r} is not in the token table")
    num_columns = num_score_columns(tokens)
    blank_column = tokens[blank] - 1
    rng = np.random.default_rng(seed)

    # ---- words -> phone columns (the only per-word Python loop)
    references = tuple(tuple(s.split()) if isinstance(s, str) else tuple(s) for s in sentences)
    num_utts = len(references)
    if utt_ids is None:
        width = max(4, len(str(max(num_utts - 1, 0))))
        utt_ids = tuple(f"utt{i:0{width}d}" for i in range(num_utts))
    column_of = {name: i - 1 for i, name in tokens if 0 < i <= num_columns}
    choices = rng.random(sum(map(len, references)))
    phones: list[int] = []
    utt_phones: list[tuple[str, ...]] = []
    word_start: list[bool] = []  # phone starts a word that is not its sentence's first
    phones_per_utt = np.zeros(num_utts, dtype=np.int64)
    k = 0
    for u, words in enumerate(references):
        spelled: list[str] = []
        for position, word in enumerate(words):
            prons = lexicon.get(word)
            if not prons:
                raise WorkloadError(f"sentence {u} ({utt_ids[u]}): word {word!r} is not in the lexicon")
            pron = prons[0] if pronunciation == "first" else prons[int(choices[k] * len(prons))]
            k += 1
            try:
                phones.extend(column_of[p] for p in pron)
            except KeyError:
                missing = next(p for p in pron if p not in column_of)
                raise WorkloadError(f"word {word!r}: phone {missing!r} is not a token "
                                    f"(tokens: {', '.join(sorted(column_of))[:200]})") from None
            word_start.extend([position > 0] + [False] * (len(pron) - 1))
            spelled.extend(pron)
        utt_phones.append(tuple(spelled))
        phones_per_utt[u] = len(spelled)
    phone = np.array(phones, dtype=np.int64)
    num_phones = phone.size
    utt_of_phone = np.repeat(np.arange(num_utts), phones_per_utt)

    # ---- durations (frames): spike and trailing blanks per phone, silences
    def seconds_to_frames(lo_s: float, hi_s: float, size: int) -> np.ndarray:
        return np.maximum(1, np.rint(rng.uniform(lo_s, hi_s, size) / frame_shift)).astype(np.int64)

    length = rng.integers(lo, hi + 1, num_phones)
    spike = 1 + rng.binomial(length - 1, 0.3)
    after = length - spike
    last_of_utt = np.cumsum(phones_per_utt) - 1
    same_next = np.zeros(num_phones, dtype=bool)
    same_next[:-1] = (phone[1:] == phone[:-1]) & (utt_of_phone[1:] == utt_of_phone[:-1])
    pause = np.zeros(num_phones, dtype=np.int64)  # silence before phone i
    starts = np.flatnonzero(np.array(word_start, dtype=bool))
    pausing = starts[rng.random(starts.size) < pause_prob]
    pause[pausing] = seconds_to_frames(0.1, 0.4, pausing.size)
    after[:-1] += pause[1:]
    after = np.where(same_next, np.maximum(after, 1), after)
    lead = seconds_to_frames(0.1, 0.4, num_utts)
    trail = seconds_to_frames(0.1, 0.4, num_utts)
    has_phones = phones_per_utt > 0
    after[last_of_utt[has_phones]] += trail[has_phones]
    lead = np.where(has_phones, lead, lead + trail)

    # ---- segments: per utterance a leading silence, then (spike, blanks) per phone
    seg_column = np.stack([phone, np.full(num_phones, blank_column)], axis=1).ravel()
    seg_frames = np.stack([spike, after], axis=1).ravel()
    seg_unit = np.stack([np.arange(num_phones), np.full(num_phones, -1)], axis=1).ravel()
    first_seg = 2 * (np.cumsum(phones_per_utt) - phones_per_utt)
    seg_column = np.insert(seg_column, first_seg, blank_column)
    seg_frames = np.insert(seg_frames, first_seg, lead)
    seg_unit = np.insert(seg_unit, first_seg, -1)
    seg_utt = np.insert(np.repeat(utt_of_phone, 2), first_seg, np.arange(num_utts))
    target = np.repeat(seg_column, seg_frames)
    unit = np.repeat(seg_unit, seg_frames)
    offsets = np.zeros(num_utts + 1, dtype=np.int64)
    np.cumsum(np.bincount(seg_utt, weights=seg_frames, minlength=num_utts).astype(np.int64), out=offsets[1:])
    num_frames = target.size

    # ---- scores
    logits = rng.normal(0.0, model.noise, (num_frames, num_columns))
    rows = np.arange(num_frames)
    logits[rows, target] = model.margin + rng.normal(0.0, 1.0, num_frames)
    top = logits[rows, target]
    mate_table, mate_count = _confusable_columns(tokens, num_columns, blank_column)

    def compete(frames: np.ndarray, columns: np.ndarray, gaps: np.ndarray) -> None:
        """Raise ``columns`` to ``gaps`` below the target on ``frames``."""
        np.maximum.at(logits, (frames, columns), top[frames] - gaps)

    spike_frames = np.flatnonzero(unit >= 0)
    spike_unit = unit[spike_frames]
    pick = rng.random(num_phones)
    substituted = (rng.random(num_phones) < model.substitution_prob) & (mate_count[phone] > 0)
    rival_of = mate_table[phone, (pick * mate_count[phone]).astype(np.int64)]
    sub_gap = rng.normal(model.gap_mean, model.gap_sd, num_phones)
    hit = substituted[spike_unit]
    compete(spike_frames[hit], rival_of[spike_unit[hit]], sub_gap[spike_unit[hit]])
    deleted = rng.random(num_phones) < model.deletion_prob
    del_gap = rng.normal(model.gap_mean, model.gap_sd, num_phones)
    hit = deleted[spike_unit]
    compete(spike_frames[hit], np.full(hit.sum(), blank_column), del_gap[spike_unit[hit]])
    blank_frames = np.flatnonzero(unit < 0)
    stray = blank_frames[rng.random(blank_frames.size) < model.insertion_prob]
    phone_columns = np.setdiff1d(np.arange(num_columns), [blank_column])
    if stray.size and phone_columns.size:
        compete(stray, rng.choice(phone_columns, stray.size),
                rng.normal(model.gap_mean + 2.0, model.gap_sd, stray.size))

    peak = logits.max(axis=1, keepdims=True)
    logits -= peak + np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    metadata = {"generator": "bench.workload.posteriors.synthesize", "difficulty": difficulty, "seed": seed,
                "frame_shift": frame_shift, "phone_frames": [lo, hi], "pause_prob": pause_prob,
                "pronunciation": pronunciation, "blank": blank}
    return Workload(logits.astype(np.float32), offsets, tuple(utt_ids), float(frame_shift), references, metadata,
                    tuple(utt_phones))


def spells(words: Sequence[str], phones: Sequence[str], lexicon: Mapping[str, Sequence[Sequence[str]]]) -> bool:
    """Whether ``words`` can be pronounced (one pronunciation of each, from
    ``lexicon``) as exactly ``phones``. A hypothesis that spells an
    utterance's :attr:`Workload.phones` differs from its reference only by
    homophones ("their" and "there") or word boundaries ("an don't" and
    "and own", with "don't" as D OW N), which no score matrix can tell apart:
    the LM decides."""
    phones = tuple(phones)
    ends = {0}  # phone positions where the words so far can end
    for word in words:
        ends = {end + len(pron) for end in ends for pron in lexicon.get(word, ())
                if phones[end:end + len(pron)] == tuple(pron)}
        if not ends:
            return False
    return len(phones) in ends
