#!/usr/bin/env bash
# Benchmark: `compose up -d` until every service is healthy, then `down`, for a 3-service
# native app (bench/compose-app: db -> api -> web, each depending on the previous being
# healthy), wharf against podman-compose 1.0 (Debian, podman 4.3 + netavark + runc) in the
# same run. podman has no systemd here to run its health checks: the cycle runs
# `podman healthcheck run` itself until each is healthy (podman-compose starts in order but
# does not wait for conditions). Inside a fake host (network and mount namespace of its
# own). As root. Not a test.
#   bench/compose.sh        (RUNS=N, default 10)
set -euo pipefail
if [ -z "${WHARF_BENCH_FAKE_HOST:-}" ]; then
    exec env WHARF_BENCH_FAKE_HOST=1 unshare --net --mount --propagation private -- bash "$0" "$@"
fi
mount -t tmpfs run /run
ip link set lo up
source "$(dirname "$0")/common.sh"
bench_setup podman-compose catatonit
bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/img" >/dev/null
export WHARF_ROOT="$work/root"
"$wharf" load -q -i "$work/img/busybox-oci.tar" >/dev/null
pm="--root $work/podman-root --runroot $work/podman-run --storage-driver vfs --cgroup-manager cgroupfs --events-backend none --network-config-dir $work/podman-networks --runtime runc"
podman $pm load -q -i "$work/img/busybox-docker.tar" >/dev/null
app="$repo/bench/compose-app/compose.yaml"
cat > "$work/wharf-cycle.sh" <<SH
set -e
"$wharf" compose -p bench -f "$app" up -d 2>/dev/null
until [ "\$("$wharf" compose -p bench -f "$app" ps --format json | grep -c '"Health": "healthy"')" = 3 ]; do sleep 0.02; done
"$wharf" compose -p bench -f "$app" down 2>/dev/null
SH
cat > "$work/podman-cycle.sh" <<SH
set -e
cd "$(dirname "$app")"
podman-compose -p bench --podman-args "$pm" up -d >/dev/null 2>&1
for c in bench_db_1 bench_api_1 bench_web_1; do
    until podman $pm healthcheck run \$c >/dev/null 2>&1; do sleep 0.02; done
done
podman-compose -p bench --podman-args "$pm" down >/dev/null 2>&1
SH
cleanup() {
    "$wharf" compose -p bench -f "$app" down >/dev/null 2>&1 || true
    (cd "$(dirname "$app")" && podman-compose -p bench --podman-args "$pm" down >/dev/null 2>&1) || true
    for p in $(pgrep -x aardvark-dns); do
        [ "$(readlink /proc/$p/ns/net)" = "$(readlink /proc/self/ns/net)" ] && kill "$p"
    done
    rm -rf "$work"
}
trap cleanup EXIT
runs=${RUNS:-10}
hyperfine --style basic -N --warmup 1 --runs "$runs" --export-json "$work/compose.json" \
    -n "wharf compose up -d (healthy) + down" "bash $work/wharf-cycle.sh" \
    -n "podman-compose up -d (healthy) + down" "bash $work/podman-cycle.sh" >/dev/null
python3 - "$work/compose.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for c, ms in r.items():
    print(f"{c:<44} median {ms:8.1f} ms")
w = r["wharf compose up -d (healthy) + down"]
p = r["podman-compose up -d (healthy) + down"]
print(f"{'wharf / podman-compose':<44} {w / p:5.2f}")
PY
