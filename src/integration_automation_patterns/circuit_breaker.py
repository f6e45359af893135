"""Circuit breaker: stop calling a dependency that is failing, probe it, recover.

A breaker wraps calls to one downstream system. While the system answers, the
breaker is CLOSED and calls pass straight through. When failures pile up it
trips OPEN and refuses calls at once with ``CircuitOpenError``, sparing the
struggling system and the caller's threads. After ``recovery_timeout`` seconds
it turns HALF_OPEN and admits a strictly limited number of probe calls: enough
successful probes close it again, one failed probe opens it again.

Two ways to trip:

- **consecutive** (the default): ``failure_threshold`` failures in a row;
- **rate**: a ``failure_rate_threshold`` (or ``slow_call_rate_threshold``)
  reached over a sliding window of the last ``window_size`` calls or of the
  last ``window_seconds``, once the window holds ``minimum_calls`` calls.

No lock is held while a protected call runs. Every call carries the generation
of the state that admitted it, so an outcome from before the last state change
cannot move the breaker; a cancelled or interrupted call counts as neither a
success nor a failure and gives its probe permit back.
"""

from __future__ import annotations

import enum
import functools
import inspect
import itertools
import logging
import math
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, overload

from ._types import SYSTEM_CLOCK, Clock, ConfigurationError, IntegrationError

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerConfigError",
    "CircuitBreakerStats",
    "CircuitOpenError",
    "CircuitState",
    "CircuitTransition",
]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

Listener = Callable[["CircuitTransition"], object]
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]
ExcludeRule = (
    type[BaseException]
    | tuple[type[BaseException], ...]
    | Callable[[BaseException], bool]
)


class CircuitState(enum.Enum):
    """Where a breaker stands: passing calls, refusing them, or probing."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(IntegrationError, RuntimeError):
    """The breaker refused a call without running it.

    Attributes:
        name: the breaker's name.
        retry_after: seconds until the breaker may admit a call again (a
            hint for retry loops; ``inf`` while forced open).
        state: OPEN, or HALF_OPEN when every probe permit is taken.
    """

    def __init__(
        self,
        name: str,
        retry_after: float,
        *,
        state: CircuitState = CircuitState.OPEN,
    ) -> None:
        self.name = name
        self.retry_after = retry_after
        self.state = state
        if state is CircuitState.HALF_OPEN:
            detail = "is HALF_OPEN and every probe permit is taken"
        else:
            detail = "is OPEN"
        super().__init__(f"Circuit '{name}' {detail}. Retry after {retry_after:.1f}s.")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_open_error, (self.name, self.retry_after, self.state))


def _rebuild_open_error(
    name: str, retry_after: float, state: CircuitState
) -> CircuitOpenError:
    return CircuitOpenError(name, retry_after, state=state)


class CircuitBreakerConfigError(ConfigurationError):
    """A breaker option is out of range or of the wrong kind."""


@dataclass(frozen=True)
class CircuitTransition:
    """One state change, as handed to every listener.

    Attributes:
        name: the breaker's name.
        old_state: the state left.
        new_state: the state entered.
        reason: why, in words (for logs and dashboards).
        time: the breaker clock's ``monotonic()`` reading at the change.
    """

    name: str
    old_state: CircuitState
    new_state: CircuitState
    reason: str
    time: float


@dataclass
class CircuitBreakerStats:
    """A snapshot of a breaker's state and counters.

    The first six fields are those of 0.2.0. ``failure_count`` is the number
    of failures that currently count toward tripping (the consecutive streak,
    or the failures in the rate window); ``success_count`` counts successes
    since the breaker last turned HALF_OPEN or was reset, so after a good
    probe closes it, it still reads the probes; ``last_failure_time`` is
    cleared by ``reset()``. The fields after them are totals over the
    breaker's life (``reset()`` keeps them), except ``failure_rate`` and
    ``slow_call_rate``, which describe the rate window in rate mode and the
    whole life otherwise. Times are the breaker clock's ``monotonic()``.
    """

    name: str
    state: CircuitState
    failure_count: int
    success_count: int
    last_failure_time: float | None
    last_state_change_time: float
    calls: int = 0
    successes: int = 0
    failures: int = 0
    ignored_calls: int = 0
    slow_calls: int = 0
    rejected_calls: int = 0
    failure_rate: float = 0.0
    slow_call_rate: float = 0.0
    times_opened: int = 0


class _Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"


class _Window:
    """The last calls' outcomes, bounded by count or by age, with running sums."""

    def __init__(self, size: int, seconds: float | None) -> None:
        self._size = size
        self._seconds = seconds
        self._entries: deque[tuple[float, bool, bool]] = deque()
        self.failures = 0
        self.slow = 0

    def add(self, now: float, failed: bool, slow: bool) -> None:
        """Record one call's outcome and drop what fell out of the window."""
        self._entries.append((now, failed, slow))
        self.failures += failed
        self.slow += slow
        self.trim(now)

    def trim(self, now: float) -> None:
        """Drop entries beyond the size or older than the window's span."""
        entries = self._entries
        if self._seconds is None:
            while len(entries) > self._size:
                self._drop()
            return

        horizon = now - self._seconds
        while entries and entries[0][0] <= horizon:
            self._drop()

    def rates(self) -> tuple[float, float]:
        """Return the failure rate and the slow-call rate (0.0 when empty)."""
        if not self._entries:
            return 0.0, 0.0
        calls = len(self._entries)
        return self.failures / calls, self.slow / calls

    def clear(self) -> None:
        """Forget every outcome."""
        self._entries.clear()
        self.failures = 0
        self.slow = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self) -> None:
        _, failed, slow = self._entries.popleft()
        self.failures -= failed
        self.slow -= slow


