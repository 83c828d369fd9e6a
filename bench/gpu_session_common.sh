# What every device call runs first (sourced by bench/gpu_session.sh and
# bench/gpu_launch_sweep.sh, which set DEADLINE, their seconds from the start):
# the carried wheels installed, the device described in device.txt, and the
# helpers: step NAME SECONDS COMMAND runs a step under its own time limit, cut
# to what is left before DEADLINE, logs it to NAME.log and packs every log into
# $OUT/session.tgz (the device tool returns at most 8 files, so a cut call still
# returns them); sanitize TOOL SECONDS TESTS runs a step of compute-sanitizer over
# decoder tests; await PID waits for a background job while time is left; $PYTEST
# runs pytest verbosely, each test under a time limit where pytest-timeout imports; $GPU_TESTS names
# the test files with gpu-marked tests.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_session}
# the commit the benchmarks' records name (bench/provenance.py): the device's copy of the tree may carry stale
# git metadata, so the call passes it, COMMIT=$(git rev-parse HEAD) written out on the calling machine
export WFST_COMMIT=${COMMIT:-}
WORKLOAD=${WORKLOAD:-/tmp/wl}
LOGS=$(mktemp -d)
mkdir -p "$OUT"
left() { echo $((DEADLINE - SECONDS)); }
await() {  # await PID: wait for a background job while time is left
    while kill -0 "$1" 2>/dev/null && [ "$(left)" -gt 15 ]; do sleep 2; done
}
pack() {
    mkdir -p "$LOGS/graphs"
    for size in small full; do
        [ -f "$WORKLOAD/graphs/$size/build.json" ] && cp "$WORKLOAD/graphs/$size/build.json" "$LOGS/graphs/$size.json"
    done
    # (tar exits 1 when a log grows while it is read, as the steps beside this one write theirs: still a good archive)
    tar --warning=no-file-changed -czf "$OUT/session.tgz.$BASHPID" -C "$LOGS" .
    if [ $? -le 1 ]; then mv "$OUT/session.tgz.$BASHPID" "$OUT/session.tgz"; else rm -f "$OUT/session.tgz.$BASHPID"; fi
}
sanitize() {  # sanitize TOOL SECONDS TESTS: compute-sanitizer's TOOL over the decoder tests matching TESTS (-k)
    step "$1" "$2" compute-sanitizer --tool "$1" --error-exitcode 9 $PYTEST -m gpu tests/test_cuda_decoder.py -k "$3"
}
step() {  # step NAME SECONDS COMMAND...: run, log to NAME.log, print its tail, pack
    local name=$1 limit=$2
    shift 2
    [ "$(left)" -lt "$limit" ] && limit=$(left)
    if [ "$limit" -lt 15 ]; then echo "== $name skipped: ${limit}s left"; return; fi
    echo "== $name (limit ${limit}s, at ${SECONDS}s)"
    timeout -k 5 "$limit" "$@" >"$LOGS/$name.log" 2>&1
    echo "   exit $? at ${SECONDS}s"
    grep -E "passed|failed|error|Error|FAIL|speedup|RTFx|ms per step|written|wrote|Traceback" "$LOGS/$name.log" \
        | tail -n 8
    pack
}

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
# CuPy's own kernels (fill, astype) need the CUDA headers it finds through CUDA_PATH; ours are compiled
# by NVRTC through ctypes (cuda_kernels/nvrtc.py), which also looks in /usr/local/cuda
[ -z "${CUDA_PATH:-}" ] && [ -d /usr/local/cuda ] && export CUDA_PATH=/usr/local/cuda
# numba's cache misses an edit to a numba function compiled into a caller from another file, and a warm machine
# keeps the last call's caches: they go in a folder named by the sources' digest (as tests/conftest.py does)
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/numba_cache/$(cat wfst/*.py lattice/*.py | sha256sum | cut -c1-16)}
{ echo "commit ${WFST_COMMIT:-not given}"; nvidia-smi; python3 -c "import cupy, numba, numpy, sys; print(sys.version); print('cupy', cupy.__version__, \
'numba', numba.__version__, 'numpy', numpy.__version__, 'driver', cupy.cuda.runtime.driverGetVersion(), \
'runtime', cupy.cuda.runtime.runtimeGetVersion()); from cuda_kernels import nvrtc; \
print('nvrtc', nvrtc.version(), nvrtc.library()._name, 'CUDA_PATH', '${CUDA_PATH:-}')"; } >"$LOGS/device.txt" 2>&1
grep -E "commit|H200|H100|cupy|nvrtc|Error" "$LOGS/device.txt"
# a test that hangs ends its pytest (stacks dumped) rather than the whole step's time
PYTEST="python3 -m pytest -v -rfE --durations=15 -p no:cacheprovider"
python3 -c "import pytest_timeout" 2>/dev/null && PYTEST="$PYTEST --timeout=100 --timeout-method=thread"
# the test files with gpu-marked tests, but the workload's (a step of its own): pytest -m gpu over all of
# tests/ would stop at collecting the files that import pynini, which the device machine lacks. The kernels'
# own tests first, then the decoder's and the streams', then the rest: a step cut by its time limit has run
# the newest device code's tests
GPU_TESTS=$(grep -l "mark.gpu\|cupy_module" tests/test_*.py | grep -v test_cuda_workload | awk '{print (/test_cuda_(decoder|stream)/ ? 1 : /test_cuda_/ ? 0 : 2), $0}' | sort | cut -d" " -f2)
