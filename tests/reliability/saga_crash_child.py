"""Child process of the saga crash test: runs durable sagas and dies on cue.

Usage: python -m tests.reliability.saga_crash_child MODE CONFIG_JSON

MODE is "start" (begin one saga), "resume" (continue one saga) or "recover"
(resume every unfinished saga, as a worker does at start-up, and print the
final status of every saga in CONFIG's list as JSON). When the environment
variable SAGA_KILL_AT names a boundary such as "after:action:s2", the process
sends itself SIGKILL on reaching it. The "external system" is a SQLite table
that applies each effect once per idempotency key and logs every call.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.saga import (
    SagaContext,
    SagaOrchestrator,
    SagaStore,
    SqliteSagaStore,
    SqlSagaStore,
)

KILL_AT = os.environ.get("SAGA_KILL_AT", "")

SCENARIOS = ("complete", "compensate")


def boundary(name: str) -> None:
    """Die at once, like a power cut, when ``name`` is the chosen boundary."""
    if name == KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)


class External:
    """A downstream system that de-duplicates effects by idempotency key."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS effects (key TEXT NOT NULL, saga_id TEXT)"
        )
        self.conn.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT NOT NULL)")

    def apply(self, key: str, saga_id: str) -> str:
        """Apply the effect under ``key`` unless it was applied already."""
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("INSERT INTO calls (key) VALUES (?)", (key,))
        seen = self.conn.execute("SELECT 1 FROM effects WHERE key = ?", (key,))
        if seen.fetchone() is None:
            self.conn.execute(
                "INSERT INTO effects (key, saga_id) VALUES (?, ?)", (key, saga_id)
            )
        self.conn.execute("COMMIT")
        return key


def build(
    scenario: str, steps: int, store: SagaStore, external: External, clock: Any
) -> SagaOrchestrator:
    """Build the saga of ``scenario``: the last step fails under "compensate"."""
    saga = SagaOrchestrator(f"crash-{scenario}", store=store, clock=clock)
    for i in range(1, steps + 1):
        refuse = scenario == "compensate" and i == steps
        saga.add_step(f"s{i}", action(external, refuse=refuse), compensation(external))
    return saga


def action(external: External, *, refuse: bool) -> Callable[[SagaContext], str]:
    """Return a step action that applies one effect, or refuses to."""

    def run(ctx: SagaContext) -> str:
        boundary(f"before:action:{ctx.step}")
        if refuse:
            boundary(f"after:action:{ctx.step}")
            raise RuntimeError("downstream refused")
        key = external.apply(ctx.idempotency_key(), ctx.saga_id)
        boundary(f"after:action:{ctx.step}")
        return key

    return run


def compensation(external: External) -> Callable[[SagaContext], None]:
    """Return a compensation that applies one undo effect."""

    def run(ctx: SagaContext) -> None:
        boundary(f"before:compensation:{ctx.step}")
        external.apply(f"{ctx.idempotency_key()}:undo", ctx.saga_id)
        boundary(f"after:compensation:{ctx.step}")

    return run


def open_store(config: dict[str, Any]) -> SagaStore:
    """Open the saga store the config names."""
    if config["store"] == "sqlite":
        return SqliteSagaStore(config["journal"])
    import psycopg

    dsn, schema = config["dsn"], config["schema"]

    def connect() -> Any:
        return psycopg.connect(dsn, options=f"-c search_path={schema}")

    return SqlSagaStore(connect, "postgresql")


def main(mode: str, config: dict[str, Any]) -> None:
    """Run one mode of the child process."""
    store = open_store(config)
    external = External(config["external"])
    clock = ManualClock(start=time.time() + config.get("clock_offset", 0))
    sagas = {s: build(s, config["steps"], store, external, clock) for s in SCENARIOS}

    if mode == "start":
        sagas[config["scenario"]].execute({"n": 1}, saga_id=config["saga_id"])
    elif mode == "resume":
        sagas[config["scenario"]].resume(config["saga_id"])
    else:
        for saga in sagas.values():
            saga.recover()
        statuses = {
            saga_id: sagas[scenario].resume(saga_id).status.value
            for saga_id, scenario in config["sagas"]
        }
        print(json.dumps({"statuses": statuses, "incomplete": store.incomplete()}))


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
