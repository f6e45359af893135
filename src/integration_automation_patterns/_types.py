"""The few things every pattern module shares: errors, time, JSON types, ids, policy.

Each pattern module imports only the standard library and this module, so any one
of them can be copied into another codebase together with this file.
"""

from __future__ import annotations

import asyncio
import enum
import math
import random
import secrets
import threading
import time
import uuid
from dataclasses import KW_ONLY, dataclass
from time import monotonic as _monotonic
from time import sleep as _sleep
from time import time as _walltime
from typing import Protocol, TypeAlias


class IntegrationError(Exception):
    """Root of every error the library raises on purpose.

    Errors about bad input also derive from ``ValueError``, so existing
    ``except ValueError`` clauses keep working. The whole tree::

        IntegrationError
        ├── ConfigurationError (ValueError)             _types, every module
        │   └── CircuitBreakerConfigError               circuit_breaker
        ├── EnvelopeError (ValueError)                  event_envelope
        │   └── InvalidTransitionError                  event_envelope
        ├── CircuitOpenError (RuntimeError)             circuit_breaker
        ├── SagaError                                   saga
        │   ├── SagaNotFoundError (LookupError)         saga
        │   ├── SagaDefinitionError (ValueError)        saga
        │   ├── SagaJournalError (ValueError)           saga
        │   └── SagaLeaseError                          saga
        ├── OutboxError                                 outbox
        │   ├── OutboxInputError (ValueError)           outbox
        │   └── IdempotencyConflictError (ValueError)   outbox
        ├── KafkaEnvelopeError (ValueError)             kafka_envelope
        │   └── EnvelopeDecodeError                     kafka_envelope
        ├── WebhookError (ValueError)                   webhook_handler
        │   ├── WebhookSignatureError                   webhook_handler
        │   ├── WebhookReplayError                      webhook_handler
        │   └── WebhookFormatError                      webhook_handler
        ├── CDCParseError (ValueError)                  cdc_event
        │   └── CDCNotAChangeError                      cdc_event
        └── SyncError (ValueError)                      sync_boundary
    """


class ConfigurationError(IntegrationError, ValueError):
    """A pattern was set up with a value that makes no sense (zero attempts)."""


JSONScalar: TypeAlias = "str | int | float | bool | None"
JSONValue: TypeAlias = "JSONScalar | list[JSONValue] | dict[str, JSONValue]"
JSONObject: TypeAlias = "dict[str, JSONValue]"


