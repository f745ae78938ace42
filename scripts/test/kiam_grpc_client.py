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
import subprocess
import sys
import tempfile

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = tempfile.mkdtemp(prefix="kiam-py-")
subprocess.run(
    [sys.executable, "-m", "grpc_tools.protoc", f"-I{root}/Protos", f"--python_out={out}",
     f"--grpc_python_out={out}", f"{root}/Protos/kiam.proto"],
    check=True)
sys.path.insert(0, out)

import grpc  # noqa: E402
import kiam_pb2  # noqa: E402
import kiam_pb2_grpc  # noqa: E402

address, ca, cert, key, server_name = sys.argv[1:6]
credentials = grpc.ssl_channel_credentials(
    root_certificates=open(ca, "rb").read(),
    private_key=open(key, "rb").read(),
    certificate_chain=open(cert, "rb").read())
channel = grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", server_name)])
stub = kiam_pb2_grpc.KiamServiceStub(channel)

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
