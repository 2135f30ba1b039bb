"""The backend's instructions per run, counted by callgrind: a figure that, unlike CPU time,
does not move with what else the two cores are doing, so a share of it (the telemetry's) can
be compared between runs and machines' loads.

The backend runs under ``valgrind --tool=callgrind`` with counting off; it is switched on
(``callgrind_control -i on``) for exactly one load, after a warm-up, and off again; callgrind
writes the count when the process exits. Both threads of the backend (the event loop and
the SQLite writer) are counted. Under valgrind the backend runs some 50 times slower, so the
load is small.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.bench.common import BENCH_ENV, run_loadgen
from tests.fixtures.servers import spawn_backend, stop_backend

TOOLS = ("valgrind", "callgrind_control")
# Each of callgrind's output files ends with the events it counted, instructions first.
TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found: install Debian's valgrind")


def instructions_per_run(
    database_url: str, out_dir: Path, env: dict[str, str], users: int, runs: int
) -> float:
    """Instructions the backend executes per completed run of ``users`` x ``runs``."""
    require_tools()
    out_dir.mkdir(parents=True, exist_ok=True)
    wrapper = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_dir / 'callgrind.out'}",
        "--quiet",
    ]
    vigil = spawn_backend(
        database_url, env={**BENCH_ENV, **env}, wrapper=wrapper, startup_timeout_s=300
    )
    try:
        run_loadgen(vigil.ws_url, 5, 2)  # warm-up, not counted
        _callgrind_control("-i", "on", vigil.pid)
        summary = run_loadgen(vigil.ws_url, users, runs, timeout_s=1800)
        _callgrind_control("-i", "off", vigil.pid)
    finally:
        stop_backend(vigil, timeout_s=300)
    done = summary["runs_completed"]
    assert done == users * runs and summary["errors"] == {}, summary
    counted = sum(
        int(match.group(1))
        for path in out_dir.glob("callgrind.out*")
        for match in TOTALS.finditer(path.read_text(errors="replace"))
    )
    assert counted > 0, f"callgrind counted nothing in {out_dir}"
    return counted / done


def _callgrind_control(*args: object) -> None:
    subprocess.run(["callgrind_control", *map(str, args)], check=True, capture_output=True)
