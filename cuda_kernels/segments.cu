// The end of a frame, after its lattice segments went to the lane's window
// (lattice_window.cu): the frontier saved into the lane's channel, the working
// memory emptied.
//
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

__device__ __forceinline__ void empty_slot(HashSlot* slot) {
    slot->key = EMPTY_STATE;
    slot->cost = KEY_NONE;
    slot->dirty = 0;
    slot->tok = NO_TOKEN;
}

extern "C" __global__ void __launch_bounds__(SEGMENT_THREADS)
reset_lanes(const long long* params, const int* counters, int* hash, int H, int* tok_slot, int Q) {
    const int lane = blockIdx.y;
    if (!ran(params, lane)) return;
    const int* ctr = counters + (long long)lane * LANE_COUNTERS;
    HashSlot* table = lane_hash(hash, lane, H);
    const long long lq = (long long)lane * Q;
    const int first = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    if (ctr[C_OVERFLOW] != 0 || ctr[C_NTOK] > Q) {
        for (int s = first; s < H; s += stride) empty_slot(table + s);
        for (int i = first; i < Q; i += stride) tok_slot[lq + i] = -1;
        return;
    }
    const int n = lane_tokens(ctr, Q);
    for (int i = first; i < n; i += stride) {
        int s = tok_slot[lq + i];
        if (s >= 0) empty_slot(table + s);
        tok_slot[lq + i] = -1;
    }
}
