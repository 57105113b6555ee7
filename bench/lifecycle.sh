#!/usr/bin/env bash
# Benchmark: what a detached container costs. (1) Start-up: `wharf run -d` (returns once the
# container runs, with a monitor and a supervisor started) against a foreground `wharf run
# --rm` of the same image, native (busybox) and wasm (hello), in one hyperfine run each.
# (2) Memory: RSS and PSS of the monitor, the supervisor and the workload of N idle detached
# containers (native `sleep`, and a wasm http server). As root. Not a test.
#   bench/lifecycle.sh       (RUNS=N hyperfine runs, default 30; IDLE=N containers, default 10)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_setup
bench_images
trap '"$wharf" rm -f $("$wharf" ps -aq) >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

runs=${RUNS:-30}
clean="$wharf rm -f bench-d"
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/native.json" \
    --prepare "sh -c '$clean >/dev/null 2>&1 || true'" \
    -n "native: wharf run --rm busybox true" "$wharf run --rm busybox true" \
    -n "native: wharf run -d busybox true" "$wharf run -d --name bench-d busybox true" \
    >/dev/null 2>&1
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/wasm.json" \
    --prepare "sh -c '$clean >/dev/null 2>&1 || true'" \
    -n "wasm: wharf run --rm hello" "$wharf run --rm hello" \
    -n "wasm: wharf run -d hello" "$wharf run -d --name bench-d hello" \
    >/dev/null 2>&1
"$wharf" rm -f bench-d >/dev/null 2>&1 || true
python3 - "$work/native.json" "$work/wasm.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    r = json.load(open(f))["results"]
    fg, d = r[0]["median"], r[1]["median"]
    for x in r:
        print(f"{x['command']:<40} median {x['median']*1000:7.2f} ms")
    print(f"{'':<40} run -d / run = {d/fg:4.2f}x (+{(d-fg)*1000:.1f} ms)")
PY

idle=${IDLE:-10}
for i in $(seq "$idle"); do
    "$wharf" run -d --name "idle-$i" busybox sleep 600 >/dev/null
done
port=18190
for i in $(seq "$idle"); do
    "$wharf" run -d --name "srv-$i" -p "127.0.0.1:$((port + i)):8080" http >/dev/null
done
sleep 1
python3 - "$wharf" "$idle" <<'PY'
import json, subprocess, sys
wharf, n = sys.argv[1], int(sys.argv[2])
def mem(pid):
    m = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        k, v = line.split(":", 1)
        if v.strip().endswith("kB"):
            m[k] = int(v.split()[0])
    return m["Rss"], m["Pss"], m["Private_Clean"] + m["Private_Dirty"]
for prefix, label in (("idle", "native busybox sleep"), ("srv", "wasm http server")):
    tot = {"monitor": [0, 0, 0], "supervisor": [0, 0, 0], "workload": [0, 0, 0]}
    for i in range(1, n + 1):
        s = json.loads(subprocess.check_output([wharf, "inspect", f"{prefix}-{i}"]))["State"]
        procs = {"monitor": s["MonitorPid"], "supervisor": s["SupervisorPid"]}
        if s["Pid"] != s["SupervisorPid"]:
            procs["workload"] = s["Pid"]
        for k, pid in procs.items():
            for j, v in enumerate(mem(pid)):
                tot[k][j] += v
    print(f"{label} ({n} idle containers), per container:")
    for k, (r, p, own) in tot.items():
        if r:
            print(f"  {k:<11} RSS {r/n/1024:6.2f} MiB   private {own/n/1024:6.2f} MiB   PSS {p/n/1024:6.2f} MiB")
PY
