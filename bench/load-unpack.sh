#!/usr/bin/env bash
# Benchmark: `wharf load` + `wharf unpack` against `skopeo copy` + `umoci unpack` of the same
# oci-archive, side by side in one hyperfine run. Not a test: prints medians and ratios.
#
# The image: the busybox test image plus two layers of real files from this host
# (/usr/include and /usr/lib/python3.11, ~190 MB uncompressed, thousands of small files).
#   bench/load-unpack.sh            (RUNS=N to change the number of runs, default 5)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_setup

bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/base" >/dev/null
layout="$work/base/layout"
bench_big_image "$layout" /usr/include /usr/lib/python3.11
skopeo --insecure-policy copy -q "oci:$layout:busybox" "oci-archive:$work/bench.tar:bench:latest"
echo "image: $(du -h "$work/bench.tar" | cut -f1) archive, 4 layers (gzip), $(du -sh --apparent-size "$layout" | cut -f1) layout"

runs=${RUNS:-5}
hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/result.json" \
    --prepare "rm -rf $work/w $work/o $work/rootfs $work/bundle" \
    -n "wharf load + unpack (layer cache)" \
    "$wharf --root $work/w load -q -i $work/bench.tar && $wharf --root $work/w unpack bench" \
    -n "wharf load + unpack --to rootfs" \
    "$wharf --root $work/w load -q -i $work/bench.tar && $wharf --root $work/w unpack bench --to $work/rootfs" \
    -n "skopeo copy + umoci unpack" \
    "skopeo --insecure-policy copy -q oci-archive:$work/bench.tar oci:$work/o:bench && umoci unpack --image $work/o:bench $work/bundle"
python3 - "$work/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
peer = r[-1]["median"]
for x in r:
    print(f"{x['command']:<40} median {x['median']*1000:8.0f} ms   ratio to skopeo+umoci {x['median']/peer:5.2f}")
PY
