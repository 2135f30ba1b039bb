"""Counter samples, kept in a small SQLite file so a restart loses no window.

Each *track* (the good or the total side of an SLO, or a counter a success criterion reads)
is the sum of the counter series its selectors match. Series are made monotonic one by one
before they are summed, the way Prometheus' ``increase()`` treats them:

- a series seen for the first time contributes 0 from that sample on (Prometheus counts a
  series' increase from its first sample in the range, never its first value);
- a value lower than the series' previous one is a counter reset: the previous value is kept
  as an offset, so the new value counts in full;
- a series that goes missing keeps contributing its last value (the sum never goes down).

The store then keeps one row (track, ts, monotonic sum) per scrape. The increase of a track over
``(start, end]`` is the last row minus the first row in that range: a plain difference, no
extrapolation to the window's edges. Rows older than the retention are deleted; rows older than
``full_resolution_s`` (3 days, the longest alert window) are thinned to one per ``coarse_step_s``.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sidecar import SidecarError

FULL_RESOLUTION_S = 3 * 86400.0
COARSE_STEP_S = 300.0
COMPACT_EVERY_S = 600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (track TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS samples_by_track_ts ON samples (track, ts);
CREATE TABLE IF NOT EXISTS series (
    track TEXT NOT NULL, series TEXT NOT NULL, last_raw REAL NOT NULL, offset REAL NOT NULL,
    PRIMARY KEY (track, series)
);
"""


class StoreError(SidecarError):
    """The sample store could not be read or written."""


@dataclass(frozen=True)
class SeriesState:
    last_raw: float
    offset: float

    @property
    def adjusted(self) -> float:
        return self.last_raw + self.offset


def advance(state: SeriesState | None, raw: float) -> SeriesState:
    """The next state of one counter series given its newly scraped raw value."""
    if state is None:
        return SeriesState(raw, -raw)
    if raw < state.last_raw:
        return SeriesState(raw, state.offset + state.last_raw)
    return SeriesState(raw, state.offset)


class SampleStore:
    def __init__(
        self,
        path: Path | str,
        retention_s: float,
        *,
        full_resolution_s: float = FULL_RESOLUTION_S,
        coarse_step_s: float = COARSE_STEP_S,
    ) -> None:
        self.path = str(path)
        self.retention_s = retention_s
        self.full_resolution_s = full_resolution_s
        self.coarse_step_s = coarse_step_s
        self._last_compaction = -math.inf
        try:
            # Built by the app factory, used by the event loop's thread: one user at a time.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            rows = self._db.execute("SELECT track, series, last_raw, offset FROM series")
            self._series: dict[tuple[str, str], SeriesState] = {
                (track, key): SeriesState(last, offset) for track, key, last, offset in rows
            }
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the sample store ({exc})") from exc

    def record(self, ts: float, tracks: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        """Add one scrape: for each track, the raw value of every series it matched."""
        changed: list[tuple[str, str, float, float]] = []
        for track, series in tracks.items():
            for key, raw in series.items():
                if not math.isfinite(raw):
                    continue
                state = advance(self._series.get((track, key)), raw)
                self._series[(track, key)] = state
                changed.append((track, key, state.last_raw, state.offset))
        values = {track: self._track_value(track) for track in tracks}
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT OR REPLACE INTO series (track, series, last_raw, offset) "
                    "VALUES (?, ?, ?, ?)",
                    changed,
                )
                self._db.executemany(
                    "INSERT INTO samples (track, ts, value) VALUES (?, ?, ?)",
                    [(track, ts, value) for track, value in values.items()],
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot write samples ({exc})") from exc
        if ts - self._last_compaction >= COMPACT_EVERY_S:
            self.compact(ts)
        return values

    def window(
        self, track: str, start: float, end: float
    ) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The first and last (ts, value) with start < ts <= end; None under two samples."""
        query = "SELECT ts, value FROM samples WHERE track = ? AND ts > ? AND ts <= ? ORDER BY ts"
        try:
            first = self._db.execute(f"{query} ASC LIMIT 1", (track, start, end)).fetchone()
            last = self._db.execute(f"{query} DESC LIMIT 1", (track, start, end)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read samples ({exc})") from exc
        if first is None or last is None or first[0] >= last[0]:
            return None
        return (first[0], first[1]), (last[0], last[1])

    def increase(self, track: str, start: float, end: float) -> float | None:
        bounds = self.window(track, start, end)
        return None if bounds is None else bounds[1][1] - bounds[0][1]

    def compact(self, now: float) -> None:
        """Delete rows past the retention; thin rows past full resolution to one per step."""
        horizon = now - self.full_resolution_s
        try:
            with self._transaction():
                self._db.execute("DELETE FROM samples WHERE ts <= ?", (now - self.retention_s,))
                self._db.execute(
                    "DELETE FROM samples WHERE ts < ? AND rowid NOT IN ("
                    " SELECT MIN(rowid) FROM samples WHERE ts < ?"
                    " GROUP BY track, CAST(ts / ? AS INTEGER))",
                    (horizon, horizon, self.coarse_step_s),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot compact samples ({exc})") from exc
        self._last_compaction = now

    def count(self, track: str | None = None) -> int:
        if track is None:
            row = self._db.execute("SELECT COUNT(*) FROM samples").fetchone()
        else:
            row = self._db.execute("SELECT COUNT(*) FROM samples WHERE track = ?", (track,))
            row = row.fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()

    def _track_value(self, track: str) -> float:
        return sum(state.adjusted for (name, _), state in self._series.items() if name == track)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
