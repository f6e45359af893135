"""Durable sagas survive SIGKILL at every step boundary, on SQLite and PostgreSQL.

Each saga runs in a child process that kills itself at one boundary (before or
after an action or a compensation); fresh processes then resume it. Every saga
must end COMPLETED or COMPENSATED, with each effect applied exactly once under
its idempotency key in the SQLite "external system".
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import Ledger
from tests.reliability.sizes import scaled

ROOT = Path(__file__).resolve().parents[2]
STEPS = scaled(6, 2)
CHAIN = scaled(2, 1)
"""How many kills in a row one saga suffers before it is left to recover."""


def boundaries(scenario: str, steps: int) -> list[str]:
    """List the kill points a saga of ``scenario`` passes, in order."""
    names = [f"s{i}" for i in range(1, steps + 1)]
    points = [f"{when}:action:{s}" for s in names for when in ("before", "after")]
    if scenario == "compensate":
        points += [
            f"{when}:compensation:{s}"
            for s in reversed(names[:-1])
            for when in ("before", "after")
        ]
    return points


def expected_keys(scenario: str, saga_id: str, steps: int) -> set[str]:
    """Return the idempotency keys whose effect a finished saga applied."""
    name = f"crash-{scenario}"
    if scenario == "complete":
        return {f"{name}:{saga_id}:s{i}" for i in range(1, steps + 1)}
    done = {f"{name}:{saga_id}:s{i}" for i in range(1, steps)}
    return done | {f"{key}:undo" for key in done}


def run_child(
    mode: str, config: dict[str, Any], kill_at: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the child in a fresh interpreter of this virtual environment."""
    env = {**os.environ, "SAGA_KILL_AT": kill_at}
    command = [sys.executable, "-m", "tests.reliability.saga_crash_child", mode]
    return subprocess.run(
        [*command, json.dumps(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Where the children keep their journal and the external system."""
    config: dict[str, Any] = {
        "store": request.param,
        "external": str(tmp_path / "external.db"),
        "steps": STEPS,
    }
    if request.param == "sqlite":
        config["journal"] = str(tmp_path / "journal.db")
        return config
    connect = request.getfixturevalue("postgres_connect")
    with connect() as conn:
        [schema] = conn.execute("SELECT current_schema()").fetchone()
    config["dsn"] = request.getfixturevalue("postgres_dsn")
    config["schema"] = schema
    return config


def test_sigkill_at_every_boundary_then_resume_applies_each_effect_once(
    store_config: dict[str, Any], ledger: Ledger
) -> None:
    """Killed at any boundary and resumed, sagas finish and apply effects once."""
    sagas: list[tuple[str, str]] = []
    kills = 0
    for scenario in ("complete", "compensate"):
        points = boundaries(scenario, STEPS)
        for index, point in enumerate(points):
            saga_id = f"{scenario}-{index}"
            sagas.append((saga_id, scenario))
            config = {**store_config, "scenario": scenario, "saga_id": saga_id}

            killed = run_child("start", config, kill_at=point)
            assert killed.returncode == -signal.SIGKILL, (point, killed.stderr)
            kills += 1

            for hop, later in enumerate(points[index + 1 : index + CHAIN], start=1):
                resumed = {**config, "clock_offset": 1000 * hop}
                kills += run_child("resume", resumed, kill_at=later).returncode < 0

    final = run_child(
        "recover", {**store_config, "sagas": sagas, "clock_offset": 10_000}
    )
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)

    expected_status = {"complete": "completed", "compensate": "compensated"}
    finished = sum(
        report["statuses"].get(saga_id) == expected_status[scenario]
        for saga_id, scenario in sagas
    )
    ledger.record(
        "crash",
        f"saga SIGKILL at every step boundary on {store_config['store']}",
        tried=f"{kills} kills over {len(sagas)} sagas of {STEPS} steps",
        outcome=f"{finished} of {len(sagas)} finished as expected,"
        f" {len(report['incomplete'])} left incomplete",
        held=finished == len(sagas) and report["incomplete"] == [],
        kills=kills,
        lost=len(sagas) - finished,
    )
    assert report["incomplete"] == []
    assert report["statuses"] == {
        saga_id: expected_status[scenario] for saga_id, scenario in sagas
    }
    assert_effects_applied_once(store_config["external"], sagas)


def assert_effects_applied_once(path: str, sagas: list[tuple[str, str]]) -> None:
    """Check every expected effect is applied exactly once and nothing else is."""
    conn = sqlite3.connect(path)
    try:
        effects = conn.execute(
            "SELECT key, COUNT(*) FROM effects GROUP BY key"
        ).fetchall()
        calls = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    finally:
        conn.close()

    counts = dict(effects)
    expected: set[str] = set()
    for saga_id, scenario in sagas:
        expected |= expected_keys(scenario, saga_id, STEPS)
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    # Kills after an effect force re-runs that the key de-duplicates.
    assert calls > len(counts)
