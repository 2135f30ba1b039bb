"""The human-readable summary of a load run (rich)."""

from __future__ import annotations

from rich.table import Table

from core.loadgen.stats import Distribution, Summary

# A user chatting back to back outruns the backend's per-connection limit on a fast machine.
RATE_LIMIT_HINT = (
    "the backend refused chats over its frame rate limit (VIGIL_RATE_LIMIT_PER_S and "
    "VIGIL_RATE_LIMIT_BURST, 20/s and 40 by default): raise them on the backend under test, "
    "or let users pause with --think"
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary_table(summary: Summary) -> Table:
    table = Table(title=f"vigil loadgen: {summary.users} users, {summary.elapsed_s:.1f} s")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("runs completed", str(summary.runs_completed))
    table.add_row("runs not completed", str(summary.runs_not_completed))
    table.add_row("runs/s", f"{summary.runs_per_s:.1f}")
    table.add_row("events/s", f"{summary.events_per_s:.1f}")
    rows: list[tuple[str, Distribution]] = [
        ("chat to agent_completed", summary.run_latency_ms),
        ("emit to receive", summary.delivery_latency_ms),
    ]
    for name, dist in rows:
        table.add_row(
            f"{name} p50/p90/p99/max (ms)",
            " / ".join(_ms(v) for v in (dist.p50, dist.p90, dist.p99, dist.max)),
        )
    for kind, count in sorted(summary.errors.items()):
        table.add_row(f"error: {kind}", str(count))
    if not summary.errors:
        table.add_row("errors", "0")
    if any(kind.endswith(":rate_limited") for kind in summary.errors):
        table.add_row("hint", RATE_LIMIT_HINT)
    return table
