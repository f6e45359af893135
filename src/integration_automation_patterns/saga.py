"""Saga orchestration: ordered steps, compensation, retries and a durable journal.

A saga runs a sequence of local steps against systems that share no transaction
(CRM, ERP, billing, fulfilment). When a step fails, the steps that completed are
undone in reverse order by their compensations. With a ``SagaStore`` every step
boundary is journalled, so a saga interrupted by a crash is resumed where it
stopped, by the same process after a restart or by another worker.

Example::

    saga = SagaOrchestrator("order-placement")
    saga.add_step("reserve", reserve_stock, release_stock)
    saga.add_step("charge", charge_card, lambda ctx: refund(ctx.results["charge"]))
    result = saga.execute(data={"order_id": "o-1"})
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol, TypeAlias, TypeVar

from ._types import (
    SYSTEM_CLOCK,
    Clock,
    IntegrationError,
    RetryPolicy,
    new_event_id,
)

__all__ = [
    "DEFAULT_COMPENSATION_RETRY",
    "DEFAULT_RETRIABLE_RETRY",
    "RetryPolicy",
    "SagaContext",
    "SagaDefinitionError",
    "SagaError",
    "SagaEvent",
    "SagaEventKind",
    "SagaJournalError",
    "SagaLeaseError",
    "SagaListener",
    "SagaNotFoundError",
    "SagaOrchestrator",
    "SagaRecord",
    "SagaResult",
    "SagaStatus",
    "SagaStep",
    "SagaStore",
    "SqlSagaStore",
    "SqliteSagaStore",
    "StepEntry",
]

logger = logging.getLogger(__name__)

_Store = TypeVar("_Store", bound="SqlSagaStore")

StepCallable: TypeAlias = Callable[..., Any]
Phase: TypeAlias = Literal["action", "compensation"]

DEFAULT_COMPENSATION_RETRY = RetryPolicy(
    max_attempts=3, backoff_seconds=1.0, max_backoff_seconds=30.0
)
"""How often a compensation is tried before the saga gives up on it."""

DEFAULT_RETRIABLE_RETRY = RetryPolicy(
    max_attempts=5, backoff_seconds=1.0, max_backoff_seconds=60.0
)
"""How often a step past the pivot is tried when it names no policy of its own."""


class SagaError(IntegrationError):
    """Base of the errors the saga orchestrator raises on purpose."""


class SagaNotFoundError(SagaError, LookupError):
    """The journal holds no saga with the requested id."""


class SagaDefinitionError(SagaError, ValueError):
    """The saga definition is invalid or does not match its journal."""


class SagaJournalError(SagaError, ValueError):
    """A value the journal must record is not JSON-serialisable."""


class SagaLeaseError(SagaError):
    """Another worker holds the saga's lease, or this worker lost it."""


class SagaStatus(enum.Enum):
    """Where a saga stands; FAILED means a person must act."""

    RUNNING = "running"
    COMPLETED = "completed"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        """Return True for COMPLETED, COMPENSATED and FAILED."""
        return self in _FINAL


_FINAL = frozenset({SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.FAILED})


class SagaEventKind(str, enum.Enum):
    """What happened in a saga, as announced to its listeners."""

    SAGA_STARTED = "saga_started"
    SAGA_RESUMED = "saga_resumed"
    SAGA_COMPLETED = "saga_completed"
    SAGA_COMPENSATED = "saga_compensated"
    SAGA_FAILED = "saga_failed"
    STEP_STARTED = "step_started"
    STEP_RETRYING = "step_retrying"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    COMPENSATION_STARTED = "compensation_started"
    COMPENSATION_RETRYING = "compensation_retrying"
    COMPENSATION_SUCCEEDED = "compensation_succeeded"
    COMPENSATION_FAILED = "compensation_failed"


@dataclass(frozen=True, slots=True)
class SagaEvent:
    """One lifecycle event of a saga run, as handed to every listener.

    Attributes:
        saga_id: the id of the run.
        saga_name: the orchestrator's name.
        kind: what happened.
        step: the step concerned; for the final saga events, the step whose
            action failed (None when the saga completed).
        attempt: for step and compensation events, the attempt concerned,
            counting from 1 (the attempt that just failed for the retrying
            kinds); 0 for saga events.
        error: the failure, for the failed and retrying kinds and for a saga
            that ended compensated or failed; otherwise None.
        time: the orchestrator clock's ``time()`` when the event happened.
        delay: for the retrying kinds, the seconds before the next attempt.
    """

    saga_id: str
    saga_name: str
    kind: SagaEventKind
    step: str | None
    attempt: int
    error: BaseException | None
    time: float
    delay: float | None = None


SagaListener: TypeAlias = Callable[[SagaEvent], object]
"""A callable that receives every ``SagaEvent`` of an orchestrator."""

_FINAL_EVENT = {
    SagaStatus.COMPLETED: SagaEventKind.SAGA_COMPLETED,
    SagaStatus.COMPENSATED: SagaEventKind.SAGA_COMPENSATED,
    SagaStatus.FAILED: SagaEventKind.SAGA_FAILED,
}


@dataclass(frozen=True)
class SagaContext:
    """What an action or compensation may read about the saga it runs in.

    Attributes:
        saga_id: the id of this saga run.
        saga_name: the orchestrator's name.
        data: the input given to ``execute(data=...)`` (journalled, so a resumed
            saga sees the same value).
        results: the results of the completed steps, by step name (read-only).
        step: the name of the step being run.
        compensating: True while a compensation runs.
    """

    saga_id: str
    saga_name: str
    data: Any
    results: Mapping[str, Any]
    step: str
    compensating: bool = False

    def idempotency_key(self, step: str | None = None) -> str:
        """Return the key a downstream call de-duplicates on for ``step``.

        The key is the same for every retry and every resume of this saga and
        step; it defaults to the step being run.
        """
        return f"{self.saga_name}:{self.saga_id}:{step or self.step}"


