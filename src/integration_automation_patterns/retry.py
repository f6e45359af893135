"""Bounded retry for plain and ``async def`` callables, with a shared retry budget.

``retry(policy)`` decorates a callable; ``call_with_retry`` and
``acall_with_retry`` do the same for one call. The policy decides how many
attempts to make (the first included) and how long to wait between them;
``on`` decides which failures are worth another attempt. When the executor
gives up it re-raises the last exception unchanged, so callers' ``except``
clauses keep working. ``on_retry`` hears of every retry before its wait and
``on_give_up`` of the moment a retryable failure is given up on.

A call that succeeds first time costs one extra function frame: no clock is
read and nothing is allocated until an attempt fails (unless the policy has a
deadline, which needs the start time, or a budget, which counts the call).
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import random
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeAlias, TypeVar, cast, overload

from ._types import SYSTEM_CLOCK, Clock, ConfigurationError, Jitter, RetryPolicy

__all__ = [
    "Jitter",
    "RetryBudget",
    "RetryDetails",
    "RetryPolicy",
    "acall_with_retry",
    "call_with_retry",
    "retry",
]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

ExceptionTypes: TypeAlias = "type[BaseException] | tuple[type[BaseException], ...]"
RetryOn: TypeAlias = "ExceptionTypes | Callable[[BaseException], bool]"

_RETRY_ALL: tuple[type[BaseException], ...] = (Exception,)

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """What ``on_retry`` learns before each wait, and ``on_give_up`` at the end.

    Attributes:
        name: the qualified name of the callable being retried.
        attempt: the attempt that just failed, counting from 1.
        wait: seconds the executor is about to wait (0.0 when giving up).
        elapsed: seconds since the call started (since the first failure when
            the policy has no deadline, so successful calls never read a clock).
        exception: the failure that triggered the retry, or the one about to be
            re-raised when giving up.
        give_up_reason: why the executor gives up: "attempts exhausted",
            "deadline would pass" or "retry budget exhausted"; empty for a
            retry.
    """

    name: str
    attempt: int
    wait: float
    elapsed: float
    exception: BaseException
    give_up_reason: str = ""


class RetryBudget:
    """A token bucket that caps retries across every call site sharing it.

    Each first attempt earns ``ratio`` of a token and each retry spends one,
    so over time retries stay within ``ratio`` of the calls (as gRPC's retry
    throttling and the AWS SDKs' retry quota do). So that a quiet client can
    still retry, a floor of ``min_retries_per_second`` tokens refills with
    time, up to one second's worth. A retry the budget refuses is not made:
    the executor gives up and re-raises.

    Args:
        ratio: tokens earned per first attempt, e.g. 0.1 for "at most one
            retry per ten calls".
        min_retries_per_second: the floor's refill rate and size.
        max_tokens: the most earned tokens kept, so a long healthy spell
            cannot bank a retry storm for later.
        clock: where the floor reads time.
    """

    def __init__(
        self,
        ratio: float = 0.1,
        *,
        min_retries_per_second: float = 10.0,
        max_tokens: float = 100.0,
        clock: Clock | None = None,
    ) -> None:
        _check_budget_args(ratio, min_retries_per_second, max_tokens)
        self.ratio = ratio
        self.min_retries_per_second = min_retries_per_second
        self.max_tokens = max_tokens
        self._clock = clock or SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._earned = 0.0
        self._floor = float(min_retries_per_second)
        self._floor_at = self._clock.monotonic()

    @property
    def available(self) -> float:
        """Return the retries the budget would allow right now."""
        with self._lock:
            self._refill_floor()
            return self._earned + self._floor

    def deposit(self) -> None:
        """Earn ``ratio`` of a token for a first attempt."""
        with self._lock:
            self._earned = min(self.max_tokens, self._earned + self.ratio)

    def withdraw(self) -> bool:
        """Spend one token for a retry; return False when none is left."""
        with self._lock:
            if self._earned >= 1.0 - _EPSILON:
                self._earned = max(0.0, self._earned - 1.0)
                return True

            self._refill_floor()
            if self._floor >= 1.0 - _EPSILON:
                self._floor = max(0.0, self._floor - 1.0)
                return True
            return False

    def _refill_floor(self) -> None:
        now = self._clock.monotonic()
        gained = (now - self._floor_at) * self.min_retries_per_second
        self._floor = min(float(self.min_retries_per_second), self._floor + gained)
        self._floor_at = now

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio!r}, "
            f"min_retries_per_second={self.min_retries_per_second!r}, "
            f"max_tokens={self.max_tokens!r})"
        )


def _check_budget_args(ratio: float, floor: float, max_tokens: float) -> None:
    for name, value in (
        ("ratio", ratio),
        ("min_retries_per_second", floor),
        ("max_tokens", max_tokens),
    ):
        if not (math.isfinite(value) and value >= 0):
            msg = f"RetryBudget.{name} must be a finite number >= 0"
            raise ConfigurationError(msg)


class _Retrier:
    """The shared, immutable part of a retrying call; per-call state is local."""

    __slots__ = (
        "budget",
        "catch",
        "clock",
        "name",
        "on_give_up",
        "on_retry",
        "policy",
        "predicate",
        "rng",
        "timed",
    )

    def __init__(
        self,
        policy: RetryPolicy | None,
        *,
        on: RetryOn,
        budget: RetryBudget | None = None,
        clock: Clock | None,
        on_retry: Callable[[RetryDetails], object] | None,
        rng: random.Random | None,
        name: str,
        on_give_up: Callable[[RetryDetails], object] | None = None,
    ) -> None:
        self.policy = policy or _DEFAULT_POLICY
        self.catch, self.predicate = _catch_spec(on)
        self.budget = budget
        self.clock = clock or SYSTEM_CLOCK
        self.on_retry = on_retry
        self.on_give_up = on_give_up
        self.rng = rng
        self.name = name
        self.timed = self.policy.deadline_seconds is not None

    def start(self) -> float | None:
        """Count a first attempt; return its start time when a deadline needs it."""
        if self.budget is not None:
            self.budget.deposit()
        return self.clock.monotonic() if self.timed else None

    def wants(self, exc: BaseException) -> bool:
        """Return True if ``exc`` is a failure worth another attempt."""
        return self.predicate is None or bool(self.predicate(exc))

    def next_wait(
        self,
        attempt: int,
        exc: BaseException,
        previous: float | None,
        elapsed: float,
    ) -> float | None:
        """Return the wait before the next attempt, or None to give up."""
        policy = self.policy
        if attempt >= policy.max_attempts:
            return self._give_up(attempt, "attempts exhausted", exc, elapsed)

        wait = policy.delay_for_attempt(attempt - 1, rng=self.rng, previous=previous)
        wait = _apply_hint(wait, exc, policy.max_backoff_seconds)
        deadline = policy.deadline_seconds
        if deadline is not None and elapsed + wait > deadline:
            return self._give_up(attempt, "deadline would pass", exc, elapsed)

        if self.budget is not None and not self.budget.withdraw():
            return self._give_up(attempt, "retry budget exhausted", exc, elapsed)
        return wait

    def report(
        self, attempt: int, wait: float, elapsed: float, exc: BaseException
    ) -> None:
        """Log the retry and hand its details to ``on_retry``."""
        logger.warning(
            "retrying %s after attempt %d failed: waiting %.3fs",
            self.name,
            attempt,
            wait,
            extra={"retry_name": self.name, "attempt": attempt, "wait": wait},
        )
        if self.on_retry is not None:
            self.on_retry(RetryDetails(self.name, attempt, wait, elapsed, exc))

    def _give_up(
        self, attempt: int, why: str, exc: BaseException, elapsed: float
    ) -> float | None:
        logger.warning(
            "giving up on %s after %d attempt(s): %s",
            self.name,
            attempt,
            why,
            extra={"retry_name": self.name, "attempt": attempt, "reason": why},
        )
        if self.on_give_up is not None:
            details = RetryDetails(self.name, attempt, 0.0, elapsed, exc, why)
            self.on_give_up(details)
        return None

    def run(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: BaseException,
        started: float | None,
    ) -> R:
        """Retry ``fn`` after its first attempt failed with ``exc``."""
        clock = self.clock
        origin = clock.monotonic() if started is None else started
        attempt, previous = 1, None
        while True:
            elapsed = clock.monotonic() - origin
            wait = self.next_wait(attempt, exc, previous, elapsed)
            if wait is None:
                raise exc

            self.report(attempt, wait, elapsed, exc)
            clock.sleep(wait)
            attempt, previous = attempt + 1, wait
            try:
                return fn(*args, **kwargs)
            except self.catch as failure:
                if not self.wants(failure):
                    raise
                exc = failure

    async def arun(
        self,
        fn: Callable[..., Awaitable[R]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: BaseException,
        started: float | None,
    ) -> R:
        """Retry the coroutine function ``fn`` after its first attempt failed."""
        clock = self.clock
        origin = clock.monotonic() if started is None else started
        attempt, previous = 1, None
        while True:
            elapsed = clock.monotonic() - origin
            wait = self.next_wait(attempt, exc, previous, elapsed)
            if wait is None:
                raise exc

            self.report(attempt, wait, elapsed, exc)
            await clock.asleep(wait)
            attempt, previous = attempt + 1, wait
            try:
                return await fn(*args, **kwargs)
            except self.catch as failure:
                if not self.wants(failure):
                    raise
                exc = failure


_DEFAULT_POLICY = RetryPolicy()


def _catch_spec(
    on: RetryOn,
) -> tuple[tuple[type[BaseException], ...], Callable[[BaseException], bool] | None]:
    """Split ``on`` into the types to catch and an optional predicate."""
    if isinstance(on, tuple):
        members = cast("tuple[object, ...]", on)
        if not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in members
        ):
            raise ConfigurationError(f"on must hold exception types, got {on!r}")
        return on, None
    if isinstance(on, type):
        if not issubclass(on, BaseException):
            raise ConfigurationError(f"on must be an exception type, got {on!r}")
        return (on,), None
    if not callable(on):
        msg = f"on must be exception types or a predicate, got {on!r}"
        raise ConfigurationError(msg)
    return _RETRY_ALL, on


def _apply_hint(wait: float, exc: BaseException, cap: float) -> float:
    """Stretch ``wait`` to the failure's ``retry_after`` hint, never past ``cap``."""
    hint = getattr(exc, "retry_after", None)
    if isinstance(hint, bool) or not isinstance(hint, (int, float)):
        return wait
    if not math.isfinite(hint) or hint <= wait:
        return wait
    return max(wait, min(float(hint), float(cap)))


def _name_of(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}" if module else qualname


class RetryDecorator(Protocol):
    """The decorator ``retry(...)`` returns; it keeps the decorated signature."""

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...


def retry(
    policy: RetryPolicy | None = None,
    *,
    on: RetryOn = _RETRY_ALL,
    budget: RetryBudget | None = None,
    clock: Clock | None = None,
    on_retry: Callable[[RetryDetails], object] | None = None,
    rng: random.Random | None = None,
    on_give_up: Callable[[RetryDetails], object] | None = None,
) -> RetryDecorator:
    """Return a decorator that retries a plain or ``async def`` callable.

    Args:
        policy: attempts, backoff, jitter and deadline; defaults to
            ``RetryPolicy()`` (3 attempts, waits of 30 s then 60 s).
        on: exception types worth retrying, or a predicate over the exception.
        budget: a ``RetryBudget`` shared with other call sites.
        clock: where waits happen; inject a ``ManualClock`` in tests.
        on_retry: called with a ``RetryDetails`` before each wait.
        rng: the random source for jitter.
        on_give_up: called once with a ``RetryDetails`` (its ``give_up_reason``
            set) when a failure worth retrying is given up on: attempts
            exhausted, the deadline would pass, or the budget refused the
            retry. It runs before the last exception is re-raised.

    Giving up re-raises the last exception unchanged; an exception that ``on``
    rejects is re-raised at once, without calling ``on_give_up`` (it was
    never the executor's to retry).

    Raises:
        TypeError: ``on`` is neither exception types nor a callable.
    """
    _catch_spec(on)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        retrier = _Retrier(
            policy,
            on=on,
            budget=budget,
            clock=clock,
            on_retry=on_retry,
            rng=rng,
            name=_name_of(fn),
            on_give_up=on_give_up,
        )
        if inspect.iscoroutinefunction(fn):
            return _async_wrapper(fn, retrier)
        return _sync_wrapper(fn, retrier)

    return cast("RetryDecorator", decorate)


def _sync_wrapper(fn: Callable[..., R], retrier: _Retrier) -> Callable[..., R]:
    catch, run = retrier.catch, retrier.run
    if retrier.budget is None and not retrier.timed and retrier.predicate is None:

        @functools.wraps(fn)
        def fast(*args: Any, **kwargs: Any) -> R:
            try:
                return fn(*args, **kwargs)
            except catch as exc:
                first = exc
            return run(fn, args, kwargs, first, None)

        return fast

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        started = retrier.start()
        try:
            return fn(*args, **kwargs)
        except catch as exc:
            if not retrier.wants(exc):
                raise
            first = exc
        return run(fn, args, kwargs, first, started)

    return wrapper


def _async_wrapper(
    fn: Callable[..., Awaitable[R]], retrier: _Retrier
) -> Callable[..., Awaitable[R]]:
    catch, arun = retrier.catch, retrier.arun
    if retrier.budget is None and not retrier.timed and retrier.predicate is None:

        @functools.wraps(fn)
        async def fast(*args: Any, **kwargs: Any) -> R:
            try:
                return await fn(*args, **kwargs)
            except catch as exc:
                first = exc
            return await arun(fn, args, kwargs, first, None)

        return fast

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> R:
        started = retrier.start()
        try:
            return await fn(*args, **kwargs)
        except catch as exc:
            if not retrier.wants(exc):
                raise
            first = exc
        return await arun(fn, args, kwargs, first, started)

    return wrapper


def call_with_retry(
    fn: Callable[..., R],
    /,
    *args: Any,
    policy: RetryPolicy | None = None,
    on: RetryOn = _RETRY_ALL,
    budget: RetryBudget | None = None,
    clock: Clock | None = None,
    on_retry: Callable[[RetryDetails], object] | None = None,
    rng: random.Random | None = None,
    on_give_up: Callable[[RetryDetails], object] | None = None,
    **kwargs: Any,
) -> R:
    """Call ``fn(*args, **kwargs)`` with retries, as ``retry(...)(fn)`` would.

    The keyword arguments ``policy``, ``on``, ``budget``, ``clock``,
    ``on_retry``, ``rng`` and ``on_give_up`` configure the retry; wrap ``fn``
    in ``functools.partial`` to pass arguments of those names to it.
    """
    first: BaseException
    if _is_plain(policy, on, budget):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- the default ``on`` retries any Exception
            first = exc
        retrier = _Retrier(
            policy,
            on=on,
            clock=clock,
            on_retry=on_retry,
            rng=rng,
            name=_name_of(fn),
            on_give_up=on_give_up,
        )
        return retrier.run(fn, args, kwargs, first, None)

    retrier = _Retrier(
        policy,
        on=on,
        budget=budget,
        clock=clock,
        on_retry=on_retry,
        rng=rng,
        name=_name_of(fn),
        on_give_up=on_give_up,
    )
    return _sync_wrapper(fn, retrier)(*args, **kwargs)


async def acall_with_retry(
    fn: Callable[..., Awaitable[R]],
    /,
    *args: Any,
    policy: RetryPolicy | None = None,
    on: RetryOn = _RETRY_ALL,
    budget: RetryBudget | None = None,
    clock: Clock | None = None,
    on_retry: Callable[[RetryDetails], object] | None = None,
    rng: random.Random | None = None,
    on_give_up: Callable[[RetryDetails], object] | None = None,
    **kwargs: Any,
) -> R:
    """Await ``fn(*args, **kwargs)`` with retries, as ``retry(...)(fn)`` would."""
    first: BaseException
    if _is_plain(policy, on, budget):
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- the default ``on`` retries any Exception
            first = exc
        retrier = _Retrier(
            policy,
            on=on,
            clock=clock,
            on_retry=on_retry,
            rng=rng,
            name=_name_of(fn),
            on_give_up=on_give_up,
        )
        return await retrier.arun(fn, args, kwargs, first, None)

    retrier = _Retrier(
        policy,
        on=on,
        budget=budget,
        clock=clock,
        on_retry=on_retry,
        rng=rng,
        name=_name_of(fn),
        on_give_up=on_give_up,
    )
    return await _async_wrapper(fn, retrier)(*args, **kwargs)


def _is_plain(policy: RetryPolicy | None, on: RetryOn, budget: object) -> bool:
    """Return True when a first attempt needs no clock, budget or predicate."""
    no_deadline = policy is None or policy.deadline_seconds is None
    return on is _RETRY_ALL and budget is None and no_deadline
