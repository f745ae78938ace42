#!/usr/bin/env bash
# Kubernetes Secrets kiam-server-tls and kiam-agent-tls (kiam's layout: ca.pem, server.pem,
# server-key.pem / ca.pem, agent.pem, agent-key.pem) for clusters without cert-manager.
# Makes the PKI with make-certs.sh (the CA is kept when it exists, so agents and servers made at
# different times still trust each other), adds the Service names to the server certificate, and
# writes DIR/kiam-secrets.yaml for `kubectl apply -f`.
# Usage: scripts/make-secrets.sh DIR [NAMESPACE]
set -euo pipefail
dir=${1:?usage: $0 DIR [NAMESPACE]}
namespace=${2:-kube-system}
here=$(cd "$(dirname "$0")" && pwd)
case $namespace in
  *[!a-z0-9-]* | "" | -* | *-) echo "invalid namespace name: $namespace" >&2; exit 1 ;;
esac
"$here/make-certs.sh" "$dir" \
  "DNS:kiam-server.$namespace,DNS:kiam-server.$namespace.svc,DNS:kiam-server.$namespace.svc.cluster.local" >/dev/null

b64() { base64 -w0 < "$dir/$1"; }
secret() { # name file...
  local name=$1; shift
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n  labels: {app: kiam}\ntype: Opaque\ndata:\n' "$name" "$namespace"
  for file in "$@"; do printf '  %s: %s\n' "$file" "$(b64 "$file")"; done
}
umask 077
{
  echo "# kiam TLS secrets made by scripts/make-secrets.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); keep this file private."
  secret kiam-server-tls ca.pem server.pem server-key.pem
  secret kiam-agent-tls ca.pem agent.pem agent-key.pem
} > "$dir/kiam-secrets.yaml"
echo "secrets in $dir/kiam-secrets.yaml: kubectl apply -f $dir/kiam-secrets.yaml"