@dataclass
class SagaStep:
    """One step of a saga: its action and the compensation that undoes it.

    ``action`` and ``compensate`` take no argument or one ``SagaContext``.

    Attributes:
        name: the step's unique name within its saga.
        action: the forward operation; its return value is the step's result.
        compensate: undoes the action; None when there is nothing to undo.
        retry: how often the action is tried (None: once, or the retriable
            default past the pivot).
        compensation_retry: how often the compensation is tried.
        timeout: seconds one attempt may take under ``execute_async``.
        pivot: the point of no return; later steps are never compensated.
    """

    name: str
    action: StepCallable
    compensate: StepCallable | None = None
    _: KW_ONLY
    retry: RetryPolicy | None = None
    compensation_retry: RetryPolicy | None = DEFAULT_COMPENSATION_RETRY
    timeout: float | None = None
    pivot: bool = False
    action_takes_context: bool = field(init=False, repr=False, compare=False)
    compensate_takes_context: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate()
        self.action_takes_context = _takes_context(self.name, "action", self.action)
        self.compensate_takes_context = self.compensate is not None and _takes_context(
            self.name, "compensate", self.compensate
        )

    def _validate(self) -> None:
        name: object = self.name
        if not isinstance(name, str) or not name:
            raise SagaDefinitionError(
                f"step name must be a non-empty str, got {self.name!r}"
            )
        if self.compensate is not None and not callable(self.compensate):
            raise SagaDefinitionError(f"step {self.name!r}: compensate is not callable")
        for label, policy in (
            ("retry", self.retry),
            ("compensation_retry", self.compensation_retry),
        ):
            if policy is not None and not isinstance(policy, RetryPolicy):
                raise SagaDefinitionError(
                    f"step {self.name!r}: {label} must be a RetryPolicy or None"
                )
        if self.timeout is not None and not self.timeout > 0:
            raise SagaDefinitionError(
                f"step {self.name!r}: timeout must be > 0, got {self.timeout!r}"
            )


def _takes_context(step: str, role: str, fn: object) -> bool:
    if not callable(fn):
        raise SagaDefinitionError(f"step {step!r}: {role} is not callable")
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False

    positional = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
    required = [p for p in params if p.default is p.empty and p.kind in positional]
    required_kw = [
        p for p in params if p.default is p.empty and p.kind is p.KEYWORD_ONLY
    ]
    if len(required) > 1 or required_kw:
        raise SagaDefinitionError(
            f"step {step!r}: {role} must take no argument or one SagaContext"
        )
    return len(required) == 1


@dataclass
class SagaResult:
    """Outcome of a saga run.

    Attributes:
        succeeded: True when every step completed.
        failed_step: the step whose action failed, or None.
        error: the exception that step raised (rebuilt as a ``SagaError`` when
            read back from the journal), or None.
        completed_steps: the steps whose action completed, in order.
        compensated_steps: the steps whose compensation completed, in the order
            they ran.
        step_results: each completed step's result, by name.
        saga_id: the id of the run.
        status: COMPLETED, COMPENSATED or FAILED once the run is over.
        compensation_errors: the compensations that failed after their
            retries, by step name.
    """

    succeeded: bool
    failed_step: str | None = None
    error: Exception | None = None
    completed_steps: list[str] = field(default_factory=list)
    compensated_steps: list[str] = field(default_factory=list)
    step_results: dict[str, Any] = field(default_factory=dict)
    saga_id: str = ""
    status: SagaStatus = None  # type: ignore[assignment]  # derived in __post_init__
    compensation_errors: dict[str, Exception] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status is None:
            self.status = _derive_status(self.succeeded, self.compensation_errors)


def _derive_status(
    succeeded: bool, compensation_errors: Mapping[str, object]
) -> SagaStatus:
    if succeeded:
        return SagaStatus.COMPLETED
    return SagaStatus.FAILED if compensation_errors else SagaStatus.COMPENSATED


# --------------------------------------------------------------------------- journal


@dataclass(frozen=True)
class StepEntry:
    """The journalled state of one step's action or compensation.

    Attributes:
        state: "started", "done" or "failed".
        result: the JSON text of the result once done.
        error: a description of the error once failed.
    """

    state: str
    result: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class SagaRecord:
    """Everything the journal knows about one saga.

    Attributes:
        saga_id: the saga's id.
        name: the orchestrator's name.
        status: the saga's recorded status.
        steps: the step names of the definition that started it, in order.
        data: the JSON text of the saga's input.
        failed_step: the step whose action failed, if any.
        error: a description of that failure, if any.
        entries: the journal entries by (step, phase).
    """

    saga_id: str
    name: str
    status: SagaStatus
    steps: tuple[str, ...]
    data: str
    failed_step: str | None = None
    error: str | None = None
    entries: Mapping[tuple[str, str], StepEntry] = field(default_factory=dict)


