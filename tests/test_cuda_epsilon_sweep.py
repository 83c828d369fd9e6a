"""The grid-wide epsilon sweep (cuda_kernels/epsilon.cu: eps_sweep after
spans.cu's count_spans), on a GPU (marked gpu) and on the CPU emulator: on
lanes of very different token counts, with lanes that do not search among them
and grids of fewer blocks than lanes, one sweep follows the epsilon arcs of
every dirty token below its lane's bound that the lane had when the sweep was
laid out (each arc's result below the bound is in the lane's hash map at that
cost or lower), and leaves the lanes that do not search alone."""

from types import SimpleNamespace

import numpy as np
import pytest

from wfst import cuda_kernels_launch as K
from wfst import cuda_layout as layout
from wfst.cost_select import cost_keys
from wfst.cpu_search import _slot as _probe

pytestmark = pytest.mark.usefixtures("cupy_module")


def _slot(table: np.ndarray, state: int) -> int:
    """The slot of ``state`` in a lane's (H, 4) table, or the empty one where it would go: the CPU search's
    probing (wfst.cpu_search._slot), which is hash_insert's."""
    return int(_probe(np.ascontiguousarray(table[:, 0]), np.int32(state)))


@pytest.mark.parametrize("seed", range(10))
def test_one_sweep_follows_every_dirty_token_s_arcs_in_every_searching_lane(cupy_module, seed):
    xp = cupy_module
    rng = np.random.default_rng(seed)
    lanes, S, Q, H = int(rng.integers(1, 9)), 3000, 2048, 8192
    degrees = np.where(rng.random(S) < 0.4, 0, rng.integers(1, 4, S))
    ne_offsets = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int32)
    nextstate = rng.integers(0, S, ne_offsets[-1]).astype(np.int32)
    weight = rng.exponential(2, ne_offsets[-1]).astype(np.float32)
    modes = rng.choice([layout.MODE_EMIT, layout.MODE_EMIT, layout.MODE_START, layout.MODE_RETRY_SKIP,
                        layout.MODE_IDLE], lanes)
    counts = np.where(rng.random(lanes) < 0.5, rng.integers(0, 700, lanes), rng.integers(0, 5, lanes))
    hash_ = np.zeros((lanes, H, layout.HASH_SLOT_INTS), np.int32)
    hash_[..., 0], hash_[..., 1], hash_[..., 3] = -1, np.int32(layout.KEY_NONE.view(np.int32)), -1
    tok_state, tok_slot = np.full((lanes, Q), -1, np.int32), np.full((lanes, Q), -1, np.int32)
    counters = np.zeros((lanes, layout.LANE_COUNTERS), np.int32)
    costs = np.zeros((lanes, Q), np.float32)
    for lane in range(lanes):
        n = counts[lane]
        states = rng.choice(S, n, replace=False).astype(np.int32)
        costs[lane, :n] = rng.uniform(0, 20, n).astype(np.float32)
        for i, state in enumerate(states):
            slot = _slot(hash_[lane], state)
            hash_[lane, slot, 0] = state
            hash_[lane, slot, 1:3] = cost_keys(costs[lane, i:i + 1]).view(np.int32)[0], rng.random() < 0.8
            tok_state[lane, i], tok_slot[lane, i] = state, slot
        counters[lane, layout.C_NTOK] = n
        counters[lane, layout.C_BOUND] = np.float32(rng.uniform(10, 25)).view(np.int32)
    params = np.zeros((lanes, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_MODE] = modes
    d = SimpleNamespace(params=xp.asarray(params), counters=xp.asarray(counters), ne_offsets=xp.asarray(ne_offsets),
                        nextstate=xp.asarray(nextstate), weight=xp.asarray(weight), hash=xp.asarray(hash_),
                        tok_state=xp.asarray(tok_state), tok_slot=xp.asarray(tok_slot),
                        token_spans=xp.zeros((lanes, 2), np.int64))
    if xp.__name__ != "cupy" and seed % 2:
        xp.schedule(True, seed=seed)  # emulator: preemptive schedules of the threads
    g = SimpleNamespace(lanes=lanes, Q=Q, H=H, blocks_per_lane=int(rng.integers(1, 3)))  # blocks cross lanes
    K.token_spans(d, g)
    K.eps_sweep(d, g)
    table, ctr = xp.asnumpy(d.hash), xp.asnumpy(d.counters)
    followed = 0
    for lane in range(lanes):
        if modes[lane] not in (layout.MODE_START, layout.MODE_EMIT):
            assert np.array_equal(table[lane], hash_[lane]) and np.array_equal(ctr[lane], counters[lane])
            continue
        bound = counters[lane, layout.C_BOUND:layout.C_BOUND + 1].view(np.float32)[0]
        for i in range(counts[lane]):
            s, slot = tok_state[lane, i], tok_slot[lane, i]
            if not (hash_[lane, slot, 2] and costs[lane, i] < bound):
                continue
            for a in range(ne_offsets[s], ne_offsets[s + 1]):
                c = costs[lane, i] + weight[a]
                if c < bound:
                    v = _slot(table[lane], nextstate[a])
                    assert table[lane, v, 0] == nextstate[a] and table[lane, v, 1].view(np.uint32) <= cost_keys(np.float32([c]))[0]
                    followed += 1
        made = ctr[lane, layout.C_NTOK]
        slots = xp.asnumpy(d.tok_slot)[lane, :made]
        assert made >= counts[lane] and np.array_equal(table[lane, slots, 0], xp.asnumpy(d.tok_state)[lane, :made])
    assert followed > 0 or not np.any(np.isin(modes, [layout.MODE_START, layout.MODE_EMIT]) & (counts > 0))
