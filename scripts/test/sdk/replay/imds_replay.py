#!/usr/bin/env python3
"""Replays how an AWS SDK that cannot be installed here (Java v2, JS v3, Rust, Kotlin) fetches
credentials from the EC2 metadata service, following the rules in sdks.json, which were read from
each SDK's source: the headers it sends, its token TTL and caching, whether it needs the TTL
response header, the extended path first and what makes it fall back to the legacy path (and
whether that sticks), how it reads the role name and which credential fields it requires.

Usage: imds_replay.py SDK. Like the SDK clients next to it, one process keeps the SDK's state
(token, API version, role name) across fetches: every line on standard input is one credential
fetch; one JSON object per line on standard output:
  {"requests": "PUT /latest/api/token 200\\n...", "access_key": ..., "account_id": ..., "arn": ...}
or with "error". Every request has the SDKs' 1 s timeout. With STS_ENDPOINT set, the credentials
are used to ask STS (moto) who they belong to. AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6 uses
[fd00:ec2::254], as the SDKs do.
"""
import datetime
import http.client
import json
import os
import sys
import time

EXTENDED = "/latest/meta-data/iam/security-credentials-extended/"
LEGACY = "/latest/meta-data/iam/security-credentials/"


class SDKError(Exception):
    pass


class Replay:
    def __init__(self, spec):
        self.spec = spec
        self.host = "fd00:ec2::254" if os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "").lower() == "ipv6" \
            else "169.254.169.254"
        self.token = None
        self.token_valid_until = 0.0
        self.api = None  # None (unknown), "extended" or "legacy"
        self.profile = None
        self.log = []
        self.connection = None

    # HTTP, one keep-alive connection, reopened when the agent closes it.
    def request(self, method, path, headers):
        all_headers = dict(self.spec["headers"])
        all_headers.update(headers)
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, 80, timeout=1)
            try:
                self.connection.request(method, path, headers=all_headers)
                response = self.connection.getresponse()
                body = response.read().decode("utf-8", "replace")
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                self.connection.close()
                self.connection = None
                if attempt == 1:
                    raise SDKError(f"{method} {path}: {error}")
            except OSError as error:
                self.connection.close()
                self.connection = None
                raise SDKError(f"{method} {path}: {error}")
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
            self.connection = None
        self.log.append(f"{method} {path} {response.status}")
        return response.status, response.getheader("X-aws-ec2-metadata-token-ttl-seconds"), body

    def get_token(self):
        rules = self.spec["token"]
        if self.token is not None and time.monotonic() < self.token_valid_until:
            return self.token
        status, ttl, body = self.request("PUT", "/latest/api/token",
                                         {"x-aws-ec2-metadata-token-ttl-seconds": str(rules["ttl"])})
        if status != 200:
            if status == 400 or rules["needs_ttl_header"]:
                raise SDKError(f"token request answered {status}")
            return None  # IMDSv1 for this fetch (Java v2, JS v3)
        if rules["needs_ttl_header"]:
            if ttl is None or not ttl.isdigit():
                raise SDKError(f"token response without a valid TTL header ({ttl!r})")
        if rules["cache_seconds_before_expiry"] is not None:
            granted = int(ttl) if ttl and ttl.isdigit() else rules["ttl"]
            self.token = body
            self.token_valid_until = time.monotonic() + granted - rules["cache_seconds_before_expiry"]
        return body

    def get(self, path, token):
        return self.request("GET", path, {"x-aws-ec2-metadata-token": token} if token else {})

    def role_name(self, body):
        rule = self.spec["role_name"]
        if rule == "trim-first-line":
            return body.strip().split("\n")[0]
        if rule == "trim":
            return body.strip()
        return body

    def list_profile(self, token):
        status, _, body = self.get(EXTENDED if self.api != "legacy" else LEGACY, token)
        if status == 404 and self.api is None:
            self.api = "legacy"
            status, _, body = self.get(LEGACY, token)
        if status != 200:
            raise SDKError(f"no instance profile: the role list answered {status}")
        if self.api is None:
            self.api = "extended"
        return self.role_name(body)

    def fetch(self):
        self.log = []
        if not self.spec["extended"]["sticky"]:
            self.api = None
        if not self.spec["role_cached"]:
            self.profile = None
        token = self.get_token()
        rules = self.spec["extended"]
        for _ in range(rules["max_relists"] + 1):
            if self.profile is None:
                self.profile = self.list_profile(token)
            base = EXTENDED if self.api == "extended" else LEGACY
            status, _, body = self.get(base + self.profile, token)
            if status == 404 and rules["on_credentials_404"] == "legacy" and base == EXTENDED:
                status, _, body = self.get(LEGACY + self.profile, token)
            if status == 200:
                return self.parse(body)
            if status != 404 or rules["on_credentials_404"] != "relist":
                raise SDKError(f"credentials answered {status}: {body[:200]}")
            self.profile = None
        raise SDKError("credentials not found after re-listing the role")

    def parse(self, body):
        try:
            document = json.loads(body)
        except ValueError as error:
            raise SDKError(f"credentials are not JSON: {error}")
        if self.spec["code"] != "ignored":
            code = document.get("Code")
            if code is not None and not (code == "Success" or (self.spec["code"].startswith("success-case-insensitive")
                                                                and code.lower() == "success")):
                raise SDKError(f"Code is {code!r}")
        for field in self.spec["required"]:
            if not isinstance(document.get(field), str) or not document[field]:
                raise SDKError(f"credentials without {field}")
        expiration = document.get("Expiration")
        if expiration is not None:
            if self.spec["expiration"] == "rfc3339" and not expiration.endswith("Z"):
                raise SDKError(f"Expiration {expiration!r} is not RFC 3339 UTC")
            parsed = datetime.datetime.fromisoformat(expiration.replace("Z", "+00:00"))
            if parsed <= datetime.datetime.now(datetime.timezone.utc):
                raise SDKError(f"expired credentials ({expiration})")
        return document


def caller_identity(document):
    import botocore.session
    session = botocore.session.get_session()
    client = session.create_client(
        "sts", region_name="us-east-1", endpoint_url=os.environ["STS_ENDPOINT"],
        aws_access_key_id=document["AccessKeyId"], aws_secret_access_key=document["SecretAccessKey"],
        aws_session_token=document.get("Token"))
    return client.get_caller_identity()["Arn"]


def main():
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdks.json")) as file:
        spec = json.load(file)[sys.argv[1]]
    replay = Replay(spec)
    for _ in sys.stdin:
        result = {}
        try:
            document = replay.fetch()
            result["access_key"] = document["AccessKeyId"]
            if spec["reads_account_id"] and "AccountId" in document:
                result["account_id"] = document["AccountId"]
            if os.environ.get("STS_ENDPOINT"):
                result["arn"] = caller_identity(document)
        except SDKError as error:
            result["error"] = str(error)
        except Exception as error:  # STS refused the credentials, or moto is down
            result["error"] = f"{type(error).__name__}: {error}"
        result["requests"] = "\n".join(replay.log)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
