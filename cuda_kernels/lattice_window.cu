// Lattice segments kept on the device for a window of frames, pruned there,
// and packed for one device-to-host copy (the specification, in numpy, is
// lattice/window_prune.py).
//
// Each lane has a window pool: up to WT tokens (state, cost, best link, extra
// cost key, new index) and WX links (source, destination, arc, acoustic cost,
// excess, new index) of up to WF frames, in frame order, indices frame-local as
// in the packed format; and a frame table, WINDOW_FRAME_INTS per frame. The host
// tracks how full each window is and sets, per lane, P_WIN_FRAME (the frame's
// slot in the window, -1: not stored), P_WIN_TOK / P_WIN_LINK (where its tokens
// and links go) and P_FLUSH (prune and pack the window after storing the frame).
//
// window_store: the frame's tokens and links into the pool, each link with its
//   excess (cost[src] + ac + weight[arc]) - cost[dst] in float32, as the CPU
//   search computes it (the source of an emitting link is in the channel's
//   frontier, saved after this).
// window_prune (one WINDOW_LANE_THREADS CTA per flushing lane: the walk over
//   the frames is serial, so its per-frame loops take as few rounds as they
//   can): extra costs walking back from the
//   newest frame (whose tokens count 0); links beyond the lattice beam and
//   tokens left without links are dropped (flags in wl_new, INF in wt_extra).
//   Every excess is >= 0 (cost[dst] is the least of its links' sums), so the
//   epsilon relaxation ends and the CPU's final pruning drops all this drops.
// A flush sends all frames but the newest P_LAG, which stay for the next flush
// (pruned then against a newer frame, so fewer of their tokens are sent):
// window_number (one CTA per sent frame of a flushing lane): the survivors
//   numbered in order, frame by frame, and counted.
// window_offsets (one CTA): where each flushing lane's sent frames go in the
//   packed buffer: int32 T, K, then (tokens, links, emitting links) per frame of
//   every flushing lane in lane order, then tok_state[T] tok_cost[T] tok_best[T]
//   link_src[K] link_dst[K] link_arc[K] link_ac[K] link_excess[K].
// window_pack (one CTA per sent frame of a flushing lane): the survivors,
//   renumbered, into the packed buffer.
// window_shift (one WINDOW_LANE_THREADS CTA per lane that keeps frames back):
//   those frames, as stored, to the start of the pool and of the frame table,
//   the oldest's emitting sources renumbered as the last sent frame's tokens
//   were (-1: removed; the next window_prune drops such links: extra costs only
//   grow).
#include "common.cuh"

#define WINDOW_THREADS 256
#define WINDOW_LANE_THREADS 1024  // one CTA per lane
#define WF_TOK 0        // first token of the frame in the pool
#define WF_NTOK 1
#define WF_LINK 2       // first link of the frame in the pool
#define WF_NLINK 3
#define WF_NEMIT 4      // emitting links (the first WF_NEMIT)
#define WF_KEPT_TOK 5   // survivors of window_prune
#define WF_KEPT_LINK 6
#define WF_KEPT_EMIT 7
#define WF_OUT_TOK 8    // offsets in the packed buffer (window_offsets)
#define WF_OUT_LINK 9

__device__ __forceinline__ bool stores(const long long* p) {
    return (p[P_MODE] == MODE_START || p[P_MODE] == MODE_EMIT) && p[P_WIN_FRAME] >= 0;
}

__device__ __forceinline__ bool flushes(const long long* p) { return stores(p) && p[P_FLUSH] != 0; }

// frames a flush sends: all but the P_LAG newest
__device__ __forceinline__ int sent_frames(const long long* p) { return (int)(p[P_WIN_FRAME] + 1 - p[P_LAG]); }

