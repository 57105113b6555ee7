#!/usr/bin/env bash
# Runs wharf's tests: installs what is missing, builds the wasm examples, the busybox test
# images (made with umoci and skopeo) and the Debian services image (debootstrap), runs every unit and integration test against the
# Linux build; then, against the static musl builds (scripts/build-static.sh), every
# integration test again on x86_64 and the wasm ones on aarch64 under qemu-user; then the
# portable ones against wharf.exe under wine (scripts/test-windows.sh). The OCI
# runtime-tools suite runs after the unit and integration tests.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
status=0
bash scripts/setup.sh
# Every toolchain takes its files only from packages setup.sh installs (else a machine that
# has them by hand hides a missing step): a failure here fails the run, after the tests.
bash scripts/check-setup.sh || status=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf/target}
bash wasm-examples/build.sh "$repo/wasm-examples/out" >/dev/null
export WHARF_WASM_DIR="$repo/wasm-examples/out"
# The official wasmtime CLI of wharf's line, which wasm tests compare wharf's output with.
WHARF_WASMTIME=$(bash scripts/peer-wasmtime.sh)
export WHARF_WASMTIME
export WHARF_TEST_IMAGES="$CARGO_TARGET_DIR/test-images"
bash tests/fixtures/make-busybox-image.sh "$WHARF_TEST_IMAGES" >/dev/null
# Real services (PostgreSQL, nginx) from Debian's packages, made once with debootstrap and
# umoci (the package mirror is the only network used) and kept until the script changes.
export WHARF_DEBIAN_IMAGE="$CARGO_TARGET_DIR/test-images-debian"
bash tests/fixtures/make-debian-image.sh "$WHARF_DEBIAN_IMAGE"
# The containerd shim is its own crate in the workspace: its binary is built for the
# integration tests, which find it beside wharf and wharf-runtime.
cargo build -p containerd-shim-wharf
# The example plugin host (examples/plugin-host.rs) is driven by tests/wharf/plugin.rs.
cargo build --example plugin-host
cargo test --workspace --no-fail-fast "$@" || status=$?
# The OCI runtime-tools validation suite, wharf-runtime beside runc: fails where
# wharf-runtime is not clean on a test runc is clean on (tests/conformance/).
bash tests/conformance/runtime-tools.sh "$CARGO_TARGET_DIR/debug/wharf-runtime" || status=$?
bash scripts/test-static.sh "$@" || status=$?
bash scripts/test-windows.sh || status=$?
exit $status
