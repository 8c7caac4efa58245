#!/usr/bin/env bash
# The README's second command, and what CI runs: set up everything the tests need on this
# machine (packages, warnings-as-errors build, bundled models), then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

export SEGMENTOR_WERROR=${SEGMENTOR_WERROR:-ON}
export MODEL_CACHE=${MODEL_CACHE:-$PWD/models/cache}
scripts/setup.sh
ctest --test-dir build --output-on-failure --parallel 2 "$@"

# Then the torch-free unit tests again under ASan + UBSan, in build-asan/ (issue 11): about 6
# minutes on a clean 2-core machine without ccache (tests/SANITIZERS.md). Only for the whole
# suite (no ctest arguments); SEGMENTOR_TEST_ASAN=0 skips it.
if [ "${SEGMENTOR_TEST_ASAN:-1}" != 0 ] && [ $# -eq 0 ]; then
  SEGMENTOR_ASAN_TARGETS="common_test config_test jobs_test memory_test messaging_test" \
    scripts/sanitize.sh asan
fi
