#!/usr/bin/env python3
"""botocore fetching credentials from an EC2 metadata endpoint, as an unmodified SDK would.

  botocore_client.py v2          boto3.Session().get_credentials() (IMDSv2: token PUT first)
  botocore_client.py v1          botocore's own IMDSv1 fallback path (as when the token PUT fails)

The endpoint comes from AWS_EC2_METADATA_SERVICE_ENDPOINT (or the default 169.254.169.254).
Prints one JSON object: {"access_key": ..., "method": ..., "expiry": ...} or {"error": ...}.
"""
import json
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "v2"
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
