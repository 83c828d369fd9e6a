#!/usr/bin/env bash
# Everything a session with a GPU should run, in one device call (bench/README.md,
# "GPU decoder"), most important first; work that times nothing runs beside other
# work (the graph build beside the tests, the sanitizers beside the tests), the
# benchmarks run alone. Each step runs under its own time limit, cut to what is
# left before DEADLINE (seconds from the start), so a hang costs one step and the
# call ends inside the device tool's 600 s. Logs, results and
# the graphs' build records are packed into $OUT/session.tgz after every step
# (the device tool returns at most 8 files), so a cut call still returns them.
#
# Needs, carried in .whl/: kaldifst, pocketsphinx, kaldi-decoder, kaldiio and
# riva-asrlib-decoder wheels for CPython 3.12 (the full TLG is built there,
# without pynini; Kaldi's FasterDecoder is the benchmark's baseline on one core,
# riva's batched CUDA decoder on the GPU).
DEADLINE=${DEADLINE:-560}
source "$(dirname "$0")/gpu_session_common.sh"

# the workload (issue 3: the full TLG without pynini) builds while the tests run
timeout 300 python3 -m bench.workload build --out "$WORKLOAD" --sizes small,full >"$LOGS/workload_build.log" 2>&1 &
build=$!

step kernels_compile 90 $PYTEST -x tests/test_nvrtc_compile.py
# what the CPU emulator cannot see (out-of-bounds and misaligned device accesses; barriers and warp
# collectives under the hardware's schedules), on small cases, beside the GPU tests
(
    sanitize memcheck 120 "embedded_example or larger_graph or windows_of_any_length or graphs_and_deeper"
    sanitize synccheck 60 embedded_example
) &
sanitizers=$!
step gpu_tests 220 $PYTEST -m gpu --maxfail=5 $GPU_TESTS
await "$build"
echo "== workload build at ${SECONDS}s: $(grep -E 'states|done|rror' "$LOGS/workload_build.log" | tr '\n' ';')"
await "$sanitizers"
export WFST_WORKLOAD="$WORKLOAD"
# ours and riva's (where its wheel was carried) at each lane count, Kaldi's FasterDecoder on one core
step gpu_decoder_full 200 python3 -m bench.gpu_decoder --graph "$WORKLOAD/graphs/full" \
    --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 --beam 15 --max-active 10000 \
    --lattice-beam 8 --lanes 1 32 128 512 1024 --out "$LOGS/gpu_decoder_full_lm-medium.json"
# lane groups (the host's work on one group's step beside the device's on the others') and scores handed
# over on the device (as riva's are) against numpy input
step lane_groups_full 90 python3 -m bench.gpu_decoder --graph "$WORKLOAD/graphs/full" \
    --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 --beam 15 --max-active 10000 \
    --lattice-beam 8 --lanes 512 1024 --skip-riva --lane-groups 1 2 4 --scores-on host device \
    --out "$LOGS/gpu_decoder_full_lm-medium_groups.json"
# whether the step loop's thread waits for the GIL behind the lattice workers: the same runs with Python's
# GIL switch interval at 0.2 ms instead of 5 ms (compare rtfx and step_loop.host_cpu with the sweep's)
step gil_switch_full 90 python3 -m bench.gpu_decoder --graph "$WORKLOAD/graphs/full" \
    --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 --beam 15 --max-active 10000 \
    --lattice-beam 8 --lanes 512 1024 --skip-riva --switch-interval 0.0002 \
    --out "$LOGS/gpu_decoder_full_lm-medium_switch0.0002.json"
# where a step's time goes: each kernel's device time, the host's parts
step gpu_step_profile_full 75 python3 -m bench.gpu_step_profile --graph "$WORKLOAD/graphs/full" \
    --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 --lanes 512 --lane-groups 1 2 \
    --out "$LOGS/gpu_step_profile_full_lm-medium_kernels.json"
# what bounds the heaviest kernels (memory, latency, occupancy): Nsight Compute on one launch of each
step ncu_kernels_full 90 ncu --target-processes all --kernel-name regex:"window_prune|window_compact|emit_expand|frame_prologue" \
    --launch-skip 400 --launch-count 4 --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
    --section LaunchStats --section WarpStateStats --log-file "$LOGS/ncu_kernels_full.txt" \
    python3 -m bench.gpu_step_profile --graph "$WORKLOAD/graphs/full" --data "$WORKLOAD/data/full/lm-medium.npz" \
    --acoustic-scale 0.5 --lanes 512
step stream_latency_full 120 python3 -m bench.stream_latency --device cuda --lanes 256 \
    --graph "$WORKLOAD/graphs/full" --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 \
    --seconds 3 --start-streams 128 --max-streams 2048 --out "$LOGS/stream_latency_full_lm-medium_cuda.json"
step gpu_workload_tests 150 $PYTEST -m gpu tests/test_cuda_workload.py
# the host's lattice work per lane-frame against the CPU search per frame, on this machine's cores
step lattice_host_full 90 python3 -m bench.lattice_host --graph "$WORKLOAD/graphs/full" \
    --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 --lanes 512 --threads 1 16 --stagger 1 0 \
    --out "$LOGS/lattice_host_full_lm-medium_window16_lag8.json"
pack
echo "== done at ${SECONDS}s"
