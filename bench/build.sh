#!/usr/bin/env bash
# Benchmark: `wharf build` against `buildah bud` (Debian's buildah, vfs storage, runc, no
# network, --layers for its cache) of the same small multi-stage Dockerfile, side by side in
# one hyperfine run: a cold build (the base image in each one's store, no cached step) and
# a rebuild with nothing changed. Not a test: prints medians and ratios.
#   bench/build.sh            (RUNS=N, default 10)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_setup buildah
bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/img" >/dev/null
ctx="$work/ctx"
mkdir -p "$ctx/src"
for i in $(seq 50); do echo "file $i" > "$ctx/src/f$i.txt"; done
cat > "$ctx/Dockerfile" <<'DF'
FROM busybox AS build
ARG N=200
RUN mkdir -p /out && for i in $(seq $N); do echo "line $i" >> /out/lines; done && rm -rf /etc/group
COPY src/ /out/src/
RUN tar -cf /out/src.tar -C /out src && rm -r /out/src

FROM busybox
COPY --from=build /out /srv
WORKDIR /srv
USER 1000:1000
CMD ["ls", "/srv"]
DF
b="$work/buildah"
buildah_() { buildah --storage-driver vfs --root "$b/root" --runroot "$b/runroot" "$@"; }
wharf_load="$wharf --root $work/w load -q -i $work/img/busybox-oci.tar"
buildah_base="buildah --storage-driver vfs --root $b/root --runroot $b/runroot pull -q oci-archive:$work/img/busybox-oci.tar >/dev/null && buildah --storage-driver vfs --root $b/root --runroot $b/runroot tag \$(buildah --storage-driver vfs --root $b/root --runroot $b/runroot images -q | head -1) docker.io/library/busybox:latest"
bud="buildah --storage-driver vfs --root $b/root --runroot $b/runroot bud -q --layers --pull=never --runtime runc --isolation oci --network none -t built $ctx"
trap 'buildah_ rm --all >/dev/null 2>&1; buildah_ rmi --all --force >/dev/null 2>&1; rm -rf "$work"' EXIT

hyperfine --style basic --warmup 1 --runs "${RUNS:-10}" --export-json "$work/cold.json" \
    -n "wharf build (cold)" --prepare "rm -rf $work/w && $wharf_load >/dev/null" \
    "$wharf --root $work/w build -q -t built $ctx" \
    -n "buildah bud (cold)" --prepare "buildah --storage-driver vfs --root $b/root --runroot $b/runroot rmi --all --force >/dev/null 2>&1; rm -rf $b; $buildah_base" \
    "$bud" >/dev/null
# Warm: each one's cache filled by one build first.
rm -rf "$work/w"; eval "$wharf_load" >/dev/null; "$wharf" --root "$work/w" build -q -t built "$ctx" >/dev/null
"$wharf" --root "$work/w" build -t built "$ctx" 2>&1 | grep -q "from the cache"
hyperfine --style basic --warmup 1 --runs "${RUNS:-10}" --export-json "$work/warm.json" \
    -n "wharf build (no change)" "$wharf --root $work/w build -q -t built $ctx" \
    -n "buildah bud (no change)" "$bud" >/dev/null
python3 - "$work/cold.json" "$work/warm.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    r = json.load(open(f))["results"]
    for x in r:
        print(f"{x['command']:<28} median {x['median']*1000:8.0f} ms")
    print(f"{'ratio wharf / buildah':<28} {r[0]['median']/r[1]['median']:8.2f}x")
PY
