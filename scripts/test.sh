#!/usr/bin/env bash
# The README's second command, and what CI runs: set up everything the tests need on this
# machine (packages, warnings-as-errors build, bundled models), then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

export SEGMENTOR_WERROR=${SEGMENTOR_WERROR:-ON}
export MODEL_CACHE=${MODEL_CACHE:-$PWD/models/cache}
scripts/setup.sh
ctest --test-dir build --output-on-failure --parallel 2 "$@"
