"""Endpointing: has the speaker stopped? Kaldi's rules (``online-endpoint.h``).

A stream made with an :class:`EndpointConfig` answers
:meth:`wfst.Stream.endpoint_detected` from three numbers of its best path so
far: the utterance length, the trailing silence (frames at the end of the best
path, after its last word, whose input label is a silence label: the blank of a
CTC graph, the silence phones' transition ids of an HCLG) and the final relative
cost (how much worse the best path becomes when it must end in a final state:
0 when the best token is final, ``inf`` when no final state is active). An
endpoint is detected when any rule holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


@dataclass(frozen=True)
class EndpointRule:
    """One rule; it holds when every condition does.

    must_contain_nonsilence: the best path has at least one non-silence frame.
    min_trailing_silence: seconds of trailing silence at least this long.
    max_relative_cost: final relative cost at most this (``inf``: no final state
        needed; 0 to a few: the best path can end here in the grammar).
    min_utterance_length: seconds decoded at least this long.
    """

    must_contain_nonsilence: bool = True
    min_trailing_silence: float = 1.0
    max_relative_cost: float = math.inf
    min_utterance_length: float = 0.0

    def __post_init__(self):
        if not isinstance(self.must_contain_nonsilence, bool):
            raise ConfigError(f"must_contain_nonsilence must be True or False, got {self.must_contain_nonsilence!r}")
        for name in ("min_trailing_silence", "max_relative_cost", "min_utterance_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0 \
                    or (math.isinf(value) and name != "max_relative_cost"):
                raise ConfigError(f"EndpointRule.{name} must be a number >= 0 (seconds, or a cost for "
                                  f"max_relative_cost, which may be inf), got {value!r}")

    def holds(self, seconds: float, trailing_silence: float, relative_cost: float) -> bool:
        """Kaldi's ``RuleActivated``: ``seconds`` decoded, ``trailing_silence`` in
        seconds, ``relative_cost`` the final relative cost."""
        contains_nonsilence = seconds > trailing_silence
        return ((contains_nonsilence or not self.must_contain_nonsilence)
                and trailing_silence >= self.min_trailing_silence
                and relative_cost <= self.max_relative_cost
                and seconds >= self.min_utterance_length)


KALDI_RULES = (
    EndpointRule(must_contain_nonsilence=False, min_trailing_silence=5.0),  # nothing said for 5 s
    EndpointRule(min_trailing_silence=0.5, max_relative_cost=2.0),  # a likely end, then 0.5 s of silence
    EndpointRule(min_trailing_silence=1.0, max_relative_cost=8.0),  # a plausible end, then 1 s
    EndpointRule(min_trailing_silence=2.0),  # anything, then 2 s
    EndpointRule(must_contain_nonsilence=False, min_trailing_silence=0.0, min_utterance_length=20.0),  # 20 s
)
"""Kaldi's default rules (``OnlineEndpointConfig``)."""


@dataclass(frozen=True)
class EndpointConfig:
    """Endpoint rules and what they read.

    silence_labels: input labels that count as silence (default ``(1,)``, the
        blank of a CTC TLG whose tokens start ``<eps> <blk>``).
    frame_shift: seconds per score row (0.04 for the workload's CTC frames;
        0.03 for Kaldi chain models, 0.01 for frame-rate HMM models).
    rules: an endpoint is detected when any of them holds (default: Kaldi's).
    """

    silence_labels: tuple[int, ...] = (1,)
    frame_shift: float = 0.04
    rules: tuple[EndpointRule, ...] = KALDI_RULES

    def __post_init__(self):
        labels = self.silence_labels
        if isinstance(labels, tuple):  # numpy integers as the numbers they hold
            labels = tuple(int(x) if isinstance(x, np.integer) else x for x in labels)
            object.__setattr__(self, "silence_labels", labels)
        if not isinstance(labels, tuple) or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0
                                                     for x in labels):
            raise ConfigError(f"silence_labels must be a tuple of input labels >= 1 (0 is epsilon), got {labels!r}")
        if isinstance(self.frame_shift, bool) or not isinstance(self.frame_shift, (int, float)) \
                or not 0 < self.frame_shift < math.inf:
            raise ConfigError(f"frame_shift must be a positive number of seconds, got {self.frame_shift!r}")
        if not isinstance(self.rules, tuple) or not all(isinstance(r, EndpointRule) for r in self.rules):
            raise ConfigError(f"rules must be a tuple of wfst.EndpointRule, got {self.rules!r}")

    def silence_mask(self, max_ilabel: int) -> np.ndarray:
        """Bool array indexed by input label (``0..max_ilabel``), True for
        silence; :class:`ConfigError` for a silence label beyond ``max_ilabel``
        (the graph never reads it, so trailing silence would never count)."""
        beyond = [x for x in self.silence_labels if x > max_ilabel]
        if beyond:
            raise ConfigError(f"silence_labels {beyond} are beyond the graph's input labels (1..{max_ilabel}): "
                              "give the ids of the graph's silence or blank tokens (tokens.txt)")
        mask = np.zeros(max_ilabel + 1, bool)
        mask[list(self.silence_labels)] = True
        return mask

    def detected(self, num_frames: int, trailing_silence_frames: int, relative_cost: float) -> bool:
        """Whether any rule holds after ``num_frames`` score rows, the last
        ``trailing_silence_frames`` of them silence on the best path."""
        seconds = num_frames * self.frame_shift
        silence = trailing_silence_frames * self.frame_shift
        return any(rule.holds(seconds, silence, relative_cost) for rule in self.rules)


def final_relative_cost(frontier_state: np.ndarray, frontier_cost: np.ndarray, final: np.ndarray) -> float:
    """Kaldi's ``FinalRelativeCost`` of a frontier (its tokens' graph states and
    costs): the best ``cost + final`` minus the best ``cost``; ``inf`` when no
    frontier token is in a final state (or the frontier is empty)."""
    if frontier_cost.size == 0:
        return math.inf
    with_final = float(np.min(frontier_cost + final[frontier_state]))
    return with_final - float(np.min(frontier_cost)) if with_final < math.inf else math.inf
