#!/usr/bin/env bash
# Runs ON THE GPU MACHINE (through the device tool). Phases, in the order given, e.g.
#   scripts/gpu-bench.sh build prepare streams     (one call)
#   scripts/gpu-bench.sh measure                   (the next call, on the still-warm machine)
#   build    configure build-gpu against the machine's CUDA LibTorch and build `segmentor` only
#            (scripts/gpu-check.sh builds and runs the whole test suite)
#   prepare  generate the production-sized stand-ins (tools/make_standin_models.py), print plan
#   streams  A/B of CUDA_STREAMS (and of the allocator's expandable segments) at an 8 GiB cap
#   verify   build and run the memory manager's tests on CUDA (needs `build` first)
#   stash-a, bundled   the bundled models' figures beside the stand-ins' (two calls: carry
#            .gpu-models/a with the first, .gpu-models/b with the second; scripts/gpu-models.sh)
#   detector the person detector's cost: the bundled models with NanoDet-g (the default) and
#            without (PEOPLE_DETECTOR_MODEL_NAME=none), the bundled rows' load, and `segmentor run`
#            over samples/ both ways (two calls like `bundled`: stash-a first)
#   batching issue 13 target 1: the bundled models with MAX_MODEL_BATCH=1 against 8 (bench and
#            `segmentor run --kind frame` over 480 HD/FHD JPEGs, masks written), with the
#            fraction of the models' ceiling (two calls like `bundled`: stash-a first)
#   cleanup  GPU_CLEANUP_EVERY_N 0/1/10 and pressure releases: what a cache release costs
#   lanes    a lane per GPU (needs two or more; the device tool's nvidia-h100-x2): one lane
#            against all at 8 GiB, 10 % injected OOMs on all, a neighbour process filling
#            cuda:0, and the fixed sweep against adaptive with every lane
#   tuning   CONCURRENCY_TUNING with the stand-ins: the fixed sweep against adaptive MAX=8, and
#            target 1; unless TUNING_QUICK=1 also adaptive MAX=8 without the tuner and target 1
#            with 10 % injected OOMs
#   soak     leak check with the stand-ins at an 8 GiB cap: `bench --duration` (SOAK_SECONDS,
#            default 360; SOAK_WARMUP, the share left out as warm-up, default 0.3, since the
#            slots' workspaces fill in for about a minute) in rounds of 200 frames; slopes of
#            host RSS and GPU allocated/reserved (bench/README.md, "Soak"); exit 1 when a slope passes the leak threshold
#   faults   issue 13 target 4: 1,000 frames fault-free, then with 10 % injected OOMs (ratio
#            printed; goal ≥ 0.7, 0 lost), real OOMs at a 4 GiB cap with fixed:4 (they must be
#            judged over-admission and shrink), and stage times on against --no-stages
#   warmsplit the warm-up's time between slots and batch sizes at 4, 8 and 16 admitted
#   startup  where the start goes: per-part times of `run` on one frame (first start, then with
#            calibration and load checks on disk), fuser on and off; throughput and first frames
#   runpath  issue 13 target 1 through `segmentor run`: 1,440 JPEG frames, masks written
#   batchab  MAX_MODEL_BATCH=1 against 8, 1,000 frames each (Note [A batch must pay for itself])
#   restart  a restart from disk against the process that checked: 1,000 frames, first start then
#            three restarts (Note [First calls on one thread])
#   ownthread the selfie model as calibrated against unbatched on the slots' threads, with a
#            person in every frame (after `join`; Note [Dear first calls on a new thread])
#   cpulayout issue 13 target 3 on this machine's cores: the CPU lane at several CPU_THREADS,
#            and the same network through onnxruntime (after `join`)
#   sweep    adaptive against the fixed sweep at 8, 16 and 24 GiB (the measure phase's sweep alone)
#   join     switch the phases after it to the bundled models (carry .gpu-models/b after stash-a)
#   warm     issue 13 target 2: `segmentor run` on one frame twice with a fresh CALIBRATION_CACHE
#            (start → exit and the start-up lines printed), then p95/p99 of a short bench
#   measure  the memory manager's targets: 1,000 frames adaptive vs legacy with the ceiling, the
#            same with 10 % injected OOMs, and adaptive against the fixed sweep at 8, 16, 24 GiB
# Every step has a time limit; results accumulate in /tmp/gpu-bench and are tarred to $OUT after
# each step, so a cut-off call still returns what finished.
set -uo pipefail
cd "$(dirname "$0")/.."
deps=$PWD/.gpu-deps/root
export LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
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
  grep -vE "^\s*$" "$res/$name.log" | grep -vE "^\[.*\] \[(debug|trace)\]" | tail -"${TAIL:-14}"
  [ -n "${OUT:-}" ] && tar -czf "$OUT/gpu-bench.tar.gz" -C "$res" .
  return $rc
}

