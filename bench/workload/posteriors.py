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
  every reference whose phones spell no other word sequence
  (:class:`SpellingIndex`; homophones and other word boundaries gave 0.3% and
  0.7% WER on LM-sampled sentences with the small and full TLG). At 0.5
  (medium), a competitor wins about 3% of phone frames: 1-4% WER on LM-sampled
  sentences at acoustic scales 1.0 and 0.5; random-word sentences, where the
  LM works against the references, need less (see
  ``bench/results/kaldi_baseline_*.json``).

Synthetic posteriors are peakier than a real model's; decoding them with an
acoustic scale of 0.5 gives a realistic search load.

Score matrices have ``P`` columns, one per non-epsilon token: column ``j`` is
token id ``j + 1`` (the layout of Kaldi's ``DecodableCtc`` and of wfst-gpu's
decoders, ilabel ``i`` reads column ``i - 1``). ``P`` is the largest token id
other than disambiguation symbols (``#...``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from wfst.score_archive import Workload, WorkloadError
from wfst.symbols import SymbolTable

__all__ = ["PHONE_CLASSES", "Difficulty", "Workload", "WorkloadError", "SpellingIndex", "num_score_columns", "spells",
           "synthesize"]

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



class SpellingIndex:
    """Which words of ``lexicon`` spell which phones: for telling whether the
    phones of a reference name it alone (no homophone, no other word
    boundary), as a decoder that recovers the phones exactly would need."""

    def __init__(self, lexicon: Mapping[str, Sequence[Sequence[str]]]):
        self.lexicon = lexicon
        self.owners: dict[tuple[str, ...], int] = {}  # pronunciation -> words that have it
        for prons in lexicon.values():
            for pron in set(map(tuple, prons)):
                self.owners[pron] = self.owners.get(pron, 0) + 1
        self.longest = max(map(len, self.owners), default=0)

    def segmentations(self, phones: Sequence[str], limit: int = 2) -> int:
        """How many word sequences spell exactly ``phones`` (one count per
        fitting pronunciation), stopping at ``limit``. 1: only one does."""
        phones = tuple(phones)
        ways = [0] * (len(phones) + 1)
        ways[0] = 1
        for start in range(len(phones)):
            if ways[start]:
                for end in range(start + 1, min(start + self.longest, len(phones)) + 1):
                    owned = self.owners.get(phones[start:end])
                    if owned:
                        ways[end] = min(limit, ways[end] + ways[start] * owned)
        return ways[-1]

    def unambiguous_pronunciations(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """Each word with only its pronunciations that spell nothing else: no
        other word has them ("there" / "their") and no sequence of words
        spells them ("really" / "rea lee"); words left without one are
        dropped."""
        unique = {word: tuple(tuple(p) for p in prons if self.segmentations(p) == 1)
                  for word, prons in self.lexicon.items()}
        return {word: prons for word, prons in unique.items() if prons}
