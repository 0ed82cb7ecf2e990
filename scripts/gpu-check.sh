#!/usr/bin/env bash
# The GPU checks as one script, for a machine with an NVIDIA GPU and CUDA builds of JAX and
# PyTorch but no network (wheels of Keras and what it needs beyond them may be carried in .whl/):
#   1. the conformance suite on keras3:jax and keras3:torch, on the GPU;
#   2. the benchmark group on each, as pytest-benchmark JSON;
#   3. the accuracy table of the dtype axis from the suite JSON (accuracy.md).
# Every run pins float32 matmuls (TF32 off), as the suite does everywhere.
# Everything lands in $OUT (default gpu-results/), eight files at most: log.txt, suite-*.json,
# draft-*.toml (a skeleton record for each unexpected result, device-scoped), accuracy.md, bench-*.json.
# Turn the benchmark JSON into a table and plots anywhere: keras-conformance bench-report OUT/bench-*.json
# QUICK=1 runs a few cases and benchmarks only, to try the script; BENCH_K=EXPR selects benchmarks (pytest -k),
# BENCH_IMPLS="keras3:jax" the implementations benchmarked.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
if ! python3 -c "import keras" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
plugin=(-p conformance.engine.plugin)  # the pytest plugin, unless keras-conformance is installed and brings it
python3 -c "import importlib.metadata as m, sys; sys.exit(any(e.value == 'conformance.engine.plugin' for e in m.entry_points(group='pytest11')))" || plugin=()
if [ "${QUICK:-0}" = 1 ]; then cases=(-k "notebook-init or dropout-rate-0.1"); benches=(-k "matmul or medium-eager"); else cases=(); benches=(); fi
[ -n "${BENCH_K:-}" ] && benches=(-k "$BENCH_K")  # BENCH_K="matmul or stack": some benchmarks only
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || echo "no nvidia-smi"
KERAS_BACKEND=jax python3 -c "import sys, jax, torch, keras, numpy; print(sys.version.split()[0], 'jax', jax.__version__, jax.devices(), 'torch', torch.__version__, torch.version.cuda, torch.cuda.is_available(), 'keras', keras.__version__, 'numpy', numpy.__version__)"
# SIGINT at the time limit: pytest then reports what ran and writes FILE.partial
suite() {  # suite NAME IMPL SECONDS [env assignments ...]
    local name=$1 impl=$2 limit=$3; shift 3
    echo "== suite $name ($impl $*)"
    env "$@" timeout -s INT "$limit" python3 -m pytest "${plugin[@]}" -p no:cacheprovider -q -rfE \
        tests/test_conformance.py --impl "$impl" --conformance-json "$OUT/suite-$name.json" \
        --draft-expectations "$OUT/draft-$name.toml" "${cases[@]}"
    echo "== suite $name: exit $?"
}
bench() {  # bench IMPL SECONDS
    echo "== benchmarks $1"
    timeout -s INT "$2" python3 -m pytest "${plugin[@]}" -p no:cacheprovider -q tests/benchmarks --benchmarks \
        --impl "$1" --benchmark-json "$OUT/bench-${1#keras3:}.json" --benchmark-max-time=0.5 \
        --benchmark-columns=median,iqr,rounds "${benches[@]}"
    echo "== benchmarks $1: exit $?"
}
# Time limits (seconds) sized so that the whole script ends within 9 minutes; the benchmarks last,
# since an interrupted benchmark run still writes the JSON of what it measured.
suite torch keras3:torch 120
suite jax keras3:jax 240  # the dtype axis: about 80 s from a cold compile cache on a CPU
for impl in ${BENCH_IMPLS:-keras3:torch keras3:jax}; do bench "$impl" 75; done
# The dtype axis's measured errors on the GPU, as the accuracy table of docs/topics.md
if python3 scripts/accuracy-table.py "$OUT"/suite-*.json > "$OUT/accuracy.tmp"; then mv "$OUT/accuracy.tmp" "$OUT/accuracy.md"
else rm -f "$OUT/accuracy.tmp"; echo "no accuracy table (a suite run left no JSON)"; fi
