"""The frame prologue (cuda_kernels/frame_prologue.cu) on lanes of many sizes
and cost shapes, on a GPU (marked gpu) and on the CPU emulator: each expanding
lane's cutoff and adaptive beam are the CPU's (``gpu_cutoff``, checked against
Kaldi's GetCutoff in test_cuda_host.py; its radix select gives numpy's nth
element), and the prefix sum of its expanded tokens' emitting out-degrees is
numpy's, over several rounds of the block; idle lanes are left alone. A
starting lane makes the start token under its beam, tightened by its overflow
retries."""

from types import SimpleNamespace

import numpy as np
import pytest

from wfst import cuda_kernels_launch as K
from wfst import cuda_layout as layout
from wfst.cost_select import cost_keys
from wfst.cpu_search import BEAM_DELTA
from wfst.cpu_search import _slot as _probe

pytestmark = pytest.mark.usefixtures("cupy_module")


def _costs(rng, n: int, shape: int) -> np.ndarray:
    """``n`` float32 costs of one of six shapes: a beam's spread over 100-127 (every key shares its top 10 bits),
    either side of zero, integer ties, all equal, zeros of both signs, a spread over many orders of magnitude."""
    if shape == 0:
        return np.minimum(100 + rng.exponential(3, n), 127).astype(np.float32)
    if shape == 1:
        return rng.normal(0, 3, n).astype(np.float32)
    if shape == 2:
        return rng.integers(-3, 4, n).astype(np.float32)
    if shape == 3:
        return np.full(n, 7.25, np.float32)
    if shape == 4:
        return np.where(rng.random(n) < 0.2, 1.0, np.where(rng.random(n) < 0.5, -0.0, 0.0)).astype(np.float32)
    return (rng.choice([-1, 1], n) * np.exp(rng.uniform(-30, 30, n))).astype(np.float32)


def _case(seed: int) -> SimpleNamespace:
    """Six lanes (most expanding) of up to 5000 tokens of one cost shape each, a graph's out-degrees, a config."""
    rng = np.random.default_rng(seed)
    lanes, Q, S = 6, 5000, 300  # (up to 5000 tokens: three rounds of the degree scan)
    degrees = np.where(rng.random(S) < 0.3, 0, rng.integers(0, 40, S))
    counts = rng.choice([0, 1, 2, 40, 1000, 2047, 2048, 2049, Q], lanes)
    max_active = int(rng.choice([1, 30, 900, 3000]))
    return SimpleNamespace(
        lanes=lanes, Q=Q, degrees=degrees, e_offsets=np.concatenate([[0], np.cumsum(degrees)]).astype(np.int32),
        counts=counts, modes=np.where(rng.random(lanes) < 0.8, layout.MODE_EMIT, layout.MODE_IDLE),
        channels=rng.permutation(lanes), states=rng.integers(0, S, (lanes, Q)).astype(np.int32),
        costs=np.stack([_costs(rng, Q, (seed + lane) % 6) for lane in range(lanes)]),
        beam=np.float32(rng.choice([0.5, 3.0, 15.0])), max_active=max_active,
        min_active=int(rng.choice([0, 1, 20, min(200, max_active), max_active])))


