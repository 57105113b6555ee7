#!/usr/bin/env bash
# Builds the wasm examples and copies them, with the .wat fixtures, into an output directory
# (default wasm-examples/out). With WHARF set to a wharf binary, also packs each into images
# in the store under WHARF_ROOT (or wharf's default root) with `wharf package`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/out}
export CARGO_TARGET_DIR=${WHARF_WASM_TARGET_DIR:-$HOME/.cache/wharf/wasm-target}
cd "$here"
cargo build --quiet --release --target wasm32-wasip1 -p hello -p fs-demo
cargo build --quiet --release --target wasm32-wasip2 -p p2-command -p http-hello -p fetch \
    -p plugin-upper -p plugin-wordcount -p plugin-hostile
# WASI 0.3 components (async exports, stream I/O): wit-bindgen's async bindings for the
# WASI 0.3.0 WIT in wit/p3, linked by the wasm32-wasip2 target's wasm-component-ld.
cargo build --quiet --release --target wasm32-wasip2 -p p3-command -p p3-http \
    -p plugin-async-upper
mkdir -p "$out"
cp "$CARGO_TARGET_DIR/wasm32-wasip1/release/hello.wasm" "$out/hello.wasm"
cp "$CARGO_TARGET_DIR/wasm32-wasip1/release/fs-demo.wasm" "$out/fs-demo.wasm"
cp "$CARGO_TARGET_DIR/wasm32-wasip2/release/p2-command.wasm" "$out/p2-command.wasm"
cp "$CARGO_TARGET_DIR/wasm32-wasip2/release/http_hello.wasm" "$out/http-hello.wasm"
cp "$CARGO_TARGET_DIR/wasm32-wasip2/release/fetch.wasm" "$out/fetch.wasm"
cp "$CARGO_TARGET_DIR/wasm32-wasip2/release/p3_command.wasm" "$out/p3-command.wasm"
cp "$CARGO_TARGET_DIR/wasm32-wasip2/release/p3_http.wasm" "$out/p3-http.wasm"
for p in upper wordcount hostile async_upper; do
    cp "$CARGO_TARGET_DIR/wasm32-wasip2/release/plugin_$p.wasm" "$out/plugin-${p//_/-}.wasm"
done
cp "$here"/fixtures/*.wat "$out/"
if [ -n "${WHARF:-}" ]; then
    for f in "$out"/*.wasm "$out"/*.wat; do
        name=$(basename "${f%.*}")
        "$WHARF" package "$f" -t "wasm-examples/$name:latest" >/dev/null
    done
    "$WHARF" package "$out/hello.wasm" --compat -t wasm-examples/hello-compat:latest >/dev/null
fi
echo "wasm examples in $out"