extern "C" __global__ void __launch_bounds__(WINDOW_THREADS)
window_store(const long long* params, const int* counters, int Q, int X, int WT, int WX, int WF,
             const int* tok_state, const float* tok_cost, const int* tok_best, const int* link_src,
             const int* link_dst, const int* link_arc, const float* link_ac, const float* ch_cost,
             const float* weight, int* wt_state, float* wt_cost, int* wt_best, int* wl_src, int* wl_dst,
             int* wl_arc, float* wl_ac, float* wl_excess, int* wframes) {
    const int lane = blockIdx.y;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (!stores(p)) return;
    const int* ctr = counters + (long long)lane * LANE_COUNTERS;
    const int n = ctr[C_NTOK] < Q ? ctr[C_NTOK] : Q, nl = ctr[C_NLINK] < X ? ctr[C_NLINK] : X;
    const int ne = p[P_MODE] == MODE_START ? 0 : ctr[C_NEMIT];
    const long long lq = (long long)lane * Q, lx = (long long)lane * X;
    const long long to = (long long)lane * WT + p[P_WIN_TOK], lo = (long long)lane * WX + p[P_WIN_LINK];
    const int stride = gridDim.x * blockDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        wt_state[to + i] = tok_state[lq + i];
        wt_cost[to + i] = tok_cost[lq + i];
        wt_best[to + i] = tok_best[lq + i];
    }
    const float* frontier = ch_cost + p[P_CHANNEL] * Q;
    for (int l = blockIdx.x * blockDim.x + threadIdx.x; l < nl; l += stride) {
        const int src = link_src[lx + l], dst = link_dst[lx + l], a = link_arc[lx + l];
        const float ac = link_ac[lx + l];
        wl_src[lo + l] = src;
        wl_dst[lo + l] = dst;
        wl_arc[lo + l] = a;
        wl_ac[lo + l] = ac;
        float excess = 0.0f;
        if (src >= 0 && src < Q && dst >= 0 && dst < n) {
            const float cu = l < ne ? frontier[src] : tok_cost[lq + src];
            excess = __fsub_rn(__fadd_rn(__fadd_rn(cu, ac), weight[a]), tok_cost[lq + dst]);
        }
        wl_excess[lo + l] = excess;
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        int* fr = wframes + ((long long)lane * WF + p[P_WIN_FRAME]) * WINDOW_FRAME_INTS;
        fr[WF_TOK] = (int)p[P_WIN_TOK];
        fr[WF_NTOK] = n;
        fr[WF_LINK] = (int)p[P_WIN_LINK];
        fr[WF_NLINK] = nl;
        fr[WF_NEMIT] = ne;
    }
}

// keep[l] of the links [first, end): extra[dst_tok + dst] + excess <= beam
__device__ void keep_links(int first, int end, const int* dst, const float* excess, const unsigned* extra,
                           int dst_tok, float beam, int* keep) {
    for (int l = first + threadIdx.x; l < end; l += blockDim.x) {
        const float via = __fadd_rn(key_cost(extra[dst_tok + dst[l]]), excess[l]);
        keep[l] = via <= beam ? 1 : 0;
    }
}

// flags[first .. first + n): nonzero (kept) become their rank among the kept,
// zero become -1; returns how many are kept, *below how many of them are
// before `split`
__device__ int number_kept(int* flags, int first, int n, int split, int* below, long long* scan_scratch,
                           int* sum_scratch) {
    int running = 0, under = 0;
    for (int base = 0; base < n; base += blockDim.x) {
        const int i = base + threadIdx.x;
        const int keep = i < n && flags[first + i] != 0;
        long long total;
        const long long rank = block_exclusive_scan(keep, scan_scratch, &total);
        under += block_sum(keep && i < split, sum_scratch);
        if (i < n) flags[first + i] = keep ? running + (int)rank : -1;
        running += (int)total;
    }
    *below = under;
    return running;
}

