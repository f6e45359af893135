"""Concurrency: half-open admission, per-call retry state and the inbox on PostgreSQL.

Each check repeats a colliding round many times (more under ``make
reliability``) and records how often the invariant broke: probes admitted
beyond the permits, a call seeing another call's attempts, or an effect applied
twice behind the inbox.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from integration_automation_patterns._types import ManualClock, RetryPolicy
from integration_automation_patterns.circuit_breaker import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
)
from integration_automation_patterns.outbox import Inbox
from integration_automation_patterns.retry import RetryDetails, retry
from tests.reliability.conftest import Ledger
from tests.reliability.sizes import scaled

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
THREADS = 32
TASKS = 200
PERMITS = 3
WAIT = 30.0  # a bound on synchronisation waits, never a pause for time to pass


class Failure(Exception):
    """What the protected and retried calls raise."""


@pytest.fixture(autouse=True)
def fast_switching() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def half_open_breaker() -> CircuitBreaker:
    """Return a breaker that has tripped and whose recovery timeout has passed."""
    clock = ManualClock(start=1_700_000_000.0)
    breaker = CircuitBreaker(
        "reliability",
        failure_threshold=1,
        recovery_timeout=10.0,
        half_open_max_calls=PERMITS,
        clock=clock,
    )
    with pytest.raises(Failure):
        breaker.execute(_fail)
    clock.advance(11.0)
    return breaker


def _fail() -> None:
    raise Failure


def thread_round() -> int:
    """Collide 32 threads on a half-open breaker; return the probes admitted."""
    breaker = half_open_breaker()
    start = threading.Barrier(THREADS)
    release = threading.Event()
    lock = threading.Lock()
    tally = Counter[str]()

    def probe() -> None:
        with lock:
            tally["admitted"] += 1
        release.wait(WAIT)

    def caller() -> None:
        start.wait(WAIT)
        try:
            breaker.execute(probe)
        except CircuitOpenError:
            with lock:
                tally["refused"] += 1

    threads = [threading.Thread(target=caller) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAIT
    while tally.total() < THREADS and time.monotonic() < deadline:
        time.sleep(0.0005)
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert tally.total() == THREADS
    assert breaker.state is CircuitState.CLOSED
    return tally["admitted"]


def task_round() -> int:
    """Collide 200 asyncio tasks on a half-open breaker; return the probes admitted."""
    breaker = half_open_breaker()
    tally = Counter[str]()

    async def scenario() -> None:
        release = asyncio.Event()

        async def probe() -> None:
            tally["admitted"] += 1
            await release.wait()

        async def caller() -> None:
            await asyncio.sleep(0)
            try:
                await breaker.execute_async(probe)
            except CircuitOpenError:
                tally["refused"] += 1

        tasks = [asyncio.create_task(caller()) for _ in range(TASKS)]
        while tally.total() < TASKS:
            await asyncio.sleep(0)
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)

    asyncio.run(scenario())
    return tally["admitted"]


@pytest.mark.parametrize(
    ("callers", "collide", "rounds"),
    [
        (f"{THREADS} threads", thread_round, scaled(150, 8)),
        (f"{TASKS} asyncio tasks", task_round, scaled(1_000, 20)),
    ],
    ids=["threads", "tasks"],
)
def test_half_open_admits_exactly_the_permits_in_every_round(
    callers: str, collide: Callable[[], int], rounds: int, ledger: Ledger
) -> None:
    """Colliding callers on a half-open breaker start exactly the permitted probes."""
    admitted = [collide() for _ in range(rounds)]

    wrong = sum(count != PERMITS for count in admitted)
    ledger.record(
        "concurrency",
        f"circuit breaker half-open admission, {callers}",
        tried=f"{rounds} rounds, {PERMITS} permits each",
        outcome=f"{wrong} rounds admitted other than {PERMITS}"
        f" (most admitted: {max(admitted)})",
        held=wrong == 0,
    )
    assert admitted == [PERMITS] * rounds


def test_retry_state_stays_per_call_across_threads_and_tasks(ledger: Ledger) -> None:
    """One decorated function, many concurrent calls: each sees only its attempts."""
    calls = scaled(20_000, 800)
    policy = RetryPolicy(max_attempts=4, backoff_seconds=1)
    seen: dict[int, list[int]] = {}
    attempts: Counter[int] = Counter()

    def note(details: RetryDetails) -> None:
        call_id = int(str(details.exception))
        seen.setdefault(call_id, []).append(details.attempt)

    shared = retry(policy, on=(Failure,), clock=ManualClock(), on_retry=note)

    @shared
    def flaky(call_id: int, failures: int) -> int:
        attempts[call_id] += 1
        if attempts[call_id] <= failures:
            raise Failure(call_id)
        return attempts[call_id]

    @shared
    async def aflaky(call_id: int, failures: int) -> int:
        await asyncio.sleep(0)
        attempts[call_id] += 1
        if attempts[call_id] <= failures:
            raise Failure(call_id)
        return attempts[call_id]

    plan = {n: random.Random(n).randrange(6) for n in range(calls)}
    outcomes: dict[int, int | str] = {}

    def outcome(call_id: int, run: Callable[[], int]) -> None:
        try:
            outcomes[call_id] = run()
        except Failure:
            outcomes[call_id] = "gave up"

    def thread_calls(ids: range) -> None:
        for n in ids:
            outcome(n, lambda n=n: flaky(n, plan[n]))  # type: ignore[misc]

    async def task_call(n: int) -> None:
        try:
            outcomes[n] = await aflaky(n, plan[n])
        except Failure:
            outcomes[n] = "gave up"

    async def tasks(ids: range) -> None:
        await asyncio.gather(*(task_call(n) for n in ids))

    half = calls // 2
    step = half // THREADS
    threads = [
        threading.Thread(target=thread_calls, args=(range(i, i + step),))
        for i in range(0, step * THREADS, step)
    ]
    for thread in threads:
        thread.start()
    asyncio.run(tasks(range(half, calls)))
    for thread in threads:
        thread.join(WAIT)

    mixed = 0
    for n, result in outcomes.items():
        failures = plan[n]
        wanted = "gave up" if failures >= policy.max_attempts else failures + 1
        retried = list(range(1, min(failures, policy.max_attempts - 1) + 1))
        mixed += result != wanted or seen.get(n, []) != retried
    ledger.record(
        "concurrency",
        "retry per-call state",
        tried=f"{len(outcomes)} calls of one decorated function from"
        f" {THREADS} threads and concurrent asyncio tasks",
        outcome=f"{mixed} calls saw another call's attempts",
        held=mixed == 0,
    )
    assert len(outcomes) == step * THREADS + calls - half
    assert mixed == 0


INBOX_THREADS = 8
INBOX_PROCESSES = 2


class CheckThenActInbox(Inbox):
    """A planted fault: look the id up, run the handler, then record the id."""

    def process(
        self,
        conn: Any,
        message_id: str,
        handler: Callable[[Any], object],
        *,
        consumer: str = "default",
        payload_hash: str | None = None,
    ) -> bool:
        """Run the handler unless the id is already recorded (racy on purpose)."""
        cursor = conn.cursor()
        cursor.execute(
            f"SELECT 1 FROM {self.table} WHERE consumer = %s AND message_id = %s",
            (consumer, message_id),
        )
        if cursor.fetchone() is not None:
            return False
        handler(conn)
        cursor.execute(
            f"INSERT INTO {self.table} (consumer, message_id, processed_at)"
            " VALUES (%s, %s, 0) ON CONFLICT DO NOTHING",
            (consumer, message_id),
        )
        return True


def deliver_concurrently(
    connect: Callable[[], Any], inbox: Inbox, ids: list[str], extra: list[Any]
) -> Counter[str]:
    """Deliver every id from each thread at once; return effects per id."""
    start = threading.Barrier(INBOX_THREADS)
    errors: list[BaseException] = []

    def deliverer(worker: int) -> None:
        conn = connect()
        try:
            for message_id in ids:
                start.wait(WAIT)

                def effect(c: Any, message_id: str = message_id) -> None:
                    c.cursor().execute(
                        "INSERT INTO effects (id, worker) VALUES (%s, %s)",
                        (message_id, str(worker)),
                    )

                inbox.process(conn, message_id, effect)
                conn.commit()
        except BaseException as exc:
            errors.append(exc)
            start.abort()
        finally:
            conn.close()

    threads = [
        threading.Thread(target=deliverer, args=(n,)) for n in range(INBOX_THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for child in extra:
        assert child.wait(timeout=120) == 0
    assert errors == []

    conn = connect()
    rows = conn.execute("SELECT id FROM effects").fetchall()
    conn.close()
    return Counter(str(row[0]) for row in rows)


def prepare_inbox(connect: Callable[[], Any]) -> None:
    """Create the inbox and effects tables."""
    conn = connect()
    Inbox("postgresql").create_schema(conn)
    conn.execute("CREATE TABLE effects (id TEXT NOT NULL, worker TEXT)")
    conn.commit()
    conn.close()


def test_inbox_applies_each_effect_once_under_concurrent_duplicates(
    postgres_connect: Callable[[], Any], postgres_dsn: str, ledger: Ledger
) -> None:
    """Threads and processes delivering the same ids at once: each effect once."""
    ids = [f"m-{n:06d}" for n in range(scaled(3_000, 150))]
    prepare_inbox(postgres_connect)
    with postgres_connect() as probe:
        [schema] = probe.execute("SELECT current_schema()").fetchone()
    config = {"mode": "deliver", "dialect": "postgresql", "dsn": postgres_dsn}
    command = [sys.executable, "-m", "tests.reliability.consumer_worker"]
    processes = [
        subprocess.Popen(
            [
                *command,
                json.dumps({**config, "schema": schema, "ids": ids, "worker": f"p{n}"}),
            ],
            cwd=ROOT,
        )
        for n in range(INBOX_PROCESSES)
    ]

    effects = deliver_concurrently(
        postgres_connect, Inbox("postgresql"), ids, processes
    )

    duplicates = sum(count - 1 for count in effects.values())
    lost = len(set(ids) - set(effects))
    deliveries = len(ids) * (INBOX_THREADS + INBOX_PROCESSES)
    ledger.record(
        "concurrency",
        "inbox under concurrent duplicate deliveries on postgresql",
        tried=f"{deliveries} deliveries of {len(ids)} ids from {INBOX_THREADS}"
        f" threads and {INBOX_PROCESSES} processes",
        outcome=f"{duplicates} duplicate effects, {lost} lost",
        held=duplicates == 0 and lost == 0,
        records=len(ids),
        lost=lost,
        duplicate_effects=duplicates,
    )
    assert lost == 0
    assert duplicates == 0


def test_planted_fault_check_then_act_inbox_is_caught(
    postgres_connect: Callable[[], Any], ledger: Ledger
) -> None:
    """An inbox that checks, runs the handler, then records lets duplicates through."""
    ids = [f"m-{n:06d}" for n in range(100)]
    prepare_inbox(postgres_connect)

    effects = deliver_concurrently(
        postgres_connect, CheckThenActInbox("postgresql"), ids, []
    )

    duplicates = sum(count - 1 for count in effects.values())
    ledger.record(
        "planted fault",
        "inbox that runs the handler before recording the id",
        tried=f"{len(ids)} ids delivered by {INBOX_THREADS} threads at once",
        outcome=f"caught: {duplicates} duplicate effects",
        held=duplicates > 0,
    )
    assert duplicates > 0
