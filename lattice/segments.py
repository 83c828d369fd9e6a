"""The lattice segment format both backends produce.

A search keeps one **token** per (frame, graph state) it reached, and a **link**
for every arc it followed between two tokens within the beam. Frame ``f`` holds
the tokens after ``f`` score rows (frame 0: the epsilon closure of the start
state). Tokens and links are grouped by frame; within a frame their order carries
no meaning (backends may differ), so lattices are compared by paths and costs.

Invariants:

* ``tok_start`` / ``link_start`` (int64, ``num_frames + 2``): frame ``f``'s tokens
  are ``tok_start[f] <= k < tok_start[f + 1]``, its links (those *into* its tokens)
  ``link_start[f] <= l < link_start[f + 1]``; ``link_eps_start[f]`` splits them:
  emitting links first (source in frame ``f - 1``, reading score row ``f - 1``),
  then epsilon links (source in frame ``f``).
* ``tok_state`` (int32) the graph state, ``tok_cost`` (float32) the best total
  cost of any path from the start to the token, acoustic scale applied.
* ``link_src``, ``link_dst`` (int32 token indices), ``link_arc`` (int32 index into
  the graph's arc arrays: input/output label and graph cost come from there),
  ``link_ac`` (float32 acoustic cost ``-(acoustic_scale * loglike)``, 0 on epsilon
  links). For every link ``cost[src] + ac + weight[arc] >= cost[dst]`` (float32,
  added in that order); equality holds for at least one link into each token but
  the start token.
* ``tok_best`` (int32) the best incoming link of each token (-1 for the start
  token): among links achieving the token's cost, fewest epsilon hops since the
  last emitting link, then lowest ``link_arc``. Following it from any token
  reaches the start token.
* **Soft pruning**: a token or link is dropped once no path through it to the
  frontier (at the end: to a final state, with final costs) is within
  ``lattice_beam`` of the best; tokens the beam kept but that never led anywhere
  are gone, and the best path is always kept.
* ``best_token`` is the frontier token the best path ends in (-1 when no token
  survived), ``reached_final`` whether a final state was active at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class LatticeSegments:
    """The raw lattice of one utterance as a search left it: tokens and links
    grouped by frame; the arrays and invariants are in the module docstring."""

    tok_state: np.ndarray
    tok_cost: np.ndarray
    tok_best: np.ndarray
    tok_start: np.ndarray
    link_src: np.ndarray
    link_dst: np.ndarray
    link_arc: np.ndarray
    link_ac: np.ndarray
    link_start: np.ndarray
    link_eps_start: np.ndarray
    best_token: int
    reached_final: bool

    @property
    def num_frames(self) -> int:
        """Score rows consumed (the frontier is frame ``num_frames``)."""
        return int(self.tok_start.shape[0]) - 2

    @property
    def num_tokens(self) -> int:
        """Tokens of every frame."""
        return int(self.tok_state.shape[0])

    @property
    def num_links(self) -> int:
        """Links of every frame."""
        return int(self.link_src.shape[0])

    def link_frames(self) -> np.ndarray:
        """Frame of each link's destination token (int64, one per link)."""
        return np.repeat(np.arange(self.num_frames + 1), np.diff(self.link_start))

    def __repr__(self) -> str:
        return (f"LatticeSegments(frames={self.num_frames}, tokens={self.num_tokens}, links={self.num_links}, "
                f"reached_final={self.reached_final})")