@pytest.mark.parametrize("seed", range(12))
def test_each_lane_s_cutoff_and_degree_scan_are_the_cpu_s(cupy_module, seed):
    xp = cupy_module
    c = _case(seed)
    params = np.zeros((c.lanes, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_MODE] = c.modes
    params[:, layout.P_CHANNEL] = c.channels
    ch_count = np.zeros((c.lanes, layout.CHANNEL_COUNTERS), np.int32)
    ch_count[c.channels, layout.CH_NTOK] = c.counts
    untouched = np.full((c.lanes, layout.LANE_COUNTERS), -5, np.int32)
    d = SimpleNamespace(params=xp.asarray(params), counters=xp.asarray(untouched), ch_state=xp.asarray(c.states),
                        ch_cost=xp.asarray(c.costs), ch_count=xp.asarray(ch_count), e_offsets=xp.asarray(c.e_offsets),
                        deg_scan=xp.asarray(np.full((c.lanes, c.Q + 1), -7, np.int64)),
                        hash=xp.zeros((c.lanes, 2, layout.HASH_SLOT_INTS), np.int32),
                        tok_state=xp.zeros((c.lanes, c.Q), np.int32), tok_slot=xp.zeros((c.lanes, c.Q), np.int32))
    if xp.__name__ != "cupy" and seed % 2:
        xp.schedule(True, seed=seed)  # emulator: preemptive schedules of the threads
    K.frame_prologue(d, SimpleNamespace(lanes=c.lanes, Q=c.Q, H=2), 0, float(c.beam), c.max_active, c.min_active,
                     float(BEAM_DELTA))
    counters, deg_scan = xp.asnumpy(d.counters), xp.asnumpy(d.deg_scan)
    for lane in range(c.lanes):
        if c.modes[lane] != layout.MODE_EMIT:
            assert np.all(counters[lane] == -5) and np.all(deg_scan[lane] == -7)
            continue
        n = c.counts[lane]
        costs, states = c.costs[c.channels[lane], :n], c.states[c.channels[lane], :n]
        cutoff, adaptive = layout.gpu_cutoff(costs, c.beam, c.max_active, c.min_active, BEAM_DELTA)
        got = counters[lane, [layout.C_CUTOFF, layout.C_ADAPTIVE]].view(np.float32)
        assert got.tobytes() == np.float32([cutoff, adaptive]).tobytes(), (lane, n)
        expanded = costs <= cutoff
        out_degrees = np.where(expanded, c.degrees[states], 0)
        assert np.array_equal(deg_scan[lane, :n + 1], np.concatenate([[0], np.cumsum(out_degrees)]))
        assert np.all(deg_scan[lane, n + 1:] == -7)
        assert counters[lane, layout.C_EXPANDED] == expanded.sum()


def test_the_cases_select_for_max_and_min_active_over_narrow_wide_and_single_key_ranges():
    """The lanes above take the radix select for max_active and for min_active
    (the counts of gpu_cutoff's conditions), over keys that share their top 8
    bits, keys that do not, and keys all equal (no pass at all)."""
    seen = set()
    for seed in range(12):
        c = _case(seed)
        for lane in np.flatnonzero(c.modes == layout.MODE_EMIT):
            n = c.counts[lane]
            costs = c.costs[c.channels[lane], :n]
            if n < 2:
                continue
            beam_cutoff = np.float32(costs.min() + c.beam)
            by_max = n > c.max_active and np.count_nonzero(costs < beam_cutoff) > c.max_active
            by_min = not by_max and n > c.min_active > 0 and np.count_nonzero(costs <= beam_cutoff) <= c.min_active
            keys = cost_keys(costs)
            top = int(keys.min() ^ keys.max()).bit_length() - 1
            span = "equal" if top < 0 else "narrow" if top < 24 else "wide"
            seen |= {("max" if by_max else "min", span)} if by_max or by_min else set()
    assert {("max", "narrow"), ("max", "wide"), ("max", "equal"), ("min", "narrow"), ("min", "wide")} <= seen, seen


@pytest.mark.parametrize("beam", [0.75, 16.0])
def test_a_starting_lane_makes_the_start_token_under_its_tightened_beam(cupy_module, beam):
    """MODE_START lanes (the CPU's start_search): counters reset (C_BEST_EMIT "none"), one token, the start
    state at cost 0, dirty so that its epsilon arcs are followed, in the slot the CPU's probing gives; the
    cutoff 0, the adaptive beam the beam, and the bound the beam tightened by the lane's overflow retries
    (common.cuh: beam / 2^P_TIGHTEN; from TIGHTEN_LAST on the next float above 0, which keeps cost 0 only)."""
    xp = cupy_module
    tighten = np.array([0, 1, 5, layout.TIGHTEN_LAST - 1, layout.TIGHTEN_LAST, layout.TIGHTEN_LAST + 3])
    lanes, Q, H, start = tighten.size, 8, 16, 11
    params = np.zeros((lanes, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_MODE] = layout.MODE_START
    params[:, layout.P_TIGHTEN] = tighten
    hash_ = np.zeros((lanes, H, layout.HASH_SLOT_INTS), np.int32)
    hash_[..., 0], hash_[..., 1], hash_[..., 3] = -1, np.int32(layout.KEY_NONE.view(np.int32)), -1
    d = SimpleNamespace(params=xp.asarray(params),
                        counters=xp.asarray(np.full((lanes, layout.LANE_COUNTERS), -5, np.int32)),
                        ch_state=xp.zeros((lanes, Q), np.int32), ch_cost=xp.zeros((lanes, Q), np.float32),
                        ch_count=xp.zeros((lanes, layout.CHANNEL_COUNTERS), np.int32),
                        e_offsets=xp.zeros(start + 2, np.int32), deg_scan=xp.zeros((lanes, Q + 1), np.int64),
                        hash=xp.asarray(hash_), tok_state=xp.asarray(np.full((lanes, Q), -1, np.int32)),
                        tok_slot=xp.asarray(np.full((lanes, Q), -1, np.int32)))
    K.frame_prologue(d, SimpleNamespace(lanes=lanes, Q=Q, H=H), start, beam, 7, 0, 0.5)
    counters, table = xp.asnumpy(d.counters), xp.asnumpy(d.hash)
    tok_state, tok_slot = xp.asnumpy(d.tok_state), xp.asnumpy(d.tok_slot)
    slot = int(_probe(np.ascontiguousarray(hash_[0, :, 0]), np.int32(start)))
    for lane, t in enumerate(tighten):
        want = np.zeros(layout.LANE_COUNTERS, np.int32)
        want[layout.C_NTOK] = 1
        want[layout.C_BEST_EMIT] = layout.KEY_NONE.view(np.int32)
        b = np.float32(beam)
        bound = b if t == 0 else np.float32(np.ldexp(b, -t)) if t < layout.TIGHTEN_LAST else np.nextafter(
            np.float32(0), np.float32(1))
        want[[layout.C_CUTOFF, layout.C_ADAPTIVE, layout.C_BOUND]] = np.float32([0, beam, bound]).view(np.int32)
        assert np.array_equal(counters[lane], want), (lane, t)
        assert tok_state[lane, 0] == start and tok_slot[lane, 0] == slot
        assert table[lane, slot, :3].tolist() == [start, int(cost_keys(np.float32([0]))[0].view(np.int32)), 1]
