"""Async sagas: coroutine steps, timeouts on the injected clock, cancellation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from integration_automation_patterns._types import ManualClock, RetryPolicy
from integration_automation_patterns.saga import (
    SagaContext,
    SagaOrchestrator,
    SagaStatus,
    SqliteSagaStore,
)


def test_async_and_plain_steps_mix(clock: ManualClock) -> None:
    """execute_async awaits async def steps and calls plain ones."""
    undone: list[str] = []

    async def charge(ctx: SagaContext) -> str:
        await asyncio.sleep(0)
        return f"charged {ctx.data['amount']}"

    async def refund() -> None:
        undone.append("charge")

    async def ship() -> None:
        raise RuntimeError("no courier")

    saga = SagaOrchestrator("a", clock=clock)
    saga.add_step("reserve", lambda: "r", lambda: undone.append("reserve"))
    saga.add_step("charge", charge, refund)
    saga.add_step("ship", ship)

    result = asyncio.run(saga.execute_async({"amount": 5}))

    assert result.step_results == {"reserve": "r", "charge": "charged 5"}
    assert undone == ["charge", "reserve"]
    assert result.status is SagaStatus.COMPENSATED


def test_async_retries_sleep_on_the_clock(clock: ManualClock) -> None:
    """Async retries wait through the clock's async sleep."""
    calls = {"n": 0}

    async def flaky() -> int:
        calls["n"] += 1
        if calls["n"] < 3:
            raise RuntimeError("busy")
        return calls["n"]

    policy = RetryPolicy(max_attempts=3, backoff_seconds=5)
    saga = SagaOrchestrator("r", clock=clock).add_step("a", flaky, retry=policy)

    result = asyncio.run(saga.execute_async())

    assert result.step_results == {"a": 3}
    assert clock.sleeps == [5.0, 10.0]


def test_timeout_bounds_an_async_step_and_counts_as_failure(clock: ManualClock) -> None:
    """A step still running when its timeout passes fails with TimeoutError."""
    cancelled: list[bool] = []
    undone: list[str] = []

    async def hang() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    saga = SagaOrchestrator("t", clock=clock)
    saga.add_step("a", lambda: 1, lambda: undone.append("a"))
    saga.add_step("b", hang, timeout=7.5)

    result = asyncio.run(saga.execute_async())

    assert isinstance(result.error, TimeoutError)
    assert "'b'" in str(result.error)
    assert cancelled == [True]
    assert undone == ["a"]
    assert clock.sleeps == [7.5]


def test_timeout_does_not_cut_a_quick_step(clock: ManualClock) -> None:
    """A step that finishes before its timeout keeps its result."""

    async def quick() -> str:
        return "done"

    saga = SagaOrchestrator("q", clock=clock).add_step("a", quick, timeout=1)

    assert asyncio.run(saga.execute_async()).step_results == {"a": "done"}


def test_cancellation_compensates_shielded_records_and_reraises(
    clock: ManualClock, tmp_path: Path
) -> None:
    """Cancelling during a step compensates, records COMPENSATED, re-raises."""
    store = SqliteSagaStore(tmp_path / "c.db")
    undone: list[str] = []
    entered = asyncio.Event()

    async def slow_refund() -> None:
        await asyncio.sleep(0)
        undone.append("a")

    async def hang() -> None:
        entered.set()
        await asyncio.Event().wait()

    saga = SagaOrchestrator("c", store=store, clock=clock)
    saga.add_step("a", lambda: 1, slow_refund)
    saga.add_step("b", hang, lambda: undone.append("b"))

    async def main() -> None:
        task = asyncio.ensure_future(saga.execute_async(saga_id="c-1"))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    result = saga.resume("c-1")
    store.close()

    assert undone == ["a"]
    assert result.status is SagaStatus.COMPENSATED
    assert result.failed_step == "b"
    assert result.compensated_steps == ["a"]


def test_cancellation_during_a_compensation_still_finishes_it(
    clock: ManualClock,
) -> None:
    """A cancel arriving mid-compensation re-runs it shielded, then re-raises."""
    refunds: list[int] = []
    in_refund = asyncio.Event()

    async def refund() -> None:
        refunds.append(len(refunds))
        if len(refunds) == 1:
            in_refund.set()
            await asyncio.Event().wait()

    async def refuse() -> None:
        raise RuntimeError("declined")

    saga = SagaOrchestrator("m", clock=clock)
    saga.add_step("a", lambda: 1, lambda: refunds.append(-1))
    saga.add_step("b", lambda: 2, refund)
    saga.add_step("c", refuse)

    async def main() -> None:
        task = asyncio.ensure_future(saga.execute_async())
        await in_refund.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())

    assert refunds == [0, 1, -1]


def test_cancellation_past_the_pivot_leaves_the_saga_to_resume(
    clock: ManualClock, tmp_path: Path
) -> None:
    """Past the pivot a cancelled saga stays RUNNING for a later resume."""
    store = SqliteSagaStore(tmp_path / "p.db")
    entered = asyncio.Event()
    undone: list[str] = []
    block = {"on": True}

    async def notify() -> str:
        if block["on"]:
            entered.set()
            await asyncio.Event().wait()
        return "sent"

    saga = SagaOrchestrator("p", store=store, clock=clock, worker_id="w")
    saga.add_step("a", lambda: 1, lambda: undone.append("a"))
    saga.add_step("pivot", lambda: 2, pivot=True)
    saga.add_step("notify", notify)

    async def main() -> None:
        task = asyncio.ensure_future(saga.execute_async(saga_id="p-1"))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert store.incomplete() == ["p-1"]
    block["on"] = False
    result = asyncio.run(saga.resume_async("p-1"))
    finished = asyncio.run(saga.resume_async("p-1"))
    store.close()

    assert undone == []
    assert result.status is SagaStatus.COMPLETED
    assert finished.step_results == {"a": 1, "pivot": 2, "notify": "sent"}