class Clock(Protocol):
    """Where a pattern reads time and waits; inject a ManualClock in tests."""

    def monotonic(self) -> float:
        """Return seconds from an arbitrary origin that never go backwards."""

    def time(self) -> float:
        """Return the wall-clock time as Unix seconds."""

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time`` and real sleeps."""

    monotonic = staticmethod(_monotonic)
    time = staticmethod(_walltime)
    sleep = staticmethod(_sleep)

    async def asleep(self, seconds: float) -> None:
        """Sleep with ``asyncio.sleep``."""
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SYSTEM_CLOCK"


SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that moves only when told to, for tests that never wait.

    Time advances through ``advance(seconds)`` or when code sleeps on the
    clock; every sleep is recorded in ``sleeps``. ``monotonic()`` and
    ``time()`` read the same value, so start it at a realistic Unix time when
    the code under test compares wall-clock timestamps.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """Return the current manual time (``time()`` reads the same)."""
        return self._now

    time = monotonic

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ConfigurationError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance time by it, without waiting."""
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(seconds, 0.0)

    async def asleep(self, seconds: float) -> None:
        """Record the sleep, advance time, and yield once to the event loop."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r}, sleeps={len(self.sleeps)})"


class _UUIDv7Source:
    """RFC 9562 §5.7 UUIDv7 with a counter so ids sort in creation order.

    The 74 bits after the timestamp start random and count upward while the
    millisecond stays the same (RFC 9562 §6.2, method 2); on overflow the
    timestamp borrows the next millisecond.
    """

    _COUNTER_BITS = 74

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def next(self) -> str:
        with self._lock:
            now_ms = time.time_ns() // 1_000_000
            if now_ms > self._last_ms:
                self._last_ms = now_ms
                self._counter = secrets.randbits(self._COUNTER_BITS - 1)
            else:
                self._counter += 1
                if self._counter >> self._COUNTER_BITS:
                    self._last_ms += 1
                    self._counter = secrets.randbits(self._COUNTER_BITS - 1)
            ms, counter = self._last_ms, self._counter

        rand_a = counter >> 62
        rand_b = counter & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64
        value |= 0b10 << 62 | rand_b
        return str(uuid.UUID(int=value))


_UUID7 = _UUIDv7Source()


def new_event_id() -> str:
    """Return a new UUIDv7 string: time-ordered, so it indexes well as a key."""
    return _UUID7.next()


class Jitter(enum.Enum):
    """How much randomness spreads retries that would otherwise collide."""

    NONE = "none"
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts to make and how long to wait between them.

    ``max_attempts`` counts every attempt, the first included. Waits grow as
    ``backoff_seconds * 2**n`` (``n`` zero-based retries) up to
    ``max_backoff_seconds``, optionally spread by ``jitter``; with
    ``deadline_seconds`` no wait is started that would end past the deadline.
    """

    max_attempts: int = 3
    backoff_seconds: float = 30
    exponential: bool = True
    max_backoff_seconds: float = 3600
    _: KW_ONLY
    jitter: Jitter = Jitter.NONE
    deadline_seconds: float | None = None

    def __post_init__(self) -> None:
        deadline = self.deadline_seconds
        checks = [
            ("max_attempts", self.max_attempts >= 1, ">= 1"),
            ("backoff_seconds", self.backoff_seconds >= 0, ">= 0"),
            ("max_backoff_seconds", self.max_backoff_seconds >= 0, ">= 0"),
            ("deadline_seconds", deadline is None or deadline > 0, "> 0 or None"),
            ("jitter", isinstance(self.jitter, Jitter), "a Jitter"),
        ]
        for name, ok, rule in checks:
            if not ok:
                value = getattr(self, name)
                msg = f"RetryPolicy.{name} must be {rule}, got {value!r}"
                raise ConfigurationError(msg)

    def wait_seconds_for_attempt(self, attempt_number: int) -> int:
        """Return the un-jittered wait before retry ``attempt_number``, in seconds."""
        return int(self._ceiling(attempt_number))

    def is_exhausted(self, attempt_number: int) -> bool:
        """Return True once ``attempt_number`` attempts use up the policy."""
        return attempt_number >= self.max_attempts

    def delay_for_attempt(
        self,
        attempt_number: int,
        *,
        rng: random.Random | None = None,
        previous: float | None = None,
    ) -> float:
        """Return the wait in seconds before retry ``attempt_number`` (zero-based).

        Args:
            attempt_number: how many retries came before this one.
            rng: the random source for jitter (seed one for repeatable tests).
            previous: the last wait, for decorrelated jitter; defaults to the
                base backoff.
        """
        ceiling = self._ceiling(attempt_number)
        draw = (rng or _RNG).uniform

        if self.jitter is Jitter.NONE:
            return ceiling
        if self.jitter is Jitter.FULL:
            return draw(0.0, ceiling)
        if self.jitter is Jitter.EQUAL:
            return ceiling / 2 + draw(0.0, ceiling / 2)

        base = float(self.backoff_seconds)
        last = base if previous is None else max(previous, base)
        return min(float(self.max_backoff_seconds), draw(base, 3 * last))

    def _ceiling(self, attempt_number: int) -> float:
        if attempt_number < 0:
            msg = f"attempt_number must be >= 0, got {attempt_number!r}"
            raise ConfigurationError(msg)
        base, cap = float(self.backoff_seconds), float(self.max_backoff_seconds)

        if not self.exponential:
            return base  # a fixed wait is not capped, as in 0.2.0
        if base == 0:
            return 0.0
        # Compare exponents first so attempt 10 000 never builds a huge float.
        if cap == 0 or attempt_number >= math.log2(cap / base):
            return cap
        return base * 2.0**attempt_number


_RNG = random.Random()  # noqa: S311 -- jitter spreads load; it is not a secret
