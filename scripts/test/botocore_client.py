#!/usr/bin/env python3
"""botocore fetching credentials from an EC2 metadata endpoint, as an unmodified SDK would.

  botocore_client.py v2          boto3.Session().get_credentials() (IMDSv2: token PUT first)
  botocore_client.py v1          botocore's own IMDSv1 fallback path (as when the token PUT fails)
  botocore_client.py loop        one process, many fetches: every line on standard input loads the
                                 credentials again through botocore's instance metadata provider and,
                                 with STS_ENDPOINT set, asks STS who they belong to (one JSON line each)
  botocore_client.py fresh SECS  for SECS seconds, fetch credentials again and again, each time with a new
                                 InstanceMetadataFetcher (new connections, IMDSv2, botocore's 1 s timeout and
                                 one attempt, as boto3's defaults); prints {"ok": n, "failed": n,
                                 "times_ms": [...], "errors": [...]} with the time of every fetch

The endpoint comes from AWS_EC2_METADATA_SERVICE_ENDPOINT (or the default 169.254.169.254).
Prints one JSON object: {"access_key": ..., "method": ..., "expiry": ...} or {"error": ...}.
"""
import json
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "v2"
if mode == "loop":
    import os
    import boto3
    import botocore.session
    from botocore.credentials import create_credential_resolver
    session = botocore.session.get_session()
    resolver = create_credential_resolver(session)
    provider = resolver.get_provider("iam-role")
    for _ in sys.stdin:
        try:
            credentials = provider.load()
            if credentials is None:
                print(json.dumps({"error": "no credentials"}), flush=True)
                continue
            frozen = credentials.get_frozen_credentials()
            result = {"access_key": frozen.access_key, "provider": credentials.method}
            endpoint = os.environ.get("STS_ENDPOINT")
            if endpoint:
                sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=frozen.access_key,
                                   aws_secret_access_key=frozen.secret_key, aws_session_token=frozen.token)
                result["arn"] = sts.get_caller_identity()["Arn"]
            print(json.dumps(result), flush=True)
        except Exception as error:  # noqa: BLE001
            print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
    sys.exit(0)
if mode == "fresh":
    import os
    import time
    from botocore.utils import InstanceMetadataFetcher
    base_url = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254")
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    ok, failed, times, errors = 0, 0, [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            fetcher = InstanceMetadataFetcher(timeout=1, num_attempts=1, base_url=base_url)
            data = fetcher.retrieve_iam_role_credentials()
            if data.get("access_key"):
                ok += 1
            else:
                failed += 1
                errors.append("no credentials")
        except Exception as error:  # noqa: BLE001
            failed += 1
            errors.append(f"{type(error).__name__}: {error}")
        times.append(round((time.monotonic() - started) * 1000, 2))
        time.sleep(0.05)
    print(json.dumps({"ok": ok, "failed": failed, "times_ms": times, "errors": errors[:5]}))
    sys.exit(0)
try:
    if mode == "v2":
        import boto3
        credentials = boto3.Session().get_credentials()
        if credentials is None:
            print(json.dumps({"error": "no credentials"}))
            sys.exit(0)
        frozen = credentials.get_frozen_credentials()
        print(json.dumps({"access_key": frozen.access_key, "method": credentials.method,
                          "token_len": len(frozen.token or "")}))
    else:
        import os
        from botocore.utils import InstanceMetadataFetcher
        base_url = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254")
        fetcher = InstanceMetadataFetcher(timeout=1, num_attempts=1, base_url=base_url)
        fetcher._fetch_metadata_token = lambda: None  # the path botocore takes when PUT /api/token fails
        data = fetcher.retrieve_iam_role_credentials()
        print(json.dumps({"access_key": data.get("access_key"), "method": "iam-role-v1",
                          "expiry": data.get("expiry_time"), "role": data.get("role_name")}))
except Exception as error:  # noqa: BLE001
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
