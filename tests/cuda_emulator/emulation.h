// CUDA built-ins for compiling the kernels of cuda_kernels/ as plain C++ and
// running them on the CPU (tests only: no GPU in CI). Prepended to a kernel
// file's text by tests/cuda_emulator/build.py.
//
// Every CUDA thread of a block is a fiber on one OS thread (x86-64: a stack
// switch of six callee-saved registers, emu_switch below); blocks of a grid
// run one after another. A fiber runs until it reaches __syncthreads(), a warp
// collective (__shfl_*_sync over the full warp), an optional preemption point
// (every atomic, when preemption is on), or its end. The scheduler resumes
// fibers in FIFO order and runs blocks in grid order, or with preemption on
// both in a seeded random order, so racy orderings of atomics, and blocks that
// count on an earlier block's writes, are explored; a block whose fibers all
// wait at barriers that can never open is reported as a deadlock.
//
// Semantics kept: block barriers count exited threads as arrived; a warp
// collective with the full mask waits for every live thread of the warp;
// __activemask() is the calling thread alone (a legal answer under independent
// thread scheduling); __shared__ is a function-local static (blocks never
// overlap). Floats are IEEE binary32 on SSE with contraction off, as the GPU
// build is with --fmad=false.
//
// Built with AddressSanitizer (WFST_EMULATOR_ASAN: tests/cuda_emulator/build.py),
// every stack switch is announced to it (asan_leave, asan_arrive), so that it
// checks the kernels' accesses against each fiber's stack and each device array.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <utility>
#include <vector>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

struct dim3 {
    unsigned x, y, z;
};

inline dim3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0}, blockDim{1, 1, 1}, gridDim{1, 1, 1};

