"""SLO tracking end to end on an injected clock: scrapes in, per-window statuses out."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.slo.samples import SampleStore
from sidecar.slo.spec import parse_slos
from sidecar.slo.tracker import Sample, SLOTracker
from tests.sidecar.clock import FakeClock

SPEC = """
slos:
  - name: delivery
    objective: 0.999
    window: 28d
    good: ['acks_bucket{le="2.0"}']
    total: ['emitted_total']
"""


def scrape(good: float, total: float) -> list[Sample]:
    return [
        Sample("acks_bucket", {"le": "2.0", "type": "a"}, good),
        Sample("acks_bucket", {"le": "+Inf", "type": "a"}, total),
        Sample("emitted_total", {"type": "a"}, total),
    ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracker(tmp_path: Path, clock: FakeClock) -> SLOTracker:
    store = SampleStore(tmp_path / "s.db", retention_s=28 * 86400)
    return SLOTracker(parse_slos(SPEC), store, clock)


def test_no_traffic_is_no_data_in_every_window(tracker: SLOTracker, clock: FakeClock) -> None:
    for _ in range(30):
        tracker.observe("backend", scrape(0, 0))
        clock.advance(15)
    status = tracker.evaluate()[0]
    assert set(status.sli.values()) == {None}
    assert status.alerts == {"page": False, "ticket": False}


def test_an_outage_in_the_last_minutes_pages(tracker: SLOTracker, clock: FakeClock) -> None:
    good = total = 0.0
    # An hour of steady traffic, 100 events per 15 s, all acked in time...
    for _ in range(240):
        tracker.observe("backend", scrape(good, total))
        good, total = good + 100, total + 100
        clock.advance(15)
    # ...then 5 minutes where half the events are not acked within 2 s.
    for _ in range(20):
        tracker.observe("backend", scrape(good, total))
        good, total = good + 50, total + 100
        clock.advance(15)
    tracker.observe("backend", scrape(good, total))
    status = tracker.evaluate()[0]
    # 5m = (t-300, t] holds the last 20 scrapes: 19 intervals, all in the bad period.
    assert status.counts["5m"] is not None
    assert status.counts["5m"].total == 1900
    assert status.counts["5m"].good == 950
    assert status.sli["5m"] == pytest.approx(0.5)
    assert status.burn_rate["5m"] == pytest.approx(500)
    # 1h: 240 intervals in the window, the last 20 bad: 1000 bad of 23900.
    assert status.counts["1h"] is not None
    assert status.counts["1h"].total == 23900
    assert status.counts["1h"].good == 22900
    assert status.alerts["page"] is True
    assert status.error_budget_remaining is not None and status.error_budget_remaining < 0


def test_the_canary_slo_reads_the_sidecars_own_metrics(tmp_path: Path, clock: FakeClock) -> None:
    spec = parse_slos(
        "slos: [{name: canary, objective: 0.99, source: sidecar,"
        " good: 'runs_total{outcome=\"success\"}', total: runs_total}]"
    )
    tracker = SLOTracker(spec, SampleStore(tmp_path / "c.db", 28 * 86400), clock)
    for success, failure in [(0, 0), (3, 0), (5, 1)]:
        tracker.observe("backend", [Sample("runs_total", {"outcome": "success"}, 999)])
        tracker.observe(
            "sidecar",
            [
                Sample("runs_total", {"outcome": "success"}, success),
                Sample("runs_total", {"outcome": "timeout"}, failure),
            ],
        )
        clock.advance(60)
    status = tracker.evaluate()[0]
    assert status.counts["window"] is not None
    assert (status.counts["window"].good, status.counts["window"].total) == (5, 6)