class SagaStore(Protocol):
    """Where a saga's journal lives; every write is fenced by the caller's lease."""

    def create(self, record: SagaRecord, *, owner: str, lease_until: float) -> None:
        """Record a new saga holding a lease; raise SagaError if the id exists."""
        ...

    def load(self, saga_id: str) -> SagaRecord | None:
        """Return the saga's record with its entries, or None when unknown."""
        ...

    def acquire(
        self, saga_id: str, *, owner: str, now: float, lease_until: float
    ) -> bool:
        """Take the lease of an unfinished saga unless another live owner holds it."""
        ...

    def record(
        self,
        saga_id: str,
        step: str,
        phase: str,
        entry: StepEntry,
        *,
        owner: str,
        lease_until: float,
        status: SagaStatus | None = None,
        failed_step: str | None = None,
        error: str | None = None,
    ) -> None:
        """Write one entry (and a status change) and renew the lease, atomically.

        Raises:
            SagaLeaseError: ``owner`` no longer holds the lease.
        """
        ...

    def finish(self, saga_id: str, status: SagaStatus, *, owner: str) -> None:
        """Record the final status and release the lease.

        Raises:
            SagaLeaseError: ``owner`` no longer holds the lease.
        """
        ...

    def incomplete(self, name: str | None = None) -> list[str]:
        """Return the ids of sagas RUNNING or COMPENSATING, oldest first."""
        ...


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS saga_instance (
        saga_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        steps TEXT NOT NULL,
        data TEXT NOT NULL,
        failed_step TEXT,
        error TEXT,
        lease_owner TEXT,
        lease_until DOUBLE PRECISION NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS saga_instance_status
        ON saga_instance (status, name)""",
    """CREATE TABLE IF NOT EXISTS saga_journal (
        saga_id TEXT NOT NULL,
        step TEXT NOT NULL,
        phase TEXT NOT NULL,
        state TEXT NOT NULL,
        result TEXT,
        error TEXT,
        PRIMARY KEY (saga_id, step, phase)
    )""",
)

_CREATE = """INSERT INTO saga_instance
    (saga_id, name, status, steps, data, lease_owner, lease_until)
    VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (saga_id) DO NOTHING"""
_ACQUIRE = """UPDATE saga_instance SET lease_owner = ?, lease_until = ?
    WHERE saga_id = ? AND status IN ('running', 'compensating')
    AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?)"""
_RENEW = (
    """UPDATE saga_instance SET lease_until = ? WHERE saga_id = ? AND lease_owner = ?"""
)
_RENEW_WITH_STATUS = """UPDATE saga_instance
    SET lease_until = ?, status = ?, failed_step = ?, error = ?
    WHERE saga_id = ? AND lease_owner = ?"""
_ENTRY = """INSERT INTO saga_journal (saga_id, step, phase, state, result, error)
    VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (saga_id, step, phase)
    DO UPDATE SET state = excluded.state, result = excluded.result,
    error = excluded.error"""
_FINISH = """UPDATE saga_instance SET status = ?, lease_owner = NULL
    WHERE saga_id = ? AND lease_owner = ?"""
_LOAD = """SELECT name, status, steps, data, failed_step, error
    FROM saga_instance WHERE saga_id = ?"""
_LOAD_ENTRIES = """SELECT step, phase, state, result, error
    FROM saga_journal WHERE saga_id = ?"""
_INCOMPLETE = """SELECT saga_id FROM saga_instance
    WHERE status IN ('running', 'compensating') ORDER BY saga_id"""
_INCOMPLETE_NAMED = """SELECT saga_id FROM saga_instance
    WHERE status IN ('running', 'compensating') AND name = ? ORDER BY saga_id"""


class SqlSagaStore:
    """A saga journal in any DB-API 2.0 database: SQLite or PostgreSQL.

    ``connect()`` returns a new connection (``sqlite3`` or psycopg 3). The store
    opens one connection on first use, creates its two tables if missing, and
    reuses that connection, so drivers that cache prepared statements keep
    them. Every write is one transaction. Calls are serialised by a lock, so
    one store may be shared by threads.

    Args:
        connect: a factory of new DB-API connections.
        dialect: "sqlite" (qmark parameters) or "postgresql" (format
            parameters).
    """

    def __init__(self, connect: Callable[[], Any], dialect: str) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise SagaDefinitionError(
                f"dialect must be 'sqlite' or 'postgresql', got {dialect!r}"
            )
        self.dialect = dialect
        self._connect = connect
        self._conn: Any = None
        self._lock = threading.Lock()
        self._sql = _statements(dialect)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dialect={self.dialect!r})"

    def create_schema(self) -> None:
        """Create the journal tables if they do not exist (idempotent)."""
        with self._lock:
            self._connection()

    def close(self) -> None:
        """Close the store's connection; the next call opens a new one."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def create(self, record: SagaRecord, *, owner: str, lease_until: float) -> None:
        """Record a new saga holding a lease; raise SagaError if the id exists."""
        params = (
            record.saga_id,
            record.name,
            record.status.value,
            json.dumps(list(record.steps)),
            record.data,
            owner,
            lease_until,
        )
        if self._write([(self._sql[_CREATE], params)]) == 0:
            raise SagaError(
                f"saga {record.saga_id!r} already exists; resume it instead"
            )

    def load(self, saga_id: str) -> SagaRecord | None:
        """Return the saga's record with its entries, or None when unknown."""
        with self._lock:
            conn = self._connection()
            try:
                cur = conn.cursor()
                cur.execute(self._sql[_LOAD], (saga_id,))
                row = cur.fetchone()
                cur.execute(self._sql[_LOAD_ENTRIES], (saga_id,))
                rows = cur.fetchall()
            finally:
                conn.rollback()
        if row is None:
            return None
        return _record_from_rows(saga_id, row, rows)

    def acquire(
        self, saga_id: str, *, owner: str, now: float, lease_until: float
    ) -> bool:
        """Take the lease of an unfinished saga unless another live owner holds it."""
        params = (owner, lease_until, saga_id, owner, now)
        return self._write([(self._sql[_ACQUIRE], params)]) == 1

    def record(
        self,
        saga_id: str,
        step: str,
        phase: str,
        entry: StepEntry,
        *,
        owner: str,
        lease_until: float,
        status: SagaStatus | None = None,
        failed_step: str | None = None,
        error: str | None = None,
    ) -> None:
        """Write one entry (and a status change) and renew the lease, atomically.

        Raises:
            SagaLeaseError: ``owner`` no longer holds the lease.
        """
        fence: tuple[str, tuple[Any, ...]]
        if status is None:
            fence = (self._sql[_RENEW], (lease_until, saga_id, owner))
        else:
            params = (lease_until, status.value, failed_step, error, saga_id, owner)
            fence = (self._sql[_RENEW_WITH_STATUS], params)
        write = (saga_id, step, phase, entry.state, entry.result, entry.error)
        self._fenced(saga_id, owner, [fence, (self._sql[_ENTRY], write)])

    def finish(self, saga_id: str, status: SagaStatus, *, owner: str) -> None:
        """Record the final status and release the lease.

        Raises:
            SagaLeaseError: ``owner`` no longer holds the lease.
        """
        self._fenced(
            saga_id, owner, [(self._sql[_FINISH], (status.value, saga_id, owner))]
        )

    def incomplete(self, name: str | None = None) -> list[str]:
        """Return the ids of sagas RUNNING or COMPENSATING, oldest first."""
        with self._lock:
            conn = self._connection()
            try:
                cur = conn.cursor()
                if name is None:
                    cur.execute(self._sql[_INCOMPLETE])
                else:
                    cur.execute(self._sql[_INCOMPLETE_NAMED], (name,))
                return [str(row[0]) for row in cur.fetchall()]
            finally:
                conn.rollback()

    def _fenced(
        self, saga_id: str, owner: str, statements: list[tuple[str, tuple[Any, ...]]]
    ) -> None:
        if self._write(statements, fence=True) == 0:
            raise SagaLeaseError(
                f"saga {saga_id!r}: worker {owner!r} no longer holds the lease"
            )

    def _write(
        self, statements: list[tuple[str, tuple[Any, ...]]], *, fence: bool = False
    ) -> int:
        with self._lock:
            conn = self._connection()
            try:
                cur = conn.cursor()
                cur.execute(*statements[0])
                count = int(cur.rowcount)
                if count == 0 and fence:
                    conn.rollback()
                    return 0
                for sql, params in statements[1:]:
                    cur.execute(sql, params)
                conn.commit()
            except BaseException:
                self._abandon(conn)
                raise
            return count

    def _abandon(self, conn: Any) -> None:
        """Roll back a failed transaction; drop a connection that cannot."""
        try:
            conn.rollback()
        except Exception:  # noqa: BLE001 -- any driver error means the link is gone
            self._conn = None
            conn.close()

    def _connection(self) -> Any:
        if self._conn is None:
            conn = self._connect()
            try:
                cur = conn.cursor()
                for ddl in _SCHEMA:
                    cur.execute(ddl)
                conn.commit()
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn


