"""The cost keys and the exact k-th smallest cost that both backends' cutoff
and the kernel frame_prologue share (wfst/cost_select.py), against numpy."""

import numpy as np
import pytest

from wfst.cost_select import cost_keys, key_cost, kth_smallest

SPECIAL = [0.0, -0.0, np.inf, -np.inf, -1e-40, 1e-40, 3.4e38, -3.4e38, 1.0, np.nextafter(np.float32(1), 2)]


def test_cost_keys_order_as_the_costs_and_map_back():
    rng = np.random.default_rng(0)
    costs = np.concatenate([rng.normal(0, 100, 5000), SPECIAL]).astype(np.float32)
    keys = cost_keys(costs).astype(np.int64)
    assert keys.dtype == np.int64 and cost_keys(costs).dtype == np.uint32
    i, j = rng.integers(0, costs.size, (2, 20000))
    assert np.array_equal(keys[i] < keys[j], costs[i] < costs[j])
    assert np.array_equal(keys[i] == keys[j], costs[i] == costs[j])  # -0.0 and +0.0 share a key
    back = np.array([key_cost(k) for k in keys], np.float32)
    assert np.array_equal(back, costs)
    assert cost_keys(np.float32([np.inf]))[0] == 0xFF800000
    assert cost_keys(np.float32([[1.0, -0.0]])).shape == (1, 2)


def _cases():
    rng = np.random.default_rng(7)
    for seed in range(40):
        n = int(rng.integers(1, 3000))
        if seed % 4 == 0:  # a frame's costs: within a beam of each other, keys sharing their top bits
            costs = rng.uniform(100.0, 115.0, n)
        elif seed % 4 == 1:  # quarters: many ties
            costs = rng.integers(-5, 5, n) / 4.0
        elif seed % 4 == 2:
            costs = rng.normal(20, 10, n)
        else:  # few distinct values, specials among them
            costs = rng.choice(SPECIAL[:4] + [2.5], n)
        costs = costs.astype(np.float32)
        if seed % 5 == 0:
            costs[: n // 3] = np.float32(-0.0)
        yield seed, costs, sorted({0, n // 2, n - 1, int(rng.integers(n))})


@pytest.mark.parametrize("seed,costs,ks", list(_cases()))
def test_kth_smallest_is_numpy_s_nth_element_and_leaves_the_costs(seed, costs, ks):
    before = costs.copy()
    for k in ks:
        got = kth_smallest(costs, k)
        assert got == np.partition(costs, k)[k]
        assert not np.signbit(got) or got != 0  # -0.0 comes back as +0.0, as the kernel's key gives it
    assert np.array_equal(costs.view(np.uint32), before.view(np.uint32))


def test_kth_smallest_reads_a_strided_view():
    costs = np.arange(100, 0, -1, dtype=np.float32)[::3]
    assert kth_smallest(costs, 5) == np.sort(costs)[5]


def test_kth_smallest_refuses_a_k_out_of_range():
    for k in (-1, 3):
        with pytest.raises(ValueError, match="out of range"):
            kth_smallest(np.float32([1, 2, 3]), k)
