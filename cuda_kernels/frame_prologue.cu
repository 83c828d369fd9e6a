// Frame prologue, one CTA per lane: resets the lane's counters, then
//  * MODE_START: makes the start token (token 0, cost 0) and sets the bound to
//    the beam (the CPU's start_search);
//  * MODE_EMIT: the cutoff over the previous frame's tokens exactly as the
//    CPU's _cutoff (Kaldi's GetCutoff: beam, max_active, min_active, with the
//    exact nth smallest cost by a radix select over cost keys), then the
//    exclusive prefix sum of the expanded tokens' emitting out-degrees
//    (deg_scan[0..n], 64-bit: deg_scan[n] is the lane's arc count).
#include "common.cuh"

#define PROLOGUE_THREADS 256

// the k-th smallest (0-based) key of costs[0..n), n > k: four 8-bit radix passes
__device__ unsigned radix_select(const float* costs, int n, int k, unsigned* hist, unsigned* shared_state) {
    unsigned prefix = 0u, mask = 0u;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0u;
        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            unsigned key = cost_key(costs[i]);
            if ((key & mask) == prefix) atomicAdd(hist + ((key >> shift) & 255u), 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            unsigned below = 0u;
            unsigned bin = 255u;
            for (unsigned b = 0; b < 256u; ++b) {
                if (below + hist[b] > (unsigned)k) { bin = b; break; }
                below += hist[b];
            }
            shared_state[0] = prefix | (bin << shift);
            shared_state[1] = (unsigned)k - below;
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
    unsigned best_key = KEY_NONE;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        unsigned k = cost_key(costs[i]);
        best_key = k < best_key ? k : best_key;
    }
    best_key = block_min(best_key, umin_scratch);
    const float inf = __int_as_float(0x7F800000);
    const float best = n > 0 ? key_cost(best_key) : inf;
    const float beam_cutoff = __fadd_rn(best, beam);
    float cutoff = beam_cutoff, adaptive = beam;
    bool done = false;
    if (n > max_active) {
        // sorted[max_active] < beam_cutoff  <=>  more than max_active costs are < beam_cutoff
        if (count_costs(costs, n, beam_cutoff, 1, sum_scratch) > max_active) {
            float m = key_cost(radix_select(costs, n, max_active, hist, select_state));
            cutoff = m;
            adaptive = __fadd_rn(__fsub_rn(m, best), beam_delta);
            done = true;
        }
    }
    if (!done && n > min_active) {
        // sorted[min_active] > beam_cutoff  <=>  at most min_active costs are <= beam_cutoff
        if (min_active > 0 && count_costs(costs, n, beam_cutoff, 0, sum_scratch) <= min_active) {
            float m = key_cost(radix_select(costs, n, min_active, hist, select_state));
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

    // 2. exclusive prefix sum of the expanded tokens' emitting out-degrees
    long long carry = 0;
    int expanded = 0;
    for (int base = 0; base < n; base += blockDim.x) {
        int i = base + threadIdx.x;
        long long degree = 0;
        if (i < n && costs[i] <= cutoff) {
            int s = states[i];
            degree = (long long)(e_offsets[s + 1] - e_offsets[s]);
            expanded += 1;
        }
        long long total;
        long long before = block_exclusive_scan(degree, scan_scratch, &total);
        if (i < n) scan[i] = carry + before;
        carry += total;
    }
    expanded = block_sum(expanded, sum_scratch);
    if (threadIdx.x == 0) {
        scan[n] = carry;
        ctr[C_EXPANDED] = expanded;
    }
}
