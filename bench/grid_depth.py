"""The depth of the CUDA decoder's (blocks x lanes) grids, for sweeps: the
benchmarks' ``--blocks-per-sm`` (``wfst.cuda_layout.BLOCKS_PER_SM`` is the
decoder's own)."""

from __future__ import annotations

import dataclasses

from wfst import cuda_layout as layout


def add_blocks_per_sm_argument(parser) -> None:
    parser.add_argument("--blocks-per-sm", type=int, nargs="+", default=[layout.BLOCKS_PER_SM],
                        help="grid depths to sweep, each with every lane count: blocks per multiprocessor of the "
                             f"(blocks x lanes) grids (default {layout.BLOCKS_PER_SM}, the decoder's)")


def set_blocks_per_sm(decoder, per_sm: int) -> int:
    """Launch ``decoder``'s (blocks x lanes) grids ``per_sm`` deep from now on
    (a ``wfst.Decoder`` on the cuda device); returns its blocks per lane."""
    cuda = decoder._cuda
    sms = cuda.cupy.cuda.runtime.getDeviceProperties(cuda.device.id)["multiProcessorCount"]
    g = cuda.geometry
    cuda.geometry = dataclasses.replace(g, blocks_per_lane=layout.blocks_per_lane(g.lanes, sms, per_sm))
    return cuda.geometry.blocks_per_lane
