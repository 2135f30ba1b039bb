"""``vigil grafana push``: create the Vigil folder and upsert every dashboard, idempotently.

The dashboards pushed are the committed ``dashboards/*.json``; the folder's uid and title are
those of the provisioning provider (both generated from alerts/config.yaml). A dashboard already
in the folder with the same content is left alone, so a second push changes no version.

Every failure becomes one ``PushError`` line, translated once at this boundary::

    PushError           the URL is not http(s), the server is unreachable or not a Grafana,
                        the token is refused, or Grafana refused or failed a request

This module imports only typer at load time, so registering it in ``vigil`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote, urlsplit

import typer

DIR = Path(__file__).resolve().parent
PROVIDER_FILE = DIR / "provisioning" / "dashboards" / "vigil.yaml"
# Fields Grafana adds to a stored dashboard; they never make two dashboards differ.
STORED_FIELDS = ("id", "version")
_T = TypeVar("_T")

grafana_app = typer.Typer(help="Grafana dashboards.", no_args_is_help=True)


class PushError(Exception):
    """A push that could not be done, with a message that fits on one line."""


@dataclass
class PushReport:
    folder_created: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def committed_dashboards(directory: Path = DIR) -> dict[str, dict[str, Any]]:
    """The committed dashboard JSON by uid."""
    import json

    documents = [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))
    ]
    return {document["uid"]: document for document in documents}


def folder_of_provider(path: Path = PROVIDER_FILE) -> tuple[str, str]:
    """The (uid, title) of the folder the provisioning provider puts the dashboards in."""
    import yaml

    provider = yaml.safe_load(path.read_text(encoding="utf-8"))["providers"][0]
    return provider["folderUid"], provider["folder"]


def connect(url: str, token: str | None, timeout: float) -> Any:
    """A ``GrafanaApi`` for ``url`` (``http(s)://[user:password@]host[:port][/prefix]``)."""
    from grafana_client import GrafanaApi

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"--url: {url!r} is not an http(s) URL like http://localhost:3000")
    try:
        port = parts.port
    except ValueError as exc:
        raise PushError(f"--url: {url!r} has an invalid port") from exc
    credential: Any = token
    if credential is None and parts.username:
        credential = (unquote(parts.username), unquote(parts.password or ""))
    prefix = parts.path.strip("/")
    return GrafanaApi(
        credential,
        host=parts.hostname,
        port=port,
        url_path_prefix=f"{prefix}/" if prefix else "",
        protocol=parts.scheme,
        timeout=timeout,
    )


def _call(url: str, what: str, request: Callable[[], _T]) -> _T:
    """Run one API request, translating every failure into a one-line ``PushError``."""
    import requests
    from grafana_client.client import (
        GrafanaClientError,
        GrafanaServerError,
        GrafanaUnauthorizedError,
    )

    try:
        return request()
    except GrafanaUnauthorizedError as exc:
        raise PushError(
            f"Grafana at {url} refused the credentials (401 Unauthorized): check --token"
        ) from exc
    except GrafanaClientError as exc:
        if exc.status_code == 403:
            raise PushError(
                f"Grafana at {url} refused to {what} (403 Forbidden): the token needs the "
                "Editor role or folder and dashboard write permissions"
            ) from exc
        raise PushError(f"Grafana at {url} refused to {what}: {_one_line(exc.message)}") from exc
    except GrafanaServerError as exc:
        raise PushError(f"Grafana at {url} failed to {what}: {_one_line(exc.message)}") from exc
    except requests.exceptions.Timeout as exc:
        raise PushError(f"Grafana at {url} did not answer in time ({what})") from exc
    except requests.exceptions.ConnectionError as exc:
        raise PushError(f"cannot reach Grafana at {url}: {_reason(exc)}") from exc
    except (requests.exceptions.RequestException, ValueError) as exc:
        raise PushError(f"Grafana at {url}: cannot {what}: {_one_line(str(exc))}") from exc


def _reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "No route to host"):
        if known in text:
            return known.lower()
    return _one_line(text)


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _check_grafana(api: Any, url: str) -> None:
    """``/api/health`` answers JSON with a ``database`` field on every Grafana."""
    from grafana_client.client import GrafanaClientError

    try:
        health = _call(url, "report its health", api.health.check)
    except PushError as exc:
        cause = exc.__cause__
        if isinstance(cause, GrafanaClientError) and cause.status_code == 404:
            raise PushError(
                f"no Grafana API at {url} (404 on {url.rstrip('/')}/api/health): check --url"
            ) from cause
        raise
    if not isinstance(health, dict) or "database" not in health:
        raise PushError(f"{url} does not answer like a Grafana (/api/health): check --url")


def _missing(url: str, what: str, request: Callable[[], _T]) -> _T | None:
    """The answer of a GET, or None when Grafana says 404 (not found)."""
    from grafana_client.client import GrafanaClientError

    try:
        return _call(url, what, request)
    except PushError as exc:
        cause = exc.__cause__
        if isinstance(cause, GrafanaClientError) and cause.status_code == 404:
            return None
        raise


def _same(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    def strip(document: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in document.items() if k not in STORED_FIELDS}

    return strip(stored) == strip(wanted)


def push(
    api: Any,
    url: str,
    folder: tuple[str, str],
    documents: Mapping[str, Mapping[str, Any]],
) -> PushReport:
    """Create the folder if missing, then create or update each dashboard that differs."""
    folder_uid, folder_title = folder
    if not documents:
        raise PushError(f"no dashboards to push in {DIR} (run python -m dashboards.build)")
    report = PushReport()
    _check_grafana(api, url)
    existing = _missing(url, "read the folder", lambda: api.folder.get_folder(folder_uid))
    if existing is None:
        _call(url, "create the folder", lambda: api.folder.create_folder(folder_title, folder_uid))
        report.folder_created = True
    elif existing.get("title") != folder_title:
        _call(
            url,
            "rename the folder",
            lambda: api.folder.update_folder(folder_uid, title=folder_title, overwrite=True),
        )
    for uid, document in documents.items():
        stored = _missing(url, f"read dashboard {uid}", partial(api.dashboard.get_dashboard, uid))
        if stored is not None:
            in_folder = stored.get("meta", {}).get("folderUid") == folder_uid
            if in_folder and _same(stored["dashboard"], document):
                report.unchanged.append(uid)
                continue
        body = {
            "dashboard": {**document, "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "vigil grafana push",
        }
        _call(url, f"save dashboard {uid}", partial(api.dashboard.update_dashboard, body))
        (report.created if stored is None else report.updated).append(uid)
    return report


@grafana_app.command("push")
def push_command(
    url: Annotated[
        str,
        typer.Option("--url", envvar="VIGIL_GRAFANA_URL", help="Grafana's base URL."),
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="VIGIL_GRAFANA_TOKEN",
            help="A service-account token (Editor); or put user:password in the URL.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each request.")] = 10.0,
) -> None:
    """Create the Vigil folder in Grafana and create or update every Vigil dashboard."""
    try:
        api = connect(url, token, timeout)
        folder = folder_of_provider()
        report = push(api, url, folder, committed_dashboards())
    except PushError as exc:
        typer.echo(f"vigil: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if report.folder_created:
        typer.echo(f"folder {folder[1]!r} ({folder[0]}) created")
    for state, uids in (
        ("created", report.created),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
    ):
        for uid in uids:
            typer.echo(f"{state}: {uid}")
    typer.echo(
        f"{len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged in folder {folder[0]}"
    )