extern "C" __global__ void __launch_bounds__(WINDOW_LANE_THREADS)
window_prune(const long long* params, int WT, int WX, int WF, float beam, const int* wl_src, const int* wl_dst,
             const float* wl_excess, unsigned* wt_extra, int* wl_new, const int* wframes) {
    const int lane = blockIdx.x;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (!flushes(p)) return;
    __shared__ int changed;
    const int* frames = wframes + (long long)lane * WF * WINDOW_FRAME_INTS;
    const long long tb = (long long)lane * WT, lb = (long long)lane * WX;
    unsigned* extra = wt_extra + tb;
    const int* src = wl_src + lb;
    const int* dst = wl_dst + lb;
    const float* excess = wl_excess + lb;
    int* keep = wl_new + lb;
    const int newest = (int)p[P_WIN_FRAME];
    for (int f = newest; f >= 0; --f) {
        const int* fr = frames + f * WINDOW_FRAME_INTS;
        const int t0 = fr[WF_TOK], n = fr[WF_NTOK], l0 = fr[WF_LINK], nl = fr[WF_NLINK], ne = fr[WF_NEMIT];
        const unsigned initial = f == newest ? cost_key(0.0f) : KEY_INF;
        for (int i = threadIdx.x; i < n; i += blockDim.x) extra[t0 + i] = initial;
        __syncthreads();
        if (f < newest) {  // the next frame's emitting links leave from this frame's tokens
            const int* next = fr + WINDOW_FRAME_INTS;
            const int nt0 = next[WF_TOK], nl0 = next[WF_LINK], nne = next[WF_NEMIT];
            for (int l = nl0 + threadIdx.x; l < nl0 + nne; l += blockDim.x) {
                const float via = __fadd_rn(key_cost(extra[nt0 + dst[l]]), excess[l]);
                keep[l] = via <= beam ? 1 : 0;
                if (via <= beam) atomicMin(&extra[t0 + src[l]], cost_key(via));
            }
            __syncthreads();
        }
        for (;;) {  // epsilon links stay inside the frame: relax to the fixpoint
            if (threadIdx.x == 0) changed = 0;
            __syncthreads();
            for (int l = l0 + ne + threadIdx.x; l < l0 + nl; l += blockDim.x) {
                const unsigned k = cost_key(__fadd_rn(key_cost(vload(&extra[t0 + dst[l]])), excess[l]));
                if (k < vload(&extra[t0 + src[l]])) {
                    atomicMin(&extra[t0 + src[l]], k);
                    changed = 1;
                }
            }
            __syncthreads();
            const int again = changed;
            __syncthreads();
            if (!again) break;
        }
        for (int i = threadIdx.x; i < n; i += blockDim.x)
            if (key_cost(extra[t0 + i]) > beam) extra[t0 + i] = KEY_INF;
        __syncthreads();
        keep_links(l0 + ne, l0 + nl, dst, excess, extra, t0, beam, keep);
    }
    // the oldest frame's emitting links leave from tokens sent before: kept by their own extra cost (never one
    // whose source went then, see window_shift)
    keep_links(frames[WF_LINK], frames[WF_LINK] + frames[WF_NEMIT], dst, excess, extra, frames[WF_TOK], beam, keep);
}

extern "C" __global__ void __launch_bounds__(WINDOW_THREADS)
window_number(const long long* params, int WT, int WX, int WF, const unsigned* wt_extra, int* wt_new, int* wl_new,
              int* wframes) {
    const int f = blockIdx.x, lane = blockIdx.y;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (!flushes(p) || f >= sent_frames(p)) return;
    __shared__ long long scan_scratch[32];
    __shared__ int sum_scratch[32];
    int* fr = wframes + ((long long)lane * WF + f) * WINDOW_FRAME_INTS;
    const long long t0 = (long long)lane * WT + fr[WF_TOK];
    const int n = fr[WF_NTOK];
    for (int i = threadIdx.x; i < n; i += blockDim.x) wt_new[t0 + i] = wt_extra[t0 + i] != KEY_INF;
    __syncthreads();
    int emitting, unused;
    const int kept_tok = number_kept(wt_new + t0, 0, n, 0, &unused, scan_scratch, sum_scratch);
    const int kept_link = number_kept(wl_new + (long long)lane * WX, fr[WF_LINK], fr[WF_NLINK], fr[WF_NEMIT],
                                      &emitting, scan_scratch, sum_scratch);
    if (threadIdx.x == 0) {
        fr[WF_KEPT_TOK] = kept_tok;
        fr[WF_KEPT_LINK] = kept_link;
        fr[WF_KEPT_EMIT] = emitting;
    }
}

