// Lattice segments kept on the device for a window of frames, pruned there,
// and packed for one device-to-host copy (the specification, in numpy, is
// lattice/window_prune.py).
//
// Each lane has a window pool: up to WT tokens (state, cost, best link, extra
// cost key, new index) and WX links (source, destination, arc, acoustic cost,
// excess, new index) of up to WF frames, in frame order, indices frame-local as
// in the packed format; and a frame table, WINDOW_FRAME_INTS per frame. The pool
// starts with P_KEPT frames that earlier flushes pruned and kept there, then the
// frames stored since. The host tracks how full each pool is and sets, per lane,
// P_WIN_FRAME (the frame's slot in the table, -1: not stored), P_WIN_TOK /
// P_WIN_LINK (where its tokens and links go) and P_FLUSH (what the window does
// after storing the frame, FLUSH_*).
//
// window_store: the frame's tokens and links into the pool, each link with its
//   excess (cost[src] + ac + weight[arc]) - cost[dst] in float32, as the CPU
//   search computes it (the source of an emitting link is in the channel's
//   frontier, saved after this); every lane's tokens, and links, in one flat
//   range (spans.cu: count_spans).
// window_prune (one WINDOW_LANE_THREADS CTA per flushing lane: the walk over
//   the frames is serial, so its per-frame loops take as few rounds as they
//   can): extra costs walking back from the newest frame, over the frames after
//   the kept ones when the lane keeps (FLUSH_KEEP), over the whole pool when it
//   sends; the newest frame's tokens count 0, or at an utterance's end
//   (FLUSH_FINAL) what the CPU's final pruning gives them (cost, plus the final
//   cost when final costs count, less the best). A frame's extra costs stay in
//   shared memory while the walk needs them (frames of at most PRUNE_TILE
//   tokens: the relaxation's reads and atomics at random tokens cost no trips
//   to global memory), then go to wt_extra. Links beyond the lattice beam
//   and tokens left without links are dropped (flags in wl_new, INF in
//   wt_extra). Every excess is >= 0 (cost[dst] is the least of its links'
//   sums), so the epsilon relaxation ends; extra costs only grow as frames are
//   added and at the end, so the CPU's final pruning drops all this drops.
// A flush prunes all frames but the newest P_LAG, which stay as they are, to be
// pruned again at the next flush against a newer frame:
// window_number (CTAs over a flushing lane's pruned frames): the survivors
//   numbered in order, frame by frame, and counted.
// window_offsets (one CTA): where each sending lane's frames go in the packed
//   buffer, int32 T, K, then (tokens, links) of each keeping lane's pool after
//   the flush, in lane order, then (tokens, links, emitting links) per frame of
//   every sending lane in lane order, then tok_state[T] tok_cost[T] tok_best[T]
//   link_src[K] link_dst[K] link_arc[K] link_ac[K] link_excess[K]; and where each
//   keeping lane's frames go in its pool (after its kept frames).
// window_pack (CTAs over a sending lane's sent frames): the survivors,
//   renumbered, into the packed buffer.
// window_compact (one WINDOW_LANE_THREADS CTA per lane that keeps or holds
//   frames back): a keeping lane's survivors, renumbered, moved down after its
//   kept frames (so the pool keeps the utterance's lattice, pruned, and the host
//   gets most of it once, at the end, pruned with the final costs); then the
//   frames held back, as stored, after them (or to the start of the pool and of
//   the frame table when the lane sent), the oldest's emitting sources
//   renumbered as the last pruned frame's tokens were (-1: removed; the next
//   window_prune drops such links: extra costs only grow).
#include "common.cuh"

#define WINDOW_THREADS 256
#define WINDOW_LANE_THREADS 1024  // one CTA per lane
#define PRUNE_TILE 4096  // window_prune keeps the extra costs of frames of at most this many tokens in shared memory
#define WF_TOK 0        // first token of the frame in the pool
#define WF_NTOK 1
#define WF_LINK 2       // first link of the frame in the pool
#define WF_NLINK 3
#define WF_NEMIT 4      // emitting links (the first WF_NEMIT)
#define WF_KEPT_TOK 5   // survivors of window_prune
#define WF_KEPT_LINK 6
#define WF_KEPT_EMIT 7
#define WF_OUT_TOK 8    // where the survivors go: the packed buffer or the pool (window_offsets)
#define WF_OUT_LINK 9

