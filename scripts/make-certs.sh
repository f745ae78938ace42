#!/usr/bin/env bash
# Development PKI for kiam with openssl, laid out like kiam's docs/TLS.md secrets:
#   ca.pem ca-key.pem                      the CA
#   server.pem server-key.pem              SANs kiam-server, localhost, 127.0.0.1, ::1; EKU serverAuth+clientAuth
#                                          (the server's own health probe uses it as a client)
#   agent.pem agent-key.pem                EKU clientAuth
# Usage: scripts/make-certs.sh DIR [extra server SANs, e.g. DNS:kiam-server.kube-system.svc]
set -euo pipefail
dir=${1:?usage: $0 DIR [EXTRA_SANS]}
extra=${2:-}
days=${KIAM_CERT_DAYS:-365}
mkdir -p "$dir"
cd "$dir"
command -v openssl >/dev/null || { echo "openssl is required (apt-get install -y openssl)" >&2; exit 1; }

if [ ! -s ca.pem ] || [ ! -s ca-key.pem ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$((days * 10))" \
    -subj "/CN=kiam-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout ca-key.pem -out ca.pem 2>/dev/null
fi

leaf() { # name cn san eku
  local name=$1 cn=$2 san=$3 eku=$4
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
    -keyout "$name-key.pem" -out "$name.csr" 2>/dev/null
  {
    [ -n "$san" ] && echo "subjectAltName=$san"
    echo "extendedKeyUsage=$eku"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "basicConstraints=critical,CA:FALSE"
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$days" \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

sans="DNS:kiam-server,DNS:localhost,IP:127.0.0.1,IP:::1"
[ -n "$extra" ] && sans="$sans,$extra"
leaf server "kiam-server" "$sans" "serverAuth,clientAuth"
leaf agent "Kiam Agent" "" "clientAuth"
rm -f ca.srl
echo "certificates in $dir: ca.pem server.pem server-key.pem agent.pem agent-key.pem"
