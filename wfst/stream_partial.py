"""Partial results of a stream: the best path so far, traced back incrementally.

A partial result is the best path into the frontier's best token (lowest cost,
then lowest state id; final costs not applied). Tracing it back from scratch
costs one step per token on the path, so it would grow with the utterance. The
:class:`BestPathTracker` keeps the previous partial's path instead and walks back
from the new best token only until it meets a token on that path: the walk costs
the changed suffix (usually the frames accepted since the last partial, plus
their epsilon hops).

Tokens are named by ``(frame, graph state)``, which is unique in a frame and
stays the same when lattice pruning compacts the token arrays (it renumbers
indices only). Once its frame is complete a token's cost and best predecessor
never change, and pruning never removes a surviving token's best link, so a
token met on the kept path has the same path back to the start as before.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Partial(NamedTuple):
    """The best path after the frames a stream has accepted.

    words: output labels of the best path so far, epsilons dropped.
    cost: its cost (graph + scaled acoustic), final costs not applied; ``inf``
        when no token survived.
    num_frames: score rows accepted; the path reads exactly these frames.
    """

    words: tuple[int, ...]
    cost: float
    num_frames: int


class BestPathTracker:
    """The best path of the latest partial, kept between calls of :meth:`update`.

    ``ilabel`` / ``olabel``: the graph's arc labels (int32, one per arc).
    ``start_state``: the graph's start state (the root of every path, frame 0).
    ``silence``: optional bool array indexed by input label, True for the labels
    that count as silence (e.g. the CTC blank); it drives
    :attr:`trailing_silence`.

    ``steps``: back-pointers followed by all updates so far; ``last_steps``: by
    the latest one (what a partial costs, for tests and benchmarks).
    """

    def __init__(self, ilabel: np.ndarray, olabel: np.ndarray, start_state: int,
                 silence: np.ndarray | None = None):
        self._ilabel = ilabel
        self._olabel = olabel
        self._silence = silence
        root = (0, int(start_state))
        # the kept path, entry i: token key, words up to it, trailing silence frames at it
        self._keys: list[tuple[int, int]] = [root]
        self._num_words: list[int] = [0]
        self._silence_run: list[int] = [0]
        self._position: dict[tuple[int, int], int] = {root: 0}
        self._words: list[int] = []
        self._words_tuple: tuple[int, ...] = ()
        self.steps = 0
        self.last_steps = 0

    @property
    def words(self) -> tuple[int, ...]:
        """Output labels of the kept path (rebuilt only when they change)."""
        return self._words_tuple

    @property
    def trailing_silence(self) -> int:
        """Frames at the end of the kept path that read a silence label, counted
        back to the first non-silence frame or word label."""
        return self._silence_run[-1]

    def update(self, best: int, frame: int, tok_state: np.ndarray, tok_best: np.ndarray, link_src: np.ndarray,
               link_arc: np.ndarray) -> None:
        """Make the path into token ``best`` (of frame ``frame``, in the current
        arrays of the search) the kept path."""
        ilabel, olabel = self._ilabel, self._olabel
        walked = []  # (key, olabel, ilabel) of the new tokens, last first
        k, f = best, frame
        while True:
            key = (f, int(tok_state[k]))
            met = self._position.get(key)
            if met is not None:
                break
            link = tok_best[k]
            arc = link_arc[link]
            walked.append((key, int(olabel[arc]), int(ilabel[arc])))
            if ilabel[arc] != 0:
                f -= 1
            k = link_src[link]
        self.last_steps = len(walked)
        self.steps += len(walked)
        for key in self._keys[met + 1:]:
            del self._position[key]
        del self._keys[met + 1:], self._num_words[met + 1:], self._silence_run[met + 1:]
        words_before = len(self._words)
        del self._words[self._num_words[met]:]
        changed = len(self._words) != words_before
        silence, run = self._silence, self._silence_run[met]
        for key, word, label in reversed(walked):
            if word != 0:
                self._words.append(word)
                changed = True
                run = 0
            elif label != 0:
                run = run + 1 if silence is not None and silence[label] else 0
            self._position[key] = len(self._keys)
            self._keys.append(key)
            self._num_words.append(len(self._words))
            self._silence_run.append(run)
        if changed:
            self._words_tuple = tuple(self._words)
