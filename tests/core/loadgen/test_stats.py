"""The load generator's arithmetic: percentiles, rates and errors by kind."""

import pytest

from core.loadgen.stats import Distribution, Recorder, emitted_at, percentile


def test_the_nearest_rank_percentile_is_a_value_that_was_measured():
    values = [float(v) for v in range(1, 101)]  # 1 .. 100
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 1) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_no_values_have_no_percentile_and_a_bad_rank_is_refused():
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 0)
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 101)


def test_a_distribution_is_reported_in_milliseconds():
    dist = Distribution.of([0.010, 0.020, 0.030, 0.040])
    assert dist.as_dict() == {"count": 4, "p50": 20.0, "p90": 40.0, "p99": 40.0, "max": 40.0}
    assert Distribution.of([]).as_dict()["p99"] is None


def test_an_event_timestamp_reads_as_posix_seconds():
    assert emitted_at("1970-01-01T00:00:10.500000Z") == 10.5
    assert emitted_at("1970-01-01T01:00:00+01:00") == 0.0


def test_only_completed_runs_count_and_the_rest_are_errors_with_their_reason():
    recorder = Recorder()
    recorder.run_finished(0.5, "completed", None)
    recorder.run_finished(2.0, "timeout", "phase_timeout")
    recorder.run_finished(0.1, "failed", None)
    recorder.error("timeout")
    recorder.error("timeout")
    summary = recorder.summary(users=2, elapsed_s=2.0)
    assert (summary.runs_completed, summary.runs_not_completed) == (1, 2)
    assert summary.errors == {"run_timeout:phase_timeout": 1, "run_failed": 1, "timeout": 2}
    assert summary.error_count == 4
    assert summary.run_latency_ms.count == 1  # a failed run's latency is not a latency
    assert recorder.runs_finished == 3


def test_rates_are_over_the_elapsed_time_and_delivery_keeps_clock_skew_visible():
    recorder = Recorder()
    for i in range(10):
        recorder.run_finished(0.01, "completed", None)
        recorder.event_received(emitted_s=100.0 + i, received_s=100.0 + i + 0.002)
    recorder.event_received(emitted_s=200.0, received_s=199.999)
    summary = recorder.summary(users=1, elapsed_s=4.0)
    assert summary.runs_per_s == 2.5
    assert summary.events_per_s == 11 / 4
    assert summary.delivery_latency_ms.as_dict()["p50"] == 2.0
    assert min(recorder.delivery_latencies_s) < 0
    document = summary.as_dict()
    assert document["runs_per_s"] == 2.5 and document["errors"] == {}
    assert recorder.summary(users=1, elapsed_s=0).runs_per_s == 0.0
