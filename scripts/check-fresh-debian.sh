#!/usr/bin/env bash
# Proves the README's two commands on a stock Debian 12: builds a minimal Debian root from
# Debian's own archive (mmdebstrap), adds only the Swift toolchain (its files, and the Debian
# packages swift.org lists for it), clones this repository into it and runs `make demo` and
# `make test` there as root, the way a newcomer would. Prints the time of each. Not part of CI
# (it takes about half an hour on 2 cores).
#
#   scripts/check-fresh-debian.sh [DIR]      (root; DIR defaults to /var/tmp/kiam-fresh-debian)
#
# KIAM_CHECK_REUSE=1 keeps the clone (and its build) of an earlier attempt.
#
# SWIFT_TOOLCHAIN (default: the directory above `swift` on PATH's usr/bin) is copied to /opt/swift
# in the root. Swift packages are fetched as the host fetches them: when the host's git rewrites
# github.com to a local mirror (url.<mirror>.insteadOf), the mirror is bind-mounted and the same
# rewrite set inside.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-/var/tmp/kiam-fresh-debian}
[ "$(id -u)" = 0 ] || { echo "check-fresh-debian: run as root" >&2; exit 1; }
swift_bin=$(command -v swift || true)
toolchain=${SWIFT_TOOLCHAIN:-${swift_bin:+$(cd "$(dirname "$swift_bin")/../.." && pwd)}}
[ -n "$toolchain" ] && [ -x "$toolchain/usr/bin/swift" ] || { echo "check-fresh-debian: no Swift toolchain (set SWIFT_TOOLCHAIN)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null; }

mounts=()
cleanup() {
  set +e
  # Whatever still runs inside the root (a network namespace's processes can outlive the names
  # the demo gave them), then the mounts.
  for proc in /proc/[0-9]*; do
    [ "$(readlink "$proc/root" 2>/dev/null)" = "$target" ] && kill -9 "${proc#/proc/}" 2>/dev/null
  done
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null; done
}
trap cleanup EXIT
bind() { mkdir -p "$target$2"; mount --bind "$1" "$target$2"; mounts+=("$target$2"); }

started=$SECONDS
if [ ! -x "$target/usr/bin/apt-get" ]; then
  rm -rf "$target"
  # What swift.org lists for the Debian 12 toolchain, plus make and git to build a package.
  mmdebstrap --variant=minbase --include=ca-certificates,make,git,binutils,gnupg2,libc6-dev,libcurl4-openssl-dev,libedit2,libgcc-12-dev,libpython3-dev,libsqlite3-0,libstdc++-12-dev,libxml2-dev,libz3-dev,pkg-config,tzdata,unzip,zlib1g-dev \
    bookworm "$target" http://deb.debian.org/debian
fi
echo "debian root: $((SECONDS - started)) s"
mkdir -p "$target/opt"
[ -x "$target/opt/swift/usr/bin/swift" ] || cp -a "$toolchain" "$target/opt/swift"
cp /etc/resolv.conf "$target/etc/resolv.conf"
# What the host's network needs and a newcomer's would not: CA certificates the host added (an
# egress proxy's) and the pip/requests settings that name them.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$target/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$target/usr/local/share/ca-certificates/"
  chroot "$target" update-ca-certificates >/dev/null 2>&1
fi
passed_env=()
for name in PIP_CERT REQUESTS_CA_BUNDLE SSL_CERT_FILE PIP_INDEX_URL http_proxy https_proxy no_proxy; do
  [ -n "${!name:-}" ] && passed_env+=("$name=${!name}")
done

# `ip netns exec` remounts / (make-rslave): the root must be a mount point of its own.
mount --bind "$target" "$target"; mounts+=("$target")
bind /proc /proc
bind /sys /sys
bind /dev /dev
bind /dev/pts /dev/pts
mkdir -p "$target/run/netns"
mount -t tmpfs tmpfs "$target/run"; mounts+=("$target/run")
mirror=$(git config --get-regexp '^url\..*\.insteadof$' 2>/dev/null | awk '$2 == "https://github.com/" {print $1}' | sed 's/^url\.//; s/\.insteadof$//' | head -1)
if [ -n "$mirror" ] && [ -d "$mirror" ]; then
  bind "$mirror" "$mirror"
  chroot "$target" git config --system "url.$mirror.insteadOf" https://github.com/
fi

if [ -n "${KIAM_CHECK_REUSE:-}" ] && [ -d "$target/root/kiam/.git" ]; then
  # A second attempt after fixing the check itself: the same clone, moved to this HEAD, keeping
  # its build folder.
  git -C "$target/root/kiam" fetch -q "$repo" HEAD && git -C "$target/root/kiam" reset -q --hard FETCH_HEAD
else
  rm -rf "$target/root/kiam"
  git clone -q "$repo" "$target/root/kiam"
fi
run() {
  chroot "$target" /usr/bin/env -i HOME=/root TERM=dumb PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "${passed_env[@]}" bash -c "cd /root/kiam && $1"
}
for command in "make demo" "make test"; do
  step=$SECONDS
  if run "$command" > "$target/root/$(echo "$command" | tr ' ' '-').log" 2>&1; then
    echo "$command: passed in $((SECONDS - step)) s (log: $target/root/$(echo "$command" | tr ' ' '-').log)"
  else
    echo "$command: FAILED after $((SECONDS - step)) s; last lines:"
    tail -n 20 "$target/root/$(echo "$command" | tr ' ' '-').log"
    exit 1
  fi
done
echo "both commands passed on a stock Debian 12 with only the Swift toolchain added ($((SECONDS - started)) s in all)"
