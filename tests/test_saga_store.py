"""The durable saga journal on SQLite and PostgreSQL: resume, leases, recovery."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns._types import ManualClock, new_event_id
from integration_automation_patterns.saga import (
    SagaContext,
    SagaDefinitionError,
    SagaError,
    SagaJournalError,
    SagaLeaseError,
    SagaNotFoundError,
    SagaOrchestrator,
    SagaResult,
    SagaStatus,
    SqliteSagaStore,
    SqlSagaStore,
    StepEntry,
)

StoreFactory = Callable[[], SqlSagaStore]


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, no journal write."""


@pytest.fixture(params=["sqlite-file", "sqlite-dbapi", "postgresql"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[StoreFactory]:
    """A factory of store instances over one database, as separate workers use."""
    made: list[SqlSagaStore] = []
    path = tmp_path / "saga.db"

    def build() -> SqlSagaStore:
        store: SqlSagaStore
        if request.param == "sqlite-file":
            store = SqliteSagaStore(path)
        elif request.param == "sqlite-dbapi":
            store = SqlSagaStore(lambda: sqlite3.connect(path), "sqlite")
        else:
            connect = request.getfixturevalue("postgres_connect")
            store = SqlSagaStore(connect, "postgresql")
        made.append(store)
        return store

    yield build

    for store in made:
        store.close()


def three_steps(
    name: str = "order", *, store: Any, clock: ManualClock, worker: str = "w1"
) -> tuple[SagaOrchestrator, list[str]]:
    """Build a saga whose actions and compensations append to a trace."""
    trace: list[str] = []

    def act(ctx: SagaContext) -> dict[str, Any]:
        trace.append(ctx.step)
        return {"step": ctx.step, "key": ctx.idempotency_key(), "input": ctx.data}

    def undo(ctx: SagaContext) -> None:
        trace.append(f"-{ctx.step}")

    saga = SagaOrchestrator(name, store=store, clock=clock, worker_id=worker)
    for step in ("a", "b", "c"):
        saga.add_step(step, act, undo)
    return saga, trace


def test_completed_saga_is_journalled_and_resume_returns_its_result(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """A finished saga's recorded result comes back from resume unchanged."""
    saga, trace = three_steps(store=make_store(), clock=clock)

    result = saga.execute({"order": 1}, saga_id="o-1")
    again = SagaOrchestrator("order", store=make_store(), clock=clock)
    for step in saga.steps:
        again.add_step(step.name, step.action, step.compensate)
    replay = again.resume("o-1")

    assert trace == ["a", "b", "c"]
    assert replay.status is SagaStatus.COMPLETED
    assert replay.step_results == result.step_results
    assert replay.completed_steps == ["a", "b", "c"]
    assert replay.step_results["a"]["input"] == {"order": 1}
    assert trace == ["a", "b", "c"]


def test_each_step_start_is_journalled_before_its_action_runs(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """The journal shows a step started while its action runs, done after."""
    store = make_store()
    seen: list[StepEntry | None] = []

    def look(ctx: SagaContext) -> int:
        record = store.load(ctx.saga_id)
        assert record is not None
        seen.append(record.entries.get(("a", "action")))
        return 1

    SagaOrchestrator("j", store=store, clock=clock).add_step("a", look).execute(
        saga_id="j-1"
    )
    record = store.load("j-1")

    assert seen == [StepEntry("started")]
    assert record is not None
    assert record.entries[("a", "action")] == StepEntry("done", result="1")
    assert record.status is SagaStatus.COMPLETED


def test_resume_after_crash_reruns_the_unfinished_step_with_the_same_key(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """A step started without an outcome runs again, under the same key."""
    keys: list[str] = []
    crash = {"armed": True}

    def charge(ctx: SagaContext) -> str:
        keys.append(ctx.idempotency_key())
        if crash["armed"]:
            crash["armed"] = False
            raise Crash
        return "ch_1"

    def build(store: Any) -> SagaOrchestrator:
        saga = SagaOrchestrator("pay", store=store, clock=clock, worker_id="w")
        return saga.add_step("reserve", lambda: "r_1").add_step("charge", charge)

    with pytest.raises(Crash):
        build(make_store()).execute({"amount": 5}, saga_id="p-1")
    store = make_store()
    assert store.incomplete() == ["p-1"]

    result = build(store).resume("p-1")

    assert result.status is SagaStatus.COMPLETED
    assert result.step_results == {"reserve": "r_1", "charge": "ch_1"}
    assert keys == ["pay:p-1:charge", "pay:p-1:charge"]
    assert store.incomplete() == []


def test_resume_during_compensation_finishes_undoing(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """A crash while compensating resumes the compensations that remain."""
    undone: list[str] = []
    crash = {"armed": True}

    def undo_a() -> None:
        if crash["armed"]:
            crash["armed"] = False
            raise Crash
        undone.append("a")

    def build(store: Any) -> SagaOrchestrator:
        saga = SagaOrchestrator("undo", store=store, clock=clock, worker_id="w")
        saga.add_step("a", lambda: 1, undo_a)
        saga.add_step("b", lambda: 2, lambda: undone.append("b"))

        def refuse() -> None:
            raise ValueError("card declined")

        return saga.add_step("c", refuse)

    with pytest.raises(Crash):
        build(make_store()).execute(saga_id="u-1")
    store = make_store()
    record = store.load("u-1")
    assert record is not None
    assert record.status is SagaStatus.COMPENSATING

    result = build(store).resume("u-1")

    assert undone == ["b", "a"]
    assert result.status is SagaStatus.COMPENSATED
    assert result.failed_step == "c"
    assert str(result.error) == "ValueError: card declined"
    assert result.compensated_steps == ["b", "a"]


def test_failed_compensation_outcome_survives_resume(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """A FAILED saga reads back with its compensation errors by step."""
    saga = SagaOrchestrator("f", store=make_store(), clock=clock)

    def broken() -> None:
        raise RuntimeError("ledger offline")

    def refuse() -> None:
        raise RuntimeError("nope")

    saga.add_step("a", lambda: 1, broken, compensation_retry=None)
    saga.add_step("b", refuse)
    saga.execute(saga_id="f-1")

    replay = saga.resume("f-1")

    assert replay.status is SagaStatus.FAILED
    assert str(replay.compensation_errors["a"]) == "RuntimeError: ledger offline"
    assert replay.compensated_steps == []


def test_resumed_saga_sees_the_journalled_input(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """The data given at start is what resumed steps read, not a new value."""
    seen: list[Any] = []
    crash = {"armed": True}

    def step(ctx: SagaContext) -> None:
        seen.append(ctx.data)
        if crash["armed"]:
            crash["armed"] = False
            raise Crash

    saga = SagaOrchestrator("d", store=make_store(), clock=clock, worker_id="w")
    saga.add_step("a", step)
    with pytest.raises(Crash):
        saga.execute({"items": [1, 2]}, saga_id="d-1")

    saga.resume("d-1")

    assert seen == [{"items": [1, 2]}, {"items": [1, 2]}]


def test_unknown_saga_id_raises_not_found(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """Resuming an id the journal never saw raises SagaNotFoundError."""
    saga, _ = three_steps(store=make_store(), clock=clock)

    with pytest.raises(SagaNotFoundError, match="'ghost'"):
        saga.resume("ghost")


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(("a", "c", "b"), id="reordered"),
        pytest.param(("a", "b"), id="missing"),
        pytest.param(("a", "b", "c", "d"), id="extra"),
    ],
)
def test_resume_with_a_different_definition_is_refused(
    make_store: StoreFactory, clock: ManualClock, steps: tuple[str, ...]
) -> None:
    """Step names or order that differ from the journal raise, never guess."""
    store = make_store()
    original, _ = three_steps(store=store, clock=clock)
    original.execute(saga_id="x-1")
    changed = SagaOrchestrator("order", store=store, clock=clock)
    for name in steps:
        changed.add_step(name, lambda: None)

    with pytest.raises(SagaDefinitionError, match="journalled as 'order'"):
        changed.resume("x-1")


def test_duplicate_saga_id_is_refused(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """Starting a saga under an id already journalled raises SagaError."""
    saga, trace = three_steps(store=make_store(), clock=clock)
    saga.execute(saga_id="dup")

    with pytest.raises(SagaError, match="already exists"):
        saga.execute(saga_id="dup")
    assert trace == ["a", "b", "c"]


def test_unserialisable_result_names_the_step(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """A result the journal cannot hold raises SagaJournalError naming the step."""
    saga = SagaOrchestrator("s", store=make_store(), clock=clock)
    saga.add_step("fetch", lambda: {1, 2})

    with pytest.raises(SagaJournalError, match="result of step 'fetch'") as info:
        saga.execute()

    assert isinstance(info.value, ValueError)
    assert isinstance(info.value.__cause__, TypeError)


def test_unserialisable_input_is_refused_before_any_step(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """Input data the journal cannot hold is refused before anything runs."""
    saga, trace = three_steps(store=make_store(), clock=clock)

    with pytest.raises(SagaJournalError, match="input data"):
        saga.execute(data=object())
    assert trace == []


def test_incomplete_lists_running_and_compensating_sagas_by_name(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """incomplete() lists unfinished sagas, optionally for one saga name."""
    store = make_store()

    def crash() -> None:
        raise Crash

    def refuse() -> None:
        raise RuntimeError("no")

    running = SagaOrchestrator("r", store=store, clock=clock).add_step("a", crash)
    comp = SagaOrchestrator("c", store=store, clock=clock)
    comp.add_step("a", lambda: 1, crash).add_step("b", refuse)
    with pytest.raises(Crash):
        running.execute(saga_id="1-run")
    with pytest.raises(Crash):
        comp.execute(saga_id="2-comp")
    three_steps(store=store, clock=clock)[0].execute(saga_id="3-done")

    assert store.incomplete() == ["1-run", "2-comp"]
    assert store.incomplete("c") == ["2-comp"]


def test_a_leased_saga_cannot_be_resumed_by_another_worker(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """While one worker runs a saga, another's resume raises SagaLeaseError."""
    rival, _ = three_steps(store=make_store(), clock=clock, worker="w2")
    refused: list[SagaLeaseError] = []

    def probe() -> int:
        with pytest.raises(SagaLeaseError) as info:
            rival.resume("l-1")
        refused.append(info.value)
        return 1

    owner = SagaOrchestrator("order", store=make_store(), clock=clock, worker_id="w1")
    owner.add_step("a", probe).add_step("b", lambda: 2).add_step("c", lambda: 3)

    assert owner.execute(saga_id="l-1").status is SagaStatus.COMPLETED
    assert len(refused) == 1


def test_lease_expiry_lets_another_worker_take_over_after_a_crash(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """After a crash the lease blocks others until it expires, then one resumes."""
    crash = {"armed": True}

    def b() -> int:
        if crash["armed"]:
            crash["armed"] = False
            raise Crash
        return 2

    def build(worker: str) -> SagaOrchestrator:
        saga = SagaOrchestrator(
            "lease", store=make_store(), clock=clock, worker_id=worker, lease_seconds=30
        )
        return saga.add_step("a", lambda: 1).add_step("b", b)

    with pytest.raises(Crash):
        build("w1").execute(saga_id="e-1")
    rival = build("w2")

    with pytest.raises(SagaLeaseError):
        rival.resume("e-1")
    assert rival.recover() == []
    clock.advance(30)
    [result] = rival.recover()

    assert result.status is SagaStatus.COMPLETED
    assert result.saga_id == "e-1"


def test_a_worker_that_lost_its_lease_cannot_write(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """Once another worker takes over, the first one's next write is refused."""
    calls = {"n": 0}

    def b() -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            clock.advance(31)
            taken = build("w2").resume("t-1")
            assert taken.status is SagaStatus.COMPLETED
        return 2

    def build(worker: str) -> SagaOrchestrator:
        saga = SagaOrchestrator(
            "take", store=make_store(), clock=clock, worker_id=worker, lease_seconds=30
        )
        return saga.add_step("a", lambda: 1).add_step("b", b)

    with pytest.raises(SagaLeaseError, match="'w1' no longer holds the lease"):
        build("w1").execute(saga_id="t-1")
    assert calls["n"] == 2


def test_the_same_worker_reclaims_its_own_lease_at_start_up(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    """A restarted worker with a stable id resumes its own sagas at once."""

    def crash() -> None:
        raise Crash

    def build(action: Callable[[], Any]) -> SagaOrchestrator:
        saga = SagaOrchestrator("own", store=make_store(), clock=clock, worker_id="w")
        return saga.add_step("a", action)

    with pytest.raises(Crash):
        build(crash).execute(saga_id="own-1")

    [result] = build(lambda: 1).recover()

    assert result.status is SagaStatus.COMPLETED


def test_recover_without_store_has_nothing_to_do(clock: ManualClock) -> None:
    """An in-memory orchestrator recovers nothing."""
    assert SagaOrchestrator("x", clock=clock).recover() == []


def test_unknown_dialect_is_refused() -> None:
    """SqlSagaStore names the supported dialects."""
    with pytest.raises(SagaDefinitionError, match="'sqlite' or 'postgresql'"):
        SqlSagaStore(lambda: None, "mysql")


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    """The SQLite journal runs in write-ahead-log mode."""
    store = SqliteSagaStore(tmp_path / "wal.db")
    store.create_schema()
    store.close()

    with sqlite3.connect(tmp_path / "wal.db") as conn:
        [mode] = conn.execute("PRAGMA journal_mode").fetchone()
    conn.close()

    assert mode == "wal"
    assert "wal.db" in repr(store)


def test_store_reconnects_after_its_connection_breaks(
    tmp_path: Path, clock: ManualClock
) -> None:
    """A write on a dead connection fails once; the next call reconnects."""
    store = SqliteSagaStore(tmp_path / "r.db")
    saga = SagaOrchestrator("r", store=store, clock=clock).add_step("a", lambda: 1)
    saga.execute(saga_id="r-1")
    store._conn.close()

    with pytest.raises(sqlite3.ProgrammingError):
        saga.execute(saga_id="r-2")
    result = saga.execute(saga_id="r-3")
    store.close()

    assert result.status is SagaStatus.COMPLETED


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlSagaStore]:
    """One SQLite journal shared by the examples of a property test."""
    store = SqliteSagaStore(tmp_path_factory.mktemp("prop") / "saga.db")
    yield store
    store.close()


@settings(deadline=None, max_examples=60)
@given(data=st.data())
def test_crashes_at_random_boundaries_never_repeat_or_lose_an_effect(
    shared_store: SqlSagaStore, data: st.DataObject
) -> None:
    """Crash anywhere, any number of times: resume ends right, effects once."""
    n = data.draw(st.integers(1, 6), label="steps")
    failing = data.draw(st.none() | st.integers(1, n), label="failing step")
    points = [(p, i, w) for p in PHASES for i in range(1, n + 1) for w in WHEN]
    crashes = set(data.draw(st.lists(st.sampled_from(points), max_size=6)))
    external: dict[str, int] = {}

    def boundary(point: tuple[str, int, str]) -> None:
        if point in crashes:
            crashes.discard(point)
            raise Crash

    def effect(phase: str, i: int) -> Callable[[SagaContext], str]:
        def run(ctx: SagaContext) -> str:
            boundary((phase, i, "before"))
            if phase == "action" and i == failing:
                raise RuntimeError("refused")
            key = f"{ctx.idempotency_key()}:{phase}"
            external[key] = external.get(key, 0) + 1
            boundary((phase, i, "after"))
            return key

        return run

    saga_id = new_event_id()
    saga = SagaOrchestrator("prop", store=shared_store, worker_id="w")
    for i in range(1, n + 1):
        saga.add_step(f"s{i}", effect("action", i), effect("compensation", i))

    result = run_until_finished(saga, saga_id)

    done = range(1, n + 1) if failing is None else range(1, failing)
    expected = {f"prop:{saga_id}:s{i}:action" for i in done}
    if failing is not None:
        expected |= {f"prop:{saga_id}:s{i}:compensation" for i in done}
    assert set(external) == expected
    assert result.status is (
        SagaStatus.COMPLETED if failing is None else SagaStatus.COMPENSATED
    )
    assert result.completed_steps == [f"s{i}" for i in done]


PHASES = ("action", "compensation")
WHEN = ("before", "after")


def run_until_finished(saga: SagaOrchestrator, saga_id: str) -> SagaResult:
    """Start the saga and resume it after every crash until it finishes."""
    result = survive(lambda: saga.execute(saga_id=saga_id))
    while result is None:
        result = survive(lambda: saga.resume(saga_id))
    return result


def survive(run: Callable[[], SagaResult]) -> SagaResult | None:
    """Return the run's result, or None when it crashed."""
    try:
        return run()
    except Crash:
        return None


def test_store_closes_its_connection_as_a_context_manager(tmp_path: Path) -> None:
    """Leaving a ``with`` block closes the journal connection the store opened."""
    opened: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "journal.db")
        opened.append(conn)
        return conn

    with SqlSagaStore(connect, "sqlite") as store:
        saga = SagaOrchestrator("order", store=store).add_step("a", lambda: 1)
        assert saga.execute().succeeded

    assert opened
    with pytest.raises(sqlite3.ProgrammingError):
        opened[-1].execute("SELECT 1")
