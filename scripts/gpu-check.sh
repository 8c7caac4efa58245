#!/usr/bin/env bash
# Runs ON THE GPU MACHINE (through the device tool): builds against its CUDA LibTorch with the
# Debian libraries carried in .gpu-deps/ (made here by scripts/gpu-deps.sh), runs the test suite
# on CUDA, runs `segmentor run` on the samples on CUDA, and prints a short table.
# Usage: scripts/gpu-check.sh [extra ctest args]. Results also go to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}; mkdir -p "$out"
deps=$PWD/.gpu-deps/root
[ -d "$deps" ] || { echo "gpu-check: .gpu-deps missing: run scripts/gpu-deps.sh here and carry .gpu-deps"; exit 2; }
export LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
declare -A result

step() {  # step NAME command...: runs, logs to $out/NAME.log, records pass/fail
  local name=$1; shift
  local t0=$SECONDS
  if "$@" >"$out/$name.log" 2>&1; then result[$name]="pass ($((SECONDS - t0)) s)"
  else result[$name]="FAIL ($((SECONDS - t0)) s, see $name.log)"; tail -40 "$out/$name.log"; fi
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/card.txt" 2>&1
step configure cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSEGMENTOR_WERROR=ON "-DCMAKE_PREFIX_PATH=$torch_prefix;$deps/usr" \
  -DCMAKE_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu" -DCMAKE_INCLUDE_PATH="$deps/usr/include"
grep -q "CUDA code: ON" "$out/configure.log" && result[cuda_code]=ON || result[cuda_code]=OFF
step build cmake --build build-gpu --parallel "$(nproc)"
# The broker and database tests need servers the GPU machine does not have; CI runs them.
step tests ctest --test-dir build-gpu --output-on-failure --parallel 4 -LE 'broker|database|slow' "$@"
tests_summary=$(grep -E "tests passed|tests failed" "$out/tests.log" | tail -1)
step run_cuda env MODEL_CACHE=$PWD/build-gpu/test-models FOREGROUND_SEG_MODEL_NAME=test-bright \
  PEOPLE_SEG_MODEL_NAME=test-yolo build-gpu/src/app/segmentor run samples --out "$out/run" \
  --device cuda --no-progress
run_summary=$(grep -E "^done|^device" "$out/run_cuda.log" | tr '\n' ' ')

echo
echo "| check | result |"
echo "|---|---|"
echo "| card | $(cat "$out/card.txt") |"
echo "| date | $(date -u +%F) |"
echo "| CUDA code compiled | ${result[cuda_code]} |"
for k in configure build tests run_cuda; do echo "| $k | ${result[$k]:-not run} |"; done
echo "| ctest | ${tests_summary:-n/a} |"
echo "| segmentor run | ${run_summary:-n/a} |"
