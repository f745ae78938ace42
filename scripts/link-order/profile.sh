#!/usr/bin/env bash
# Regenerates scripts/link-order/kiam.order: which functions the agent and the server run, in
# which order, recorded with callgrind while the benchmark harness drives them through start-up,
# a minute idle, pods starting (boto3 through the real IMDS path), warm credentials under wrk,
# connection bursts, a minute idle again and shutdown (`kiam-bench --quick warm podstart`).
# The agent and the server are profiled in separate passes (about 9 minutes in all). Every 5 s
# the profiled process dumps its counters, so that order.py can tell the steady state (35 s and
# more after start) from start-up. Run after changes that move the agent's or the server's hot
# paths, then `make release` and compare `make bench` memory figures. Names that no longer exist
# are skipped by the linker, so a stale order costs memory, never correctness.
# Usage: scripts/link-order/profile.sh   (root: the harness uses network namespaces and iptables;
#        LINK_ORDER_KEEP=1 keeps the profiles, the link map and the harness reports in /tmp)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "link-order: needs root (the benchmark harness runs network namespaces)" >&2; exit 1; }
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends valgrind >/dev/null; }
"$root/scripts/install-test-deps.sh"

work=$(mktemp -d /tmp/kiam-link-order-XXXXXX)
dumper=
cleanup() {
  [ -n "$dumper" ] && kill "$dumper" 2>/dev/null || true
  if [ -n "${LINK_ORDER_KEEP:-}" ]; then echo "link-order: profiles kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The current release build (with its link map: input sections and their sizes), and the harness.
"$root/scripts/build-release.sh" -Xlinker -Map="$work/kiam.map"
bin="$("$root/scripts/build-release.sh" --show-bin-path)/kiam"
swift build --package-path "$root" -c release --product kiam-bench --scratch-path "$root/.build/bench"
bench="$(swift build --package-path "$root" -c release --scratch-path "$root/.build/bench" --show-bin-path)/kiam-bench"
# Valgrind 3.19 cannot read the DWARF 5 the toolchain emits; the symbol table is all it needs.
llvm-objcopy --strip-debug "$bin" "$work/kiam"

# One pass per role: the other process runs at full speed (under callgrind both together miss the
# agent's deadlines on calls to the server).
for role in agent server; do
  cat > "$work/kiam-profiled" <<EOF
#!/bin/sh
if [ "\$1" = $role ]; then
  date +%s > "$work/start.\$\$"
  exec valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/callgrind.$role.%p" \\
    --log-file="$work/valgrind.$role.%p.log" "$work/kiam" "\$@"
fi
exec "$work/kiam" "\$@"
EOF
  chmod +x "$work/kiam-profiled"
  ( while sleep 5; do callgrind_control -d "t$(date +%s)" >/dev/null 2>&1 || true; done ) &
  dumper=$!
  KIAM_BINARY="$work/kiam-profiled" "$bench" --quick --out "$work/bench-$role" --connections 20 \
    --placement shared warm podstart
  kill "$dumper" 2>/dev/null || true
  dumper=
  sleep 1
done

python3 "$root/scripts/link-order/order.py" --profiles "$work" --map "$work/kiam.map" --binary "$bin" \
  --out "$root/scripts/link-order/kiam.order"
echo "link-order: now 'make release' links with the new order"
