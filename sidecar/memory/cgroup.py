"""The memory limit of a process's container, from its cgroup.

cgroup v2 (``memory.max``; the literal ``max`` means no limit) is read first; a cgroup v1
``memory.limit_in_bytes`` (where a value near 2**63 means no limit) is the fallback on hosts
that still mount it. A limit set on a parent cgroup also binds, so the smallest limit on the
path up to the mount's root wins. Inside a container whose cgroup namespace hides the path,
the mount's root is the container's own cgroup. Anything unreadable means "unknown" (None).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

V2_MOUNTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
V1_MOUNT = Path("/sys/fs/cgroup/memory")
# cgroup v1 reports "no limit" as the largest page-aligned 63-bit value.
V1_UNLIMITED = 2**62


def parse_limit(text: str) -> int | None:
    value = text.strip()
    if not value or value == "max":
        return None
    try:
        limit = int(value)
    except ValueError:
        return None
    return None if limit <= 0 or limit >= V1_UNLIMITED else limit


def cgroup_paths(proc_cgroup: str) -> tuple[str | None, str | None]:
    """The (v2, v1 memory) cgroup paths from the text of /proc/<pid>/cgroup."""
    v2: str | None = None
    v1: str | None = None
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def _limits_up(mount: Path, cgroup: str, filename: str) -> list[int | None] | None:
    """Limits from the process's cgroup up to the root; None when the directory is hidden."""
    relative = PurePosixPath(cgroup).relative_to("/") if cgroup.startswith("/") else cgroup
    directory = mount / relative
    if not (directory / filename).is_file():
        directory = mount
        if not (directory / filename).is_file():
            return None
    limits: list[int | None] = []
    while True:
        try:
            limits.append(parse_limit((directory / filename).read_text()))
        except OSError:
            break
        if directory == mount:
            break
        directory = directory.parent
    return limits


def memory_limit(
    pid: int,
    *,
    proc: Path = Path("/proc"),
    v2_mounts: tuple[Path, ...] = V2_MOUNTS,
    v1_mount: Path = V1_MOUNT,
) -> int | None:
    try:
        v2, v1 = cgroup_paths((proc / str(pid) / "cgroup").read_text())
    except OSError:
        return None
    found: list[int | None] | None = None
    if v2 is not None:
        for mount in v2_mounts:
            if (mount / "cgroup.controllers").is_file():
                found = _limits_up(mount, v2, "memory.max")
                if found is not None:
                    break
    if found is None and v1 is not None:
        found = _limits_up(v1_mount, v1, "memory.limit_in_bytes")
    limits = [limit for limit in found or [] if limit is not None]
    return min(limits) if limits else None
