"""The SLO file: the shipped defaults, selectors, and the errors a bad file gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.slo.spec import SelectorError, SpecError, load_slos, parse_selector, parse_slos


def test_the_shipped_defaults_are_the_five_slos_of_the_architecture() -> None:
    config = load_slos()
    assert {slo.name: (slo.objective, slo.window_s) for slo in config.slos} == {
        "connection-success": (0.999, 28 * 86400),
        "event-delivery": (0.999, 28 * 86400),
        "run-success": (0.99, 28 * 86400),
        "tool-visibility": (0.999, 28 * 86400),
        "canary": (0.99, 28 * 86400),
    }
    assert [slo.source for slo in config.slos].count("sidecar") == 1


def test_event_delivery_counts_acks_within_two_seconds_over_events_emitted() -> None:
    slo = next(s for s in load_slos().slos if s.name == "event-delivery")
    assert slo.good[0].matches("vigil_event_ack_latency_seconds_bucket", {"le": "2.0", "type": "x"})
    assert not slo.good[0].matches("vigil_event_ack_latency_seconds_bucket", {"le": "5.0"})
    assert slo.total[0].matches("vigil_events_emitted_total", {"type": "agent_started"})


def test_connection_success_leaves_out_refusals_that_are_the_clients_doing() -> None:
    slo = next(s for s in load_slos().slos if s.name == "connection-success")

    def in_total(labels: dict[str, str]) -> bool:
        return any(sel.matches("vigil_ws_connections_total", labels) for sel in slo.total)

    assert in_total({"outcome": "accepted", "reason": ""})
    assert in_total({"outcome": "rejected", "reason": "not_ready"})
    for client_reason in ("invalid_signature", "token_expired", "connection_quota"):
        assert not in_total({"outcome": "rejected", "reason": client_reason})


def test_a_bucket_bound_matches_however_its_number_is_written() -> None:
    selector = parse_selector('h_bucket{le="2"}')
    assert selector.matches("h_bucket", {"le": "2.0"})
    assert not selector.matches("h_bucket", {"le": "+Inf"})


def test_selectors_support_the_four_promql_matchers() -> None:
    selector = parse_selector('m_total{a="x", b!="y", c=~"p|q", d!~"z.*"}')
    assert selector.matches("m_total", {"a": "x", "b": "w", "c": "q", "d": "a"})
    assert not selector.matches("m_total", {"a": "x", "b": "w", "c": "pq", "d": "a"})
    assert not selector.matches("m_total", {"a": "x", "b": "w", "c": "q", "d": "zz"})
    assert not selector.matches("other_total", {"a": "x", "b": "w", "c": "q", "d": "a"})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("slos: []", "empty"),
        ("slos: [{name: a, objective: 1.0, good: x, total: y}]", "objective"),
        ("slos: [{name: a, objective: .9, window: 3x, good: x, total: y}]", "window"),
        ("slos: [{name: a, objective: .9, good: 'x{a=b}', total: y}]", "good"),
        ("slos: [{name: a, objective: .9, good: x, total: []}]", "total"),
        ("slos: [{name: A B, objective: .9, good: x, total: y}]", "name"),
        ("slos: [{name: a, objective: .9, good: x, total: y, extra: 1}]", "unknown"),
        ("slos: [{name: a, objective: .9, good: x, total: y, source: db}]", "source"),
        (
            "slos: [{name: a, objective: .9, good: x, total: y},"
            " {name: a, objective: .9, good: x, total: y}]",
            "unique",
        ),
        ("slos: {", "YAML"),
    ],
)
def test_a_bad_slo_file_is_refused_naming_the_field(text: str, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment):
        parse_slos(text, "my.yaml")


def test_a_missing_slo_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml"):
        load_slos(tmp_path / "nope.yaml")


def test_a_bad_regex_is_a_selector_error() -> None:
    with pytest.raises(SelectorError, match="bad regex"):
        parse_selector('m{a=~"("}')
