"""The breaker under contention: threads and asyncio tasks colliding on purpose.

Race windows are widened two ways: the interpreter switches threads every
microsecond, and the breaker's clock yields the GIL on every read, so another
thread runs in the middle of each admission and settlement.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.circuit_breaker import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    CircuitTransition,
)

THREADS = 32
WAIT = 10.0  # generous bound on synchronisation waits; never a pause for time


class YieldingClock(ManualClock):
    """A manual clock that hands the GIL to another thread on every read."""

    def monotonic(self) -> float:
        """Return the manual time after letting other threads run."""
        time.sleep(0)  # a yield, not a wait: the manual time does not move
        return super().monotonic()


class Failure(Exception):
    """What the protected calls raise."""


@pytest.fixture(autouse=True)
def fast_switching() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


@pytest.fixture
def yielding_clock() -> YieldingClock:
    """A yielding manual clock at a realistic Unix time."""
    return YieldingClock(start=1_700_000_000.0)


class Recorder:
    """A thread-safe list of the transitions a breaker announced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[CircuitTransition] = []

    def __call__(self, transition: CircuitTransition) -> None:
        with self._lock:
            self.seen.append(transition)

    def moves(self) -> list[tuple[str, str]]:
        """Return (old, new) state values in announcement order."""
        return [(t.old_state.value, t.new_state.value) for t in self.seen]


