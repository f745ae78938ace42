#!/usr/bin/env python3
"""A Python grpcio client generated from Protos/kiam.proto, calling a kiam server over mutual TLS.

Usage: kiam_grpc_client.py ADDRESS CA CERT KEY SERVER_NAME CALL...
  CALL is  health  |  role:IP  |  creds:IP:ROLE
Prints one JSON object per call: {"call":..., "ok": true, ...} or {"call":..., "ok": false,
"code": "UNKNOWN", "details": "..."}. Stubs are generated into a temporary directory with
grpc_tools (pip install grpcio grpcio-tools).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiam_stubs  # noqa: E402

grpc, kiam_pb2, kiam_pb2_grpc = kiam_stubs.load()
stub = kiam_stubs.stub(grpc, kiam_pb2_grpc, *sys.argv[1:6])

for call in sys.argv[6:]:
    parts = call.split(":", 2)
    result = {"call": call}
    try:
        if parts[0] == "health":
            reply = stub.GetHealth(kiam_pb2.GetHealthRequest(), timeout=5)
            result.update(ok=True, message=reply.message)
        elif parts[0] == "role":
            reply = stub.GetPodRole(kiam_pb2.GetPodRoleRequest(ip=parts[1]), timeout=5)
            result.update(ok=True, name=reply.name)
        elif parts[0] == "creds":
            reply = stub.GetPodCredentials(kiam_pb2.GetPodCredentialsRequest(ip=parts[1], role=parts[2]), timeout=5)
            result.update(ok=True, code=reply.code, type=reply.type, access_key_id=reply.access_key_id,
                          expiration=reply.expiration, last_updated=reply.last_updated)
        else:
            raise SystemExit(f"unknown call {call}")
    except grpc.RpcError as error:
        result.update(ok=False, code=error.code().name, details=error.details())
    print(json.dumps(result), flush=True)
