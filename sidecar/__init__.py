"""The reliability sidecar: probes, canary, memory watch and SLO tracking beside a backend.

Exceptions raised by this package, all rooted at ``SidecarError``::

    SidecarError
    ├── SpecError          the SLO file is invalid (names the file, the SLO and the field)
    ├── SelectorError      a metric selector does not parse (a SpecError)
    ├── ScrapeError        the backend's /metrics could not be read or parsed
    └── TargetNotFound     no backend process matches the PID file, pid or process name

Third-party errors (httpx, sqlite3, psutil, yaml) are translated at the module that meets them.
"""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]


class SidecarError(Exception):
    """The root of every error the sidecar raises on purpose."""
