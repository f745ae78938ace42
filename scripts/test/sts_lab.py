#!/usr/bin/env python3
"""moto's own server (STS, IAM, instance metadata) with fault injection and counters, for tests
and benchmarks of kiam's STS client and credentials cache.

  python3 scripts/test/sts_lab.py --port 5000 [--auth] [--tls-cert C --tls-key K]

moto has no fault injection, so a WSGI middleware in front of moto's app adds it; every request
that is not faulted is answered by moto itself. Controlled at runtime over HTTP on the same port:

  POST /_lab/faults?latency_ms=300&throttle_rate=1&error_rate=0&error_code=AccessDenied&reset_rate=0
        &deny_role=<substring>        AssumeRole faults (rates are 0..1; error_code with status)
        &throttle_next=2              throttle exactly the next 2 AssumeRole calls
        &clock_offset=1800            AssumeRole answers as if it were 1800 s later (Expiration moved),
                                      for tests that move kiam's clock (WallClock.manual)
  GET  /_lab/stats                    {"assume_role": {"<role arn>": n}, "max_concurrent": n, ...}
  POST /_lab/reset                    zero the counters (and faults)
  POST /_lab/setup-auth               create user kiam-node (sts:AssumeRole on *) and role kiam_server,
                                      then switch moto's signature and IAM checks on; prints keys

It also answers GET /latest/meta-data/iam/info (moto's instance metadata lacks it) with the
instance profile of moto's account, so role-base-ARN autodetection can be tested; everything
else under /latest/ is moto's instance metadata.
"""
import argparse
import json
import random
import ssl
import threading
import time
from urllib.parse import parse_qs

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

ACCOUNT = "123456789012"
lock = threading.Lock()
faults = {}
stats = {}


def reset():
    with lock:
        faults.clear()
        faults.update(latency_ms=0.0, throttle_rate=0.0, error_rate=0.0, error_code="InternalFailure", error_status=500,
                      reset_rate=0.0, deny_role="", iam_info_status=200, throttle_next=0.0, clock_offset=0.0)
        stats.clear()
        stats.update(assume_role={}, web_identity=0, caller_identity=0, concurrent=0, max_concurrent=0, throttled=0,
                     errors=0, resets=0, denied=0, requests=0)


reset()


def xml_error(code, message, status):
    body = (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f'<Code>{code}</Code><Message>{message}</Message></Error>'
            f'<RequestId>lab-{random.randint(0, 1 << 30)}</RequestId></ErrorResponse>')
    return Response(body, status=status, content_type="text/xml")


