"""The CUDA decoder's launch settings, for the benchmarks' sweeps: the depth of
its (blocks x lanes) grids (``--blocks-per-sm``; ``wfst.cuda_layout.BLOCKS_PER_SM``
is the decoder's own), how many lane groups step in turn on their own streams
(``--lane-groups``; ``wfst.cuda_backend.DEFAULT_LANE_GROUPS``) and whether it
replays its launch sequences as CUDA graphs (``--launch-graphs``; on by default)."""

from __future__ import annotations

import dataclasses

from wfst import cuda_layout as layout
from wfst.cuda_backend import DEFAULT_LANE_GROUPS


def add_launch_arguments(parser, graphs: bool = True) -> None:
    """``--blocks-per-sm``, ``--lane-groups`` and, where ``graphs``, ``--launch-graphs``: lists, swept."""
    parser.add_argument("--blocks-per-sm", type=int, nargs="+", default=[layout.BLOCKS_PER_SM],
                        help="grid depths to sweep, each with every lane count: blocks per multiprocessor of the "
                             f"(blocks x lanes) grids (default {layout.BLOCKS_PER_SM}, the decoder's)")
    parser.add_argument("--lane-groups", type=int, nargs="+", default=[DEFAULT_LANE_GROUPS],
                        help="lane groups to sweep, each with every lane count: groups of lanes stepped in turn on "
                             "their own streams, so the host's work on one overlaps the device's on the others "
                             f"(default {DEFAULT_LANE_GROUPS}, the decoder's; at most the lanes)")
    if graphs:
        parser.add_argument("--launch-graphs", choices=("on", "off"), nargs="+", default=["on"],
                            help="replay each step's launch sequences as CUDA graphs (on, the decoder's default) "
                                 "or launch kernel by kernel (off); both: an A/B in one run")


def set_blocks_per_sm(decoder, per_sm: int) -> int:
    """Launch ``decoder``'s (blocks x lanes) grids ``per_sm`` deep from now on
    (a ``wfst.Decoder`` on the cuda device); returns its blocks per lane."""
    cuda = decoder._cuda
    sms = cuda.cupy.cuda.runtime.getDeviceProperties(cuda.device.id)["multiProcessorCount"]
    g = cuda.geometry
    cuda.geometry = dataclasses.replace(g, blocks_per_lane=layout.blocks_per_lane(g.lanes, sms, per_sm))
    return cuda.geometry.blocks_per_lane


def set_lattice_stagger(decoder, stagger: int) -> int:
    """Deal ``decoder``'s channels to its lattice workers with ``stagger``
    (:func:`wfst.cuda_lattice.partition_channels`; 0: the decoder's own, its
    window period; 1: channel ``c`` to worker ``c % threads``) in a fresh
    lattice store; before its first decode. Returns the stagger set."""
    cuda = decoder._cuda
    stagger = stagger or cuda.geometry.window_period
    cuda.lattices = cuda.lattice_store(stagger)
    return stagger


def set_lane_groups(decoder, groups: int) -> int:
    """Step ``decoder``'s lanes in ``groups`` groups from its next run (at most
    its lanes); returns the groups set."""
    cuda = decoder._cuda
    cuda.lane_groups = min(groups, cuda.geometry.lanes)
    return cuda.lane_groups
