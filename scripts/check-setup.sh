#!/usr/bin/env bash
# The guard behind scripts/setup.sh: fails when a toolchain the build or the tests use takes
# a file from a Debian package that setup.sh would not install on a bare machine. A package
# installed by hand (on a developer's machine, or on the machine CI runs on) otherwise hides
# the missing step until a newcomer's build fails.
#
# How: each toolchain is run once on a small C program under strace; every file it opened
# or executed is mapped to its Debian package (dpkg -S). Each of those packages must be one
# that `apt-get install --no-install-recommends <setup.sh's list>` brings onto a machine
# with nothing installed (apt's own resolver, simulated against an empty package status), or
# part of a bare Debian system (Essential, or Priority required). Recommended packages do not
# count: setup.sh does not install them.
#
#   scripts/check-setup.sh            (after scripts/setup.sh; needs strace, which it installs)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/wharf-check-setup.XXXXXX)
trap 'rm -rf "$work"' EXIT

mapfile -t listed < <(bash "$repo/scripts/setup.sh" --list)

# What the list brings onto an empty machine, as apt would resolve it.
: > "$work/empty-status"
apt-get -s -o Dir::State::status="$work/empty-status" -o Debug::NoLocking=1 \
    install --no-install-recommends "${listed[@]}" 2>"$work/apt.err" |
    awk '/^Inst / { print $2 }' | sort -u > "$work/brought"
if [ ! -s "$work/brought" ]; then
    echo "check-setup: apt could not resolve setup.sh's packages:" >&2
    cat "$work/apt.err" >&2
    exit 1
fi
# A bare Debian system (debootstrap --variant=minbase): essential and required packages.
dpkg-query -W -f='${Package}\t${Essential}\t${Priority}\n' |
    awk -F'\t' '$2 == "yes" || $3 == "required" { print $1 }' | sort -u > "$work/base"
sort -u "$work/brought" "$work/base" > "$work/allowed"
# The linker loads every plugin in /usr/lib/bfd-plugins that is there (LLVM's, where
# clang or llvm was installed): optional, so a plugin from another package, and the
# libraries it links, are not counted against setup.sh.
owner() { dpkg -S "$1" 2>/dev/null | head -1 | sed 's/[:,].*//'; }
: > "$work/optional"
for plugin in /usr/lib/bfd-plugins/*; do
    [ -e "$plugin" ] || continue
    pkg=$(owner "$plugin")
    [ -n "$pkg" ] && grep -qx -- "$pkg" "$work/allowed" && continue
    { echo "$plugin"; realpath "$plugin"
      ldd "$plugin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' |
          while read -r lib; do echo "$lib"; realpath "$lib"; done; } >> "$work/optional"
done

cat > "$work/probe.c" <<'EOF'
/* Headers and libraries the C code built by the project's crates uses (aws-lc, ring, zstd). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
static void *run(void *arg) { return arg; }
int main(void) {
    pthread_t t;
    struct stat st;
    pthread_create(&t, NULL, run, NULL);
    pthread_join(t, NULL);
    printf("probe ok %d\n", stat("/", &st) == 0 && errno == 0);
    return 0;
}
EOF
cat > "$work/probe-win.c" <<'EOF'
#include <windows.h>
#include <stdio.h>
int main(void) { printf("probe ok %lu\n", GetCurrentProcessId() > 0); return 0; }
EOF

# The toolchains: name, then the command (run in $work).
probes=(
    "gcc -static|gcc -static -O2 -o probe-gnu probe.c -lpthread && ./probe-gnu"
    "musl-gcc|musl-gcc -static -O2 -o probe-musl probe.c && ./probe-musl"
    "aarch64-linux-gnu-gcc|aarch64-linux-gnu-gcc -static -O2 -o probe-arm probe.c && aarch64-linux-gnu-ar rc probe.a probe-arm && qemu-aarch64 ./probe-arm"
    "x86_64-w64-mingw32-gcc|x86_64-w64-mingw32-gcc -O2 -o probe.exe probe-win.c && x86_64-w64-mingw32-gcc -O2 -shared -o probe.dll $repo/tests/windows/bcryptprimitives.c -ladvapi32"
)
status=0
for p in "${probes[@]}"; do
    name=${p%%|*} cmd=${p#*|}
    if ! (cd "$work" && LC_ALL=C strace -f -qq -o "$work/trace" -e trace=open,openat,execve \
            bash -c "$cmd" >"$work/out" 2>&1); then
        echo "check-setup: $name does not work on this machine:" >&2
        sed 's/^/    /' "$work/out" >&2
        status=1
        continue
    fi
    # Every file opened or executed successfully, under the system's program and library
    # directories (not /etc: configuration a tool reads when present, as locale.alias).
    grep -v ' = -1 ' "$work/trace" |
        sed -n 's/.*\(open\|openat\|execve\)(\(AT_FDCWD, \)\?"\([^"]*\)".*/\3/p' |
        grep -E '^/(usr|lib|lib64|bin|sbin)/' | sort -u > "$work/files"
    # dpkg knows each file by the path its package ships (/lib/... or /usr/lib/... on a
    # merged /usr): ask for the path as opened and as resolved.
    while read -r f; do
        echo "$f"
        realpath -q "$f" || true
    done < "$work/files" | sort -u | grep -vxF -f "$work/optional" > "$work/paths" || true
    # "pkg:arch, other: /path" lines: the file is fine when any of its owners is.
    xargs -a "$work/paths" -d '\n' dpkg -S 2>/dev/null > "$work/owners" || true
    while IFS= read -r line; do
        path=${line#*: /} owners=${line%%: /*}
        ok=0 first=""
        for o in ${owners//,/ }; do
            o=${o%%:*}
            [ -n "$first" ] || first=$o
            grep -qx -- "$o" "$work/allowed" && ok=1
        done
        [ $ok -eq 1 ] || echo "$first /$path"
    done < "$work/owners" | sort -u -k1,1 > "$work/missing"
    while read -r pkg path; do
        echo "check-setup: $name uses $path from package $pkg, which scripts/setup.sh does not install (add it to its list)" >&2
        status=1
    done < "$work/missing"
done
[ $status -eq 0 ] && echo "check-setup: every toolchain uses only packages setup.sh installs (${#probes[@]} checked)"
exit $status
