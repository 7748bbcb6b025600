#!/usr/bin/env python3
"""A stand-in for Harbor's own REST API, in front of the real CNCF distribution registry.

Harbor cannot run on the test machine. The registry protocol is never faked: every /v2/ request is
forwarded to the real registry of the harness. This only adds what Harbor puts around it, following
goharbor/harbor api/v2.0/swagger.yaml (shared/harbor/swagger.yaml) and its middleware:

  /v2/...                 basic auth (robot accounts); a repository in a project that does not exist
                          -> 401 UNAUTHORIZED "project X not found" (v2auth middleware); a manifest PUT
                          over an existing tag matched by an immutable-tag rule -> 412 PRECONDITION; a
                          manifest with a `subject` becomes an accessory of its subject, answered with
                          `OCI-Subject` (Harbor >= 2.8 serves the referrers API from its own database); a
                          cosign signature (tag `sha256-<hex>.sig`, a simple-signing layer) becomes an
                          accessory of type signature.cosign (Harbor's cosign middleware)
                          A pull-only robot (HARBOR_STANDIN_PULL_USERS) may GET/HEAD only. A manifest GET
                          in a project whose metadata enables `enable_content_trust_cosign` or `prevent_vul`
                          is refused with 412 PRECONDITION when the artifact has no cosign signature, or was
                          not scanned / has findings at or above `severity` (Harbor's contenttrust and
                          vulnerable middlewares, their messages)
  GET  /v2/{p}/{r}/referrers/{digest}                    OCI index of the accessories (referrers API)
  GET  /api/v2.0/projects/{p}                            Project {name, metadata} (metadata as created)
  GET  /api/v2.0/systeminfo                              {harbor_version}
  HEAD /api/v2.0/projects?project_name=P                 200 | 404
  POST /api/v2.0/projects                                ProjectReq -> 201 | 409 | 400
  POST /api/v2.0/projects/{p}/immutabletagrules          ImmutableRule (tag_selectors[].pattern) -> 201
  POST /api/v2.0/projects/{p}/repositories/{r}/artifacts/{ref}/scan   -> 202 | 404
  GET  /api/v2.0/projects/{p}/repositories/{r}/artifacts/{ref}?with_scan_overview=true
                          Artifact with scan_overview (NativeReportSummary): Pending, Running, then Success;
                          with_accessory=true adds its accessories
  GET  /api/v2.0/projects/{p}/repositories/{r}/artifacts/{ref}/accessories   [Accessory]
  POST /__control/findings  (tests only, not Harbor) what the next scans of a repository find
"""
import base64
import fnmatch
import http.client
import json
import os
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = os.environ["HARBOR_STANDIN_UPSTREAM"]  # host:port of the real registry
USERS = dict(u.rsplit(":", 1) for u in os.environ["HARBOR_STANDIN_USERS"].split(","))
PULL_ONLY = dict(u.rsplit(":", 1) for u in os.environ.get("HARBOR_STANDIN_PULL_USERS", "").split(",") if u)
USERS.update(PULL_ONLY)
PROJECT_REQ_KEYS = {"project_name", "public", "metadata", "cve_allowlist", "storage_limit", "registry_id"}
MIME = "application/vnd.security.vulnerability.report; version=1.1"
ACCEPT = ", ".join(["application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"])
LOCK = threading.Lock()
PROJECTS = {"library"}
METADATA = {}     # project -> ProjectMetadata as created (string values)
IMMUTABLE = {}    # project -> [tag patterns]
FINDINGS = {}     # "project/repo" -> {"Critical": n, ...}
SCANS = {}        # (project/repo, digest) -> polls seen
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
ACCESSORIES = {}  # (project/repo, subject digest) -> [OCI descriptor of the referrer]


def check_auth(headers):
    value = headers.get("Authorization", "")
    if not value.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
    except ValueError:
        return False
    return USERS.get(user) == password


def user_of(headers):
    try:
        return base64.b64decode(headers.get("Authorization", "")[6:]).decode().partition(":")[0]
    except ValueError:
        return ""