extern "C" __global__ void __launch_bounds__(WINDOW_THREADS)
window_offsets(const long long* params, int lanes, int WF, int* wframes, long long* totals, int* out) {
    __shared__ long long scratch[32];
    long long entries = 0, tokens = 0, links = 0;
    for (int base = 0; base < lanes; base += blockDim.x) {
        const int lane = base + threadIdx.x;
        const bool on = lane < lanes && flushes(params + (long long)lane * LANE_PARAMS);
        int* frames = wframes + (long long)lane * WF * WINDOW_FRAME_INTS;
        long long e = 0, t = 0, k = 0;
        if (on) {
            e = sent_frames(params + (long long)lane * LANE_PARAMS);
            for (int f = 0; f < e; ++f) {
                t += frames[f * WINDOW_FRAME_INTS + WF_KEPT_TOK];
                k += frames[f * WINDOW_FRAME_INTS + WF_KEPT_LINK];
            }
        }
        long long te, tt, tk;
        long long eo = entries + block_exclusive_scan(e, scratch, &te);
        long long to = tokens + block_exclusive_scan(t, scratch, &tt);
        long long ko = links + block_exclusive_scan(k, scratch, &tk);
        for (int f = 0; f < e; ++f, ++eo) {
            int* fr = frames + f * WINDOW_FRAME_INTS;
            fr[WF_OUT_TOK] = (int)to;
            fr[WF_OUT_LINK] = (int)ko;
            to += fr[WF_KEPT_TOK];
            ko += fr[WF_KEPT_LINK];
            int* h = out + WINDOW_HEADER + 3 * eo;
            h[0] = fr[WF_KEPT_TOK];
            h[1] = fr[WF_KEPT_LINK];
            h[2] = fr[WF_KEPT_EMIT];
        }
        entries += te;
        tokens += tt;
        links += tk;
    }
    if (threadIdx.x == 0) {
        totals[0] = tokens;
        totals[1] = links;
        totals[2] = entries;
        out[0] = (int)tokens;
        out[1] = (int)links;
    }
}

extern "C" __global__ void __launch_bounds__(WINDOW_THREADS)
window_pack(const long long* params, int WT, int WX, int WF, const int* wframes, const long long* totals,
            const int* wt_state, const float* wt_cost, const int* wt_best, const int* wt_new, const int* wl_src,
            const int* wl_dst, const int* wl_arc, const float* wl_ac, const float* wl_excess, const int* wl_new,
            int* out) {
    const int f = blockIdx.x, lane = blockIdx.y;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (!flushes(p) || f >= sent_frames(p)) return;
    const long long T = totals[0], K = totals[1], E = totals[2];
    int* tokens = out + WINDOW_HEADER + 3 * E;
    int* links = tokens + 3 * T;
    const int* fr = wframes + ((long long)lane * WF + f) * WINDOW_FRAME_INTS;
    const long long tb = (long long)lane * WT, lb = (long long)lane * WX;
    const long long t0 = tb + fr[WF_TOK], l0 = lb + fr[WF_LINK];
    const long long before = f > 0 ? tb + fr[WF_TOK - WINDOW_FRAME_INTS] : -1;
    const int ne = fr[WF_NEMIT];
    for (int i = threadIdx.x; i < fr[WF_NTOK]; i += blockDim.x) {
        const int k = wt_new[t0 + i];
        if (k < 0) continue;
        const long long o = fr[WF_OUT_TOK] + k;
        const int b = wt_best[t0 + i];
        tokens[o] = wt_state[t0 + i];
        tokens[T + o] = __float_as_int(wt_cost[t0 + i]);
        tokens[2 * T + o] = b >= 0 ? wl_new[l0 + b] : -1;
    }
    for (int l = threadIdx.x; l < fr[WF_NLINK]; l += blockDim.x) {
        const int k = wl_new[l0 + l];
        if (k < 0) continue;
        const long long o = fr[WF_OUT_LINK] + k;
        const int s = wl_src[l0 + l];
        links[o] = l >= ne ? wt_new[t0 + s] : before >= 0 ? wt_new[before + s] : s;
        links[K + o] = wt_new[t0 + wl_dst[l0 + l]];
        links[2 * K + o] = wl_arc[l0 + l];
        links[3 * K + o] = __float_as_int(wl_ac[l0 + l]);
        links[4 * K + o] = __float_as_int(wl_excess[l0 + l]);
    }
}

