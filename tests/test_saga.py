"""In-memory saga behaviour: the 0.2.0 API, context, retries, pivot and outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns._types import (
    IntegrationError,
    ManualClock,
    RetryPolicy,
)
from integration_automation_patterns.saga import (
    DEFAULT_COMPENSATION_RETRY,
    SagaContext,
    SagaDefinitionError,
    SagaError,
    SagaNotFoundError,
    SagaOrchestrator,
    SagaResult,
    SagaStatus,
    SagaStep,
)


class Boom(Exception):
    """The failure the tests inject."""


def fail(message: str = "boom") -> Callable[..., Any]:
    """Return a callable that always raises Boom(message)."""

    def raise_boom(*_: object) -> None:
        raise Boom(message)

    return raise_boom


def flaky(failures: int, value: object = "ok") -> Callable[[], object]:
    """Return a callable that fails ``failures`` times, then returns ``value``."""
    calls = {"n": 0}

    def call() -> object:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise Boom(f"attempt {calls['n']}")
        return value

    return call


NO_WAIT = RetryPolicy(max_attempts=3, backoff_seconds=0)


# --------------------------------------------------------------- 0.2.0 API


def test_v020_positional_api_runs_steps_in_order_and_collects_results() -> None:
    """The 0.2.0 fluent API runs every step in order and records each result."""
    trace: list[str] = []

    def step(name: str, value: int) -> Callable[[], int]:
        def run() -> int:
            trace.append(name)
            return value

        return run

    saga = (
        SagaOrchestrator("order")
        .add_step("reserve", step("reserve", 1), lambda: None)
        .add_step("charge", step("charge", 2), lambda: None)
    )

    result = saga.execute()

    assert trace == ["reserve", "charge"]
    assert result.succeeded is True
    assert result.failed_step is None
    assert result.error is None
    assert result.completed_steps == ["reserve", "charge"]
    assert result.compensated_steps == []
    assert result.step_results == {"reserve": 1, "charge": 2}
    assert result.status is SagaStatus.COMPLETED


def test_v020_failure_compensates_completed_steps_in_reverse() -> None:
    """A failing step makes the earlier steps compensate, last first."""
    trace: list[str] = []
    error = Boom("declined")

    def charge() -> None:
        raise error

    saga = SagaOrchestrator("order")
    saga.add_step(name="a", action=lambda: "A", compensate=lambda: trace.append("-a"))
    saga.add_step(name="b", action=lambda: "B", compensate=lambda: trace.append("-b"))
    saga.add_step(name="c", action=charge, compensate=lambda: trace.append("-c"))

    result = saga.execute()

    assert trace == ["-b", "-a"]
    assert result.succeeded is False
    assert result.failed_step == "c"
    assert result.error is error
    assert result.completed_steps == ["a", "b"]
    assert result.compensated_steps == ["b", "a"]
    assert result.step_results == {"a": "A", "b": "B"}
    assert result.status is SagaStatus.COMPENSATED


def test_v020_sagastep_and_sagaresult_keep_their_positional_fields() -> None:
    """SagaStep and SagaResult accept the 0.2.0 positional arguments and defaults."""
    step = SagaStep("s", print, print)
    result = SagaResult(False, "s", None, ["a"], ["a"], {"a": 1})

    assert (step.name, step.action, step.compensate) == ("s", print, print)
    assert result.failed_step == "s"
    assert result.step_results == {"a": 1}
    assert SagaResult(True).status is SagaStatus.COMPLETED
    assert SagaResult(False).status is SagaStatus.COMPENSATED
    assert SagaResult(False, compensation_errors={"a": Boom()}).status is (
        SagaStatus.FAILED
    )
    assert SagaResult(True).completed_steps == []


def test_empty_saga_completes() -> None:
    """A saga without steps completes at once."""
    assert SagaOrchestrator("empty").execute().status is SagaStatus.COMPLETED


# --------------------------------------------------------------- context


def test_context_gives_data_results_and_stable_keys() -> None:
    """Steps that take a SagaContext see data, earlier results and stable keys."""
    seen: list[SagaContext] = []

    def charge(ctx: SagaContext) -> dict[str, str]:
        seen.append(ctx)
        return {"charge_id": "ch_1", "key": ctx.idempotency_key()}

    def refund(ctx: SagaContext) -> None:
        seen.append(ctx)

    saga = SagaOrchestrator("payment")
    saga.add_step("charge", charge, refund)
    saga.add_step("ship", fail())

    result = saga.execute(data={"order": 7}, saga_id="s-1")

    action_ctx, refund_ctx = seen
    assert action_ctx.data == {"order": 7}
    assert action_ctx.step == "charge"
    assert action_ctx.compensating is False
    assert refund_ctx.compensating is True
    assert refund_ctx.results["charge"]["charge_id"] == "ch_1"
    assert action_ctx.idempotency_key() == "payment:s-1:charge"
    assert refund_ctx.idempotency_key("charge") == action_ctx.idempotency_key()
    assert refund_ctx.idempotency_key("ship") == "payment:s-1:ship"
    assert result.saga_id == "s-1"


def test_context_results_are_read_only() -> None:
    """A step cannot rewrite the results of earlier steps through the context."""

    def meddle(ctx: SagaContext) -> None:
        ctx.results["a"] = 2  # type: ignore[index]

    saga = SagaOrchestrator("s").add_step("a", lambda: 1).add_step("b", meddle)

    result = saga.execute()

    assert result.failed_step == "b"
    assert isinstance(result.error, TypeError)


def test_retry_keeps_one_idempotency_key_per_step() -> None:
    """Every retry of a step passes the same idempotency key."""
    keys: list[str] = []

    def call(ctx: SagaContext) -> None:
        keys.append(ctx.idempotency_key())
        if len(keys) < 3:
            raise Boom

    saga = SagaOrchestrator("s", clock=ManualClock()).add_step("a", call, retry=NO_WAIT)

    assert saga.execute().succeeded
    assert len(keys) == 3
    assert len(set(keys)) == 1


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda: None, id="lambda"),
        pytest.param(lambda *args: None, id="varargs"),
        pytest.param(lambda x=1: None, id="defaulted"),
        pytest.param(print, id="builtin"),
    ],
)
def test_callables_without_required_argument_get_none(fn: Callable[..., Any]) -> None:
    """Callables with no required positional argument are called without one."""
    assert SagaStep("s", fn).action_takes_context is False


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda a, b: None, id="two-required"),
        pytest.param(lambda *, key: None, id="required-keyword"),
    ],
)
def test_callables_with_other_shapes_are_rejected(fn: Callable[..., Any]) -> None:
    """An action needing more than one argument is refused when added."""
    with pytest.raises(SagaDefinitionError, match="'s': action must take"):
        SagaOrchestrator("x").add_step("s", fn)


# --------------------------------------------------------------- definition


def test_duplicate_step_names_are_rejected() -> None:
    """Two steps of one saga cannot share a name."""
    saga = SagaOrchestrator("x").add_step("a", lambda: None)

    with pytest.raises(SagaDefinitionError, match="'a' is already in saga 'x'"):
        saga.add_step("a", lambda: None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"name": ""}, "non-empty str", id="empty-name"),
        pytest.param({"action": 3}, "action is not callable", id="action"),
        pytest.param({"compensate": 3}, "compensate is not callable", id="comp"),
        pytest.param({"timeout": 0}, "timeout must be > 0", id="timeout"),
        pytest.param({"retry": 3}, "retry must be a RetryPolicy", id="retry"),
    ],
)
def test_bad_step_arguments_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    """Bad step arguments raise SagaDefinitionError, which is a ValueError."""
    arguments: dict[str, Any] = {"name": "s", "action": lambda: None, **kwargs}

    with pytest.raises(SagaDefinitionError, match=message) as info:
        SagaOrchestrator("x").add_step(**arguments)

    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, IntegrationError)


def test_pivot_rules_are_enforced_when_steps_are_added() -> None:
    """Pivot and later steps take no compensation, and a saga has one pivot."""
    saga = SagaOrchestrator("x").add_step("a", lambda: None, lambda: None)

    with pytest.raises(SagaDefinitionError, match="never compensated"):
        saga.add_step("p", lambda: None, lambda: None, pivot=True)
    saga.add_step("p", lambda: None, pivot=True)
    with pytest.raises(SagaDefinitionError, match="never compensated"):
        saga.add_step("after", lambda: None, lambda: None)
    with pytest.raises(SagaDefinitionError, match="already has a pivot"):
        saga.add_step("p2", lambda: None, pivot=True)
    assert [s.name for s in saga.steps] == ["a", "p"]


def test_lease_seconds_must_be_positive() -> None:
    """A lease of zero seconds is refused."""
    with pytest.raises(SagaDefinitionError, match="lease_seconds"):
        SagaOrchestrator("x", lease_seconds=0)


def test_resume_without_store_is_not_found() -> None:
    """An in-memory orchestrator has no saga to resume."""
    with pytest.raises(SagaNotFoundError, match="no store"):
        SagaOrchestrator("x").resume("nope")


def test_async_step_under_sync_execute_is_a_clear_failure() -> None:
    """An async step run by execute() fails with advice, without leaking a coroutine."""

    async def act() -> None:
        return None

    result = SagaOrchestrator("x").add_step("a", act).execute()

    assert isinstance(result.error, SagaDefinitionError)
    assert "execute_async" in str(result.error)


# --------------------------------------------------------------- retries


def test_step_retries_wait_per_policy_on_the_injected_clock() -> None:
    """A failing step is retried per its policy, sleeping on the clock."""
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=4, backoff_seconds=2, max_backoff_seconds=5)
    saga = SagaOrchestrator("x", clock=clock).add_step("a", flaky(3), retry=policy)

    result = saga.execute()

    assert result.succeeded
    assert result.step_results == {"a": "ok"}
    assert clock.sleeps == [2.0, 4.0, 5.0]


def test_exhausted_step_retries_lead_to_compensation() -> None:
    """When a step's retries run out, the saga compensates with its last error."""
    clock = ManualClock()
    undone: list[str] = []
    saga = SagaOrchestrator("x", clock=clock)
    saga.add_step("a", lambda: 1, lambda: undone.append("a"))
    saga.add_step("b", flaky(5), retry=RetryPolicy(max_attempts=2, backoff_seconds=1))

    result = saga.execute()

    assert result.status is SagaStatus.COMPENSATED
    assert str(result.error) == "attempt 2"
    assert undone == ["a"]
    assert clock.sleeps == [1.0]


