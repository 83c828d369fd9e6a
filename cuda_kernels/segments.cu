// The end of a frame: lattice segments packed for one device-to-host copy,
// the frontier saved into the lane's channel, the working memory emptied.
//
// lane_offsets (one CTA): exclusive prefix sums over lanes of their token and
//   link counts (lanes that ran this frame), totals[0] tokens, totals[1] links.
// pack_segments: all lanes' segments into one int32 buffer, array by array:
//   tok_state[T] tok_cost[T] tok_best[T] link_src[Lk] link_dst[Lk] link_arc[Lk]
//   link_ac[Lk] link_excess[Lk] (floats as their bits); a lane's part starts at
//   its offsets. A link's excess is (cost[src] + ac + weight[arc]) - cost[dst]
//   in float32, as the CPU search computes it (the source of an emitting link,
//   one of the first C_NEMIT, is in the channel's frontier: saved after this).
// save_frontier: tokens (state, cost) into the channel: the next frame's input.
// reset_lanes: hash slots and token slots back to empty; after an overflow the
//   whole table (an overflowing frame may hold slots no token lists).
#include "common.cuh"

#define SEGMENT_THREADS 256

__device__ __forceinline__ bool ran(const long long* params, int lane) {
    long long mode = params[(long long)lane * LANE_PARAMS + P_MODE];
    return mode == MODE_START || mode == MODE_EMIT;
}

__device__ __forceinline__ int lane_tokens(const int* ctr, int Q) {
    int n = ctr[C_NTOK];
    return n < Q ? n : Q;
}

__device__ __forceinline__ int lane_links(const int* ctr, int X) {
    int n = ctr[C_NLINK];
    return n < X ? n : X;
}

extern "C" __global__ void lane_offsets(const long long* params, int* counters, int lanes, int Q, int X,
                                        long long* totals) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    long long t = 0, k = 0;
    for (int lane = 0; lane < lanes; ++lane) {
        int* ctr = counters + (long long)lane * LANE_COUNTERS;
        if (!ran(params, lane)) continue;
        ctr[C_TOK_OFF] = (int)t;
        ctr[C_LINK_OFF] = (int)k;
        t += lane_tokens(ctr, Q);
        k += lane_links(ctr, X);
    }
    totals[0] = t;
    totals[1] = k;
}

extern "C" __global__ void __launch_bounds__(SEGMENT_THREADS)
pack_segments(const long long* params, const int* counters, const long long* totals, int Q, int X,
              const int* tok_state, const float* tok_cost, const int* tok_best, const int* link_src,
              const int* link_dst, const int* link_arc, const float* link_ac, const float* ch_cost,
              const float* weight, int* out) {
    const int lane = blockIdx.y;
    if (!ran(params, lane)) return;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    const int* ctr = counters + (long long)lane * LANE_COUNTERS;
    const long long T = totals[0], K = totals[1];
    const long long to = ctr[C_TOK_OFF], lo = ctr[C_LINK_OFF];
    const int n = lane_tokens(ctr, Q), nl = lane_links(ctr, X);
    const long long lq = (long long)lane * Q, lx = (long long)lane * X;
    const int stride = gridDim.x * blockDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        out[to + i] = tok_state[lq + i];
        out[T + to + i] = __float_as_int(tok_cost[lq + i]);
        out[2 * T + to + i] = tok_best[lq + i];
    }
    int* links = out + 3 * T;
    const int ne = p[P_MODE] == MODE_START ? 0 : ctr[C_NEMIT];
    const float* frontier = ch_cost + p[P_CHANNEL] * Q;
    for (int l = blockIdx.x * blockDim.x + threadIdx.x; l < nl; l += stride) {
        const int src = link_src[lx + l], dst = link_dst[lx + l], a = link_arc[lx + l];
        const float ac = link_ac[lx + l];
        links[lo + l] = src;
        links[K + lo + l] = dst;
        links[2 * K + lo + l] = a;
        links[3 * K + lo + l] = __float_as_int(ac);
        float excess = 0.0f;  // a lane whose queues overflowed: its frame is not used
        if (src >= 0 && src < Q && dst >= 0 && dst < n) {
            const float cu = l < ne ? frontier[src] : tok_cost[lq + src];
            excess = __fsub_rn(__fadd_rn(__fadd_rn(cu, ac), weight[a]), tok_cost[lq + dst]);
        }
        links[4 * K + lo + l] = __float_as_int(excess);
    }
}

extern "C" __global__ void __launch_bounds__(SEGMENT_THREADS)
save_frontier(const long long* params, const int* counters, int Q, const int* tok_state, const float* tok_cost,
              int* ch_state, float* ch_cost, int* ch_count) {
    const int lane = blockIdx.y;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (!ran(params, lane)) return;
    const int* ctr = counters + (long long)lane * LANE_COUNTERS;
    const int n = lane_tokens(ctr, Q);
    const long long ch = p[P_CHANNEL];
    const long long lq = (long long)lane * Q, cq = ch * Q;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        ch_state[cq + i] = tok_state[lq + i];
        ch_cost[cq + i] = tok_cost[lq + i];
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) ch_count[ch * CHANNEL_COUNTERS + CH_NTOK] = n;
}

extern "C" __global__ void __launch_bounds__(SEGMENT_THREADS)
reset_lanes(const long long* params, const int* counters, int* keys, unsigned* hash_cost, int* dirty,
            int* hash_tok, int H, int* tok_slot, int Q) {
    const int lane = blockIdx.y;
    if (!ran(params, lane)) return;
    const int* ctr = counters + (long long)lane * LANE_COUNTERS;
    const long long lh = (long long)lane * H, lq = (long long)lane * Q;
    const int first = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    if (ctr[C_OVERFLOW] != 0 || ctr[C_NTOK] > Q) {
        for (int s = first; s < H; s += stride) {
            keys[lh + s] = EMPTY_STATE;
            hash_cost[lh + s] = KEY_NONE;
            dirty[lh + s] = 0;
            hash_tok[lh + s] = NO_TOKEN;
        }
        for (int i = first; i < Q; i += stride) tok_slot[lq + i] = -1;
        return;
    }
    const int n = lane_tokens(ctr, Q);
    for (int i = first; i < n; i += stride) {
        int s = tok_slot[lq + i];
        if (s >= 0) {
            keys[lh + s] = EMPTY_STATE;
            hash_cost[lh + s] = KEY_NONE;
            dirty[lh + s] = 0;
            hash_tok[lh + s] = NO_TOKEN;
        }
        tok_slot[lq + i] = -1;
    }
}
