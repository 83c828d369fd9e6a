// The spans of every lane's items in a step's flat range (common.cuh: work
// spread over the lanes), one CTA over the lanes, each span aligned:
//
// emit_spans: the emitting arcs an expanding lane's tokens have (deg_scan[n],
//   after frame_prologue), for emit_bound and emit_expand.
// count_spans: a counter of the lanes that searched this step, or earlier in it
//   and are left alone while others search again (MODE_RETRY_SKIP: their tokens
//   and links stay for the step's end), capped: the tokens (C_NTOK, Q) before
//   each epsilon sweep and after the closure, the links (C_NLINK, X) after
//   eps_links. Each kernel that reads them skips the lanes its mode test
//   leaves out.
#include "common.cuh"

#define SPAN_THREADS 1024

// spans[2l], spans[2l + 1] for lanes [0, lanes), lane l having count(l) items (one CTA)
template <typename Count>
__device__ void write_spans(int lanes, long long* spans, Count count) {
    __shared__ long long scratch[32];
    long long carry = 0;
    for (int base = 0; base < lanes; base += blockDim.x) {
        const int lane = base + threadIdx.x;
        const long long n = lane < lanes ? count(lane) : 0;
        long long total;
        long long before = block_exclusive_scan(span_align(n), scratch, &total);
        if (lane < lanes) {
            spans[2 * (long long)lane] = carry + before;
            spans[2 * (long long)lane + 1] = carry + before + n;
        }
        carry += total;
    }
}

extern "C" __global__ void __launch_bounds__(SPAN_THREADS)
emit_spans(const long long* params, const int* ch_count, int Q, const long long* deg_scan, int lanes,
           long long* spans) {
    write_spans(lanes, spans, [&](int lane) -> long long {
        const long long* p = params + (long long)lane * LANE_PARAMS;
        if (p[P_MODE] != MODE_EMIT) return 0;
        const int n = ch_count[p[P_CHANNEL] * CHANNEL_COUNTERS + CH_NTOK];
        return deg_scan[(long long)lane * (Q + 1) + n];
    });
}

extern "C" __global__ void __launch_bounds__(SPAN_THREADS)
count_spans(const long long* params, const int* counters, int counter, int cap, int lanes, long long* spans) {
    write_spans(lanes, spans, [&](int lane) -> long long {
        const long long mode = params[(long long)lane * LANE_PARAMS + P_MODE];
        if (mode != MODE_START && mode != MODE_EMIT && mode != MODE_RETRY_SKIP) return 0;
        const int n = counters[(long long)lane * LANE_COUNTERS + counter];
        return n < cap ? n : cap;
    });
}