class CircuitBreaker:
    """A thread-safe, asyncio-aware circuit breaker for one dependency.

    Args:
        name: identifies the breaker in errors, logs (``breaker``) and stats.
        failure_threshold: consecutive failures that trip the breaker
            (consecutive mode).
        recovery_timeout: seconds the breaker stays OPEN before probing.
        success_threshold: successful probes that close the breaker.
        expected_exceptions: exception types that count as failures; other
            exceptions pass through uncounted.
        failure_rate_threshold: a fraction in (0, 1]; when set, the breaker
            trips on the failure rate over the window instead of on a streak.
        window_size: how many recent calls the rate window holds.
        window_seconds: when set, the window holds the calls of the last
            ``window_seconds`` instead of the last ``window_size`` calls.
        minimum_calls: calls the window must hold before a rate can trip.
        slow_call_duration: seconds after which a call counts as slow.
        slow_call_rate_threshold: a fraction in (0, 1]; trips on the rate of
            slow calls over the window, successful or not (needs
            ``slow_call_duration``); a slow probe counts as a failed one.
        half_open_max_calls: probes allowed in flight at once while HALF_OPEN.
        probe_timeout: seconds after which a probe still running gives its
            permit up so another may start (default: ``recovery_timeout``).
        exclude: exception types, or a predicate, for exceptions that pass
            through without counting, even if they are expected.
        clock: where time is read; inject a ``ManualClock`` in tests.
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        success_threshold: int = 1,
        expected_exceptions: ExceptionTypes = (Exception,),
        *,
        failure_rate_threshold: float | None = None,
        window_size: int = 100,
        window_seconds: float | None = None,
        minimum_calls: int = 10,
        slow_call_duration: float | None = None,
        slow_call_rate_threshold: float | None = None,
        half_open_max_calls: int = 1,
        probe_timeout: float | None = None,
        exclude: ExcludeRule = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.success_threshold = success_threshold
        self.expected_exceptions = _exception_types(
            "expected_exceptions", expected_exceptions
        )
        self.failure_rate_threshold = failure_rate_threshold
        self.window_size = window_size
        self.window_seconds = window_seconds
        self.minimum_calls = minimum_calls
        self.slow_call_duration = slow_call_duration
        self.slow_call_rate_threshold = slow_call_rate_threshold
        self.half_open_max_calls = half_open_max_calls
        self.probe_timeout = probe_timeout
        self.clock = clock
        self._validate()

        self._is_excluded = _exclusion_rule(exclude)
        self._rate_mode = failure_rate_threshold is not None or (
            slow_call_rate_threshold is not None
        )
        self._timed = slow_call_duration is not None
        self._lean_mode = not self._rate_mode and not self._timed
        self._init_state()

    def _init_state(self) -> None:
        now = self.clock.monotonic()
        self._lock = threading.Lock()
        self._listeners: tuple[Listener, ...] = ()
        self._pending: deque[CircuitTransition] = deque()
        self._delivering = threading.Lock()

        self._state = CircuitState.CLOSED
        self._generation = 0
        self._lean_generation: int | None = 0 if self._lean_mode else None
        self._forced = False
        self._opened_at = now
        self._last_change = now
        self._last_failure: float | None = None

        self._streak = 0
        self._window = _Window(self.window_size, self.window_seconds)
        self._probes: dict[int, float] = {}
        self._probe_ids = itertools.count()
        self._probe_successes = 0

        # Successes are counted lock-free: next() on a count is atomic.
        self._success_counter = itertools.count()
        self._success_reads = 0
        self._success_base = 0
        self._failures = 0
        self._ignored = 0
        self._slow = 0
        self._rejected = 0
        self._times_opened = 0

    def _validate(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("failure_threshold", _is_int(self.failure_threshold, 1), "an int >= 1"),
            ("recovery_timeout", _is_number(self.recovery_timeout, 0.0), ">= 0"),
            ("success_threshold", _is_int(self.success_threshold, 1), "an int >= 1"),
            ("window_size", _is_int(self.window_size, 1), "an int >= 1"),
            ("minimum_calls", _is_int(self.minimum_calls, 1), "an int >= 1"),
            ("half_open_max_calls", _is_int(self.half_open_max_calls, 1), ">= 1"),
            ("probe_timeout", _is_positive(self.probe_timeout, math.inf), "> 0"),
            ("window_seconds", _is_positive(self.window_seconds), "> 0 or None"),
            ("slow_call_duration", _is_positive(self.slow_call_duration), "> 0"),
            ("failure_rate_threshold", _is_fraction(self.failure_rate_threshold), ""),
            (
                "slow_call_rate_threshold",
                _is_fraction(self.slow_call_rate_threshold),
                "",
            ),
        ]
        for field_name, ok, rule in checks:
            if not ok:
                value = getattr(self, field_name)
                wanted = rule or "a fraction in (0, 1] or None"
                raise CircuitBreakerConfigError(
                    f"CircuitBreaker.{field_name} must be {wanted}, got {value!r}"
                )

        if (
            self.slow_call_rate_threshold is not None
            and self.slow_call_duration is None
        ):
            raise CircuitBreakerConfigError(
                "CircuitBreaker.slow_call_rate_threshold needs slow_call_duration"
            )

    @property
    def _probe_lease(self) -> float:
        if self.probe_timeout is not None:
            return self.probe_timeout
        return self.recovery_timeout or math.inf

    # -- public API --------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """Return the current state, moving OPEN to HALF_OPEN once it is due."""
        try:
            with self._lock:
                return self._refresh()
        finally:
            self._deliver()

    def execute(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` under the breaker's protection.

        Returns:
            What ``fn`` returns.

        Raises:
            CircuitOpenError: the breaker refused the call; ``fn`` did not run.
        """
        generation = self._lean_generation
        if generation is None:
            return self._execute_guarded(fn, args, kwargs)

        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._settle(generation, None, self._classify(exc), False)
            raise

        if self._streak:
            self._settle(generation, None, _Outcome.SUCCESS, False)
        else:
            next(self._success_counter)
        return result

    async def execute_async(
        self,
        fn: Callable[P, Awaitable[R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Await ``fn(*args, **kwargs)`` under the breaker's protection.

        A cancelled call gives its probe permit back and counts as neither a
        success nor a failure.

        Returns:
            What the awaitable returns.

        Raises:
            CircuitOpenError: the breaker refused the call; ``fn`` did not run.
        """
        generation = self._lean_generation
        if generation is None:
            return await self._execute_guarded_async(fn, args, kwargs)

        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._settle(generation, None, self._classify(exc), False)
            raise

        if self._streak:
            self._settle(generation, None, _Outcome.SUCCESS, False)
        else:
            next(self._success_counter)
        return result

    @overload
    def call(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def call(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def call(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a function, plain or ``async def``, to run under the breaker.

        The wrapper keeps the function's signature, name and docstring.
        """
        if inspect.iscoroutinefunction(fn):
            return self._wrap_async(fn)

        return self._wrap_sync(fn)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(transition)`` once for every state change.

        Listeners run after the breaker's lock is released, in the order the
        changes happened; one that raises is logged and otherwise ignored.
        """
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``; do nothing if it was not added."""
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x != listener)

    def reset(self) -> None:
        """Close the breaker and forget the current streak, window and probes.

        ``success_count`` restarts at 0 and ``last_failure_time`` is cleared,
        as in 0.2.0; lifetime totals in ``stats()`` are kept.
        """
        with self._lock:
            now = self.clock.monotonic()
            self._forced = False
            self._move(CircuitState.CLOSED, "reset", now)
            self._success_base = self._read_successes()
            self._last_failure = None
        self._deliver()

    def force_open(self) -> None:
        """Open the breaker and hold it open until ``reset()``.

        While forced, calls are refused with ``retry_after`` set to ``inf``
        and the recovery timeout does not lead to HALF_OPEN.
        """
        with self._lock:
            now = self.clock.monotonic()
            self._forced = True
            self._move(CircuitState.OPEN, "forced open", now)
        self._deliver()

    def stats(self) -> CircuitBreakerStats:
        """Return a consistent snapshot of the state and the counters."""
        try:
            with self._lock:
                now = self.clock.monotonic()
                return self._snapshot(self._refresh(), now)
        finally:
            self._deliver()

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self._state.value!r})"

    # -- calls -------------------------------------------------------------

    def _execute_guarded(
        self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        generation, probe, started = self._admit()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._finish(generation, probe, started, self._classify(exc))
            raise

        self._finish(generation, probe, started, _Outcome.SUCCESS)
        return result

    async def _execute_guarded_async(
        self,
        fn: Callable[..., Awaitable[R]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        generation, probe, started = self._admit()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._finish(generation, probe, started, self._classify(exc))
            raise

        self._finish(generation, probe, started, _Outcome.SUCCESS)
        return result

    def _wrap_sync(self, fn: Callable[P, R]) -> Callable[P, R]:
        breaker = self

        # The closed path of execute(), inlined: one frame less on every call.
        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            generation = breaker._lean_generation
            if generation is None:
                return breaker._execute_guarded(fn, args, kwargs)

            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                breaker._settle(generation, None, breaker._classify(exc), False)
                raise

            if breaker._streak:
                breaker._settle(generation, None, _Outcome.SUCCESS, False)
            else:
                next(breaker._success_counter)
            return result

        return guarded

    def _wrap_async(
        self, fn: Callable[P, Awaitable[Any]]
    ) -> Callable[P, Coroutine[Any, Any, Any]]:
        execute_async = self.execute_async

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> Any:
            return await execute_async(fn, *args, **kwargs)

        return guarded

    def _admit(self) -> tuple[int, int | None, float]:
        """Let a call in or refuse it; return its generation, probe id, start."""
        try:
            with self._lock:
                state = self._refresh()
                if state is CircuitState.CLOSED:
                    return self._generation, None, self.clock.monotonic()
                if state is CircuitState.OPEN:
                    remaining = self._open_remaining(self.clock.monotonic())
                    raise self._refusal(state, remaining)
                if len(self._probes) >= self.half_open_max_calls:
                    raise self._refusal(state, self._probe_wait(self.clock.monotonic()))

                probe = next(self._probe_ids)
                started = self._probes[probe] = self.clock.monotonic()
                return self._generation, probe, started
        finally:
            self._deliver()

    def _refusal(self, state: CircuitState, retry_after: float) -> CircuitOpenError:
        self._rejected += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "circuit %s refused a call",
                self.name,
                extra={"breaker": self.name, "state": state.value},
            )
        return CircuitOpenError(self.name, retry_after, state=state)

    def _open_remaining(self, now: float) -> float:
        if self._forced:
            return math.inf
        return max(0.0, self._opened_at + self.recovery_timeout - now)

    def _probe_wait(self, now: float) -> float:
        oldest = min(self._probes.values())
        return max(0.0, oldest + self._probe_lease - now)

    def _finish(
        self, generation: int, probe: int | None, started: float, outcome: _Outcome
    ) -> None:
        slow = False
        if self.slow_call_duration is not None:
            elapsed = self.clock.monotonic() - started
            slow = elapsed >= self.slow_call_duration
        self._settle(generation, probe, outcome, slow)

    def _classify(self, exc: BaseException) -> _Outcome:
        """Decide whether an exception counts as a failure."""
        if not isinstance(exc, Exception):
            return _Outcome.IGNORED
        if self._is_excluded(exc):
            return _Outcome.IGNORED
        if isinstance(exc, self.expected_exceptions):
            return _Outcome.FAILURE
        return _Outcome.IGNORED

    # -- bookkeeping (under the lock) ---------------------------------------

    def _settle(
        self, generation: int, probe: int | None, outcome: _Outcome, slow: bool
    ) -> None:
        """Count one finished call and let it move the state if it still may."""
        with self._lock:
            now = self.clock.monotonic()
            self._count(outcome, slow, now)
            if probe is not None:
                self._settle_probe(probe, outcome, slow, now)
            elif generation == self._generation and outcome is not _Outcome.IGNORED:
                self._settle_closed(outcome, slow, now)
        self._deliver()

    def _count(self, outcome: _Outcome, slow: bool, now: float) -> None:
        self._slow += slow
        if outcome is _Outcome.SUCCESS:
            next(self._success_counter)
        elif outcome is _Outcome.FAILURE:
            self._failures += 1
            self._last_failure = now
        else:
            self._ignored += 1

    def _settle_closed(self, outcome: _Outcome, slow: bool, now: float) -> None:
        failed = outcome is _Outcome.FAILURE
        if not self._rate_mode:
            self._streak = self._streak + 1 if failed else 0
            if self._streak >= self.failure_threshold:
                reason = f"{self._streak} consecutive failures"
                self._move(CircuitState.OPEN, reason, now)
            return

        self._window.add(now, failed, slow)
        reason = self._rate_trip_reason()
        if reason:
            self._move(CircuitState.OPEN, reason, now)

    def _rate_trip_reason(self) -> str:
        calls = len(self._window)
        if calls < self.minimum_calls:
            return ""

        failure_rate, slow_rate = self._window.rates()
        limit = self.failure_rate_threshold
        if limit is not None and failure_rate >= limit:
            return f"failure rate {failure_rate:.2f} >= {limit} over {calls} calls"
        limit = self.slow_call_rate_threshold
        if limit is not None and slow_rate >= limit:
            return f"slow call rate {slow_rate:.2f} >= {limit} over {calls} calls"
        return ""

    def _settle_probe(
        self, probe: int, outcome: _Outcome, slow: bool, now: float
    ) -> None:
        if self._probes.pop(probe, None) is None or outcome is _Outcome.IGNORED:
            return

        if outcome is _Outcome.FAILURE:
            self._streak += 1
            self._move(CircuitState.OPEN, "probe failed", now)
        elif slow and self.slow_call_rate_threshold is not None:
            self._move(CircuitState.OPEN, "probe was slow", now)
        else:
            self._probe_successes += 1
            if self._probe_successes >= self.success_threshold:
                reason = f"{self._probe_successes} successful probes"
                self._move(CircuitState.CLOSED, reason, now)

    def _refresh(self) -> CircuitState:
        """Apply the moves that time alone makes; return the current state."""
        state = self._state
        if state is CircuitState.OPEN and not self._forced:
            now = self.clock.monotonic()
            if now >= self._opened_at + self.recovery_timeout:
                self._move(CircuitState.HALF_OPEN, "recovery_timeout elapsed", now)
        elif state is CircuitState.HALF_OPEN and self._probes:
            self._reclaim_stuck_probes(self.clock.monotonic())
        return self._state

    def _reclaim_stuck_probes(self, now: float) -> None:
        limit = now - self._probe_lease
        stuck = [probe for probe, started in self._probes.items() if started <= limit]
        for probe in stuck:
            del self._probes[probe]
        if stuck:
            logger.warning(
                "circuit %s reclaimed %d probe permit(s) past probe_timeout",
                self.name,
                len(stuck),
                extra={"breaker": self.name, "probes": len(stuck)},
            )

    def _move(self, new_state: CircuitState, reason: str, now: float) -> None:
        """Enter ``new_state``; every call admitted before is now stale."""
        old_state = self._state
        self._state = new_state
        self._generation += 1
        self._probes = {}
        self._probe_successes = 0
        if new_state is CircuitState.HALF_OPEN:
            self._success_base = self._read_successes()
        self._last_change = now
        self._enter(new_state, now)
        self._lean_generation = (
            self._generation
            if new_state is CircuitState.CLOSED and self._lean_mode
            else None
        )

        if old_state is not new_state:
            self._announce(
                CircuitTransition(self.name, old_state, new_state, reason, now)
            )

    def _enter(self, new_state: CircuitState, now: float) -> None:
        if new_state is CircuitState.CLOSED:
            self._streak = 0
            self._window.clear()
        elif new_state is CircuitState.OPEN:
            self._opened_at = now
            self._times_opened += 1

    def _read_successes(self) -> int:
        # Each read consumes one step of the counter; subtract those steps.
        total = next(self._success_counter) - self._success_reads
        self._success_reads += 1
        return total

    def _snapshot(self, state: CircuitState, now: float) -> CircuitBreakerStats:
        successes = self._read_successes()
        calls = successes + self._failures + self._ignored
        if self._rate_mode:
            self._window.trim(now)
            failure_count = self._window.failures
            failure_rate, slow_rate = self._window.rates()
        else:
            failure_count = self._streak
            counted = successes + self._failures
            failure_rate = self._failures / counted if counted else 0.0
            slow_rate = self._slow / calls if calls else 0.0

        return CircuitBreakerStats(
            name=self.name,
            state=state,
            failure_count=failure_count,
            success_count=successes - self._success_base,
            last_failure_time=self._last_failure,
            last_state_change_time=self._last_change,
            calls=calls,
            successes=successes,
            failures=self._failures,
            ignored_calls=self._ignored,
            slow_calls=self._slow,
            rejected_calls=self._rejected,
            failure_rate=failure_rate,
            slow_call_rate=slow_rate,
            times_opened=self._times_opened,
        )

    # -- listeners ---------------------------------------------------------

    def _announce(self, transition: CircuitTransition) -> None:
        logger.info(
            "circuit %s: %s -> %s (%s)",
            self.name,
            transition.old_state.value,
            transition.new_state.value,
            transition.reason,
            extra={
                "breaker": self.name,
                "old_state": transition.old_state.value,
                "new_state": transition.new_state.value,
                "reason": transition.reason,
            },
        )
        if self._listeners:
            self._pending.append(transition)

    def _deliver(self) -> None:
        """Hand queued transitions to listeners, in order, outside the lock."""
        while self._pending:
            # Whoever holds the delivery lock drains the queue for everyone.
            if not self._delivering.acquire(blocking=False):
                return
            try:
                while self._pending:
                    self._notify(self._pending.popleft())
            finally:
                self._delivering.release()

    def _notify(self, transition: CircuitTransition) -> None:
        for listener in self._listeners:
            self._notify_one(listener, transition)

    def _notify_one(self, listener: Listener, transition: CircuitTransition) -> None:
        try:
            listener(transition)
        except Exception:
            logger.exception(
                "circuit %s: a state listener raised",
                self.name,
                extra={"breaker": self.name, "listener": repr(listener)},
            )


def _exception_types(field_name: str, value: object) -> tuple[type[BaseException], ...]:
    types = (value,) if isinstance(value, type) else value
    if not isinstance(types, tuple) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in types
    ):
        raise CircuitBreakerConfigError(
            f"CircuitBreaker.{field_name} must be a tuple of exception types, "
            f"got {value!r}"
        )
    return types


def _exclusion_rule(exclude: ExcludeRule) -> Callable[[BaseException], bool]:
    if isinstance(exclude, (type, tuple)):
        types = _exception_types("exclude", exclude)
        return lambda exc: isinstance(exc, types)
    if not callable(exclude):
        raise CircuitBreakerConfigError(
            f"CircuitBreaker.exclude must be exception types or a predicate, "
            f"got {exclude!r}"
        )
    return _guarded_predicate(exclude)


def _guarded_predicate(
    predicate: Callable[[BaseException], bool],
) -> Callable[[BaseException], bool]:
    def is_excluded(exc: BaseException) -> bool:
        try:
            return bool(predicate(exc))
        except Exception:
            # The caller's own exception matters more than a broken predicate.
            logger.exception(
                "circuit exclude predicate raised; counting the call normally",
                extra={"exception_type": type(exc).__name__},
            )
            return False

    return is_excluded


def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: object, minimum: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value >= minimum


def _is_positive(value: object, ceiling: float = math.nan) -> bool:
    if value is None or value == ceiling:
        return True
    return _is_number(value, 0.0) and value != 0


def _is_fraction(value: object) -> bool:
    if value is None:
        return True
    if not _is_number(value, 0.0):
        return False
    assert isinstance(value, (int, float))
    return 0 < value <= 1
