"""`vigil grafana push` against a real HTTP server that speaks Grafana's folder/dashboard API."""

from __future__ import annotations

import copy
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from core.cli import app
from dashboards.push import PushError, committed_dashboards, connect, folder_of_provider, push
from tests.dashboards.grafana_server import FakeGrafana

TOKEN = "glsa_test_token"
DASHBOARDS = committed_dashboards()


@pytest.fixture
def grafana():
    with FakeGrafana(TOKEN) as server:
        yield server


def vigil(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["grafana", "push", *args])
    return result.exit_code, result.stdout, result.stderr


def stored_versions(grafana: FakeGrafana) -> dict[str, int]:
    return {uid: item["dashboard"]["version"] for uid, item in grafana.state.dashboards.items()}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_first_push_creates_the_folder_and_every_dashboard_in_it(grafana):
    code, out, err = vigil("--url", grafana.url, "--token", TOKEN)
    assert code == 0, err
    folder_uid, folder_title = folder_of_provider()
    assert grafana.state.folders[folder_uid]["title"] == folder_title == "Vigil"
    assert set(grafana.state.dashboards) == set(DASHBOARDS)
    assert len(DASHBOARDS) == 5
    for uid, item in grafana.state.dashboards.items():
        assert item["meta"]["folderUid"] == folder_uid
        assert item["dashboard"]["title"] == DASHBOARDS[uid]["title"]
        assert item["dashboard"]["panels"] == DASHBOARDS[uid]["panels"]
    assert "folder 'Vigil' (vigil) created" in out
    assert out.strip().endswith("5 created, 0 updated, 0 unchanged in folder vigil")


def test_a_second_push_changes_nothing(grafana):
    assert vigil("--url", grafana.url, "--token", TOKEN)[0] == 0
    versions, writes = stored_versions(grafana), len(grafana.state.writes)
    code, out, _ = vigil("--url", grafana.url, "--token", TOKEN)
    assert code == 0
    assert stored_versions(grafana) == versions == dict.fromkeys(DASHBOARDS, 1)
    assert len(grafana.state.writes) == writes
    assert len(grafana.state.folders) == 1
    assert len(grafana.state.dashboards) == 5
    assert "0 created, 0 updated, 5 unchanged" in out


def test_a_changed_dashboard_is_updated_in_place_and_the_others_are_left_alone(grafana):
    api = connect(grafana.url, TOKEN, timeout=5)
    folder = folder_of_provider()
    push(api, grafana.url, folder, DASHBOARDS)
    changed = copy.deepcopy(DASHBOARDS)
    uid = next(iter(changed))
    changed[uid]["description"] = "edited"
    report = push(api, grafana.url, folder, changed)
    assert report.updated == [uid]
    assert len(report.unchanged) == 4
    assert not report.folder_created and not report.created
    assert stored_versions(grafana)[uid] == 2
    assert grafana.state.dashboards[uid]["dashboard"]["description"] == "edited"


def test_a_dashboard_moved_out_of_the_folder_is_put_back(grafana):
    api = connect(grafana.url, TOKEN, timeout=5)
    folder = folder_of_provider()
    push(api, grafana.url, folder, DASHBOARDS)
    uid = next(iter(DASHBOARDS))
    grafana.state.dashboards[uid]["meta"]["folderUid"] = ""
    report = push(api, grafana.url, folder, DASHBOARDS)
    assert report.updated == [uid]
    assert grafana.state.dashboards[uid]["meta"]["folderUid"] == folder[0]


def test_a_refused_token_is_one_line_and_exit_1(grafana):
    code, out, err = vigil("--url", grafana.url, "--token", "wrong")
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("vigil: error: ")
    assert "refused the credentials (401 Unauthorized): check --token" in err
    assert grafana.state.writes == [] and out == ""


def test_a_missing_token_is_refused_the_same_way(grafana):
    code, _, err = vigil("--url", grafana.url)
    assert code == 1
    assert "401 Unauthorized" in err and err.count("\n") == 1


def test_a_wrong_url_is_one_line_and_exit_1(grafana):
    url = grafana.url + "/not-grafana"
    code, _, err = vigil("--url", url, "--token", TOKEN)
    assert code == 1
    assert err == f"vigil: error: no Grafana API at {url} (404 on {url}/api/health): check --url\n"
    assert grafana.state.writes == []


def test_an_unreachable_server_is_one_line_and_exit_1():
    url = f"http://127.0.0.1:{closed_port()}"
    code, _, err = vigil("--url", url, "--token", TOKEN, "--timeout", "2")
    assert code == 1
    assert err == f"vigil: error: cannot reach Grafana at {url}: connection refused\n"


def test_a_url_that_is_not_http_is_named_with_the_option():
    code, _, err = vigil("--url", "grafana.example:3000", "--token", TOKEN)
    assert code == 1
    assert err.startswith("vigil: error: --url: 'grafana.example:3000' is not an http(s) URL")
    assert err.count("\n") == 1


def test_a_token_without_write_permission_is_one_line_and_exit_1(grafana):
    code, _, err = vigil("--url", grafana.url, "--token", grafana.state.viewer_token)
    assert code == 1
    assert err == (
        f"vigil: error: Grafana at {grafana.url} refused to create the folder (403 Forbidden): "
        "the token needs the Editor role or folder and dashboard write permissions\n"
    )
    assert grafana.state.folders == {}


def test_nothing_to_push_is_an_error_not_a_silent_success(grafana, tmp_path):
    api = connect(grafana.url, TOKEN, timeout=5)
    with pytest.raises(PushError, match="no dashboards to push"):
        push(api, grafana.url, folder_of_provider(), committed_dashboards(tmp_path))


class _NotGrafana(BaseHTTPRequestHandler):
    """A web server that answers every path with a 200 HTML page, as a proxy or an app might."""

    def do_GET(self) -> None:
        page = b"<html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        """Quiet."""


def test_a_server_that_is_not_grafana_is_named_as_such():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotGrafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code, _, err = vigil("--url", url, "--token", TOKEN)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert code == 1
    assert err == f"vigil: error: {url} does not answer like a Grafana (/api/health): check --url\n"