// a[to + i] = a[from + i] for i < n, to <= from, in `arrays` arrays at once, by one CTA in block-sized
// chunks: every thread reads its element of each array, one barrier, then writes. A chunk writes below
// the next chunk's first element, so one barrier per chunk keeps every read before its overwrite.
// The first `renumbered` elements of a[0] are written through `renumber` (-1 where out of [0, `before`)).
template <int arrays>
__device__ void move_down(int* const (&a)[arrays], long long to, long long from, int n, int renumbered,
                          const int* renumber, int before) {
    for (int base = 0; base < n; base += blockDim.x) {
        const int i = base + threadIdx.x;
        int value[arrays];
        if (i < n)
            for (int j = 0; j < arrays; ++j) value[j] = a[j][from + i];
        if (i < renumbered) value[0] = value[0] >= 0 && value[0] < before ? renumber[value[0]] : -1;
        __syncthreads();
        if (i < n)
            for (int j = 0; j < arrays; ++j) a[j][to + i] = value[j];
    }
    __syncthreads();
}

extern "C" __global__ void __launch_bounds__(WINDOW_LANE_THREADS)
window_shift(const long long* params, int WT, int WX, int WF, int* wt_state, float* wt_cost, int* wt_best,
             const int* wt_new, int* wl_src, int* wl_dst, int* wl_arc, float* wl_ac, float* wl_excess, int* wframes) {
    const int lane = blockIdx.x;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (!flushes(p) || p[P_LAG] <= 0) return;
    int* frames = wframes + (long long)lane * WF * WINDOW_FRAME_INTS;
    const int sent = sent_frames(p), lag = (int)p[P_LAG];
    const int* first = frames + sent * WINDOW_FRAME_INTS;
    const int* newest = frames + (sent + lag - 1) * WINDOW_FRAME_INTS;
    const int* last_sent = first - WINDOW_FRAME_INTS;
    const int t0 = first[WF_TOK], nt = newest[WF_TOK] + newest[WF_NTOK] - t0;
    const int l0 = first[WF_LINK], nl = newest[WF_LINK] + newest[WF_NLINK] - l0, ne = first[WF_NEMIT];
    const int before = last_sent[WF_NTOK];
    const long long tb = (long long)lane * WT, lb = (long long)lane * WX;
    int* const tokens[3] = {wt_state, (int*)wt_cost, wt_best};
    move_down(tokens, tb, tb + t0, nt, 0, nullptr, 0);
    // the oldest kept frame's emitting sources are in the last sent frame: as numbered there
    int* const links[5] = {wl_src, wl_dst, wl_arc, (int*)wl_ac, (int*)wl_excess};
    move_down(links, lb, lb + l0, nl, ne, wt_new + tb + last_sent[WF_TOK], before);
    if (threadIdx.x == 0) {  // (every thread read the frame table before move_down's barriers)
        for (int j = 0; j < lag; ++j) {  // ascending: entry sent + j is read before entry j is written
            const int* from = frames + (sent + j) * WINDOW_FRAME_INTS;
            int* to = frames + j * WINDOW_FRAME_INTS;
            to[WF_TOK] = from[WF_TOK] - t0;
            to[WF_NTOK] = from[WF_NTOK];
            to[WF_LINK] = from[WF_LINK] - l0;
            to[WF_NLINK] = from[WF_NLINK];
            to[WF_NEMIT] = from[WF_NEMIT];
        }
    }
}
