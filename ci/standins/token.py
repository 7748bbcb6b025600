#!/usr/bin/env python3
"""A registry token server (the Docker distribution token protocol: docs/spec/auth/token.md), so that the
real distribution registry of the harness runs in token mode, as Harbor and Docker Hub do.

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] with Basic credentials -> {"token": JWT}.
Users and what they may do come from TOKEN_USERS ("user:password:prefix,..."): a user gets push and pull on
repositories under its prefix and pull elsewhere; a scope it may not have is granted with fewer actions
(as Harbor does). JWTs are RS256, signed with `openssl dgst`, carrying the signing certificate in `x5c`.
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = os.environ["TOKEN_KEY"]
CERT_DER = base64.b64encode(open(os.environ["TOKEN_CERT_DER"], "rb").read()).decode()
ISSUER = os.environ["TOKEN_ISSUER"]
LIFETIME = int(os.environ.get("TOKEN_LIFETIME", "300"))
USERS = {}
for entry in os.environ["TOKEN_USERS"].split(","):
    user, password, prefix = entry.rsplit(":", 2)
    USERS[user] = (password, prefix)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [CERT_DER]}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=signing_input.encode(),
                         capture_output=True, check=True).stdout
    return f"{signing_input}.{b64url(sig)}"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if name not in USERS or USERS[name][0] != password:
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]})
            user = name
        q = urllib.parse.parse_qs(url.query)
        access = []
        for scope in q.get("scope", []):
            kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else (None, None, None)
            if kind != "repository":
                continue
            wanted = actions.split(",")
            mine = user is not None and name.startswith(USERS[user][1])
            allowed = [a for a in wanted if a == "pull" or (mine and a in ("push", "delete", "*"))] if user else []
            access.append({"type": "repository", "name": name, "actions": allowed})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user or "", "aud": q.get("service", [""])[0], "exp": now + LIFETIME,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        token = sign(claims)
        self.reply(200, {"token": token, "access_token": token, "expires_in": LIFETIME})


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