bench() {  # bench NAME SECONDS [ENV=VALUE...] -- bench arguments...
  local name=$1 secs=$2; shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  mkdir -p "$res/results/$name"
  # One card unless the run names its devices (a machine with several would use them all).
  case " $* " in *" --device "*) ;; *) set -- --device cuda:0 "$@" ;; esac
  timed "$secs" "$name" env "${envs[@]}" "$bin" bench --no-plot -o "$res/results/$name" "$@"
}

for phase in "$@"; do
  case "$phase" in
    build)
      torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
      timed 120 configure cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DSEGMENTOR_PYTHON="$(command -v python3)" -DSEGMENTOR_ALLOCATOR="${SEGMENTOR_ALLOCATOR:-auto}" "-DCMAKE_PREFIX_PATH=$torch_prefix;$deps/usr" \
        -DCMAKE_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu" -DCMAKE_INCLUDE_PATH="$deps/usr/include"
      TAIL=5 timed 300 build cmake --build build-gpu --target segmentor --parallel "$(nproc)" ;;
    prepare)
      [ -f "$MODEL_CACHE/rmbg2-standin.pt" ] ||
        timed 300 standins python3 tools/make_standin_models.py --out "$MODEL_CACHE"
      TAIL=20 timed 100 plan "$bin" plan --markdown ;;
    streams)
      # Same load for each stream mode: 4 jobs, 160 frames, cap 8 GiB, no CPU lane.
      for mode in worker pool default; do
        bench "streams-$mode" 100 CUDA_STREAMS=$mode -- --no-cpu-fallback --cap-gib 8 --jobs 4 \
          --frames 160 --gate fixed:1,fixed:3,adaptive
      done
      bench streams-worker-expandable 100 CUDA_STREAMS=worker \
        PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True -- --no-cpu-fallback --cap-gib 8 \
        --jobs 4 --frames 160 --gate fixed:1,fixed:3,adaptive ;;
    measure)
      # Target 1 and the Python service's design, with the models' ceiling, in one run.
      bench target1 200 CUDA_STREAMS=worker -- --ceiling --cap-gib 8 --jobs 4 --frames 1000 \
        --gate adaptive,legacy
      # Target 1 with 10 % of model calls failing with an injected out-of-memory error.
      bench inject 150 CUDA_STREAMS=worker -- --cap-gib 8 --jobs 4 --frames 1000 --gate adaptive \
        --inject-oom-rate 0.1
      # The Python service's design where memory is short: a 4 GiB cap fits about two tasks.
      bench small-card 120 CUDA_STREAMS=worker -- --cap-gib 4 --jobs 4 --frames 480 \
        --gate adaptive,legacy
      # Target 2: adaptive against the best fixed concurrency at 8, 16 and 24 GiB.
      bench sweep 200 CUDA_STREAMS=worker -- --no-cpu-fallback --cap-gib 8,16,24 --jobs 4 \
        --frames 240 --sweep 4 --gate adaptive --max-concurrent 8
      # Does the order matter? Adaptive first and last around the best fixed, MAX=8.
      bench order 120 CUDA_STREAMS=worker -- --no-cpu-fallback --cap-gib 8 --jobs 4 \
        --frames 480 --gate adaptive,fixed:4,adaptive --max-concurrent 8 ;;
    lanes)
      nvidia-smi --query-gpu=index,name,memory.total,memory.used --format=csv > "$res/lanes-cards.txt"
      # The same load per lane: 4 jobs and 1,000 frames on one card, 8 jobs and 2,000 on all.
      bench lanes-one 120 CUDA_STREAMS=worker -- --device cuda:0 --cap-gib 8 --jobs 4 \
        --frames 1000 --gate adaptive
      bench lanes-all 200 CUDA_STREAMS=worker -- --device cuda --ceiling --cap-gib 8 --jobs 8 \
        --frames 2000 --gate adaptive,legacy
      bench lanes-inject 150 CUDA_STREAMS=worker -- --device cuda --cap-gib 8 --jobs 8 \
        --frames 1000 --gate adaptive --inject-oom-rate 0.1
      # Another process takes all but ~3 GiB of cuda:0 (no cap: the budget is what the card has
      # free); the picker should send cuda:0 only what fits and the rest to the other cards.
      python3 -c "
