// Frame prologue, one CTA per lane: resets the lane's counters, then
//  * MODE_START: makes the start token (token 0, cost 0) and sets the bound to
//    the beam (the CPU's start_search);
//  * MODE_EMIT: the cutoff over the previous frame's tokens exactly as the
//    CPU's _cutoff (Kaldi's GetCutoff: beam, max_active, min_active, with the
//    exact nth smallest cost by a radix select over cost keys, the CPU's too:
//    wfst/cost_select.py), then the exclusive prefix sum of the expanded
//    tokens' emitting out-degrees (deg_scan[0..n], 64-bit: deg_scan[n] is the
//    lane's arc count).
#include "common.cuh"

#define PROLOGUE_THREADS 256
#define SCAN_ITEMS 8  // runs of 32 tokens per warp in a round of the out-degree scan
static_assert(PROLOGUE_THREADS >= 256, "radix_select takes one bin per thread");

// the k-th smallest (0-based) key of costs[0..n), n > k, whose keys all lie in [lo, hi]: 8-bit radix passes over
// the bits from the highest where lo and hi differ down (every key shares those above it, so a pass over them
// would put every key in one bin: one shared counter that every thread adds to in turn); one bin per thread
__device__ unsigned radix_select(const float* costs, int n, int k, unsigned lo, unsigned hi, unsigned* hist,
                                 unsigned* shared_state, long long* scan_scratch) {
    if (lo == hi) return lo;
    const int top = 31 - __clz(lo ^ hi);
    unsigned mask = top == 31 ? 0u : ~0u << (top + 1);  // the bits decided so far
    unsigned prefix = lo & mask;
    for (int low = top - 7; low > -8; low -= 8) {  // the digit: bits [shift, shift + 8) (the last may overlap)
        const int shift = low < 0 ? 0 : low;
        if (threadIdx.x < 256) hist[threadIdx.x] = 0u;
        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            const unsigned key = cost_key(costs[i]);
            if ((key & mask) == prefix) atomicAdd(hist + ((key >> shift) & 255u), 1u);
        }
        __syncthreads();
        const long long count = threadIdx.x < 256 ? hist[threadIdx.x] : 0;
        long long total;
        const long long below = block_exclusive_scan(count, scan_scratch, &total);
        if (below <= k && k < below + count) {  // the bin of the k-th key
            shared_state[0] = prefix | ((unsigned)threadIdx.x << shift);
            shared_state[1] = (unsigned)(k - below);
        }
        __syncthreads();
        prefix = shared_state[0];
        k = (int)shared_state[1];
        mask |= 255u << shift;
        __syncthreads();
    }
    return prefix;
}

// how many of costs[0..n) are < limit (strict) or <= limit
__device__ int count_costs(const float* costs, int n, float limit, int strict, int* scratch) {
    int c = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float x = costs[i];
        c += strict ? (x < limit) : (x <= limit);
    }
    return block_sum(c, scratch);
}

