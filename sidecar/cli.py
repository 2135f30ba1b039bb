"""The sidecar's commands, mounted into `vigil` (`vigil sidecar`, `vigil slo report`,
`vigil canary --once`) and runnable alone as `python -m sidecar`."""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

DEFAULT_TARGET = "http://127.0.0.1:8000"
DEFAULT_SIDECAR = "http://127.0.0.1:9100"


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


app = typer.Typer(help="Vigil's reliability sidecar.", no_args_is_help=True)
slo_app = typer.Typer(help="Service level objectives.", no_args_is_help=True)
app.add_typer(slo_app, name="slo")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"vigil: error: {message}", err=True)
    raise typer.Exit(code)


def sidecar(  # noqa: PLR0917 - typer: one parameter per option
    port: Annotated[int, typer.Option(help="Port of the sidecar's own HTTP server.")] = 9100,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    target_url: Annotated[str, typer.Option(help="The backend to watch.")] = DEFAULT_TARGET,
    slo_file: Annotated[
        Path | None, typer.Option(help="SLO YAML file (default: the shipped SLOs).")
    ] = None,
    state_dir: Annotated[
        Path, typer.Option(help="Where the SLO samples are kept across restarts.")
    ] = Path(".vigil/sidecar"),
    scrape_interval: Annotated[float, typer.Option(help="Seconds between scrapes.")] = 15.0,
    probe_interval: Annotated[float, typer.Option(help="Seconds between probes.")] = 5.0,
    canary_interval: Annotated[float, typer.Option(help="Seconds between canary runs.")] = 30.0,
    memory_interval: Annotated[float, typer.Option(help="Seconds between RSS samples.")] = 5.0,
    target_pid: Annotated[int | None, typer.Option(help="The backend's pid.")] = None,
    target_pid_file: Annotated[Path | None, typer.Option(help="A file holding its pid.")] = None,
    target_name: Annotated[
        str | None, typer.Option(help="Text in its process name or command line.")
    ] = None,
    memory_limit: Annotated[
        int | None,
        typer.Option(
            envvar="VIGIL_TARGET_MEMORY_LIMIT",
            help="The backend's memory limit in bytes (default: read from its cgroup).",
        ),
    ] = None,
    drain_on_critical: Annotated[
        bool, typer.Option(help="Ask the backend to drain when its memory is critical.")
    ] = False,
) -> None:
    """Run the sidecar beside a backend (status page, /metrics and /slo on --port)."""
    import uvicorn

    from core.settings import SettingsError
    from sidecar.app import create_app, default_tokens
    from sidecar.memory.target import TargetSpec
    from sidecar.runner import SidecarConfig
    from sidecar.slo.spec import SpecError, load_slos

    try:
        load_slos(slo_file)
    except SpecError as exc:
        fail(f"--slo-file: {exc}")
    intervals = {
        "--scrape-interval": scrape_interval,
        "--probe-interval": probe_interval,
        "--canary-interval": canary_interval,
        "--memory-interval": memory_interval,
    }
    for name, value in intervals.items():
        if value <= 0:
            fail(f"{name}: must be a positive number of seconds (got {value})")
    if memory_limit is not None and memory_limit <= 0:
        fail(f"--memory-limit: must be a positive number of bytes (got {memory_limit})")
    try:
        tokens = default_tokens()
    except SettingsError as exc:
        fail(str(exc))
    config = SidecarConfig(
        target_url=target_url,
        slo_file=slo_file,
        state_dir=state_dir,
        scrape_interval_s=scrape_interval,
        probe_interval_s=probe_interval,
        canary_interval_s=canary_interval,
        memory_interval_s=memory_interval,
        memory_target=TargetSpec(pid=target_pid, pid_file=target_pid_file, name=target_name),
        memory_limit_bytes=memory_limit,
        drain_on_critical=drain_on_critical,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, tokens=tokens),
            host=host,
            port=port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            # The sidecar serves a few requests a minute, none of them WebSocket, and makes a few
            # of its own: the stdlib event loop and h11 (loaded by httpx anyway) do, and leaving
            # out uvloop, httptools and uvicorn's WebSocket stack saves some 3 MiB of its 80 MB.
            loop="asyncio",
            http="h11",
            ws="none",
        )
    )
    server.run()


def canary(
    once: Annotated[bool, typer.Option("--once", help="Run one canary and exit.")] = False,
    target_url: Annotated[str, typer.Option(help="The backend to test.")] = DEFAULT_TARGET,
    deadline: Annotated[float, typer.Option(help="Seconds for the whole run.")] = 15.0,
) -> None:
    """Run the synthetic canary chat and print each phase (exit 1 when it fails)."""
    from core.settings import SettingsError
    from sidecar.app import default_tokens
    from sidecar.canary.run import run_canary

    if not once:
        fail("use --once (the sidecar runs the canary on an interval: `vigil sidecar`)")
    try:
        tokens = default_tokens()
    except SettingsError as exc:
        fail(str(exc))
    if tokens is None:
        fail("VIGIL_JWT_PUBLIC_KEY is set: give the canary a token in VIGIL_CANARY_TOKEN")
    ws_url = target_url.rstrip("/").replace("http", "ws", 1) + "/ws"
    result = asyncio.run(run_canary(ws_url, tokens(), deadline_s=deadline))
    for phase, seconds in result.phases.items():
        typer.echo(f"{phase:<16} {seconds * 1000:9.1f} ms")
    typer.echo(f"{result.outcome} (phase: {result.phase}): {result.detail}")
    raise typer.Exit(0 if result.ok else 1)


@slo_app.command("report")
def report(
    format: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = (
        ReportFormat.table
    ),
    sidecar_url: Annotated[
        str, typer.Option(help="The running sidecar to read /slo from.")
    ] = DEFAULT_SIDECAR,
) -> None:
    """The success criteria, each with its figure and pass/fail, and the SLOs (exit 1 on a fail)."""
    import httpx

    from sidecar.report import render_markdown, render_table

    try:
        response = httpx.get(sidecar_url.rstrip("/") + "/slo", timeout=5.0)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        fail(f"--sidecar-url: cannot read {sidecar_url}/slo ({exc}); is `vigil sidecar` running?")
    if format is ReportFormat.json:
        typer.echo(json.dumps(document, indent=2))
    elif format is ReportFormat.markdown:
        typer.echo(render_markdown(document))
    else:
        render_table(document)
    failed = any(c["passed"] is False for c in document.get("criteria", []))
    raise typer.Exit(1 if failed else 0)


app.command("run")(sidecar)
app.command("canary")(canary)
