"""The closed-form memory budget: the FST part equals the arrays actually built
for the device; the rest follows the documented formula and scales as stated."""

import numpy as np
import pytest

from wfst import ConfigError, CsrFst, DecoderConfig, GraphError, MemoryBudgetError, budget, read_fst
from wfst.budget import device_fst_arrays, hash_slots, score_column_bytes
from wfst.cli_info import example_graph_path

from .random_fst import random_pynini_fst


def device_arrays(fst: CsrFst, num_columns: int) -> dict:
    """The arrays the CUDA backend uploads, built here on the host with the same
    dtypes: offsets, final costs, next states, weights and the score column of
    every emitting arc (ilabel - 1; one placeholder where there is none)."""
    arrays = device_fst_arrays(fst, num_columns)
    E = fst.num_emitting_arcs
    built = {
        "e_offsets": fst.e_offsets, "ne_offsets": fst.ne_offsets, "final": fst.final,
        "nextstate": fst.nextstate, "weight": fst.weight, "score_column": fst.ilabel[:E] - 1 if E else [0],
    }
    return {name: np.ascontiguousarray(built[name], dtype=arrays[name][0]) for name in arrays}


@pytest.mark.parametrize("seed", range(0, 40))
def test_device_fst_bytes_equal_the_arrays_built(seed):
    fst = CsrFst.from_pynini(random_pynini_fst(seed))
    memory = budget(fst)
    arrays = device_arrays(fst, fst.max_ilabel)
    assert memory.device_fst == sum(a.nbytes for a in arrays.values())
    assert memory.device_fst_arrays == {name: a.nbytes for name, a in arrays.items()}
    E = fst.num_emitting_arcs
    assert np.array_equal(arrays["score_column"][:E].astype(np.int64), fst.ilabel[:E] - 1)


def test_closed_form_and_kaldi_comparison():
    fst = read_fst(example_graph_path())
    S, A, E = fst.num_states, fst.num_arcs, fst.num_emitting_arcs
    memory = budget(fst)
    assert memory.device_fst == 12 * S + 8 + 8 * A + 2 * E
    assert memory.kaldi_device_fst == 12 * S + 8 * A + 4 * E
    assert memory.device_fst < memory.kaldi_device_fst


def test_wide_labels_use_32_bit_columns():
    assert score_column_bytes(65536) == 2 and score_column_bytes(65537) == 4
    fst = CsrFst.from_arcs(2, 0, np.array([np.inf, 0], np.float32), np.array([0, 0]), np.array([1, 1]),
                           np.array([70000, 3]), np.array([0, 0]), np.array([0.0, 1.0])).validate()
    memory = budget(fst)
    assert memory.device_fst_arrays["score_column"] == 4 * 2
    assert budget(fst, pdf_map=np.arange(70001) % 100).device_fst_arrays["score_column"] == 2 * 2


def test_lanes_channels_and_capacities_scale_linearly():
    fst = read_fst(example_graph_path())
    config = DecoderConfig(max_active=1000)
    one = budget(fst, config, lanes=1)
    many = budget(fst, config, lanes=8, channels=20)
    assert many.per_lane == one.per_lane and many.per_channel == one.per_channel
    assert many.device_total == one.device_fst + 8 * one.per_lane + 20 * one.per_channel
    assert many.pinned_host == 8 * one.pinned_host
    Q, X, P = config.token_capacity, config.arc_capacity, fst.max_ilabel
    assert Q == 4000 and X == 12000 and hash_slots(Q) == 8192
    W = 256  # WINDOW_TABLE_FRAMES
    assert one.per_lane == 188 * Q + 220 * X + 16 * 8192 + 4 * P * 64 + 64 * W + 564
    assert one.per_channel == 8 * Q + 64
    assert one.pinned_host == 36 * Q + 60 * X + 4 * P * 64 + 508
    short = budget(fst, config, chunk_frames=16)  # F = 16 frames of host scores staged, on the device and pinned
    assert one.per_lane - short.per_lane == one.pinned_host - short.pinned_host == 4 * P * (64 - 16)
    # H: the smallest power of two >= 2Q, a power of two itself when Q is
    assert [hash_slots(q) for q in (1, 2, 3, 2048, 2049)] == [2, 4, 8, 4096, 8192]
    bigger = budget(fst, DecoderConfig(max_active=2000))
    assert bigger.per_lane > one.per_lane and bigger.per_channel == 2 * one.per_channel - 64


def test_an_empty_pdf_map_is_refused():
    with pytest.raises(GraphError, match="pdf_map is empty"):
        budget(read_fst(example_graph_path()), pdf_map=np.zeros(0, np.int64))


