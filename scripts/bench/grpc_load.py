#!/usr/bin/env python3
"""GetPodCredentials at a fixed rate from a grpcio client over mutual TLS (open loop: a call is
started every 1/RATE s whether or not earlier ones finished, so a slow server shows up as
latency, not as a lower rate).

Usage: grpc_load.py ADDRESS CA CERT KEY SERVER_NAME RATE SECONDS TARGETS_JSON
  TARGETS_JSON: [[ip, role], ...], used round-robin.
Prints {"sent", "ok", "errors": {code: n}, "achieved_rps", "p50_ms", "p99_ms", "p999_ms", "max_ms"}.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

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

address, ca, cert, key, server_name, rate, seconds, targets_file = sys.argv[1:9]
rate, seconds = float(rate), float(seconds)
targets = json.load(open(targets_file))
credentials = grpc.ssl_channel_credentials(
    root_certificates=open(ca, "rb").read(), private_key=open(key, "rb").read(),
    certificate_chain=open(cert, "rb").read())
channel = grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", server_name)])
stub = kiam_pb2_grpc.KiamServiceStub(channel)
stub.GetHealth(kiam_pb2.GetHealthRequest(), timeout=10)

lock = threading.Lock()
latencies = []
errors = {}
pending = threading.Semaphore(0)


def finished(started):
    def callback(future):
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            if future.exception() is None:
                latencies.append(elapsed)
            else:
                code = future.code().name
                errors[code] = errors.get(code, 0) + 1
        pending.release()
    return callback


total = int(rate * seconds)
begin = time.perf_counter()
for i in range(total):
    due = begin + i / rate
    now = time.perf_counter()
    if due > now:
        time.sleep(due - now)
    ip, role = targets[i % len(targets)]
    started = time.perf_counter()
    future = stub.GetPodCredentials.future(kiam_pb2.GetPodCredentialsRequest(ip=ip, role=role), timeout=5)
    future.add_done_callback(finished(started))
sent_in = time.perf_counter() - begin
for _ in range(total):
    pending.acquire()

latencies.sort()


def percentile(p):
    if not latencies:
        return None
    return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))]


print(json.dumps({
    "sent": total, "ok": len(latencies), "errors": errors, "achieved_rps": total / sent_in,
    "p50_ms": percentile(50), "p99_ms": percentile(99), "p999_ms": percentile(99.9),
    "max_ms": latencies[-1] if latencies else None,
}))
