"""Saga lifecycle listeners: one event per transition, in order, never fatal."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import pytest

from integration_automation_patterns._types import ManualClock, RetryPolicy
from integration_automation_patterns.saga import (
    SagaEvent,
    SagaEventKind,
    SagaOrchestrator,
    SagaStatus,
    SqliteSagaStore,
)

K = SagaEventKind


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs."""


class Boom(RuntimeError):
    """A step's failure."""


def kinds(events: list[SagaEvent]) -> list[tuple[str, str | None, int]]:
    """Reduce events to (kind, step, attempt) for compact assertions."""
    return [(e.kind.value, e.step, e.attempt) for e in events]


def fail(message: str = "down") -> None:
    """Raise the step failure used throughout."""
    raise Boom(message)


def test_success_announces_start_each_step_and_completion(clock: ManualClock) -> None:
    """A successful run emits started, step started/succeeded per step, completed."""
    events: list[SagaEvent] = []
    saga = SagaOrchestrator("order", clock=clock, listeners=[events.append])
    saga.add_step("reserve", lambda: 1).add_step("charge", lambda: 2)

    result = saga.execute(saga_id="s-1")

    assert result.succeeded
    assert kinds(events) == [
        ("saga_started", None, 0),
        ("step_started", "reserve", 1),
        ("step_succeeded", "reserve", 1),
        ("step_started", "charge", 1),
        ("step_succeeded", "charge", 1),
        ("saga_completed", None, 0),
    ]
    assert {(e.saga_id, e.saga_name) for e in events} == {("s-1", "order")}
    assert all(e.time == clock.time() and e.error is None for e in events)


def test_compensated_run_announces_the_failure_and_each_compensation(
    clock: ManualClock,
) -> None:
    """A failing step yields step_failed, compensations in reverse, then compensated."""
    events: list[SagaEvent] = []
    saga = SagaOrchestrator("order", clock=clock, listeners=[events.append])
    saga.add_step("a", lambda: 1, lambda: None)
    saga.add_step("b", lambda: 2, lambda: None)
    saga.add_step("c", fail, lambda: None)

    result = saga.execute()

    assert result.status is SagaStatus.COMPENSATED
    assert kinds(events) == [
        ("saga_started", None, 0),
        ("step_started", "a", 1),
        ("step_succeeded", "a", 1),
        ("step_started", "b", 1),
        ("step_succeeded", "b", 1),
        ("step_started", "c", 1),
        ("step_failed", "c", 1),
        ("compensation_started", "b", 1),
        ("compensation_succeeded", "b", 1),
        ("compensation_started", "a", 1),
        ("compensation_succeeded", "a", 1),
        ("saga_compensated", "c", 0),
    ]
    assert isinstance(events[6].error, Boom)
    assert events[-1].error is result.error


def test_retry_inside_a_step_is_announced_with_its_delay(clock: ManualClock) -> None:
    """Each failed attempt that is retried emits step_retrying with error and wait."""
    events: list[SagaEvent] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise Boom(f"attempt {calls['n']}")
        return "ok"

    policy = RetryPolicy(max_attempts=3, backoff_seconds=2.0, exponential=False)
    saga = SagaOrchestrator("sync", clock=clock)
    saga.add_listener(events.append)
    saga.add_step("push", flaky, retry=policy)
    start = clock.time()

    saga.execute()

    assert kinds(events) == [
        ("saga_started", None, 0),
        ("step_started", "push", 1),
        ("step_retrying", "push", 1),
        ("step_retrying", "push", 2),
        ("step_succeeded", "push", 3),
        ("saga_completed", None, 0),
    ]
    retrying = [e for e in events if e.kind is K.STEP_RETRYING]
    assert [str(e.error) for e in retrying] == ["attempt 1", "attempt 2"]
    assert [e.delay for e in retrying] == [2.0, 2.0]
    assert [e.time - start for e in events] == [0, 0, 0, 2.0, 4.0, 4.0]


def test_failed_compensation_is_announced_and_the_saga_fails(
    clock: ManualClock,
) -> None:
    """A compensation failing after its retries is announced; the saga fails."""
    events: list[SagaEvent] = []
    saga = SagaOrchestrator("refund", clock=clock, listeners=[events.append])
    two = RetryPolicy(max_attempts=2, backoff_seconds=1.0)
    saga.add_step("charge", lambda: 1, fail, compensation_retry=two)
    saga.add_step("ship", fail)

    result = saga.execute()

    assert result.status is SagaStatus.FAILED
    assert kinds(events)[-5:] == [
        ("step_failed", "ship", 1),
        ("compensation_started", "charge", 1),
        ("compensation_retrying", "charge", 1),
        ("compensation_failed", "charge", 2),
        ("saga_failed", "ship", 0),
    ]
    assert events[-2].error is result.compensation_errors["charge"]