SEVERITY_ORDER = ["Critical", "High", "Medium", "Low", "Negligible", "Unknown"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- registry protocol: forwarded to the real registry -------------------------------------------
    def registry(self):
        if not check_auth(self.headers):
            self.body()
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                              {"Www-Authenticate": 'Basic realm="harbor"'})
        path = urllib.parse.urlsplit(self.path).path
        parts = path.split("/")
        if len(parts) > 3 and parts[2]:
            project = parts[2]
            if project not in PROJECTS:
                self.body()
                msg = f"project {project} not found: project {project} not found"
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": msg}]}, {"Www-Authenticate": ""})
            if user_of(self.headers) in PULL_ONLY and self.command not in ("GET", "HEAD"):
                self.body()
                msg = f"unauthorized to access repository: {'/'.join(parts[2:4])}, action: push: unauthorized"
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": msg}]}, {"Www-Authenticate": ""})
            if self.command == "GET" and "/manifests/" in path and METADATA.get(project):
                refusal = self.pull_policy(project, path)
                if refusal:
                    return self.reply(412, {"errors": [{"code": "PRECONDITION", "message": refusal}]})
            if self.command == "PUT" and "/manifests/" in path:
                tag = path.rsplit("/", 1)[1]
                repo = "/".join(parts[2:parts.index("manifests")])
                if not tag.startswith("sha256:") and any(fnmatch.fnmatch(tag, p) for p in IMMUTABLE.get(project, [])):
                    conn = http.client.HTTPConnection(UPSTREAM)
                    conn.request("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
                    exists = conn.getresponse().status == 200
                    conn.close()
                    if exists:
                        self.body()
                        msg = f"Failed to process request due to '{repo}:{tag}' configured as immutable."
                        return self.reply(412, {"errors": [{"code": "PRECONDITION", "message": msg}]})
                return self.put_manifest("/".join(parts[2:parts.index("manifests")]))
            if self.command in ("GET", "HEAD") and "/referrers/" in path:
                return self.referrers(path)
        self.forward()

    def pull_policy(self, project, path):
        """Harbor's pull-time checks (contenttrust/cosign and vulnerable middlewares) for a manifest GET."""
        meta = METADATA[project]
        ref = path.rsplit("/", 1)[1]
        repo = "/".join(path.split("/")[2:path.split("/").index("manifests")])
        if ref.endswith(".sig") or ref.endswith(".att"):
            return None
        conn = http.client.HTTPConnection(UPSTREAM)
        conn.request("HEAD", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
        r = conn.getresponse()
        digest = r.getheader("Docker-Content-Digest")
        conn.close()
        if r.status != 200:
            return None
        if meta.get("enable_content_trust_cosign") == "true":
            kinds = [d.get("type") for d in ACCESSORIES.get((repo, digest), [])]
            if "signature.cosign" not in kinds:
                return "The image is not signed by cosign."
        if meta.get("prevent_vul") == "true":
            severity = meta.get("severity", "low").capitalize()
            if SCANS.get((repo, digest)) is None:
                return ("current image without vulnerability scanning cannot be pulled due to configured policy in "
                        f"'Prevent images with vulnerability severity of \"{severity}\" or higher from running.' "
                        "To continue with pull, please contact your project administrator for help.")
            found = FINDINGS.get(repo, {})
            limit = SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)
            worst = next((s for s in SEVERITY_ORDER if found.get(s)), None)
            if worst and SEVERITY_ORDER.index(worst) <= limit:
                return (f"current image with \"{sum(found.values())} vulnerabilities\" cannot be pulled due to configured "
                        f"policy in 'Prevent images with vulnerability severity of \"{severity}\" or higher from running.' "
                        "To continue with pull, please contact your project administrator for help.")
        return None

    def put_manifest(self, repo):
        data = self.body()
        try:
            manifest = json.loads(data)
        except ValueError:
            manifest = None
        subject = manifest.get("subject") if isinstance(manifest, dict) else None
        # cosign's signature tag (Harbor's cosign middleware): `sha256-<hex>.sig` holding a simple-signing
        # layer is an accessory of type signature.cosign of the digest the tag names.
        sig = re.fullmatch(r"/v2/.+/manifests/sha256-([0-9a-f]{64})\.sig", urllib.parse.urlsplit(self.path).path)
        layers = manifest.get("layers") if isinstance(manifest, dict) else None
        if sig and isinstance(layers, list) and any(
                isinstance(l, dict) and l.get("mediaType") == COSIGN_LAYER for l in layers):
            status, headers = self.forward(data)
            if status == 201:
                desc = {"mediaType": manifest.get("mediaType") or self.headers.get("Content-Type"),
                        "digest": headers.get("docker-content-digest"), "size": len(data),
                        "type": "signature.cosign"}
                with LOCK:
                    have = ACCESSORIES.setdefault((repo, "sha256:" + sig.group(1)), [])
                    have[:] = [d for d in have if d.get("type") != "signature.cosign"] + [desc]
            return None
        if not isinstance(subject, dict) or "digest" not in subject:
            return self.forward(data)
        status, headers = self.forward(data, {"OCI-Subject": subject["digest"]})
        if status == 201:
            desc = {"mediaType": manifest.get("mediaType") or self.headers.get("Content-Type"),
                    "digest": headers.get("docker-content-digest"), "size": len(data)}
            kind = manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType")
            if kind:
                desc["artifactType"] = kind
            if manifest.get("annotations"):
                desc["annotations"] = manifest["annotations"]
            with LOCK:
                have = ACCESSORIES.setdefault((repo, subject["digest"]), [])
                if all(d["digest"] != desc["digest"] for d in have):
                    have.append(desc)

    def referrers(self, path):
        repo, _, digest = path[len("/v2/"):].partition("/referrers/")
        kind = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("artifactType", [None])[0]
        conn = http.client.HTTPConnection(UPSTREAM)
        conn.request("HEAD", f"/v2/{repo}/manifests/{digest}", headers={"Accept": ACCEPT})
        exists = conn.getresponse().status == 200
        conn.close()
        if not exists:  # Harbor looks the subject up among its artifacts first
            msg = f"artifact {repo}@{digest} not found"
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": msg}]})
        found = [d for d in ACCESSORIES.get((repo, digest), []) if kind is None or d.get("artifactType") == kind]
        headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
        if kind is not None:
            headers["OCI-Filters-Applied"] = "artifactType"
        data = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": found}).encode()
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def forward(self, data=None, extra=None):
        """Forwards the request upstream and relays the answer (with `extra` headers on success)."""
        data = self.body() if data is None else data
        headers = {}
        for k in set(self.headers.keys()):
            if k.lower() not in ("authorization", "connection"):
                headers[k] = ", ".join(self.headers.get_all(k))  # repeated headers (Accept) joined, not dropped
        conn = http.client.HTTPConnection(UPSTREAM)
        conn.request(self.command, self.path, body=data or None, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            self.send_header(k, v)
        for k, v in (extra or {}).items() if resp.status < 300 else ():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}

    # ---- Harbor REST API -----------------------------------------------------------------------------
    def api(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        path = url.path[len("/api/v2.0"):]
        raw = self.body()
        if path == "/systeminfo" and self.command == "GET":
            return self.reply(200, {"harbor_version": "v2.15.2-standin", "with_chartmuseum": False})
        if not check_auth(self.headers):
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]})
        if path == "/projects" and self.command == "HEAD":
            return self.reply(200 if q.get("project_name", [""])[0] in PROJECTS else 404)
        if path == "/projects" and self.command == "POST":
            req = json.loads(raw or b"{}")
            if not isinstance(req, dict) or not set(req) <= PROJECT_REQ_KEYS or not req.get("project_name"):
                return self.reply(400, {"errors": [{"code": "BAD_REQUEST", "message": "invalid ProjectReq"}]})
            meta = req.get("metadata") or {}
            if any(not isinstance(v, str) for v in meta.values()):
                return self.reply(400, {"errors": [{"code": "BAD_REQUEST", "message": "metadata values are strings"}]})
            with LOCK:
                if req["project_name"] in PROJECTS:
                    return self.reply(409, {"errors": [{"code": "CONFLICT", "message": "The project named %s already exists" % req["project_name"]}]})
                PROJECTS.add(req["project_name"])
                METADATA[req["project_name"]] = meta
            return self.reply(201, None, {"Location": f"/api/v2.0/projects/{req['project_name']}"})
        parts = path.split("/")
        if len(parts) == 3 and parts[1] == "projects" and self.command == "GET":
            name = urllib.parse.unquote(parts[2])
            if name not in PROJECTS:
                return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": f"project {name} not found"}]})
            return self.reply(200, {"name": name, "metadata": {"public": "false", **METADATA.get(name, {})}})
        # /projects/{p}/immutabletagrules
        if len(parts) == 4 and parts[1] == "projects" and parts[3] == "immutabletagrules" and self.command == "POST":
            rule = json.loads(raw)
            IMMUTABLE.setdefault(parts[2], []).extend(s["pattern"] for s in rule.get("tag_selectors", []))
            return self.reply(201)
        # /projects/{p}/repositories/{r}/artifacts/{ref}[/scan]   (r is URL-encoded twice: a%252Fb)
        if len(parts) >= 7 and parts[1] == "projects" and parts[3] == "repositories" and parts[5] == "artifacts":
            project = parts[2]
            repo = urllib.parse.unquote(urllib.parse.unquote(parts[4]))
            ref = urllib.parse.unquote(parts[6])
            conn = http.client.HTTPConnection(UPSTREAM)
            conn.request("HEAD", f"/v2/{project}/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
            r = conn.getresponse()
            digest = r.getheader("Docker-Content-Digest")
            conn.close()
            if r.status != 200:
                return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": f"artifact {project}/{repo}@{ref} not found"}]})
            key = (f"{project}/{repo}", digest)
            if len(parts) == 8 and parts[7] == "scan" and self.command == "POST":
                SCANS[key] = 0
                return self.reply(202)
            accessories = [{"id": i + 1, "artifact_id": i + 1, "subject_artifact_digest": digest,
                            "subject_artifact_repo": f"{project}/{repo}", "size": d["size"], "digest": d["digest"],
                            "type": d.get("type", "subject.accessory"), "icon": ""}
                           for i, d in enumerate(ACCESSORIES.get((f"{project}/{repo}", digest), []))]
            if len(parts) == 8 and parts[7] == "accessories" and self.command == "GET":
                return self.reply(200, accessories, {"X-Total-Count": str(len(accessories))})
            if len(parts) == 7 and self.command == "GET":
                art = {"digest": digest, "type": "IMAGE", "project_id": 1, "repository_name": f"{project}/{repo}"}
                if q.get("with_accessory", [""])[0] == "true":
                    art["accessories"] = accessories
                if "with_scan_overview" in q and key in SCANS:
                    polls = SCANS[key]
                    SCANS[key] = polls + 1
                    status = ["Pending", "Running"][polls] if polls < 2 else "Success"
                    found = FINDINGS.get(f"{project}/{repo}", {})
                    order = ["Critical", "High", "Medium", "Low", "Negligible", "Unknown"]
                    severity = next((s for s in order if found.get(s)), "None")
                    art["scan_overview"] = {MIME: {
                        "report_id": "standin", "scan_status": status, "severity": severity if status == "Success" else "",
                        "complete_percent": 100 if status == "Success" else 50,
                        "summary": {"total": sum(found.values()), "fixable": 0, "summary": found} if status == "Success" else None,
                    }}
                return self.reply(200, art)
        return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "not in the stand-in"}]})

    def control(self):
        req = json.loads(self.body() or b"{}")
        FINDINGS[req["repository"]] = req["summary"]
        self.reply(200, {})

    def dispatch(self):
        if self.path.startswith("/v2/") or self.path == "/v2":
            return self.registry()
        if self.path.startswith("/api/v2.0/"):
            return self.api()
        if self.path.startswith("/__control/findings"):
            return self.control()
        self.body()
        self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = dispatch


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
