#!/usr/bin/env bash
# Benchmark: wharf against the official wasmtime CLI of its line (48, scripts/peer-wasmtime.sh)
# on the same components, side by side in one run. Not a test: prints medians, requests per
# second and ratios.
#   - cached start of a command: `wharf run --rm IMAGE` (compiled code from wharf's cache)
#     against `wasmtime run --allow-precompiled X.cwasm`, for a WASI p1 module, a 0.2
#     component and a 0.3 component;
#   - the first run, which compiles, against `wasmtime run -C cache=n` (p1);
#   - wasi:http throughput under wrk: `wharf run -p` against `wasmtime serve -Scli`, for the
#     0.2 server (http-hello) and the 0.3 one (p3-http), same paths and answers.
#   bench/wasm-run.sh          (RUNS=N, WRK_SECONDS=N to change)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_setup wrk
wasmtime=$(bench_wasmtime)
bash "$repo/wasm-examples/build.sh" >/dev/null
out="$repo/wasm-examples/out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
export WHARF_ROOT="$work/root"
echo "wharf $("$wharf" --version), $("$wasmtime" --version), $(nproc) cores"

runs=${RUNS:-30}
starts=()
for c in hello:hello.wasm p2:p2-command.wasm p3:p3-command.wasm; do
    name=${c%%:*} file=${c#*:}
    "$wharf" package "$out/$file" -t "$name" >/dev/null
    "$wharf" run --rm "$name" >/dev/null   # fills wharf's cache
    "$wasmtime" compile "$out/$file" -o "$work/$name.cwasm"
    starts+=(-n "wharf run --rm $name (cached)" "$wharf run --rm $name"
             -n "wasmtime run $name.cwasm (precompiled)" "$wasmtime run --allow-precompiled $work/$name.cwasm")
done
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/run.json" \
    "${starts[@]}" >/dev/null
hyperfine --style basic -N --warmup 1 --runs "$((runs / 3 + 1))" --export-json "$work/first.json" \
    --prepare "rm -rf $WHARF_ROOT/cache" \
    -n "wharf run --rm hello (first run, compiles)" "$wharf run --rm hello" \
    -n "wasmtime run hello.wasm (compiles, no cache)" "$wasmtime run -C cache=n $out/hello.wasm" \
    >/dev/null
python3 - "$work/run.json" "$work/first.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    r = json.load(open(f))["results"]
    for ours, peer in zip(r[0::2], r[1::2]):
        for x in (ours, peer):
            print(f"{x['command']:<48} median {x['median']*1000:7.2f} ms")
        print(f"{'  ratio wharf / wasmtime':<48} {ours['median']/peer['median']:7.2f}x")
PY

secs=${WRK_SECONDS:-10}
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
rps() { wrk -t2 -c32 -d"${secs}s" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}'; }
port=18181
for c in http:http-hello.wasm http3:p3-http.wasm; do
    name=${c%%:*} file=${c#*:}
    "$wharf" package "$out/$file" -t "$name" >/dev/null
    "$wharf" run --rm -p "127.0.0.1:$port:8080" "$name" 2>/dev/null & pids+=($!)
    "$wasmtime" serve -Scli --addr "127.0.0.1:$((port + 1))" "$out/$file" 2>/dev/null & pids+=($!)
    wait_port "$port"; wait_port "$((port + 1))"
    [ "$(curl -s "http://127.0.0.1:$port/x")" = "$(curl -s "http://127.0.0.1:$((port + 1))/x")" ] ||
        { echo "$name: wharf and wasmtime answer differently" >&2; exit 1; }
    for p in "$port" "$((port + 1))"; do wrk -t1 -c8 -d2s "http://127.0.0.1:$p/" >/dev/null; done  # warm up
    ours=$(rps "$port") peer=$(rps "$((port + 1))")
    printf '%-48s %10s req/s\n' "wharf run -p $name ($file)" "$ours" "wasmtime serve -Scli $file" "$peer"
    python3 -c "print(f'{\"  ratio wharf / wasmtime serve\":<48} {float($ours)/float($peer):7.2f}x')"
    kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=()
    port=$((port + 2))
done
