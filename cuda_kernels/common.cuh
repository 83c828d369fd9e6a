// Shared definitions of the wfst-gpu kernels. Inlined textually by the loader
// (cuda_kernels/__init__.py), so every .cu file stands alone for NVRTC; no
// standard headers (NVRTC builds run without a CUDA toolkit).
//
// Naming follows wfst/csr.py: s state, a arc, k/idx token (frame-local index),
// l link (frame-local index). Per-lane arrays are [lanes, capacity] row-major;
// a lane's row starts at lane * capacity (64-bit offsets throughout).
//
// Costs are float32 summed exactly as the CPU backend does ((cost + ac) +
// weight, separate roundings; the loader compiles with --fmad=false and every
// sum here uses __fadd_rn). For atomicMin they become order-preserving
// unsigned keys (cost_key); -0.0 is folded into +0.0 first.
#pragma once

#define EMPTY_STATE (-1)
#define NO_TOKEN (-1)
#define KEY_INF 0xFF800000u       // cost_key(+inf)
#define KEY_NONE 0xFFFFFFFFu      // above every cost: "no cost yet"
#define HOPS_NONE 0x7FFFFFFF

// lane counters: int32 [lanes, LANE_COUNTERS] (wfst/cuda_layout.py mirrors these)
#define LANE_COUNTERS 64
#define C_NTOK 0          // tokens allocated this frame (may exceed Q: overflow)
#define C_NLINK 1         // links allocated this frame (may exceed X: overflow)
#define C_NEMIT 2         // emitting links (the first C_NEMIT links)
#define C_BEST_EMIT 3     // cost_key of the cheapest emitting candidate
#define C_CUTOFF 4        // float bits: cutoff over the previous frame
#define C_ADAPTIVE 5      // float bits: adaptive beam
#define C_BOUND 6         // float bits: bound of this frame's tokens
#define C_OVERFLOW 7      // OVF_* bits
#define C_STATUS 8        // 0 ok, 1 negative-cost epsilon cycle
#define C_EXPANDED 9      // previous-frame tokens expanded (cost <= cutoff)
#define C_ROUNDS 10       // persistent epsilon rounds (statistics)
#define C_LEVELS 11       // tie-rule BFS levels (statistics)

#define OVF_TOKENS 1
#define OVF_LINKS 2
#define OVF_HASH 4

#define STATUS_OK 0
#define STATUS_NEGATIVE_CYCLE 1

// lane parameters: long long [lanes, LANE_PARAMS], written by the host per frame
#define LANE_PARAMS 13
#define P_SCORES 0        // device pointer of score row 0 (float32, float16 or float64: P_DTYPE)
#define P_STRIDE 1        // elements between rows
#define P_DTYPE 2         // 0 float32, 1 float16, 2 float64 (rounded to float32 as read)
#define P_ROW 3           // row read by this frame (relative to P_SCORES)
#define P_MODE 4          // MODE_*
#define P_TIGHTEN 5       // retry level after an overflow: bound beam / 2^level
#define P_CHANNEL 6       // channel holding the lane's frontier
#define P_WIN_FRAME 7     // slot of this frame in the lane's lattice window (-1: not stored)
#define P_WIN_TOK 8       // where its tokens go in the window pool
#define P_WIN_LINK 9      // where its links go
#define P_FLUSH 10        // FLUSH_*: what the window does after storing the frame
#define P_LAG 11          // frames of a flushing window kept back for its next flush
#define P_KEPT 12         // frames at the front of the pool pruned and kept there by earlier flushes

// P_FLUSH: prune the window and send all but P_LAG frames to the host (newest frame at extra cost 0;
// FLUSH_FINAL: the utterance's end, lag 0, the newest frame's extra costs from the final costs), or
// prune the frames after the kept ones and keep all but P_LAG of them, compacted, in the pool
#define FLUSH_NONE 0
#define FLUSH_SEND 1
#define FLUSH_KEEP 2
#define FLUSH_FINAL 3

// lattice windows (lattice_window.cu): ints per frame in the frame table; ints
// (T, K) before the keeping lanes' pool sizes and the sent frames' counts in the packed buffer
#define WINDOW_FRAME_INTS 16
#define WINDOW_HEADER 2

#define MODE_IDLE 0
#define MODE_START 1      // frame 0: the start token and its epsilon closure
#define MODE_EMIT 2       // read one score row
#define MODE_RETRY_SKIP 3 // done this step; left alone while other lanes retry

// whether lane `lane` searches a frame in this launch sequence (its parameters' mode)
__device__ __forceinline__ bool searches(const long long* params, int lane) {
    long long mode = params[(long long)lane * LANE_PARAMS + P_MODE];
    return mode == MODE_START || mode == MODE_EMIT;
}

