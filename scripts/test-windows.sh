#!/usr/bin/env bash
# Cross-builds wharf.exe (x86_64-pc-windows-gnu, mingw-w64 as linker) and runs the
# integration tests that cover the wasm path against it under wine. The test binary itself
# runs on Linux; WHARF_BIN makes it drive `wine wharf.exe` instead of the Linux build.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf/target}
target=x86_64-pc-windows-gnu
# The tests this script runs under wine (the same filters as the run below).
filters=(wasm:: package:: portable:: images::loads_every_format plugin::the_example_host)
if ! cargo build --quiet --target "$target" ||
   ! cargo build --quiet --target "$target" --example plugin-host; then
    # Counted in the closing summary instead of vanishing from it.
    n=$(cargo test --quiet --test wharf -- --list "$@" "${filters[@]}" 2>/dev/null | grep -c ': test$' || true)
    echo "not run: $n tests (windows: the $target build failed)"
    exit 1
fi
exe_dir="$CARGO_TARGET_DIR/$target/debug"
# Under Debian's wine a Rust Windows binary needs ProcessPrng from bcryptprimitives.dll.
x86_64-w64-mingw32-gcc -O2 -shared -o "$exe_dir/bcryptprimitives.dll" tests/windows/bcryptprimitives.c -ladvapi32
cp "$exe_dir/bcryptprimitives.dll" "$exe_dir/examples/"
export WINEPREFIX=${WINEPREFIX:-$HOME/.cache/wharf/wine-prefix}
export WINEDEBUG=-all
# No Mono or Gecko installer prompts while a new prefix is made (nothing here needs them).
export WINEDLLOVERRIDES="mscoree,mshtml="
# wineserver needs the prefix directory to exist (wine makes a prefix on first use, but
# wineserver does not): on a machine that never ran wine this is the first use.
mkdir -p "$WINEPREFIX"
# One persistent wineserver for the whole run: clients racing a wineserver that is shutting
# down after its idle timeout fail with "wine client error".
wineserver -p 2>/dev/null || true  # (one may run already for this prefix: it is reused)
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
# Populate a new prefix before the tests start racing each other to do it.
[ -f "$WINEPREFIX/system.reg" ] || wineboot --init >/dev/null 2>&1
wine "$exe_dir/wharf.exe" --version
export WHARF_BIN="wine $exe_dir/wharf.exe"
export WHARF_PLUGIN_HOST="wine $exe_dir/examples/plugin-host.exe"
export WHARF_HOST_OS=windows
start=$(date +%s)
cargo test --test wharf --no-fail-fast -- "$@" "${filters[@]}"
echo "wine tests took $(( $(date +%s) - start ))s"
