"""The CPU emulator of CUDA kernels (tests/cuda_emulator) is trustworthy: the
block and warp helpers of common.cuh give numpy's answers for several block
sizes under FIFO and random preemptive schedules, concurrent hash insertions
give one slot and one token per state, a grid's blocks run in a shuffled
order under preemption, a barrier's OR reaches every thread, float16 reads
are exact, and bad
launches (wrong argument types, a deadlock) raise instead of running."""

import numpy as np
import pytest

import cuda_kernels
from wfst import cuda_layout as layout

from .cuda_emulator import build, fake_cupy

try:
    build.compiler()
except build.EmulatorUnavailable as error:
    pytest.skip(str(error), allow_module_level=True)

TEST_KERNELS = (cuda_kernels.DIRECTORY / "common.cuh").read_text() + r"""
extern "C" __global__ void block_helpers(const long long* values, int n, long long* prefix, long long* totals,
                                         int* slots, int* counter) {
    __shared__ long long scan_scratch[32];
    __shared__ unsigned min_scratch[32];
    __shared__ int sum_scratch[32];
    long long v = threadIdx.x < n ? values[threadIdx.x] : 0;
    long long total;
    long long before = block_exclusive_scan(v, scan_scratch, &total);
    unsigned m = block_min(threadIdx.x < n ? (unsigned)v : KEY_NONE, min_scratch);
    int s = block_sum(threadIdx.x < n ? (int)v : 0, sum_scratch);
    if (threadIdx.x < n) prefix[threadIdx.x] = before;
    if (threadIdx.x < n && (v & 1)) slots[threadIdx.x] = warp_increment(counter);
    if (threadIdx.x == 0) {
        totals[0] = total;
        totals[1] = m;
        totals[2] = s;
    }
}

extern "C" __global__ void insert_states(const int* states, int n, int* hash, int H, int* counters, int Q,
                                         int* tok_state, int* tok_slot, int* slot_of) {
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        slot_of[i] = hash_insert(lane_hash(hash, 0, H), H, states[i], counters, Q, tok_state, tok_slot);
}

extern "C" __global__ void read_half(const long long* params, const int* columns, int n, float* out) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = -arc_acoustic(params, columns, 0, i, 1.0f);
}

extern "C" __global__ void shuffle_after_exit(int* out) {
    if ((threadIdx.x & 31) >= 16) return;
    out[threadIdx.x] = __shfl_down_sync(0xFFFFFFFFu, (int)threadIdx.x, 1);
}

extern "C" __global__ void block_order(int* order, int* counter) {
    if (threadIdx.x == 0) order[atomicAdd(counter, 1)] = blockIdx.x + gridDim.x * blockIdx.y;
}

extern "C" __global__ void barrier_or(const int* votes, int rounds, int* out) {
    for (int r = 0; r < rounds; ++r)
        out[r * blockDim.x + threadIdx.x] = __syncthreads_or(votes[r * blockDim.x + threadIdx.x]);
}

extern "C" __global__ void partial_mask(int* out) {
    out[threadIdx.x] = __shfl_sync(0x0000FFFFu, (int)threadIdx.x, 0);
}

extern "C" __global__ void mixed_barriers(int* out) {
    int v = threadIdx.x;
    if (threadIdx.x == 0) __syncthreads();
    else v = __shfl_sync(0xFFFFFFFFu, v, 0);
    out[threadIdx.x] = v;
}
"""


@pytest.fixture(scope="module")
def kernels():
    library, signatures = build.build(TEST_KERNELS)
    fake_cupy._libraries[library._name] = library
    yield {name: build.EmulatedKernel(library, name, params) for name, params in signatures.items()}
    fake_cupy.schedule(False)


def _device(array):
    return fake_cupy.asarray(array)