#define TIGHTEN_LAST 16   // from this level on, the bound keeps only the best cost

// channel counters: int32 [channels, CHANNEL_COUNTERS]
#define CHANNEL_COUNTERS 16
#define CH_NTOK 0

// ---------------------------------------------------------------- costs
__device__ __forceinline__ unsigned cost_key(float c) {
    if (c == 0.0f) c = 0.0f;  // -0.0 -> +0.0
    unsigned b = __float_as_uint(c);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float key_cost(unsigned k) {
    unsigned b = (k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k;
    return __uint_as_float(b);
}

__device__ __forceinline__ float half_to_float(unsigned short h) {
#ifdef __CUDA_ARCH__
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#else  // compiled for the CPU by the tests' emulator (tests/cuda_emulator)
    return host_half_to_float(h);
#endif
}

// -(acoustic_scale * loglike) of emitting arc a on the lane's current row
__device__ __forceinline__ float arc_acoustic(const long long* params, const void* columns, int columns16,
                                              int a, float scale) {
    long long col = columns16 ? (long long)((const unsigned short*)columns)[a] : (long long)((const int*)columns)[a];
    long long at = params[P_ROW] * params[P_STRIDE] + col;
    float x;
    if (params[P_DTYPE] == 1) {
        x = half_to_float(((const unsigned short*)(unsigned long long)params[P_SCORES])[at]);
    } else if (params[P_DTYPE] == 2) {  // (not converted beforehand: CuPy's astype flushes denormals)
        x = __double2float_rn(((const double*)(unsigned long long)params[P_SCORES])[at]);
    } else {
        x = ((const float*)(unsigned long long)params[P_SCORES])[at];
    }
    return -__fmul_rn(scale, x);
}

// ---------------------------------------------------------------- memory
__device__ __forceinline__ int vload(const int* p) { return *(const volatile int*)p; }
__device__ __forceinline__ unsigned vload(const unsigned* p) { return *(const volatile unsigned*)p; }

// one atomicAdd per warp for the threads of the warp that call it together;
// every caller of one call site must pass the same counter (one lane per warp)
__device__ __forceinline__ int warp_increment(int* counter) {
    unsigned active = __activemask();
    int leader = __ffs(active) - 1;
    int me = threadIdx.x & 31;
    int base = 0;
    if (me == leader) base = atomicAdd(counter, __popc(active));
    base = __shfl_sync(active, base, leader);
    return base + __popc(active & ((1u << me) - 1u));
}

__device__ __forceinline__ unsigned warp_min(unsigned v) {
    for (int d = 16; d > 0; d >>= 1) {
        unsigned o = __shfl_down_sync(0xFFFFFFFFu, v, d);
        v = o < v ? o : v;
    }
    return v;
}

// ---------------------------------------------------------------- work spread over the lanes
// A kernel of this kind serves the items of every lane (their emitting arcs,
// say) from one flat range, cut into equal chunks, one per block, so a step's
// work spreads over the whole grid whatever each lane's share: with a fixed
// number of blocks per lane a kernel waits for its busiest lane, which on the
// full TLG has 5 times the mean lane's emitting arcs at 512 lanes and 11 times
// its tokens and links (python -m bench.lane_imbalance).
// spans (int64, 2 per lane): lane l's items are the flat indices [spans[2l],
// spans[2l + 1]); each span starts at a multiple of SPAN_ALIGN (a warp's 32
// aligned indices serve one lane, so warp collectives and warp_increment see
// one lane's counters) and the chunks are multiples of the block size.
#define SPAN_ALIGN 32
static_assert(SPAN_ALIGN % 32 == 0, "a span holds whole warps");

__device__ __forceinline__ long long span_align(long long n) { return (n + SPAN_ALIGN - 1) / SPAN_ALIGN * SPAN_ALIGN; }

// the flat range's length (the last lane's span, aligned)
__device__ __forceinline__ long long span_total(const long long* spans, int lanes) {
    return span_align(spans[2 * (long long)lanes - 1]);
}

// the lane whose span holds flat index i: the largest l with spans[2l] <= i (lanes without items
// share the next lane's start, so the largest is the one with items)
__device__ __forceinline__ int span_lane(const long long* spans, int lanes, long long i) {
    int lo = 0, hi = lanes;
    while (hi - lo > 1) {
        int mid = (lo + hi) >> 1;
        if (spans[2 * (long long)mid] <= i) lo = mid; else hi = mid;
    }
    return lo;
}

// this block's chunk [*first, *end) of the flat range of `spans` (its length a multiple of SPAN_ALIGN; the
// chunks multiples of the block size, which is a multiple of 32)
__device__ __forceinline__ void block_chunk(const long long* spans, int lanes, long long* first, long long* end) {
    const long long total = lanes > 0 ? span_total(spans, lanes) : 0;
    long long per = (total + gridDim.x - 1) / gridDim.x;
    per = (per + blockDim.x - 1) / blockDim.x * blockDim.x;
    long long a = (long long)blockIdx.x * per;
    *first = a < total ? a : total;
    *end = a + per < total ? a + per : total;
}

// f(l) for every lane l once, over all the grid's threads (a lane's own entries beside a spread kernel's items)
template <typename F>
__device__ __forceinline__ void each_lane(int lanes, F f) {
    for (int lane = blockIdx.x * blockDim.x + threadIdx.x; lane < lanes; lane += gridDim.x * blockDim.x) f(lane);
}

// the tokens a lane's counters hold, capped at the queue's capacity Q (an overflowed frame counts more)
__device__ __forceinline__ int lane_tokens(const int* ctr, int Q) {
    int n = ctr[C_NTOK];
    return n < Q ? n : Q;
}

// For each item of this block's chunk of the flat range of `spans`: enter(l)
// when the thread's indices reach lane l (the whole warp together, spans and
// chunks being aligned), which loads the lane's state and says whether the lane
// takes part; then item(j), j the item's index within its lane. The warp meets
// at the end of every round (all its threads run the same rounds), so that warp
// collectives in enter and item (warp_increment's __activemask) see one lane's
// threads: a warp is not bound to reconverge between rounds otherwise.
template <typename Enter, typename Item>
__device__ __forceinline__ void each_span_item(const long long* spans, int lanes, Enter enter, Item item) {
    long long first, end;
    block_chunk(spans, lanes, &first, &end);
    long long lane_first = 0, lane_end = 0, stop = -1;
    bool live = false;
    for (long long i = first + threadIdx.x; i < end; i += blockDim.x) {
        if (i >= stop) {
            const int lane = span_lane(spans, lanes, i);
            lane_first = spans[2 * (long long)lane];
            lane_end = spans[2 * (long long)lane + 1];
            stop = lane_first + span_align(lane_end - lane_first);
            live = enter(lane);
        }
        if (live && i < lane_end) item(i - lane_first);
        __syncwarp();
    }
}

// ---------------------------------------------------------------- hash map
// Per lane, H slots (a power of two) of four ints side by side, so that the
// fields a kernel touches for one state share a 32-byte memory sector (with a
// table per field, each access to a state's slot cost a sector per field):
// key (state or EMPTY_STATE), cost (cost_key, KEY_NONE when unset), dirty (1:
// cost lowered since the token's epsilon arcs were last followed), token
// (frame-local token index, set by resolve_tokens). Kernels take the lanes'
// tables as one int array of 4 H ints per lane (HASH_SLOT_INTS).
#define HASH_SLOT_INTS 4
struct HashSlot {
    int key;
    unsigned cost;
    int dirty;
    int tok;
};

// lane `lane`'s table in the int array `hash`
__device__ __forceinline__ HashSlot* lane_hash(int* hash, int lane, int H) {
    return (HashSlot*)(hash + (long long)lane * H * HASH_SLOT_INTS);
}

__device__ __forceinline__ const HashSlot* lane_hash(const int* hash, int lane, int H) {
    return (const HashSlot*)(hash + (long long)lane * H * HASH_SLOT_INTS);
}

__device__ __forceinline__ unsigned hash_home(int state, int H) {
    unsigned h = (unsigned)state * 2654435761u;
    return (h ^ (h >> 16)) & (unsigned)(H - 1);
}

// `publish` (hash_insert, lower_cost): fence so that other threads of the same
// launch, which read tokens and dirty flags while it runs (the epsilon kernels),
// see the writes in order. emit_expand's writes are read by later launches only,
// which see them all in order anyway, so it skips the fences (a fence per arc);
// that holds while nothing else runs beside it on these buffers.

// The slot of `state`, inserting it (and allocating its token index, which,
// when `publish`, is published in tok_slot only after tok_state is written) if
// absent. -1 when the table is full (OVF_HASH). A token index >= Q is not stored
// (OVF_TOKENS): its slot exists but no token does, and the frame is redone.
template <bool publish = true>
__device__ int hash_insert(HashSlot* table, int H, int state, int* counters, int Q, int* tok_state, int* tok_slot) {
    unsigned h = hash_home(state, H);
    for (int probe = 0; probe < H; ++probe) {
        int cur = vload(&table[h].key);
        if (cur == state) return (int)h;
        if (cur == EMPTY_STATE) {
            int old = atomicCAS(&table[h].key, EMPTY_STATE, state);
            if (old == EMPTY_STATE) {
                int idx = atomicAdd(counters + C_NTOK, 1);
                if (idx < Q) {
                    tok_state[idx] = state;
                    if (publish) __threadfence();
                    atomicExch(tok_slot + idx, (int)h);
                } else {
                    atomicOr(counters + C_OVERFLOW, OVF_TOKENS);
                }
                return (int)h;
            }
            if (old == state) return (int)h;
        }
        h = (h + 1u) & (unsigned)(H - 1);
    }
    atomicOr(counters + C_OVERFLOW, OVF_HASH);
    return -1;
}

// The slot of `state`, or -1 (read-only: after every insertion of the frame).
__device__ int hash_find(const HashSlot* table, int H, int state) {
    unsigned h = hash_home(state, H);
    for (int probe = 0; probe < H; ++probe) {
        int cur = table[h].key;
        if (cur == state) return (int)h;
        if (cur == EMPTY_STATE) return -1;
        h = (h + 1u) & (unsigned)(H - 1);
    }
    return -1;
}

// Lower the cost of `slot` to `key`; mark it dirty if that lowered it.
// Returns whether it did. The fence orders the cost before the flag, so a
// thread that takes the flag (atomicExch to 0, then a fence) reads this cost.
template <bool publish = true>
__device__ __forceinline__ bool lower_cost(HashSlot* slot, unsigned key) {
    unsigned old = atomicMin(&slot->cost, key);
    if (key < old) {
        if (publish) __threadfence();
        atomicExch(&slot->dirty, 1);
        return true;
    }
    return false;
}

// the float just above a finite x (the bound that keeps only the cost x)
__device__ __forceinline__ float next_above(float x) {
    if (x == 0.0f) return __int_as_float(1);
    return __int_as_float(__float_as_int(x) + (x > 0.0f ? 1 : -1));
}

// the float bound of a lane's frame after `tighten` overflow retries: best + beam (halved per retry), or
// just above best where that sum rounds back to best (large costs), so the cheapest cost is always kept
__device__ __forceinline__ float tightened_bound(float best, float beam, long long tighten) {
    if (!(best < __int_as_float(0x7F800000))) return __fadd_rn(best, beam);
    if (tighten >= TIGHTEN_LAST) return next_above(best);
    float bound = __fadd_rn(best, tighten <= 0 ? beam : ldexpf(beam, -(int)tighten));
    return bound > best ? bound : next_above(best);
}

// ---------------------------------------------------------------- block helpers
// (blockDim.x a multiple of 32, at most 1024; `scratch` 32 entries of shared)
__device__ unsigned block_min(unsigned v, unsigned* scratch) {
    v = warp_min(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        unsigned w = threadIdx.x < (blockDim.x >> 5) ? scratch[threadIdx.x] : KEY_NONE;
        w = warp_min(w);
        if (threadIdx.x == 0) scratch[0] = w;
    }
    __syncthreads();
    unsigned r = scratch[0];
    __syncthreads();
    return r;
}

// the sum of one value per thread of a whole warp, in its lane 0
__device__ __forceinline__ int warp_sum(int v) {
    for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xFFFFFFFFu, v, d);
    return v;
}

__device__ int block_sum(int v, int* scratch) {
    v = warp_sum(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        int w = warp_sum(threadIdx.x < (blockDim.x >> 5) ? scratch[threadIdx.x] : 0);
        if (threadIdx.x == 0) scratch[0] = w;
    }
    __syncthreads();
    int r = scratch[0];
    __syncthreads();
    return r;
}

// inclusive scan of one value per thread of a whole warp
__device__ __forceinline__ long long warp_inclusive_scan(long long x) {
    const int me = threadIdx.x & 31;
    for (int d = 1; d < 32; d <<= 1) {
        long long o = __shfl_up_sync(0xFFFFFFFFu, x, d);
        if (me >= d) x += o;
    }
    return x;
}

// exclusive scan of one value per thread; returns the prefix, *total the sum
__device__ long long block_exclusive_scan(long long v, long long* scratch, long long* total) {
    const long long x = warp_inclusive_scan(v);
    int me = threadIdx.x & 31;
    __syncthreads();
    if (me == 31) scratch[threadIdx.x >> 5] = x;
    __syncthreads();
    if (threadIdx.x < 32) {
        int warps = blockDim.x >> 5;
        long long w = warp_inclusive_scan(threadIdx.x < warps ? scratch[threadIdx.x] : 0);
        if (threadIdx.x < warps) scratch[threadIdx.x] = w;  // inclusive prefix of warp sums
    }
    __syncthreads();
    long long warp_base = (threadIdx.x >> 5) ? scratch[(threadIdx.x >> 5) - 1] : 0;
    *total = scratch[(blockDim.x >> 5) - 1];
    __syncthreads();
    return warp_base + x - v;
}
