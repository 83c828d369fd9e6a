// Emitting expansion, one thread per arc of the expanded tokens of every lane,
// the lanes' arcs in one flat range (spans.cu: emit_spans), so the blocks of
// emit_bound and emit_expand take equal shares of the step's arcs, whichever
// lanes they belong to. Arc number
// i of a lane belongs to the previous-frame token k with deg_scan[k] <= i <
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

// the previous frame's tokens (from the channel) a lane expands
struct EmitLane {
    const long long* p;
    int* ctr;
    const long long* scan;  // deg_scan: n + 1 entries
    const int* states;
    const float* costs;
    int n;
};

__device__ __forceinline__ EmitLane emit_lane(int lane, const long long* params, int* counters, const int* ch_state,
                                              const float* ch_cost, const int* ch_count, int Q,
                                              const long long* deg_scan) {
    EmitLane e;
    e.p = params + (long long)lane * LANE_PARAMS;
    e.ctr = counters + (long long)lane * LANE_COUNTERS;
    const long long ch = e.p[P_CHANNEL];
    e.n = ch_count[ch * CHANNEL_COUNTERS + CH_NTOK];
    e.scan = deg_scan + (long long)lane * (Q + 1);
    e.states = ch_state + ch * Q;
    e.costs = ch_cost + ch * Q;
    return e;
}

// the lane's emitting arc j, its source token, acoustic cost and candidate cost
__device__ __forceinline__ int emit_arc(const EmitLane& e, long long j, const int* e_offsets, const void* columns,
                                        int columns16, float acoustic_scale, const float* weight, int* k_out,
                                        float* ac_out, float* c_out) {
    int k = source_token(e.scan, e.n, j);
    int a = e_offsets[e.states[k]] + (int)(j - e.scan[k]);
    float ac = arc_acoustic(e.p, columns, columns16, a, acoustic_scale);
    *k_out = k;
    *ac_out = ac;
    *c_out = __fadd_rn(__fadd_rn(e.costs[k], ac), weight[a]);
    return a;
}

// min of `best` over the warp into the lane's C_BEST_EMIT (the warp serves one lane)
__device__ __forceinline__ void publish_best(unsigned best, int* ctr) {
    best = warp_min(best);
    if ((threadIdx.x & 31) == 0 && best != KEY_NONE) atomicMin((unsigned*)(ctr + C_BEST_EMIT), best);
}

extern "C" __global__ void __launch_bounds__(EMIT_THREADS)
emit_bound(const long long* params, int* counters, const int* ch_state, const float* ch_cost,
           const int* ch_count, int Q, const long long* deg_scan, const int* e_offsets, const float* weight,
           const void* columns, int columns16, float acoustic_scale, const long long* spans, int lanes) {
    EmitLane e;
    e.ctr = 0;
    unsigned best = KEY_NONE;
    each_span_item(spans, lanes, [&](int lane) {
        if (e.ctr) publish_best(best, e.ctr);  // the lane left behind's
        best = KEY_NONE;
        e = emit_lane(lane, params, counters, ch_state, ch_cost, ch_count, Q, deg_scan);
        return true;
    }, [&](long long j) {
        int k;
        float ac, c;
        emit_arc(e, j, e_offsets, columns, columns16, acoustic_scale, weight, &k, &ac, &c);
        unsigned key = cost_key(c);
        best = key < best ? key : best;
    });
    if (e.ctr) publish_best(best, e.ctr);
}

// the bound of a lane's new frame: its cheapest candidate plus the adaptive beam (tightened after overflows)
__device__ __forceinline__ float emit_bound_of(const long long* p, const int* ctr) {
    const unsigned best_key = (unsigned)ctr[C_BEST_EMIT];
    const float best = best_key == KEY_NONE ? __int_as_float(0x7F800000) : key_cost(best_key);
    return tightened_bound(best, __int_as_float(ctr[C_ADAPTIVE]), p[P_TIGHTEN]);
}

extern "C" __global__ void __launch_bounds__(EMIT_THREADS)
emit_expand(const long long* params, int* counters, const int* ch_state, const float* ch_cost,
            const int* ch_count, int Q, const long long* deg_scan, const int* e_offsets, const int* nextstate,
            const float* weight, const void* columns, int columns16, float acoustic_scale, int* hash,
            int H, int* tok_state, int* tok_slot, int X, int* link_src, int* link_dst, int* link_arc,
            float* link_ac, const long long* spans, int lanes) {
    each_lane(lanes, [&](int lane) {  // every expanding lane's bound
        const long long* p = params + (long long)lane * LANE_PARAMS;
        int* ctr = counters + (long long)lane * LANE_COUNTERS;
        if (p[P_MODE] == MODE_EMIT) ctr[C_BOUND] = __float_as_int(emit_bound_of(p, ctr));
    });
    EmitLane e;
    float bound = 0.0f;
    HashSlot* table = 0;
    long long lq = 0, lx = 0;
    each_span_item(spans, lanes, [&](int lane) {
        e = emit_lane(lane, params, counters, ch_state, ch_cost, ch_count, Q, deg_scan);
        bound = emit_bound_of(e.p, e.ctr);
        table = lane_hash(hash, lane, H);
        lq = (long long)lane * Q;
        lx = (long long)lane * X;
        return true;
    }, [&](long long j) {
        int k;
        float ac, c;
        int a = emit_arc(e, j, e_offsets, columns, columns16, acoustic_scale, weight, &k, &ac, &c);
        if (!(c < bound)) return;
        // (no fences: the tokens and dirty flags are read by later launches only, see common.cuh)
        int slot = hash_insert<false>(table, H, nextstate[a], e.ctr, Q, tok_state + lq, tok_slot + lq);
        if (slot >= 0) lower_cost<false>(table + slot, cost_key(c));
        int l = warp_increment(e.ctr + C_NLINK);
        if ((unsigned)l < (unsigned)X) {  // (a counter past 2^31 reads as overflow)
            link_src[lx + l] = k;
            link_dst[lx + l] = slot;  // a hash slot until resolve_links
            link_arc[lx + l] = a;
            link_ac[lx + l] = ac;
        } else {
            atomicOr(e.ctr + C_OVERFLOW, OVF_LINKS);
        }
    });
}
