#!/usr/bin/env bash
# Benchmark: the static musl build of wharf against the glibc build, on x86_64, side by
# side in one run: `wharf run --rm` of the hello wasm image (cached: start-up), the
# wasi:http example under wrk (requests/second), the idle memory of a detached wasi:http
# container (its monitor and supervisor, RSS), and binary sizes (as built, and stripped)
# of both builds and of the aarch64 musl build. Not a test: prints figures and ratios.
#   bench/static.sh            (RUNS=N, WRK_SECONDS=N to change)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_setup wrk
glibc="$CARGO_TARGET_DIR/release"
bash "$repo/scripts/build-static.sh" x86_64 aarch64 >/dev/null
musl="$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release"
arm="$CARGO_TARGET_DIR/aarch64-unknown-linux-musl/release"
bash "$repo/wasm-examples/build.sh" >/dev/null
out="$repo/wasm-examples/out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; for b in glibc musl; do "${!b}/wharf" --root "$work/$b" rm -f idle >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT
for b in glibc musl; do
    "${!b}/wharf" --root "$work/$b" package "$out/hello.wasm" -t hello >/dev/null
    "${!b}/wharf" --root "$work/$b" package "$out/http-hello.wasm" -t http >/dev/null
done
echo "wharf $("$glibc/wharf" --version); $(file -b "$musl/wharf" | cut -d, -f1-2,4)"

echo
echo "== sizes (bytes; stripped in parentheses)"
for b in glibc musl arm; do
    for f in wharf wharf-runtime wharf-monitor containerd-shim-wharf-v1; do
        strip_tool=strip; [ $b = arm ] && strip_tool=aarch64-linux-gnu-strip
        "$strip_tool" -o "$work/stripped" "${!b}/$f"
        printf '%-6s %-26s %10d (%d)\n' "$b" "$f" "$(stat -c %s "${!b}/$f")" "$(stat -c %s "$work/stripped")"
    done
done

echo
echo "== wasm start (wharf run --rm hello, cached)"
runs=${RUNS:-30}
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$work/run.json" \
    -n "glibc" "$glibc/wharf --root $work/glibc run --rm hello" \
    -n "musl" "$musl/wharf --root $work/musl run --rm hello" >/dev/null
python3 - "$work/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r:
    print(f"{x['command']:<8} median {x['median']*1000:7.2f} ms  (min {x['min']*1000:.2f})")
print(f"ratio musl / glibc {r[1]['median']/r[0]['median']:.2f}x")
PY

echo
echo "== wasi:http (wrk -t2 -c32)"
secs=${WRK_SECONDS:-10}
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
"$glibc/wharf" --root "$work/glibc" run --rm -p 127.0.0.1:18191:8080 http 2>/dev/null & pids+=($!)
"$musl/wharf" --root "$work/musl" run --rm -p 127.0.0.1:18192:8080 http 2>/dev/null & pids+=($!)
wait_port 18191; wait_port 18192
for port in 18191 18192; do wrk -t1 -c8 -d2s "http://127.0.0.1:$port/" >/dev/null; done
g=$(wrk -t2 -c32 -d"${secs}s" http://127.0.0.1:18191/ | awk '/Requests\/sec/ {print $2}')
m=$(wrk -t2 -c32 -d"${secs}s" http://127.0.0.1:18192/ | awk '/Requests\/sec/ {print $2}')
printf '%-8s %10s req/s\n' glibc "$g" musl "$m"
python3 -c "print(f'ratio musl / glibc {float($m)/float($g):.2f}x')"
kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=()

echo
echo "== idle detached wasi:http container (RSS of its monitor + supervisor, KiB)"
for b in glibc musl; do
    "${!b}/wharf" --root "$work/$b" run -d --name idle -p 127.0.0.1:18193:8080 http >/dev/null
    wait_port 18193
    sleep 1
    state=$("${!b}/wharf" --root "$work/$b" inspect idle)
    mon=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["State"]["MonitorPid"])' <<<"$state")
    sup=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["State"]["Pid"])' <<<"$state")
    rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
    printf '%-8s monitor %6d  supervisor %7d  total %7d\n' "$b" "$(rss "$mon")" "$(rss "$sup")" $(( $(rss "$mon") + $(rss "$sup") ))
    "${!b}/wharf" --root "$work/$b" rm -f idle >/dev/null
done
