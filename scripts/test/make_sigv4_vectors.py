#!/usr/bin/env python3
"""Generates SigV4 test vectors with botocore's own signer (botocore.auth.SigV4Auth).

Writes Tests/KiamServerTests/Fixtures/sigv4-botocore.json. Each vector holds the request as our
signer takes it (method, host, path, decoded query pairs, headers, body, credentials, time) and
botocore's canonical request, string to sign and Authorization header.

Run: python3 scripts/test/make_sigv4_vectors.py
"""
import datetime
import json
import os

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "KiamServerTests", "Fixtures", "sigv4-botocore.json")

SUITE_KEY = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = datetime.datetime(2015, 8, 30, 12, 36, 0)
STS_TIME = datetime.datetime(2026, 11, 23, 4, 5, 6)
TOKEN = ("FQoGZXIvYXdzEAAaDGV4YW1wbGUtdG9rZW4ihAJ3Ml4m3Jn+L2k/8=" * 3)

CASES = [
    # name, method, host, path, query pairs, headers, body, service, region, key, token, time
    ("get-vanilla", "GET", "example.amazonaws.com", "/", [], [], "", "service", "us-east-1", SUITE_KEY, None, SUITE_TIME),
    ("get-vanilla-query-order-key-case", "GET", "example.amazonaws.com", "/", [("Param2", "value2"), ("Param1", "value1")], [], "",
     "service", "us-east-1", SUITE_KEY, None, SUITE_TIME),
    ("get-vanilla-query-order-value", "GET", "example.amazonaws.com", "/", [("Param1", "value2"), ("Param1", "value1")], [], "",
     "service", "us-east-1", SUITE_KEY, None, SUITE_TIME),
    ("get-unreserved", "GET", "example.amazonaws.com", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     [], [], "", "service", "us-east-1", SUITE_KEY, None, SUITE_TIME),
    ("get-slashes", "GET", "example.amazonaws.com", "//example//", [], [], "", "service", "us-east-1", SUITE_KEY, None, SUITE_TIME),
    ("get-slash-dot-slash", "GET", "example.amazonaws.com", "/./", [], [], "", "service", "us-east-1", SUITE_KEY, None, SUITE_TIME),
    ("get-relative-relative", "GET", "example.amazonaws.com", "/example1/example2/../..", [], [], "", "service", "us-east-1",
     SUITE_KEY, None, SUITE_TIME),
    ("get-header-value-trim", "GET", "example.amazonaws.com", "/", [],
     [("My-Header1", " value1"), ("My-Header2", ' "a   b   c" ')], "", "service", "us-east-1", SUITE_KEY, None, SUITE_TIME),
    ("post-x-www-form-urlencoded", "POST", "example.amazonaws.com", "/", [],
     [("Content-Type", "application/x-www-form-urlencoded")], "Param1=value1", "service", "us-east-1", SUITE_KEY, None, SUITE_TIME),
    ("get-query-unusual-characters", "GET", "sts.amazonaws.com", "/",
     [("a b", "c+d/e"), ("emoji", "\u00fc\u2603\U0001F600"), ("eq", "x=y&z"), ("tilde~", "~-._"), ("empty", "")], [], "",
     "sts", "us-east-1", SUITE_KEY, None, STS_TIME),
    ("get-path-encoded", "GET", "example.amazonaws.com", "/a%20b/c+d/caf%C3%A9", [], [], "", "service", "eu-west-1",
     SUITE_KEY, None, STS_TIME),
    ("post-sts-assume-role", "POST", "sts.amazonaws.com", "/", [],
     [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
     "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fapp-web"
     "&RoleSessionName=kiam-kiam&DurationSeconds=3600",
     "sts", "us-east-1", ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), None, STS_TIME),
    ("post-sts-assume-role-with-token", "POST", "sts.eu-west-1.amazonaws.com", "/", [],
     [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("User-Agent", "kiam/0.1")],
     "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A999999999999%3Arole%2Fcluster-api"
     "&RoleSessionName=kiam-kiam&DurationSeconds=3600&ExternalId=ext%2Fid+%C3%A9",
     "sts", "eu-west-1", ("ASIAEXAMPLEEXAMPLE01", "secret/with+odd=chars"), TOKEN, STS_TIME),
    ("post-json-with-port", "POST", "localhost:5000", "/", [("X-Amz-Target", "x")],
     [("Content-Type", "application/x-amz-json-1.1"), ("X-Custom", "a\tb   c")], '{"hello": "w\u00f6rld"}',
     "sts", "us-gov-west-1", SUITE_KEY, TOKEN, STS_TIME),
]


def main():
    vectors = []
    for name, method, host, path, query, headers, body, service, region, key, token, when in CASES:
        url = f"https://{host}{path}"
        if query:
            url += "?" + "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in query)
        request = AWSRequest(method=method, url=url, data=body.encode("utf-8"), headers=dict(headers))
        botocore.auth.get_current_datetime = lambda remove_tzinfo=True, when=when: when
        signer = SigV4Auth(Credentials(key[0], key[1], token), service, region)
        captured = {}
        original = signer.string_to_sign

        def capture(req, canonical_request, original=original, captured=captured):
            captured["canonical"] = canonical_request
            captured["sts"] = original(req, canonical_request)
            return captured["sts"]

        signer.string_to_sign = capture  # record botocore's own intermediate values while it signs
        signer.add_auth(request)
        canonical = captured["canonical"]
        vectors.append({
            "name": name, "method": method, "host": host, "path": path,
            "query": [[k, v] for k, v in query], "headers": [[k, v] for k, v in headers], "body": body,
            "service": service, "region": region, "accessKeyID": key[0], "secretAccessKey": key[1],
            "sessionToken": token, "epochSeconds": int(when.replace(tzinfo=datetime.timezone.utc).timestamp()),
            "canonicalRequest": canonical,
            "stringToSign": captured["sts"],
            "authorization": request.headers["Authorization"],
            "amzDate": request.headers["X-Amz-Date"],
        })
    with open(OUT, "w") as f:
        json.dump({"generator": "botocore.auth.SigV4Auth", "botocore": botocore.__version__, "vectors": vectors}, f, indent=1,
                  ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(vectors)} vectors to {OUT}")


main()
