#!/usr/bin/env bash
# wharf's demo: builds a native image (busybox, with umoci) and wasm images (from
# wasm-examples/) out of files in this repository, with no network, then shows one store
# holding both kinds and wharf telling them apart, running them (CLI, detached, as one
# compose app on a bridge network, and as root through containerd with wharf's shim).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/setup.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf/target}
cargo build --quiet
wharf="$CARGO_TARGET_DIR/debug/wharf"
demo=$(mktemp -d /tmp/wharf-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT
export WHARF_ROOT="$demo/root"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

bash wasm-examples/build.sh "$demo/wasm" >/dev/null
bash tests/fixtures/make-busybox-image.sh "$demo/images" >/dev/null

step "$wharf" load -i "$demo/images/busybox-docker.tar"
step "$wharf" package "$demo/wasm/hello.wasm" -t hello:latest
step "$wharf" package "$demo/wasm/p2-command.wasm" -t greet:latest
step "$wharf" package "$demo/wasm/http-hello.wasm" -t http-hello:latest
step "$wharf" package "$demo/wasm/p3-command.wasm" -t greet3:latest
step "$wharf" package "$demo/wasm/hello.wasm" --compat -t hello-compat:latest
step "$wharf" images
step "$wharf" inspect --explain busybox
step "$wharf" inspect --explain http-hello
step "$wharf" inspect --explain hello-compat
step "$wharf" inspect --explain greet3
step "$wharf" run -e MODE=demo hello "one argument" --flag
step "$wharf" run -e GREETING=hej greet
# A WASI 0.3 component: async `run`, its stdio as streams.
step "$wharf" run -e GREETING=hej greet3 --exit 3 || true
# A plugin's export called directly (what an application does through wharf::plugin).
step "$wharf" package "$demo/wasm/plugin-upper.wasm" -t plugins/upper:1
step "$wharf" run --invoke 'process("plugins are called, not run")' plugins/upper:1
step "$wharf" run --timeout 200ms "$demo/wasm/loop.wat" || true
step "$wharf" run --memory 16m "$demo/wasm/memory-hog.wat" || true
if [ "$(id -u)" -eq 0 ]; then
    step "$wharf" run --hostname demo busybox sh -c 'echo "native: $(hostname), pid $$, $(grep CapEff /proc/self/status)"'
    step "$wharf" run --memory 32m busybox dd if=/dev/zero of=/dev/null bs=256M count=1 || true
fi
# Mixed containers under one CLI, detached, each with a small monitor and a json-file log.
step "$wharf" run -d --name web -p 127.0.0.1:18080:8080 http-hello
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.05; done
step curl -s http://127.0.0.1:18080/hello
if [ "$(id -u)" -eq 0 ]; then
    step "$wharf" run -d --name box --hostname box busybox sh -c 'echo started; while true; do sleep 1; done'
    step "$wharf" exec box sh -c 'echo "exec in $(hostname): $(ps | grep -c sh) sh processes"'
fi
step "$wharf" ps
step "$wharf" logs web
step "$wharf" stop -t 2 web $([ "$(id -u)" -eq 0 ] && echo box)
step "$wharf" ps -a
printf '\n\033[1m$ wharf inspect web | grep …\033[0m\n'
"$wharf" inspect web | grep -E '"(Status|ExitCode|Kind|Reason)"'
if [ "$(id -u)" -eq 0 ]; then
    # A mixed app from one compose file (wasm-examples/mixed-app/compose.yaml): a wasm worker
    # fills a named volume, a native busybox serves it and JSON of its own, a wasm wasi:http
    # front calls the backend by service name; up in dependency order with health checks.
    # Inside a network and mount namespace of the demo's own, so bridges, firewall rules and
    # name servers never touch this machine.
    "$wharf" package "$demo/wasm/fetch.wasm" -t fetch:latest >/dev/null
    "$wharf" package "$demo/wasm/fs-demo.wasm" -t wasm-examples/fs-demo:latest >/dev/null
    "$wharf" package "$demo/wasm/http-hello.wasm" -t wasm-examples/http-hello:latest >/dev/null
    "$wharf" package "$demo/wasm/p3-http.wasm" -t wasm-examples/p3-http:latest >/dev/null
    WHARF="$wharf" APP="$repo/wasm-examples/mixed-app/compose.yaml" \
    unshare --net --mount --propagation private -- bash -c '
        set -euo pipefail
        step() { printf "\n\033[1m$ %s\033[0m\n" "$*"; "$@"; }
        trap "\"$WHARF\" compose -f \"$APP\" down -v >/dev/null 2>&1 || true" EXIT
        mount -t tmpfs run /run   # per-boot state (namespaces, name server files) stays in here
        ip link set lo up
        step "$WHARF" compose -f "$APP" up -d
        step "$WHARF" compose -f "$APP" ps -a
        step curl -s http://127.0.0.1:18090/fetch/backend/index.json
        step curl -s http://127.0.0.1:18090/fetch/backend/shared/output.txt
        # The WASI 0.3 front (p3-http) asks the 0.2 one, by name.
        step curl -s http://127.0.0.1:18091/fetch/front:8080/from-p3
        step "$WHARF" run --rm --network mixed_default busybox wget -qO- http://front:8080/asked-by-busybox
        step "$WHARF" run --rm --network mixed_default fetch http://backend/index.json
        step "$WHARF" compose -f "$APP" logs
        step "$WHARF" compose -f "$APP" down -v
    '
    # containerd (Debian's, a private instance) runs both kinds through wharf's shim, as
    # Kubernetes would with a `wharf` RuntimeClass.
    cargo build --quiet -p containerd-shim-wharf
    cdir="$demo/containerd"
    mkdir -p "$cdir"
    printf 'version = 2\n' > "$cdir/config.toml"
    PATH="$CARGO_TARGET_DIR/debug:$PATH" containerd --config "$cdir/config.toml" \
        --root "$cdir/root" --state "$cdir/state" --address "$cdir/sock" >"$cdir/log" 2>&1 &
    cd_pid=$!
    trap 'kill $cd_pid 2>/dev/null; wait $cd_pid 2>/dev/null; rm -rf /run/containerd/wharf/wharf-demo "$demo"' EXIT
    for _ in $(seq 200); do [ -S "$cdir/sock" ] && break; sleep 0.05; done
    ctr="ctr --address $cdir/sock --namespace wharf-demo"
    "$wharf" save -o "$demo/for-containerd.tar" busybox hello-compat
    step $ctr images import "$demo/for-containerd.tar"
    step $ctr run --rm --runtime io.containerd.wharf.v1 docker.io/library/busybox:latest native1 \
        sh -c 'echo "native, through the wharf shim: pid $$ in $(hostname)"'
    step $ctr run --rm --runtime io.containerd.wharf.v1 docker.io/library/hello-compat:latest wasm1 \
        /app.wasm "through the wharf shim"
fi
step "$wharf" system prune
step "$wharf" save -o "$demo/all.tar" busybox hello greet
step skopeo inspect --raw "oci-archive:$demo/all.tar:docker.io/library/greet:latest"
step "$wharf" unpack busybox --to "$demo/rootfs"
step ls "$demo/rootfs" "$demo/rootfs/etc"
step "$wharf" system check