extern "C" __global__ void __launch_bounds__(PROLOGUE_THREADS)
frame_prologue(const long long* params, int* counters, const int* ch_state, const float* ch_cost,
               const int* ch_count, int Q, const int* e_offsets, long long* deg_scan, int* hash, int H,
               int* tok_state, int* tok_slot, int start_state, float beam, int max_active, int min_active,
               float beam_delta) {
    __shared__ unsigned hist[256];
    __shared__ unsigned select_state[2];
    __shared__ unsigned umin_scratch[32];
    __shared__ int sum_scratch[32];
    __shared__ long long scan_scratch[32];

    const int lane = blockIdx.x;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    const long long mode = p[P_MODE];
    if (mode != MODE_START && mode != MODE_EMIT) return;
    int* ctr = counters + (long long)lane * LANE_COUNTERS;
    long long* scan = deg_scan + (long long)lane * (Q + 1);
    if (threadIdx.x == 0) {
        for (int i = 0; i < LANE_COUNTERS; ++i) ctr[i] = 0;
        ctr[C_BEST_EMIT] = (int)KEY_NONE;
    }
    __syncthreads();
    if (mode == MODE_START) {
        if (threadIdx.x == 0) {
            HashSlot* table = lane_hash(hash, lane, H);
            int* lane_tok_state = tok_state + (long long)lane * Q;
            int* lane_tok_slot = tok_slot + (long long)lane * Q;
            int slot = hash_insert(table, H, start_state, ctr, Q, lane_tok_state, lane_tok_slot);
            if (slot >= 0) {  // an empty table always has room (H >= 2)
                table[slot].cost = cost_key(0.0f);
                table[slot].dirty = 1;
            }
            ctr[C_CUTOFF] = __float_as_int(0.0f);
            ctr[C_ADAPTIVE] = __float_as_int(beam);
            ctr[C_BOUND] = __float_as_int(tightened_bound(0.0f, beam, p[P_TIGHTEN]));
            scan[0] = 0;
        }
        return;
    }

    const int ch = (int)p[P_CHANNEL];
    const int n = ch_count[(long long)ch * CHANNEL_COUNTERS + CH_NTOK];
    const int* states = ch_state + (long long)ch * Q;
    const float* costs = ch_cost + (long long)ch * Q;

    // 1. cutoff (wfst/cpu_search.py: _cutoff)
    unsigned best_key = KEY_NONE, flipped_worst = KEY_NONE;  // the least key, and the greatest one's complement
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const unsigned k = cost_key(costs[i]);
        best_key = k < best_key ? k : best_key;
        flipped_worst = ~k < flipped_worst ? ~k : flipped_worst;
    }
    best_key = block_min(best_key, umin_scratch);
    const unsigned worst_key = ~block_min(flipped_worst, umin_scratch);
    const float inf = __int_as_float(0x7F800000);
    const float best = n > 0 ? key_cost(best_key) : inf;
    const float beam_cutoff = __fadd_rn(best, beam);
    float cutoff = beam_cutoff, adaptive = beam;
    bool done = false;
    if (n > max_active) {
        // sorted[max_active] < beam_cutoff  <=>  more than max_active costs are < beam_cutoff
        if (count_costs(costs, n, beam_cutoff, 1, sum_scratch) > max_active) {
            const float m =
                key_cost(radix_select(costs, n, max_active, best_key, worst_key, hist, select_state, scan_scratch));
            cutoff = m;
            adaptive = __fadd_rn(__fsub_rn(m, best), beam_delta);
            done = true;
        }
    }
    if (!done && n > min_active) {
        // sorted[min_active] > beam_cutoff  <=>  at most min_active costs are <= beam_cutoff
        if (min_active > 0 && count_costs(costs, n, beam_cutoff, 0, sum_scratch) <= min_active) {
            const float m =
                key_cost(radix_select(costs, n, min_active, best_key, worst_key, hist, select_state, scan_scratch));
            cutoff = m;
            adaptive = __fadd_rn(__fsub_rn(m, best), beam_delta);
        }
    } else if (!done && inf > beam_cutoff) {
        // at most min_active tokens: Kaldi's min_active cutoff stays +inf (keep all)
        cutoff = inf;
        adaptive = __fadd_rn(__fsub_rn(inf, best), beam_delta);
    }
    if (threadIdx.x == 0) {
        ctr[C_CUTOFF] = __float_as_int(cutoff);
        ctr[C_ADAPTIVE] = __float_as_int(adaptive);
    }

    // 2. exclusive prefix sum of the expanded tokens' emitting out-degrees: per round, each warp takes
    // SCAN_ITEMS runs of 32 consecutive tokens in turn (warp scans), then one block scan places the warps
    long long carry = 0;
    int expanded = 0;
    const int me = threadIdx.x & 31;
    for (int base = 0; base < n; base += blockDim.x * SCAN_ITEMS) {
        const int first = base + (threadIdx.x >> 5) * 32 * SCAN_ITEMS + me;
        long long before[SCAN_ITEMS];  // the warp's out-degrees before each of this thread's tokens
        long long warp_total = 0;
#pragma unroll
        for (int j = 0; j < SCAN_ITEMS; ++j) {
            const int i = first + 32 * j;
            long long degree = 0;
            if (i < n && costs[i] <= cutoff) {
                const int s = states[i];
                degree = (long long)(e_offsets[s + 1] - e_offsets[s]);
                expanded += 1;
            }
            const long long through = warp_inclusive_scan(degree);
            before[j] = warp_total + through - degree;
            warp_total += __shfl_sync(0xFFFFFFFFu, through, 31);
        }
        long long total;
        const long long at = carry + block_exclusive_scan(me == 31 ? warp_total : 0, scan_scratch, &total);
#pragma unroll
        for (int j = 0; j < SCAN_ITEMS; ++j)
            if (first + 32 * j < n) scan[first + 32 * j] = at + before[j];
        carry += total;
    }
    expanded = block_sum(expanded, sum_scratch);
    if (threadIdx.x == 0) {
        scan[n] = carry;
        ctr[C_EXPANDED] = expanded;
    }
}
