// The frame's tokens and links in their final form, and the best predecessor
// of every token by the CPU's tie rule (wfst/cpu_search.py, step 4): among the
// links achieving the token's cost exactly (float32, summed as the CPU does),
// the fewest epsilon hops since the last emitting link, then the lowest arc
// index. Within a frame an arc index names at most one link (one token per
// state and frame), so the lowest arc picks one link.
//
// resolve_tokens: token costs from the hash map; slot -> token index; each
//   token unreached yet (hops HOPS_NONE, no best arc or link), but the start
//   token in MODE_START (level 0).
// resolve_links: link destinations from hash slots to token indices, and level
//   0 of the breadth-first levels: the achieving emitting links' destinations
//   (hops 0, atomicMin of the arc index).
// (Both over every lane's tokens, or links, in one flat range: spans.cu.)
// tie_bfs (one CTA per lane): levels 1, 2, ... over achieving epsilon links,
//   atomicMin of the arc index per token and level; then tok_best; tokens no
//   level reaches (a float32 negative cycle) set STATUS_NEGATIVE_CYCLE.
#include "common.cuh"

#define RESOLVE_THREADS 256
#define TIE_THREADS 512

extern "C" __global__ void __launch_bounds__(RESOLVE_THREADS)
resolve_tokens(const long long* params, int* hash, int H, const int* tok_slot, float* tok_cost, int Q,
               int* tok_hops, unsigned* tok_best_arc, int* tok_best, const long long* spans, int lanes) {
    HashSlot* table = 0;
    long long lq = 0;
    bool start = false;
    each_span_item(spans, lanes, [&](int lane) {
        table = lane_hash(hash, lane, H);
        lq = (long long)lane * Q;
        start = params[(long long)lane * LANE_PARAMS + P_MODE] == MODE_START;
        return searches(params, lane);
    }, [&](long long j) {
        tok_hops[lq + j] = start && j == 0 ? 0 : HOPS_NONE;
        tok_best_arc[lq + j] = 0xFFFFFFFFu;
        tok_best[lq + j] = -1;
        int slot = tok_slot[lq + j];
        if (slot < 0) {  // only after an overflow (the frame is redone)
            tok_cost[lq + j] = __int_as_float(0x7F800000);
            return;
        }
        tok_cost[lq + j] = key_cost(table[slot].cost);
        table[slot].tok = (int)j;
    });
}

extern "C" __global__ void __launch_bounds__(RESOLVE_THREADS)
resolve_links(const long long* params, const int* counters, const int* hash, int H, int* link_dst, int X,
              const float* ch_cost, int Q, const float* tok_cost, int* tok_hops, unsigned* tok_best_arc,
              const int* link_src, const int* link_arc, const float* link_ac, const float* weight,
              const long long* spans, int lanes) {
    const HashSlot* table = 0;
    long long lx = 0, lq = 0;
    int ne = 0;
    const float* prev_cost = 0;
    each_span_item(spans, lanes, [&](int lane) {
        const long long* p = params + (long long)lane * LANE_PARAMS;
        table = lane_hash(hash, lane, H);
        lx = (long long)lane * X;
        lq = (long long)lane * Q;
        ne = p[P_MODE] == MODE_START ? 0 : counters[(long long)lane * LANE_COUNTERS + C_NEMIT];
        prev_cost = ch_cost + p[P_CHANNEL] * Q;
        return searches(params, lane);
    }, [&](long long j) {
        const int slot = link_dst[lx + j];
        const int v = slot >= 0 ? table[slot].tok : NO_TOKEN;
        link_dst[lx + j] = v;
        if (j >= ne || v < 0) return;
        const int a = link_arc[lx + j];
        if (__fadd_rn(__fadd_rn(prev_cost[link_src[lx + j]], link_ac[lx + j]), weight[a]) == tok_cost[lq + v]) {
            tok_hops[lq + v] = 0;  // an achieving emitting link: level 0
            atomicMin(tok_best_arc + lq + v, (unsigned)a);
        }
    });
}

extern "C" __global__ void __launch_bounds__(TIE_THREADS)
tie_bfs(const long long* params, int* counters, int Q, const float* tok_cost, int* tok_hops,
        unsigned* tok_best_arc, int* tok_best, int X, const int* link_src, const int* link_dst,
        const int* link_arc, const float* weight) {
    __shared__ int sum_scratch[32];
    const int lane = blockIdx.x;
    if (!searches(params, lane)) return;
    int* ctr = counters + (long long)lane * LANE_COUNTERS;
    const int n = lane_tokens(ctr, Q);
    int nl = ctr[C_NLINK];
    nl = nl < X ? nl : X;
    const int ne = ctr[C_NEMIT];
    const long long lq = (long long)lane * Q, lx = (long long)lane * X;
    const float* cost = tok_cost + lq;
    int* hops = tok_hops + lq;
    volatile int* vhops = hops;
    unsigned* best_arc = tok_best_arc + lq;
    const int* src = link_src + lx;
    const int* dst = link_dst + lx;
    const int* arc = link_arc + lx;

    // levels 1, 2, ... over the epsilon links (level 0: resolve_tokens, resolve_links)
    int level = 0;
    while (true) {
        bool reached = false;  // this thread put a token at level + 1
        for (int l = ne + threadIdx.x; l < nl; l += blockDim.x) {
            int v = dst[l];
            if (v < 0) continue;
            int u = src[l];
            if (vhops[u] != level) continue;  // set before the last barrier: stable
            if (__fadd_rn(cost[u], weight[arc[l]]) != cost[v]) continue;
            int hv = vhops[v];  // HOPS_NONE or level + 1 while this level runs
            if (hv == HOPS_NONE || hv == level + 1) {
                vhops[v] = level + 1;
                atomicMin(best_arc + v, (unsigned)arc[l]);
                reached = true;
            }
        }
        if (!__syncthreads_or(reached)) break;
        level += 1;
    }
    // the link of each token's best arc (unique within the frame)
    for (int l = threadIdx.x; l < nl; l += blockDim.x) {
        int v = dst[l];
        if (v >= 0 && (unsigned)arc[l] == best_arc[v]) tok_best[lq + v] = l;
    }
    int unreached = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) unreached += hops[i] == HOPS_NONE;
    unreached = block_sum(unreached, sum_scratch);
    if (threadIdx.x == 0) {
        ctr[C_LEVELS] = level;
        if (unreached > 0 && ctr[C_OVERFLOW] == 0) ctr[C_STATUS] = STATUS_NEGATIVE_CYCLE;
    }
}
