#!/usr/bin/env bash
# Runs ON THE GPU MACHINE after scripts/gpu-check.sh has built build-gpu/. Two phases, so each
# fits one device-tool call:
#   scripts/gpu-bench.sh prepare   generate the production-sized stand-ins (tools/make_standin_models.py)
#                                  and print `segmentor plan` for them
#   scripts/gpu-bench.sh measure   the memory manager's targets with `segmentor bench`
# Every step has a time limit; results accumulate in /tmp/gpu-bench and are tarred to $OUT after
# each step, so a cut-off call still returns what finished.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.gpu-deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export MODEL_CACHE=$PWD/build-gpu/standins LOG_FORMAT=text LOG_LEVEL=INFO  # ignored: kept between calls
export FOREGROUND_SEG_MODEL_NAME=rmbg2-standin PEOPLE_SEG_MODEL_NAME=yolo11l-seg-standin
bin=build-gpu/src/app/segmentor
res=/tmp/gpu-bench; mkdir -p "$res/results"

timed() {  # timed SECONDS NAME command...
  local secs=$1 name=$2; shift 2
  local t0=$SECONDS
  timeout "$secs" "$@" > "$res/$name.log" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s"
  grep -vE "^\s*$" "$res/$name.log" | tail -25
  [ -n "${OUT:-}" ] && tar -czf "$OUT/gpu-bench.tar.gz" -C "$res" .
}

case "${1:-}" in
  prepare)
    timed 300 standins python3 tools/make_standin_models.py --out "$MODEL_CACHE"
    timed 100 plan "$bin" plan --markdown ;;
  measure)
    # Issue targets 1 and 3 (adaptive vs the Python service's design) with the models' ceiling.
    timed 180 target1 "$bin" bench --ceiling --cap-gib 8 --jobs 4 --frames 1000 \
      --gate adaptive,legacy -o "$res/results"
    # Target 1 with 10 % injected out-of-memory errors.
    timed 100 inject "$bin" bench --cap-gib 8 --jobs 4 --frames 1000 --gate adaptive \
      --inject-oom-rate 0.1 -o "$res/results"
    # Target 2: adaptive against the best fixed concurrency at 8, 16 and 24 GiB.
    timed 150 sweep "$bin" bench --no-cpu-fallback --cap-gib 8,16,24 --jobs 4 --frames 160 \
      --sweep 4 --max-concurrent 8 -o "$res/results" ;;
  *) echo "usage: $0 prepare|measure" >&2; exit 2 ;;
esac
