"""A small HTTP server on 127.0.0.1 that answers like the Hugging Face Hub, so the real huggingface_hub code runs.

Supports what the project uses: file resolve (HEAD/GET with X-Repo-Commit, ETag, sizes, error codes),
create_repo, preupload (every file 'regular') and NDJSON commits. Not a Hub: no auth model beyond an
optional required token, no LFS/xet, one revision ('main').
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class FakeHub:
    """State: {repo_id: {path: bytes}}; `requests` records (method, path) for assertions."""

    def __init__(self, required_token: str | None = None):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.required_token = required_token
        self.auth: list[str | None] = []   # the Authorization header of every request, in order
        self.corrupt: set[tuple[str, str]] = set()  # (repo, path) served with damaged bytes
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_file(self, repo_id: str, path: str, data: bytes) -> None:
        self.repos.setdefault(repo_id, {})[path] = data
        self._bump(repo_id)

    def _bump(self, repo_id: str) -> None:
        blob = json.dumps(sorted((p, hashlib.sha256(d).hexdigest()) for p, d in self.repos[repo_id].items()))
        self.commits[repo_id] = hashlib.sha1(blob.encode()).hexdigest()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, code: int, obj, headers: dict | None = None):
        self._send(code, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, code: int, error_code: str, msg: str, head: bool = False):
        body = json.dumps({"error": msg}).encode()
        self._send(code, body, {"Content-Type": "application/json", "X-Error-Code": error_code,
                                "X-Error-Message": msg}, head=head)

    def _authorized(self) -> bool:
        tok = self.hub.required_token
        return tok is None or self.headers.get("Authorization") == f"Bearer {tok}"

    def _resolve(self, head: bool):
        path = unquote(urlparse(self.path).path).lstrip("/")
        if "/resolve/" not in path:
            return self._error(404, "EntryNotFound", "not found", head)
        repo_id, rest = path.split("/resolve/", 1)
        for prefix in ("models/",):
            repo_id = repo_id[len(prefix):] if repo_id.startswith(prefix) else repo_id
        revision, _, filename = rest.partition("/")
        files = self.hub.repos.get(repo_id)
        if files is None:
            return self._error(401, "RepoNotFound", f"Repository {repo_id} not found", head)
        if revision not in ("main", self.hub.commits.get(repo_id)):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        if filename not in files:
            return self._error(404, "EntryNotFound", f"{filename} does not exist", head)
        data = files[filename]
        if (repo_id, filename) in self.hub.corrupt:
            data = data[: len(data) // 2]  # truncated on the wire
        etag = hashlib.sha256(files[filename]).hexdigest()
        self._send(200, data, {"X-Repo-Commit": self.hub.commits[repo_id], "ETag": f'"{etag}"',
                               "Content-Type": "application/octet-stream"}, head=head)

    def do_HEAD(self):
        self.hub.requests.append(("HEAD", self.path))
        self.hub.auth.append(self.headers.get("Authorization"))
        self._resolve(head=True)

    def do_GET(self):
        self.hub.requests.append(("GET", self.path))
        self.hub.auth.append(self.headers.get("Authorization"))
        self._resolve(head=False)

    def do_POST(self):
        self.hub.requests.append(("POST", self.path))
        self.hub.auth.append(self.headers.get("Authorization"))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not self._authorized():
            return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        path = urlparse(self.path).path
        if path == "/api/repos/create":
            req = json.loads(body or b"{}")
            repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            self.hub.repos.setdefault(repo_id, {})
            self.hub._bump(repo_id)
            return self._json(200, {"url": f"{self.hub.endpoint}/{repo_id}", "name": repo_id, "id": repo_id})
        if path == "/api/validate-yaml":  # model cards are validated before a commit that adds README.md
            return self._json(200, {"errors": [], "warnings": []})
        if path.startswith("/api/models/") and "/preupload/" in path:
            req = json.loads(body or b"{}")
            return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                              for f in req.get("files", [])]})
        if path.startswith("/api/models/") and "/commit/" in path:
            repo_id = path[len("/api/models/"):].split("/commit/")[0]
            if repo_id not in self.hub.repos:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            for line in body.decode().splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                if item.get("key") == "file":
                    v = item["value"]
                    self.hub.repos[repo_id][v["path"]] = base64.b64decode(v["content"])
                elif item.get("key") == "deletedFile":
                    self.hub.repos[repo_id].pop(item["value"]["path"], None)
            self.hub._bump(repo_id)
            oid = self.hub.commits[repo_id]
            return self._json(200, {"commitUrl": f"{self.hub.endpoint}/{repo_id}/commit/{oid}", "commitOid": oid,
                                    "pullRequestUrl": None})
        return self._error(404, "NotFound", f"fake hub does not implement POST {path}")
