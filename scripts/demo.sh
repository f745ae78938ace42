#!/usr/bin/env bash
# make demo: kiam end to end on this machine.
#
# Builds kiam, makes development certificates, starts STS (moto), a kiam server reading pods from
# manifest files (--pod-manifests), a kiam agent with its iptables rule, and two "pods" (network
# namespaces). Each pod asks the EC2 metadata address 169.254.169.254 with an unmodified boto3 and
# gets its own role; a third pod in a namespace that permits nothing is refused. Everything is
# cleaned up on exit, failure or Ctrl-C. Without root it runs the same flow on loopback, pointing
# boto3 at the agent with AWS_EC2_METADATA_SERVICE_ENDPOINT (one pod at a time).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The Python environment scripts/install-test-deps.sh makes (moto, boto3), as `make demo` sets it.
export PATH="$root/.build/venv/bin:$PATH"
work=$(mktemp -d /tmp/kiam-demo.XXXXXX)
node=kiamdemo-node
pids=()
namespaces=()

cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  # Processes started inside a network namespace (ip netns exec) are not our direct children.
  for ns in "${namespaces[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  for ns in "${namespaces[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.5; done
    ip netns del "$ns" 2>/dev/null
  done
  if [ -n "${KIAM_DEMO_KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "Preparing (build, test tools, certificates)"
"$root/scripts/install-test-deps.sh" >/dev/null
(cd "$root" && swift build --product kiam 2>&1 | tail -1)
kiam="$root/.build/debug/kiam"
"$root/scripts/make-certs.sh" "$work/certs" >/dev/null
certs_server="--cert=$work/certs/server.pem --key=$work/certs/server-key.pem --ca=$work/certs/ca.pem"
certs_agent="--cert=$work/certs/agent.pem --key=$work/certs/agent-key.pem --ca=$work/certs/ca.pem"

manifest() { # name namespace role ip
  cat <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: $2
  uid: demo-$1
  annotations: {iam.amazonaws.com/role: "$3"}
status: {phase: Running, podIP: $4}
YAML
}

namespaces_yaml() {
  cat <<'YAML'
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  annotations: {iam.amazonaws.com/permitted: "arn:aws:iam::123456789012:role/shop-.*"}
---
apiVersion: v1
kind: Namespace
metadata: {name: sandbox}
YAML
}

boto3_probe() { # endpoint-override-or-empty
  cat <<'PY'
import boto3, json, sys
session = boto3.Session()
c = session.get_credentials()
if c is None:
    print(json.dumps({"error": "no credentials (the SDK moved on)"})); sys.exit()
f = c.get_frozen_credentials()
sts = session.client("sts", endpoint_url=sys.argv[1], region_name="us-east-1")
print(json.dumps({"key": f.access_key, "arn": sts.get_caller_identity()["Arn"]}))
PY
}

row() { printf '  %-10s %-9s %-13s %-22s %s\n' "$@"; }
failures=()
summary_row() { # pod namespace role json expected-arn-or-empty
  local key arn error
  key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("key",""))' "$4" 2>/dev/null || true)
  arn=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("arn",""))' "$4" 2>/dev/null || true)
  error=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("error",""))' "$4" 2>/dev/null || true)
  if [ -n "$key" ]; then row "$1" "$2" "$3" "${key:0:20}" "$arn"; else row "$1" "$2" "$3" "-" "${error:-$4}"; fi
  if [ -n "$5" ] && [ "$arn" != "$5" ]; then
    failures+=("$1 wanted $5 and got ${arn:-no credentials (${error:-$4})}")
  elif [ -z "$5" ] && [ -n "$key" ]; then
    failures+=("$1 should have got nothing and got $arn")
  fi
}
expected_arn() { # namespace role: the STS identity the pod must end up with, or empty
  if [ "$1" = shop ]; then echo "arn:aws:sts::123456789012:assumed-role/$2/kiam-kiam"; fi
}

