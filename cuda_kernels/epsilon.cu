// Epsilon closure of the frame being built, under the frame's bound: chaotic
// Bellman-Ford relaxation whose fixpoint (the cheapest float32 path cost of
// every state, following only tokens below the bound) is the one the CPU's FIFO
// queue reaches, whatever the order.
//
// A token is relaxed when its dirty flag is taken (atomicExch to 0, a fence,
// then its cost is read): whoever lowers a cost stores it, fences, then raises
// the flag, so a lowering is never lost.
//
// eps_sweep: one grid-wide pass over every lane's tokens (launched a few times),
//   in one flat range of the tokens each lane had when it was laid out
//   (spans.cu: count_spans; tokens made since wait for a later pass).
// eps_persistent: one CTA per lane loops until a round lowers nothing.
// eps_links: one link per epsilon arc from a token below the bound whose result
//   is below it (after the fixpoint, as the CPU does); every lane's tokens in
//   one flat range (spans.cu: count_spans).
#include "common.cuh"

#define EPS_THREADS 256
#define EPS_PERSISTENT_THREADS 512

struct LaneTables {
    HashSlot* hash;
    int* tok_state;
    int* tok_slot;
    int* ctr;
};

// Follow the epsilon arcs of token idx if it is dirty. Returns whether a cost
// fell (or a token was made). A token whose state has no epsilon arc, or whose
// flag reads clear, costs no atomic and no fence (its flag, if raised, stays
// for a later round; reset_lanes clears every flag at the frame's end). The
// state read before the fence is a hint only: for a token made in this launch
// it may be stale (nothing orders it after the slot's read), and then the
// round that made the token lowered a cost, so another round (or, after the
// sweeps, eps_persistent) reads it again.
__device__ bool relax_token(const LaneTables& t, int idx, int H, int Q, float bound, const int* ne_offsets,
                            const int* nextstate, const float* weight) {
    int slot = vload(t.tok_slot + idx);
    if (slot < 0) return false;  // not published yet: still dirty, seen in a later round
    const int hint = vload(t.tok_state + idx);
    HashSlot* mine = t.hash + slot;
    if (ne_offsets[hint] == ne_offsets[hint + 1] || vload(&mine->dirty) == 0) return false;
    if (atomicExch(&mine->dirty, 0) == 0) return false;
    __threadfence();
    float cu = key_cost(vload(&mine->cost));
    if (!(cu < bound)) return false;
    int s = vload(&mine->key);
    bool lowered = false;
    for (int a = ne_offsets[s]; a < ne_offsets[s + 1]; ++a) {
        float c = __fadd_rn(cu, weight[a]);
        if (!(c < bound)) continue;
        int v = hash_insert(t.hash, H, nextstate[a], t.ctr, Q, t.tok_state, t.tok_slot);
        if (v < 0) continue;
        lowered |= lower_cost(t.hash + v, cost_key(c));
    }
    return lowered;
}

__device__ __forceinline__ LaneTables lane_tables(int lane, int* counters, int* hash, int H, int* tok_state,
                                                  int* tok_slot, int Q) {
    LaneTables t;
    long long lq = (long long)lane * Q;
    t.hash = lane_hash(hash, lane, H);
    t.tok_state = tok_state + lq;
    t.tok_slot = tok_slot + lq;
    t.ctr = counters + (long long)lane * LANE_COUNTERS;
    return t;
}

extern "C" __global__ void __launch_bounds__(EPS_THREADS)
eps_sweep(const long long* params, int* counters, const int* ne_offsets, const int* nextstate,
          const float* weight, int* hash, int H, int* tok_state, int* tok_slot, int Q, const long long* spans,
          int lanes) {
    LaneTables t;
    float bound = 0.0f;
    each_span_item(spans, lanes, [&](int lane) {
        t = lane_tables(lane, counters, hash, H, tok_state, tok_slot, Q);
        bound = __int_as_float(t.ctr[C_BOUND]);
        return searches(params, lane);
    }, [&](long long j) { relax_token(t, (int)j, H, Q, bound, ne_offsets, nextstate, weight); });
}