def test_budget_check_raises_before_allocation_with_advice():
    fst = read_fst(example_graph_path())
    memory = budget(fst, lanes=64)
    assert memory.check(memory.device_total) is memory
    with pytest.raises(MemoryBudgetError, match=r"use at most \d+ lanes") as caught:
        memory.check(memory.device_total - 1)
    assert isinstance(caught.value, MemoryError)
    with pytest.raises(MemoryBudgetError, match="the graph alone"):
        memory.check(memory.device_fst - 1)
    with pytest.raises(MemoryBudgetError, match=r"not one lane \(\d+\.\d\d MiB\) fits"):  # the graph fits, no more
        memory.check(memory.device_fst)
    crowded = budget(fst, lanes=1, channels=1000)  # the channels leave no room for a lane
    with pytest.raises(MemoryBudgetError, match=r"not one lane \(\d+\.\d\d MiB\) fits .* fewer channels"):
        crowded.check(crowded.device_fst + 1000 * crowded.per_channel)
    assert memory.max_lanes(memory.device_total) >= 64
    assert budget(fst, lanes=memory.max_lanes(10**9)).device_total <= 10**9
    with pytest.raises(MemoryBudgetError, match="or a smaller max_active / token_queue_capacity$"):
        memory.check(memory.device_total, host_bytes=memory.pinned_host - 1)


def test_a_lane_made_large_by_its_score_columns_is_blamed_on_them():
    """A graph whose largest input label is huge stages that many score
    columns per lane: the advice names them, not max_active."""
    fst = CsrFst.from_arcs(2, 0, np.array([np.inf, 0], np.float32), np.array([0]), np.array([1]),
                           np.array([2**24]), np.array([0]), np.array([0.0])).validate()
    memory = budget(fst, DecoderConfig(max_active=1, min_active=0), lanes=1)
    advice = r"fewer score columns: the graph reads 16,777,216 .* staged at \d+\.\d\d GiB a lane"
    for device, host in ((memory.device_total - 1, None), (memory.device_total, memory.pinned_host - 1)):
        with pytest.raises(MemoryBudgetError, match=advice):
            memory.check(device, host)


def test_max_lanes_counts_a_channel_per_lane_and_never_goes_negative():
    fst = read_fst(example_graph_path())
    one = budget(fst, lanes=1)
    device = one.device_fst + 10 * one.per_lane  # ten lanes' working memory, not their ten channels
    lanes = one.max_lanes(device)
    assert budget(fst, lanes=lanes).device_total <= device < budget(fst, lanes=lanes + 1).device_total
    assert lanes == 9
    assert one.max_lanes(one.device_fst - 1) == 0  # not even the graph fits


def test_a_pdf_map_sets_the_score_columns():
    """pdf_map[i] = i - 1 is the map the decoder uses without one (ilabel i reads
    column i - 1): the same number of columns, the same budget."""
    fst = read_fst(example_graph_path())
    identity = np.arange(-1, fst.max_ilabel)
    assert budget(fst, pdf_map=identity).as_dict() == budget(fst).as_dict()
    wider = budget(fst, pdf_map=identity + 1)  # one more column per staged frame
    assert wider.per_lane - budget(fst).per_lane == 4 * 64


def test_pinned_memory_beyond_the_host_s_is_a_budget_error_and_caps_the_default_lanes():
    from wfst.cuda_backend import default_lanes

    fst = read_fst(example_graph_path())
    memory = budget(fst, lanes=64)
    assert memory.check(memory.device_total, memory.pinned_host) is memory
    with pytest.raises(MemoryBudgetError, match=r"pinned \(page-locked\) host memory.* use at most 63 lanes"):
        memory.check(memory.device_total, memory.pinned_host - 1)
    with pytest.raises(MemoryBudgetError, match=r"pinned \(page-locked\)"):  # no host memory left (a full cgroup)
        memory.check(memory.device_total, 0)
    one = budget(fst, lanes=1)
    assert default_lanes(one, 10**13) == 256
    assert default_lanes(one, 10**13, int(10 * one.pinned_host / 0.9) + 10) == 10
    assert default_lanes(one, 10**13, 0) == 1


def test_default_lanes_fill_only_a_share_of_the_free_device_memory():
    """The default lane count leaves a tenth of the free device memory
    (FREE_MEMORY_SHARE): where exactly 20 lanes would fit, it takes as many as
    fit in 90% of it."""
    from wfst.cuda_backend import default_lanes

    fst = read_fst(example_graph_path())
    free = budget(fst, lanes=20).device_total
    fitting = max(n for n in range(1, 21) if budget(fst, lanes=n).device_total <= 0.9 * free)
    assert fitting < 20
    assert default_lanes(budget(fst, lanes=1), free) == fitting


