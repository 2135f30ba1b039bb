"""The human summary of a load run."""

from __future__ import annotations

from rich.console import Console

from core.loadgen.report import RATE_LIMIT_HINT, summary_table
from core.loadgen.stats import Recorder


def rendered(recorder: Recorder) -> str:
    console = Console(width=400, record=True)
    console.print(summary_table(recorder.summary(users=1, elapsed_s=1.0)))
    return console.export_text()


def test_chats_refused_as_rate_limited_come_with_the_settings_to_raise():
    recorder = Recorder()
    recorder.run_finished(0.01, "completed", None)
    recorder.error("chat_refused:rate_limited")
    text = rendered(recorder)
    assert "error: chat_refused:rate_limited" in text
    assert RATE_LIMIT_HINT in text


def test_other_errors_come_with_no_hint():
    recorder = Recorder()
    recorder.error("handshake_refused:invalid_signature")
    assert RATE_LIMIT_HINT not in rendered(recorder)
    assert "hint" not in rendered(Recorder())
