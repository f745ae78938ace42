#!/usr/bin/env python3
"""A Python grpcio client generated from Protos/kiam.proto, calling a kiam server over mutual TLS.

Usage: kiam_grpc_client.py [--go-agent] ADDRESS CA CERT KEY SERVER_NAME CALL...
  CALL is  health  |  role:IP  |  creds:IP:ROLE
Prints one JSON object per call: {"call":..., "ok": true, ...} or {"call":..., "ok": false,
"code": "UNKNOWN", "details": "..."}, with the call's "elapsed_ms". Stubs are generated into a temporary directory with
grpc_tools (pip install grpcio grpcio-tools).

--go-agent makes the calls as Go kiam v3.4/v4's agent does (pkg/server/gateway_builder.go,
pkg/aws/metadata/handler_*.go): a dns:/// target balanced round robin with service configs from
DNS off, keepalive 10 s / 2 s without calls, no metadata of its own, and each call inside the
HTTP handler's 5 s context: retried with cenkalti/backoff v2 (5 ms, x1.5, +-50 % jitter) until
the next sleep would pass the deadline, each attempt's deadline the time left; `forbidden by
policy` on GetPodCredentials is not retried. The last error is reported, with "attempts",
"elapsed_ms" and every distinct answer seen ("answers": the last attempt may run out of time).
"""
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiam_stubs  # noqa: E402

args = sys.argv[1:]
go_agent = bool(args) and args[0] == "--go-agent"
if go_agent:
    args = args[1:]
grpc, kiam_pb2, kiam_pb2_grpc = kiam_stubs.load()
if go_agent:
    stub = kiam_stubs.stub(grpc, kiam_pb2_grpc, *args[0:5], target_prefix="dns:///", options=[
        ("grpc.primary_user_agent", "grpc-go/1.36.0"),
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.service_config_disable_resolution", 1),
        ("grpc.keepalive_time_ms", 10000),
        ("grpc.keepalive_timeout_ms", 2000),
        ("grpc.keepalive_permit_without_calls", 0),
    ])
else:
    stub = kiam_stubs.stub(grpc, kiam_pb2_grpc, *args[0:5])


def rpc(parts, timeout):
    if parts[0] == "health":
        return dict(message=stub.GetHealth(kiam_pb2.GetHealthRequest(), timeout=timeout).message)
    if parts[0] == "role":
        return dict(name=stub.GetPodRole(kiam_pb2.GetPodRoleRequest(ip=parts[1]), timeout=timeout).name)
    if parts[0] == "creds":
        reply = stub.GetPodCredentials(kiam_pb2.GetPodCredentialsRequest(ip=parts[1], role=parts[2]), timeout=timeout)
        return dict(code=reply.code, type=reply.type, access_key_id=reply.access_key_id, expiration=reply.expiration,
                    last_updated=reply.last_updated)
    raise SystemExit(f"unknown call {':'.join(parts)}")


def as_go_agent(parts):
    """One HTTP handler's worth of attempts, as Go kiam's agent makes them."""
    started = time.monotonic()
    deadline = started + 5.0
    interval = 0.005
    attempts = 0
    seen = []
    while True:
        attempts += 1
        try:
            result = rpc(parts, max(deadline - time.monotonic(), 0.001))
            return dict(ok=True, attempts=attempts, elapsed_ms=int((time.monotonic() - started) * 1000), **result)
        except grpc.RpcError as error:
            last = error
            answer = f"{error.code().name}: {error.details()}"
            if answer not in seen:
                seen.append(answer)
            if parts[0] == "creds" and error.details() == "forbidden by policy":
                break
        sleep = interval * (1 + random.uniform(-0.5, 0.5))
        interval = min(interval * 1.5, 60.0)
        if time.monotonic() + sleep > deadline:
            break
        time.sleep(sleep)
    return dict(ok=False, code=last.code().name, details=last.details(), attempts=attempts, answers=seen,
                elapsed_ms=int((time.monotonic() - started) * 1000))


for call in args[5:]:
    parts = call.split(":", 2)
    result = {"call": call}
    if go_agent:
        result.update(as_go_agent(parts))
    else:
        started = time.monotonic()
        try:
            result.update(ok=True, **rpc(parts, 5))
        except grpc.RpcError as error:
            result.update(ok=False, code=error.code().name, details=error.details())
        result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
    print(json.dumps(result), flush=True)
