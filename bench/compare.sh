#!/usr/bin/env bash
# Benchmark: this checkout against an earlier revision of wharf, side by side in one
# hyperfine run, for the starts a change must not slow: native `run --rm busybox true` and
# cached wasm `run --rm hello`. Both are release builds; each binary gets a root of its own
# holding the same images. As root. Not a test: prints medians and new/old ratios.
#   bench/compare.sh REV       (e.g. a commit before a restructuring; RUNS=N, default 100:
#                              a native start varies by a few ms, 40 runs can be 8% apart)
# The earlier revision is built in a git worktree of its own (kept, so a second comparison
# with the same REV rebuilds nothing) with a target directory of its own, seeded with this
# checkout's release dependencies (only wharf's crates are rebuilt).
set -euo pipefail
rev=${1:?usage: bench/compare.sh REV}
source "$(dirname "$0")/common.sh"
bench_setup
old_target="$HOME/.cache/wharf/target-compare"
if [ ! -d "$old_target/release/deps" ]; then
    mkdir -p "$old_target"
    cp -a "$CARGO_TARGET_DIR/release" "$old_target/"
fi
tree="$old_target/worktree"
want=$(git -C "$repo" rev-parse "$rev^{commit}")
if [ "$(git -C "$tree" rev-parse HEAD 2>/dev/null)" != "$want" ]; then
    git -C "$repo" worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"
    git -C "$repo" worktree prune
    git -C "$repo" worktree add -f --detach "$tree" "$want" >/dev/null 2>&1
fi
(cd "$tree" && CARGO_TARGET_DIR="$old_target" cargo build --release --quiet)
old="$old_target/release/wharf"
new="$wharf"
bash "$repo/tests/fixtures/make-busybox-image.sh" "$work/img" >/dev/null
bash "$repo/wasm-examples/build.sh" "$work/wasm" >/dev/null
for who in old new; do
    bin=${!who}
    "$bin" --root "$work/$who" load -q -i "$work/img/busybox-oci.tar" >/dev/null
    "$bin" --root "$work/$who" package "$work/wasm/hello.wasm" -t hello >/dev/null
    "$bin" --root "$work/$who" run --rm hello >/dev/null # fills the compile cache
done
echo "old: $rev ($(git -C "$repo" rev-parse --short "$rev")), new: $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet || echo ' (uncommitted changes)')"
runs=${RUNS:-100}
hyperfine --style basic -N --warmup 5 --runs "$runs" --export-json "$work/result.json" \
    -n "old native" "$old --root $work/old run --rm busybox true" \
    -n "new native" "$new --root $work/new run --rm busybox true" \
    -n "old wasm" "$old --root $work/old run --rm hello" \
    -n "new wasm" "$new --root $work/new run --rm hello" >/dev/null
python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
for kind in ("native", "wasm"):
    o, n = r[f"old {kind}"], r[f"new {kind}"]
    print(f"{kind:<7} old median {o['median']*1000:7.2f} ms (mean {o['mean']*1000:7.2f})   "
          f"new median {n['median']*1000:7.2f} ms (mean {n['mean']*1000:7.2f})   "
          f"new/old {n['median']/o['median']:5.3f}")
PY
