"""A durable order saga survives a real crash and is resumed by another worker.

A child process runs the saga "reserve -> charge -> ship" with a SQLite
journal. Inside ``charge`` it commits the charge and is then killed with
SIGKILL, before the journal records the step as done. The parent finds the
saga in ``store.incomplete()``. A second worker is refused while the crashed
worker's lease is live; once the lease has expired (a clock 301 s ahead) it
resumes the saga: ``charge`` runs again with the same idempotency key, so
the payment provider charges once, and the saga completes.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.saga import (
    SagaContext,
    SagaLeaseError,
    SagaOrchestrator,
    SqliteSagaStore,
)

SAGA_ID = "order-7001"


def build_saga(folder: Path, *, crash: bool, **options: Any) -> SagaOrchestrator:
    """Define the saga; with ``crash`` the process dies inside ``charge``."""
    payments = folder / "payments.db"

    def charge(ctx: SagaContext) -> str:
        key = ctx.idempotency_key()
        with closing(sqlite3.connect(payments)) as conn, conn:  # the provider's side
            conn.execute("INSERT INTO calls VALUES (?)", (key,))
            conn.execute(
                "INSERT OR IGNORE INTO charges VALUES (?, ?)", (key, ctx.data["amount"])
            )
        if crash:
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
            time.sleep(5)  # never reached: the kill is immediate
        return key

    saga = SagaOrchestrator(
        "order", store=SqliteSagaStore(folder / "saga.db"), **options
    )
    saga.add_step("reserve", lambda: "reservation-1", lambda: None)
    saga.add_step("charge", charge, lambda: None)
    saga.add_step("ship", lambda ctx: f"shipment for {ctx.data['order_id']}")
    return saga


def child(folder: Path) -> None:
    """Run the saga until the crash; this process never returns normally."""
    saga = build_saga(folder, crash=True, worker_id="worker-1")
    saga.execute({"order_id": "7001", "amount": 42.0}, saga_id=SAGA_ID)


def close(saga: SagaOrchestrator) -> None:
    if isinstance(saga.store, SqliteSagaStore):
        saga.store.close()


def count(folder: Path, table: str) -> int:
    with closing(sqlite3.connect(folder / "payments.db")) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="iap-saga-") as folder:
        return run(Path(folder))


def run(folder: Path) -> dict[str, Any]:
    with closing(sqlite3.connect(folder / "payments.db")) as conn, conn:
        conn.execute("CREATE TABLE calls (key TEXT)")
        conn.execute("CREATE TABLE charges (key TEXT PRIMARY KEY, amount REAL)")

    crashed = subprocess.run(
        [sys.executable, __file__, "--child", str(folder)], check=False
    )
    print(f"  worker-1 was killed (exit status {crashed.returncode})")

    store = SqliteSagaStore(folder / "saga.db")
    record = store.load(SAGA_ID)
    assert record is not None
    journal = {f"{s}/{p}": e.state for (s, p), e in sorted(record.entries.items())}
    print(f"  journal after the crash: {record.status.value} {journal}")
    incomplete = store.incomplete()
    store.close()

    eager = build_saga(folder, crash=False, worker_id="worker-2")
    try:
        eager.resume(SAGA_ID)
        refused = False
    except SagaLeaseError as exc:
        refused = True
        print(f"  worker-2 right away: {exc}")
    close(eager)

    later = ManualClock(start=time.time() + 301)
    worker2 = build_saga(folder, crash=False, worker_id="worker-2", clock=later)
    result = worker2.resume(SAGA_ID)
    close(worker2)
    print(
        f"  worker-2 after the lease expired: {result.status.value},"
        f" steps {result.completed_steps}"
    )
    calls, charges = count(folder, "calls"), count(folder, "charges")
    print(f"  charge ran {calls} times; the provider holds {charges} charge")
    return {
        "child_exit": crashed.returncode,
        "status_after_crash": record.status.value,
        "journal_after_crash": journal,
        "incomplete": incomplete,
        "refused_while_leased": refused,
        "status": result.status,
        "completed_steps": result.completed_steps,
        "ship_result": result.step_results["ship"],
        "charge_calls": calls,
        "charges": charges,
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]))
    else:
        print(main())
