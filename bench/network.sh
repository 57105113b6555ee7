#!/usr/bin/env bash
# Benchmark: containers on a bridge network, wharf against podman 4.3 (netavark, aardvark-dns,
# runc), in the same run: `run --rm --network NET busybox true`, and TCP throughput between
# two containers on one network (busybox wget of 1 GiB from busybox httpd, by name).
# Everything runs inside a fake host (a network and mount namespace of its own): bridges,
# rules and DNS servers never touch the machine's network. As root. Not a test.
#   bench/network.sh        (RUNS=N, default 20)
set -euo pipefail
if [ -z "${WHARF_BENCH_FAKE_HOST:-}" ]; then
    exec env WHARF_BENCH_FAKE_HOST=1 unshare --net --mount --propagation private -- bash "$0" "$@"
fi
mount -t tmpfs run /run   # per-boot state (netns files, aardvark-dns config) stays in here
ip link set lo up
source "$(dirname "$0")/common.sh"
bench_setup
bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/img" >/dev/null
export WHARF_ROOT="$work/root"
"$wharf" load -q -i "$work/img/busybox-oci.tar" >/dev/null
pm="podman --root $work/podman-root --runroot $work/podman-run --storage-driver vfs --cgroup-manager cgroupfs --events-backend none --network-config-dir $work/podman-networks --runtime runc"
$pm load -q -i "$work/img/busybox-docker.tar" >/dev/null
cleanup() {
    "$wharf" rm -f srv >/dev/null 2>&1 || true
    $pm rm -f -t 0 srv >/dev/null 2>&1 || true
    # Name servers left in this namespace (it goes away with the script).
    for p in $(pgrep -x aardvark-dns); do
        [ "$(readlink /proc/$p/ns/net)" = "$(readlink /proc/self/ns/net)" ] && kill "$p"
    done
    true
    rm -rf "$work"
}
trap cleanup EXIT
"$wharf" network create --subnet 10.91.0.0/24 benchnet >/dev/null
$pm network create --subnet 10.92.0.0/24 benchnet >/dev/null
pmrun="run --rm --pull never --network benchnet --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 docker.io/library/busybox:latest"
runs=${RUNS:-20}
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/run.json" \
    -n "wharf run --rm --network benchnet busybox true" "$wharf run --rm --network benchnet busybox true" \
    -n "podman run --rm --network benchnet busybox true" "$pm $pmrun true" \
    -n "wharf run --rm --network none busybox true" "$wharf run --rm busybox true" >/dev/null
python3 - "$work/run.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for c, ms in r.items():
    print(f"{c:<52} median {ms:7.2f} ms")
w = r["wharf run --rm --network benchnet busybox true"]
p = r["podman run --rm --network benchnet busybox true"]
n = r["wharf run --rm --network none busybox true"]
print(f"{'run on a network: wharf / podman':<52} {w / p:5.2f}")
print(f"{'what the network costs wharf (ms)':<52} {w - n:7.2f}")
PY
# Throughput: busybox httpd serving a 1 GiB (sparse) file from one container, busybox wget
# fetching it from another by name, timed inside the client (the server's page cache warmed
# by one fetch first).
server='mkdir -p /www && truncate -s 1G /www/big && exec httpd -f -p 80 -h /www'
fetch='time wget -qO /dev/null http://srv/big'
"$wharf" run -d --name srv --network benchnet busybox sh -c "$server" >/dev/null
$pm run -d --name srv --pull never --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network benchnet docker.io/library/busybox:latest sh -c "$server" >/dev/null
sleep 1
rate() { # MiB/s from busybox time's "real 0m 0.34s"
    python3 -c '
import re, sys
m = re.search(r"real\s+(\d+)m\s*([0-9.]+)s", sys.stdin.read())
print(f"{1024 / (int(m.group(1)) * 60 + float(m.group(2))):.0f}" if m else "0")'
}
"$wharf" run --rm --network benchnet busybox sh -c "$fetch" >/dev/null 2>&1
$pm $pmrun sh -c "$fetch" >/dev/null 2>&1
w_rates=() p_rates=()
for i in 1 2 3 4 5; do
    w_rates+=("$("$wharf" run --rm --network benchnet busybox sh -c "$fetch" 2>&1 | rate)")
    p_rates+=("$($pm $pmrun sh -c "$fetch" 2>&1 | rate)")
done
python3 - "${w_rates[*]}" "${p_rates[*]}" <<'PY'
import statistics, sys
w = [float(x) for x in sys.argv[1].split()]
p = [float(x) for x in sys.argv[2].split()]
print(f"{'TCP between two containers, wharf (MiB/s, median of 5)':<52} {statistics.median(w):7.0f}   {w}")
print(f"{'TCP between two containers, podman (MiB/s, median of 5)':<52} {statistics.median(p):7.0f}   {p}")
print(f"{'throughput: wharf / podman':<52} {statistics.median(w) / statistics.median(p):5.2f}")
PY
