#!/usr/bin/env python3
"""A stand-in for the part of GitLab's REST API flowship uses: merge requests.

GitLab itself cannot run on the test machine. This follows GitLab's documented behaviour
(doc/api/merge_requests.md) for the calls flowship makes, and nothing more:

  POST /api/v4/projects/:id/merge_requests   201 + MR; 409 {"message": ["Another open merge request already
                                             exists for this source branch: !N"]}; 400 missing fields or unknown
                                             source branch; 401 without a valid PRIVATE-TOKEN; 404 unknown project
  GET  /api/v4/projects/:id/merge_requests?state=opened&source_branch=B   list
  GET  /__requests                           what was received (for tests; not part of GitLab)

A project id is its URL-encoded path (`platform%2Fgitops`) or a number; it names the bare repository
<git root>/<last path component>.git served by the test git servers, whose branches are checked for real.
"""
import json
import os
import subprocess
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = os.environ["GITLAB_STANDIN_TOKEN"]
GIT_ROOT = os.environ["GITLAB_STANDIN_GIT_ROOT"]
MRS = []  # every MR created
REQUESTS = []


def repo_for(project_id):
    path = urllib.parse.unquote(project_id)
    repo = os.path.join(GIT_ROOT, path.rsplit("/", 1)[-1] + ".git")
    return (path, repo) if os.path.isdir(repo) else (path, None)


def branch_exists(repo, branch):
    r = subprocess.run(["git", "--git-dir", repo, "rev-parse", "--verify", "-q", "refs/heads/" + branch],
                       capture_output=True)
    return r.returncode == 0


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

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.split("/")
        # ['', 'api', 'v4', 'projects', ':id', 'merge_requests']
        if len(parts) == 6 and parts[1:4] == ["api", "v4", "projects"] and parts[5] == "merge_requests":
            return parts[4], urllib.parse.parse_qs(url.query)
        return None, None

    def authorised(self):
        if self.headers.get("PRIVATE-TOKEN") != TOKEN:
            self.reply(401, {"message": "401 Unauthorized"})
            return False
        return True

    def do_GET(self):
        if self.path == "/__requests":
            return self.reply(200, REQUESTS)
        pid, query = self.route()
        if pid is None:
            return self.reply(404, {"error": "404 Not Found"})
        REQUESTS.append({"method": "GET", "path": self.path})
        if not self.authorised():
            return
        path, repo = repo_for(pid)
        if repo is None:
            return self.reply(404, {"message": "404 Project Not Found"})
        state = query.get("state", [None])[0]
        source = query.get("source_branch", [None])[0]
        found = [m for m in MRS if m["project"] == path and (state is None or m["state"] == state)
                 and (source is None or m["source_branch"] == source)]
        self.reply(200, [public(m) for m in found])

    def do_POST(self):
        pid, _ = self.route()
        if pid is None:
            return self.reply(404, {"error": "404 Not Found"})
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.reply(400, {"error": "body is not JSON"})
        REQUESTS.append({"method": "POST", "path": self.path, "body": body})
        if not self.authorised():
            return
        path, repo = repo_for(pid)
        if repo is None:
            return self.reply(404, {"message": "404 Project Not Found"})
        for field in ("source_branch", "target_branch", "title"):
            if not body.get(field):
                return self.reply(400, {"error": f"{field} is missing"})
        for field in ("source_branch", "target_branch"):
            if not branch_exists(repo, body[field]):
                return self.reply(400, {"message": [f"{field.split('_')[0].capitalize()} branch \"{body[field]}\" does not exist"]})
        for m in MRS:
            if m["project"] == path and m["state"] == "opened" and m["source_branch"] == body["source_branch"]:
                return self.reply(409, {"message": [f"Another open merge request already exists for this source branch: !{m['iid']}"]})
        iid = 1 + sum(1 for m in MRS if m["project"] == path)
        host = self.headers.get("Host", "gitlab.example.com")
        mr = {"id": 1000 + len(MRS), "iid": iid, "project": path, "title": body["title"],
              "description": body.get("description", ""), "state": "opened",
              "source_branch": body["source_branch"], "target_branch": body["target_branch"],
              "web_url": f"http://{host}/{path}/-/merge_requests/{iid}"}
        MRS.append(mr)
        self.reply(201, public(mr))


def public(m):
    return {k: v for k, v in m.items() if k != "project"}


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.serve_forever()
