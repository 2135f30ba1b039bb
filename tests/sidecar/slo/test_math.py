"""SLO arithmetic against hand-computed values."""

from __future__ import annotations

import math

import pytest

from sidecar.slo.math import WHOLE, WINDOWS, Counts, burn_rate, evaluate, sli


def test_the_sli_is_good_over_total() -> None:
    assert sli(Counts(good=990, total=1000)) == pytest.approx(0.99)


def test_no_traffic_is_no_data_never_nan() -> None:
    assert sli(Counts(good=0, total=0)) is None
    assert sli(None) is None
    assert burn_rate(None, 0.999) is None


def test_more_good_than_total_in_a_window_is_clamped_to_one() -> None:
    assert sli(Counts(good=12, total=10)) == 1.0


def test_burn_rate_is_the_error_rate_over_the_error_budget() -> None:
    # 1 % errors against a 0.1 % budget burns it ten times as fast as allowed.
    assert burn_rate(0.99, 0.999) == pytest.approx(10.0)
    assert burn_rate(1.0, 0.999) == 0.0


def every_window(counts: Counts | None) -> dict[str, Counts | None]:
    return {key: counts for key in [*WINDOWS, WHOLE]}


def test_budget_remaining_is_what_the_whole_window_has_not_spent() -> None:
    counts = every_window(Counts(good=9_996, total=10_000))
    status = evaluate("s", 0.999, "28d", counts)
    # 4 bad of 10 allowed: 60 % of the budget is left.
    assert status.error_budget_remaining == pytest.approx(0.6)


def test_an_overspent_budget_goes_negative() -> None:
    status = evaluate("s", 0.999, "28d", every_window(Counts(good=980, total=1000)))
    assert status.error_budget_remaining == pytest.approx(-19.0)


def test_a_fast_burn_in_both_short_windows_pages() -> None:
    counts = every_window(Counts(good=1000, total=1000))
    counts["1h"] = Counts(good=980, total=1000)  # burn 20 > 14.4
    counts["5m"] = Counts(good=98, total=100)  # burn 20 > 14.4
    status = evaluate("s", 0.999, "28d", counts)
    assert status.alerts == {"page": True, "ticket": False}
    assert status.firing == ["page:14.4x:1h/5m"]


def test_a_burn_in_the_long_window_alone_does_not_page() -> None:
    counts = every_window(Counts(good=1000, total=1000))
    counts["1h"] = Counts(good=980, total=1000)
    status = evaluate("s", 0.999, "28d", counts)
    assert status.alerts == {"page": False, "ticket": False}


def test_a_burn_exactly_at_the_factor_does_not_fire() -> None:
    counts = every_window(Counts(good=1000, total=1000))
    counts["3d"] = counts["6h"] = Counts(good=999, total=1000)  # burn exactly 1
    assert evaluate("s", 0.999, "28d", counts).alerts["ticket"] is False
    counts["3d"] = counts["6h"] = Counts(good=998, total=1000)  # burn 2 > 1
    assert evaluate("s", 0.999, "28d", counts).firing == ["ticket:1x:3d/6h"]


def test_a_slow_burn_opens_a_ticket_not_a_page() -> None:
    counts = every_window(Counts(good=1000, total=1000))
    counts["1d"] = counts["2h"] = Counts(good=995, total=1000)  # burn 5: > 3, < 6
    status = evaluate("s", 0.999, "28d", counts)
    assert status.alerts == {"page": False, "ticket": True}


def test_no_traffic_in_the_short_window_never_fires_an_alert() -> None:
    counts = every_window(Counts(good=0, total=1000))
    counts["5m"] = None
    counts["30m"] = Counts(good=0, total=0)
    counts["2h"] = counts["6h"] = None
    status = evaluate("s", 0.999, "28d", counts)
    assert status.alerts == {"page": False, "ticket": False}
    assert status.sli["5m"] is None and status.sli["30m"] is None
    assert status.burn_rate["1h"] == pytest.approx(1000.0)


def test_nothing_is_nan_when_there_is_no_data_anywhere() -> None:
    status = evaluate("s", 0.99, "28d", every_window(None))
    values = [*status.sli.values(), *status.burn_rate.values(), status.error_budget_remaining]
    assert all(value is None for value in values)
    assert not any(isinstance(v, float) and math.isnan(v) for v in values)