@pytest.mark.parametrize("threads", [32, 64, 256, 1024])
@pytest.mark.parametrize("preempt", [False, True])
def test_block_helpers_equal_numpy(kernels, threads, preempt):
    fake_cupy.schedule(preempt, seed=threads)
    rng = np.random.default_rng(threads)
    for n in {1, threads // 2 + 3, threads}:
        n = min(n, threads)
        values = rng.integers(0, 1 << 20, threads).astype(np.int64)
        prefix, totals = fake_cupy.zeros(threads, np.int64), fake_cupy.zeros(3, np.int64)
        slots, counter = fake_cupy.zeros(threads, np.int32) - 1, fake_cupy.zeros(1, np.int32)
        kernels["block_helpers"]((1,), (threads,), (_device(values), np.int32(n), prefix, totals, slots, counter))
        v = values[:n]
        assert np.array_equal(prefix[:n], np.cumsum(v) - v)
        assert list(totals) == [v.sum(), v.min(), np.int32(v.sum())]
        odd = np.flatnonzero(v & 1)
        assert counter[0] == odd.size
        assert sorted(slots[odd]) == list(range(odd.size))  # warp_increment hands out each index once


@pytest.mark.parametrize("seed", range(6))
def test_concurrent_hash_insertions_make_one_token_per_state(kernels, seed):
    fake_cupy.schedule(True, seed=seed)
    rng = np.random.default_rng(seed)
    states = rng.integers(0, 40, 300).astype(np.int32)
    H, Q = 64, 64
    hash_slots = fake_cupy.zeros((H, layout.HASH_SLOT_INTS), np.int32) - 1  # (the fields beside the key unused)
    counters = fake_cupy.zeros(layout.LANE_COUNTERS, np.int32)
    tok_state, tok_slot = fake_cupy.zeros(Q, np.int32), fake_cupy.zeros(Q, np.int32) - 1
    slot_of = fake_cupy.zeros(states.size, np.int32)
    kernels["insert_states"]((1,), (128,), (_device(states), np.int32(states.size), hash_slots, np.int32(H), counters,
                                            np.int32(Q), tok_state, tok_slot, slot_of))
    distinct = np.unique(states)
    n = counters[layout.C_NTOK]
    assert n == distinct.size and counters[layout.C_OVERFLOW] == 0
    assert sorted(tok_state[:n]) == list(distinct)
    keys = hash_slots[:, 0]
    assert np.array_equal(keys[tok_slot[:n]], tok_state[:n])
    assert np.array_equal(keys[slot_of], states)  # every caller got its state's slot


def test_float16_scores_are_read_exactly(kernels):
    bits = np.arange(1 << 16, dtype=np.uint16)
    halves = bits.view(np.float16)
    keep = np.isfinite(halves)
    halves = halves[keep]
    params = np.zeros(layout.LANE_PARAMS, np.int64)
    scores = _device(halves)
    params[layout.P_SCORES] = scores.data.ptr
    params[layout.P_STRIDE] = halves.size
    params[layout.P_DTYPE] = 1
    out = fake_cupy.zeros(halves.size, np.float32)
    kernels["read_half"]((1,), (256,), (_device(params), _device(np.arange(halves.size, dtype=np.int32)),
                                        np.int32(halves.size), out))
    assert np.array_equal(np.asarray(out).view(np.uint32), halves.astype(np.float32).view(np.uint32))


def test_blocks_run_in_grid_order_or_shuffled_under_preemption(kernels):
    """A GPU runs a grid's blocks in any order: with preemption on, the
    emulator runs every block once, in a seeded order that differs between
    seeds, so a kernel counting on an earlier block's writes fails there."""
    def order(preempt, seed=0):
        fake_cupy.schedule(preempt, seed=seed)
        out, counter = fake_cupy.zeros(12, np.int32) - 1, fake_cupy.zeros(1, np.int32)
        kernels["block_order"]((4, 3), (32,), (out, counter))
        return tuple(np.asarray(out).tolist())

    assert order(False) == tuple(range(12))
    shuffled = {order(True, seed) for seed in range(8)}
    assert all(sorted(o) == list(range(12)) for o in shuffled)
    assert len(shuffled) == 8 and tuple(range(12)) not in shuffled
    assert order(True, 5) == order(True, 5)  # one seed, one order


@pytest.mark.parametrize("preempt", [False, True])
def test_barrier_or_tells_every_thread_whether_any_voted(kernels, preempt):
    fake_cupy.schedule(preempt, seed=4)
    threads, rounds = 96, 6
    votes = np.zeros((rounds, threads), np.int32)
    votes[1, 95] = 1  # one thread, the last
    votes[2] = 1
    votes[4, 0] = 7  # any nonzero
    votes[4, 40] = -1
    out = fake_cupy.zeros((rounds, threads), np.int32) - 1
    kernels["barrier_or"]((2,), (threads,), (_device(votes), np.int32(rounds), out))
    want = np.repeat([[0], [1], [1], [0], [1], [0]], threads, axis=1)  # no vote is left for the next barrier
    assert np.array_equal(np.asarray(out) != 0, want)


def test_a_deadlock_raises(kernels):
    with pytest.raises(build.KernelLaunchError, match="deadlock"):
        kernels["mixed_barriers"]((1,), (64,), (fake_cupy.zeros(64, np.int32),))


@pytest.mark.parametrize("preempt", [False, True])
def test_undefined_warp_collectives_raise(kernels, preempt):
    fake_cupy.schedule(preempt, seed=3)
    with pytest.raises(build.KernelLaunchError, match="exited"):
        kernels["shuffle_after_exit"]((2,), (64,), (fake_cupy.zeros(64, np.int32),))
    with pytest.raises(build.KernelLaunchError, match="warp mask"):
        kernels["partial_mask"]((1,), (32,), (fake_cupy.zeros(32, np.int32),))
    kernels["block_helpers"]((1,), (32,), (_device(np.arange(32, dtype=np.int64)), np.int32(32),  # still usable
                                           fake_cupy.zeros(32, np.int64), fake_cupy.zeros(3, np.int64),
                                           fake_cupy.zeros(32, np.int32), fake_cupy.zeros(1, np.int32)))


def test_arguments_are_checked_against_the_signature(kernels):
    out = fake_cupy.zeros(8, np.float32)
    params = _device(np.zeros(layout.LANE_PARAMS, np.int64))
    columns = _device(np.zeros(8, np.int32))
    with pytest.raises(build.KernelLaunchError, match="expected int32"):
        kernels["read_half"]((1,), (32,), (params, columns, 8, out))  # a Python int, not np.int32
    with pytest.raises(build.KernelLaunchError, match="array of int64"):
        kernels["read_half"]((1,), (32,), (params, params, np.int32(8), out))
    with pytest.raises(build.KernelLaunchError, match="device array"):
        kernels["read_half"]((1,), (32,), (params, np.zeros(8, np.int32), np.int32(8), out))
    with pytest.raises(build.KernelLaunchError, match="takes 4 arguments"):
        kernels["read_half"]((1,), (32,), (params, columns))
    with pytest.raises(build.KernelLaunchError, match="geometry"):
        kernels["read_half"]((1,), (48,), (params, columns, np.int32(8), out))
    for grid in [(0,), (1, 65536), (1, 1, 65536), (2**31,)]:  # what a GPU refuses (MAX_LANES keeps y in range)
        with pytest.raises(build.KernelLaunchError, match="a grid of"):
            kernels["read_half"](grid, (32,), (params, columns, np.int32(8), out))


def test_streams_run_queued_work_only_when_it_is_waited_for():
    """A stream's launches and copies wait in its queue until the host or
    another stream waits for them (then in order, after what they wait for);
    outside any stream they run at once; under a seeded schedule some run early."""
    fake_cupy.schedule_streams(None)
    log = []
    a, b = fake_cupy.cuda.Stream(), fake_cupy.cuda.Stream()
    with a:
        fake_cupy._submit(lambda: log.append("a1"))
        first = a.record()
        fake_cupy._submit(lambda: log.append("a2"))
    with b:
        b.wait_event(first)
        fake_cupy._submit(lambda: log.append("b1"))
    source, target = np.arange(4, dtype=np.int32), np.zeros(4, np.int32)
    fake_cupy.cuda.runtime.memcpyAsync(target.ctypes.data, source.ctypes.data, 16, 1, b.ptr)
    fake_cupy._submit(lambda: log.append("now"))
    assert log == ["now"] and not target.any()
    b.synchronize()
    assert log == ["now", "a1", "b1"] and np.array_equal(target, source)
    fake_cupy.cuda.Device().synchronize()
    assert log == ["now", "a1", "b1", "a2"]
    fake_cupy.schedule_streams(1)
    try:
        with a:
            for k in range(40):
                fake_cupy._submit(lambda k=k: log.append(k))
        assert 0 < len(log) - 4 < 40 and log[4:] == list(range(len(log) - 4))  # some ran early, in order
    finally:
        fake_cupy.schedule_streams(None)
        fake_cupy.cuda.Device().synchronize()