def test_deadline_stops_retries_that_would_end_too_late() -> None:
    """No retry wait starts that would end past the policy's deadline."""
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=10, backoff_seconds=4, deadline_seconds=10)
    saga = SagaOrchestrator("x", clock=clock).add_step("a", flaky(9), retry=policy)

    result = saga.execute()

    assert result.status is SagaStatus.COMPENSATED
    assert clock.sleeps == [4.0]


def test_failed_compensation_is_retried_then_saga_fails_and_logs_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A compensation failing every retry leaves the saga FAILED, logged at ERROR."""
    clock = ManualClock()
    undone: list[str] = []
    attempts = {"n": 0}

    def refund() -> None:
        attempts["n"] += 1
        raise Boom("refund down")

    saga = SagaOrchestrator("x", clock=clock)
    saga.add_step("a", lambda: 1, lambda: undone.append("a"))
    saga.add_step("b", lambda: 2, refund)
    saga.add_step("c", fail())

    with caplog.at_level(logging.DEBUG, logger="integration_automation_patterns.saga"):
        result = saga.execute()

    assert attempts["n"] == DEFAULT_COMPENSATION_RETRY.max_attempts
    assert undone == ["a"]
    assert result.status is SagaStatus.FAILED
    assert result.compensated_steps == ["a"]
    assert list(result.compensation_errors) == ["b"]
    assert str(result.compensation_errors["b"]) == "refund down"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [getattr(r, "step", None) for r in errors] == ["b", None]
    assert all(getattr(r, "saga_id", None) == result.saga_id for r in errors)


def test_compensation_recovering_within_retries_counts_as_compensated() -> None:
    """A compensation that succeeds on a retry leaves the saga COMPENSATED."""
    saga = SagaOrchestrator("x", clock=ManualClock())
    saga.add_step("a", lambda: 1, flaky(2), compensation_retry=NO_WAIT)
    saga.add_step("b", fail())

    result = saga.execute()

    assert result.status is SagaStatus.COMPENSATED
    assert result.compensated_steps == ["a"]


def test_steps_without_compensation_are_skipped_when_undoing() -> None:
    """A step with nothing to undo is neither compensated nor an error."""
    undone: list[str] = []
    saga = SagaOrchestrator("x")
    saga.add_step("a", lambda: 1, lambda: undone.append("a"))
    saga.add_step("lookup", lambda: 2)
    saga.add_step("c", fail())

    result = saga.execute()

    assert undone == ["a"]
    assert result.compensated_steps == ["a"]
    assert result.status is SagaStatus.COMPENSATED


# --------------------------------------------------------------- pivot


def test_failure_before_pivot_compensates() -> None:
    """When the pivot step itself fails, the steps before it are compensated."""
    undone: list[str] = []
    saga = SagaOrchestrator("x")
    saga.add_step("a", lambda: 1, lambda: undone.append("a"))
    saga.add_step("pivot", fail(), pivot=True)
    saga.add_step("after", lambda: 3)

    result = saga.execute()

    assert undone == ["a"]
    assert result.status is SagaStatus.COMPENSATED


def test_steps_after_pivot_are_retried_by_default_and_never_compensated() -> None:
    """Past the pivot a step is retried and, if it still fails, the saga FAILS."""
    clock = ManualClock()
    undone: list[str] = []
    saga = SagaOrchestrator("x", clock=clock)
    saga.add_step("a", lambda: 1, lambda: undone.append("a"))
    saga.add_step("pivot", lambda: 2, pivot=True)
    saga.add_step("notify", fail("mail down"))

    result = saga.execute()

    assert undone == []
    assert result.status is SagaStatus.FAILED
    assert result.failed_step == "notify"
    assert result.compensated_steps == []
    assert len(clock.sleeps) == 4


def test_step_after_pivot_that_recovers_completes_the_saga() -> None:
    """A retriable step that succeeds on a retry completes the saga."""
    saga = SagaOrchestrator("x", clock=ManualClock())
    saga.add_step("pivot", lambda: 1, pivot=True)
    saga.add_step("notify", flaky(2), retry=NO_WAIT)

    assert saga.execute().status is SagaStatus.COMPLETED


# --------------------------------------------------------------- property


@settings(deadline=None, max_examples=150)
@given(data=st.data())
def test_exactly_the_steps_before_the_failure_are_compensated_in_reverse(
    data: st.DataObject,
) -> None:
    """For n<=8 steps, failing k and failing compensations, steps 1..k-1 undo."""
    n = data.draw(st.integers(1, 8), label="steps")
    k = data.draw(st.integers(1, n), label="failing step")
    failing = data.draw(st.sets(st.integers(1, k - 1) if k > 1 else st.nothing()))
    attempted: list[int] = []
    ran: list[int] = []

    def action(i: int) -> Callable[[], int]:
        def run() -> int:
            ran.append(i)
            if i == k:
                raise Boom(f"step {i}")
            return i

        return run

    def undo(i: int) -> Callable[[], None]:
        def run() -> None:
            attempted.append(i)
            if i in failing:
                raise Boom(f"undo {i}")

        return run

    saga = SagaOrchestrator("prop", clock=ManualClock())
    for i in range(1, n + 1):
        saga.add_step(f"s{i}", action(i), undo(i), compensation_retry=None)

    result = saga.execute()

    expected = list(range(k - 1, 0, -1))
    assert ran == list(range(1, k + 1))
    assert attempted == expected
    assert result.compensated_steps == [f"s{i}" for i in expected if i not in failing]
    assert set(result.compensation_errors) == {f"s{i}" for i in failing}
    assert result.failed_step == f"s{k}"
    assert result.status is (SagaStatus.FAILED if failing else SagaStatus.COMPENSATED)


def test_saga_errors_share_the_library_root() -> None:
    """Every saga error is an IntegrationError."""
    assert issubclass(SagaError, IntegrationError)
    assert issubclass(SagaNotFoundError, LookupError)


def test_retry_warnings_carry_stable_fields(caplog: pytest.LogCaptureFixture) -> None:
    """Each retry logs a WARNING with saga_id, saga, step, attempt and delay."""
    policy = RetryPolicy(max_attempts=2, backoff_seconds=3)
    saga = SagaOrchestrator("w", clock=ManualClock())
    saga.add_step("a", flaky(1), retry=policy)

    with caplog.at_level(
        logging.WARNING, logger="integration_automation_patterns.saga"
    ):
        result = saga.execute()

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.__dict__["saga_id"] == result.saga_id
    assert record.__dict__["saga"] == "w"
    assert record.__dict__["step"] == "a"
    assert record.__dict__["attempt"] == 1
    assert record.__dict__["delay"] == 3.0
