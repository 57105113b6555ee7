#!/usr/bin/env bash
# Benchmark: wharf::plugin's per-call cost against plain wasmtime embedding code (same
# component, same engine settings, an instance per call from the pooling allocator), and
# loading a plugin from wharf's cache against compiling it (examples/plugin-bench.rs,
# release build). Not a test.
#   bench/plugin.sh        (CALLS=N, default 20000)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf/target}
bash "$repo/wasm-examples/build.sh" >/dev/null
cd "$repo"
cargo run --quiet --release --example plugin-bench -- wasm-examples/out/plugin-upper.wasm "${CALLS:-20000}"
