"""A tiny loopback hub for tests: the part of the Hugging Face Hub HTTP API that
huggingface_hub.snapshot_download uses (see shared/reference/hub-protocol.md), for one dataset repo.

    with HubServer("owner/name", {"a/b.ply": b"..."}) as hub:
        env["HF_ENDPOINT"] = hub.endpoint

Knobs for failure tests: `cut_once` ({path: n}: the first GET of path promises the whole file, sends
n bytes and drops the connection; a later Range request is answered 206), `fail_tree` (an HTTP status the tree
listing answers with instead, e.g. 404 as from a mirror without
that API; huggingface_hub then falls back quietly to a local copy).
`requests` logs (method, path, Range header, Authorization header) of every request.
Binds to 127.0.0.1 only.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


class HubServer:
    def __init__(self, repo_id: str, files: dict[str, bytes], repo_type: str = "dataset") -> None:
        self.repo_id = repo_id
        self.repo_type = repo_type
        self.cut_once: dict[str, int] = {}
        self.fail_tree: int | None = None
        self.requests: list[tuple[str, str, str | None, str | None]] = []
        self._lock = threading.Lock()
        self.set_files(files)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- repository content -------------------------------------------------------------------------
    def set_files(self, files: dict[str, bytes]) -> None:
        """Replace the repo content; the commit hash changes with it (like a new push)."""
        self.files = dict(files)
        digest = hashlib.sha1()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + self.files[path])
        self.sha = digest.hexdigest()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def seen(self, method: str | None = None, path_part: str = "", with_range: bool | None = None):
        with self._lock:
            return [r for r in self.requests if (method is None or r[0] == method) and path_part in r[1]
                    and (with_range is None or (r[2] is not None) == with_range)]

    # -- HTTP ---------------------------------------------------------------------------------------
    def _handler_class(self):
        hub = self
        api = f"/api/{hub.repo_type}s/{hub.repo_id}"
        resolve = re.compile(rf"^/{hub.repo_type}s/{re.escape(hub.repo_id)}/resolve/([^/]+)/(.+)$")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _record(self) -> str:
                path = unquote(urlsplit(self.path).path)
                with hub._lock:
                    hub.requests.append((self.command, path, self.headers.get("Range"),
                                         self.headers.get("Authorization")))
                return path

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                      head_only: bool = False) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head_only:
                    self.wfile.write(body)

            def _json(self, status: int, obj) -> None:
                self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})

            def _not_found(self) -> None:
                self._json(404, {"error": "not found"})

            def do_GET(self) -> None:
                self._serve(head_only=False)

            def do_HEAD(self) -> None:
                self._serve(head_only=True)

            def _serve(self, head_only: bool) -> None:
                path = self._record()
                if path.startswith("/api/") and not path.startswith(f"{api}/"):
                    return self._send(404, b'{"error": "Repository not found"}',
                                      {"X-Error-Code": "RepoNotFound", "Content-Type": "application/json"})
                if path.startswith(f"{api}/revision/"):
                    if path.rsplit("/", 1)[1] not in ("main", hub.sha):
                        return self._send(404, b'{"error": "Revision not found"}',
                                          {"X-Error-Code": "RevisionNotFound", "Content-Type": "application/json"})
                    siblings = [{"rfilename": p} for p in sorted(hub.files)]
                    return self._json(200, {"id": hub.repo_id, "sha": hub.sha, "siblings": siblings})
                if path.startswith(f"{api}/tree/"):
                    if hub.fail_tree:
                        return self._json(hub.fail_tree, {"error": "unavailable"})
                    tree = [{"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                            for p, b in sorted(hub.files.items())]
                    return self._json(200, tree)
                match = resolve.match(path)
                if match is None or match.group(2) not in hub.files:
                    return self._not_found()
                rel = match.group(2)
                body = hub.files[rel]
                headers = {"X-Repo-Commit": hub.sha, "ETag": f'"{hashlib.sha256(body).hexdigest()}"',
                           "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
                if head_only:
                    return self._send(200, body, headers, head_only=True)
                rng = self.headers.get("Range")
                if rng:
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                    headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                    return self._send(206, body[start:], headers)
                with hub._lock:
                    cut = hub.cut_once.pop(rel, None)
                if cut is not None:  # promise the whole file, send `cut` bytes, drop the connection
                    self.send_response(200)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                return self._send(200, body, headers)

        return Handler
