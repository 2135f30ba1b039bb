"""The whole sidecar: watching a live backend, and going on serving when the backend is down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from core.client import VigilClient
from sidecar.canary.checker import CanaryResult
from sidecar.runner import Sidecar
from sidecar.slo.math import WHOLE
from tests.fixtures.servers import BackendProcess
from tests.sidecar.clock import FakeClock
from tests.sidecar.conftest import RunningSidecar, sidecar_config, until, wait_for
from tests.sidecar.fakes import closed_port


def slo_doc(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/slo", timeout=5)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def slo(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in document["slos"] if s["name"] == name)


def test_the_sidecar_keeps_serving_while_the_backend_is_down(
    orphan_sidecar: RunningSidecar,
) -> None:
    url = orphan_sidecar.url
    document = wait_for(
        lambda: (d := slo_doc(url))["canary"]["recent"] and d["scrape"]["at"] and d, what="cycles"
    )
    assert document["scrape"]["ok"] is False
    assert document["traces"]["ok"] is False and document["traces"]["runs"] == []
    assert {p["up"] for p in document["probes"].values()} == {False}
    assert document["canary"]["recent"][-1]["phase"] == "connect"
    assert document["memory"]["state"] == "unknown"
    metrics = httpx.get(f"{url}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert 'vigil_probe_up{probe="readyz"} 0.0' in metrics.text
    assert 'vigil_canary_runs_total{outcome="unreachable",phase="connect"}' in metrics.text
    assert "NaN" not in metrics.text
    page = httpx.get(url + "/", timeout=5)
    assert page.status_code == 200 and "Vigil status" in page.text
    assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}


async def test_the_sidecar_sees_the_canary_probes_memory_and_user_traffic(
    backend: BackendProcess, watching_sidecar: RunningSidecar
) -> None:
    url = watching_sidecar.url
    registry = watching_sidecar.sidecar.metrics.registry
    await until(lambda: slo_doc(url)["canary"]["recent"], what="a canary run")

    def scrapes_ok() -> float:
        return registry.get_sample_value("vigil_sidecar_scrapes_total", {"outcome": "ok"}) or 0.0

    async def chat(scrapes_after: int) -> None:
        async with VigilClient.connect(backend.ws_url, backend.token("alice")) as client:
            result = await client.run("What is 17 * 23?", timeout=10)
            assert result.types[-1] == "agent_completed"
        # Events are acked; wait until the sidecar has scraped after it.
        seen = scrapes_ok()
        await until(lambda: scrapes_ok() >= seen + scrapes_after, what="scrapes")

    # A counter's first sample only starts its series (as with Prometheus' increase()):
    # the first chat creates the series, the second is counted.
    await chat(2)
    await chat(2)
    document = slo_doc(url)
    delivery = slo(document, "event-delivery")
    assert delivery["counts"][WHOLE]["total"] >= 5
    assert delivery["sli"][WHOLE] == 1.0
    assert slo(document, "tool-visibility")["sli"]["5m"] == 1.0
    canary = slo(document, "canary")
    assert document["canary"]["recent"][-1]["outcome"] == "success"
    assert canary["alerts"] == {"page": False, "ticket": False}
    assert {p["up"] for p in document["probes"].values()} == {True}
    await until(lambda: slo_doc(url)["memory"]["growth_bytes_per_second"] is not None, what="trend")
    memory = slo_doc(url)["memory"]
    assert memory["rss_bytes"] > 10 * 2**20
    assert memory["target"] == f"pid {backend.pid}"
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    assert 'vigil_slo_sli_ratio{slo="event-delivery",window="5m"} 1.0' in metrics
    assert 'vigil_target_memory_bytes{kind="rss"}' in metrics


async def test_the_sidecar_shows_the_backends_recent_run_traces(
    watching_sidecar: RunningSidecar,
) -> None:
    """The backend keeps its spans in memory (the embedded default); the sidecar reads the
    recent runs' traces with its operator identity, for the status page."""
    traces = await until(
        lambda: (t := slo_doc(watching_sidecar.url)["traces"])["runs"] and t, what="a trace"
    )
    assert (traces["enabled"], traces["ok"], traces["kept"]) == (True, True, True)
    run = traces["runs"][0]
    assert run["status"] == "ok" and run["run_id"]
    assert {"preflight", "triage"} <= {span["name"] for span in run["spans"]}


async def test_a_sidecar_without_an_identity_does_not_read_traces(tmp_path: Path) -> None:
    sidecar = Sidecar(sidecar_config(f"http://127.0.0.1:{closed_port()}", tmp_path), tokens=None)
    try:
        assert sidecar.document()["traces"] == {"enabled": False}
    finally:
        await sidecar.stop()


async def test_slo_samples_survive_a_sidecar_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    config = sidecar_config(f"http://127.0.0.1:{closed_port()}", tmp_path)

    def success(sidecar: Sidecar) -> None:
        assert sidecar.canary is not None
        sidecar.canary.record(CanaryResult("success", "none", "ok"))

    first = Sidecar(config, tokens=lambda: "t", clock=clock)
    success(first)
    await first.scrape_once()  # the canary series starts at 1
    success(first)
    success(first)
    clock.advance(15)
    await first.scrape_once()  # 3: +2
    await first.stop()

    second = Sidecar(config, tokens=lambda: "t", clock=clock)
    success(second)  # a new process: its counter starts again at 1 (a reset)
    clock.advance(15)
    await second.scrape_once()
    status = next(s for s in second.statuses if s.name == "canary")
    counts = status.counts[WHOLE]
    assert counts is not None and (counts.good, counts.total) == (3, 3)
    await second.stop()
