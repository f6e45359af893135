"""Saga: per-step overhead in memory, and steps per second with a SQLite journal."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks.harness import Case, Contender
from integration_automation_patterns.saga import SagaOrchestrator, SqliteSagaStore

STEPS = 10


def step() -> int:
    """Stand in for one step's action or compensation: a no-op."""
    return 1


def saga(store: SqliteSagaStore | None = None) -> SagaOrchestrator:
    """Return a saga of ``STEPS`` no-op steps, each with a compensation."""
    orchestrator = SagaOrchestrator("bench", store=store)
    for n in range(STEPS):
        orchestrator.add_step(f"step-{n}", step, step)
    return orchestrator


def bare() -> None:
    """Run the same steps as plain calls: the floor a saga adds to."""
    for _ in range(STEPS):
        step()


def cases(scale: float = 1.0) -> list[Case]:
    """Return the in-memory case and the journalled case."""
    return [_memory(), _journal()]


def _memory() -> Case:
    in_memory = saga()
    return Case(
        "saga, in memory",
        {"bare calls": bare, "ours": in_memory.execute},
        baseline="bare calls",
        number=2_000,
        scaling=True,
        items=STEPS,
        unit=f"saga of {STEPS} steps",
        item_unit="step",
        note=(
            f"A saga of {STEPS} no-op steps, each with a compensation, run to"
            " success without a store. Overhead per step is the cost column"
            f" divided by {STEPS}. No peer: the saga libraries on PyPI are"
            " framework-bound (Temporal, Celery) or unmaintained."
        ),
    )


def _journal() -> Case:
    folder = Path(tempfile.mkdtemp(prefix="bench-saga-"))
    store = SqliteSagaStore(folder / "journal.db")
    journalled = saga(store)
    contenders: dict[str, Contender] = {"ours": journalled.execute}

    def teardown() -> None:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)

    return Case(
        "saga, SQLite journal",
        contenders,
        number=200,
        items=STEPS,
        unit=f"saga of {STEPS} steps",
        item_unit="step",
        note=(
            f"The same {STEPS}-step saga with `SqliteSagaStore` (WAL,"
            " `synchronous=NORMAL`, a file in the temporary directory): every"
            " step boundary is a committed journal write."
        ),
        teardown=teardown,
        scaling=True,
    )
