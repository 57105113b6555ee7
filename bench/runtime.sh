#!/usr/bin/env bash
# Benchmark: wharf-runtime against runc and crun as engines drive them: create, start, wait
# for the process, delete, of busybox `true` on the same bundle (unpacked by umoci, the same
# confinement for all three), side by side in one hyperfine run. crun runs inside
# `unshare -m` with cgroup2 mounted on /sys/fs/cgroup (it fails on this hybrid host
# otherwise); that mount's cost is measured apart. As root. Not a test.
#   bench/runtime.sh        (RUNS=N, default 30)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_setup
rt="$CARGO_TARGET_DIR/release/wharf-runtime"
bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/img" >/dev/null
export WHARF_ROOT="$work/root"
"$wharf" load -q -i "$work/img/busybox-oci.tar" >/dev/null
bench_bundle "$work/bundle" drop-devices
# create, start, wait until the process is gone (its pid file), delete: as a shim does.
cat > "$work/cycle.sh" <<'SH'
r=$1 root=$2 id=$3-$$ dir=$4
$r --root "$root" create --bundle "$dir/bundle" --pid-file "$dir/$id.pid" "$id" >/dev/null 2>&1 </dev/null
$r --root "$root" start "$id"
pid=$(cat "$dir/$id.pid")
while [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do :; done
$r --root "$root" delete --force "$id"
rm -f "$dir/$id.pid"
SH
runs=${RUNS:-30}
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/runtime.json" \
    -n "wharf-runtime create+start+wait+delete" "sh $work/cycle.sh $rt $work/rt-wharf w $work" \
    -n "runc create+start+wait+delete" "sh $work/cycle.sh runc $work/rt-runc r $work" \
    -n "crun create+start+wait+delete (in unshare -m + cgroup2)" \
        "unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && sh $work/cycle.sh crun $work/rt-crun c $work'" \
    -n "unshare -m + cgroup2 mount alone" "unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && true'" \
    -n "wharf-runtime run" "$rt --root $work/rt-wharf run --bundle $work/bundle run1" \
    -n "runc run" "runc --root $work/rt-runc run --bundle $work/bundle run1" >/dev/null
# podman run --rm with each runtime (a private podman: vfs storage, cgroupfs).
"$wharf" save --format docker-archive -o "$work/busybox-docker.tar" busybox >/dev/null
pm="podman --root $work/podman-root --runroot $work/podman-run --storage-driver vfs --cgroup-manager cgroupfs --events-backend none"
$pm load -q -i "$work/busybox-docker.tar" >/dev/null
pmrun="run --rm --pull never --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/busybox:latest true"
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/podman.json" \
    -n "podman run --rm (wharf-runtime)" "$pm --runtime $rt $pmrun" \
    -n "podman run --rm (runc)" "$pm --runtime runc $pmrun" >/dev/null
python3 - "$work/podman.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for c, ms in r.items():
    print(f"{c:<58} median {ms:7.2f} ms")
print(f"{'podman: wharf-runtime / runc':<58} {r['podman run --rm (wharf-runtime)'] / r['podman run --rm (runc)']:5.2f}")
PY
python3 - "$work/runtime.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
ours = r["wharf-runtime create+start+wait+delete"]
for c, ms in r.items():
    print(f"{c:<58} median {ms:7.2f} ms   wharf-runtime/this {ours / ms:5.2f}")
crun = r["crun create+start+wait+delete (in unshare -m + cgroup2)"] - r["unshare -m + cgroup2 mount alone"]
print(f"{'crun cycle without its mount namespace and cgroup2 mount':<58} median {crun:7.2f} ms   wharf-runtime/this {ours / crun:5.2f}")
print(f"{'run: wharf-runtime / runc':<58} {r['wharf-runtime run'] / r['runc run']:5.2f}")
PY