def run_threads(count: int, target: Callable[[], None]) -> None:
    """Start ``count`` threads on ``target`` and join them all."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in threads)


def open_breaker(clock: ManualClock, **options: object) -> CircuitBreaker:
    breaker = CircuitBreaker("erp", 1, 30.0, clock=clock, **options)  # type: ignore[arg-type]
    with pytest.raises(Failure):
        breaker.execute(raise_failure)
    return breaker


def raise_failure() -> None:
    raise Failure


@pytest.mark.parametrize("permits", [1, 3])
def test_threads_against_half_open_admit_exactly_the_permits(
    yielding_clock: YieldingClock, permits: int
) -> None:
    """32 threads colliding on a half-open breaker start exactly N probes."""
    breaker = open_breaker(yielding_clock, half_open_max_calls=permits)
    recorder = Recorder()
    breaker.add_listener(recorder)
    yielding_clock.advance(30.0)
    start = threading.Barrier(THREADS)
    settled = threading.Condition()
    release = threading.Event()
    tally = {"admitted": 0, "refused": 0}

    def count(outcome: str) -> None:
        with settled:
            tally[outcome] += 1
            settled.notify_all()

    def probe() -> str:
        count("admitted")
        release.wait(WAIT)
        return "healthy"

    def caller() -> None:
        start.wait(WAIT)
        try:
            breaker.execute(probe)
        except CircuitOpenError:
            count("refused")

    worker = threading.Thread(target=run_threads, args=(THREADS, caller))
    worker.start()
    with settled:
        settled.wait_for(lambda: sum(tally.values()) == THREADS, WAIT)
    release.set()
    worker.join(WAIT)

    assert tally == {"admitted": permits, "refused": THREADS - permits}
    assert breaker.state is CircuitState.CLOSED
    stats = breaker.stats()
    assert (stats.rejected_calls, stats.successes) == (THREADS - permits, permits)
    assert recorder.moves() == [("open", "half_open"), ("half_open", "closed")]


@pytest.mark.parametrize("rate_mode", [False, True], ids=["consecutive", "rate"])
def test_threads_failing_below_the_threshold_lose_no_count(
    yielding_clock: YieldingClock, rate_mode: bool
) -> None:
    """3 threads x 500 failing calls count exactly 1 500 failures."""
    options: dict[str, object] = (
        {"failure_rate_threshold": 1.0, "minimum_calls": 10_000, "window_size": 10_000}
        if rate_mode
        else {}
    )
    breaker = CircuitBreaker("erp", 10_000, clock=yielding_clock, **options)  # type: ignore[arg-type]
    start = threading.Barrier(3)

    def caller() -> None:
        start.wait(WAIT)
        for _ in range(500):
            with pytest.raises(Failure):
                breaker.execute(raise_failure)

    run_threads(3, caller)

    stats = breaker.stats()
    assert (stats.failures, stats.failure_count, stats.calls) == (1500, 1500, 1500)
    assert stats.state is CircuitState.CLOSED


def test_threads_succeeding_lose_no_count(clock: ManualClock) -> None:
    """Successes counted without the lock still add up exactly."""
    breaker = CircuitBreaker("erp", clock=clock)
    start = threading.Barrier(4)

    def caller() -> None:
        start.wait(WAIT)
        for _ in range(500):
            breaker.execute(int)
            breaker.stats()

    run_threads(4, caller)

    stats = breaker.stats()
    assert (stats.successes, stats.success_count, stats.calls) == (2000, 2000, 2000)


def test_colliding_failures_announce_one_trip(yielding_clock: YieldingClock) -> None:
    """32 calls admitted together and failing together trip the breaker once."""
    breaker = CircuitBreaker("erp", 5, 30.0, clock=yielding_clock)
    recorder = Recorder()
    breaker.add_listener(recorder)
    inside = threading.Barrier(THREADS)

    def failing_together() -> None:
        inside.wait(WAIT)
        raise Failure

    def caller() -> None:
        with pytest.raises(Failure):
            breaker.execute(failing_together)

    run_threads(THREADS, caller)

    assert recorder.moves() == [("closed", "open")]
    stats = breaker.stats()
    assert (stats.failures, stats.times_opened) == (THREADS, 1)


def test_colliding_state_reads_announce_one_half_open(
    yielding_clock: YieldingClock,
) -> None:
    """Many threads reading state when the timeout is due move it once."""
    breaker = open_breaker(yielding_clock)
    recorder = Recorder()
    breaker.add_listener(recorder)
    yielding_clock.advance(30.0)
    start = threading.Barrier(THREADS)
    states: list[CircuitState] = []

    def reader() -> None:
        start.wait(WAIT)
        states.append(breaker.state)

    run_threads(THREADS, reader)

    assert states == [CircuitState.HALF_OPEN] * THREADS
    assert recorder.moves() == [("open", "half_open")]


def test_a_slow_success_admitted_before_a_trip_stays_stale(clock: ManualClock) -> None:
    """A call started while CLOSED and ending after the trip does not close it."""
    breaker = CircuitBreaker("erp", 2, 30.0, clock=clock)
    admitted = threading.Event()
    release = threading.Event()

    def slow_success() -> str:
        admitted.set()
        release.wait(WAIT)
        return "late"

    worker = threading.Thread(target=breaker.execute, args=(slow_success,))
    worker.start()
    admitted.wait(WAIT)
    for _ in range(2):
        with pytest.raises(Failure):
            breaker.execute(raise_failure)
    release.set()
    worker.join(WAIT)

    stats = breaker.stats()
    assert (stats.state, stats.failure_count, stats.successes) == (
        CircuitState.OPEN,
        2,
        1,
    )


# -- asyncio ------------------------------------------------------------------

TASKS = 200


@pytest.mark.parametrize("permits", [1, 4])
def test_tasks_against_half_open_admit_exactly_the_permits(
    clock: ManualClock, permits: int
) -> None:
    """200 tasks colliding on a half-open breaker start exactly N probes."""
    breaker = open_breaker(clock, half_open_max_calls=permits)
    recorder = Recorder()
    breaker.add_listener(recorder)
    clock.advance(30.0)
    tally = {"admitted": 0, "refused": 0}

    async def scenario() -> None:
        release = asyncio.Event()

        async def probe() -> str:
            tally["admitted"] += 1
            await release.wait()
            return "healthy"

        async def caller() -> None:
            await asyncio.sleep(0)
            try:
                await breaker.execute_async(probe)
            except CircuitOpenError:
                tally["refused"] += 1

        tasks = [asyncio.create_task(caller()) for _ in range(TASKS)]
        while sum(tally.values()) < TASKS:
            await asyncio.sleep(0)
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)

    asyncio.run(scenario())

    assert tally == {"admitted": permits, "refused": TASKS - permits}
    assert recorder.moves() == [("open", "half_open"), ("half_open", "closed")]


def test_tasks_failing_below_the_threshold_lose_no_count(clock: ManualClock) -> None:
    """200 tasks x 5 failing calls, interleaved, count exactly 1 000 failures."""
    breaker = CircuitBreaker("erp", 10_000, clock=clock)

    async def failing() -> None:
        await asyncio.sleep(0)
        raise Failure

    async def caller() -> None:
        for _ in range(5):
            with pytest.raises(Failure):
                await breaker.execute_async(failing)

    async def scenario() -> None:
        await asyncio.gather(*(caller() for _ in range(TASKS)))

    asyncio.run(scenario())

    stats = breaker.stats()
    assert (stats.failures, stats.failure_count) == (1000, 1000)


def test_colliding_tasks_announce_one_trip(clock: ManualClock) -> None:
    """200 tasks admitted together and failing together trip the breaker once."""
    breaker = CircuitBreaker("erp", 5, clock=clock)
    recorder = Recorder()
    breaker.add_listener(recorder)

    async def scenario() -> None:
        inside = 0
        everyone_in = asyncio.Event()

        async def failing_together() -> None:
            nonlocal inside
            inside += 1
            if inside == TASKS:
                everyone_in.set()
            await everyone_in.wait()
            raise Failure

        async def caller() -> None:
            with pytest.raises(Failure):
                await breaker.execute_async(failing_together)

        await asyncio.wait_for(asyncio.gather(*(caller() for _ in range(TASKS))), WAIT)

    asyncio.run(scenario())

    assert recorder.moves() == [("closed", "open")]
    assert breaker.stats().failures == TASKS


def test_cancelled_probes_under_load_release_every_permit(clock: ManualClock) -> None:
    """Cancelling every in-flight probe leaves the permits free for new ones."""
    breaker = open_breaker(clock, half_open_max_calls=3)
    clock.advance(30.0)

    async def scenario() -> None:
        hang = asyncio.Event()
        tasks = [
            asyncio.create_task(breaker.execute_async(hang.wait)) for _ in range(TASKS)
        ]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)

        cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
        refused = sum(isinstance(r, CircuitOpenError) for r in results)
        assert (cancelled, refused) == (3, TASKS - 3)
        assert breaker.state is CircuitState.HALF_OPEN
        await breaker.execute_async(asyncio.sleep, 0)

    asyncio.run(scenario())

    stats = breaker.stats()
    assert (stats.state, stats.ignored_calls) == (CircuitState.CLOSED, 3)
