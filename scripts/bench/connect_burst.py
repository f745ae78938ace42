#!/usr/bin/env python3
"""A burst of new connections: opens CONNECTIONS connections at once, sends one GET on each as
soon as it is connected, and times each answer from the moment its request was written (what
an SDK's timeout counts). Repeats ROUNDS times with a pause in between.

Usage: connect_burst.py HOST PORT PATH CONNECTIONS ROUNDS
Prints one line: BURST {"rounds": [{"p50_ms", "max_ms", "errors"}, ...]}
"""
import json
import selectors
import socket
import sys
import time

host, port, path, connections, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def complete(data):
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return True


def burst():
    selector = selectors.DefaultSelector()
    state = {}
    errors = 0
    for _ in range(connections):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect_ex((host, port))
        state[sock] = {"sent": None, "data": b""}
        selector.register(sock, selectors.EVENT_WRITE)
    latencies = []
    deadline = time.monotonic() + 10
    while state and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            sock = key.fileobj
            entry = state[sock]
            try:
                if entry["sent"] is None:
                    sock.send(request)
                    entry["sent"] = time.monotonic()
                    selector.modify(sock, selectors.EVENT_READ)
                    continue
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                entry["data"] += chunk
                if not complete(entry["data"]):
                    continue
                if entry["data"].startswith(b"HTTP/1.1 200"):
                    latencies.append(time.monotonic() - entry["sent"])
                else:
                    errors += 1
            else:
                errors += 1
            selector.unregister(sock)
            sock.close()
            del state[sock]
    errors += len(state)
    for sock in state:
        sock.close()
    latencies.sort()
    middle = latencies[len(latencies) // 2] if latencies else 0
    return {"p50_ms": middle * 1000, "max_ms": (latencies[-1] if latencies else 0) * 1000, "errors": errors}


results = []
for index in range(rounds):
    if index:
        time.sleep(0.5)
    results.append(burst())
print("BURST " + json.dumps({"rounds": results}), flush=True)
