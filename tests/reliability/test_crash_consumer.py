"""Crash: a consumer SIGKILLed between its effect and its commits applies each once.

The consumer (tests/reliability/consumer_worker.py) reads an at-least-once
"broker", applies each message behind the Inbox and acknowledges every few
messages. It is killed after writing an effect but before the database commit,
and after the commit but before the acknowledgement; the broker then redelivers.
No message may be lost and no effect may be applied twice.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integration_automation_patterns.outbox import Inbox
from tests.reliability.conftest import Ledger
from tests.reliability.sizes import scaled

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = scaled(2_000, 200)
KILLS = scaled(40, 4)
POINTS = ("before-db-commit", "before-ack")

pytestmark = pytest.mark.reliability


@dataclass
class Consumer:
    """Where the consumer's broker, database and delivery log live."""

    config: dict[str, Any]
    connect: Any
    ids: list[str]

    def run(self, **overrides: Any) -> int:
        """Run one consumer process to its end; return its exit code."""
        config = {**self.config, "mode": "consume", **overrides}
        command = [sys.executable, "-m", "tests.reliability.consumer_worker"]
        child = subprocess.run(
            [*command, json.dumps(config)], cwd=ROOT, timeout=120, check=False
        )
        return child.returncode

    def effects(self) -> Counter[str]:
        """Return how many times each message's effect was applied."""
        conn = self.connect()
        cursor = conn.cursor()
        cursor.execute("SELECT id FROM effects")
        counts = Counter(str(row[0]) for row in cursor.fetchall())
        conn.close()
        return counts

    def deliveries(self) -> int:
        """Return how many deliveries the broker made, redeliveries included."""
        text = Path(self.config["log"]).read_text(encoding="utf-8")
        return len(text.splitlines())


@pytest.fixture(params=["sqlite", "postgresql"])
def consumer(request: pytest.FixtureRequest, tmp_path: Path) -> Consumer:
    """A broker holding the messages and an empty consumer database."""
    config: dict[str, Any] = {
        "dialect": request.param,
        "broker": str(tmp_path / "broker.db"),
        "log": str(tmp_path / "deliveries.log"),
    }
    if request.param == "sqlite":
        database = config["database"] = str(tmp_path / "consumer.db")

        def connect() -> Any:
            return sqlite3.connect(database)

    else:
        connect = request.getfixturevalue("postgres_connect")
        with connect() as probe:
            [config["schema"]] = probe.execute("SELECT current_schema()").fetchone()
        config["dsn"] = request.getfixturevalue("postgres_dsn")
    ids = [f"m-{n:06d}" for n in range(MESSAGES)]
    seed_broker(config["broker"], ids)
    conn = connect()
    Inbox(request.param).create_schema(conn)
    conn.cursor().execute("CREATE TABLE effects (id TEXT NOT NULL, worker TEXT)")
    conn.commit()
    conn.close()
    return Consumer(config, connect, ids)


def seed_broker(path: str, ids: list[str]) -> None:
    """Write the messages and a zero offset into the broker file."""
    broker = sqlite3.connect(path)
    broker.execute("PRAGMA journal_mode=WAL")
    broker.execute("CREATE TABLE messages (seq INTEGER PRIMARY KEY, id TEXT)")
    broker.execute("CREATE TABLE offsets (next INTEGER NOT NULL)")
    broker.executemany("INSERT INTO messages VALUES (?, ?)", list(enumerate(ids)))
    broker.execute("INSERT INTO offsets VALUES (0)")
    broker.commit()
    broker.close()


def crash_repeatedly(consumer: Consumer, kills: int, points: tuple[str, ...]) -> int:
    """Kill ``kills`` consumers at the given points in turn, then drain."""
    rng = random.Random(13)
    for n in range(kills):
        point = points[n % len(points)]
        code = consumer.run(kill_point=point, kill_after=rng.randint(1, 40))
        assert code == -signal.SIGKILL, f"consumer {n} was not killed at {point}"
    assert consumer.run() == 0
    return kills


def test_killed_consumer_applies_every_effect_exactly_once(
    consumer: Consumer, ledger: Ledger
) -> None:
    """Killed before the DB commit or the ack: nothing lost, no effect twice."""
    crash_repeatedly(consumer, KILLS, POINTS)

    effects = consumer.effects()
    lost = len(set(consumer.ids) - set(effects))
    duplicate_effects = sum(count - 1 for count in effects.values())
    redeliveries = consumer.deliveries() - MESSAGES
    dialect = consumer.config["dialect"]
    ledger.record(
        "crash",
        f"consumer SIGKILL between effect and commit on {dialect}",
        tried=f"{KILLS} kills (half before the DB commit, half before the ack)"
        f" over {MESSAGES} messages",
        outcome=f"{lost} lost, {redeliveries} redeliveries,"
        f" {duplicate_effects} duplicate effects behind the inbox",
        held=lost == 0 and duplicate_effects == 0,
        kills=KILLS,
        records=MESSAGES,
        lost=lost,
        redeliveries=redeliveries,
        duplicate_effects=duplicate_effects,
    )
    assert lost == 0
    assert duplicate_effects == 0
    assert redeliveries > 0, "the kills must force redeliveries"


def test_planted_fault_effect_outside_transaction_is_caught(
    tmp_path: Path, ledger: Ledger
) -> None:
    """An effect committed apart from the inbox row shows up as duplicate effects."""
    config: dict[str, Any] = {
        "dialect": "sqlite",
        "broker": str(tmp_path / "broker.db"),
        "log": str(tmp_path / "deliveries.log"),
        "database": str(tmp_path / "consumer.db"),
        "effects_database": str(tmp_path / "effects.db"),
        "fault": "effect-outside-transaction",
    }
    ids = [f"m-{n:06d}" for n in range(100)]
    seed_broker(config["broker"], ids)
    for database in ("database", "effects_database"):
        conn = sqlite3.connect(config[database])
        Inbox("sqlite").create_schema(conn)
        conn.execute("CREATE TABLE effects (id TEXT NOT NULL, worker TEXT)")
        conn.commit()
        conn.close()
    effects_db = config["effects_database"]
    faulty = Consumer(config, lambda: sqlite3.connect(effects_db), ids)

    kills = crash_repeatedly(faulty, 3, ("before-db-commit",))

    effects = faulty.effects()
    duplicate_effects = sum(count - 1 for count in effects.values())
    ledger.record(
        "planted fault",
        "consumer effect committed outside the inbox transaction",
        tried=f"{kills} kills before the DB commit",
        outcome=f"caught: {duplicate_effects} duplicate effects",
        held=duplicate_effects == kills,
        kills=kills,
        duplicate_effects=duplicate_effects,
    )
    assert duplicate_effects == kills