namespace emu {

constexpr int MAX_THREADS = 1024;
constexpr size_t STACK_BYTES = 64 * 1024;

enum class Wait { running, block_barrier, warp_barrier, done };

struct Fiber {
    void* sp;
    Wait wait;
    void* asan_fake_stack;
};

// Before a stack switch: the stack about to run (`fake`: where to keep this
// one's fake frames, nullptr when it never runs again).
inline void asan_leave(void** fake, const void* bottom, size_t size) {
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}

// After a stack switch, on the stack now running: the one left is reported.
inline void asan_arrive(void* fake, const void** left_bottom, size_t* left_size) {
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(fake, left_bottom, left_size);
#else
    (void)fake, (void)left_bottom, (void)left_size;
#endif
}

// Saves the callee-saved registers on the current stack, stores its pointer in
// *save, continues on stack `next` (as saved by emu_switch or fiber_stack).
extern "C" void emu_switch(void** save, void* next);
asm(R"(
    .text
    .hidden emu_switch
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");

struct Scheduler {
    std::vector<Fiber> fibers = std::vector<Fiber>(MAX_THREADS);
    std::vector<char> stacks = std::vector<char>(MAX_THREADS * STACK_BYTES);
    void* main_sp = nullptr;
    void* main_fake_stack = nullptr;
    const void* main_bottom = nullptr;  // the launching thread's stack, as asan_arrive reports it
    size_t main_size = 0;
    const std::function<void()>* body = nullptr;
    int current = -1;
    int alive = 0;
    int warp_alive[32];
    std::deque<int> ready;
    std::vector<int> block_waiters;
    std::vector<int> warp_waiters[32];
    unsigned long long warp_slots[32][32];
    int barrier_or = 0;         // __syncthreads_or: any predicate of the barrier being met
    int barrier_or_result = 0;  // and of the barrier last opened
    bool preempt = false;
    unsigned long long rng = 1;
    char error[256] = "";
};

inline Scheduler scheduler;

inline unsigned long long next_random() {
    unsigned long long& x = scheduler.rng;  // xorshift64*
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 2685821657736338717ull;
}

// From the current fiber back to the scheduler; returns when the fiber is
// resumed (never, unless `resumable`).
inline void to_scheduler(bool resumable) {
    Scheduler& s = scheduler;
    Fiber& f = s.fibers[s.current];
    asan_leave(resumable ? &f.asan_fake_stack : nullptr, s.main_bottom, s.main_size);
    emu_switch(&f.sp, s.main_sp);
    asan_arrive(f.asan_fake_stack, &s.main_bottom, &s.main_size);
}

inline void suspend() { to_scheduler(true); }

// Stops the launch with `message` (a use of CUDA the emulator does not run, or
// undefined behaviour on a GPU): the fiber is never resumed, the launch returns 3.
[[noreturn]] inline void fail(const char* message) {
    Scheduler& s = scheduler;
    std::snprintf(s.error, sizeof(s.error), "thread %d of block (%u, %u, %u): %s", s.current, blockIdx.x,
                  blockIdx.y, blockIdx.z, message);
    s.fibers[s.current].wait = Wait::done;
    to_scheduler(false);
    std::abort();  // never resumed
}

// an atomic's preemption point: with preemption on, another fiber may run first
inline void maybe_yield() {
    Scheduler& s = scheduler;
    if (!s.preempt || s.current < 0 || next_random() % 3 != 0) return;
    s.ready.push_back(s.current);
    suspend();
}

[[noreturn]] inline void fiber_main() {
    Scheduler& s = scheduler;
    asan_arrive(nullptr, &s.main_bottom, &s.main_size);
    (*s.body)();
    s.fibers[s.current].wait = Wait::done;
    s.alive -= 1;
    s.warp_alive[s.current >> 5] -= 1;
    to_scheduler(false);
    std::abort();  // never resumed
}

// A new fiber's stack: emu_switch's six registers, then fiber_main as the
// return address, entered with the stack aligned as after a call. (Under ASan,
// the frames a fiber left unfinished, when its block ended, stay poisoned:
// unpoisoned here.)
inline void* fiber_stack(char* base) {
#if defined(__SANITIZE_ADDRESS__)
    ASAN_UNPOISON_MEMORY_REGION(base, STACK_BYTES);
#endif
    auto top = (unsigned long long*)(((unsigned long long)(base + STACK_BYTES)) & ~15ull);
    top[-1] = 0;
    top[-2] = (unsigned long long)&fiber_main;
    for (int r = 3; r <= 8; ++r) top[-r] = 0;
    return top - 8;
}

inline void syncthreads() {
    Scheduler& s = scheduler;
    s.fibers[s.current].wait = Wait::block_barrier;
    s.block_waiters.push_back(s.current);
    suspend();
}

// the block's barrier; nonzero if any thread's `predicate` was (each thread reads
// the result as it resumes, before any thread can meet the next barrier)
inline int syncthreads_or(int predicate) {
    Scheduler& s = scheduler;
    if (predicate) s.barrier_or = 1;
    syncthreads();
    return s.barrier_or_result;
}

inline void syncwarp(unsigned mask) {
    Scheduler& s = scheduler;
    int lane = s.current & 31;
    if (mask == (1u << lane)) return;
    if (mask != 0xFFFFFFFFu) fail("a warp mask other than the full warp or the caller alone");
    s.fibers[s.current].wait = Wait::warp_barrier;
    s.warp_waiters[s.current >> 5].push_back(s.current);
    suspend();
}

inline int pick_ready() {
    Scheduler& s = scheduler;
    if (s.ready.empty()) return -1;
    size_t at = s.preempt ? (size_t)(next_random() % s.ready.size()) : 0;
    int f = s.ready[at];
    s.ready.erase(s.ready.begin() + (long)at);
    return f;
}

// Opens whatever barrier can open; false when none can (a deadlock if fibers live).
inline bool open_barriers() {
    Scheduler& s = scheduler;
    bool opened = false;
    if (!s.block_waiters.empty() && (int)s.block_waiters.size() == s.alive) {
        for (int f : s.block_waiters) {
            s.fibers[f].wait = Wait::running;
            s.ready.push_back(f);
        }
        s.block_waiters.clear();
        s.barrier_or_result = s.barrier_or;
        s.barrier_or = 0;
        opened = true;
    }
    for (int w = 0; w < 32; ++w) {
        if (!s.warp_waiters[w].empty() && (int)s.warp_waiters[w].size() == s.warp_alive[w]) {
            if (s.warp_alive[w] != 32) {  // undefined on a GPU: the exited threads' values are read
                std::snprintf(s.error, sizeof(s.error), "warp %d of block (%u, %u, %u): a full-warp collective "
                              "after some of the warp's threads exited", w, blockIdx.x, blockIdx.y, blockIdx.z);
                return false;
            }
            for (int f : s.warp_waiters[w]) {
                s.fibers[f].wait = Wait::running;
                s.ready.push_back(f);
            }
            s.warp_waiters[w].clear();
            opened = true;
        }
    }
    return opened;
}

// Runs one block of `threads` fibers; 0, 1 on a deadlock, 3 after fail().
inline int run_block(int threads) {
    Scheduler& s = scheduler;
    s.alive = threads;
    for (int w = 0; w < 32; ++w) {
        int first = w * 32;
        s.warp_alive[w] = first >= threads ? 0 : (threads - first < 32 ? threads - first : 32);
        s.warp_waiters[w].clear();
    }
    s.block_waiters.clear();
    s.barrier_or = 0;
    s.ready.clear();
    for (int t = 0; t < threads; ++t) {
        Fiber& f = s.fibers[t];
        f.sp = fiber_stack(s.stacks.data() + (size_t)t * STACK_BYTES);
        f.wait = Wait::running;
        s.ready.push_back(t);
    }
    while (s.alive > 0) {
        int f = pick_ready();
        if (f < 0) {
            if (!open_barriers()) {
                s.current = -1;
                return s.error[0] ? 3 : 1;
            }
            continue;
        }
        s.current = f;
        threadIdx = dim3{(unsigned)f, 0, 0};
        asan_leave(&s.main_fake_stack, s.stacks.data() + (size_t)f * STACK_BYTES, STACK_BYTES);
        emu_switch(&s.main_sp, s.fibers[f].sp);
        asan_arrive(s.main_fake_stack, nullptr, nullptr);
        if (s.error[0]) {
            s.current = -1;
            return 3;
        }
    }
    s.current = -1;
    return 0;
}

// Runs a grid, its blocks one after another: in order, or with preemption on in
// a seeded random order (a GPU runs them in any order, so no block may count on
// another's writes of the same launch); 0, or run_block's error (the grid is
// abandoned).
inline int launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, const std::function<void()>& body) {
    if (bx == 0 || bx > (unsigned)MAX_THREADS || (bx & 31u) != 0) {
        std::fprintf(stderr, "cuda emulator: %u threads per block (need a multiple of 32, at most %d)\n", bx,
                     MAX_THREADS);
        return 2;
    }
    Scheduler& s = scheduler;
    s.body = &body;
    s.error[0] = 0;
    gridDim = dim3{gx, gy, gz};
    blockDim = dim3{bx, 1, 1};
    std::vector<dim3> blocks;
    blocks.reserve((size_t)gx * gy * gz);
    for (unsigned z = 0; z < gz; ++z)
        for (unsigned y = 0; y < gy; ++y)
            for (unsigned x = 0; x < gx; ++x) blocks.push_back(dim3{x, y, z});
    if (s.preempt)
        for (size_t i = blocks.size(); i > 1; --i) std::swap(blocks[i - 1], blocks[next_random() % i]);
    for (const dim3& b : blocks) {
        blockIdx = b;
        int status = run_block((int)bx);
        if (status) return status;
    }
    return 0;
}

template <class T>
inline unsigned long long to_bits(T v) {
    unsigned long long b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}

template <class T>
inline T from_bits(unsigned long long b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

// value of `source` lane's v (source outside the warp: the caller's own v)
template <class T>
inline T shuffle(unsigned mask, T v, int source) {
    Scheduler& s = scheduler;
    int lane = s.current & 31, warp = s.current >> 5;
    if (mask == (1u << lane)) return v;
    s.warp_slots[warp][lane] = to_bits(v);
    syncwarp(mask);
    T r = (source >= 0 && source < 32) ? from_bits<T>(s.warp_slots[warp][source]) : v;
    syncwarp(mask);
    return r;
}

}  // namespace emu

extern "C" const char* emu_error() { return emu::scheduler.error; }

extern "C" void emu_configure(int preempt, unsigned long long seed) {
    emu::scheduler.preempt = preempt != 0;
    emu::scheduler.rng = seed * 2 + 1;
}

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

inline void __syncthreads() { emu::syncthreads(); }
inline int __syncthreads_or(int predicate) { return emu::syncthreads_or(predicate); }
inline void __threadfence() { emu::maybe_yield(); }
inline unsigned __activemask() { return 1u << (emu::scheduler.current & 31); }
inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) { emu::syncwarp(mask); }
template <class T>
inline T __shfl_sync(unsigned mask, T v, int source) { return emu::shuffle(mask, v, source & 31); }
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned d) {
    return emu::shuffle(mask, v, (emu::scheduler.current & 31) + (int)d);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned d) {
    return emu::shuffle(mask, v, (emu::scheduler.current & 31) - (int)d);
}

inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline float __int_as_float(int x) { return emu::from_bits<float>((unsigned)x); }
inline float __uint_as_float(unsigned x) { return emu::from_bits<float>(x); }
inline int __float_as_int(float x) { return (int)(unsigned)emu::to_bits(x); }
inline unsigned __float_as_uint(float x) { return (unsigned)emu::to_bits(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __double2float_rn(double x) { return (float)x; }

// IEEE binary16 bits to float (exact)
inline float host_half_to_float(unsigned short h) {
    unsigned sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
    if (exponent == 0x1Fu) return __uint_as_float(sign | 0x7F800000u | (mantissa << 13));
    if (exponent == 0) {
        float v = std::ldexp((float)mantissa, -24);
        return sign ? -v : v;
    }
    return __uint_as_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

#define EMU_ATOMIC(T)                                                                                 \
    inline T atomicAdd(T* p, T v) { emu::maybe_yield(); T o = *p; *p = o + v; return o; }             \
    inline T atomicMin(T* p, T v) { emu::maybe_yield(); T o = *p; *p = v < o ? v : o; return o; }     \
    inline T atomicExch(T* p, T v) { emu::maybe_yield(); T o = *p; *p = v; return o; }                \
    inline T atomicOr(T* p, T v) { emu::maybe_yield(); T o = *p; *p = o | v; return o; }              \
    inline T atomicCAS(T* p, T expected, T v) {                                                       \
        emu::maybe_yield();                                                                           \
        T o = *p;                                                                                     \
        if (o == expected) *p = v;                                                                    \
        return o;                                                                                     \
    }
EMU_ATOMIC(int)
EMU_ATOMIC(unsigned)
EMU_ATOMIC(unsigned long long)
#undef EMU_ATOMIC
