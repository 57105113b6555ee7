#!/usr/bin/env bash
# Benchmark: `wharf run` of the hello wasm image against `wasmtime run` of the same .wasm
# (same wasmtime version), and the wasi:http example under wrk against `wasmtime serve`,
# side by side in one run. Not a test: prints medians, requests/second and ratios.
#
# Needs wasmtime-cli of wharf's wasmtime version (not part of CI; about 9 minutes):
#   cargo install wasmtime-cli --version 48.0.8 --locked --root ~/.cache/wharf/peers
#   bench/wasm-run.sh          (RUNS=N, WRK_SECONDS=N to change)
set -euo pipefail
wasmtime=${WASMTIME:-$(command -v wasmtime || echo "$HOME/.cache/wharf/peers/bin/wasmtime")}
[ -x "$wasmtime" ] || { echo "no wasmtime: see the header of $0" >&2; exit 1; }
source "$(dirname "$0")/common.sh"
bench_setup wrk
bash "$repo/wasm-examples/build.sh" >/dev/null
out="$repo/wasm-examples/out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
export WHARF_ROOT="$work/root"
"$wharf" package "$out/hello.wasm" -t hello >/dev/null
"$wharf" package "$out/http-hello.wasm" -t http >/dev/null
"$wasmtime" compile "$out/hello.wasm" -o "$work/hello.cwasm"
echo "wharf $("$wharf" --version), $("$wasmtime" --version)"

runs=${RUNS:-30}
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/run.json" \
    -n "wharf run --rm hello (cached)" "$wharf run --rm hello" \
    -n "wasmtime run hello.cwasm (precompiled)" "$wasmtime run --allow-precompiled $work/hello.cwasm" \
    >/dev/null
hyperfine --style basic -N --warmup 1 --runs "$((runs / 3 + 1))" --export-json "$work/first.json" \
    --prepare "rm -rf $WHARF_ROOT/cache" \
    -n "wharf run --rm hello (first run, compiles)" "$wharf run --rm hello" \
    -n "wasmtime run hello.wasm (compiles, no cache)" "$wasmtime run -C cache=n $out/hello.wasm" \
    >/dev/null
python3 - "$work/run.json" "$work/first.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    r = json.load(open(f))["results"]
    ours, peer = r[0]["median"], r[1]["median"]
    for x in r:
        print(f"{x['command']:<48} median {x['median']*1000:7.2f} ms")
    print(f"{'ratio wharf / wasmtime':<48} {ours/peer:7.2f}x")
PY

secs=${WRK_SECONDS:-10}
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
"$wharf" run --rm -p 127.0.0.1:18181:8080 http 2>/dev/null & pids+=($!)
"$wasmtime" serve -Scli --addr 127.0.0.1:18182 "$out/http-hello.wasm" 2>/dev/null & pids+=($!)
wait_port 18181; wait_port 18182
for port in 18181 18182; do wrk -t1 -c8 -d2s "http://127.0.0.1:$port/" >/dev/null; done  # warm up
ours=$(wrk -t2 -c32 -d"${secs}s" http://127.0.0.1:18181/ | awk '/Requests\/sec/ {print $2}')
peer=$(wrk -t2 -c32 -d"${secs}s" http://127.0.0.1:18182/ | awk '/Requests\/sec/ {print $2}')
printf '%-48s %10s req/s\n' "wharf run -p (wasi:http)" "$ours" "wasmtime serve -Scli" "$peer"
python3 -c "print(f'{\"ratio wharf / wasmtime serve\":<48} {float($ours)/float($peer):7.2f}x')"
