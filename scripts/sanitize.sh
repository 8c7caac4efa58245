#!/usr/bin/env bash
# The sanitizer runs of the tests (issue 11), each in its own build folder so the normal build is
# untouched:
#   build-asan/  ASan + UBSan: the unit tests that need no GPU, no LibTorch and no servers —
#                common, config, imaging, jobs, memory, messaging (pure), pipeline (engine, slot
#                threads, gate with fake models), service (settlement, input guard).
#   build-tsan/  TSan: the concurrency tests — memory_test (admission gate, tuner, OOM ladder),
#                pipeline_test (engine, slot threads), jobs_test (tracker from many threads).
# The `segmentor serve` worker itself runs threads inside LibTorch, which is not instrumented;
# its concurrency is exercised by the serve end-to-end tests instead.
#   scripts/sanitize.sh [asan|tsan|all]   (default all)
# Record the results in tests/SANITIZERS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
parallel=${SEGMENTOR_BUILD_JOBS:-2}
# SEGMENTOR_ASAN_TARGETS / SEGMENTOR_TSAN_TARGETS (space-separated) narrow a run.
default_asan="common_test config_test imaging_test jobs_test memory_test messaging_test"
default_asan+=" pipeline_test service_unit_test"
read -r -a asan_targets <<<"${SEGMENTOR_ASAN_TARGETS:-$default_asan}"
read -r -a tsan_targets <<<"${SEGMENTOR_TSAN_TARGETS:-memory_test pipeline_test jobs_test}"

run() {  # run <dir> <cmake flag> <env> <targets...>
  local dir=$1 flag=$2 env=$3
  shift 3
  generator=(); command -v ninja >/dev/null && [ ! -f "$dir/CMakeCache.txt" ] && generator=(-G Ninja)
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$flag" \
    -DSEGMENTOR_BUILD_BENCH=OFF -DSEGMENTOR_WERROR=OFF >/dev/null
  cmake --build "$dir" --parallel "$parallel" --target "$@"
  # Each gtest binary is one CTest label set; run the binaries directly, all cases.
  local failed=0
  for t in "$@"; do
    local binary
    binary=$(find "$dir/tests" -type f -name "$t" -perm -u+x | head -1)
    echo "=== $t ($dir)"
    if ! env $env "$binary" --gtest_brief=1; then failed=1; fi
  done
  return $failed
}

status=0
if [ "$which" = asan ] || [ "$which" = all ]; then
  run build-asan -DSEGMENTOR_SANITIZE=ON \
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1" \
    "${asan_targets[@]}" || status=1
fi
if [ "$which" = tsan ] || [ "$which" = all ]; then
  run build-tsan -DSEGMENTOR_SANITIZE_THREAD=ON "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1" \
    "${tsan_targets[@]}" || status=1
fi
exit $status
