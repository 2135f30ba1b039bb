"""SLO tracking: picks each track's series out of a scrape, stores them, evaluates the SLOs.

The glue between the spec (which series), the sample store (their history) and the pure
arithmetic (what they mean). Time comes from the injected clock (wall-clock seconds, since the
samples outlive the process).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sidecar import Clock
from sidecar.slo.math import WHOLE, WINDOWS, Counts, SLOStatus, evaluate
from sidecar.slo.samples import SampleStore
from sidecar.slo.spec import Selector, SLOConfig


@dataclass(frozen=True)
class Sample:
    """One scraped series: sample name (e.g. ``vigil_runs_total``), labels and value."""

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Track:
    name: str
    source: str
    selectors: tuple[Selector, ...]


def series_key(name: str, labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{key}="{labels[key]}"' for key in sorted(labels))
    return f"{name}{{{inner}}}"


def select(selectors: Iterable[Selector], samples: Iterable[Sample]) -> dict[str, float]:
    chosen = tuple(selectors)
    return {
        series_key(s.name, s.labels): s.value
        for s in samples
        if any(sel.matches(s.name, s.labels) for sel in chosen)
    }


class SLOTracker:
    def __init__(
        self,
        config: SLOConfig,
        store: SampleStore,
        clock: Clock,
        extra_tracks: Iterable[Track] = (),
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.tracks: list[Track] = []
        for slo in config.slos:
            self.tracks.append(Track(good_track(slo.name), slo.source, slo.good))
            self.tracks.append(Track(total_track(slo.name), slo.source, slo.total))
        self.tracks.extend(extra_tracks)

    def observe(self, source: str, samples: Iterable[Sample], ts: float | None = None) -> None:
        """Record one scrape of ``source`` ("backend" or "sidecar") at ``ts`` (default: now)."""
        batch = list(samples)
        tracks = {
            track.name: select(track.selectors, batch)
            for track in self.tracks
            if track.source == source
        }
        if tracks:
            self.store.record(self.clock() if ts is None else ts, tracks)

    def counts(self, slo_name: str, start: float, end: float) -> Counts | None:
        good = self.store.window(good_track(slo_name), start, end)
        total = self.store.window(total_track(slo_name), start, end)
        if good is None or total is None:
            return None
        return Counts(good=good[1][1] - good[0][1], total=total[1][1] - total[0][1])

    def evaluate(self) -> list[SLOStatus]:
        now = self.clock()
        statuses = []
        for slo in self.config.slos:
            spans = {**WINDOWS, WHOLE: slo.window_s}
            counts = {key: self.counts(slo.name, now - span, now) for key, span in spans.items()}
            statuses.append(evaluate(slo.name, slo.objective, slo.window, counts))
        return statuses

    def increase(self, track: str, window_s: float) -> float | None:
        now = self.clock()
        return self.store.increase(track, now - window_s, now)


def good_track(slo: str) -> str:
    return f"slo:{slo}:good"


def total_track(slo: str) -> str:
    return f"slo:{slo}:total"
