#!/usr/bin/env bash
# Runs the integration tests against the static musl builds of wharf (scripts/build-static.sh):
# on x86_64 all of them (native included: WHARF_BIN_DIR points the tests at the musl
# wharf, wharf-runtime, wharf-monitor, shim and plugin host); on aarch64 the wasm ones (WASI
# p1, 0.2 and 0.3, wasi:http, limits), the binary run by Debian's qemu-user. Extra arguments
# filter the x86_64 run (as cargo test's).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf/target}
export WHARF_WASM_DIR=${WHARF_WASM_DIR:-$repo/wasm-examples/out}
export WHARF_TEST_IMAGES=${WHARF_TEST_IMAGES:-$CARGO_TARGET_DIR/test-images}
export WHARF_DEBIAN_IMAGE=${WHARF_DEBIAN_IMAGE:-$CARGO_TARGET_DIR/test-images-debian}
# A phase whose binaries do not build says how many tests it could not run (and fails), so
# the closing summary counts them instead of reporting only the tests that ran.
not_run() {  # REASON FILTER...
    local reason=$1; shift
    local n
    n=$(cargo test --quiet --test wharf -- --list "$@" 2>/dev/null | grep -c ': test$' || true)
    echo "not run: $n tests ($reason)"
}
status=0
musl="$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release"
arm="$CARGO_TARGET_DIR/aarch64-unknown-linux-musl/release"
if bash scripts/build-static.sh x86_64; then
    file "$musl/wharf" | sed "s|$CARGO_TARGET_DIR/||"
    start=$(date +%s)
    WHARF_BIN_DIR="$musl" cargo test --test wharf --no-fail-fast -- "$@" || status=$?
    echo "x86_64 musl tests took $(( $(date +%s) - start ))s"
else
    status=1
    not_run "x86_64 musl: scripts/build-static.sh x86_64 failed" "$@"
fi
if [ $# -eq 0 ]; then
    if bash scripts/build-static.sh aarch64; then
        file "$arm/wharf" | sed "s|$CARGO_TARGET_DIR/||"
        start=$(date +%s)
        qemu-aarch64 "$arm/wharf" --version
        # qemu-user keeps ~6 MiB of its own memory per GiB a guest reserves: a wasi:http pool
        # of 1000 instances (4 TiB reserved) would take 24 GiB. A small pool, as on a small box.
        WHARF_BIN="qemu-aarch64 $arm/wharf" WHARF_HTTP_INSTANCES=16 \
            cargo test --test wharf --no-fail-fast -- wasm:: || status=$?
        echo "aarch64 musl tests (qemu-user) took $(( $(date +%s) - start ))s"
    else
        status=1
        not_run "aarch64 musl: scripts/build-static.sh aarch64 failed" wasm::
    fi
fi
exit $status
