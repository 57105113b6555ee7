#!/usr/bin/env bash
# Benchmark: containers on a bridge network, wharf against podman 4.3 (netavark, aardvark-dns,
# runc), in the same run: `run --rm --network NET busybox true`, and TCP throughput between
# two containers on one network (busybox dd | nc, 1 GiB, server on the other container).
# Everything runs inside a fake host (a network and mount namespace of its own): bridges,
# rules and DNS servers never touch the machine's network. As root. Not a test.
#   bench/network.sh        (RUNS=N, default 20)
set -euo pipefail
if [ -z "${WHARF_BENCH_FAKE_HOST:-}" ]; then
    exec env WHARF_BENCH_FAKE_HOST=1 unshare --net --mount --propagation private -- bash "$0" "$@"
fi
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
    pkill -f "aardvark-dns --config $work" || true
    rm -rf "$work"
}
trap cleanup EXIT
"$wharf" network create --subnet 10.91.0.0/24 benchnet >/dev/null
$pm network create --subnet 10.92.0.0/24 benchnet >/dev/null
pmrun="run --rm --pull never --network benchnet --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/busybox:latest"
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
# Throughput: a server container that swallows what it is sent, a client that sends 1 GiB.
server='while true; do nc -l -p 5001 >/dev/null; done'
send='dd if=/dev/zero bs=1M count=1024 2>/tmp/dd | nc srv 5001; tail -1 /tmp/dd'
"$wharf" run -d --name srv --network benchnet busybox sh -c "$server" >/dev/null
$pm run -d --name srv --pull never --network benchnet localhost/busybox:latest sh -c "$server" >/dev/null
sleep 1
rate() { # prints MB/s from busybox dd's last line, e.g. "... copied, 0.9 seconds, 1.1GB/s"
    python3 -c '
import re, sys
m = re.search(r"copied, ([0-9.]+) seconds", sys.stdin.read())
print(f"{1024 / float(m.group(1)):.0f}" if m else "0")'
}
w_rates=() p_rates=()
for i in 1 2 3 4 5; do
    w_rates+=("$("$wharf" run --rm --network benchnet busybox sh -c "$send" | rate)")
    p_rates+=("$($pm $pmrun sh -c "$send" | rate)")
done
python3 - "${w_rates[*]}" "${p_rates[*]}" <<'PY'
import statistics, sys
w = [float(x) for x in sys.argv[1].split()]
p = [float(x) for x in sys.argv[2].split()]
print(f"{'TCP between two containers, wharf (MiB/s, median of 5)':<52} {statistics.median(w):7.0f}   {w}")
print(f"{'TCP between two containers, podman (MiB/s, median of 5)':<52} {statistics.median(p):7.0f}   {p}")
print(f"{'throughput: wharf / podman':<52} {statistics.median(w) / statistics.median(p):5.2f}")
PY
