"""Decoder configuration: one frozen object shared by every backend."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

TOKENS_PER_MAX_ACTIVE = 4
"""Default token queue capacity as a multiple of ``max_active``: the tokens of one
frame, before max_active pruning and including the non-representative ones kept
for the lattice (Kaldi's cudadecoder recommends 4 to 10)."""
ARCS_PER_TOKEN = 3
"""Default arc queue capacity as a multiple of the token queue capacity: the
candidate tokens one expansion may produce before they are pruned and merged."""


def checked_config(config) -> "DecoderConfig":
    """``config``, or the defaults for None; :class:`ConfigError` for anything
    but a :class:`DecoderConfig`."""
    if config is None:
        return DecoderConfig()
    if not isinstance(config, DecoderConfig):
        raise ConfigError(f"config must be a wfst.DecoderConfig, got {type(config).__name__}")
    return config


def available_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class DecoderConfig:
    """Search and lattice settings. Invalid values raise :class:`ConfigError`
    at construction (and from :meth:`validate`).

    All costs are negated log-probabilities (natural log; graph weight plus
    scaled acoustic cost), so a beam of 15 keeps paths up to e^15 times less
    likely than the best.

    beam: cost window kept around the best token of a frame. Larger: fewer search
        errors, more active tokens (time grows roughly linearly with them).
    max_active: cap on the tokens kept per frame; above it the beam shrinks for
        that frame (adaptive beam). Larger: more accurate on hard audio, slower,
        and more memory (queue capacities derive from it).
    min_active: the adaptive beam never keeps fewer tokens than this (it widens
        the beam on frames where fewer fall within it). Larger: fewer dead ends
        on badly matched audio, a little slower.
    lattice_beam: cost window of the paths kept in the lattice. Larger: richer,
        bigger lattices; the search itself does not change.
    acoustic_scale: multiplies the negated log-likelihoods before they add to
        graph costs (e.g. 0.1 for nnet3 log-likelihoods, 1.0 for chain models,
        0.3-1.0 for CTC log-probabilities). Larger: the acoustics weigh more
        against the language model, and the same beam keeps fewer tokens.
    prune_interval: frames between lattice prunings. Smaller: less lattice memory,
        more pruning work.
    use_final_probs: add final costs at the end and prefer final states, when one
        was reached.
    token_queue_capacity: tokens one frame may hold (GPU lanes, channels and the
        lattice copy-back are sized by it); None derives
        ``TOKENS_PER_MAX_ACTIVE * max_active``. Too small: a CapacityWarning and a
        tighter beam on overflowing frames.
    arc_queue_capacity: candidate tokens one expansion may produce before
        pruning; None derives ``ARCS_PER_TOKEN * token_queue_capacity``.
    """

    beam: float = 15.0
    max_active: int = 10000
    min_active: int = 200
    lattice_beam: float = 8.0
    acoustic_scale: float = 1.0
    prune_interval: int = 25
    use_final_probs: bool = True
    token_queue_capacity: int | None = None
    arc_queue_capacity: int | None = None

    def __post_init__(self):
        for field in dataclasses.fields(self):  # numpy scalars as the Python numbers they hold
            value = getattr(self, field.name)
            if isinstance(value, (np.integer, np.floating, np.bool_)):
                object.__setattr__(self, field.name, value.item())
        self.validate()

    @property
    def token_capacity(self) -> int:
        """Token queue capacity in effect (given or derived)."""
        return self.token_queue_capacity or TOKENS_PER_MAX_ACTIVE * self.max_active

    @property
    def arc_capacity(self) -> int:
        """Arc queue capacity in effect (given or derived)."""
        return self.arc_queue_capacity or ARCS_PER_TOKEN * self.token_capacity

    def validate(self) -> "DecoderConfig":
        """Raise :class:`ConfigError` naming the first field out of range."""
        _positive_float("beam", self.beam)
        if self.beam < MIN_BEAM:
            raise ConfigError(f"beam must be at least {MIN_BEAM} (typical: 10 to 20), got {self.beam!r}: a "
                              "narrower one is lost to float32 rounding once path costs grow (best + beam == "
                              "best), and the search then keeps only the best cost")
        _positive_float("acoustic_scale", self.acoustic_scale)
        _positive_float("lattice_beam", self.lattice_beam, allow_zero=True)
        _positive_int("max_active", self.max_active)
        _positive_int("prune_interval", self.prune_interval)
        _positive_int("min_active", self.min_active, allow_zero=True)
        if self.min_active > self.max_active:
            raise ConfigError(f"min_active ({self.min_active}) must not exceed max_active ({self.max_active})")
        if not isinstance(self.use_final_probs, bool):
            raise ConfigError(f"use_final_probs must be True or False, got {self.use_final_probs!r}")
        for name in ("token_queue_capacity", "arc_queue_capacity"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.token_capacity < self.max_active:
            raise ConfigError(f"token_queue_capacity ({self.token_capacity}) must be at least max_active "
                              f"({self.max_active}); leave it None to derive it")
        if self.arc_capacity < self.token_capacity:
            raise ConfigError(f"arc_queue_capacity ({self.arc_capacity}) must be at least the token queue "
                              f"capacity ({self.token_capacity}); leave it None to derive it")
        return self


MIN_BEAM = 0.1
"""The narrowest search beam: float32 costs near 1e6 (an hour of audio) are
0.06 apart, so a beam below that would be lost to rounding there (the search
keeps what lies strictly below best + beam, as Kaldi's does, or, where that
sum rounds back to best, only the best cost)."""
FLOAT32_MAX = 3.4028234663852886e38
"""The searches compute in float32: a larger number would be infinite there."""
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
"""The smallest normal float32: a smaller positive scale would be 0 (or lose
its precision) there."""
INT_MAX = 2**31 - 1
"""The largest count a setting may hold (the kernels index with int32)."""


def _positive_float(name, value, allow_zero=False):
    smallest = 0.0 if allow_zero else FLOAT32_TINY
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < smallest or value > FLOAT32_MAX:
        bound = ">= 0" if allow_zero else f"from {FLOAT32_TINY:.4g}"
        raise ConfigError(f"{name} must be a finite number {bound} to {FLOAT32_MAX:.4g} (the search uses "
                          f"float32, where others are 0 or infinite), got {value!r}")


def _positive_int(name, value, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (value == 0 and not allow_zero) \
            or value > INT_MAX:
        bound = "0" if allow_zero else "1"
        raise ConfigError(f"{name} must be an integer from {bound} to {INT_MAX} (the kernels count in int32), "
                          f"got {value!r}")
