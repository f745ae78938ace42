#!/usr/bin/env bash
# The static release build of kiam (make release, make bench, the Dockerfile), with the code the
# agent and the server run after start-up laid out together at the front of .text:
#   - every Swift and C function of the package and its dependencies in a section of its own
#     (-function-sections, -ffunction-sections), so that the linker can move functions one by one;
#   - lld places the functions named in scripts/link-order/kiam.order first, in that order
#     (`make link-order` regenerates the file from a profile; a stale or missing name is skipped).
# The kernel maps code in 64 KiB windows around each page fault (fault-around): with the periodic
# and request paths spread over 31 MiB of .text, every window mostly held code nothing runs.
# The agent's steady-state functions now fill 1.2 MiB, and the idle agent's resident file-backed
# pages went from 12 to 8 MiB (BENCHMARKS.md, "Code layout").
# It builds in a scratch path of its own (.build/ordered): SwiftPM does not recompile objects a
# plain `swift build -c release` left in .build when only these flags changed, and a mix of both
# loses most of the layout. Extra arguments go to `swift build` (-Xlinker -Map=FILE;
# --show-bin-path prints the directory of the binary).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
order="$root/scripts/link-order/kiam.order"
[ -f "$order" ] || { echo "build-release: $order missing (make link-order)" >&2; exit 1; }
exec "${SWIFT:-swift}" build --package-path "$root" --scratch-path "$root/.build/ordered" \
  -c release --static-swift-stdlib --product kiam \
  -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections \
  -Xswiftc -use-ld=lld -Xlinker --symbol-ordering-file="$order" -Xlinker --no-warn-symbol-ordering \
  "$@"
