#!/usr/bin/env bash
# Proves Dockerfile.cpu's runtime stage without a container engine: builds a minimal Debian
# bookworm root with debootstrap, installs exactly runtime-packages.txt (the file the Dockerfile
# installs), copies the binary and the bundled models in as the image does, and runs
# `segmentor run` on samples/ inside it with chroot, as the image's non-root user.
#
# Usage (as root, from the repository root, after a build):
#   deploy/docker/prove-runtime.sh [--root DIR] [--binary PATH] [--models DIR] [--mirror URL]
# Slow the first time (debootstrap + LibTorch's dependencies: ~10-20 min, ~2 GiB); the base root
# is kept and reused. Not in CI for that reason. deploy/README.md records what it printed.
set -euo pipefail
cd "$(dirname "$0")/../.."

root=/var/tmp/segmentor-rootfs
binary=build/src/app/segmentor
models=${MODEL_CACHE:-models/cache}
mirror=http://deb.debian.org/debian
base_only=0
while (($#)); do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --base-only) base_only=1; shift ;;
    *) echo "prove-runtime: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "prove-runtime: needs root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "prove-runtime: apt-get install debootstrap" >&2; exit 2; }

# The same user and paths as Dockerfile.cpu.
app_uid=10001
model_dir=/opt/segmentor/models
packages=$(sed -e 's/#.*//' deploy/docker/runtime-packages.txt | xargs)

step() { printf '\n== %s\n' "$*"; }

if [ ! -f "$root/.base-done" ]; then
  step "debootstrap --variant=minbase bookworm $root"
  rm -rf "$root"
  debootstrap --variant=minbase bookworm "$root" "$mirror"
  touch "$root/.base-done"
fi
[ "$base_only" = 1 ] && exit 0

mounted=()
cleanup() { for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
cp /etc/resolv.conf "$root/etc/resolv.conf"

step "apt-get install (runtime-packages.txt): $packages"
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -qq
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends $packages >/dev/null
chroot "$root" apt-get clean

step "user and files, as the image has them"
chroot "$root" sh -c "id -u segmentor >/dev/null 2>&1 || useradd --uid $app_uid --user-group --no-create-home --home-dir /app segmentor"
install -D -m 0755 "$binary" "$root/usr/local/bin/segmentor"
rm -rf "$root$model_dir" && mkdir -p "$root$model_dir"
cp "$models"/*.pt "$models"/*.json "$root$model_dir/"
rm -rf "$root/app" && mkdir -p "$root/app/data" "$root/app/samples"
cp samples/* "$root/app/samples/"
chroot "$root" chown -R segmentor:segmentor /app

step "shared libraries resolved inside the root"
if chroot "$root" ldd /usr/local/bin/segmentor | grep 'not found'; then
  echo "prove-runtime: FAILED: libraries missing from runtime-packages.txt" >&2
  exit 1
fi
echo "every library found"

step "segmentor run /app/samples (as uid $app_uid, chroot)"
set +e
chroot --userspec=$app_uid:$app_uid "$root" /usr/bin/env -i HOME=/app PATH=/usr/local/bin:/usr/bin:/bin \
  MODEL_CACHE=$model_dir DATA_ROOT_CONTAINER=/app/data LOG_FORMAT=text \
  /usr/local/bin/segmentor run /app/samples --out /app/data/out
status=$?
set -e
masks=$(find "$root/app/data/out/masks_product" -name '*.png' | wc -l)
echo "exit status $status, $masks product masks"
# samples/ holds one broken file on purpose: exit 1 with the others done is the expected result.
total=$(find samples -maxdepth 1 -type f \( -name '*.jpg' -o -name '*.jpeg' -o -name '*.png' -o -name '*.webp' \) | wc -l)
if [ "$status" -le 1 ] && [ "$masks" -eq $((total - 1)) ]; then
  echo "prove-runtime: OK: the runtime package list runs segmentor ($(du -sh --exclude=proc "$root" 2>/dev/null | cut -f1) root)"
else
  echo "prove-runtime: FAILED" >&2
  exit 1
fi
