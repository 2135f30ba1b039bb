"""Finding the backend's process: a pid, a PID file, a process name, or the local listener.

Tried in that order, the first that is given wins: an explicit pid; a PID file; a process
whose name or command line contains the given text (in a pod with a shared process namespace
the backend is visible this way); failing all of those, the process listening on the target
URL's port when that URL is on this host (the embedded default).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil

from sidecar import SidecarError

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})  # noqa: S104


class TargetNotFound(SidecarError):
    """No process matches how the backend was to be found."""


@dataclass(frozen=True)
class TargetSpec:
    pid: int | None = None
    pid_file: Path | None = None
    name: str | None = None
    listen_host: str | None = None
    listen_port: int | None = None

    def describe(self) -> str:
        if self.pid is not None:
            return f"pid {self.pid}"
        if self.pid_file is not None:
            return f"PID file {self.pid_file}"
        if self.name:
            return f"process name {self.name!r}"
        return f"listener on port {self.listen_port}"


def find_target(spec: TargetSpec) -> psutil.Process:
    if spec.pid is not None:
        return _process(spec.pid, spec.describe())
    if spec.pid_file is not None:
        try:
            pid = int(spec.pid_file.read_text().strip())
        except (OSError, ValueError) as exc:
            raise TargetNotFound(f"{spec.pid_file}: no pid to read ({exc})") from exc
        return _process(pid, spec.describe())
    if spec.name:
        return _by_name(spec.name)
    if spec.listen_port is not None and (spec.listen_host or "127.0.0.1") in LOCAL_HOSTS:
        return _by_listener(spec.listen_port)
    raise TargetNotFound("no pid, PID file, process name or local target URL to find it by")


def _process(pid: int, how: str) -> psutil.Process:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            raise TargetNotFound(f"{how}: process {pid} has exited")
    except (psutil.NoSuchProcess, psutil.AccessDenied) as exc:
        raise TargetNotFound(f"{how}: no process {pid} to watch ({exc})") from exc
    return process


def _by_name(name: str) -> psutil.Process:
    own = psutil.Process().pid
    for process in psutil.process_iter(["pid", "name", "cmdline"]):
        info = process.info
        if info["pid"] == own:
            continue
        command = " ".join(info.get("cmdline") or [])
        if name == info.get("name") or name in command:
            return process
    raise TargetNotFound(f"no process named {name!r}")


def _by_listener(port: int) -> psutil.Process:
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied as exc:
        raise TargetNotFound(f"cannot list sockets to find the listener on {port}") from exc
    for conn in connections:
        listening = conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
        if listening and conn.pid is not None:
            return _process(conn.pid, f"listener on port {port}")
    raise TargetNotFound(f"no process listens on port {port}")
