#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (libFuzzer + ASan + UBSan) and runs each
# for a fixed time budget, starting from the seed corpus in tests/fuzz/corpus/<target>/.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60; CI runs a short budget)
# Prints, per target, the executions and whether it crashed; crash inputs are kept in
# $SEGMENTOR_FUZZ_DIR/<target>/ (default build-fuzz/). Exit status 1 when any target crashed.
# Record results in tests/fuzz/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-60}
out=${SEGMENTOR_FUZZ_DIR:-build-fuzz}

# clang and its runtime (libFuzzer, sanitizers) from Debian, only for fuzzing.
if ! command -v clang++ >/dev/null || ! clang++ -fsanitize=fuzzer -x c++ -o /dev/null - \
      <<<'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
      2>/dev/null; then
  if [ -n "${SEGMENTOR_FUZZ_NO_INSTALL:-}" ]; then
    echo "fuzz: clang's libFuzzer runtime is not installed; skipped"
    exit 77
  fi
  echo "fuzz: installing clang and its runtime"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null
fi

mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Isrc)
common=(src/common/status.cpp src/common/text.cpp)
declare -A sources=(
  [event_parser]="tests/fuzz/event_parser_fuzz.cpp src/messaging/events.cpp
                  src/messaging/wire_format.cpp src/messaging/name_uuid.cpp"
  [dotenv]="tests/fuzz/dotenv_fuzz.cpp $(ls src/config/*.cpp | tr '\n' ' ')"
  [image_decode]="tests/fuzz/image_decode_fuzz.cpp src/imaging/decode.cpp
                  src/imaging/jpeg_decode.cpp src/imaging/png_codec.cpp src/imaging/png_encode.cpp
                  src/imaging/webp_decode.cpp src/imaging/exif_orientation.cpp
                  src/imaging/file_io.cpp"
)
declare -A libs=([event_parser]="" [dotenv]="" [image_decode]="-ljpeg -lpng -lwebp -lwebpdemux -lexif")

crashed=0
summary=()
for target in event_parser dotenv image_decode; do
  binary="$out/${target}_fuzz"
  # shellcheck disable=SC2086
  clang++ "${flags[@]}" ${sources[$target]} "${common[@]}" ${libs[$target]} -o "$binary"
  work="$out/$target"
  mkdir -p "$work/corpus"
  log="$out/$target.log"
  set +e
  "$binary" -max_total_time="$budget" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/corpus" "tests/fuzz/corpus/$target" \
    >"$log" 2>&1
  status=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  if [ "$status" -ne 0 ]; then
    crashed=1
    summary+=("$target: CRASH (exit $status) after ${runs:-?} executions; see $log and $work/")
  else
    summary+=("$target: ${runs:-?} executions in ${budget} s, no crash")
  fi
done
printf '%s\n' "${summary[@]}"
exit "$crashed"
