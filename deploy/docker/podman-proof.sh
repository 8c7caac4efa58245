#!/usr/bin/env bash
# Builds Dockerfile.cpu's runtime stage with podman on this kind of machine (no image registry,
# cgroups in hybrid mode, capped rlimits) and runs the image: `segmentor run` on samples/ as the
# image's user, the HEALTHCHECK against `segmentor serve`, and SIGTERM through `podman stop`.
#
# What it works around, and why that does not change what is proven:
#  * no registry: the base image is a debootstrap minbase root imported with `podman import`
#    (--build-arg DEBIAN_IMAGE), the same Debian bookworm as debian:bookworm-slim;
#  * the build stage (a full compile) is replaced with --build-context build=<image holding the
#    binary this checkout built at the same path): the runtime stage's RUN/COPY/ENV/USER/
#    HEALTHCHECK/ENTRYPOINT lines run exactly as written, apt installing runtime-packages.txt;
#  * crun refuses hybrid cgroups and raising rlimits here: runc, cgroupfs, lower ulimits.
# Usage (root, repository root, after a build; debootstrap root made with
#   debootstrap --variant=minbase bookworm /var/tmp/bookworm-minbase):
#   deploy/docker/podman-proof.sh [--minbase DIR] [--binary PATH] [--models DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
minbase=/var/tmp/bookworm-minbase
binary=build/src/app/segmentor
models=${MODEL_CACHE:-models/cache}
while (($#)); do
  case "$1" in
    --minbase) minbase=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    *) echo "podman-proof: unknown argument $1" >&2; exit 2 ;;
  esac
done
pm=(podman --runtime runc --cgroup-manager cgroupfs)
limits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
step() { printf '\n== %s\n' "$*"; }
work=$(mktemp -d)
trap 'rm -rf "$work"; "${pm[@]}" rm -f segmentor-proof >/dev/null 2>&1 || true' EXIT

step "base image from $minbase"
tar -C "$minbase" -c . | "${pm[@]}" import - localhost/debian:bookworm-minbase >/dev/null
step "the binary as the build stage's output"
install -D -m 0755 "$binary" "$work/src/build/src/app/segmentor"
tar -C "$work" -c src | "${pm[@]}" import - localhost/segmentor-build-output >/dev/null

step "podman build -f deploy/docker/Dockerfile.cpu --target runtime"
"${pm[@]}" build --format docker --network host "${limits[@]}" \
  --build-arg DEBIAN_IMAGE=localhost/debian:bookworm-minbase \
  --build-context build=container-image://localhost/segmentor-build-output \
  --target runtime -f deploy/docker/Dockerfile.cpu -t localhost/segmentor:cpu . | tail -n 3
"${pm[@]}" image inspect localhost/segmentor:cpu \
  --format 'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} ports={{.Config.ExposedPorts}} healthcheck={{.Config.Healthcheck.Test}}'

step "segmentor run on samples/ (models mounted read-only)"
mkdir -p "$work/out" && chmod 0777 "$work/out"
set +e
"${pm[@]}" run --rm "${limits[@]}" -v "$(realpath "$models")":/opt/segmentor/models:ro \
  -v "$PWD/samples":/in:ro -v "$work/out":/app/data/out localhost/segmentor:cpu \
  run /in --out /app/data/out
status=$?
set -e
echo "exit status $status; masks by uid: $(stat -c %u "$work"/out/masks_product/product_images/*.png | sort -u | xargs)"

step "serve: HEALTHCHECK, then SIGTERM through podman stop"
# No broker or database: /healthz answers while serve waits for the database at start-up.
"${pm[@]}" run -d --name segmentor-proof "${limits[@]}" --network host \
  -e METRICS_PORT=18080 -e POSTGRES_HOST=127.0.0.1 -e POSTGRES_PORT=1 \
  -v "$(realpath "$models")":/opt/segmentor/models:ro localhost/segmentor:cpu serve >/dev/null
for _ in $(seq 30); do curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break; sleep 1; done
"${pm[@]}" healthcheck run segmentor-proof && echo "healthcheck: healthy"
"${pm[@]}" exec segmentor-proof sh -c 'echo "PID 1: $(cat /proc/1/cmdline | tr "\0" " ")"; id'
# Models load first (uninterruptible; a minute on a busy CPU): stop once they are in.
for _ in $(seq 180); do "${pm[@]}" logs segmentor-proof 2>&1 | grep -q '"runtime: ' && break; sleep 1; done
t0=$SECONDS
"${pm[@]}" stop -t 40 segmentor-proof >/dev/null
echo "stopped in $((SECONDS - t0)) s, exit code $("${pm[@]}" inspect segmentor-proof --format '{{.State.ExitCode}}')"
"${pm[@]}" logs segmentor-proof 2>&1 | grep -iE "signal|stopping" | tail -n 3
