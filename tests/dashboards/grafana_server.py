"""A real HTTP server speaking the part of Grafana's HTTP API that ``vigil grafana push`` uses.

No Grafana binary is available here, so this stands in for one: ``/api/health``, folders by uid
(GET, POST, PUT) and dashboards (GET by uid, POST /api/dashboards/db with Grafana's version and
overwrite rules), Bearer-token authentication answering 401 like Grafana, and 404 for anything
outside ``/api``. State lives in memory so tests can see what was stored and how often.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class GrafanaState:
    token: str
    # A Viewer's token: it may read, and is refused (403) on every write.
    viewer_token: str = "viewer-token"
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        """Quiet: the tests read the state, not the access log."""

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found_page(self) -> None:
        data = b"404 page not found\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(length) or b"{}")

    def _authorised(self, write: bool = False) -> bool:
        given = self.headers.get("Authorization")
        if given == f"Bearer {self.server.state.token}":
            return True
        if given == f"Bearer {self.server.state.viewer_token}":
            if not write:
                return True
            self._send(
                403, {"message": "You'll need additional permissions to perform this action."}
            )
            return False
        self._send(401, {"message": "invalid API key", "statusCode": 401})
        return False

    def do_GET(self) -> None:
        state = self.server.state
        if self.path == "/api/health":
            self._send(200, {"commit": "fake", "database": "ok", "version": "11.6.0"})
            return
        if not self.path.startswith("/api/"):
            self._not_found_page()
            return
        if not self._authorised():
            return
        with self.server.lock:
            if self.path.startswith("/api/folders/"):
                folder = state.folders.get(self.path.removeprefix("/api/folders/"))
                if folder is None:
                    self._send(404, {"message": "folder not found", "status": "not-found"})
                else:
                    self._send(200, folder)
            elif self.path.startswith("/api/dashboards/uid/"):
                stored = state.dashboards.get(self.path.removeprefix("/api/dashboards/uid/"))
                if stored is None:
                    self._send(404, {"message": "Dashboard not found"})
                else:
                    self._send(200, copy.deepcopy(stored))
            else:
                self._not_found_page()

    def do_POST(self) -> None:
        if not self.path.startswith("/api/"):
            self._not_found_page()
            return
        if not self._authorised(write=True):
            return
        body = self._body()
        with self.server.lock:
            if self.path == "/api/folders":
                self._create_folder(body)
            elif self.path == "/api/dashboards/db":
                self._save_dashboard(body)
            else:
                self._not_found_page()

    def do_PUT(self) -> None:
        if not self.path.startswith("/api/"):
            self._not_found_page()
            return
        if not self._authorised(write=True):
            return
        if not self.path.startswith("/api/folders/"):
            self._not_found_page()
            return
        body = self._body()
        with self.server.lock:
            folder = self.server.state.folders.get(self.path.removeprefix("/api/folders/"))
            if folder is None:
                self._send(404, {"message": "folder not found"})
                return
            folder["title"] = body.get("title", folder["title"])
            folder["version"] += 1
            self.server.state.writes.append(f"folder:{folder['uid']}")
            self._send(200, folder)

    def _create_folder(self, body: dict[str, Any]) -> None:
        state = self.server.state
        uid = body.get("uid") or f"generated-{state.next_id}"
        if uid in state.folders:
            self._send(409, {"message": "a folder with the same uid already exists"})
            return
        folder = {"id": state.new_id(), "uid": uid, "title": body["title"], "version": 1}
        state.folders[uid] = folder
        state.writes.append(f"folder:{uid}")
        self._send(200, folder)

    def _save_dashboard(self, body: dict[str, Any]) -> None:
        state = self.server.state
        dashboard = copy.deepcopy(body["dashboard"])
        uid = dashboard["uid"]
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in state.folders:
            self._send(400, {"message": "folder not found", "status": "folder-not-found"})
            return
        stored = state.dashboards.get(uid)
        stale = stored is not None and dashboard.get("version") != stored["dashboard"]["version"]
        if stale and not body.get("overwrite"):
            self._send(412, {"message": "The dashboard has been changed by someone else"})
            return
        version = 1 if stored is None else stored["dashboard"]["version"] + 1
        dashboard_id = state.new_id() if stored is None else stored["dashboard"]["id"]
        dashboard.update({"id": dashboard_id, "version": version})
        state.dashboards[uid] = {
            "dashboard": dashboard,
            "meta": {"folderUid": folder_uid, "version": version, "slug": uid},
        }
        state.writes.append(f"dashboard:{uid}")
        self._send(
            200,
            {
                "id": dashboard_id,
                "uid": uid,
                "status": "success",
                "version": version,
                "url": f"/d/{uid}",
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: GrafanaState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.lock = threading.Lock()


class FakeGrafana:
    """``with FakeGrafana(token) as grafana:`` serves on ``grafana.url`` until the block ends."""

    def __init__(self, token: str) -> None:
        self.state = GrafanaState(token)
        self._server = _Server(self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