class SqliteSagaStore(SqlSagaStore):
    """A saga journal in one SQLite file, in WAL mode, shareable by processes.

    Args:
        path: the database file (created if missing).
        timeout: seconds to wait for another process's write lock.
    """

    def __init__(self, path: str | bytes | Any, *, timeout: float = 30.0) -> None:
        self.path = path

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn

        super().__init__(connect, "sqlite")

    def __repr__(self) -> str:
        return f"SqliteSagaStore({str(self.path)!r})"


def _statements(dialect: str) -> dict[str, str]:
    queries = (
        *(_CREATE, _ACQUIRE, _RENEW, _RENEW_WITH_STATUS, _ENTRY, _FINISH),
        *(_LOAD, _LOAD_ENTRIES, _INCOMPLETE, _INCOMPLETE_NAMED),
    )
    if dialect == "sqlite":
        return {sql: sql for sql in queries}
    return {sql: sql.replace("?", "%s") for sql in queries}


def _record_from_rows(
    saga_id: str, row: Iterable[Any], rows: Iterable[Iterable[Any]]
) -> SagaRecord:
    name, status, steps, data, failed_step, error = row
    entries = {
        (str(step), str(phase)): StepEntry(str(state), result, error_text)
        for step, phase, state, result, error_text in rows
    }
    try:
        names = tuple(str(s) for s in json.loads(steps))
        state = SagaStatus(status)
    except (ValueError, TypeError) as exc:
        raise SagaError(f"saga {saga_id!r}: unreadable journal row") from exc
    return SagaRecord(
        saga_id, str(name), state, names, str(data), failed_step, error, entries
    )


# --------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class _Call:
    """A request from the engine to its driver: run one attempt of a callable."""

    step: str
    phase: Phase
    fn: StepCallable
    context: SagaContext | None
    timeout: float | None

    def invoke(self) -> Any:
        return self.fn() if self.context is None else self.fn(self.context)


@dataclass(frozen=True)
class _Sleep:
    """A request from the engine to its driver: wait before the next attempt."""

    phase: Phase
    seconds: float


_RETRYING: Mapping[Phase, SagaEventKind] = {
    "action": SagaEventKind.STEP_RETRYING,
    "compensation": SagaEventKind.COMPENSATION_RETRYING,
}

_Request: TypeAlias = "_Call | _Sleep"
_Engine: TypeAlias = "Generator[_Request, Any, SagaResult]"
_Outcome: TypeAlias = "tuple[bool, Any]"


