#!/usr/bin/env bash
# Everything a session with a GPU should run, in one device call (bench/README.md,
# "GPU decoder"), most important first, each step under its own time limit so a
# hang costs one step. Logs and results go to $OUT (the device tool returns it).
#
# Needs, carried in .whl/: kaldifst, pocketsphinx, kaldi-decoder and kaldiio
# wheels for CPython 3.12 (the full TLG is built there, without pynini; Kaldi's
# FasterDecoder is the benchmark's baseline). Expected: about 9 minutes; the step
# limits add up to more, so a slow step cuts the last ones, never the first.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_session}
WORKLOAD=${WORKLOAD:-/tmp/wl}
mkdir -p "$OUT"
step() {  # step NAME SECONDS COMMAND...: run, log to $OUT/NAME.log, print its tail
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s) $(date +%T)"
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    echo "   exit $? $(date +%T)"
    tail -n 8 "$OUT/$name.log"
}

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
# CuPy's own kernels (fill, astype) need the CUDA headers it finds through CUDA_PATH; ours are compiled
# by NVRTC through ctypes (cuda_kernels/nvrtc.py), which also looks in /usr/local/cuda
[ -z "${CUDA_PATH:-}" ] && [ -d /usr/local/cuda ] && export CUDA_PATH=/usr/local/cuda
{ nvidia-smi; python3 -c "import cupy, numba, numpy, sys; print(sys.version); print('cupy', cupy.__version__, \
'numba', numba.__version__, 'numpy', numpy.__version__, 'driver', cupy.cuda.runtime.driverGetVersion(), \
'runtime', cupy.cuda.runtime.runtimeGetVersion()); from cuda_kernels import nvrtc; \
print('nvrtc', nvrtc.version(), nvrtc.library()._name, 'CUDA_PATH', '${CUDA_PATH:-}')"; } >"$OUT/device.txt" 2>&1
head -n 12 "$OUT/device.txt"

# the workload (issue 3: the full TLG without pynini) builds while the first tests run
python3 -m bench.workload build --out "$WORKLOAD" --sizes small,full >"$OUT/workload_build.log" 2>&1 &
build=$!

step kernels_compile 90 python3 -m pytest -x -q -p no:cacheprovider tests/test_nvrtc_compile.py tests/test_cuda_host.py
step gpu_tests 240 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_cuda_decoder.py tests/test_cuda_lattice_window.py \
    tests/test_cuda_stream.py tests/test_bench_harness.py tests/test_cli_decode.py
wait "$build"
echo "== workload build: $(grep -E 'states|done' "$OUT/workload_build.log" | tr '\n' ';')"
export WFST_WORKLOAD="$WORKLOAD"
step gpu_workload_tests 180 python3 -m pytest -q -p no:cacheprovider -m gpu \
    tests/test_cuda_workload.py
step gpu_decoder_full 150 python3 -m bench.gpu_decoder --graph "$WORKLOAD/graphs/full" \
    --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 --beam 15 --max-active 10000 \
    --lattice-beam 8 --lanes 1 32 128 512 --out "$OUT/gpu_decoder_full_lm-medium.json"
step stream_latency_full 120 python3 -m bench.stream_latency --device cuda --lanes 256 \
    --graph "$WORKLOAD/graphs/full" --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 \
    --seconds 5 --max-streams 1024 --out "$OUT/stream_latency_full_lm-medium_cuda.json"
# what the CPU emulator cannot see: out-of-bounds and misaligned device accesses, on two small cases
step memcheck 90 compute-sanitizer --tool memcheck --error-exitcode 9 python3 -m pytest -q -p no:cacheprovider \
    -m gpu tests/test_cuda_decoder.py -k "embedded_example or larger_graph or windows_of_any_length"
# the host's lattice work per lane-frame against the CPU search per frame, on this machine's cores
step lattice_host_full 90 python3 -m bench.lattice_host --graph "$WORKLOAD/graphs/full" \
    --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5 --lanes 128 --threads 1 4 16 \
    --window-frames 32 --out "$OUT/lattice_host_full_lm-medium_window32_lag8.json"
# barriers and warp collectives on real hardware (the emulator checks them only under its own schedules)
step synccheck 60 compute-sanitizer --tool synccheck --error-exitcode 9 python3 -m pytest -q -p no:cacheprovider \
    -m gpu tests/test_cuda_decoder.py -k "embedded_example"
echo "== done $(date +%T)"
