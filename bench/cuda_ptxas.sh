#!/usr/bin/env bash
# Compiles every CUDA file (csrc/cuda/*.cu) with nvcc for sm_80 and sm_90, warnings as errors,
# and records ptxas's registers, spills and shared memory per kernel: the build log the CUDA
# backend's issue asks for. Needs nvcc, not a GPU. Writes $OUT/cuda_ptxas.txt (or
# bench/results/cuda_ptxas.txt when OUT is unset) and prints a one-line summary per kernel;
# exits non-zero when a file fails to compile or a kernel spills.
#   bash bench/cuda_ptxas.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC="${NVCC:-nvcc}"
out_dir="${OUT:-bench/results}"
mkdir -p "$out_dir"
log="$out_dir/cuda_ptxas.txt"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
: >"$log"
echo "# ptxas -v for csrc/cuda/*.cu ($("$NVCC" --version | tail -1))" >>"$log"
status=0
for arch in 80 90; do
    for f in csrc/cuda/*.cu; do
        if ! "$NVCC" -std=c++17 -O3 -arch="sm_$arch" -Icsrc -Xptxas -v -Werror all-warnings \
            -Xcompiler=-Wall,-Werror -c "$f" -o "$tmp/k.o" >"$tmp/raw.txt" 2>&1; then
            echo "FAILED: $f for sm_$arch" | tee -a "$log"
            cat "$tmp/raw.txt" >>"$log"
            status=1
            continue
        fi
        # ptxas prints, per kernel: "Compiling entry function 'NAME' for 'sm_XX'", then the
        # stack/spill line, then "Used N registers, ... smem".
        awk -v file="$(basename "$f")" -v arch="sm_$arch" '
            /Compiling entry function/ { match($0, /\x27[^\x27]*\x27/); name = substr($0, RSTART + 1, RLENGTH - 2) }
            /spill stores/ { split($0, a, ","); spill = a[2] "," a[3]; gsub(/^ +/, "", spill) }
            /Used [0-9]+ registers/ { match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART + 5, RLENGTH - 15)
                smem = "0"; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
                printf "%-6s %-18s regs %3s  %-40s smem %6s  %s\n", arch, file, regs, spill, smem, name }
        ' "$tmp/raw.txt" | c++filt -p >>"$log"
    done
done
cat "$log"
if grep -E "spill stores" "$log" | grep -vq " 0 bytes spill stores"; then
    echo "cuda_ptxas: a kernel spills registers (see above)"; status=1
fi
exit $status
