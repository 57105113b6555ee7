#!/usr/bin/env bash
# Benchmark: what looking at containers costs. (1) `wharf stats --no-stream` with N running
# containers (native busybox `sleep`), against `podman stats --no-stream` over the same N
# busybox containers (podman 4.3 + runc, Debian's), in one hyperfine run; then wharf with
# N/2 native and N/2 wasm http servers. (2) The event log's cost on `run --rm`: the same
# command with the log on and off (WHARF_EVENTS_LOGGER=none), native and wasm, each pair
# measured twice in both orders. Inside a fake host (network and mount namespace of its own).
# As root. Not a test.
#   bench/operate.sh        (N=containers, default 100; RUNS=N hyperfine runs, default 40;
#                            ONLY=stats or ONLY=events for one half)
set -euo pipefail
source "$(dirname "$0")/common.sh"
if [ -z "${WHARF_BENCH_FAKE_HOST:-}" ]; then
    bench_tools podman catatonit # the fake host has no network to fetch them
    exec env WHARF_BENCH_FAKE_HOST=1 unshare --net --mount --propagation private -- bash "$0" "$@"
fi
mount -t tmpfs run /run
ip link set lo up
bench_setup podman catatonit
bench_images
pm="--root $work/podman-root --runroot $work/podman-run --storage-driver vfs --cgroup-manager cgroupfs --events-backend none --runtime runc"
podman $pm load -q -i "$work/img/busybox-docker.tar" >/dev/null
cleanup() {
    "$wharf" rm -f $("$wharf" ps -aq) >/dev/null 2>&1 || true
    podman $pm rm -f -a -t 0 >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
n=${N:-100}
runs=${RUNS:-40}

only=${ONLY:-}
if [ "$only" != events ]; then
for i in $(seq "$n"); do
    "$wharf" run -d --name "s$i" busybox sleep 3600 >/dev/null
    podman $pm run -d --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
        --name "s$i" busybox sleep 3600 >/dev/null
done
[ "$("$wharf" ps -q | wc -l)" = "$n" ] && [ "$(podman $pm ps -q | wc -l)" = "$n" ]
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/stats.json" \
    -n "wharf stats --no-stream ($n native)" "$wharf stats --no-stream" \
    -n "podman stats --no-stream ($n native)" "podman $pm stats --no-stream" >/dev/null
# Half of them wasm servers.
for i in $(seq $((n / 2 + 1)) "$n"); do "$wharf" rm -f "s$i" >/dev/null; done
for i in $(seq $((n / 2 + 1)) "$n"); do
    "$wharf" run -d --name "w$i" -p "127.0.0.1:$((18300 + i)):8080" http >/dev/null
done
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/mixed.json" \
    -n "wharf stats --no-stream ($((n / 2)) native + $((n - n / 2)) wasm)" "$wharf stats --no-stream" >/dev/null
"$wharf" rm -f $("$wharf" ps -aq) >/dev/null
podman $pm rm -f -a -t 0 >/dev/null 2>&1
fi

# The event log on run --rm: on (the default) and off, both orders, twice.
[ "$only" = stats ] || for kind in "busybox true" "hello"; do
    for order in 1 2; do
        on=(-n "log on: run --rm $kind" "env WHARF_EVENTS_LOGGER=file $wharf run --rm $kind")
        off=(-n "log off: run --rm $kind" "env WHARF_EVENTS_LOGGER=none $wharf run --rm $kind")
        if [ "$order" = 1 ]; then set -- "${on[@]}" "${off[@]}"; else set -- "${off[@]}" "${on[@]}"; fi
        hyperfine --style basic -N --warmup 5 --runs "$runs" \
            --export-json "$work/events-${kind%% *}-$order.json" "$@" >/dev/null
    done
done
python3 - "$work" <<'PY'
import json, sys, glob
work = sys.argv[1]
def res(f):
    return {x["command"]: x for x in json.load(open(f))["results"]}
if glob.glob(f"{work}/stats.json"):
    s = res(f"{work}/stats.json")
    for c, x in s.items():
        print(f"{c:<48} median {x['median']*1000:8.1f} ms")
    w, p = [x["median"] for x in s.values()]
    print(f"{'wharf / podman':<48} {w / p:5.2f}x")
    for c, x in res(f"{work}/mixed.json").items():
        print(f"{c:<48} median {x['median']*1000:8.1f} ms")
for kind in ("busybox", "hello"):
    on, off = [], []
    files = sorted(glob.glob(f"{work}/events-{kind}-*.json"))
    if not files:
        continue
    for f in files:
        for c, x in res(f).items():
            (on if "log on" in c else off).append(x["median"])
    a, b = sum(on) / len(on), sum(off) / len(off)
    print(f"run --rm {kind:<8} log on {a*1000:7.2f} ms  off {b*1000:7.2f} ms  "
          f"on / off {a / b:5.3f}x ({(a - b) * 1000:+.2f} ms; each median of both orders)")
PY