import torch, time
free, total = torch.cuda.mem_get_info(0)
hog = torch.empty(free - (3 << 30), dtype=torch.uint8, device='cuda:0')
open('/tmp/gpu-bench/hog-ready', 'w').write(str(hog.numel()))
time.sleep(150)" > "$res/hog.log" 2>&1 &
      hog=$!
      for _ in $(seq 60); do [ -f "$res/hog-ready" ] && break; sleep 1; done
      nvidia-smi --query-gpu=index,memory.used --format=csv >> "$res/lanes-cards.txt"
      bench lanes-neighbour 120 CUDA_STREAMS=worker -- --device cuda --jobs 8 --frames 1000 \
        --gate adaptive
      kill $hog 2>/dev/null; wait $hog 2>/dev/null
      bench lanes-sweep 200 CUDA_STREAMS=worker -- --device cuda --no-cpu-fallback --cap-gib 8 \
        --jobs 8 --frames 480 --sweep 4 --gate adaptive --max-concurrent 8 ;;
    tuning)
      bench tuning-sweep 200 CUDA_STREAMS=worker -- --no-cpu-fallback --cap-gib 8 --jobs 4 \
        --frames 480 --sweep 4 --gate adaptive --max-concurrent 8
      bench tuning-target1 150 CUDA_STREAMS=worker -- --cap-gib 8 --jobs 4 --frames 1000 \
        --gate adaptive
      [ "${TUNING_QUICK:-0}" = 1 ] && continue
      bench tuning-off 100 CUDA_STREAMS=worker CONCURRENCY_TUNING=off -- --no-cpu-fallback \
        --cap-gib 8 --jobs 4 --frames 480 --gate adaptive --max-concurrent 8
      bench tuning-inject 150 CUDA_STREAMS=worker -- --cap-gib 8 --jobs 4 --frames 1000 \
        --gate adaptive --inject-oom-rate 0.1 ;;
    verify)
      # The memory manager's tests on CUDA (runtime_test's idle unload needs a GPU), without
      # building the whole suite (scripts/gpu-check.sh does that).
      TAIL=5 timed 300 build-tests cmake --build build-gpu --parallel "$(nproc)" --target \
        runtime_test pipeline_test memory_test common_test bench_runner_test models_test \
        forward_batcher_test batched_engine_test
      for t in runtime/runtime_test pipeline/pipeline_test memory/memory_test common/common_test \
        bench/bench_runner_test models/models_test models/forward_batcher_test \
        runtime/batched_engine_test; do
        TAIL=4 timed 120 "test-${t#*/}" "build-gpu/tests/$t" --gtest_brief=1
      done ;;
    stash-a)
      # First of two calls for the bundled models (scripts/gpu-models.sh): keep half a where the
      # next call finds it.
      mkdir -p build-gpu/gpu-models-a && cp .gpu-models/a/* build-gpu/gpu-models-a/ ;;
    bundled)
      # Second call: join the bundled models and run the targets' load with them, for comparison
      # with the stand-ins (they are light: 8 GiB never presses them).
      mkdir -p .gpu-models/a && cp -n build-gpu/gpu-models-a/* .gpu-models/a/ 2>/dev/null
      MODEL_CACHE=$PWD/build-gpu/bundled timed 60 join scripts/gpu-models.sh join || exit 1
      for var in MODEL_CACHE FOREGROUND_SEG_MODEL_NAME PEOPLE_SEG_MODEL_NAME; do unset $var; done
      bench bundled-target1 150 MODEL_CACHE=$PWD/build-gpu/bundled CUDA_STREAMS=worker -- \
        --ceiling --cap-gib 8 --jobs 4 --frames 1000 --gate adaptive,legacy
      bench bundled-sweep 150 MODEL_CACHE=$PWD/build-gpu/bundled CUDA_STREAMS=worker -- \
        --no-cpu-fallback --cap-gib 8 --jobs 4 --frames 480 --sweep 4 --gate adaptive \
        --max-concurrent 8
      bench bundled-tuning-off 100 MODEL_CACHE=$PWD/build-gpu/bundled CUDA_STREAMS=worker \
        CONCURRENCY_TUNING=off -- --no-cpu-fallback --cap-gib 8 --jobs 4 --frames 480 \
        --gate adaptive --max-concurrent 8 ;;
    detector)
      # Issue 10: what the person detector adds per image on the GPU. Joins the bundled models
      # like `bundled` (carry .gpu-models/b; .gpu-models/a was stashed by stash-a).
      mkdir -p .gpu-models/a && cp -n build-gpu/gpu-models-a/* .gpu-models/a/ 2>/dev/null
      MODEL_CACHE=$PWD/build-gpu/bundled timed 60 join scripts/gpu-models.sh join || exit 1
      for var in MODEL_CACHE FOREGROUND_SEG_MODEL_NAME PEOPLE_SEG_MODEL_NAME; do unset $var; done
      for det in nanodet-g none; do
        bench "detector-$det" 150 MODEL_CACHE=$PWD/build-gpu/bundled CUDA_STREAMS=worker \
          PEOPLE_DETECTOR_MODEL_NAME=$det -- --ceiling --cap-gib 8 --jobs 4 --frames 1000 \
          --gate adaptive
        timed 120 "detector-run-samples-$det" env MODEL_CACHE=$PWD/build-gpu/bundled \
          PEOPLE_DETECTOR_MODEL_NAME=$det "$bin" run samples --out "$res/samples-$det" \
          --device cuda:0 --no-progress
      done ;;
    batching)
      # Issue 13 target 1: the bundled models with their forward passes batched (MAX_MODEL_BATCH,
      # Note [Batching admitted tasks]) against unbatched, at an 8 GiB cap: `bench` (pre-decoded,
      # no writes; 4 jobs x 250 frames) and `segmentor run --kind frame` over 480 HD/FHD JPEGs
      # with masks written. Joins the bundled models like `bundled` (carry .gpu-models/b;
      # .gpu-models/a was stashed by stash-a). Batches need several tasks in flight, so the
      # batched runs also admit up to 16 (the gate still admits by bytes).
      mkdir -p .gpu-models/a && cp -n build-gpu/gpu-models-a/* .gpu-models/a/ 2>/dev/null
      MODEL_CACHE=$PWD/build-gpu/bundled timed 60 join scripts/gpu-models.sh join || exit 1
      for var in MODEL_CACHE FOREGROUND_SEG_MODEL_NAME PEOPLE_SEG_MODEL_NAME; do unset $var; done
      cal=/tmp/gpu-bench-batching-calibration  # per MAX_MODEL_BATCH (part of the key)
      bench batching-ceiling 90 MODEL_CACHE=$PWD/build-gpu/bundled CALIBRATION_CACHE=$cal \
        MAX_MODEL_BATCH=1 -- --ceiling --cap-gib 8 --jobs 4 --frames 1000 --gate adaptive
      bench batching-b8-mc8 90 MODEL_CACHE=$PWD/build-gpu/bundled CALIBRATION_CACHE=$cal \
        MAX_MODEL_BATCH=8 -- --cap-gib 8 --jobs 4 --frames 1000 --gate adaptive,fixed:8 \
        --max-concurrent 8
      bench batching-b8-mc16 90 MODEL_CACHE=$PWD/build-gpu/bundled CALIBRATION_CACHE=$cal \
        MAX_MODEL_BATCH=8 -- --cap-gib 8 --jobs 4 --frames 1000 --gate adaptive,fixed:16 \
        --max-concurrent 16
      frames=/tmp/gpu-bench-batching-frames  # outside $res: not tarred into $OUT
      if [ ! -f "$frames/done" ]; then
        rm -rf "$frames"; mkdir -p "$frames"
        python3 - "$frames" <<'PY'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(13)
for i in range(480):
    w, h = (1920, 1080) if i % 2 else (1280, 720)
    small = (rng.random((9, 16, 3)) * 255).astype("uint8")  # smooth, photo-like to the codec
    Image.fromarray(small).resize((w, h), Image.BILINEAR).save(f"{sys.argv[1]}/f{i:04d}.jpg",
                                                                quality=90)
PY
        touch "$frames/done"
      fi
      for run in "1 4" "8 8" "8 16"; do
        set -- $run
        rm -rf /tmp/gpu-bench-batching-out
        TAIL=6 timed 120 "batching-run-b$1-mc$2" env MODEL_CACHE=$PWD/build-gpu/bundled \
          CALIBRATION_CACHE=$cal MAX_MODEL_BATCH=$1 MAX_CONCURRENT_IMAGES=$2 \
          GPU_MEMORY_LIMIT_MB=8192 "$bin" run "$frames" -o /tmp/gpu-bench-batching-out \
          --kind frame --device cuda:0 --no-progress
      done
      rm -rf /tmp/gpu-bench-batching-out
      # Which models batched, up to what, and what calibration measured per batch size.
      grep -hoE "(model \S+ on cuda:0: (forward passes of up to [0-9]+ tasks at once|unbatched)|batches of \S+ on cuda:0: up to [0-9]+ \(.*\))" \
        "$res"/batching-*.log | sort | uniq -c | tee "$res/batching-models.txt"
      python3 - "$res" <<'PY' | tee "$res/batching-summary.txt"
import glob, json, re, sys
res = sys.argv[1]
ceiling = None
for f in glob.glob(f"{res}/results/batching-ceiling/*.json"):
    j = json.load(open(f))
    if "combined_fps" in j:
        ceiling = j["combined_fps"]
        for m in j.get("models", []):
            print("ceiling", m.get("model"), "best batch", m.get("best_batch"),
                  "fps", m.get("best_fps"))
print("models' ceiling: %s frames/s" % ceiling)
def frac(fps):
    return " = %.2f of the ceiling (target >= 0.85)" % (fps / ceiling) if ceiling else ""
for name in ("batching-ceiling", "batching-b8-mc8", "batching-b8-mc16"):
    for f in sorted(glob.glob(f"{res}/results/{name}/*.json")):
        j = json.load(open(f))
        if "throughput_fps" not in j: continue
        print("bench %-18s %-9s max %2s: %6.1f frames/s%s; lost %s, p95 %s ms, p99 %s ms, mean "
              "batch %s" % (name, j["gate"], j.get("gate_max_concurrent"), j["throughput_fps"],
                            frac(j["throughput_fps"]), j.get("frames_lost"), j.get("p95_ms"),
                            j.get("p99_ms"), j.get("mean_batch")))
        print("   stages ms/frame:", j.get("stage_ms_per_frame"))
for f in sorted(glob.glob(f"{res}/batching-run-*.log")):
    m = re.search(r"done (\d+), failed (\d+), of \d+ images? in ([0-9.]+) s", open(f).read())
    if m:
        fps = int(m.group(1)) / float(m.group(3))
        print("run %-22s %6.1f frames/s%s; failed %s" % (f.split("/")[-1][:-4], fps, frac(fps),
                                                       m.group(2)))
PY
      ;;
    cleanup)
      # What a cache release costs, and GPU_CLEANUP_EVERY_N against releasing only when it pays.
      for n in 0 1 10; do
        bench "cleanup-every-$n" 100 CUDA_STREAMS=worker GPU_CLEANUP_EVERY_N=$n -- \
          --no-cpu-fallback --cap-gib 8 --jobs 4 --frames 480 --gate adaptive
      done
      # MAX=8 at 8 GiB runs near the budget: the ticker's pressure releases show here.
      bench cleanup-pressure 100 CUDA_STREAMS=worker -- --no-cpu-fallback --cap-gib 8 --jobs 4 \
        --frames 480 --gate adaptive --max-concurrent 8 ;;
    warmsplit)
      # Where the warm-up goes (Note [Warm every slot before ready]) with whichever models are set:
      # a short bench at 4, 8 and 16 admitted, each printing the warm-up's split between the
      # slots and the batch sizes. One calibration cache, so only the first run checks.
      cal=/tmp/gpu-bench-warmsplit-calibration; rm -rf "$cal"
      # Then 16 again with the other stream modes and with the fuser off by LibTorch's own
      # variable (the 3.5 s of the sixth session was measured that way) instead of by code.
      # Then without the person detector (no unbatched model on the slots' threads) and with no
      # batching (every model on them). WARMSPLIT_RUNS picks runs: "16 16-b1:MAX_MODEL_BATCH=1".
      for run in ${WARMSPLIT_RUNS:-4 8 16 16-again 16-pool:CUDA_STREAMS=pool \
          16-te0:PYTORCH_TENSOREXPR=0 16-nodetector:PEOPLE_DETECTOR_MODEL_NAME=none \
          16-b1:MAX_MODEL_BATCH=1}; do
        name=${run%%:*} n=${run%%[-:]*} extra=(); [ "$run" != "${run#*:}" ] && extra=("${run#*:}")
        TAIL=2 bench "warmsplit-$name" 120 CALIBRATION_CACHE=$cal "${extra[@]}" -- --cap-gib 8 \
          --jobs 4 --frames 60 --gate adaptive --max-concurrent "$n"
        echo "$name: $(grep -h "warmed\|ready after" "$res/warmsplit-$name.log" | sed 's/^.*start-up: //')"
        grep -h "passes of .* on cuda" "$res/warmsplit-$name.log" | sed 's/^.*passes of/  passes of/' | cut -c1-220
      done ;;
    soak)
      soak=${SOAK_SECONDS:-360}
      TAIL=30 bench soak $((soak + 180)) -- --cap-gib 8 --jobs 4 --frames 200 --gate adaptive \
        --duration "$soak" --warmup-fraction "${SOAK_WARMUP:-0.3}" --sample-ms 200 ;;
    faults)
      bench faults-clean 180 CUDA_STREAMS=worker -- --ceiling --cap-gib 8 --jobs 4 --frames 1000 \
        --gate adaptive
      bench faults-inject 200 CUDA_STREAMS=worker -- --cap-gib 8 --jobs 4 --frames 1000 \
        --gate adaptive --inject-oom-rate 0.1
      if [ -z "${FAULTS_QUICK:-}" ]; then  # FAULTS_QUICK=1: the ratio alone (two runs)
        bench faults-real 120 CUDA_STREAMS=worker -- --no-cpu-fallback --cap-gib 4 --jobs 4 \
          --frames 240 --gate fixed:4
        bench faults-nostages 150 CUDA_STREAMS=worker -- --cap-gib 8 --jobs 4 --frames 1000 \
          --gate adaptive --no-stages
      fi
      python3 - "$res/results" <<'PY' | tee "$res/faults-summary.txt"
import glob, json, sys
runs = {}
for name in ("faults-clean", "faults-inject", "faults-real", "faults-nostages"):
    for f in sorted(glob.glob(f"{sys.argv[1]}/{name}/*.json")):
        j = json.load(open(f))
        if "throughput_fps" in j: runs[name] = j
for name, j in runs.items():
    print(name, {k: j.get(k) for k in ("throughput_fps", "frames_lost", "oom_events",
          "over_admission_ooms", "below_budget_ooms", "immediate_retries", "backoff_ms_total",
          "gate_shrinks", "cpu_fallbacks", "p95_ms", "p99_ms")})
    print("  stages ms/frame:", j.get("stage_ms_per_frame"))
if "faults-clean" in runs and "faults-inject" in runs:
    print("inject / clean = %.2f (target >= 0.7)" % (runs["faults-inject"]["throughput_fps"] /
                                                     runs["faults-clean"]["throughput_fps"]))
if "faults-clean" in runs and "faults-nostages" in runs:
    print("stages on / off = %.3f" % (runs["faults-clean"]["throughput_fps"] /
                                      runs["faults-nostages"]["throughput_fps"]))
PY
      ;;
    batchab)
      # Batching on against off with whichever models are set (Note [A batch must pay for
      # itself]): 1,000 frames each, cap 8 GiB, adaptive, the default MAX_CONCURRENT_IMAGES.
      # "b8-again" runs b8 once more with its load checks and calibration from disk (Note [Load
      # checks on disk]): the restart path must run as fast as the process that measured.
      cal=/tmp/gpu-bench-batchab-calibration; rm -rf "$cal"
      for b in 1 8 8-again; do
        bench "batchab-b$b" 150 CUDA_STREAMS=worker MAX_MODEL_BATCH=${b%-again} \
          CALIBRATION_CACHE=$cal -- --cap-gib 8 --jobs 4 --frames 1000 --gate adaptive
        grep -h "batches of\|forward passes of\|unbatched\|from disk\|calibration on" \
          "$res/batchab-b$b.log" | cut -c1-300
      done ;;
    restart)
      # A restart from disk against the process that checked and calibrated (Note [First calls
      # on one thread]): 1,000 frames each, cap 8 GiB, adaptive, whichever models are set.
      cal=/tmp/gpu-bench-restart-calibration; rm -rf "$cal"
      for run in first again1 again2 again3; do
        bench "restart-$run" 150 CUDA_STREAMS=worker CALIBRATION_CACHE=$cal -- --cap-gib 8 \
          --jobs 4 --frames 1000 --gate adaptive > /dev/null
        log=$res/restart-$run.log
        echo "$run: $(grep -ho "[0-9.]* frames/s, p95 [0-9]* ms" "$log"), p99 $(grep -h \
          "^| NVIDIA" "$log" | cut -d"|" -f16) ms | $(grep -h "warmed" "$log" | sed 's/^.*start-up: //')"
      done ;;
    ownthread)
      # Note [Dear first calls on a new thread] and the selfie model's batches where they cost
      # most: every frame holds a person (samples/astronaut.jpg on an HD canvas), so the selfie
      # model runs on each; 16 admitted, cap 8 GiB, 1,000 frames. As calibrated ("now") against
      # the same calibration with the selfie model unbatched on the slots' threads ("slots", as
      # in the eighth session), two rounds, interleaved.
      people=/tmp/gpu-bench-people cal=/tmp/gpu-bench-ownthread-calibration
      rm -rf "$people" "$cal" "$cal-slots"; mkdir -p "$people"
      python3 -c "
from PIL import Image
person = Image.open('samples/astronaut.jpg').convert('RGB').resize((720, 720))
canvas = Image.new('RGB', (1280, 720), (128, 128, 128)); canvas.paste(person, (280, 0))
canvas.save('$people/astronaut-hd.jpg', quality=95)"
      TAIL=2 bench ownthread-first 150 CALIBRATION_CACHE=$cal -- --cap-gib 8 --jobs 4 --frames 120 \
        --gate adaptive --max-concurrent 16 --images "$people"
      grep -h "batches of mediapipe\|passes of" "$res/ownthread-first.log" | cut -c25-300
      cp -r "$cal" "$cal-slots"
      python3 - "$cal-slots" <<'PY'
import glob, json, sys
for path in glob.glob(f"{sys.argv[1]}/*.json"):
    doc = json.load(open(path)); table = doc["calibration"]
    table.pop("own_thread", None); table.pop("padded", None)
    table.setdefault("batch_limits", {})["mediapipe-selfie"] = 1
    json.dump(doc, open(path, "w"), indent=2)
PY
      for round in 1 2; do
        for variant in now slots; do
          dir=$cal; [ "$variant" = slots ] && dir=$cal-slots
          name=ownthread-$variant-$round
          bench "$name" 150 CALIBRATION_CACHE=$dir -- --cap-gib 8 --jobs 4 --frames 1000 \
            --gate adaptive --max-concurrent 16 --images "$people" > /dev/null
          log=$res/$name.log
          echo "$name: $(grep -ho "[0-9.]* frames/s, p95 [0-9]* ms" "$log"), p99 $(grep -h \
            "^| NVIDIA" "$log" | cut -d"|" -f16) ms; batches: $(grep -h -A1 "^Mean batch" "$log" | tail -1)"
          grep -h "warmed\|ready after" "$log" | sed 's/^.*start-up: /  /' | cut -c1-300
        done
      done ;;
    cpulayout)
      # Issue 13 target 3 on many cores: the foreground model alone on the CPU lane (`bench
      # --device cpu`, HD/FHD frames, one job, frozen as serve runs it) at each CPU_THREADS of
      # CPULAYOUT_THREADS (0: every core); then the same network through onnxruntime, the engine
      # of the npm package (bench/ort_cpu_reference.py; this machine has no node). Run after
      # `join` for IS-Net medium.
      for t in ${CPULAYOUT_THREADS:-0 8 4}; do
        TAIL=3 bench "cpulayout-t$t" 200 CPU_THREADS=$t PEOPLE_SEG_MODEL_NAME=none -- --device cpu \
          --jobs 1 --frames "${CPULAYOUT_FRAMES:-24}" > /dev/null
        echo "CPU_THREADS=$t: $(grep -ho "[0-9.]* frames/s, p95 [0-9]* ms" "$res/cpulayout-t$t.log")"
      done
      TAIL=8 timed 300 cpulayout-ort python3 bench/ort_cpu_reference.py \
        "${MODEL_CACHE}/isnet-medium.pt" --threads ${CPULAYOUT_THREADS:-0 8 4} ;;
    sweep)
      # The memory guarantee: adaptive against the best fixed concurrency at 8, 16 and 24 GiB
      # (goal >= 95 %), with whichever models are set, MAX=8.
      bench sweep 300 CUDA_STREAMS=worker -- --no-cpu-fallback --cap-gib 8,16,24 --jobs 4 \
        --frames 240 --sweep 4 --gate adaptive --max-concurrent 8 ;;
    join)
      # The bundled models for the phases after it in this call (carry .gpu-models/b; stash-a
      # kept half a in an earlier call): MODEL_CACHE points at them, the stand-ins' names go.
      mkdir -p .gpu-models/a && cp -n build-gpu/gpu-models-a/* .gpu-models/a/ 2>/dev/null
      MODEL_CACHE=$PWD/build-gpu/bundled timed 60 join scripts/gpu-models.sh join || exit 1
      unset FOREGROUND_SEG_MODEL_NAME PEOPLE_SEG_MODEL_NAME
      export MODEL_CACHE=$PWD/build-gpu/bundled ;;
    startup)
      # Where start-up goes (Note [A fast start], Note [Load checks on disk]): `run` on one frame
      # twice per fuser setting (the first start checks, calibrates and stores; the second finds
      # both on disk), LibTorch's TensorExpr fuser on (default) and off (PYTORCH_TENSOREXPR=0: no
      # kernels compiled at the first calls; part of the cache key). Then, per setting, what it
      # does to throughput (16 concurrent, batches) and to the first frames after a start.
      frame=$res/startup-frame; cal=/tmp/gpu-bench-startup-calibration
      rm -rf "$frame" "$cal"; mkdir -p "$frame"
      python3 -c "
from PIL import Image; import numpy as np
Image.fromarray((np.random.default_rng(1).random((1080,1920,3))*255).astype('uint8')).save('$frame/f.jpg')"
      tes=${STARTUP_TE:-1 0}; first_te=${tes%% *}  # STARTUP_TE: the fuser settings to run
      for te in $tes; do
        for run in first again; do
          t0=$EPOCHREALTIME
          CALIBRATION_CACHE=$cal PYTORCH_TENSOREXPR=$te TAIL=3 timed 120 "startup-te$te-$run" \
            "$bin" run --device cuda:0 "$frame" -o "$res/startup-out" --no-progress
          echo "startup-te$te-$run: start to exit $(python3 -c "print(round($EPOCHREALTIME - $t0, 2))") s"
          grep -h "start-up" "$res/startup-te$te-$run.log" | sed 's/^.*start-up/start-up/' | cut -c1-160
        done
        ceiling=; [ "$te" = "$first_te" ] && ceiling=--ceiling  # the ceiling once
        bench "startup-throughput-te$te" 120 CALIBRATION_CACHE=$cal PYTORCH_TENSOREXPR=$te -- $ceiling \
          --cap-gib 8 --jobs 4 --frames 250 --gate adaptive --max-concurrent 16
        bench "startup-first-frames-te$te" 90 CALIBRATION_CACHE=$cal PYTORCH_TENSOREXPR=$te -- \
          --cap-gib 8 --jobs 4 --frames 60 --gate adaptive --max-concurrent 16
      done
      python3 - "$res/results" <<'PY' | tee "$res/startup-summary.txt"
import glob, json, sys
for te in ("1", "0"):  # whichever ran
    for kind in ("throughput", "first-frames"):
        for f in sorted(glob.glob(f"{sys.argv[1]}/startup-{kind}-te{te}/*.json")):
            j = json.load(open(f))
            if "throughput_fps" not in j: continue
            p95, p99 = j.get("p95_ms"), j.get("p99_ms")
            print(f"fuser {'on ' if te == '1' else 'off'} {kind:12s}: {j['throughput_fps']:6.1f} frames/s, "
                  f"lost {j.get('frames_lost')}, p50 {j.get('p50_ms')} p95 {p95} p99 {p99} ms, "
                  f"p99/p95 {p99 / p95 if p95 else float('nan'):.2f}, mean batch {j.get('mean_batch')}")
PY
      ;;
    runpath)
      # Issue 13 target 1 through `segmentor run`: the bundled models over 1,440 HD/FHD JPEG frames
      # (long enough that the start and first calls weigh little), masks written, 16 concurrent
      # with batches; the summary's per-frame decode, gate wait, segment and write say what bounds
      # it. RUNPATH_TE lists the fuser settings to run (default "0", the worker's own default);
      # RUNPATH_REPEAT passes the folder that many times (default 1; 10 makes 14,400 frames, each
      # written under its own name), so the start's first calls weigh less.
      frames=/tmp/gpu-bench-runpath-frames; cal=/tmp/gpu-bench-runpath-calibration
      if [ ! -f "$frames/done" ]; then
        rm -rf "$frames"; mkdir -p "$frames"
        python3 - "$frames" <<'PY'
import sys
from concurrent.futures import ProcessPoolExecutor
import numpy as np
from PIL import Image
def make(i):
    rng = np.random.default_rng(i)
    w, h = (1920, 1080) if i % 2 else (1280, 720)
    small = (rng.random((9, 16, 3)) * 255).astype("uint8")  # smooth, photo-like to the codec
    Image.fromarray(small).resize((w, h), Image.BILINEAR).save(f"{sys.argv[1]}/f{i:04d}.jpg",
                                                                quality=90)
with ProcessPoolExecutor() as pool:
    list(pool.map(make, range(1440), chunksize=40))
PY
        touch "$frames/done"
      fi
      inputs=(); for _ in $(seq "${RUNPATH_REPEAT:-1}"); do inputs+=("$frames"); done
      for te in ${RUNPATH_TE:-0}; do
        rm -rf /tmp/gpu-bench-runpath-out
        TAIL=6 timed 200 "runpath-te$te-x${RUNPATH_REPEAT:-1}" env CALIBRATION_CACHE=$cal \
          PYTORCH_TENSOREXPR=$te MAX_MODEL_BATCH=8 MAX_CONCURRENT_IMAGES=16 \
          GPU_MEMORY_LIMIT_MB=8192 "$bin" run "${inputs[@]}" -o /tmp/gpu-bench-runpath-out \
          --kind frame --device cuda:0 --no-progress
      done
      rm -rf /tmp/gpu-bench-runpath-out ;;
    warm)
      # Issue 13 target 2 with whichever models are set (stand-ins, or bundled after `join`):
      # start to exit of `run` on one FHD frame, twice (the second reuses the calibration on disk),
      # the start-up lines that say where the time went, then p95 against p99 of a short bench
      # from its very first frame.
      frame=$res/warm-frame; rm -rf "$frame" /tmp/gpu-bench-calibration; mkdir -p "$frame"
      python3 -c "
from PIL import Image; import numpy as np
Image.fromarray((np.random.default_rng(1).random((1080,1920,3))*255).astype('uint8')).save('$frame/f.jpg')"
      for n in 1 2; do
        t0=$EPOCHREALTIME
        CALIBRATION_CACHE=/tmp/gpu-bench-calibration TAIL=4 timed 120 "warm-run-$n" "$bin" run \
          --device cuda:0 "$frame" -o "$res/warm-out-$n"
        echo "warm-run-$n: start to exit $(python3 -c "print(round($EPOCHREALTIME - $t0, 2))") s"
        grep -h "calibration on cuda:0\|start-up:" "$res/warm-run-$n.log" | cut -c1-160
      done
      CALIBRATION_CACHE=/tmp/gpu-bench-calibration bench warm-first-frames 120 \
        CUDA_STREAMS=worker -- --cap-gib 8 --jobs 4 --frames 60 --gate adaptive
      python3 - "$res/results/warm-first-frames" <<'PY'
import glob, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.json")):
    r = json.load(open(f))
    runs = r.get("runs", [r])
    for run in runs:
        p95, p99 = run.get("p95_ms"), run.get("p99_ms")
        if p95 and p99:
            print(f"first frames: p95 {p95:.0f} ms, p99 {p99:.0f} ms, p99/p95 {p99 / p95:.2f} (goal <= 2)")
PY
      ;;
    *) echo "usage: $0 build|prepare|streams|lanes|tuning|soak|measure|faults|join|startup|runpath|sweep|batchab|warm|verify|cleanup|stash-a|bundled|detector|batching ..." >&2
       exit 2 ;;
  esac
done