# Waits (at most $1 seconds) until the command after it succeeds; false if it never does.
wait_for() {
  local limit=$1; shift
  for _ in $(seq 1 $((limit * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
# The agent is ready, as a readiness probe sees it: rule in place (with --iptables) and a
# server answering (`/health?deep`). Pods are only sent once it is.
agent_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/health?deep=1")" = 200 ]; }
not_ready() {
  echo "  the $1 did not become ready in time; its log ($work):" >&2
  tail -n 20 "$work/$2" >&2
  exit 1
}

if [ -z "${KIAM_DEMO_LOOPBACK:-}" ] && [ "$(id -u)" = 0 ] && ip netns add kiamdemo-probe 2>/dev/null; then
  ip netns del kiamdemo-probe
  # What a killed earlier run left (namespaces and the processes in them).
  for ns in $(ip netns list 2>/dev/null | awk '/^kiamdemo-/ {print $1}'); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  say "Root: a node network namespace with the agent's iptables rule, and pods in their own namespaces"
  ip netns add $node; namespaces+=($node)
  ip netns exec $node ip link set lo up
  ip netns exec $node ip addr add 10.201.0.1/32 dev lo
  # The node's own metadata service, as on EC2 (moto's, with the node role default-role): the
  # agent's /health reads the instance id from it, and the rule keeps pods away from it.
  ip netns exec $node ip addr add 169.254.169.254/32 dev lo
  declare -A pod_ip=([frontend]=10.201.1.2 [reports]=10.201.2.2 [intruder]=10.201.3.2)
  declare -A pod_ns=([frontend]=shop [reports]=shop [intruder]=sandbox)
  declare -A pod_role=([frontend]=shop-frontend [reports]=shop-reports [intruder]=shop-reports)
  i=0
  for pod in frontend reports intruder; do
    i=$((i + 1)); ns=kiamdemo-$pod; namespaces+=($ns)
    ip netns add "$ns"; ip netns exec "$ns" ip link set lo up
    ip netns exec $node ip link add "kdemo$i" type veth peer name eth0 netns "$ns"
    ip netns exec $node ip addr add "10.201.$i.1/32" dev "kdemo$i"
    ip netns exec $node ip link set "kdemo$i" up
    ip netns exec $node ip route add "${pod_ip[$pod]}/32" dev "kdemo$i"
    ip netns exec "$ns" ip addr add "${pod_ip[$pod]}/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip route add default via "10.201.$i.1"
  done
  mkdir -p "$work/manifests"
  { namespaces_yaml; for pod in frontend reports intruder; do manifest $pod "${pod_ns[$pod]}" "${pod_role[$pod]}" "${pod_ip[$pod]}"; done; } > "$work/manifests/cluster.yaml"
  in_node() { ip netns exec $node env -i PATH="$PATH" HOME=/nonexistent "$@"; }
  in_node python3 "$root/scripts/test/sts_lab.py" --host 10.201.0.1 --port 5000 > "$work/sts.log" 2>&1 & pids+=($!)
  in_node python3 "$root/scripts/test/sts_lab.py" --host 169.254.169.254 --port 80 > "$work/node-metadata.log" 2>&1 & pids+=($!)
  wait_for 60 in_node curl -s -o /dev/null --max-time 1 http://10.201.0.1:5000/ || not_ready "STS (moto)" sts.log
  wait_for 60 in_node curl -s -o /dev/null --max-time 1 http://169.254.169.254/latest/meta-data/instance-id ||
    not_ready "node metadata service (moto)" node-metadata.log
  # shellcheck disable=SC2086
  in_node AWS_ACCESS_KEY_ID=AKIADEMO AWS_SECRET_ACCESS_KEY=demo "$kiam" server --bind=127.0.0.1:9610 \
    --role-base-arn=arn:aws:iam::123456789012:role/ --pod-manifests="$work/manifests" \
    --sts-endpoint=http://10.201.0.1:5000 $certs_server > "$work/server.log" 2>&1 & pids+=($!)
  # shellcheck disable=SC2086
  in_node "$kiam" agent --iptables --host-interface=kdemo+ --host=10.201.0.1 --port=8181 \
    --server-address=localhost:9610 $certs_agent > "$work/agent.log" 2>&1 & pids+=($!)
  started=$SECONDS
  wait_for 60 in_node bash -c "$(declare -f agent_ready); agent_ready http://10.201.0.1:8181" || not_ready agent agent.log
  echo "  agent ready after $((SECONDS - started)) s (rule in place, a server answers)"
  echo "  agent rule: $(ip netns exec $node iptables -t nat -S PREROUTING 2>/dev/null | grep DNAT)"
  say "Each pod asks 169.254.169.254 with boto3 (no endpoint override), then STS who it is"
  row POD NAMESPACE ANNOTATION "ACCESS KEY" "CALLER IDENTITY (STS)"
  for pod in frontend reports intruder; do
    out=$(ip netns exec "kiamdemo-$pod" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE=/dev/null \
      AWS_CONFIG_FILE=/dev/null AWS_METADATA_SERVICE_NUM_ATTEMPTS=1 python3 -c "$(boto3_probe)" http://10.201.0.1:5000 2>&1 | tail -1)
    summary_row "$pod" "${pod_ns[$pod]}" "${pod_role[$pod]}" "$out" "$(expected_arn "${pod_ns[$pod]}" "${pod_role[$pod]}")"
  done
  echo
  answer=$(ip netns exec kiamdemo-intruder curl -s --max-time 3 -w '\n%{http_code}' \
    http://169.254.169.254/latest/meta-data/iam/security-credentials/shop-reports || true)
  echo "  intruder's raw answer: HTTP ${answer##*$'\n'}: $(printf '%s' "${answer%$'\n'*}" | tr '\n' ' ')"
else
  say "Not root (or no network namespaces): the same flow on loopback, one pod at a time"
  mkdir -p "$work/manifests"
  python3 "$root/scripts/test/sts_lab.py" --port 15000 > "$work/sts.log" 2>&1 & pids+=($!)
  wait_for 60 curl -s -o /dev/null --max-time 1 http://127.0.0.1:15000/ || not_ready "STS (moto)" sts.log
  # shellcheck disable=SC2086
  AWS_ACCESS_KEY_ID=AKIADEMO AWS_SECRET_ACCESS_KEY=demo "$kiam" server --bind=127.0.0.1:19610 \
    --role-base-arn=arn:aws:iam::123456789012:role/ --pod-manifests="$work/manifests" \
    --sts-endpoint=http://127.0.0.1:15000 $certs_server > "$work/server.log" 2>&1 & pids+=($!)
  # shellcheck disable=SC2086
  HOST_IP=127.0.0.1 "$kiam" agent --port=18181 --server-address=localhost:19610 --metadata-endpoint=http://127.0.0.1:15000 \
    $certs_agent > "$work/agent.log" 2>&1 & pids+=($!)
  wait_for 60 agent_ready http://127.0.0.1:18181 || not_ready agent agent.log
  row POD NAMESPACE ANNOTATION "ACCESS KEY" "CALLER IDENTITY (STS)"
  for spec in frontend:shop:shop-frontend reports:shop:shop-reports intruder:sandbox:shop-reports; do
    IFS=: read -r pod ns role <<< "$spec"
    # On loopback every caller is 127.0.0.1: the manifest says which pod that is now.
    { namespaces_yaml; manifest "$pod" "$ns" "$role" 127.0.0.1; } > "$work/manifests/cluster.yaml"
    sleep 2.2
    out=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null \
      AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:18181 python3 -c "$(boto3_probe)" http://127.0.0.1:15000 2>&1 | tail -1)
    summary_row "$pod" "$ns" "$role" "$out" "$(expected_arn "$ns" "$role")"
  done
fi
if [ ${#failures[@]} -gt 0 ]; then
  say "FAILED: $(printf '%s; ' "${failures[@]}")logs: $work"
  KIAM_DEMO_KEEP=1
  exit 1
fi
say "Done. Each pod got its own role; the pod in a namespace that permits nothing got none."
