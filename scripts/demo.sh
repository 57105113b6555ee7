#!/usr/bin/env bash
# wharf's demo: builds a native image (busybox, with umoci) and wasm images (from
# wasm-examples/) out of files in this repository, with no network, then shows one store
# holding both kinds and wharf telling them apart.
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
step "$wharf" package "$demo/wasm/hello.wasm" --compat -t hello-compat:latest
step "$wharf" images
step "$wharf" inspect --explain busybox
step "$wharf" inspect --explain http-hello
step "$wharf" inspect --explain hello-compat
step "$wharf" save -o "$demo/all.tar" busybox hello greet
step skopeo inspect --raw "oci-archive:$demo/all.tar:docker.io/library/greet:latest"
step "$wharf" unpack busybox --to "$demo/rootfs"
step ls "$demo/rootfs" "$demo/rootfs/etc"
step "$wharf" system check
