#!/usr/bin/env python3
"""A kiam server that answers exactly as Go kiam v3.4/v4 does, for testing our agent against it.

  go_kiam_server.py --port P --ca CA --cert CERT --key KEY --pods PODS_JSON

Mutual TLS (a client certificate from CA is required, as advancedtls' RequireAnyClientCert), no
response metadata (Go kiam sends none: no pod UID, no role ARN), and every error as grpc-go sends
a plain Go error: status UNKNOWN with the error text (pkg/server/server.go, errors.go):

  GetPodRole         no pod            -> "pod not found"
                     two live pods     -> "multiple running pods found"
                     no annotation     -> OK, Role{name: ""}
  GetPodCredentials  no pod            -> "no pod found"
                     two live pods     -> "multiple running pods found"
                     no annotation     -> "role can't be empty"
                     role != annotated -> "forbidden by policy"
                     pod "deny": true  -> "forbidden by policy" (namespace policy)
                     pod "sts_error"   -> that text, e.g. AWS's "AccessDenied: ...\\n\\tstatus code: 403, ..."
  GetHealth                            -> "ok"

PODS_JSON: {"10.0.0.1": [{"role": "app-web"}], "10.0.0.9": [{"role": "a"}, {"role": "b"}], ...}
Credentials carry Go kiam's formats (Code Success, Type AWS-HMAC, RFC 3339 Z times); the access
key names the pod's IP so a test can tell whose credentials an agent served. Every call is
appended to --log as one JSON line: method, request fields, the deadline the caller sent.
"""
import argparse
import datetime
import json
import os
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiam_stubs  # noqa: E402

grpc, kiam_pb2, kiam_pb2_grpc = kiam_stubs.load()
log_lock = threading.Lock()


def resolve(role):
    """kiam's ARN resolver for names: one leading slash is dropped (`/app` is `app`, `app/` is not)."""
    return role[1:] if role.startswith("/") else role


def go_time(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class GoKiamServer(kiam_pb2_grpc.KiamServiceServicer):
    def __init__(self, pods, log_path, duration):
        self.pods = pods
        self.log_path = log_path
        self.duration = duration

    def record(self, method, context, **fields):
        remaining = context.time_remaining()
        entry = dict(method=method, deadline_ms=None if remaining is None else int(remaining * 1000),
                     metadata={k: v for k, v in context.invocation_metadata() if not k.startswith("grpc-")}, **fields)
        if self.log_path:
            with log_lock, open(self.log_path, "a") as handle:
                handle.write(json.dumps(entry) + "\n")

    def live(self, ip):
        return [p for p in self.pods.get(ip, []) if p.get("phase", "Running") not in ("Succeeded", "Failed")]

    def GetHealth(self, request, context):
        self.record("GetHealth", context)
        return kiam_pb2.HealthStatus(message="ok")

    def GetPodRole(self, request, context):
        self.record("GetPodRole", context, ip=request.ip)
        pods = self.live(request.ip)
        if not pods:
            context.abort(grpc.StatusCode.UNKNOWN, "pod not found")
        if len(pods) > 1:
            context.abort(grpc.StatusCode.UNKNOWN, "multiple running pods found")
        return kiam_pb2.Role(name=pods[0].get("role", ""))

    def GetPodCredentials(self, request, context):
        self.record("GetPodCredentials", context, ip=request.ip, role=request.role)
        pods = self.live(request.ip)
        if not pods:
            context.abort(grpc.StatusCode.UNKNOWN, "no pod found")
        if len(pods) > 1:
            context.abort(grpc.StatusCode.UNKNOWN, "multiple running pods found")
        pod = pods[0]
        annotated = pod.get("role", "")
        if not annotated:
            context.abort(grpc.StatusCode.UNKNOWN, "role can't be empty")
        if resolve(request.role) != resolve(annotated) or pod.get("deny"):
            context.abort(grpc.StatusCode.UNKNOWN, "forbidden by policy")
        if pod.get("sts_error"):
            context.abort(grpc.StatusCode.UNKNOWN, pod["sts_error"])
        issued = int(pod.get("issued", time.time()))
        key = "ASIAGOKIAM" + request.ip.replace(".", "X").replace(":", "Y")
        return kiam_pb2.Credentials(
            code="Success", type="AWS-HMAC", access_key_id=key[:20].ljust(20, "0"), secret_access_key="s" * 40,
            token="go-kiam-token-for-" + request.ip, expiration=go_time(issued + self.duration),
            last_updated=go_time(issued))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--pods", required=True)
    parser.add_argument("--log")
    parser.add_argument("--session-duration", type=int, default=900, help="seconds (Go kiam's default 15m)")
    args = parser.parse_args()

    def read(path):
        with open(path, "rb") as handle:
            return handle.read()

    with open(args.pods) as handle:
        pods = json.load(handle)
    credentials = grpc.ssl_server_credentials(
        [(read(args.key), read(args.cert))], root_certificates=read(args.ca), require_client_auth=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    kiam_pb2_grpc.add_KiamServiceServicer_to_server(GoKiamServer(pods, args.log, args.session_duration), server)
    server.add_secure_port(f"{args.host}:{args.port}", credentials)
    server.start()
    print(f"go kiam server listening on {args.host}:{args.port}", flush=True)
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    server.stop(0)


if __name__ == "__main__":
    main()
