"""The operator CLI against a SQLite file and through --connect on both dialects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from integration_automation_patterns._types import ManualClock, RetryPolicy
from integration_automation_patterns.outbox import OutboxRecord, main
from tests.outbox_support import Database, database

__all__ = ["database"]

_CURRENT: list[Any] = []


def connect_for_cli() -> Any:
    """The --connect target: a new connection from the test's database."""
    return _CURRENT[0]()


def with_dead_record(db: Database, clock: ManualClock) -> str:
    store = db.store(clock)
    conn = db.connect()
    record = OutboxRecord.create("a", "E", {})
    store.enqueue_many(conn, [record, OutboxRecord.create("a", "E", {})])
    conn.commit()
    batch = store.claim(conn, 1)
    store.mark_failed(
        conn, record.record_id, "boom", batch.token, retry_policy=RetryPolicy(1)
    )
    conn.commit()
    return record.record_id


def test_cli_status_dead_requeue_discard(
    database: Database, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """status, dead, requeue and discard report and change the table."""
    dead_id = with_dead_record(database, clock)
    _CURRENT[:] = [database.connect]
    base = ["--connect", f"{__name__}:connect_for_cli"]

    assert main([*base, "status"]) == 0
    assert json.loads(capsys.readouterr().out)["dead"] == 1
    assert main([*base, "dead"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == dead_id
    assert main([*base, "requeue"]) == 1
    assert "ids or --all" in capsys.readouterr().err
    assert main([*base, "requeue", dead_id]) == 0
    assert capsys.readouterr().out.strip() == "requeued 1"
    assert main([*base, "discard", "--all"]) == 0
    assert capsys.readouterr().out.strip() == "discarded 0"
    assert main([*base, "purge", "--older-than", "60"]) == 0
    assert capsys.readouterr().out.strip() == "purged 0"


def test_cli_runs_as_a_module_on_a_sqlite_file(
    tmp_path: Path, clock: ManualClock
) -> None:
    """python -m ...outbox --db FILE status prints the counts as JSON."""
    db = Database(
        "sqlite", lambda: __import__("sqlite3").connect(tmp_path / "o.db"), []
    )
    with_dead_record(db, clock)
    for conn in db.opened:
        conn.close()

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "integration_automation_patterns.outbox",
            "--db",
            str(tmp_path / "o.db"),
            "status",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pending"] == 1


def test_cli_reports_a_bad_connect_target(capsys: pytest.CaptureFixture[str]) -> None:
    """An unimportable --connect target exits 1 with a message."""
    assert main(["--connect", "no_such_module:connect", "status"]) == 1
    assert "cannot be imported" in capsys.readouterr().err
