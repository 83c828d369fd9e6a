// Emitting expansion, one thread per arc of the expanded tokens of every lane
// (grid: blocks_per_lane x lanes; each block serves one lane). Arc number i of
// a lane belongs to the previous-frame token k with deg_scan[k] <= i <
// deg_scan[k + 1] (binary search), and is its (i - deg_scan[k])-th emitting arc.
//
// emit_bound: the cheapest candidate (cost + ac) + weight (the CPU's first pass).
// emit_expand: bound = cheapest + adaptive beam; every arc below it makes or
// lowers the token of its next state (hash map, atomicMin on the cost key) and
// adds a link (the CPU's second pass).
#include "common.cuh"

#define EMIT_THREADS 256

__device__ __forceinline__ int source_token(const long long* scan, int n, long long i) {
    int lo = 0, hi = n;  // largest k in [0, n) with scan[k] <= i (scan[0] = 0 <= i)
    while (hi - lo > 1) {
        int mid = (lo + hi) >> 1;
        if (scan[mid] <= i) lo = mid; else hi = mid;
    }
    return lo;
}

extern "C" __global__ void __launch_bounds__(EMIT_THREADS)
emit_bound(const long long* params, int* counters, const int* ch_state, const float* ch_cost,
           const int* ch_count, int Q, const long long* deg_scan, const int* e_offsets, const float* weight,
           const void* columns, int columns16, float acoustic_scale) {
    const int lane = blockIdx.y;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (p[P_MODE] != MODE_EMIT) return;
    const int ch = (int)p[P_CHANNEL];
    const int n = ch_count[(long long)ch * CHANNEL_COUNTERS + CH_NTOK];
    const long long* scan = deg_scan + (long long)lane * (Q + 1);
    const int* states = ch_state + (long long)ch * Q;
    const float* costs = ch_cost + (long long)ch * Q;
    const long long total = scan[n];
    unsigned best = KEY_NONE;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int k = source_token(scan, n, i);
        int a = e_offsets[states[k]] + (int)(i - scan[k]);
        float ac = arc_acoustic(p, columns, columns16, a, acoustic_scale);
        float c = __fadd_rn(__fadd_rn(costs[k], ac), weight[a]);
        unsigned key = cost_key(c);
        best = key < best ? key : best;
    }
    best = warp_min(best);
    if ((threadIdx.x & 31) == 0 && best != KEY_NONE)
        atomicMin((unsigned*)(counters + (long long)lane * LANE_COUNTERS + C_BEST_EMIT), best);
}

extern "C" __global__ void __launch_bounds__(EMIT_THREADS)
emit_expand(const long long* params, int* counters, const int* ch_state, const float* ch_cost,
            const int* ch_count, int Q, const long long* deg_scan, const int* e_offsets, const int* nextstate,
            const float* weight, const void* columns, int columns16, float acoustic_scale, int* hash,
            int H, int* tok_state, int* tok_slot, int X, int* link_src, int* link_dst, int* link_arc,
            float* link_ac) {
    const int lane = blockIdx.y;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (p[P_MODE] != MODE_EMIT) return;
    int* ctr = counters + (long long)lane * LANE_COUNTERS;
    const int ch = (int)p[P_CHANNEL];
    const int n = ch_count[(long long)ch * CHANNEL_COUNTERS + CH_NTOK];
    const long long* scan = deg_scan + (long long)lane * (Q + 1);
    const int* states = ch_state + (long long)ch * Q;
    const float* costs = ch_cost + (long long)ch * Q;
    const long long total = scan[n];

    const unsigned best_key = (unsigned)ctr[C_BEST_EMIT];
    const float inf = __int_as_float(0x7F800000);
    const float best = best_key == KEY_NONE ? inf : key_cost(best_key);
    const float bound = tightened_bound(best, __int_as_float(ctr[C_ADAPTIVE]), p[P_TIGHTEN]);
    if (blockIdx.x == 0 && threadIdx.x == 0) ctr[C_BOUND] = __float_as_int(bound);

    HashSlot* table = lane_hash(hash, lane, H);
    int* lane_tok_state = tok_state + (long long)lane * Q;
    int* lane_tok_slot = tok_slot + (long long)lane * Q;
    const long long lx = (long long)lane * X;

    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int k = source_token(scan, n, i);
        int a = e_offsets[states[k]] + (int)(i - scan[k]);
        float ac = arc_acoustic(p, columns, columns16, a, acoustic_scale);
        float c = __fadd_rn(__fadd_rn(costs[k], ac), weight[a]);
        if (c < bound) {
            // (no fences: the tokens and dirty flags are read by later launches only, see common.cuh)
            int slot = hash_insert<false>(table, H, nextstate[a], ctr, Q, lane_tok_state, lane_tok_slot);
            if (slot >= 0) lower_cost<false>(table + slot, cost_key(c));
            int l = warp_increment(ctr + C_NLINK);
            if (l < X) {
                link_src[lx + l] = k;
                link_dst[lx + l] = slot;  // a hash slot until resolve_links
                link_arc[lx + l] = a;
                link_ac[lx + l] = ac;
            } else {
                atomicOr(ctr + C_OVERFLOW, OVF_LINKS);
            }
        }
    }
}