extern "C" __global__ void __launch_bounds__(EPS_PERSISTENT_THREADS)
eps_persistent(const long long* params, int* counters, const int* ne_offsets, const int* nextstate,
               const float* weight, int* hash, int H, int* tok_state, int* tok_slot, int Q, int X) {
    __shared__ int lowered, round_tokens, stop;
    const int lane = blockIdx.x;
    if (!searches(params, lane)) return;
    LaneTables t = lane_tables(lane, counters, hash, H, tok_state, tok_slot, Q);
    const float bound = __int_as_float(t.ctr[C_BOUND]);
    if (threadIdx.x == 0) {
        int nl = t.ctr[C_NLINK];
        t.ctr[C_NEMIT] = nl < X ? nl : X;  // no link is added until eps_links
    }
    int rounds = 0;
    while (true) {
        __syncthreads();
        if (threadIdx.x == 0) {  // one token count for the whole block: every thread leaves together
            lowered = 0;
            int n = vload(t.ctr + C_NTOK);
            round_tokens = n < Q ? n : Q;
        }
        __syncthreads();
        const int n = round_tokens;
        bool mine = false;
        for (int idx = threadIdx.x; idx < n; idx += blockDim.x)
            mine |= relax_token(t, idx, H, Q, bound, ne_offsets, nextstate, weight);
        if (mine) atomicOr(&lowered, 1);
        __syncthreads();
        rounds += 1;
        if (threadIdx.x == 0) {
            // a round settles every token whose cheapest path is one hop longer than
            // the last round's: more rounds than tokens means a negative cycle
            int hash_full = vload(t.ctr + C_OVERFLOW) & OVF_HASH;
            stop = !lowered ? 1 : (hash_full ? 2 : (rounds > n + 2 ? 3 : 0));
            if (stop == 3) t.ctr[C_STATUS] = STATUS_NEGATIVE_CYCLE;
        }
        __syncthreads();
        if (stop) break;
    }
    if (threadIdx.x == 0) t.ctr[C_ROUNDS] = rounds;
}

extern "C" __global__ void __launch_bounds__(EPS_THREADS)
eps_links(const long long* params, int* counters, const int* ne_offsets, const int* nextstate,
          const float* weight, const int* hash, int H, const int* tok_state, const int* tok_slot, int Q, int X,
          int* link_src, int* link_dst, int* link_arc, float* link_ac, const long long* spans, int lanes) {
    int* ctr = 0;
    float bound = 0.0f;
    const HashSlot* table = 0;
    long long lq = 0, lx = 0;
    each_span_item(spans, lanes, [&](int lane) {
        ctr = counters + (long long)lane * LANE_COUNTERS;
        bound = __int_as_float(ctr[C_BOUND]);
        table = lane_hash(hash, lane, H);
        lq = (long long)lane * Q;
        lx = (long long)lane * X;
        return searches(params, lane);
    }, [&](long long j) {
        const int idx = (int)j;
        int slot = tok_slot[lq + idx];
        if (slot < 0) return;
        float cu = key_cost(table[slot].cost);
        if (!(cu < bound)) return;
        int s = tok_state[lq + idx];
        for (int a = ne_offsets[s]; a < ne_offsets[s + 1]; ++a) {
            if (!(__fadd_rn(cu, weight[a]) < bound)) continue;
            int v = hash_find(table, H, nextstate[a]);
            int l = warp_increment(ctr + C_NLINK);  // a warp's tokens are one lane's (SPAN_ALIGN)
            if ((unsigned)l < (unsigned)X) {  // (a counter past 2^31 reads as overflow)
                link_src[lx + l] = idx;
                link_dst[lx + l] = v;  // a hash slot until resolve_links
                link_arc[lx + l] = a;
                link_ac[lx + l] = 0.0f;
            } else {
                atomicOr(ctr + C_OVERFLOW, OVF_LINKS);
            }
        }
    });
}