__device__ __forceinline__ bool stores(const long long* p) {
    return (p[P_MODE] == MODE_START || p[P_MODE] == MODE_EMIT) && p[P_WIN_FRAME] >= 0;
}

__device__ __forceinline__ bool flushes(const long long* p) { return stores(p) && p[P_FLUSH] != FLUSH_NONE; }

__device__ __forceinline__ bool keeps(const long long* p) { return stores(p) && p[P_FLUSH] == FLUSH_KEEP; }

// the first frame a flush prunes: after the kept ones when it keeps, else the pool's first
__device__ __forceinline__ int first_pruned(const long long* p) { return keeps(p) ? (int)p[P_KEPT] : 0; }

// where the first `kept` frames of a lane's table end in its pool: its tokens (`first` WF_TOK) or links (WF_LINK)
__device__ __forceinline__ int kept_end(const int* frames, int kept, int first) {
    const int* last = frames + (kept - 1) * WINDOW_FRAME_INTS;
    return kept > 0 ? last[first] + last[first + 1] : 0;  // (WF_NTOK and WF_NLINK follow their first)
}

// frames a flush sends or keeps (all from first_pruned): all but the P_LAG newest
__device__ __forceinline__ int sent_frames(const long long* p) { return (int)(p[P_WIN_FRAME] + 1 - p[P_LAG]); }

extern "C" __global__ void __launch_bounds__(WINDOW_THREADS)
window_store(const long long* params, const int* counters, int Q, int X, int WT, int WX, int WF,
             const int* tok_state, const float* tok_cost, const int* tok_best, const int* link_src,
             const int* link_dst, const int* link_arc, const float* link_ac, const float* ch_cost,
             const float* weight, int* wt_state, float* wt_cost, int* wt_best, int* wl_src, int* wl_dst,
             int* wl_arc, float* wl_ac, float* wl_excess, int* wframes, const long long* token_spans,
             const long long* link_spans, int lanes) {
    each_lane(lanes, [&](int lane) {  // the frame's table entries
        const long long* p = params + (long long)lane * LANE_PARAMS;
        if (!stores(p)) return;
        const int* ctr = counters + (long long)lane * LANE_COUNTERS;
        int* fr = wframes + ((long long)lane * WF + p[P_WIN_FRAME]) * WINDOW_FRAME_INTS;
        fr[WF_TOK] = (int)p[P_WIN_TOK];
        fr[WF_NTOK] = lane_tokens(ctr, Q);
        fr[WF_LINK] = (int)p[P_WIN_LINK];
        fr[WF_NLINK] = ctr[C_NLINK] < X ? ctr[C_NLINK] : X;
        fr[WF_NEMIT] = p[P_MODE] == MODE_START ? 0 : ctr[C_NEMIT];
    });
    long long to = 0, lq = 0;
    each_span_item(token_spans, lanes, [&](int lane) {  // every storing lane's tokens
        const long long* p = params + (long long)lane * LANE_PARAMS;
        to = (long long)lane * WT + p[P_WIN_TOK];
        lq = (long long)lane * Q;
        return stores(p);
    }, [&](long long t) {
        wt_state[to + t] = tok_state[lq + t];
        wt_cost[to + t] = tok_cost[lq + t];
        wt_best[to + t] = tok_best[lq + t];
    });
    int n = 0, ne = 0;
    long long lo = 0, lx = 0;
    const float* frontier = 0;
    each_span_item(link_spans, lanes, [&](int lane) {  // and links, with their excess
        const long long* p = params + (long long)lane * LANE_PARAMS;
        const int* ctr = counters + (long long)lane * LANE_COUNTERS;
        n = lane_tokens(ctr, Q);
        ne = p[P_MODE] == MODE_START ? 0 : ctr[C_NEMIT];
        lo = (long long)lane * WX + p[P_WIN_LINK];
        lq = (long long)lane * Q;
        lx = (long long)lane * X;
        frontier = ch_cost + p[P_CHANNEL] * Q;
        return stores(p);
    }, [&](long long j) {
        const int l = (int)j;
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
    });
}

