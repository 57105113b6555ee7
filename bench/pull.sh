#!/usr/bin/env bash
# Benchmark: `wharf pull` of a ~100 MB multi-layer image from a local docker-registry against
# `skopeo copy` of the same image into an OCI layout, side by side in one hyperfine run; and
# the cost of the signature check: the same pull under a sigstoreSigned policy (a cosign
# signature attached by tests/fixtures/cosign-sign.py) and under a signedBy policy (a GPG
# signature skopeo made, in file:// lookaside storage). Not a test: prints medians and ratios.
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
digest=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ref")
# sigstore: a P-256 key and a signature attached as cosign attaches it.
/usr/bin/python3 "$repo/tests/fixtures/cosign-sign.py" "$work/cosign.key" "127.0.0.1:$port" \
    bench/image "$ref" "$digest" "$digest" >/dev/null
# GPG: a key in a private keyring, and skopeo signing a copy of the image with it.
export GNUPGHOME="$work/gnupg"; mkdir -m 700 "$GNUPGHOME"
gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'bench <bench@wharf.test>' rsa2048 sign never 2>/dev/null
fpr=$(gpg --with-colons --list-keys | awk -F: '/^fpr:/ { print $10; exit }')
gpg --batch --export "$fpr" > "$work/gpg.pub"
mkdir -p "$work/registries.d"
cat > "$work/registries.d/bench.yaml" <<YML
docker:
  127.0.0.1:$port:
    lookaside: file://$work/sigs
    use-sigstore-attachments: true
YML
gref="127.0.0.1:$port/bench/gpg:1"
skopeo --insecure-policy --registries.d "$work/registries.d" copy -q --src-tls-verify=false \
    --dest-tls-verify=false --sign-by "$fpr" "docker://$ref" "docker://$gref"
cat > "$work/sigstore.json" <<JSON
{"default":[{"type":"reject"}],"transports":{"docker":{"127.0.0.1:$port/bench":[
  {"type":"sigstoreSigned","keyPath":"$work/cosign.key.pub"}]}}}
JSON
cat > "$work/gpg.json" <<JSON
{"default":[{"type":"reject"}],"transports":{"docker":{"127.0.0.1:$port/bench":[
  {"type":"signedBy","keyType":"GPGKeys","keyPath":"$work/gpg.pub"}]}}}
JSON
trusted="--registries.d $work/registries.d --signature-policy"

hyperfine --style basic --warmup 1 --runs "${RUNS:-5}" --export-json "$work/result.json" \
    --prepare "rm -rf $work/w $work/o" \
    -n "wharf pull" "$wharf --root $work/w pull -q $ref" \
    -n "skopeo copy docker:// -> oci:" "skopeo --insecure-policy copy -q --src-tls-verify=false docker://$ref oci:$work/o:image" \
    -n "wharf pull, sigstoreSigned" "$wharf --root $work/w pull -q $trusted $work/sigstore.json $ref" \
    -n "wharf pull, signedBy (GPG)" "$wharf --root $work/w pull -q $trusted $work/gpg.json $gref" >/dev/null
python3 - "$work/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r:
    print(f"{x['command']:<32} median {x['median']*1000:8.0f} ms")
print(f"{'ratio wharf / skopeo':<32} {r[0]['median']/r[1]['median']:8.2f}x")
print(f"{'ratio sigstoreSigned / none':<32} {r[2]['median']/r[0]['median']:8.3f}x")
print(f"{'ratio signedBy / none':<32} {r[3]['median']/r[0]['median']:8.3f}x")
PY