@dataclass
class _Run:
    """The mutable state of one saga run, fresh or rebuilt from its journal."""

    saga_id: str
    data: Any
    status: SagaStatus
    results: dict[str, Any] = field(default_factory=dict)
    completed: list[str] = field(default_factory=list)
    compensated: list[str] = field(default_factory=list)
    compensation_errors: dict[str, Exception] = field(default_factory=dict)
    failed_step: str | None = None
    error: Exception | None = None
    entries: Mapping[tuple[str, str], StepEntry] = field(default_factory=dict)
    interrupted: bool = False
    attempt: int = 0

    def result(self) -> SagaResult:
        return SagaResult(
            succeeded=self.status is SagaStatus.COMPLETED,
            failed_step=self.failed_step,
            error=self.error,
            completed_steps=list(self.completed),
            compensated_steps=list(self.compensated),
            step_results=dict(self.results),
            saga_id=self.saga_id,
            status=self.status,
            compensation_errors=dict(self.compensation_errors),
        )


class SagaOrchestrator:
    """Runs saga steps in order and compensates the completed ones on failure.

    Steps run in the order they were added. When a step fails after its
    retries, the completed steps before it are compensated in reverse order.
    A step marked ``pivot`` is the point of no return: steps after it are
    retried and never compensated. With a ``store``, every step boundary is
    journalled and ``resume(saga_id)`` continues an interrupted saga.

    Args:
        name: the saga's name, used in logs, the journal and idempotency keys.
        store: where to journal runs; None keeps everything in memory.
        clock: the clock for retry waits, timeouts and leases.
        worker_id: this worker's lease owner name (default: a new unique id).
        lease_seconds: how long a lease lasts; every journal write renews it.
        listeners: callables that receive every ``SagaEvent``; see
            ``add_listener``.
    """

    def __init__(
        self,
        name: str,
        *,
        store: SagaStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        worker_id: str | None = None,
        lease_seconds: float = 300.0,
        listeners: Iterable[SagaListener] = (),
    ) -> None:
        if not lease_seconds > 0:
            raise SagaDefinitionError(
                f"lease_seconds must be > 0, got {lease_seconds!r}"
            )
        self.name = name
        self.store = store
        self.worker_id = worker_id or new_event_id()
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._steps: list[SagaStep] = []
        self._pivot: int | None = None
        self._listeners: tuple[SagaListener, ...] = tuple(listeners)

    def __repr__(self) -> str:
        return f"SagaOrchestrator({self.name!r}, steps={len(self._steps)})"

    @property
    def steps(self) -> tuple[SagaStep, ...]:
        """Return the steps in the order they run."""
        return tuple(self._steps)

    def add_step(
        self,
        name: str,
        action: StepCallable,
        compensate: StepCallable | None = None,
        *,
        retry: RetryPolicy | None = None,
        compensation_retry: RetryPolicy | None = DEFAULT_COMPENSATION_RETRY,
        timeout: float | None = None,
        pivot: bool = False,
    ) -> SagaOrchestrator:
        """Append a step and return ``self`` for chaining.

        Args:
            name: the step's name, unique within the saga.
            action: the forward operation, taking no argument or a SagaContext.
            compensate: undoes the action; None when there is nothing to undo.
            retry: how often the action is tried before the step fails.
            compensation_retry: how often the compensation is tried.
            timeout: seconds one attempt may take under ``execute_async``.
            pivot: mark the point of no return.

        Raises:
            SagaDefinitionError: the name is taken, a callable has the wrong
                shape, or compensation is given where it can never run.
        """
        step = SagaStep(
            name,
            action,
            compensate,
            retry=retry,
            compensation_retry=compensation_retry,
            timeout=timeout,
            pivot=pivot,
        )
        self._check_placement(step)
        if pivot:
            self._pivot = len(self._steps)
        self._steps.append(step)
        return self

    def add_listener(self, listener: SagaListener) -> None:
        """Call ``listener(event)`` once for every lifecycle event of every run.

        Listeners run in the saga's thread, in the order they were added, right
        after the event is journalled. One that raises is logged with the
        saga's id and otherwise ignored: it never changes the saga's outcome.
        """
        self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: SagaListener) -> None:
        """Stop calling ``listener``; do nothing if it was not added."""
        self._listeners = tuple(x for x in self._listeners if x != listener)

    def _check_placement(self, step: SagaStep) -> None:
        if any(s.name == step.name for s in self._steps):
            raise SagaDefinitionError(
                f"step {step.name!r} is already in saga {self.name!r}"
            )
        if step.pivot and self._pivot is not None:
            raise SagaDefinitionError(
                f"step {step.name!r}: saga {self.name!r} already has a pivot step"
            )
        if step.compensate is not None and (step.pivot or self._pivot is not None):
            raise SagaDefinitionError(
                f"step {step.name!r}: the pivot and the steps after it are never"
                " compensated; pass compensate=None"
            )

    def execute(self, data: Any = None, *, saga_id: str | None = None) -> SagaResult:
        """Run the saga to its end and return the outcome.

        Args:
            data: the saga's input, seen by steps as ``context.data``
                (JSON-serialisable when a store is used).
            saga_id: the run's id (default: a new UUIDv7).

        Raises:
            SagaJournalError: ``data`` or a step result cannot be journalled.
            SagaError: ``saga_id`` is already in the store.
            SagaLeaseError: another worker took the saga over.
        """
        return self._drive(self._engine(self._start(data, saga_id)))

    async def execute_async(
        self, data: Any = None, *, saga_id: str | None = None
    ) -> SagaResult:
        """Run the saga with ``async def`` and plain callables; see ``execute``.

        A step's ``timeout`` bounds each awaited attempt. When the task is
        cancelled during a step before the pivot, the completed steps are
        compensated (shielded from the cancellation), the saga is recorded
        COMPENSATED, and ``CancelledError`` is re-raised.
        """
        return await self._drive_async(self._engine(self._start(data, saga_id)))

    def resume(self, saga_id: str) -> SagaResult:
        """Continue an interrupted saga, or return a finished saga's result.

        A step whose start is journalled without an outcome runs again with
        the same idempotency key; so does a compensation.

        Raises:
            SagaNotFoundError: the store has no saga with this id.
            SagaDefinitionError: the journal's name or steps differ from this
                definition.
            SagaLeaseError: another worker holds the saga's lease.
        """
        run = self._open(saga_id)
        if isinstance(run, SagaResult):
            return run
        return self._drive(self._engine(run))

    async def resume_async(self, saga_id: str) -> SagaResult:
        """Continue an interrupted saga under asyncio; see ``resume``."""
        run = self._open(saga_id)
        if isinstance(run, SagaResult):
            return run
        return await self._drive_async(self._engine(run))

    def recover(self) -> list[SagaResult]:
        """Resume every unfinished saga of this name that no live worker holds.

        Call it at start-up. Sagas leased by another worker are skipped.
        """
        if self.store is None:
            return []
        outcomes = (
            self._resume_unless_leased(i) for i in self.store.incomplete(self.name)
        )
        return [result for result in outcomes if result is not None]

    def _resume_unless_leased(self, saga_id: str) -> SagaResult | None:
        try:
            return self.resume(saga_id)
        except SagaLeaseError:
            logger.info(
                "saga leased by another worker; skipped",
                extra={"saga_id": saga_id, "saga": self.name},
            )
            return None

    # ----------------------------------------------------------------- start

    def _start(self, data: Any, saga_id: str | None) -> _Run:
        run = _Run(saga_id or new_event_id(), data, SagaStatus.RUNNING)
        if self.store is not None:
            record = SagaRecord(
                run.saga_id,
                self.name,
                SagaStatus.RUNNING,
                tuple(s.name for s in self._steps),
                _to_json(run.saga_id, "input data", data),
            )
            self.store.create(
                record, owner=self.worker_id, lease_until=self._lease_until()
            )
        logger.info(
            "saga started",
            extra={
                "saga_id": run.saga_id,
                "saga": self.name,
                "steps": len(self._steps),
            },
        )
        if self._listeners:
            self._emit(run, SagaEventKind.SAGA_STARTED)
        return run

    def _open(self, saga_id: str) -> _Run | SagaResult:
        if self.store is None:
            raise SagaNotFoundError(f"saga {saga_id!r}: no store to resume from")
        record = self.store.load(saga_id)
        if record is None:
            raise SagaNotFoundError(f"saga {saga_id!r} is not in the journal")
        self._check_definition(record)

        run = _run_from_record(record)
        if record.status.is_final:
            return run.result()
        now = self._clock.time()
        lease_until = now + self.lease_seconds
        if not self.store.acquire(
            saga_id, owner=self.worker_id, now=now, lease_until=lease_until
        ):
            raise SagaLeaseError(f"saga {saga_id!r} is leased by another worker")
        logger.info(
            "saga resumed",
            extra={
                "saga_id": saga_id,
                "saga": self.name,
                "status": record.status.value,
            },
        )
        if self._listeners:
            self._emit(run, SagaEventKind.SAGA_RESUMED)
        return run

    def _check_definition(self, record: SagaRecord) -> None:
        names = tuple(s.name for s in self._steps)
        if record.name != self.name or record.steps != names:
            raise SagaDefinitionError(
                f"saga {record.saga_id!r} was journalled as {record.name!r} with steps"
                f" {list(record.steps)}; this definition is {self.name!r} with steps"
                f" {list(names)}"
            )

    # ---------------------------------------------------------------- engine

    def _engine(self, run: _Run) -> _Engine:
        if run.status is SagaStatus.RUNNING:
            yield from self._forward(run)
        if run.status is SagaStatus.COMPENSATING:
            yield from self._compensate(run)
        if not run.interrupted:
            self._finish(run)
        return run.result()

    def _forward(self, run: _Run) -> Generator[_Request, Any, None]:
        for index, step in enumerate(self._steps):
            if step.name in run.results:
                continue
            self._journal(run, step.name, "action", StepEntry("started"))
            if self._listeners:
                self._emit(run, SagaEventKind.STEP_STARTED, step.name, 1)

            try:
                value = yield from self._attempts(run, step, "action", index)
            except Exception as exc:  # noqa: BLE001 -- a step may raise anything; the saga records it
                self._step_failed(run, index, step, exc)
                return
            except asyncio.CancelledError:
                run.interrupted = self._past_pivot(index)
                if not run.interrupted:
                    self._step_failed(run, index, step, SagaError("cancelled"))
                return

            self._step_done(run, step, value)
        run.status = SagaStatus.COMPLETED

    def _compensate(self, run: _Run) -> Generator[_Request, Any, None]:
        for step in reversed(self._steps):
            if step.compensate is None or step.name not in run.results:
                continue
            entry = run.entries.get((step.name, "compensation"))
            if entry is not None and entry.state == "done":
                run.compensated.append(step.name)
                continue
            if entry is not None and entry.state == "failed":
                run.compensation_errors[step.name] = SagaError(entry.error or "")
                continue
            yield from self._compensate_step(run, step)

        failed = bool(run.compensation_errors)
        run.status = SagaStatus.FAILED if failed else SagaStatus.COMPENSATED

    def _compensate_step(
        self, run: _Run, step: SagaStep
    ) -> Generator[_Request, Any, None]:
        self._journal(run, step.name, "compensation", StepEntry("started"))
        if self._listeners:
            self._emit(run, SagaEventKind.COMPENSATION_STARTED, step.name, 1)
        try:
            yield from self._attempts(run, step, "compensation", 0)
        except Exception as exc:  # noqa: BLE001 -- a step may raise anything; the saga records it
            run.compensation_errors[step.name] = exc
            entry = StepEntry("failed", error=_describe(exc))
            self._journal(run, step.name, "compensation", entry)
            if self._listeners:
                kind = SagaEventKind.COMPENSATION_FAILED
                self._emit(run, kind, step.name, run.attempt, exc)
            logger.error(
                "compensation failed after its retries; a person must act",
                extra=self._extra(run, step.name, error=_describe(exc)),
            )
            return
        self._journal(run, step.name, "compensation", StepEntry("done"))
        run.compensated.append(step.name)
        if self._listeners:
            kind = SagaEventKind.COMPENSATION_SUCCEEDED
            self._emit(run, kind, step.name, run.attempt)
        logger.info("step compensated", extra=self._extra(run, step.name))

    def _attempts(
        self, run: _Run, step: SagaStep, phase: Phase, index: int
    ) -> Generator[_Request, Any, Any]:
        call = self._call(run, step, phase)
        policy = self._policy(step, phase, index)
        started = self._clock.monotonic()
        delay: float | None = None
        attempt = 0
        while True:
            attempt += 1
            run.attempt = attempt
            if logger.isEnabledFor(logging.DEBUG):
                extra = self._extra(run, step.name, phase=phase, attempt=attempt)
                logger.debug("step attempt", extra=extra)
            try:
                return (yield call)
            except Exception as exc:
                delay = self._next_delay(policy, attempt, started, delay)
                if delay is None:
                    raise
                logger.warning(
                    "step attempt failed; retrying",
                    extra=self._extra(
                        run,
                        step.name,
                        phase=phase,
                        attempt=attempt,
                        delay=delay,
                        error=_describe(exc),
                    ),
                )
                if self._listeners:
                    kind = _RETRYING[phase]
                    self._emit(run, kind, step.name, attempt, exc, delay=delay)
            yield _Sleep(phase, delay)

    def _call(self, run: _Run, step: SagaStep, phase: Phase) -> _Call:
        if phase == "action":
            fn, wants_context = step.action, step.action_takes_context
        else:
            assert step.compensate is not None
            fn, wants_context = step.compensate, step.compensate_takes_context
        context = None
        if wants_context:
            context = SagaContext(
                run.saga_id,
                self.name,
                run.data,
                MappingProxyType(run.results),
                step.name,
                compensating=phase == "compensation",
            )
        return _Call(step.name, phase, fn, context, step.timeout)

    def _policy(self, step: SagaStep, phase: Phase, index: int) -> RetryPolicy | None:
        if phase == "compensation":
            return step.compensation_retry
        if step.retry is None and self._past_pivot(index):
            return DEFAULT_RETRIABLE_RETRY
        return step.retry

    def _next_delay(
        self,
        policy: RetryPolicy | None,
        attempt: int,
        started: float,
        previous: float | None,
    ) -> float | None:
        if policy is None or policy.is_exhausted(attempt):
            return None
        delay = policy.delay_for_attempt(attempt - 1, previous=previous)
        deadline = policy.deadline_seconds
        if (
            deadline is not None
            and self._clock.monotonic() - started + delay > deadline
        ):
            return None
        return delay

    def _past_pivot(self, index: int) -> bool:
        return self._pivot is not None and index > self._pivot

    def _step_done(self, run: _Run, step: SagaStep, value: Any) -> None:
        if self.store is not None:
            text = _to_json(run.saga_id, f"result of step {step.name!r}", value)
            self._journal(run, step.name, "action", StepEntry("done", result=text))
        run.results[step.name] = value
        run.completed.append(step.name)
        if self._listeners:
            kind = SagaEventKind.STEP_SUCCEEDED
            self._emit(run, kind, step.name, run.attempt)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("step completed", extra=self._extra(run, step.name))

    def _step_failed(
        self, run: _Run, index: int, step: SagaStep, exc: Exception
    ) -> None:
        past_pivot = self._past_pivot(index)
        run.status = SagaStatus.FAILED if past_pivot else SagaStatus.COMPENSATING
        run.failed_step, run.error = step.name, exc
        entry = StepEntry("failed", error=_describe(exc))
        self._journal(run, step.name, "action", entry, failed=True)
        if self._listeners:
            self._emit(run, SagaEventKind.STEP_FAILED, step.name, run.attempt, exc)

        extra = self._extra(run, step.name, error=_describe(exc))
        if past_pivot:
            logger.error(
                "step past the pivot failed after its retries; a person must act",
                extra=extra,
            )
        else:
            logger.warning("step failed; compensating the completed steps", extra=extra)

    def _journal(
        self,
        run: _Run,
        step: str,
        phase: Phase,
        entry: StepEntry,
        *,
        failed: bool = False,
    ) -> None:
        if self.store is None:
            return
        status = run.status if failed else None
        error = entry.error if failed else None
        self.store.record(
            run.saga_id,
            step,
            phase,
            entry,
            owner=self.worker_id,
            lease_until=self._lease_until(),
            status=status,
            failed_step=step if failed else None,
            error=error,
        )

    def _finish(self, run: _Run) -> None:
        if self.store is not None:
            self.store.finish(run.saga_id, run.status, owner=self.worker_id)
        extra = self._extra(run, None, status=run.status.value)
        if run.status is SagaStatus.FAILED:
            logger.error("saga failed; a person must act", extra=extra)
        else:
            logger.info("saga finished", extra=extra)
        if self._listeners:
            kind = _FINAL_EVENT[run.status]
            self._emit(run, kind, run.failed_step, 0, run.error)

    def _emit(
        self,
        run: _Run,
        kind: SagaEventKind,
        step: str | None = None,
        attempt: int = 0,
        error: BaseException | None = None,
        *,
        delay: float | None = None,
    ) -> None:
        event = SagaEvent(
            run.saga_id,
            self.name,
            kind,
            step,
            attempt,
            error,
            self._clock.time(),
            delay,
        )
        for listener in self._listeners:
            self._notify(listener, event)

    def _notify(self, listener: SagaListener, event: SagaEvent) -> None:
        try:
            listener(event)
        except Exception:
            logger.exception(
                "saga listener raised; the saga goes on",
                extra={
                    "saga_id": event.saga_id,
                    "saga": self.name,
                    "saga_event": event.kind.value,
                    "listener": repr(listener),
                },
            )

    def _lease_until(self) -> float:
        return self._clock.time() + self.lease_seconds

    def _extra(self, run: _Run, step: str | None, **fields: Any) -> dict[str, Any]:
        return {"saga_id": run.saga_id, "saga": self.name, "step": step, **fields}

    # --------------------------------------------------------------- drivers

    def _drive(self, engine: _Engine) -> SagaResult:
        outcome: _Outcome = (True, None)
        while True:
            try:
                request = (
                    engine.send(outcome[1]) if outcome[0] else engine.throw(outcome[1])
                )
            except StopIteration as stop:
                result: SagaResult = stop.value
                return result
            outcome = self._perform(request)

    def _perform(self, request: _Request) -> _Outcome:
        if isinstance(request, _Sleep):
            self._clock.sleep(request.seconds)
            return (True, None)
        try:
            value = request.invoke()
        except Exception as exc:  # noqa: BLE001 -- a step may raise anything; the saga records it
            return (False, exc)
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            error = SagaDefinitionError(
                f"step {request.step!r}: {request.phase} returned an awaitable;"
                " run the saga with execute_async"
            )
            return (False, error)
        return (True, value)

    async def _drive_async(
        self, engine: _Engine, outcome: _Outcome = (True, None)
    ) -> SagaResult:
        while True:
            try:
                request = (
                    engine.send(outcome[1]) if outcome[0] else engine.throw(outcome[1])
                )
            except StopIteration as stop:
                result: SagaResult = stop.value
                return result
            try:
                outcome = await self._perform_async(request)
            except asyncio.CancelledError as cancel:
                finishing = asyncio.ensure_future(
                    self._after_cancel(engine, request, cancel)
                )
                await asyncio.shield(finishing)
                raise

    async def _after_cancel(
        self, engine: _Engine, request: _Request, cancel: asyncio.CancelledError
    ) -> SagaResult:
        if request.phase == "action":
            outcome: _Outcome = (False, cancel)
        elif isinstance(request, _Sleep):
            outcome = (True, None)
        else:
            outcome = await self._perform_async(request)
        return await self._drive_async(engine, outcome)

    async def _perform_async(self, request: _Request) -> _Outcome:
        if isinstance(request, _Sleep):
            await self._clock.asleep(request.seconds)
            return (True, None)
        try:
            value = request.invoke()
            if inspect.isawaitable(value):
                value = await self._bounded(value, request)
        except Exception as exc:  # noqa: BLE001 -- a step may raise anything; the saga records it
            return (False, exc)
        return (True, value)

    async def _bounded(self, awaitable: Awaitable[Any], request: _Call) -> Any:
        if request.timeout is None:
            return await awaitable
        work = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self._clock.asleep(request.timeout))
        try:
            await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not work.done():
                work.cancel()
        if not work.cancelled() and work.done():
            return work.result()
        await asyncio.wait({work})
        raise TimeoutError(
            f"step {request.step!r}: {request.phase} exceeded its"
            f" {request.timeout}s timeout"
        )


