"""The ``vigil`` command line."""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Annotated, NoReturn

import typer

from core.loadgen.command import loadgen as loadgen_command
from core.settings import Settings, SettingsError, load_settings
from dashboards.push import grafana_app
from sidecar.cli import canary as canary_command
from sidecar.cli import sidecar as sidecar_command
from sidecar.cli import slo_app

app = typer.Typer(
    help="Vigil: a reliable, observable chat backend for AI agents.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("sidecar")(sidecar_command)
app.command("canary")(canary_command)
app.command("loadgen")(loadgen_command)
app.add_typer(slo_app, name="slo")
app.add_typer(grafana_app, name="grafana")

_TTL = re.compile(r"^(\d+)\s*([smhd]?)$")
_TTL_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"vigil: error: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        fail(str(exc))


def parse_ttl(text: str) -> int:
    match = _TTL.match(text.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a lifetime; use a number with s, m, h or d (e.g. 1h)")
    return int(match.group(1)) * _TTL_UNIT_S[match.group(2)]


@app.command()
def token(
    user: Annotated[str, typer.Option("--user", help="The user id (the JWT sub claim).")],
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime, e.g. 30m, 1h, 7d.")] = "1h",
) -> None:
    """Print a token signed with the configured key (the dev key on the embedded default)."""
    from core.auth import issue_token

    settings = settings_or_exit()
    if settings.jwt_public_key:
        fail("VIGIL_JWT_PUBLIC_KEY is set: tokens are issued by your identity provider")
    try:
        ttl_s = parse_ttl(ttl)
    except ValueError as exc:
        fail(f"--ttl: {exc}")
    typer.echo(issue_token(settings, user, ttl_s=ttl_s))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration to VIGIL_DATABASE_URL."""
    from core.db import migrate
    from core.db.errors import DatabaseError

    settings = settings_or_exit()
    try:
        migrate.upgrade(settings.database_url)
    except DatabaseError as exc:
        fail(f"VIGIL_DATABASE_URL: migration failed ({exc.category})")
    typer.echo(f"database at revision {migrate.head_revision()}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
) -> None:
    """Run the backend."""
    from core.server import run_backend
    from core.startup import check_startup

    settings = settings_or_exit(**_address(host, port))
    try:
        asyncio.run(check_startup(settings))
    except SettingsError as exc:
        fail(str(exc))
    run_backend(settings)


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
) -> None:
    """Migrate the embedded database and run the backend with its sidecar (what `make run` does)."""
    from core.db import migrate
    from core.db.errors import DatabaseError
    from core.server import run_with_sidecar
    from core.startup import check_startup

    settings = settings_or_exit(**_address(host, port))
    try:
        migrate.upgrade(settings.database_url)
        asyncio.run(check_startup(settings))
    except DatabaseError as exc:
        fail(f"VIGIL_DATABASE_URL: migration failed ({exc.category})")
    except SettingsError as exc:
        fail(str(exc))
    run_with_sidecar(settings)


def _address(host: str | None, port: int | None) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    return overrides


def main() -> None:
    sys.exit(app())