// keep[l] of the links [first, end): extra[dst[l]] + excess <= beam (`extra`: the destinations' frame's)
__device__ void keep_links(int first, int end, const int* dst, const float* excess, const unsigned* extra,
                           float beam, int* keep) {
    for (int l = first + threadIdx.x; l < end; l += blockDim.x) {
        const float via = __fadd_rn(key_cost(extra[dst[l]]), excess[l]);
        keep[l] = via <= beam ? 1 : 0;
    }
}

// extra[0 .. n) of an utterance's last frame as the CPU's final pruning starts them: each token's cost, plus its
// state's final cost when `use_final` and some token's state is final, less the least of these totals
__device__ void final_extras(const int* state, const float* cost, int n, int use_final, const float* final,
                             unsigned* extra, int* int_scratch, unsigned* key_scratch) {
    const float inf = __int_as_float(0x7F800000);
    int final_here = 0;
    if (use_final)
        for (int i = threadIdx.x; i < n; i += blockDim.x) final_here |= final[state[i]] < inf;
    const bool with_final = block_sum(final_here, int_scratch) > 0;
    unsigned least = KEY_NONE;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const unsigned k = cost_key(with_final ? __fadd_rn(cost[i], final[state[i]]) : cost[i]);
        least = k < least ? k : least;
    }
    const float best = key_cost(block_min(least, key_scratch));
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        extra[i] = cost_key(__fsub_rn(with_final ? __fadd_rn(cost[i], final[state[i]]) : cost[i], best));
    __syncthreads();
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
window_prune(const long long* params, int WT, int WX, int WF, float beam, int use_final, const float* final,
             const int* wt_state, const float* wt_cost, const int* wl_src, const int* wl_dst,
             const float* wl_excess, unsigned* wt_extra, int* wl_new, const int* wframes) {
    const int lane = blockIdx.x;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (!flushes(p)) return;
    __shared__ int int_scratch[32];
    __shared__ unsigned key_scratch[32];
    __shared__ unsigned tiles[2][PRUNE_TILE];  // the extra costs of the frame walked and of the one after it
    const int* frames = wframes + (long long)lane * WF * WINDOW_FRAME_INTS;
    const long long tb = (long long)lane * WT, lb = (long long)lane * WX;
    unsigned* extra = wt_extra + tb;
    const int* src = wl_src + lb;
    const int* dst = wl_dst + lb;
    const float* excess = wl_excess + lb;
    int* keep = wl_new + lb;
    const int newest = (int)p[P_WIN_FRAME], first = first_pruned(p);
    const unsigned* after = nullptr;  // the extra costs of the frame after this one (its first token at 0)
    int after_l0 = 0, after_ne = 0;   // and its first link and emitting links, which leave from this frame
    const int* fr = frames + newest * WINDOW_FRAME_INTS;
    int t0 = fr[WF_TOK], n = fr[WF_NTOK], l0 = fr[WF_LINK], nl = fr[WF_NLINK], ne = fr[WF_NEMIT];
    for (int f = newest; f >= first; --f) {
        const int* older = frames + (f > first ? f - 1 : f) * WINDOW_FRAME_INTS;  // read now, used next round
        const int older_t0 = older[WF_TOK], older_n = older[WF_NTOK], older_l0 = older[WF_LINK],
                  older_nl = older[WF_NLINK], older_ne = older[WF_NEMIT];
        // the frame's extra costs in `cur`: one call per memory space, so that each compiles to that space's
        // loads and atomics (a pointer to either would take generic ones)
        auto walk = [&](unsigned* cur, bool tiled) {
            if (f == newest && p[P_FLUSH] == FLUSH_FINAL) {
                final_extras(wt_state + tb + t0, wt_cost + tb + t0, n, use_final, final, cur, int_scratch,
                             key_scratch);
            } else {
                const unsigned initial = f == newest ? cost_key(0.0f) : KEY_INF;
                for (int i = threadIdx.x; i < n; i += blockDim.x) cur[i] = initial;
                __syncthreads();
            }
            if (after != nullptr) {  // the next frame's emitting links leave from this frame's tokens
                for (int l = after_l0 + threadIdx.x; l < after_l0 + after_ne; l += blockDim.x) {
                    const float via = __fadd_rn(key_cost(after[dst[l]]), excess[l]);
                    keep[l] = via <= beam ? 1 : 0;
                    if (via <= beam) atomicMin(&cur[src[l]], cost_key(via));
                }
                __syncthreads();
            }
            for (;;) {  // epsilon links stay inside the frame: relax to the fixpoint
                bool lowered = false;
                for (int l = l0 + ne + threadIdx.x; l < l0 + nl; l += blockDim.x) {
                    const unsigned k = cost_key(__fadd_rn(key_cost(vload(&cur[dst[l]])), excess[l]));
                    if (k < vload(&cur[src[l]])) {
                        atomicMin(&cur[src[l]], k);
                        lowered = true;
                    }
                }
                if (!__syncthreads_or(lowered)) break;
            }
            for (int i = threadIdx.x; i < n; i += blockDim.x) {  // beyond the beam: gone (window_number reads these)
                const unsigned k = key_cost(cur[i]) > beam ? KEY_INF : cur[i];
                cur[i] = k;
                if (tiled) extra[t0 + i] = k;
            }
            __syncthreads();
            keep_links(l0 + ne, l0 + nl, dst, excess, cur, beam, keep);
        };
        const bool tiled = n <= PRUNE_TILE;
        if (tiled)
            walk(tiles[f & 1], true);
        else
            walk(extra + t0, false);
        unsigned* cur = tiled ? tiles[f & 1] : extra + t0;
        after = cur;
        after_l0 = l0;
        after_ne = ne;
        t0 = older_t0, n = older_n, l0 = older_l0, nl = older_nl, ne = older_ne;
    }
    // the first pruned frame's emitting links leave from tokens sent or kept before: kept by their own extra
    // cost (never one whose source went then, see window_compact)
    keep_links(after_l0, after_l0 + after_ne, dst, excess, after, beam, keep);
}

