#!/usr/bin/env bash
# Benchmark: `wharf run busybox true` against `runc run` and `crun run` of the same busybox
# root filesystem (unpacked by umoci), same isolation switched on (namespaces, seccomp,
# capabilities, cgroups, no_new_privs), side by side in one hyperfine run. As root.
# crun needs a pure cgroup2 mount, so it runs inside `unshare -m` with cgroup2 mounted on
# /sys/fs/cgroup. Not a test: prints medians and ratios.
#   bench/native-run.sh        (RUNS=N to change the number of runs, default 50)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_setup
bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/img" >/dev/null
export WHARF_ROOT="$work/root"
"$wharf" load -q -i "$work/img/busybox-oci.tar" >/dev/null
bench_bundle "$work/bundle"
# crun on cgroup2 enforces device rules with an eBPF program, which needs RLIMIT_MEMLOCK
# raised (CAP_SYS_RESOURCE); hosts without that capability run crun without device rules.
cp -a "$work/bundle" "$work/bundle-crun"
if ! grep -q "^CapEff:.*" /proc/self/status || [ $(( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 24 & 1 )) -eq 0 ]; then
    echo "note: no CAP_SYS_RESOURCE here: crun runs without device cgroup rules"
    python3 - "$work/bundle-crun/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["linux"].get("resources", {}).pop("devices", None)
json.dump(c, open(sys.argv[1], "w"))
PY
fi

runs=${RUNS:-50}
crun_cmd="unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && crun run --bundle $work/bundle-crun crun-bench-\$\$ >/dev/null'"
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/result.json" \
    -n "wharf run --rm busybox true" "$wharf run --rm busybox true" \
    -n "runc run (same rootfs)" "runc run --bundle $work/bundle runc-bench" \
    -n "crun run (same rootfs, cgroup2)" "sh -c \"$crun_cmd\"" >/dev/null
python3 - "$work/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
ours = r[0]["median"]
for x in r:
    print(f"{x['command']:<36} median {x['median']*1000:7.2f} ms   wharf/this {ours/x['median']:5.2f}")
PY
