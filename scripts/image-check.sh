#!/usr/bin/env bash
# Checks that a kiam binary runs without any Swift runtime: builds a root filesystem holding only
# the binary and the system libraries ldd lists for it (no libswift*, libFoundation, libdispatch),
# then, chrooted there with its own /proc, runs `kiam version`, a server on static manifests,
# `kiam health` against it over mutual TLS, and an agent answering /ping.
# This is what the image's slim base gives the binary, minus everything else.
# Usage: scripts/image-check.sh BINARY   (root, or unprivileged user namespaces)
set -euo pipefail
binary=$(readlink -f "${1:?usage: $0 BINARY}")
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$binary" ] || { echo "image-check: $binary is not an executable" >&2; exit 1; }

libs=$(ldd "$binary" | awk '/=>/ {print $3} /^[ \t]*\// {print $1}' | sort -u)
if echo "$libs" | grep -Ei 'swift|Foundation|dispatch|BlocksRuntime'; then
  echo "image-check: $binary needs the Swift runtime (build with --static-swift-stdlib)" >&2
  exit 1
fi

root=$(mktemp -d /tmp/kiam-image-XXXXXX)
pids=()
cleanup() {
  # unshare --fork ignores SIGTERM while it waits for its child; SIGKILL ends it, and
  # --kill-child then ends the kiam process inside.
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
mkdir -p "$root/etc/kiam/tls" "$root/pods" "$root/proc" "$root/tmp" "$root/dev"
install -m 0755 "$binary" "$root/kiam"
for lib in $libs; do install -D -m 0755 "$lib" "$root$lib"; done
echo "image-check: root filesystem with /kiam and $(echo "$libs" | wc -w) system libraries: $(echo $libs)"
"$here/make-certs.sh" "$root/etc/kiam/tls" >/dev/null

# A clean environment, as in a container (nothing of this shell's AWS_* or PATH leaks in).
unshare=$(command -v unshare) chroot=$(command -v chroot)
if [ "$(id -u)" = 0 ]; then jail=(env -i PATH=/ "$unshare" --mount --pid --fork --kill-child --mount-proc="$root/proc" "$chroot" "$root")
else jail=(env -i PATH=/ "$unshare" --user --map-root-user --mount --pid --fork --kill-child --mount-proc="$root/proc" "$chroot" "$root"); fi

version=$("${jail[@]}" /kiam version)
echo "image-check: kiam version: $version"

port=$((20000 + RANDOM % 20000))
tls=(--cert=/etc/kiam/tls/server.pem --key=/etc/kiam/tls/server-key.pem --ca=/etc/kiam/tls/ca.pem)
"${jail[@]}" /kiam server --pod-manifests=/pods --bind=127.0.0.1:$port "${tls[@]}" \
  --role-base-arn=arn:aws:iam::123456789012:role/ --sts-endpoint=http://127.0.0.1:9 \
  >"$root/tmp/server.log" 2>&1 &
pids+=($!)
if ! "${jail[@]}" /kiam health "${tls[@]}" --server-address=127.0.0.1:$port --gateway-timeout-creation=20s --timeout=20s; then
  echo "image-check: kiam health failed; server log:" >&2
  cat "$root/tmp/server.log" >&2
  exit 1
fi
agent_port=$((port + 1))
"${jail[@]}" /kiam agent --port=$agent_port --host=127.0.0.1 --server-address=localhost:$port \
  --cert=/etc/kiam/tls/agent.pem --key=/etc/kiam/tls/agent-key.pem --ca=/etc/kiam/tls/ca.pem \
  --metadata-endpoint=http://127.0.0.1:9 >"$root/tmp/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  answer=$(curl -s --max-time 1 "http://127.0.0.1:$agent_port/ping" || true)
  [ "$answer" = pong ] && break
  sleep 0.1
done
if [ "${answer:-}" != pong ]; then
  echo "image-check: the agent did not answer /ping" >&2
  cat "$root/tmp/agent.log" >&2
  exit 1
fi
echo "image-check: agent answered /ping with pong"
echo "image-check: ok, $binary runs without a Swift runtime"
