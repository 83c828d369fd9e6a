// The end of a frame, after its lattice segments went to the lane's window
// (lattice_window.cu): the frontier saved into the lane's channel, the working
// memory emptied.
//
// save_frontier: tokens (state, cost) into the channel: the next frame's input.
// reset_lanes: hash slots and token slots back to empty.
// (Both over every lane's tokens in one flat range: spans.cu: count_spans.)
// reset_overflowed (blocks x lanes): after an overflow the whole table (an
//   overflowing frame may hold slots no token lists), and every token slot.
#include "common.cuh"

#define FRAME_END_THREADS 256

extern "C" __global__ void __launch_bounds__(FRAME_END_THREADS)
save_frontier(const long long* params, const int* counters, int Q, const int* tok_state, const float* tok_cost,
              int* ch_state, float* ch_cost, int* ch_count, const long long* spans, int lanes) {
    each_lane(lanes, [&](int lane) {  // each channel's token count
        const long long* p = params + (long long)lane * LANE_PARAMS;
        if (searches(params, lane)) ch_count[p[P_CHANNEL] * CHANNEL_COUNTERS + CH_NTOK] =
            lane_tokens(counters + (long long)lane * LANE_COUNTERS, Q);
    });
    long long lq = 0, cq = 0;
    each_span_item(spans, lanes, [&](int lane) {
        lq = (long long)lane * Q;
        cq = params[(long long)lane * LANE_PARAMS + P_CHANNEL] * Q;
        return searches(params, lane);
    }, [&](long long t) {
        ch_state[cq + t] = tok_state[lq + t];
        ch_cost[cq + t] = tok_cost[lq + t];
    });
}

__device__ __forceinline__ void empty_slot(HashSlot* slot) {
    slot->key = EMPTY_STATE;
    slot->cost = KEY_NONE;
    slot->dirty = 0;
    slot->tok = NO_TOKEN;
}

__device__ __forceinline__ bool overflowed(const int* ctr, int Q) { return ctr[C_OVERFLOW] != 0 || ctr[C_NTOK] > Q; }

extern "C" __global__ void __launch_bounds__(FRAME_END_THREADS)
reset_lanes(const long long* params, const int* counters, int* hash, int H, int* tok_slot, int Q,
            const long long* spans, int lanes) {
    HashSlot* table = 0;
    long long lq = 0;
    each_span_item(spans, lanes, [&](int lane) {
        table = lane_hash(hash, lane, H);
        lq = (long long)lane * Q;
        return searches(params, lane) && !overflowed(counters + (long long)lane * LANE_COUNTERS, Q);
    }, [&](long long t) {
        int s = tok_slot[lq + t];
        if (s >= 0) empty_slot(table + s);
        tok_slot[lq + t] = -1;
    });
}

extern "C" __global__ void __launch_bounds__(FRAME_END_THREADS)
reset_overflowed(const long long* params, const int* counters, int* hash, int H, int* tok_slot, int Q) {
    const int lane = blockIdx.y;
    if (!searches(params, lane) || !overflowed(counters + (long long)lane * LANE_COUNTERS, Q)) return;
    HashSlot* table = lane_hash(hash, lane, H);
    const long long lq = (long long)lane * Q;
    const int first = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    for (int s = first; s < H; s += stride) empty_slot(table + s);
    for (int i = first; i < Q; i += stride) tok_slot[lq + i] = -1;
}
