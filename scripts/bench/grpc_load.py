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
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test"))
import kiam_stubs  # noqa: E402

grpc, kiam_pb2, kiam_pb2_grpc = kiam_stubs.load()
address, ca, cert, key, server_name, rate, seconds, targets_file = sys.argv[1:9]
rate, seconds = float(rate), float(seconds)
with open(targets_file) as handle:
    targets = json.load(handle)
stub = kiam_stubs.stub(grpc, kiam_pb2_grpc, address, ca, cert, key, server_name)
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