def test_resume_announces_resumed_and_only_the_remaining_work(
    clock: ManualClock, tmp_path: Path
) -> None:
    """A resumed run emits saga_resumed, then the unfinished steps, then completed."""
    crash = {"armed": True}

    def charge() -> str:
        if crash["armed"]:
            crash["armed"] = False
            raise Crash
        return "ch_1"

    def build(store: SqliteSagaStore, events: list[SagaEvent]) -> SagaOrchestrator:
        saga = SagaOrchestrator(
            "pay", store=store, clock=clock, worker_id="w", listeners=[events.append]
        )
        return saga.add_step("reserve", lambda: "r").add_step("charge", charge)

    first: list[SagaEvent] = []
    store = SqliteSagaStore(tmp_path / "s.db")
    with pytest.raises(Crash):
        build(store, first).execute(saga_id="p-1")
    store.close()
    assert kinds(first)[-1] == ("step_started", "charge", 1)

    again: list[SagaEvent] = []
    store = SqliteSagaStore(tmp_path / "s.db")
    build(store, again).resume("p-1")
    build(store, again).resume("p-1")
    store.close()

    assert kinds(again) == [
        ("saga_resumed", None, 0),
        ("step_started", "charge", 1),
        ("step_succeeded", "charge", 1),
        ("saga_completed", None, 0),
    ]


def test_execute_async_announces_the_same_sequence(clock: ManualClock) -> None:
    """execute_async emits what execute emits, async steps and retries included."""
    events: list[SagaEvent] = []
    calls = {"n": 0}

    async def flaky() -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Boom("once")
        return 7

    saga = SagaOrchestrator("a", clock=clock, listeners=[events.append])
    saga.add_step("x", flaky, retry=RetryPolicy(max_attempts=2, backoff_seconds=1))

    asyncio.run(saga.execute_async())

    assert kinds(events) == [
        ("saga_started", None, 0),
        ("step_started", "x", 1),
        ("step_retrying", "x", 1),
        ("step_succeeded", "x", 2),
        ("saga_completed", None, 0),
    ]


def test_raising_listener_is_logged_and_never_breaks_the_saga(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener that raises is logged with saga_id; later listeners still run."""
    seen: list[SagaEvent] = []

    def broken(event: SagaEvent) -> None:
        raise ValueError("metrics backend down")

    saga = SagaOrchestrator("order", clock=clock, listeners=[broken, seen.append])
    saga.add_step("a", lambda: 1, lambda: None).add_step("b", fail)

    with caplog.at_level(logging.ERROR, logger="integration_automation_patterns.saga"):
        result = saga.execute(saga_id="r-1")

    assert result.status is SagaStatus.COMPENSATED
    assert result.compensated_steps == ["a"]
    assert len(seen) == 8
    failures = [r for r in caplog.records if "listener" in r.getMessage()]
    assert len(failures) == len(seen)
    assert {getattr(r, "saga_id", None) for r in failures} == {"r-1"}
    assert all(r.exc_info is not None for r in failures)


def test_removed_listener_hears_nothing_more(clock: ManualClock) -> None:
    """remove_listener stops delivery; removing an unknown listener is harmless."""
    events: list[SagaEvent] = []
    saga = SagaOrchestrator("order", clock=clock)
    saga.add_step("a", lambda: 1)
    saga.add_listener(events.append)
    saga.execute()
    count = len(events)

    saga.remove_listener(events.append)
    saga.remove_listener(print)
    saga.execute()

    assert count == 4
    assert len(events) == count


def test_event_is_frozen_and_kind_is_a_string(clock: ManualClock) -> None:
    """Events cannot be altered by a listener, and kinds compare as strings."""
    events: list[SagaEvent] = []
    SagaOrchestrator("o", clock=clock, listeners=[events.append]).execute()

    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0].step = "x"  # type: ignore[misc]
    assert events[0].kind == "saga_started"
    assert [e.kind for e in events] == [K.SAGA_STARTED, K.SAGA_COMPLETED]


def test_no_event_is_built_without_listeners(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no listener, no SagaEvent is ever constructed, even on retries."""
    import integration_automation_patterns.saga as saga_module

    def forbidden(*args: object, **kwargs: object) -> SagaEvent:
        raise AssertionError("an event was built with no listener")

    monkeypatch.setattr(saga_module, "SagaEvent", forbidden)
    saga = SagaOrchestrator("quiet", clock=clock)
    one_retry = RetryPolicy(max_attempts=2, backoff_seconds=1)
    saga.add_step("a", lambda: 1, fail, compensation_retry=one_retry)
    saga.add_step("b", fail, retry=one_retry)

    result = saga.execute()

    assert result.status is SagaStatus.FAILED
    assert clock.sleeps == [1.0, 1.0]