def _run_from_record(record: SagaRecord) -> _Run:
    run = _Run(
        record.saga_id,
        _from_json(record.saga_id, "input data", record.data),
        record.status,
        failed_step=record.failed_step,
        error=None if record.error is None else SagaError(record.error),
        entries=record.entries,
    )
    for step in record.steps:
        entry = record.entries.get((step, "action"))
        if entry is not None and entry.state == "done":
            run.results[step] = _from_json(
                record.saga_id, f"result of step {step!r}", entry.result
            )
            run.completed.append(step)

    for step in reversed(record.steps):
        entry = record.entries.get((step, "compensation"))
        if entry is not None and record.status.is_final:
            if entry.state == "done":
                run.compensated.append(step)
            elif entry.state == "failed":
                run.compensation_errors[step] = SagaError(entry.error or "")
    return run


def _to_json(saga_id: str, what: str, value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise SagaJournalError(
            f"saga {saga_id!r}: the {what} is not JSON-serialisable, so it cannot"
            f" be journalled: {exc}"
        ) from exc


def _from_json(saga_id: str, what: str, text: str | None) -> Any:
    try:
        return json.loads(text or "null")
    except (ValueError, RecursionError) as exc:
        raise SagaError(
            f"saga {saga_id!r}: the journalled {what} is unreadable"
        ) from exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