class Lab:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        request = Request(environ)
        path = request.path
        if path.startswith("/_lab/"):
            return self.control(request, path)(environ, start_response)
        if path == "/latest/meta-data/iam/info":
            with lock:
                status = faults["iam_info_status"]
            if status != 200:
                return Response("unavailable", status=status)(environ, start_response)
            body = json.dumps({"Code": "Success", "LastUpdated": "2026-01-01T00:00:00Z",
                               "InstanceProfileArn": f"arn:aws:iam::{ACCOUNT}:instance-profile/kiam/node-profile",
                               "InstanceProfileId": "AIPAMOTOLAB"})
            return Response(body, content_type="text/plain")(environ, start_response)
        if request.method == "POST":
            form = parse_qs(request.get_data(as_text=True))
            environ["wsgi.input"] = __import__("io").BytesIO(request.get_data())
            action = (form.get("Action") or [""])[0]
            if action == "AssumeRole":
                return self.assume_role(environ, start_response, (form.get("RoleArn") or [""])[0])
            if action == "AssumeRoleWithWebIdentity":
                with lock:
                    stats["web_identity"] += 1
            if action == "GetCallerIdentity":
                with lock:
                    stats["caller_identity"] += 1
        return self.app(environ, start_response)

    def assume_role(self, environ, start_response, role):
        with lock:
            stats["requests"] += 1
            stats["assume_role"][role] = stats["assume_role"].get(role, 0) + 1
            stats["concurrent"] += 1
            stats["max_concurrent"] = max(stats["max_concurrent"], stats["concurrent"])
            f = dict(faults)
        try:
            if f["latency_ms"]:
                time.sleep(f["latency_ms"] / 1000.0)
            if f["deny_role"] and f["deny_role"] in role:
                with lock:
                    stats["denied"] += 1
                return xml_error("AccessDenied", f"User: arn:aws:iam::{ACCOUNT}:user/kiam-node is not authorized to "
                                 f"perform: sts:AssumeRole on resource: {role}", 403)(environ, start_response)
            if f["reset_rate"] and random.random() < f["reset_rate"]:
                with lock:
                    stats["resets"] += 1
                sock = environ.get("werkzeug.socket")
                if sock is not None:
                    import socket as s
                    try:
                        sock.setsockopt(s.SOL_SOCKET, s.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        sock.shutdown(s.SHUT_RDWR)
                    except OSError:
                        pass
                raise ConnectionResetError("lab: connection reset")
            with lock:
                counted = faults["throttle_next"] >= 1
                if counted:
                    faults["throttle_next"] -= 1
            if counted or (f["throttle_rate"] and random.random() < f["throttle_rate"]):
                with lock:
                    stats["throttled"] += 1
                return xml_error("Throttling", "Rate exceeded", 400)(environ, start_response)
            if f["error_rate"] and random.random() < f["error_rate"]:
                with lock:
                    stats["errors"] += 1
                return xml_error(f["error_code"], f"lab injected {f['error_code']}", int(f["error_status"]))(
                    environ, start_response)
            if f["clock_offset"]:
                return self.shifted(environ, start_response, f["clock_offset"])
            return self.app(environ, start_response)
        finally:
            with lock:
                stats["concurrent"] -= 1

    def shifted(self, environ, start_response, offset):
        """moto's answer with its Expiration `offset` seconds later."""
        import datetime
        import re
        captured = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)
        body = b"".join(self.app(environ, capture)).decode()

        def move(match):
            text = match.group(1)
            when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) + datetime.timedelta(seconds=offset)
            return "<Expiration>" + when.strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if text.endswith("Z") else "") + "</Expiration>"
        body = re.sub(r"<Expiration>([^<]+)</Expiration>", move, body).encode()
        headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in captured["headers"]]
        start_response(captured["status"], headers)
        return [body]

    def control(self, request, path):
        if path == "/_lab/stats":
            with lock:
                return Response(json.dumps(stats), content_type="application/json")
        if path == "/_lab/reset" and request.method == "POST":
            reset()
            return Response("{}", content_type="application/json")
        if path == "/_lab/faults" and request.method == "POST":
            with lock:
                for key, values in request.args.lists():
                    if key in faults:
                        faults[key] = values[0] if key in ("error_code", "deny_role") else float(values[0])
                return Response(json.dumps(faults), content_type="application/json")
        if path == "/_lab/setup-auth" and request.method == "POST":
            return Response(json.dumps(setup_auth(request.host_url.rstrip("/"))), content_type="application/json")
        return Response("not found", status=404)


def setup_auth(endpoint):
    import boto3
    import urllib.request
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="AKIALABSETUP0000000",
              aws_secret_access_key="setup")
    iam = boto3.client("iam", **kw)
    iam.create_user(UserName="kiam-node")
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
    iam.put_user_policy(UserName="kiam-node", PolicyName="assume", PolicyDocument=json.dumps(allow))
    key = iam.create_access_key(UserName="kiam-node")["AccessKey"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/kiam-node"}}]}
    iam.create_role(RoleName="kiam_server", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="kiam_server", PolicyName="assume", PolicyDocument=json.dumps(allow))
    req = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req).read()
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"],
            "UserArn": f"arn:aws:iam::{ACCOUNT}:user/kiam-node", "ServerRoleArn": f"arn:aws:iam::{ACCOUNT}:role/kiam_server"}


def exit_with_parent():
    """Stops the lab when whoever started it is gone (a killed test run must not leave it behind)."""
    import os
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    # A parent that blocks signals (test runners do) passes its mask on: take SIGTERM and SIGINT back.
    import signal
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    exit_with_parent()
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    server = make_server(args.host, args.port, Lab(DomainDispatcherApplication(create_backend_app)), threaded=True,
                         ssl_context=context)
    print(f"sts lab listening on {args.host}:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
