#!/usr/bin/env bash
# The launch settings swept in one device call (bench/README.md, "GPU decoder"),
# for a session with less device time than bench/gpu_session.sh takes: the GPU
# tests of the decoder and streams (memcheck beside them) while the full TLG
# builds; the lanes benchmark at 512 lanes over grid depths (--blocks-per-sm);
# then every lane count at the default depth and at the fastest, each with and
# without CUDA graphs, with Kaldi's FasterDecoder on one core; the step profile
# at the fastest depth last. Needs bench/gpu_session.sh's wheels in .whl/.
DEADLINE=${DEADLINE:-330}
source "$(dirname "$0")/gpu_session_common.sh"

timeout 200 python3 -m bench.workload build --out "$WORKLOAD" --sizes full >"$LOGS/workload_build.log" 2>&1 &
build=$!
step memcheck 120 compute-sanitizer --tool memcheck --error-exitcode 9 $PYTEST -m gpu tests/test_cuda_decoder.py \
    -k "embedded_example or graphs_and_deeper" &
sanitizer=$!
step gpu_tests 150 $PYTEST -m gpu tests/test_cuda_decoder.py tests/test_cuda_stream.py
await "$build"
await "$sanitizer"
echo "== workload build at ${SECONDS}s: $(grep -E 'states|done|rror' "$LOGS/workload_build.log" | tr '\n' ';')"
export WFST_WORKLOAD="$WORKLOAD"
BENCH="python3 -m bench.gpu_decoder --graph $WORKLOAD/graphs/full --data $WORKLOAD/data/full/lm-medium.npz
    --acoustic-scale 0.5 --beam 15 --max-active 10000 --lattice-beam 8 --skip-riva"
step depths_512 80 $BENCH --lanes 512 --blocks-per-sm 4 8 16 32 64 --out "$LOGS/gpu_decoder_depths_512.json"
fastest=$(python3 -c "import json, sys; runs = json.load(open(sys.argv[1]))['runs']; \
print(max((r for r in runs if 'rtfx' in r), key=lambda r: r['rtfx'])['blocks_per_sm'])" \
    "$LOGS/gpu_decoder_depths_512.json" 2>/dev/null || echo 16)
echo "== fastest depth at 512 lanes: $fastest blocks per SM"
# the fastest depth with graphs first: a step cut short keeps the runs it finished, most wanted first
depths=$fastest
[ "$fastest" != 4 ] && depths="$fastest 4"
step gpu_decoder_full 150 $BENCH --lanes 1 32 128 512 1024 --blocks-per-sm $depths --launch-graphs on off \
    --out "$LOGS/gpu_decoder_full_lm-medium.json"
step gpu_step_profile_full 40 python3 -m bench.gpu_step_profile --graph "$WORKLOAD/graphs/full" \
    --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 --lanes 512 --blocks-per-sm "$fastest" \
    --out "$LOGS/gpu_step_profile_full_lm-medium_kernels.json"
pack
echo "== done at ${SECONDS}s"
