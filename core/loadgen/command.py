"""``vigil loadgen``: N concurrent simulated chat users against a running backend, with a
progress display and a summary (also as JSON). Imports stay light until the command runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def loadgen(  # noqa: PLR0917 - typer: one parameter per option
    users: Annotated[int, typer.Option("--users", min=1, help="Concurrent chat users.")] = 10,
    runs: Annotated[int, typer.Option("--runs", min=1, help="Runs per user.")] = 10,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.1, help="Stop starting runs after this many seconds."),
    ] = None,
    url: Annotated[str, typer.Option("--url", help="The backend's WebSocket URL.")] = (
        "ws://127.0.0.1:8000/ws"
    ),
    text: Annotated[str, typer.Option("--text", help="What each user asks.")] = (
        "What is 17 * 23?"
    ),
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for a run's next frame.")
    ] = 30.0,
    think: Annotated[
        float,
        typer.Option(
            "--think",
            min=0.0,
            help="Mean seconds a user pauses before each chat (uniform from 0 to twice it); "
            "0 sends each chat as soon as the last one completed.",
        ),
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load the backend with simulated chat users (tokens signed with the VIGIL_JWT_* settings)."""
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from core.auth import issue_token
    from core.heap import settle_heap
    from core.loadgen.report import summary_table
    from core.loadgen.stats import Recorder
    from core.loadgen.users import LoadSpec, run_load
    from core.settings import SettingsError, load_token_settings

    try:
        settings = load_token_settings()
    except SettingsError as exc:
        typer.echo(f"vigil: error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if settings.jwt_public_key:
        typer.echo(
            "vigil: error: VIGIL_JWT_PUBLIC_KEY is set: loadgen signs its own tokens and needs "
            "VIGIL_JWT_SECRET",
            err=True,
        )
        raise typer.Exit(2)
    spec = LoadSpec(
        ws_url=url, users=users, runs_per_user=runs, duration_s=duration, text=text,
        run_timeout_s=timeout, think_s=think,
    )  # fmt: skip
    recorder = Recorder()
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=as_json,
    )
    # Its own full collections would be counted as the backend's latency.
    settle_heap()
    with progress:
        task = progress.add_task(f"{users} users", total=users * runs)
        summary = asyncio.run(
            run_load(
                spec,
                lambda user: issue_token(settings, user),
                recorder,
                on_run=lambda: progress.update(task, completed=recorder.runs_finished),
            )
        )
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        Console().print(summary_table(summary))
    if summary.runs_completed == 0:
        raise typer.Exit(1)
