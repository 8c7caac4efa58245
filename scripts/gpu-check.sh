#!/usr/bin/env bash
# Runs ON THE GPU MACHINE (through the device tool): builds against its CUDA LibTorch with the
# Debian libraries carried in .gpu-deps/ (made here by scripts/gpu-deps.sh), runs the test suite
# on CUDA, runs `segmentor run` on the samples on CUDA, and prints a short table.
# Usage: scripts/gpu-check.sh [extra ctest args]. Results also go to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/.."
# Logs and scratch files live in $out (under /tmp); only a tarball of the logs goes to $OUT, since
# the device tool brings back at most 8 files.
out=/tmp/gpu-check; rm -rf "$out"; mkdir -p "$out"
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
  -DSEGMENTOR_WERROR=ON -DSEGMENTOR_PYTHON="$(command -v python3)" "-DCMAKE_PREFIX_PATH=$torch_prefix;$deps/usr" \
  -DCMAKE_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu" -DCMAKE_INCLUDE_PATH="$deps/usr/include"
grep -q "CUDA code: ON" "$out/configure.log" && result[cuda_code]=ON || result[cuda_code]=OFF
step build cmake --build build-gpu --parallel "$(nproc)" -- -k 0
# The broker and database tests need servers the GPU machine does not have, and the models_real
# tests need Debian's Python and Node.js; CI runs them all.
step tests ctest --test-dir build-gpu --output-on-failure --parallel 4 -LE 'broker|database|slow|models_real' "$@"
tests_summary=$(grep -E "tests passed|tests failed" "$out/tests.log" | tail -1)
# A crash in a test binary gets a backtrace (cuda-gdb debugs host code too; there is no gdb there).
if grep -q "SegFault" "$out/tests.log"; then
  crashed=$(grep -oE "#[0-9]+: [A-Za-z0-9_]+\.[A-Za-z0-9_/]+ \.+\*\*\*Exception: SegFault" "$out/tests.log" \
    | head -1 | awk '{print $2}')
  bin=$(grep -rl "${crashed%%.*}" build-gpu/tests --include='*_tests.cmake' | head -1 \
    | sed 's|\[1\]_tests.cmake$||')
  [ -x "$bin" ] && cuda-gdb -batch -ex run -ex bt --args "$bin" --gtest_filter="$crashed" \
    > "$out/crash.txt" 2>&1
  tail -30 "$out/crash.txt" 2>/dev/null
fi
# segmentor exits 1 when some image failed: samples/corrupt-truncated.jpg does, on purpose.
run_samples() {  # run_samples OUTDIR [env...]: segmentor run on the samples, exit 0 or 1 is a pass
  local dir=$1; shift
  env "$@" build-gpu/src/app/segmentor run samples --out "$dir" --device cuda --no-progress
  [ $? -le 1 ]
}
step run_test_models run_samples "$out/run-test" MODEL_CACHE=$PWD/build-gpu/test-models \
  FOREGROUND_SEG_MODEL_NAME=test-bright PEOPLE_SEG_MODEL_NAME=test-yolo
if [ -d .gpu-models/a ] && [ -d .gpu-models/b ]; then
  step join_models scripts/gpu-models.sh join
  export MODEL_CACHE=$PWD/models/cache LOG_FORMAT=text LOG_LEVEL=INFO
  step run_fp16 run_samples "$out/run-fp16" USE_FP16=true
  step run_fp32 run_samples "$out/run-fp32" USE_FP16=false
  step fp16_vs_fp32 python3 tools/compare_masks.py "$out/run-fp32" "$out/run-fp16" --min-iou 0.99
  # Throughput over generated HD and FHD frames, whole pipeline (decode, gate, models, PNG writes).
  [ "${GPU_CHECK_FRAMES:-1}" = 1 ] && step make_frames python3 - "$out/frames" <<'PY'
import sys, pathlib, numpy as np
from PIL import Image, ImageDraw
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)
for i in range(240):
    w, h = (1280, 720) if i % 2 else (1920, 1080)
    img = Image.fromarray((rng.random((h, w, 3)) * 60 + 40).astype(np.uint8))
    d = ImageDraw.Draw(img)
    x, y = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
    d.ellipse([x, y, x + w // 3, y + h // 3], fill=tuple(int(v) for v in rng.integers(120, 255, 3)))
    img.save(out / f"frame{i:04d}.jpg", quality=90)
PY
  [ "${GPU_CHECK_FRAMES:-1}" = 1 ] && for cap in 0 8192; do
    step "frames_cap$cap" env GPU_MEMORY_LIMIT_MB=$cap build-gpu/src/app/segmentor run \
      "$out/frames" --kind frame --out "$out/frames-out-$cap" --device cuda --no-progress
  done
fi
echo
echo "| check | result |"
echo "|---|---|"
echo "| card | $(cat "$out/card.txt") |"
echo "| date | $(date -u +%F) |"
echo "| CUDA code compiled | ${result[cuda_code]} |"
for k in configure build tests run_test_models join_models run_fp16 run_fp32 fp16_vs_fp32 make_frames frames_cap0 frames_cap8192; do
  echo "| $k | ${result[$k]:-not run} |"
done
echo "| ctest | ${tests_summary:-n/a} |"
for f in run_fp16 fp16_vs_fp32 frames_cap0 frames_cap8192; do
  [ -f "$out/$f.log" ] && echo "| $f output | $(grep -E '^done|^device|IoU|image.? on' "$out/$f.log" | tr '\n' ' ') |"
done
grep -h -A8 "calibration on" "$out/run_fp16.log" 2>/dev/null | head -12
[ -n "${OUT:-}" ] && tar -czf "$OUT/gpu-check-logs.tar.gz" -C "$out" $(cd "$out" && ls *.log *.txt) 2>/dev/null
exit 0
