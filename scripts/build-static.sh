#!/usr/bin/env bash
# Builds static binaries of wharf (wharf, wharf-runtime, wharf-monitor, and the containerd
# shim) for x86_64 and aarch64 Linux with musl, using Debian's toolchains: musl-gcc for
# x86_64's C code, gcc-aarch64-linux-gnu for aarch64's (and as its linker; Rust's musl
# targets bring their own static libc). The native backend is included: no C library is
# linked but libc itself (seccomp filters are built by the pure-Rust seccompiler).
#
#   scripts/build-static.sh [--debug] [x86_64|aarch64]...    (default: both, release)
#
# Prints where each target's binaries are. Needs scripts/setup.sh's packages and targets.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf/target}
profile=release
arches=()
for a in "$@"; do
    case "$a" in
        --debug) profile=debug ;;
        x86_64|aarch64) arches+=("$a") ;;
        *) echo "usage: $0 [--debug] [x86_64|aarch64]..." >&2; exit 2 ;;
    esac
done
[ ${#arches[@]} -gt 0 ] || arches=(x86_64 aarch64)
flag=(); [ "$profile" = release ] && flag=(--release)
for arch in "${arches[@]}"; do
    target="$arch-unknown-linux-musl"
    case "$arch" in
        x86_64)
            export CC_x86_64_unknown_linux_musl=musl-gcc
            ;;
        aarch64)
            export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
            export AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
            export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
            ;;
    esac
    # The binaries, and the example plugin host (a program using wharf as a library), which
    # the tests drive too.
    cargo build --quiet "${flag[@]}" --target "$target" --workspace --bins
    cargo build --quiet "${flag[@]}" --target "$target" --example plugin-host
    dir="$CARGO_TARGET_DIR/$target/$profile"
    for b in wharf wharf-runtime wharf-monitor containerd-shim-wharf-v1; do
        # Static: no interpreter, no shared libraries.
        if file "$dir/$b" | grep -q "dynamically linked"; then
            echo "$dir/$b is not static" >&2
            exit 1
        fi
    done
    echo "$target: $dir"
done
