#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (CI starts from a clean clone).
# Idempotent and quick when everything is present. Needs root for apt-get; without root it only
# reports what is missing (tests that need those tools then skip with a printed reason).
set -euo pipefail

"$(dirname "$0")/install-build-deps.sh"
apt_packages=()
need() { command -v "$1" >/dev/null 2>&1 || apt_packages+=("$2"); }
need openssl openssl
need iptables iptables
need ip iproute2
need curl curl
need nginx nginx-light
need wrk wrk
need python3 python3
need jq jq

# Real AWS SDKs from Debian, driven by the tests in pod network namespaces (scripts/test/sdk/):
# the Go SDKs v1 and v2 are built in GOPATH mode from these packages, nothing is downloaded.
need go golang-go
need ruby ruby-aws-sdk-core
ruby -e 'require "aws-sdk-core"' >/dev/null 2>&1 || apt_packages+=(ruby-aws-sdk-core)
[ -d /usr/share/gocode/src/github.com/aws/aws-sdk-go ] || apt_packages+=(golang-github-aws-aws-sdk-go-dev)
[ -d /usr/share/gocode/src/github.com/aws/aws-sdk-go-v2 ] || apt_packages+=(golang-github-aws-aws-sdk-go-v2-dev)

if [ ${#apt_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${apt_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${apt_packages[@]}" | sort -u) >/dev/null
  else
    echo "warning: not root, cannot install ${apt_packages[*]}; tests needing them will skip" >&2
  fi
fi

# Python clients and the STS emulator, in a virtual environment inside the build folder (Debian's
# own pip refuses to install into the system, PEP 668, and the system's site-packages stay as
# they are). The Makefile puts its bin/ first on PATH for `make test`, `make demo` and the rest.
venv="${KIAM_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.build/venv}"
python_modules=(moto boto3 botocore awscli grpc grpc_tools flask)
if [ ! -x "$venv/bin/python3" ]; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      echo "installing: python3-venv"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    else
      echo "python3-venv missing: run this as root, or apt-get install python3-venv" >&2
      exit 1
    fi
  fi
  echo "creating the Python environment for the tests: $venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
fi
missing=()
for m in "${python_modules[@]}"; do
  "$venv/bin/python3" -c "import $m" >/dev/null 2>&1 || missing+=("$m")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing python packages into $venv for: ${missing[*]}"
  "$venv/bin/python3" -m pip install -q --disable-pip-version-check 'moto[server]>=5.0' boto3 botocore awscli grpcio grpcio-tools flask
fi
[ -x "$venv/bin/moto_server" ] || "$venv/bin/python3" -m pip install -q --disable-pip-version-check 'moto[server]>=5.0'
echo "test dependencies ready (python: $venv/bin)"