// A surviving link's source, renumbered: link `l` of a frame whose first `ne` links emit, from token `s`
// of the previous frame (new numbers in `previous_new`; null: left as it is) or of its own (`frame_new`).
__device__ __forceinline__ int new_source(int l, int ne, int s, const int* frame_new, const int* previous_new) {
    return l >= ne ? frame_new[s] : previous_new != nullptr ? previous_new[s] : s;
}

// A surviving token's best link `b` of its frame (-1: none), renumbered through the frame's `link_new`.
__device__ __forceinline__ int new_best(int b, const int* link_new) { return b >= 0 ? link_new[b] : -1; }

// one CTA per (frame, lane), the frames of a lane strided over blockIdx.x
extern "C" __global__ void __launch_bounds__(WINDOW_THREADS)
window_number(const long long* params, int WT, int WX, int WF, const unsigned* wt_extra, int* wt_new, int* wl_new,
              int* wframes) {
    const int lane = blockIdx.y;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (!flushes(p)) return;
    __shared__ long long scan_scratch[32];
    __shared__ int sum_scratch[32];
    for (int f = first_pruned(p) + blockIdx.x; f < sent_frames(p); f += gridDim.x) {
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
        __syncthreads();
    }
}

// One CTA. The sending lanes' frames: where each goes in the packed buffer, and their counts; the keeping
// lanes' frames: where each goes in the pool, and each keeping lane's pool size after the flush (tokens,
// links of its kept frames) after the header, in lane order.
extern "C" __global__ void __launch_bounds__(WINDOW_THREADS)
window_offsets(const long long* params, int lanes, int WF, int* wframes, long long* totals, int* out) {
    __shared__ long long scratch[32];
    long long keeping = 0;
    for (int base = 0; base < lanes; base += blockDim.x) {
        const int lane = base + threadIdx.x;
        long long count;
        block_exclusive_scan(lane < lanes && keeps(params + (long long)lane * LANE_PARAMS), scratch, &count);
        keeping += count;
    }
    int* sizes = out + WINDOW_HEADER;
    int* counts = sizes + 2 * keeping;
    long long entries = 0, tokens = 0, links = 0, reports = 0;
    for (int base = 0; base < lanes; base += blockDim.x) {
        const int lane = base + threadIdx.x;
        const long long* p = params + (long long)lane * LANE_PARAMS;
        const bool on = lane < lanes && flushes(p), keep = on && keeps(p);
        int* frames = wframes + (long long)lane * WF * WINDOW_FRAME_INTS;
        long long e = 0, t = 0, k = 0;
        if (on && !keep) {
            e = sent_frames(p);
            for (int f = 0; f < e; ++f) {
                t += frames[f * WINDOW_FRAME_INTS + WF_KEPT_TOK];
                k += frames[f * WINDOW_FRAME_INTS + WF_KEPT_LINK];
            }
        }
        long long te, tt, tk, tr;
        long long eo = entries + block_exclusive_scan(e, scratch, &te);
        long long to = tokens + block_exclusive_scan(t, scratch, &tt);
        long long ko = links + block_exclusive_scan(k, scratch, &tk);
        const long long ro = reports + block_exclusive_scan(keep, scratch, &tr);
        int first = 0;
        if (keep) {  // into the pool, after the kept frames
            first = (int)p[P_KEPT];
            to = kept_end(frames, first, WF_TOK);
            ko = kept_end(frames, first, WF_LINK);
        }
        for (int f = first; on && f < sent_frames(p); ++f) {
            int* fr = frames + f * WINDOW_FRAME_INTS;
            fr[WF_OUT_TOK] = (int)to;
            fr[WF_OUT_LINK] = (int)ko;
            to += fr[WF_KEPT_TOK];
            ko += fr[WF_KEPT_LINK];
            if (keep) continue;
            int* h = counts + 3 * eo++;
            h[0] = fr[WF_KEPT_TOK];
            h[1] = fr[WF_KEPT_LINK];
            h[2] = fr[WF_KEPT_EMIT];
        }
        if (keep) {
            sizes[2 * ro] = (int)to;
            sizes[2 * ro + 1] = (int)ko;
        }
        entries += te;
        tokens += tt;
        links += tk;
        reports += tr;
    }
    if (threadIdx.x == 0) {
        totals[0] = tokens;
        totals[1] = links;
        totals[2] = entries;
        totals[3] = keeping;
        out[0] = (int)tokens;
        out[1] = (int)links;
    }
}

