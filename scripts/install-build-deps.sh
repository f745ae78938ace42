#!/usr/bin/env bash
# What building kiam needs besides the Swift toolchain: RE2's headers and library (Debian's
# libre2-dev; kiam matches Go's regular expressions with RE2). Installs it with apt-get when root
# and it is missing; otherwise says in one line what to do. Quick when everything is present.
set -euo pipefail
if ! command -v "${SWIFT:-swift}" >/dev/null 2>&1; then
  echo "swift not found: install the Swift toolchain (README, Requirements) and put it on PATH" >&2
  exit 1
fi
if [ ! -f /usr/include/re2/re2.h ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: libre2-dev"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends libre2-dev >/dev/null
  else
    echo "libre2-dev missing: run this as root, or apt-get install libre2-dev" >&2
    exit 1
  fi
fi
