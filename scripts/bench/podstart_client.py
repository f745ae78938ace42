#!/usr/bin/env python3
"""A pod's first credentials, timed. Creates two boto3 sessions, prints "ready", waits for a line
on stdin (the moment the benchmark sets the pod's IP in the Kubernetes API), then:
  1. first: session.get_credentials() against 169.254.169.254 with the SDK's defaults (1 s
     timeout, one attempt) — the pod's first credentials;
  2. warm: the second session's get_credentials() right after, when the agent knows the pod —
     the SDK's own cost of the same calls (provider chain, token, role list, credentials).
Prints {"ms": first, "warm_ms": warm, "ok": ..., "access_key"|"error": ...}."""
import json
import sys
import time

import boto3

first_session = boto3.Session()
warm_session = boto3.Session()
print("ready", flush=True)
sys.stdin.readline()


def timed(session):
    started = time.perf_counter()
    try:
        credentials = session.get_credentials()
        elapsed = (time.perf_counter() - started) * 1000
        if credentials is None:
            return elapsed, None, "no credentials"
        return elapsed, credentials.get_frozen_credentials().access_key, None
    except Exception as error:  # noqa: BLE001
        return (time.perf_counter() - started) * 1000, None, f"{type(error).__name__}: {error}"


ms, key, error = timed(first_session)
warm_ms, _, _ = timed(warm_session)
result = {"ms": ms, "warm_ms": warm_ms, "ok": key is not None}
result.update({"access_key": key} if key else {"error": error})
print(json.dumps(result), flush=True)