// the sending lanes' frames, renumbered, into the packed buffer; one CTA per (frame, lane), the frames of a lane
// strided over blockIdx.x
extern "C" __global__ void __launch_bounds__(WINDOW_THREADS)
window_pack(const long long* params, int WT, int WX, int WF, const int* wframes, const long long* totals,
            const int* wt_state, const float* wt_cost, const int* wt_best, const int* wt_new, const int* wl_src,
            const int* wl_dst, const int* wl_arc, const float* wl_ac, const float* wl_excess, const int* wl_new,
            int* out) {
    const int lane = blockIdx.y;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    if (!flushes(p) || keeps(p)) return;
    const long long T = totals[0], K = totals[1], E = totals[2], R = totals[3];
    int* tokens = out + WINDOW_HEADER + 2 * R + 3 * E;
    int* links = tokens + 3 * T;
    const long long tb = (long long)lane * WT, lb = (long long)lane * WX;
    for (int f = blockIdx.x; f < sent_frames(p); f += gridDim.x) {
        const int* fr = wframes + ((long long)lane * WF + f) * WINDOW_FRAME_INTS;
        const long long t0 = tb + fr[WF_TOK], l0 = lb + fr[WF_LINK];
        const int* previous_new = f > 0 ? wt_new + tb + fr[WF_TOK - WINDOW_FRAME_INTS] : nullptr;
        const int ne = fr[WF_NEMIT];
        for (int i = threadIdx.x; i < fr[WF_NTOK]; i += blockDim.x) {
            const int k = wt_new[t0 + i];
            if (k < 0) continue;
            const long long o = fr[WF_OUT_TOK] + k;
            const int b = wt_best[t0 + i];
            tokens[o] = wt_state[t0 + i];
            tokens[T + o] = __float_as_int(wt_cost[t0 + i]);
            tokens[2 * T + o] = new_best(b, wl_new + l0);
        }
        for (int l = threadIdx.x; l < fr[WF_NLINK]; l += blockDim.x) {
            const int k = wl_new[l0 + l];
            if (k < 0) continue;
            const long long o = fr[WF_OUT_LINK] + k;
            const int s = wl_src[l0 + l];
            links[o] = new_source(l, ne, s, wt_new + t0, previous_new);
            links[K + o] = wt_new[t0 + wl_dst[l0 + l]];
            links[2 * K + o] = wl_arc[l0 + l];
            links[3 * K + o] = __float_as_int(wl_ac[l0 + l]);
            links[4 * K + o] = __float_as_int(wl_excess[l0 + l]);
        }
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

// One frame's survivors (new index `tok_new` / `link_new` >= 0) moved down to `to_tok` / `to_link` of the
// same pool (lane-relative arrays), chunked as move_down (a survivor's new place is at or below its old one):
// best links renumbered through link_new, emitting sources through `emit_new` (the previous frame's tok_new;
// null: left as they are), epsilon sources and destinations through tok_new.
__device__ void compact_frame(int* const (&tok)[3], int* const (&link)[5], const int* tok_new, const int* link_new,
                              int t0, int n, int l0, int nl, int ne, int to_tok, int to_link, const int* emit_new) {
    for (int base = 0; base < n; base += blockDim.x) {
        const int i = base + threadIdx.x;
        const int k = i < n ? tok_new[t0 + i] : -1;
        int value[3];
        if (k >= 0) {
            value[0] = tok[0][t0 + i];
            value[1] = tok[1][t0 + i];
            const int b = tok[2][t0 + i];
            value[2] = new_best(b, link_new + l0);
        }
        __syncthreads();
        if (k >= 0)
            for (int j = 0; j < 3; ++j) tok[j][to_tok + k] = value[j];
    }
    for (int base = 0; base < nl; base += blockDim.x) {
        const int l = base + threadIdx.x;
        const int k = l < nl ? link_new[l0 + l] : -1;
        int value[5];
        if (k >= 0) {
            const int s = link[0][l0 + l];
            value[0] = new_source(l, ne, s, tok_new + t0, emit_new);
            value[1] = tok_new[t0 + link[1][l0 + l]];
            for (int j = 2; j < 5; ++j) value[j] = link[j][l0 + l];
        }
        __syncthreads();
        if (k >= 0)
            for (int j = 0; j < 5; ++j) link[j][to_link + k] = value[j];
    }
    __syncthreads();
}

// One WINDOW_LANE_THREADS CTA per flushing lane that keeps or holds frames back. A keeping lane's pruned
// frames, compacted after its kept ones (their table entries rewritten in place); then the frames held back
// (all, as stored) after them, or to the pool's start and the table's first entries when the lane sent, the
// oldest's emitting sources renumbered as the last pruned frame's tokens were (-1: removed; the next
// window_prune drops such links: extra costs only grow).
extern "C" __global__ void __launch_bounds__(WINDOW_LANE_THREADS)
window_compact(const long long* params, int WT, int WX, int WF, int* wt_state, float* wt_cost, int* wt_best,
               const int* wt_new, int* wl_src, int* wl_dst, int* wl_arc, float* wl_ac, float* wl_excess,
               const int* wl_new, int* wframes) {
    const int lane = blockIdx.x;
    const long long* p = params + (long long)lane * LANE_PARAMS;
    const bool keep = keeps(p);
    if (!flushes(p) || (!keep && p[P_LAG] <= 0)) return;
    int* frames = wframes + (long long)lane * WF * WINDOW_FRAME_INTS;
    const long long tb = (long long)lane * WT, lb = (long long)lane * WX;
    int* const tokens[3] = {wt_state + tb, (int*)wt_cost + tb, wt_best + tb};
    int* const links[5] = {wl_src + lb, wl_dst + lb, wl_arc + lb, (int*)wl_ac + lb, (int*)wl_excess + lb};
    const int* tok_new = wt_new + tb;
    const int* link_new = wl_new + lb;
    const int sent = sent_frames(p), lag = (int)p[P_LAG];
    // where the last pruned frame's tokens were (their new numbers are in tok_new there), and where the held
    // frames go
    const int last_tok = frames[(sent - 1) * WINDOW_FRAME_INTS + WF_TOK];
    const int last_ntok = frames[(sent - 1) * WINDOW_FRAME_INTS + WF_NTOK];
    const int kept = keep ? (int)p[P_KEPT] : 0;  // where the held frames go, unless pruned frames are kept first
    int to_tok = kept_end(frames, kept, WF_TOK), to_link = kept_end(frames, kept, WF_LINK);
    if (keep) {
        int before = -1;  // where the previous frame's tokens were (their new numbers are in tok_new there)
        for (int f = kept; f < sent; ++f) {
            int* fr = frames + f * WINDOW_FRAME_INTS;
            const int t0 = fr[WF_TOK], n = fr[WF_NTOK], l0 = fr[WF_LINK], nl = fr[WF_NLINK], ne = fr[WF_NEMIT];
            const int out_tok = fr[WF_OUT_TOK], out_link = fr[WF_OUT_LINK];
            const int kept_tok = fr[WF_KEPT_TOK], kept_link = fr[WF_KEPT_LINK], kept_emit = fr[WF_KEPT_EMIT];
            __syncthreads();  // every thread has read the entry before it is rewritten
            compact_frame(tokens, links, tok_new, link_new, t0, n, l0, nl, ne, out_tok, out_link,
                          before >= 0 ? tok_new + before : nullptr);
            if (threadIdx.x == 0) {
                fr[WF_TOK] = out_tok;
                fr[WF_NTOK] = kept_tok;
                fr[WF_LINK] = out_link;
                fr[WF_NLINK] = kept_link;
                fr[WF_NEMIT] = kept_emit;
            }
            before = t0;
            to_tok = out_tok + kept_tok;
            to_link = out_link + kept_link;
        }
    }
    if (lag <= 0) return;
    const int* held = frames + sent * WINDOW_FRAME_INTS;
    const int* newest = frames + (sent + lag - 1) * WINDOW_FRAME_INTS;
    const int t0 = held[WF_TOK], nt = newest[WF_TOK] + newest[WF_NTOK] - t0;
    const int l0 = held[WF_LINK], nl = newest[WF_LINK] + newest[WF_NLINK] - l0, ne = held[WF_NEMIT];
    move_down(tokens, to_tok, t0, nt, 0, nullptr, 0);
    move_down(links, to_link, l0, nl, ne, tok_new + last_tok, last_ntok);
    if (threadIdx.x == 0) {  // (every thread read the frame table before move_down's barriers)
        const int slot = keep ? sent : 0;
        for (int j = 0; j < lag; ++j) {  // ascending: entry sent + j is read before entry slot + j is written
            const int* from = frames + (sent + j) * WINDOW_FRAME_INTS;
            int* to = frames + (slot + j) * WINDOW_FRAME_INTS;
            to[WF_TOK] = from[WF_TOK] - t0 + to_tok;
            to[WF_NTOK] = from[WF_NTOK];
            to[WF_LINK] = from[WF_LINK] - l0 + to_link;
            to[WF_NLINK] = from[WF_NLINK];
            to[WF_NEMIT] = from[WF_NEMIT];
        }
    }
}
