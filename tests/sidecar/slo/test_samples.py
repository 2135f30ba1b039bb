"""The sample store: counter resets, series that come and go, gaps, retention, restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.slo.samples import SampleStore, SeriesState, advance

DAY = 86400.0


def test_a_series_seen_for_the_first_time_counts_from_there() -> None:
    assert advance(None, 40).adjusted == 0


def test_a_counter_reset_keeps_what_was_counted_before_it() -> None:
    state = advance(advance(advance(None, 10), 25), 4)
    assert state == SeriesState(last_raw=4, offset=15)
    # 10 -> 25 is 15, then the counter restarted and reached 4: 19 in all.
    assert state.adjusted == 19


@pytest.fixture
def store(tmp_path: Path) -> SampleStore:
    return SampleStore(tmp_path / "samples.db", retention_s=28 * DAY)


def test_the_increase_is_the_last_minus_the_first_sample_in_the_window(store: SampleStore) -> None:
    for ts, raw in [(0, 100), (60, 110), (120, 130), (180, 160)]:
        store.record(ts, {"t": {"a": raw}})
    assert store.increase("t", 0, 180) == 50  # (0, 180]: first at 60 (110), last 160
    assert store.increase("t", -1, 180) == 60
    assert store.increase("t", 100, 180) == 30


def test_a_window_with_one_sample_or_none_is_no_data(store: SampleStore) -> None:
    store.record(0, {"t": {"a": 1}})
    store.record(600, {"t": {"a": 5}})
    assert store.increase("t", 300, 600) is None
    assert store.increase("t", 700, 900) is None
    assert store.increase("unknown", -1, 900) is None


def test_a_reset_inside_the_window_is_counted_like_prometheus_increase(store: SampleStore) -> None:
    # Raw: 10, 20, (backend restarts) 3, 8 -> increases 10 + 3 + 5 = 18.
    for ts, raw in [(0, 10), (15, 20), (30, 3), (45, 8)]:
        store.record(ts, {"t": {"a": raw}})
    assert store.increase("t", -1, 45) == 18


def test_a_track_sums_its_series_each_made_monotonic_first(store: SampleStore) -> None:
    store.record(0, {"t": {"a": 10, "b": 100}})
    store.record(15, {"t": {"a": 12, "b": 1}})  # b reset: +1; a: +2
    store.record(30, {"t": {"a": 15}})  # b missing: keeps its value; a: +3
    store.record(45, {"t": {"a": 15, "b": 4, "c": 7}})  # b: +3; c new: counts from here
    store.record(60, {"t": {"a": 15, "b": 4, "c": 9}})  # c: +2
    assert store.increase("t", -1, 60) == 2 + 1 + 3 + 3 + 2


def test_a_long_gap_counts_what_happened_during_it(store: SampleStore) -> None:
    store.record(0, {"t": {"a": 100}})
    store.record(15, {"t": {"a": 110}})
    store.record(2 * DAY, {"t": {"a": 500}})  # the sidecar was away for two days
    assert store.increase("t", -1, 2 * DAY) == 400
    assert store.increase("t", DAY, 2 * DAY) is None  # one sample in the last day


def test_samples_and_reset_state_survive_a_restart(tmp_path: Path) -> None:
    first = SampleStore(tmp_path / "s.db", retention_s=28 * DAY)
    first.record(0, {"t": {"a": 10}})
    first.record(15, {"t": {"a": 30}})
    first.close()
    second = SampleStore(tmp_path / "s.db", retention_s=28 * DAY)
    second.record(30, {"t": {"a": 5}})  # the backend restarted too
    assert second.increase("t", -1, 30) == 25


def test_samples_older_than_the_retention_are_deleted(store: SampleStore) -> None:
    store.record(0, {"t": {"a": 1}})
    store.record(60, {"t": {"a": 2}})
    store.record(29 * DAY, {"t": {"a": 3}})
    store.compact(29 * DAY)
    assert store.count("t") == 1


def test_old_samples_are_thinned_but_the_recent_three_days_are_not(store: SampleStore) -> None:
    for minute in range(0, 60):
        store.record(minute * 60.0, {"t": {"a": float(minute)}})
    now = 3 * DAY + 3600
    for minute in range(0, 10):
        store.record(now - 600 + minute * 60.0, {"t": {"a": 100.0 + minute}})
    store.compact(now)
    # The old hour keeps one row per 5 minutes; the last 10 minutes keep every row.
    assert store.count("t") == 12 + 10
    assert store.increase("t", -1, now) == 100 + 9
