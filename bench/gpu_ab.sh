#!/usr/bin/env bash
# The decoder of this tree against a base tree's, in one device call: the full
# TLG's lanes benchmark (bench.gpu_decoder, the issue's settings) at LANES
# lanes, the base first, then this tree, ROUNDS times in turn (runs on one
# machine drift: interleaved, each side's rounds meet the same drift). Each
# tree keeps its own numba cache; the workload is built first when the machine
# has none. The base tree travels with the call (its git metadata there may lack
# the base commit); here, before the call:
#
#   rm -rf .ab_base && mkdir .ab_base && git archive REV wfst cuda_kernels lattice bench/*.py bench/workload \
#       pyproject.toml | tar -x -C .ab_base; echo /.ab_base/ >> .git/info/exclude
#
# Device tool: carry [".whl", ".ab_base"], command
# `OUT=$OUT DEADLINE=360 bash bench/gpu_ab.sh`. The summary prints RTFx per
# tree, round and lane count, then each kernel's ms per step in either tree
# (bench.gpu_step_profile at PROFILE_LANES lanes); the JSON records land in
# session.tgz.
DEADLINE=${DEADLINE:-360}
source "$(dirname "$0")/gpu_session_common.sh"
BASE=${BASE:-.ab_base}
LANES=${LANES:-512 1024}
ROUNDS=${ROUNDS:-2}
[ -f "$BASE/wfst/__init__.py" ] || { echo "no base tree in $BASE (see this script's header)"; exit 2; }
here=$(pwd)
base=$(cd "$BASE" && pwd)
if [ ! -f "$WORKLOAD/graphs/full/build.json" ]; then
    step workload_build 200 python3 -m bench.workload build --out "$WORKLOAD" --sizes full
fi
export WFST_WORKLOAD="$WORKLOAD"
on_side() {  # on_side SIDE NAME SECONDS MODULE ARGS...: a step running python3 -m MODULE in SIDE's tree
    local tree=$here name=$2 limit=$3 digest
    [ "$1" = base ] && tree=$base
    shift 3
    digest=$(cat "$tree"/wfst/*.py "$tree"/lattice/*.py | sha256sum | cut -c1-16)
    step "$name" "$limit" env -C "$tree" NUMBA_CACHE_DIR="/tmp/numba_cache/$digest" python3 -m "$@"
}
DATA=(--graph "$WORKLOAD/graphs/full" --data "$WORKLOAD/data/full/lm-medium.npz" --acoustic-scale 0.5)
for round in $(seq "$ROUNDS"); do
    for side in base new; do
        # shellcheck disable=SC2086  # LANES is a list
        on_side "$side" "ab_${side}_${round}" 120 bench.gpu_decoder "${DATA[@]}" --beam 15 --max-active 10000 \
            --lattice-beam 8 --skip-riva --lanes $LANES --out "$LOGS/ab_${side}_${round}.json"
    done
done
# where a step's time goes, kernel by kernel (events around every launch), at PROFILE_LANES lanes
for side in base new; do
    on_side "$side" "ab_profile_${side}" 60 bench.gpu_step_profile "${DATA[@]}" --lanes "${PROFILE_LANES:-512}" \
        --out "$LOGS/ab_profile_${side}.json"
done
python3 - "$LOGS" <<'EOF'
import json, pathlib, sys
logs = pathlib.Path(sys.argv[1])
for path in sorted(logs.glob("ab_*_[0-9]*.json")):
    record = json.loads(path.read_text())
    runs = ", ".join(f"{r['lanes']} lanes {r['rtfx']:,.0f} RTFx ({r['identical_to_cpu']} identical)"
                     for r in record["runs"] if "rtfx" in r)
    print(f"{path.stem}: {record['source_digest'][:12]} Kaldi {record['kaldi_faster_rtfx'] or 0:.1f}: {runs}")
profiles = {side: json.loads(path.read_text())["runs"][0] for side in ("base", "new")
            if (path := logs / f"ab_profile_{side}.json").exists()}
if len(profiles) == 2:
    base, new = (profiles[side]["kernel_ms_per_step"] for side in ("base", "new"))
    print(f"ms per step: base {profiles['base']['ms_per_step']:.2f}, new {profiles['new']['ms_per_step']:.2f}")
    for kernel in sorted(set(base) | set(new), key=lambda k: -max(base.get(k, 0), new.get(k, 0))):
        print(f"  {kernel:16} base {base.get(kernel, 0):6.3f}  new {new.get(kernel, 0):6.3f}")
EOF
pack
echo "== done at ${SECONDS}s"
