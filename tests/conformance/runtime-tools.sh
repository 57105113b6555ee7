#!/usr/bin/env bash
# The OCI runtime-tools validation suite, run against runc and wharf-runtime side by side.
#
#   tests/conformance/runtime-tools.sh [WHARF_RUNTIME] [TEST...]
#
# The suite's sources come from Debian's source package (pinned by checksum below; Debian
# keeps runtime-tools' code but leaves out its vendor/ directory), built with Debian's Go in
# GOPATH mode against Debian's -dev packages (scripts/setup.sh installs them) and wharf's own
# TAP writer (tests/conformance/tap, for github.com/mndrix/tap-go, which Debian lacks).
# Each validation program runs once with RUNTIME=runc and once with RUNTIME=wharf-runtime.
# A test is clean when it exits 0 and prints no "not ok". The script fails when
# wharf-runtime is not clean on a test runc is clean on, and prints both runtimes' output of
# each such test. Outputs are kept in $OUT (default /tmp/wharf-runtime-tools).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/wharf/target}
wharf_runtime=${1:-$target/debug/wharf-runtime}
shift || true
version=0.9.0.109.ge931285
tarball=golang-github-opencontainers-runtime-tools_$version.orig.tar.xz
pool=http://deb.debian.org/debian/pool/main/g/golang-github-opencontainers-runtime-tools
cache=$(dirname "$target")/runtime-tools
out=${OUT:-/tmp/wharf-runtime-tools}
[ -x "$wharf_runtime" ] || { echo "no wharf-runtime at $wharf_runtime (cargo build first)" >&2; exit 2; }
command -v go >/dev/null || { echo "go is missing: run scripts/setup.sh" >&2; exit 2; }

# Sources, downloaded once and checked.
mkdir -p "$cache"
if [ ! -f "$cache/$tarball" ]; then
    curl -fsS -m 300 -o "$cache/$tarball.part" "$pool/$tarball" ||
        { echo "cannot download $pool/$tarball" >&2; rm -f "$cache/$tarball.part"; exit 2; }
    mv "$cache/$tarball.part" "$cache/$tarball"
fi
echo "$(cat "$here/runtime-tools.sha256")  $cache/$tarball" | sha256sum -c --quiet - ||
    { echo "$cache/$tarball does not match tests/conformance/runtime-tools.sha256" >&2
      rm -f "$cache/$tarball"; exit 2; }

# Build: runtimetest static (it runs inside the container), the validation programs.
gopath=$cache/gopath-$version
src=$gopath/src/github.com/opencontainers/runtime-tools
stamp=$(sha256sum "$here/tap/tap.go" | cut -c1-16)
if [ ! -f "$src/.built-$stamp" ]; then
    rm -rf "$gopath"
    mkdir -p "$gopath/src/github.com/mndrix" "$src"
    cp -r "$here/tap" "$gopath/src/github.com/mndrix/tap-go"
    tar -xJf "$cache/$tarball" -C "$src" --strip-components=1
    (cd "$src" &&
     export GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOPROXY=off \
            GOCACHE="$cache/gocache" CGO_ENABLED=0 &&
     make -s runtimetest >/dev/null && make -s validation-executables BUILD_FLAGS= >/dev/null)
    touch "$src/.built-$stamp"
fi

# Run. Each program runs with its own TMPDIR (its bundles), removed after it; what a
# runtime leaves mounted under it (runc leaves a container's mounts on the host when the
# spec has no mount namespace) is unmounted then, and counts against wharf-runtime.
if [ $# -gt 0 ]; then tests=("$@"); else
    tests=(); for t in "$src"/validation/*/*.t; do tests+=("$(basename "$t" .t)"); done
fi
rm -rf "$out"; mkdir -p "$out/runc" "$out/wharf"
declare -A excepted=()
while IFS= read -r line; do
    case $line in ''|'#'*) continue ;; esac
    excepted[${line%%:*}]=${line#*: }
done <"$here/runtime-tools.exceptions"
leftovers() { # leftovers DIR: mounts under DIR, then removes DIR
    local m found=""
    while read -r m; do
        found="$found $m"
    done < <(awk -v d="$1" '$5 ~ "^"d {print $5}' /proc/self/mountinfo)
    [ -z "$found" ] || umount -R -l $(awk -v d="$1" '$5 ~ "^"d"/ocitest[0-9]+$" {print $5}' /proc/self/mountinfo) 2>/dev/null || true
    rm -rf "$1"
    echo "$found"
}
cgroups_left() {
    { find /sys/fs/cgroup/*/wharf-runtime /sys/fs/cgroup/*/cgrouptest* -mindepth 1 -maxdepth 1 \
        -type d 2>/dev/null || true; } | wc -l
}
clean() { # clean LOG RC
    [ "$2" = 0 ] && ! grep -q '^not ok' "$1"
}
runc_clean=0 wharf_clean=0 neither=0 worse=() excused=()
cd "$src"
for t in "${tests[@]}"; do
    prog=validation/$t/$t.t
    tmp=$out/tmp-runc; mkdir -p "$tmp"
    rc=0; TMPDIR=$tmp RUNTIME=runc timeout 120 "$prog" >"$out/runc/$t" 2>&1 || rc=$?
    leftovers "$tmp" >/dev/null
    r=bad; clean "$out/runc/$t" $rc && { r=clean; runc_clean=$((runc_clean + 1)); }
    before=$(cgroups_left)
    tmp=$out/tmp-wharf; mkdir -p "$tmp"
    rc=0; TMPDIR=$tmp RUNTIME="$wharf_runtime" timeout 120 "$prog" >"$out/wharf/$t" 2>&1 || rc=$?
    left=$(leftovers "$tmp")
    w=bad; clean "$out/wharf/$t" $rc && w=clean
    if [ -n "$left" ]; then
        echo "not ok - wharf-runtime left mounts:$left" >>"$out/wharf/$t"; w=bad
    fi
    if [ "$(cgroups_left)" != "$before" ]; then
        echo "not ok - wharf-runtime left cgroups" >>"$out/wharf/$t"; w=bad
    fi
    [ $w = clean ] && wharf_clean=$((wharf_clean + 1))
    printf '%-40s runc %-5s wharf-runtime %s\n' "$t" $r $w
    if [ $r = clean ] && [ $w != clean ]; then
        if [ -n "${excepted[$t]:-}" ]; then excused+=("$t"); else worse+=("$t"); fi
    elif [ $r != clean ] && [ $w != clean ]; then
        neither=$((neither + 1))
    fi
done
echo "runtime-tools $version: runc clean on $runc_clean of ${#tests[@]}," \
     "wharf-runtime clean on $wharf_clean"
for t in "${excused[@]}"; do
    echo "excepted: $t (clean under runc): ${excepted[$t]}"
done
for t in "${worse[@]}"; do
    echo "=== $t: clean under runc, not under wharf-runtime; wharf-runtime's output:"
    grep -vE '^ok |^  ' "$out/wharf/$t" | head -40
done
# One line in cargo's format, so the CI summary counts these tests: passed (clean under
# wharf-runtime), failed (worse than runc), ignored (not clean under either, or excepted).
result=ok; [ ${#worse[@]} -eq 0 ] || result=FAILED
echo "test result: $result. $wharf_clean passed; ${#worse[@]} failed;" \
     "$((neither + ${#excused[@]})) ignored; 0 measured; 0 filtered out (runtime-tools)"
[ ${#worse[@]} -eq 0 ] || { echo "wharf-runtime is not clean on: ${worse[*]}"; exit 1; }
