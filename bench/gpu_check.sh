#!/usr/bin/env bash
# The CUDA backend's GPU check, prepared to run in one call on a machine with an NVIDIA GPU
# (the target: one H200, CUDA 13, nvcc, CMake, ninja, pybind11, scikit-build-core, CuPy 14 and
# PyTorch with CUDA; no network, so nothing is downloaded: a missing pure-Python dependency,
# array-api-compat on that image, is installed from wheels carried in .whl/ if there are any).
#
#   1. builds fastdl with FASTDL_CUDA=ON (and, beside it, bench/cuda_ptxas.sh's register and
#      spill log for every kernel);
#   2. runs the plumbing tests that need no GPU (tests/test_cuda_plumbing.py);
#   3. with a GPU: the CUDA tests (tests/test_cuda_kernels.py, tests/test_cuda_tensors.py),
#      compute-sanitizer --tool memcheck over bench/gpu_sanitize.py (every kernel once, CuPy's
#      pool off), and the GPU bench rows (bench/gpu_bench.py: sgemm against cuBLAS, fused Adam
#      against copy bandwidth, the CNN step against PyTorch CUDA), and `fastdl demo --device cuda`
#      for one epoch (where scikit-learn and matplotlib are installed);
#   4. writes gpu_check.log and gpu_check.json (and cuda_ptxas.txt, gpu_bench.json) to $OUT, or
#      to bench/results/ when OUT is unset.
# Without a GPU it builds, runs step 2 and says that it skipped step 3. Meant to finish in under
# 8 minutes. PYTHON picks the interpreter (default python3).
#   bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out_dir="${OUT:-bench/results}"
mkdir -p "$out_dir"
log="$out_dir/gpu_check.log"
: >"$log"
exec > >(tee -a "$log") 2>&1
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
t0=$(date +%s)
declare -A result
say() { echo "== gpu_check [$(($(date +%s) - t0)) s] $*"; }
run_step() {  # run_step NAME TIMEOUT_S COMMAND...: records ok / failed (rc) in result[NAME]
    local name=$1 limit=$2
    shift 2
    say "$name: $*"
    if timeout "$limit" "$@"; then result[$name]=ok; else result[$name]="failed (rc $?)"; fi
    say "$name: ${result[$name]}"
}

say "machine: $(uname -srm); $(nvidia-smi -L 2>/dev/null | head -1 || echo 'no nvidia-smi')"
say "python: $("$PY" --version 2>&1) at $(command -v "$PY")"

# ---- dependencies present, or carried as wheels (never fetched)
if ! "$PY" -c "import array_api_compat" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    say "installing the carried wheels in .whl/ (no index) into /tmp/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
        export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
missing=$("$PY" - <<'PY'
import importlib.util
need = ["numpy", "safetensors", "array_api_compat", "pytest", "hypothesis", "pybind11",
        "scikit_build_core"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
PY
)
if [ -n "$missing" ]; then
    say "MISSING Python packages: $missing (carry their wheels in .whl/; nothing is downloaded)"
    result[dependencies]="missing: $missing"
else
    result[dependencies]=ok
fi

# ---- 1. build (CUDA on where nvcc exists), and the ptxas log beside it
if command -v nvcc >/dev/null 2>&1; then
    (OUT="$out_dir" bash bench/cuda_ptxas.sh >"$out_dir/cuda_ptxas.stdout" 2>&1; echo $? >"$out_dir/cuda_ptxas.rc") &
    ptxas_pid=$!
    run_step build 360 env FASTDL_CUDA=ON "$PY" -m pip install -q --no-build-isolation --no-deps --no-index -e .
    wait "$ptxas_pid"
    result[ptxas]=$([ "$(cat "$out_dir/cuda_ptxas.rc")" = 0 ] && echo "ok (no spills)" || echo "failed: see cuda_ptxas.txt")
    say "ptxas: ${result[ptxas]}"
else
    say "no nvcc: building the CPU part only"
    run_step build 360 "$PY" -m pip install -q --no-build-isolation --no-deps --no-index -e .
    result[ptxas]="skipped: no nvcc"
fi

# ---- 2. what needs no GPU
run_step plumbing_tests 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_plumbing.py

# ---- 3. the GPU part
why=$("$PY" -c "import fastdl; print(fastdl.cuda.unavailable_reason() or '')" 2>&1)
if [ -n "$why" ]; then
    say "SKIPPED the GPU part (CUDA tests, compute-sanitizer, GPU bench rows): $why"
    for s in cuda_tests sanitizer bench demo; do result[$s]="skipped: $why"; done
else
    say "GPU: $("$PY" -c "import fastdl; print(fastdl.info()['cuda'])")"
    run_step cuda_tests 240 "$PY" -m pytest -q -p no:cacheprovider --hypothesis-seed=0 \
        tests/test_cuda_kernels.py tests/test_cuda_tensors.py
    if command -v compute-sanitizer >/dev/null 2>&1; then
        run_step sanitizer 150 compute-sanitizer --tool memcheck --error-exitcode 9 \
            "$PY" bench/gpu_sanitize.py
    else
        result[sanitizer]="skipped: no compute-sanitizer"
    fi
    run_step bench 180 "$PY" -m bench.gpu_bench "$out_dir/gpu_bench.json"
    if "$PY" -c "import sklearn, matplotlib" >/dev/null 2>&1; then
        run_step demo 120 "$PY" -m fastdl.cli demo --device cuda --epochs 1 --limit 2000 \
            --no-progress --out "$out_dir/demo"
    else
        result[demo]="skipped: the demo needs scikit-learn and matplotlib"
    fi
fi

# ---- 4. the JSON summary
summary=""
for k in "${!result[@]}"; do summary+="$k=${result[$k]}"$'\n'; done
SUMMARY="$summary" WHY="$why" ELAPSED=$(($(date +%s) - t0)) OUT_DIR="$out_dir" "$PY" - <<'PY'
import json, os, pathlib
out = pathlib.Path(os.environ["OUT_DIR"])
steps = dict(line.split("=", 1) for line in os.environ["SUMMARY"].splitlines() if line)
doc = {"elapsed_s": int(os.environ["ELAPSED"]), "gpu": os.environ["WHY"] or "present",
       "gpu_part": "skipped" if os.environ["WHY"] else "ran", "steps": steps}
bench = out / "gpu_bench.json"
if bench.exists() and not os.environ["WHY"]:
    doc["bench"] = json.loads(bench.read_text())
(out / "gpu_check.json").write_text(json.dumps(doc, indent=2) + "\n")
print(json.dumps(doc, indent=2))
PY
say "done in $(($(date +%s) - t0)) s; log and JSON in $out_dir"
failed=0
for k in "${!result[@]}"; do case "${result[$k]}" in failed*|missing*) failed=1 ;; esac; done
exit $failed
