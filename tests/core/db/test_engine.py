"""Switching a SQLite file to WAL while another connection does the same."""

from __future__ import annotations

import sqlite3

import pytest

from core.db.engine import switch_to_wal


class RefusingCursor:
    """A cursor whose first ``refusals`` executions fail as SQLite does when another
    connection holds the lock the switch needs."""

    def __init__(self, refusals: int, error: str = "database is locked") -> None:
        self.refusals = refusals
        self.error = error
        self.executed: list[str] = []

    def execute(self, statement: str) -> None:
        self.executed.append(statement)
        if len(self.executed) <= self.refusals:
            raise sqlite3.OperationalError(self.error)


def test_a_switch_refused_as_locked_is_tried_again_until_it_succeeds():
    cursor = RefusingCursor(refusals=3)
    switch_to_wal(cursor, busy_timeout_s=5)
    assert cursor.executed == ["PRAGMA journal_mode = WAL"] * 4


def test_a_switch_still_refused_at_the_busy_timeout_raises():
    cursor = RefusingCursor(refusals=1_000_000)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        switch_to_wal(cursor, busy_timeout_s=0.05)
    assert 1 < len(cursor.executed) < 1_000_000


def test_any_other_failure_is_raised_at_once():
    cursor = RefusingCursor(refusals=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk"):
        switch_to_wal(cursor, busy_timeout_s=5)
    assert len(cursor.executed) == 1


def test_a_new_file_is_in_wal_mode_after_the_switch(tmp_path):
    connection = sqlite3.connect(tmp_path / "new.db", isolation_level=None)
    switch_to_wal(connection.cursor(), busy_timeout_s=5)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
