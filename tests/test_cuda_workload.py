"""The CUDA backend against the CPU backend on the benchmark workload: its
graphs (``small``, ``full``) and every data set of each (several
difficulties), at the benchmark's settings. Every utterance gets the same
words, cost and alignment, and no queue overflows at the default capacities.

Needs a built workload: ``WFST_WORKLOAD`` names the directory of
``python -m bench.workload build --out DIR`` (``graphs/SIZE/TLG.fst``,
``data/SIZE/*.npz``), ``WFST_WORKLOAD_SIZES`` the graphs to use (default
``small,full``, those present); skipped when unset. On the emulator only the first
``WFST_WORKLOAD_EMULATED_UTTERANCES`` (default 2) utterances' first
``WFST_WORKLOAD_EMULATED_FRAMES`` (default 20) frames are decoded."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import wfst
from wfst.score_archive import Workload

pytestmark = pytest.mark.usefixtures("cupy_module")

ROOT = os.environ.get("WFST_WORKLOAD")
SIZES = os.environ.get("WFST_WORKLOAD_SIZES", "small,full").split(",")


def _cases() -> list[tuple[str, Path]]:
    if not ROOT:
        return []
    return [(size, data) for size in SIZES if (Path(ROOT) / "graphs" / size / "TLG.fst").exists()
            for data in sorted((Path(ROOT) / "data" / size).glob("*.npz"))]


_GRAPHS: dict[str, wfst.CsrFst] = {}


def _graph(size: str) -> wfst.CsrFst:
    if size not in _GRAPHS:
        _GRAPHS.clear()  # one big graph in memory at a time
        _GRAPHS[size] = wfst.read_fst(Path(ROOT) / "graphs" / size / "TLG.fst")
    return _GRAPHS[size]


@pytest.mark.parametrize("acoustic_scale", [0.5, 1.0])
@pytest.mark.parametrize("size,data", _cases() or [("none", None)],
                         ids=lambda v: v.stem if isinstance(v, Path) else str(v))
def test_workload_matches_the_cpu(cupy_module, size, data, acoustic_scale):
    if data is None:
        pytest.skip("set WFST_WORKLOAD to a built workload (python -m bench.workload build --out DIR)")
    fst = _graph(size)
    workload = Workload.load(data)
    on_gpu = cupy_module.__name__ == "cupy"
    frames = None if on_gpu else int(os.environ.get("WFST_WORKLOAD_EMULATED_FRAMES", "20"))
    count = len(workload) if on_gpu else int(os.environ.get("WFST_WORKLOAD_EMULATED_UTTERANCES", "2"))
    rows = [np.ascontiguousarray(workload.utterance(i)[:frames]) for i in range(count)]
    config = wfst.DecoderConfig(beam=15.0, max_active=10000, lattice_beam=8.0, acoustic_scale=acoustic_scale)
    gpu = wfst.Decoder(fst, config, device="cuda", lanes=min(64, count))
    with warnings.catch_warnings():
        warnings.simplefilter("error", wfst.CapacityWarning)
        got = gpu.decode(rows)
    want = wfst.Decoder(fst, config, device="cpu").decode(rows)
    different = [i for i, (g, w) in enumerate(zip(got, want))
                 if g.words != w.words or g.cost != w.cost or not np.array_equal(g.alignment, w.alignment)]
    assert not different, f"{len(different)} of {count} utterances differ from the CPU backend, first {different[:5]}"
