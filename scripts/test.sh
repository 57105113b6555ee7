#!/usr/bin/env bash
# Runs wharf's tests: installs what is missing, builds the wasm examples and the busybox test
# images (made with umoci and skopeo), then runs every unit and integration test.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/setup.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf/target}
bash wasm-examples/build.sh "$repo/wasm-examples/out" >/dev/null
export WHARF_WASM_DIR="$repo/wasm-examples/out"
export WHARF_TEST_IMAGES="$CARGO_TARGET_DIR/test-images"
bash tests/fixtures/make-busybox-image.sh "$WHARF_TEST_IMAGES" >/dev/null
cargo test --no-fail-fast "$@"
