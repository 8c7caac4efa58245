#!/usr/bin/env bash
# The bundled IS-Net model (88 MB) is larger than what one device-tool call may carry (64 MiB with
# the tracked tree, ~10 MB), so it travels in two parts over two calls on the same warm machine:
# 48 MB of it in a, the rest with the small models in b, so each call carries about 48 MB + tree.
#   scripts/gpu-models.sh split   (here)  -> .gpu-models/a and .gpu-models/b (git-ignored)
#   scripts/gpu-models.sh join    (there) -> models/cache/ with every bundled model
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${MODEL_CACHE:-models/cache}
case "${1:-}" in
  split)
    rm -rf .gpu-models && mkdir -p .gpu-models/a .gpu-models/b
    split -b 48000000 "$cache/isnet-medium.pt" .gpu-models/isnet-medium.pt.part-
    mv .gpu-models/isnet-medium.pt.part-aa .gpu-models/a/
    mv .gpu-models/isnet-medium.pt.part-a? .gpu-models/b/
    cp "$cache"/*.json "$cache/mediapipe-selfie.pt" "$cache/nanodet-g.pt" \
      "$cache/bundled-models.stamp" .gpu-models/b/
    (cd "$cache" && sha256sum isnet-medium.pt) > .gpu-models/b/isnet-medium.sha256
    du -sh .gpu-models/a .gpu-models/b ;;
  join)
    mkdir -p "$cache"
    cat .gpu-models/a/isnet-medium.pt.part-* .gpu-models/b/isnet-medium.pt.part-* > "$cache/isnet-medium.pt"
    cp .gpu-models/b/*.json .gpu-models/b/mediapipe-selfie.pt .gpu-models/b/nanodet-g.pt "$cache/"
    (cd "$cache" && sha256sum -c "$OLDPWD/.gpu-models/b/isnet-medium.sha256") ;;
  *) echo "usage: $0 split|join" >&2; exit 2 ;;
esac
