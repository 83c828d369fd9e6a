#!/usr/bin/env bash
# The shorter device call (bench/README.md, "GPU decoder"), for a session with
# less device time than bench/gpu_session.sh takes: the NVRTC tests and every
# gpu-marked test but the workload's (memcheck and synccheck beside them) while the full TLG
# builds; the lanes benchmark, 1 to 2048 lanes, with Kaldi's FasterDecoder on
# one core; the step profile at 512 lanes; then 1, 2 and 4 lane groups with
# host and device scores at 512 and 1024 lanes (--lane-groups, --scores-on); 8
# and 16 lattice workers at 512 lanes (--threads), their channels dealt two
# ways (--lattice-stagger 0 1); the lattice workers alone at 512 lanes, a
# step's flushes on one worker or spread (bench.lattice_host --stagger 1 0);
# racecheck on the embedded example where time is left.
# Most important first: a deadline cuts the last steps. Needs
# bench/gpu_session.sh's wheels in .whl/.
DEADLINE=${DEADLINE:-560}
source "$(dirname "$0")/gpu_session_common.sh"

timeout 200 python3 -m bench.workload build --out "$WORKLOAD" --sizes full --sets lm-medium >"$LOGS/workload_build.log" 2>&1 &
build=$!
# what the CPU emulator cannot see, on small cases beside the GPU tests: out-of-bounds device accesses, then
# barriers and warp collectives under the hardware's schedules
(sanitize memcheck 120 "embedded_example or lane_groups_change"; sanitize synccheck 60 embedded_example) &
sanitizer=$!
step kernels_compile 60 $PYTEST -x tests/test_nvrtc_compile.py
step gpu_tests 240 $PYTEST -m gpu --maxfail=5 $GPU_TESTS
await "$build"
await "$sanitizer"
echo "== workload build at ${SECONDS}s: $(grep -E 'states|done|rror' "$LOGS/workload_build.log" | tr '\n' ';')"
export WFST_WORKLOAD="$WORKLOAD"
BENCH="python3 -m bench.gpu_decoder --graph $WORKLOAD/graphs/full --data $WORKLOAD/data/full/lm-medium.npz
    --acoustic-scale 0.5 --beam 15 --max-active 10000 --lattice-beam 8 --skip-riva"
step gpu_decoder_full 150 $BENCH --lanes 1 32 128 512 1024 2048 --out "$LOGS/gpu_decoder_full_lm-medium.json"
step gpu_step_profile_full 60 python3 -m bench.gpu_step_profile --graph "$WORKLOAD/graphs/full" \
    --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 --lanes 512 \
    --out "$LOGS/gpu_step_profile_full_lm-medium_kernels.json"
step groups_512_1024 100 $BENCH --lanes 512 1024 --lane-groups 1 2 4 --scores-on host device \
    --out "$LOGS/gpu_decoder_groups.json"
# fewer lattice workers (fewer rivals for the step loop's thread: the GIL, the cores; 16, the default), and a
# step's flushes spread over them (stagger 0, the default) or on fewer, fewer of them woken per step (stagger 1)
step workers_512 60 $BENCH --lanes 512 --threads 8 16 --lattice-stagger 0 1 \
    --out "$LOGS/gpu_decoder_workers_512.json"
# the lattice workers alone on this machine's cores: a step's flushes dealt to one worker (stagger 1) or spread
step lattice_host_spread 60 python3 -m bench.lattice_host --graph "$WORKLOAD/graphs/full" \
    --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 --lanes 512 --threads 16 --stagger 1 0 \
    --out "$LOGS/lattice_host_full_lm-medium_window16_lag8_spread_device.json"
# shared-memory races (window_prune's tiles, tie_bfs's levels) where time is left: slow under racecheck
sanitize racecheck 90 embedded_example
pack
echo "== done at ${SECONDS}s"