def test_sizes_are_printed_in_the_largest_unit_that_keeps_them_at_least_one():
    from wfst import MemoryBudget

    text = str(MemoryBudget(device_fst=2**20, per_lane=2**30, per_channel=1023, lanes=1, channels=1,
                            pinned_host=2**20 - 1))
    assert "1.00 MiB" in text.splitlines()[0] and "1.00 GiB" in text.splitlines()[1]
    assert "1023 B" in text.splitlines()[2] and "1024.00 KiB" in text.splitlines()[4]


def test_an_allocation_beyond_the_budget_s_tolerance_either_way_is_a_bug_reported():
    """check_allocation: device or pinned bytes more than 5% above or below the
    budget raise AssertionError (a bug in the budget or the allocation)."""
    from wfst.cuda_memory import check_allocation

    memory = budget(read_fst(example_graph_path()), lanes=4)
    device, pinned = memory.device_total, memory.pinned_host
    assert check_allocation(memory, device, pinned)["device_ratio"] == 1
    check_allocation(memory, int(device * 1.04), int(pinned * 0.96))
    for got in ((device * 1.06, pinned), (device * 0.94, pinned), (device, pinned * 1.06), (device, pinned * 0.94)):
        with pytest.raises(AssertionError, match="differs from wfst.budget by more than 5%"):
            check_allocation(memory, *map(int, got))


@pytest.mark.parametrize("kwargs", [{"lanes": 0}, {"lanes": 4, "channels": 2}, {"chunk_frames": 0},
                                    {"lanes": True}])
def test_bad_budget_arguments(kwargs):
    with pytest.raises(ConfigError):
        budget(read_fst(example_graph_path()), **kwargs)


def test_a_graph_or_config_of_the_wrong_kind_is_refused_as_the_decoder_refuses_it():
    """A path where a CsrFst goes is a GraphError, anything but a DecoderConfig
    a ConfigError, as wfst.Decoder raises (both were AttributeErrors)."""
    path = example_graph_path()
    with pytest.raises(GraphError, match="read the file first"):
        budget(path)
    with pytest.raises(ConfigError, match="config must be a wfst.DecoderConfig"):
        budget(read_fst(path), {"beam": 15.0})


def test_numpy_lane_counts_do_not_wrap():
    """int32 lanes times a lane's bytes would wrap in numpy arithmetic."""
    fst = read_fst(example_graph_path())
    want = budget(fst, DecoderConfig(), lanes=2048, chunk_frames=64)
    got = budget(fst, DecoderConfig(), lanes=np.int32(2048), chunk_frames=np.int32(64))
    assert got.as_dict() == want.as_dict()
    assert want.pinned_host > 2**31


def test_the_lane_limit_caps_the_advice():
    """The kernels take at most 65,535 lanes (a grid dimension) and as many as
    keep a step's packed links within int32 (6 x arc_queue_capacity per lane):
    the budget's advice never names more (the geometry refuses more:
    tests/test_cuda_host.py)."""
    from wfst.budget import lane_limit

    fst = read_fst(example_graph_path())
    config = DecoderConfig(max_active=10000)
    assert lane_limit(config) == (2**31 - 1) // (6 * 120000) == 2982
    assert lane_limit(DecoderConfig(max_active=1, min_active=0)) == 65535
    memory = budget(fst, config, lanes=4000)
    assert memory.max_lanes(10**15) == memory.max_lanes_pinned(10**15) == 2982
    with pytest.raises(MemoryBudgetError, match="use at most 2982 lanes"):
        memory.check(memory.device_total - 1)


def test_host_memory_available_takes_the_smaller_of_meminfo_and_a_cgroup_limit(tmp_path, monkeypatch):
    from wfst import gpu

    (tmp_path / "meminfo").write_text("MemTotal: 1000 kB\nMemAvailable: 800 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    monkeypatch.setattr(gpu, "MEMINFO", str(tmp_path / "meminfo"))
    monkeypatch.setattr(gpu, "CGROUP", str(cgroup))
    assert gpu.host_memory_available() == 800 * 1024  # no cgroup files
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("5000\n")
    assert gpu.host_memory_available() == 800 * 1024  # no limit
    (cgroup / "memory.max").write_text("105000\n")
    assert gpu.host_memory_available() == 100000  # the container's room
    (cgroup / "memory.current").write_text("200000\n")
    assert gpu.host_memory_available() == 0  # a group already beyond its limit has no room
    (cgroup / "memory.current").write_text("5000\n")
    monkeypatch.setattr(gpu, "MEMINFO", str(tmp_path / "absent"))
    assert gpu.host_memory_available() == 100000
    (cgroup / "memory.max").unlink()
    assert gpu.host_memory_available() is None
