#!/usr/bin/env bash
# Benchmark: `wharf pull` of a ~100 MB multi-layer image from a local docker-registry against
# `skopeo copy` of the same image into an OCI layout, side by side in one hyperfine run.
# Not a test: prints medians and the ratio.
#   bench/pull.sh            (RUNS=N, default 5)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_setup
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 & reg=$!
trap 'kill $reg 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done

bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/base" >/dev/null
layout="$work/base/layout"
bench_big_image "$layout" /usr/include /usr/lib/python3.11 /usr/share/locale /usr/share/perl
ref="127.0.0.1:$port/bench/image:1"
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$layout:busybox" "docker://$ref"
echo "image: $(du -sh "$work/registry" | cut -f1) in the registry, 6 layers (gzip)"

hyperfine --style basic --warmup 1 --runs "${RUNS:-5}" --export-json "$work/result.json" \
    --prepare "rm -rf $work/w $work/o" \
    -n "wharf pull" "$wharf --root $work/w pull -q $ref" \
    -n "skopeo copy docker:// -> oci:" "skopeo --insecure-policy copy -q --src-tls-verify=false docker://$ref oci:$work/o:image" >/dev/null
python3 - "$work/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r:
    print(f"{x['command']:<32} median {x['median']*1000:8.0f} ms")
print(f"{'ratio wharf / skopeo':<32} {r[0]['median']/r[1]['median']:8.2f}x")
PY
