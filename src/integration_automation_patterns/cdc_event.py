"""Change data capture events from Debezium, Maxwell, AWS DMS and wal2json.

Each parser turns one connector message into `CDCEvent` values with the same
shape: the operation, the row before and after, the row's key, where the change
came from, and where it sits in the source's log. The event id is derived from
that log position, so a redelivered message gets the id it had the first time
(ADR 0006) and a consumer can de-duplicate on it.

Usage::

    event = CDCEvent.from_debezium(record.value, key=record.key)
    if event.operation is CDCOperation.TOMBSTONE:
        ...  # compaction marker: nothing to apply
    elif event.operation is CDCOperation.DELETE:
        read_model.pop(event.source.table, event.key)
    else:
        read_model.put(event.source.table, event.key, event.after)
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Generic, TypeVar, overload

from ._types import SYSTEM_CLOCK, Clock, IntegrationError, new_event_id

__all__ = [
    "DEFAULT_UNAVAILABLE_PLACEHOLDER",
    "CDCEvent",
    "CDCMessage",
    "CDCNotAChangeError",
    "CDCOperation",
    "CDCParseError",
    "CDCPosition",
    "CDCSourceMetadata",
    "DebeziumTransaction",
]

logger = logging.getLogger(__name__)

DEFAULT_UNAVAILABLE_PLACEHOLDER = "__debezium_unavailable_value"
"""Debezium's default ``unavailable.value.placeholder`` (unchanged TOAST, LOBs)."""

Row = dict[str, Any]
Raw = Mapping[str, Any] | str | bytes | bytearray | None

_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NOTHING: frozenset[str] = frozenset()
_REPR_LIMIT = 60


class CDCParseError(IntegrationError, ValueError):
    """A CDC message is malformed; the message names the path at fault."""


class CDCNotAChangeError(CDCParseError):
    """A well-formed message that is not a row change (DDL, control, boundary).

    ``kind`` says which: ``"schema_change"``, ``"transaction"``, ``"control"``
    or ``"bootstrap"``. Consumers that read mixed topics catch this one and
    skip the message.
    """

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class CDCOperation(enum.Enum):
    """The kind of change a CDC event carries; values are the upper-case names."""

    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    SNAPSHOT = "SNAPSHOT"
    TRUNCATE = "TRUNCATE"
    MESSAGE = "MESSAGE"
    TOMBSTONE = "TOMBSTONE"


PositionValue = int | str


def _sortable(value: PositionValue) -> tuple[int, int, str]:
    if value.__class__ is int:
        return (1, value, "")
    text = str(value)
    if text.isdigit() and text.isascii():
        return (1, int(text), "")
    return (2, 0, text)


class CDCPosition:
    """Where a change sits in its connector's log, comparable within one connector.

    ``fields`` holds the connector's own position fields in order of
    significance, with their values as the message gave them (SCNs and LSNs
    that arrive as strings stay strings). Ordering compares decimal strings as
    numbers; positions of different connectors do not compare.
    """

    __slots__ = ("_key", "connector", "fields")

    def __init__(
        self, connector: str, fields: tuple[tuple[str, PositionValue], ...]
    ) -> None:
        self.connector = connector
        self.fields = fields
        self._key: tuple[tuple[int, int, str], ...] | None = None

    def get(self, name: str) -> PositionValue | None:
        """Return the value of position field ``name``, or None when absent."""
        for key, value in self.fields:
            if key == name:
                return value
        return None

    def sort_key(self) -> tuple[tuple[int, int, str], ...]:
        """Return the key that orders positions of one connector."""
        if self._key is None:
            self._key = tuple(self._expand())
        return self._key

    def _expand(self) -> Iterable[tuple[int, int, str]]:
        for name, value in self.fields:
            if name == "sequence" and isinstance(value, str):
                yield from _sequence_key(value)
            else:
                yield _sortable(value)

    def _comparable(self, other: object) -> bool:
        return isinstance(other, CDCPosition) and other.connector == self.connector

    def __lt__(self, other: object) -> bool:
        if not self._comparable(other):
            return NotImplemented
        return self.sort_key() < other.sort_key()  # type: ignore[attr-defined,no-any-return]

    def __le__(self, other: object) -> bool:
        if not self._comparable(other):
            return NotImplemented
        return self.sort_key() <= other.sort_key()  # type: ignore[attr-defined,no-any-return]

    def __gt__(self, other: object) -> bool:
        if not self._comparable(other):
            return NotImplemented
        return self.sort_key() > other.sort_key()  # type: ignore[attr-defined,no-any-return]

    def __ge__(self, other: object) -> bool:
        if not self._comparable(other):
            return NotImplemented
        return self.sort_key() >= other.sort_key()  # type: ignore[attr-defined,no-any-return]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CDCPosition):
            return NotImplemented
        return (self.connector, self.fields) == (other.connector, other.fields)

    def __hash__(self) -> int:
        return hash((self.connector, self.fields))

    def __repr__(self) -> str:
        return f"CDCPosition({self.connector!r}, {self.fields!r})"

    def to_dict(self) -> dict[str, PositionValue]:
        """Return the position fields as a JSON-serialisable dict."""
        return dict(self.fields)


def _sequence_key(text: str) -> list[tuple[int, int, str]]:
    """Expand PostgreSQL's ``["last commit lsn", "lsn"]`` sequence for ordering."""
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):
        return [(2, 0, text)]
    if not isinstance(items, list):
        return [(2, 0, text)]
    return [
        (0, 0, "") if item is None else _sortable(item)
        for item in items
        if item is None or isinstance(item, (int, str))
    ]


@dataclass
class CDCSourceMetadata:
    """Where a change came from: the database, table and connector position.

    Attributes:
        database: Source database name ("" when the message does not say).
        schema: Source schema, e.g. ``"public"`` ("" when not given).
        table: Source table, or the MongoDB collection.
        connector: The CDC tool: ``"debezium"``, ``"maxwell"``, ``"dms"``,
            ``"wal2json"`` (0.2.0 meaning, kept).
        lsn: The main log offset as text (PostgreSQL lsn, SQL Server
            change_lsn, Oracle scn), or None.
        server_id: Source server id (MySQL), or None.
        name: Debezium's logical server name (the topic prefix), or None.
        snapshot: ``"true"``, ``"last"``, ``"false"``, ... as the connector
            marks snapshot records; booleans become ``"true"``/``"false"``.
        ts_ns: Commit time in the source, from the finest of
            ``ts_ms``/``ts_us``/``ts_ns`` given, in nanoseconds; or None.
        position: The connector's own log position, or None.
        engine: The database the connector reads (``"postgresql"``,
            ``"mysql"``, ``"sqlserver"``, ``"oracle"``, ``"mongodb"``, ...).
    """

    database: str
    schema: str
    table: str
    connector: str = "unknown"
    lsn: str | None = None
    server_id: str | None = None
    name: str | None = None
    snapshot: str | None = None
    ts_ns: int | None = None
    position: CDCPosition | None = None
    engine: str | None = None

    @property
    def committed_at(self) -> datetime | None:
        """Return the source commit time as an aware UTC datetime, if known."""
        if self.ts_ns is None:
            return None
        return _EPOCH + timedelta(microseconds=self.ts_ns // 1000)

    @property
    def is_snapshot(self) -> bool:
        """Return True when the connector marked the record as snapshot data."""
        return self.snapshot not in (None, "false")


@dataclass(frozen=True)
class CDCMessage:
    """A logical-decoding message (``pg_logical_emit_message``) carried by an event."""

    prefix: str
    content: bytes
    transactional: bool | None = None


def _now(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.time(), tz=timezone.utc)


class _Unset:
    def __repr__(self) -> str:
        return "<generated>"


_UNSET: Any = _Unset()


class _Lazy(Generic[_T]):
    """A dataclass field a parser may leave to be computed on first read.

    Events built by hand get the value (or the default) through ``__init__``.
    A parser stores ``(function, argument)`` under ``_lazy_<name>`` instead, so
    hashing an id or building a datetime costs nothing until someone reads it.
    """

    def __init__(self, default: Callable[[], _T]) -> None:
        self._default = default
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _T: ...

    @overload
    def __get__(self, obj: object, owner: type) -> _T: ...

    def __get__(self, obj: object | None, owner: type) -> _T:
        if obj is None:
            return _UNSET  # type: ignore[no-any-return]
        values = obj.__dict__
        try:
            return values[self._name]  # type: ignore[no-any-return]
        except KeyError:
            pass
        recipe = values.get(f"_lazy_{self._name}")
        value = self._default() if recipe is None else recipe[0](recipe[1])
        # Store before dropping the recipe, and keep whichever value was stored
        # first: a thread racing this one then reads the same derived value.
        value = values.setdefault(self._name, value)
        values.pop(f"_lazy_{self._name}", None)
        return value  # type: ignore[no-any-return]

    def __set__(self, obj: object, value: _T) -> None:
        obj.__dict__[self._name] = self._default() if value is _UNSET else value


def _system_now() -> datetime:
    return _now(SYSTEM_CLOCK)


@dataclass
class CDCEvent:
    """One change captured from a source database.

    Attributes:
        operation: What happened to the row.
        source: Where the change came from and its log position.
        before: The row before the change (absent columns were not captured).
        after: The row after the change.
        event_id: Derived from the change's identity for parsed events
            (ADR 0006); a new UUIDv7 for events built by hand.
        captured_at: The source commit time when known, else when the
            connector or this parser saw the change.
        transaction_id: The source transaction, when the message names it.
        key: The row's primary key (from the message key, or from the row).
        total_order: Position of the event in its transaction.
        data_collection_order: Position of the event among its table's events
            in the transaction.
        unavailable_fields: Columns holding the unavailable-value placeholder
            (unchanged TOAST values, LOBs): their real value is not in the event.
        message: The logical-decoding message of a MESSAGE event.
        updated_fields: MongoDB's ``updateDescription.updatedFields``.
        removed_fields: MongoDB's ``updateDescription.removedFields``.
    """

    operation: CDCOperation
    source: CDCSourceMetadata
    before: Row | None = None
    after: Row | None = None
    event_id: _Lazy[str] = _Lazy(new_event_id)
    captured_at: _Lazy[datetime] = _Lazy(_system_now)
    transaction_id: str | None = None
    key: Row | None = None
    total_order: int | None = None
    data_collection_order: int | None = None
    unavailable_fields: _Lazy[frozenset[str]] = _Lazy(frozenset)
    message: CDCMessage | None = None
    updated_fields: Row | None = None
    removed_fields: tuple[str, ...] = ()

    @classmethod
    def from_debezium(
        cls,
        value: Raw,
        *,
        key: Raw = None,
        unavailable_placeholder: str = DEFAULT_UNAVAILABLE_PLACEHOLDER,
        clock: Clock = SYSTEM_CLOCK,
    ) -> CDCEvent:
        """Parse one Debezium change event (JSON, with or without its schema).

        Args:
            value: The record value: a dict, or JSON as str/bytes, plain or in
                the JsonConverter ``{"schema", "payload"}`` wrapper. None or
                empty is a tombstone.
            key: The record key in the same forms, or None.
            unavailable_placeholder: The connector's
                ``unavailable.value.placeholder``.
            clock: Gives ``captured_at`` when the message carries no time.

        Raises:
            CDCNotAChangeError: for a schema-change or transaction message.
            CDCParseError: for anything malformed, naming the path at fault;
                an unknown ``op`` gives "Unrecognised Debezium operation code".
        """
        try:
            return _parse_debezium(value, key, unavailable_placeholder, clock)
        except CDCParseError:
            raise
        except (
            KeyError,
            TypeError,
            AttributeError,
            IndexError,
            ValueError,
            RecursionError,
        ) as exc:
            raise CDCParseError(
                f"value: malformed Debezium message ({exc!r:.80})"
            ) from exc

    @classmethod
    def from_maxwell(
        cls,
        value: Raw,
        *,
        key: Raw = None,
        key_columns: Iterable[str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> CDCEvent:
        """Parse one Maxwell JSON row event.

        Args:
            value: The message, as a dict or JSON str/bytes.
            key: Maxwell's Kafka key (hash or array form), giving the key.
            key_columns: Primary key columns to read from the row when neither
                the key nor ``primary_key`` output is present.
            clock: Gives ``captured_at`` when the message carries no ``ts``.

        Raises:
            CDCNotAChangeError: for DDL and bootstrap start/complete markers.
            CDCParseError: for anything malformed, naming the field at fault.
        """
        return _guard("Maxwell", lambda: _parse_maxwell(value, key, key_columns, clock))

    @classmethod
    def from_dms(
        cls,
        value: Raw,
        *,
        key_columns: Iterable[str] | None = None,
        before_image_field: str = "before-image",
        clock: Clock = SYSTEM_CLOCK,
    ) -> CDCEvent:
        """Parse one AWS DMS JSON record (Kinesis, Kafka or S3 JSON target).

        Args:
            value: The ``{"data", "metadata"}`` record, as a dict or JSON.
            key_columns: Primary key columns to read from the row.
            before_image_field: Where ``BeforeImageSettings`` put the old row.
            clock: Gives ``captured_at`` when the record carries no timestamp.

        Raises:
            CDCNotAChangeError: for control records (``record-type: control``).
            CDCParseError: for anything malformed, naming the field at fault.
        """
        return _guard(
            "AWS DMS",
            lambda: _parse_dms(value, key_columns, before_image_field, clock),
        )

    @classmethod
    def from_wal2json(
        cls,
        value: Raw | list[Any],
        *,
        key_columns: Iterable[str] | None = None,
        exact_numbers: bool = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> list[CDCEvent]:
        """Parse wal2json output: a format-version 1 document or version 2 lines.

        A version 1 document (one transaction) yields one event per change; a
        version 2 line yields one event, or none for ``B``/``C`` transaction
        markers. Text input may hold several JSON lines; a list holds several
        documents.

        Args:
            value: A dict, a list of dicts, or JSON text/bytes.
            key_columns: Primary key columns to read from the row when the
                message carries no ``pk``/``oldkeys``/``identity``.
            exact_numbers: Read JSON decimals from text as ``Decimal`` so
                ``numeric`` values such as ``3.540`` keep their digits.
            clock: Gives ``captured_at`` when the output carries no timestamp.

        Raises:
            CDCParseError: for anything malformed, naming the path at fault.
        """
        columns = tuple(key_columns) if key_columns is not None else None
        return _guard(
            "wal2json",
            lambda: _parse_wal2json(value, columns, exact_numbers, clock),
        )

    def changed_fields(self) -> set[str]:
        """Return the columns an UPDATE changed.

        Columns absent from ``before`` (PostgreSQL's default replica identity
        captures only the key) count as changed; columns holding the
        unavailable-value placeholder never do. Empty for other operations and
        when the event has no ``before`` and no MongoDB update description.
        """
        if self.operation is not CDCOperation.UPDATE:
            return set()

        before = self.before
        if before is None or self.after is None:
            return self._described_changes()

        skip = self.unavailable_fields
        return {
            name
            for name, value in self.after.items()
            if name not in skip and (name not in before or before[name] != value)
        }

    def _described_changes(self) -> set[str]:
        if self.updated_fields is None and not self.removed_fields:
            return set()
        return set(self.updated_fields or ()) | set(self.removed_fields)

    def merged_after(self, previous_row: Mapping[str, Any]) -> Row:
        """Return ``after`` with unavailable columns filled from the last known row.

        Raises:
            CDCParseError: when the event has no ``after`` or ``previous_row``
                lacks a column that this event left unavailable.
        """
        if self.after is None:
            raise CDCParseError("after: the event has no after row to merge")

        merged = dict(self.after)
        for name in self.unavailable_fields:
            if name not in previous_row:
                raise CDCParseError(
                    f"after.{name}: unavailable in this event and absent from "
                    "previous_row"
                )
            merged[name] = previous_row[name]
        return merged

    def to_audit_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary for audit logs, without row values."""
        position = self.source.position
        return {
            "event_id": self.event_id,
            "operation": self.operation.value,
            "table": f"{self.source.schema}.{self.source.table}",
            "database": self.source.database,
            "connector": self.source.connector,
            "captured_at": self.captured_at.isoformat(),
            "transaction_id": self.transaction_id,
            "changed_fields": sorted(self.changed_fields()),
            "lsn": self.source.lsn,
            "engine": self.source.engine,
            "name": self.source.name,
            "snapshot": self.source.snapshot,
            "position": None if position is None else position.to_dict(),
            "unavailable_fields": sorted(self.unavailable_fields),
        }


@dataclass(frozen=True)
class DebeziumTransaction:
    """A Debezium transaction boundary (BEGIN or END) from the transaction topic.

    Attributes:
        status: ``"BEGIN"`` or ``"END"``.
        transaction_id: The connector's transaction id (e.g. ``"571:53195829"``).
        ts_ms: When the boundary was seen, in Unix milliseconds, if given.
        event_count: How many change events the transaction emitted (END).
        data_collections: Per-table event counts (END), as (table, count).
    """

    status: str
    transaction_id: str
    ts_ms: int | None = None
    event_count: int | None = None
    data_collections: tuple[tuple[str, int], ...] = ()

    @property
    def event_id(self) -> str:
        """Return the boundary's deterministic id."""
        return _derive_id(("debezium-transaction", self.status, self.transaction_id))

    @classmethod
    def from_message(cls, value: Raw) -> DebeziumTransaction:
        """Parse a transaction-topic message (dict or JSON, schema-wrapped or not).

        Raises:
            CDCParseError: when the message is not a well-formed boundary.
        """
        return _guard("Debezium transaction", lambda: _parse_transaction(cls, value))


# --- shared helpers ---------------------------------------------------------


def _guard(kind: str, parse: Callable[[], _T]) -> _T:
    try:
        return parse()
    except CDCParseError:
        raise
    except (
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        ValueError,
        RecursionError,
    ) as exc:
        raise CDCParseError(f"value: malformed {kind} message ({exc!r:.80})") from exc


def _fail(path: str, problem: str) -> CDCParseError:
    return CDCParseError(f"{path}: {problem}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _decode(
    raw: str | bytes | bytearray,
    path: str,
    object_hook: Callable[[dict[str, Any]], Any] | None = None,
    parse_float: Callable[[str], Any] | None = None,
) -> Any:
    try:
        return json.loads(raw, object_hook=object_hook, parse_float=parse_float)
    except CDCParseError:
        raise
    except (ValueError, RecursionError) as exc:
        raise _fail(path, f"not valid JSON ({exc!s:.80})") from exc


# The C scanner behind json.loads. For a message of a few hundred bytes,
# json.loads spends a quarter of its time in pure Python around it (sniffing
# the encoding, two whitespace regex matches, three calls); _decode_object
# calls it directly for the usual compact object and leaves everything else
# to json.loads, so documents and errors stay exactly json.loads's.
_SCAN_ONCE: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_JSON_SPACE = " \t\n\r"


def _decode_object(raw: str | bytes | bytearray, path: str) -> Any:
    """Decode a JSON message, taking the scanner fast path when it applies."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return _decode(raw, path)
    elif isinstance(raw, str):
        text = raw
    else:
        return _decode(raw, path)

    # Text starting with "{" is UTF-8 json.loads would decode the same way:
    # bytes it reads as UTF-16/32 put a NUL next, which the scanner rejects.
    if text[:1] == "{":
        try:
            document, end = _SCAN_ONCE(text, 0)
        except (StopIteration, ValueError, RecursionError):
            return _decode(raw, path)
        if end == len(text) or not text[end:].strip(_JSON_SPACE):
            return document
    return _decode(raw, path)


def _load_object(raw: Raw, path: str) -> dict[str, Any] | None:
    """Return the message as a dict, or None for a null/empty message."""
    if raw is None:
        return None
    if isinstance(raw, (bytes, bytearray, str)):
        if not raw:
            return None
        raw = _decode_object(raw, path)
        if raw is None:
            return None
    if raw.__class__ is not dict:
        if isinstance(raw, Mapping):
            return dict(raw)
        raise _fail(path, f"expected a JSON object, got {type(raw).__name__}")
    return raw


def _opt_str(obj: Mapping[str, Any], name: str, path: str) -> str | None:
    value = obj.get(name)
    if value is None or value.__class__ is str:
        return value
    raise _fail(f"{path}.{name}", f"expected a string, got {_short(value)}")


def _opt_int(obj: Mapping[str, Any], name: str, path: str) -> int | None:
    """Read an integer that may arrive as a JSON number or a decimal string."""
    value = obj.get(name)
    if value is None or value.__class__ is int:
        return value
    if value.__class__ is str and value.isdigit() and value.isascii():
        try:
            return int(value)
        except ValueError as exc:
            raise _fail(f"{path}.{name}", "integer too long") from exc
    raise _fail(f"{path}.{name}", f"expected an integer, got {_short(value)}")


def _opt_row(obj: Mapping[str, Any], name: str, path: str) -> Row | None:
    value = obj.get(name)
    if value is None or value.__class__ is dict:
        return value
    raise _fail(f"{path}.{name}", f"expected an object or null, got {_short(value)}")


def _derive_id(parts: Iterable[object]) -> str:
    """Return a UUIDv8-shaped id from SHA-256 over the identity parts (ADR 0006)."""
    text = "\x1f".join(["" if part is None else str(part) for part in parts])
    return _uuid8(hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest())


def _uuid8(digest: str) -> str:
    variant = "89ab"[int(digest[16], 16) & 3]
    return (
        f"{digest[:8]}-{digest[8:12]}-8{digest[13:16]}-{variant}{digest[17:20]}"
        f"-{digest[20:32]}"
    )


def _canonical_id(kind: str, message: Any, *extra: object) -> str:
    """Return the fallback id: a hash of the canonical JSON of the message."""
    try:
        canonical = json.dumps(
            message,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise _fail("value", f"cannot be canonicalised ({exc!s:.60})") from exc
    return _derive_id((kind, "canonical", canonical, *extra))


def _ts_datetime(ts_ns: int | None, fallback_ms: int | None, clock: Clock) -> datetime:
    try:
        if ts_ns is not None:
            return _EPOCH + timedelta(microseconds=ts_ns // 1000)
        if fallback_ms is not None:
            return _EPOCH + timedelta(milliseconds=fallback_ms)
    except OverflowError as exc:
        raise _fail("value", "timestamp out of range") from exc
    return _now(clock)


def _row_key(row: Row | None, columns: tuple[str, ...] | None, path: str) -> Row | None:
    if columns is None or row is None:
        return None
    missing = [name for name in columns if name not in row]
    if missing:
        raise _fail(path, f"key column {missing[0]!r} is absent from the row")
    return {name: row[name] for name in columns}


# --- Debezium ---------------------------------------------------------------

_NEW_EVENT = object.__new__

_OPS = {
    "c": CDCOperation.INSERT,
    "u": CDCOperation.UPDATE,
    "d": CDCOperation.DELETE,
    "r": CDCOperation.SNAPSHOT,
    "t": CDCOperation.TRUNCATE,
    "m": CDCOperation.MESSAGE,
}

_POSITION_FIELDS: dict[str, tuple[str, ...]] = {
    "postgresql": ("sequence", "lsn", "txId"),
    "mysql": ("file", "pos", "row", "gtid"),
    "mariadb": ("file", "pos", "row", "gtid"),
    "sqlserver": ("commit_lsn", "change_lsn", "event_serial_no"),
    "oracle": ("commit_scn", "scn", "rs_id", "ssn", "row_id", "txId"),
    "mongodb": ("rs", "ts_ms", "ord", "txnNumber", "lsid"),
    "db2": ("commit_lsn", "change_lsn"),
    "informix": ("commit_lsn", "change_lsn", "begin_lsn"),
}
_GENERIC_POSITION = (
    "sequence",
    "commit_lsn",
    "change_lsn",
    "event_serial_no",
    "commit_scn",
    "scn",
    "file",
    "pos",
    "row",
    "lsn",
    "ord",
    "txId",
)
_LSN_FIELD = {
    "postgresql": "lsn",
    "sqlserver": "change_lsn",
    "oracle": "scn",
    "db2": "change_lsn",
    "informix": "change_lsn",
}


def _parse_debezium(value: Raw, key: Raw, placeholder: str, clock: Clock) -> CDCEvent:
    message = _load_object(value, "value")
    path = ""
    if message is not None and "payload" in message:
        message, path = _unwrap(message, path)
    key_row = None if key is None else _debezium_key(key)
    if message is None:
        return _tombstone(key_row, clock)

    op_code = message.get("op")
    operation = _OPS.get(op_code) if op_code.__class__ is str else None
    if operation is None or op_code is None:
        _reject_non_change(message, path)
        hint = (
            "" if "source" in message else " (no Debezium envelope: a flattened row?)"
        )
        raise CDCParseError(
            f"Unrecognised Debezium operation code: {_short(op_code)} at {path}op{hint}"
        )

    source = _debezium_source(message, path)
    return _debezium_event(
        message,
        path,
        op_code,
        operation,
        source,
        key=key_row,
        placeholder=placeholder,
        clock=clock,
    )


def _unwrap(
    message: dict[str, Any] | None, path: str
) -> tuple[dict[str, Any] | None, str]:
    """Strip the JsonConverter ``{"schema", "payload"}`` wrapper when present."""
    if message is not None and "payload" in message and "schema" in message:
        payload = message["payload"]
        if payload is None:
            return None, path + "payload."
        if payload.__class__ is not dict:
            raise _fail(path + "payload", "expected an object")
        return payload, path + "payload."
    return message, path


def _debezium_key(key: Raw) -> Row | None:
    loaded = _load_object(key, "key")
    row, _ = _unwrap(loaded, "key.")
    return row


def _tombstone(key: Row | None, clock: Clock) -> CDCEvent:
    source = CDCSourceMetadata("", "", "", "debezium")
    event_id = _canonical_id("debezium-tombstone", key)
    return CDCEvent(
        CDCOperation.TOMBSTONE, source, None, None, event_id, _now(clock), None, key
    )


def _reject_non_change(message: Mapping[str, Any], path: str) -> None:
    where = path.rstrip(".") or "value"
    if "ddl" in message or "tableChanges" in message:
        logger.debug("schema change message skipped", extra={"cdc_path": where})
        raise CDCNotAChangeError(
            f"{where}: a schema change message (ddl/tableChanges), not a row "
            "change; read it from the schema history",
            kind="schema_change",
        )
    if message.get("status") in ("BEGIN", "END") and "id" in message:
        raise CDCNotAChangeError(
            f"{where}: a transaction boundary; parse it with "
            "DebeziumTransaction.from_message",
            kind="transaction",
        )


def _infer_engine(src: Mapping[str, Any]) -> str:
    if "scn" in src:
        return "oracle"
    if "change_lsn" in src or "commit_lsn" in src:
        return "sqlserver"
    if "file" in src and "pos" in src:
        return "mysql"
    if "ord" in src or "rs" in src:
        return "mongodb"
    if "lsn" in src:
        return "postgresql"
    return "unknown"


_TEXT = frozenset({str, type(None)})


def _debezium_source(message: Mapping[str, Any], path: str) -> CDCSourceMetadata:
    src = message.get("source")
    if src.__class__ is not dict:
        src = _no_source(src, path)

    get = src.get
    engine = get("connector")
    db = get("db")
    schema = get("schema")
    table = get("table")
    name = get("name")
    if table is None:
        table = get("collection")
    if not (
        engine.__class__ in _TEXT
        and db.__class__ in _TEXT
        and schema.__class__ in _TEXT
        and table.__class__ in _TEXT
        and name.__class__ in _TEXT
    ):
        _raise_bad_text(src, path + "source")
    engine = engine or _infer_engine(src)

    fields = _position_fields(src, engine, path)
    lsn = get(_LSN_FIELD.get(engine, "lsn"))
    snapshot = get("snapshot")
    if snapshot.__class__ is not str:
        # PostgreSQL and MySQL send false for every streamed change.
        snapshot = (
            "false" if snapshot is False else _snapshot(snapshot, path + "source")
        )
    server_id = get("server_id")
    if server_id is not None:
        server_id = _scalar_text(server_id, path + "source.server_id")
    ts_ns = get("ts_ns")
    if ts_ns.__class__ is not int:
        ts_ns = _finest_ts(src, path + "source")

    # Filling __dict__ in one step skips the 11-argument dataclass __init__,
    # a fifth of this function's cost; the instance is the same.
    source = _NEW_EVENT(CDCSourceMetadata)
    source.__dict__ = {
        "database": db or "",
        "schema": schema or "",
        "table": table or "",
        "connector": "debezium",
        "lsn": None if lsn is None else str(lsn),
        "server_id": server_id,
        "name": name,
        "snapshot": snapshot,
        "ts_ns": ts_ns,
        "position": CDCPosition(engine, fields) if fields else None,
        "engine": engine,
    }
    return source


def _no_source(src: object, path: str) -> dict[str, Any]:
    if src is None:
        return {}
    raise _fail(path + "source", f"expected an object, got {_short(src)}")


def _raise_bad_text(src: Mapping[str, Any], path: str) -> None:
    for name in ("connector", "db", "schema", "table", "collection", "name"):
        _opt_str(src, name, path)


def _scalar_text(value: object, path: str) -> str:
    if value.__class__ is int or value.__class__ is str:
        return str(value)
    raise _fail(path, f"expected a number or string, got {_short(value)}")


def _position_fields(
    src: Mapping[str, Any], engine: str, path: str
) -> tuple[tuple[str, PositionValue], ...]:
    get = src.get
    fields = []
    for name in _POSITION_FIELDS.get(engine, _GENERIC_POSITION):
        value = get(name)
        if value is None:
            continue
        if value.__class__ is not int and value.__class__ is not str:
            raise _fail(
                f"{path}source.{name}",
                f"expected a number or string, got {_short(value)}",
            )
        fields.append((name, value))
    return tuple(fields)


def _snapshot(value: object, path: str) -> str | None:
    if value is None or value.__class__ is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise _fail(
        f"{path}.snapshot", f"expected a string or boolean, got {_short(value)}"
    )


def _finest_ts(obj: Mapping[str, Any], path: str) -> int | None:
    """Return the finest of ts_ns/ts_us/ts_ms given, in nanoseconds."""
    ns = _opt_int(obj, "ts_ns", path)
    if ns is not None:
        return ns
    us = _opt_int(obj, "ts_us", path)
    if us is not None:
        return us * 1000
    ms = _opt_int(obj, "ts_ms", path)
    return None if ms is None else ms * 1_000_000


def _debezium_event(
    message: dict[str, Any],
    path: str,
    op_code: str,
    operation: CDCOperation,
    source: CDCSourceMetadata,
    *,
    key: Row | None,
    placeholder: str,
    clock: Clock,
) -> CDCEvent:
    mongo = source.engine == "mongodb"
    before = message.get("before")
    if before is not None and before.__class__ is not dict:
        before = _row(message, "before", path, mongo)
    after = message.get("after")
    if after is not None and after.__class__ is not dict:
        after = _row(message, "after", path, mongo)
    tx = message.get("transaction")
    tx_id = total = collection_order = None
    if tx is not None:
        tx_id, total, collection_order = _transaction_block(tx, path + "transaction")

    # The instance dict is filled in one step, with recipes for the _Lazy
    # fields, instead of through the 14-argument dataclass __init__.
    values = {
        "operation": operation,
        "source": source,
        "before": before,
        "after": after,
        "_lazy_event_id": (_debezium_id, (message, op_code, source)),
        "transaction_id": tx_id,
        "key": key,
        "total_order": total,
        "data_collection_order": collection_order,
        "message": None,
        "updated_fields": None,
        "removed_fields": (),
    }
    ts_ns = source.ts_ns
    if ts_ns is None:
        _captured_at(values, message, path, clock)
    else:
        values["_lazy_captured_at"] = (_ns_datetime, ts_ns)
    if operation is CDCOperation.UPDATE:
        values["_lazy_unavailable_fields"] = (
            _unavailable_of,
            (before, after, placeholder),
        )
    else:
        values["unavailable_fields"] = _NOTHING
    event = _NEW_EVENT(CDCEvent)
    event.__dict__ = values

    if operation is CDCOperation.MESSAGE:
        event.message = _debezium_message(message.get("message"), path + "message")
    if mongo:
        _mongo_details(event, message, path)
    return event


def _captured_at(
    values: dict[str, Any], message: Mapping[str, Any], path: str, clock: Clock
) -> None:
    """Time an event by the envelope's ``ts_ms``, else by the clock."""
    ts_ms = _opt_int(message, "ts_ms", path.rstrip(".") or "value")
    if ts_ms is None:
        values["captured_at"] = _now(clock)
    else:
        values["_lazy_captured_at"] = (_ns_datetime, ts_ms * 1_000_000)


def _debezium_id(
    recipe: tuple[Mapping[str, Any], str, CDCSourceMetadata],
) -> str:
    """Derive a Debezium event's id from its position (ADR 0006)."""
    message, op_code, source = recipe
    position = source.position
    if position is None:
        return _canonical_id("debezium", message)

    capture = "oplog" if "patch" in message or "filter" in message else ""
    parts = (
        "debezium",
        source.engine,
        capture,
        source.name,
        source.database,
        source.schema,
        source.table,
        op_code,
        *[f"{name}={value}" for name, value in position.fields],
    )
    return _derive_id(parts)


def _ns_datetime(ts_ns: int) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=ts_ns // 1000)
    except OverflowError:
        return datetime.max.replace(tzinfo=timezone.utc)


def _row(message: Mapping[str, Any], name: str, path: str, mongo: bool) -> Row | None:
    value = message.get(name)
    if value is None or value.__class__ is dict:
        return value
    if value.__class__ is str and mongo:
        return _mongo_document(value, f"{path}{name}")
    raise _fail(f"{path}{name}", f"expected an object or null, got {_short(value)}")


def _transaction_block(
    tx: object, path: str
) -> tuple[str | None, int | None, int | None]:
    if tx.__class__ is not dict:
        raise _fail(path, f"expected an object or null, got {_short(tx)}")
    block: dict[str, Any] = tx
    tx_id = block.get("id")
    if tx_id is not None:
        tx_id = _scalar_text(tx_id, path + ".id")
    return (
        tx_id,
        _opt_int(block, "total_order", path),
        _opt_int(block, "data_collection_order", path),
    )


def _unavailable_of(recipe: tuple[Row | None, Row | None, str]) -> frozenset[str]:
    return _unavailable(*recipe)


def _unavailable(
    before: Row | None, after: Row | None, placeholder: str
) -> frozenset[str]:
    markers = _placeholder_forms(placeholder)
    found = [
        name
        for row in (after, before)
        if row is not None
        for name, value in row.items()
        if (value.__class__ is str or value.__class__ is bytes) and value in markers
    ]
    return frozenset(found)


_PLACEHOLDER_FORMS: dict[str, frozenset[str | bytes]] = {}


def _placeholder_forms(placeholder: str) -> frozenset[str | bytes]:
    """Return the placeholder as text, as bytes and as base64 (bytes columns)."""
    forms = _PLACEHOLDER_FORMS.get(placeholder)
    if forms is None:
        raw = placeholder.encode("utf-8", "surrogatepass")
        forms = frozenset({placeholder, raw, base64.b64encode(raw).decode("ascii")})
        if len(_PLACEHOLDER_FORMS) < 16:
            _PLACEHOLDER_FORMS[placeholder] = forms
    return forms


def _debezium_message(value: object, path: str) -> CDCMessage:
    if value.__class__ is not dict:
        raise _fail(path, f"expected an object, got {_short(value)}")
    block: dict[str, Any] = value
    prefix = _opt_str(block, "prefix", path) or ""
    content = _opt_str(block, "content", path) or ""
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _fail(path + ".content", "expected base64 bytes") from exc
    return CDCMessage(prefix, data, None)


# MongoDB extended JSON: ids and 64-bit numbers become plain str/int.


def _ext_json_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        ((name, value),) = obj.items()
        if value.__class__ is str:
            if name == "$oid":
                return value
            if name in ("$numberLong", "$numberInt"):
                return int(value)
    return obj


def _mongo_value(text: str, path: str) -> Any:
    try:
        return json.loads(text, object_hook=_ext_json_hook)
    except (ValueError, RecursionError) as exc:
        raise _fail(path, f"not valid extended JSON ({exc!s:.80})") from exc


def _mongo_document(text: str, path: str) -> Row:
    document = _mongo_value(text, path)
    if document.__class__ is not dict:
        raise _fail(path, "expected a JSON document")
    return document


def _mongo_details(event: CDCEvent, message: Mapping[str, Any], path: str) -> None:
    described = message.get("updateDescription")
    if described is not None:
        _update_description(event, described, path + "updateDescription")

    patch = message.get("patch")
    if patch is not None:
        _legacy_patch(event, patch, path + "patch")

    if event.key is None:
        event.key = _mongo_key(event, message, path)
    elif "id" in event.key and event.key["id"].__class__ is str:
        text = event.key["id"]
        if text.startswith("{"):
            event.key = {"id": _mongo_value(text, "key.id")}


def _update_description(event: CDCEvent, described: object, path: str) -> None:
    if described.__class__ is not dict:
        raise _fail(path, f"expected an object, got {_short(described)}")
    block: dict[str, Any] = described
    updated = block.get("updatedFields")
    if updated.__class__ is str:
        updated = _mongo_document(updated, path + ".updatedFields")
    elif updated is not None and updated.__class__ is not dict:
        raise _fail(path + ".updatedFields", "expected a JSON document")
    event.updated_fields = updated
    event.removed_fields = _name_list(
        block.get("removedFields"), path + ".removedFields"
    )


def _name_list(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if value.__class__ is not list or not all(v.__class__ is str for v in value):
        raise _fail(path, "expected a list of field names")
    return tuple(value)


def _legacy_patch(event: CDCEvent, patch: object, path: str) -> None:
    if patch.__class__ is not str:
        raise _fail(path, "expected a JSON string")
    document = _mongo_document(patch, path)
    if not any(name.startswith("$") for name in document):
        event.after = document
        return
    updated = document.get("$set")
    removed = document.get("$unset")
    if updated is not None and updated.__class__ is not dict:
        raise _fail(path + ".$set", "expected a document")
    if removed is not None and removed.__class__ is not dict:
        raise _fail(path + ".$unset", "expected a document")
    event.updated_fields = updated
    event.removed_fields = tuple(removed or ())


def _mongo_key(event: CDCEvent, message: Mapping[str, Any], path: str) -> Row | None:
    for row in (event.after, event.before):
        if row is not None and "_id" in row:
            return {"_id": row["_id"]}
    selection = message.get("filter")
    if selection is None:
        return None
    if selection.__class__ is not str:
        raise _fail(path + "filter", "expected a JSON string")
    document = _mongo_document(selection, path + "filter")
    return {"_id": document["_id"]} if "_id" in document else None


# --- Debezium transaction boundaries ----------------------------------------


def _parse_transaction(
    cls: type[DebeziumTransaction], value: Raw
) -> DebeziumTransaction:
    message, path = _unwrap(_load_object(value, "value"), "")
    if message is None:
        raise _fail("value", "a transaction boundary cannot be empty")
    where = path.rstrip(".") or "value"

    status = message.get("status")
    if status not in ("BEGIN", "END"):
        raise _fail(f"{path}status", f"expected 'BEGIN' or 'END', got {_short(status)}")
    tx_id = message.get("id")
    if tx_id is None:
        raise _fail(f"{path}id", "missing")

    return cls(
        status,
        _scalar_text(tx_id, f"{path}id"),
        _opt_int(message, "ts_ms", where),
        _opt_int(message, "event_count", where),
        _data_collections(message.get("data_collections"), f"{path}data_collections"),
    )


def _data_collections(value: object, path: str) -> tuple[tuple[str, int], ...]:
    if value is None:
        return ()
    if value.__class__ is not list:
        raise _fail(path, f"expected a list, got {_short(value)}")
    counts = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if item.__class__ is not dict:
            raise _fail(where, "expected an object")
        name = _opt_str(item, "data_collection", where)
        count = _opt_int(item, "event_count", where)
        if name is None or count is None:
            raise _fail(where, "needs data_collection and event_count")
        counts.append((name, count))
    return tuple(counts)


# --- Maxwell ----------------------------------------------------------------

_MAXWELL_OPS = {
    "insert": CDCOperation.INSERT,
    "update": CDCOperation.UPDATE,
    "delete": CDCOperation.DELETE,
    "bootstrap-insert": CDCOperation.SNAPSHOT,
}
_MAXWELL_MARKERS = {"bootstrap-start", "bootstrap-complete"}


def _parse_maxwell(
    value: Raw, key: Raw, key_columns: Iterable[str] | None, clock: Clock
) -> CDCEvent:
    message = _load_object(value, "value")
    if message is None:
        raise _fail("value", "a Maxwell message cannot be empty")

    kind = message.get("type")
    operation = _MAXWELL_OPS.get(kind) if kind.__class__ is str else None
    if operation is None:
        _reject_maxwell_marker(kind)
        raise _fail("type", f"unrecognised Maxwell type {_short(kind)}")

    data = message.get("data")
    if data.__class__ is not dict:
        raise _fail("data", f"expected an object, got {_short(data)}")
    old = _opt_row(message, "old", "value")
    before, after = _maxwell_rows(operation, data, old)
    source = _maxwell_source(message)
    columns = tuple(key_columns) if key_columns is not None else None
    xid = message.get("xid")

    return CDCEvent(
        operation,
        source,
        before,
        after,
        _maxwell_id(message, kind, source),  # type: ignore[arg-type]
        _ts_datetime(source.ts_ns, None, clock),
        None if xid is None else _scalar_text(xid, "xid"),
        _maxwell_key(key, message, after or before, columns),
    )


def _reject_maxwell_marker(kind: object) -> None:
    if kind.__class__ is not str:
        return
    text: str = kind
    if text.startswith(("table-", "database-")):
        raise CDCNotAChangeError(
            f"type: {text!r} is a schema change (DDL), not a row change",
            kind="schema_change",
        )
    if text in _MAXWELL_MARKERS:
        raise CDCNotAChangeError(
            f"type: {text!r} is a bootstrap marker, not a row change", kind="bootstrap"
        )


def _maxwell_rows(
    operation: CDCOperation, data: Row, old: Row | None
) -> tuple[Row | None, Row | None]:
    if operation is CDCOperation.DELETE:
        return data, None
    if operation is CDCOperation.UPDATE and old is not None:
        return {**data, **old}, data
    return None, data


def _maxwell_source(message: Mapping[str, Any]) -> CDCSourceMetadata:
    fields: list[tuple[str, PositionValue]] = []
    position = _opt_str(message, "position", "value")
    if position is not None:
        file_name, _, offset = position.rpartition(":")
        if not file_name or not offset.isdigit() or not offset.isascii():
            raise _fail("position", f"expected 'file:offset', got {_short(position)}")
        fields += [("file", file_name), ("pos", int(offset))]
    for name in ("xoffset", "xid"):
        number = _opt_int(message, name, "value")
        if number is not None:
            fields.append((name, number))
    gtid = _opt_str(message, "gtid", "value")
    if gtid is not None:
        fields.append(("gtid", gtid))

    server_id = message.get("server_id")
    ts = _opt_int(message, "ts", "value")
    return CDCSourceMetadata(
        _opt_str(message, "database", "value") or "",
        "",
        _opt_str(message, "table", "value") or "",
        "maxwell",
        None,
        None if server_id is None else _scalar_text(server_id, "server_id"),
        ts_ns=None if ts is None else ts * 1_000_000_000,
        position=CDCPosition("mysql", tuple(fields)) if position else None,
        engine="mysql",
    )


def _maxwell_id(
    message: Mapping[str, Any], kind: str, source: CDCSourceMetadata
) -> str:
    if source.position is None:
        return _canonical_id("maxwell", message)
    parts: list[object] = [
        "maxwell",
        source.server_id,
        source.database,
        source.table,
        kind,
    ]
    parts += [f"{name}={value}" for name, value in source.position.fields]
    return _derive_id(parts)


def _maxwell_key(
    key: Raw,
    message: Mapping[str, Any],
    row: Row | None,
    columns: tuple[str, ...] | None,
) -> Row | None:
    if key is not None:
        return _maxwell_kafka_key(key)
    names = message.get("primary_key_columns")
    values = message.get("primary_key")
    if names.__class__ is list and values.__class__ is list:
        if len(names) != len(values) or not all(n.__class__ is str for n in names):
            raise _fail("primary_key", "does not match primary_key_columns")
        return dict(zip(names, values, strict=True))
    return _row_key(row, columns, "data")


def _maxwell_kafka_key(key: Raw) -> Row | None:
    if isinstance(key, (str, bytes, bytearray)):
        if not key:
            return None
        loaded = _decode(key, "key")
    else:
        loaded = key
    if loaded.__class__ is dict:
        return {
            name[3:]: value for name, value in loaded.items() if name.startswith("pk.")
        }
    if loaded.__class__ is list and len(loaded) == 3 and loaded[2].__class__ is list:
        merged: Row = {}
        for part in loaded[2]:
            if part.__class__ is not dict:
                raise _fail("key[2]", "expected objects of key columns")
            merged.update(part)
        return merged
    raise _fail("key", "expected Maxwell's hash or array key")


# --- AWS DMS ----------------------------------------------------------------

_DMS_OPS = {
    "load": CDCOperation.SNAPSHOT,
    "insert": CDCOperation.INSERT,
    "update": CDCOperation.UPDATE,
    "delete": CDCOperation.DELETE,
}


def _parse_dms(
    value: Raw, key_columns: Iterable[str] | None, before_field: str, clock: Clock
) -> CDCEvent:
    message = _load_object(value, "value")
    if message is None:
        raise _fail("value", "an AWS DMS record cannot be empty")
    meta = message.get("metadata")
    if meta.__class__ is not dict:
        raise _fail("metadata", f"expected an object, got {_short(meta)}")

    operation = _dms_operation(meta)
    data = message.get("data")
    if data.__class__ is not dict:
        raise _fail("data", f"expected an object, got {_short(data)}")
    old = _opt_row(message, before_field, "value")
    before, after = (data, None) if operation is CDCOperation.DELETE else (old, data)

    source = _dms_source(meta)
    columns = tuple(key_columns) if key_columns is not None else None
    tx = meta.get("transaction-id")
    return CDCEvent(
        operation,
        source,
        before,
        after,
        _canonical_id("dms", message),
        _ts_datetime(source.ts_ns, None, clock),
        None if tx is None else _scalar_text(tx, "metadata.transaction-id"),
        _row_key(data, columns, "data"),
    )


def _dms_operation(meta: Mapping[str, Any]) -> CDCOperation:
    record_type = meta.get("record-type")
    kind = meta.get("operation")
    if record_type == "control":
        raise CDCNotAChangeError(
            f"metadata.record-type: a control record ({_short(kind)}), "
            "not a row change",
            kind="control",
        )
    if record_type != "data":
        raise _fail(
            "metadata.record-type",
            f"expected 'data' or 'control', got {_short(record_type)}",
        )
    operation = _DMS_OPS.get(kind) if kind.__class__ is str else None
    if operation is None:
        raise _fail("metadata.operation", f"unrecognised DMS operation {_short(kind)}")
    return operation


def _dms_source(meta: Mapping[str, Any]) -> CDCSourceMetadata:
    stamp = _opt_str(meta, "timestamp", "metadata")
    fields: list[tuple[str, PositionValue]] = []
    if stamp is not None:
        fields.append(("timestamp", stamp))
    tx = meta.get("transaction-id")
    if tx is not None:
        _scalar_text(tx, "metadata.transaction-id")
        fields.append(("transaction-id", tx))
    schema = _opt_str(meta, "schema-name", "metadata") or ""
    return CDCSourceMetadata(
        "",
        schema,
        _opt_str(meta, "table-name", "metadata") or "",
        "dms",
        ts_ns=None if stamp is None else _iso_ns(stamp, "metadata.timestamp"),
        position=CDCPosition("dms", tuple(fields)) if fields else None,
    )


def _iso_ns(text: str, path: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(path, f"expected an ISO 8601 time, got {_short(text)}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (
        delta.days * 86_400 + delta.seconds
    ) * 1_000_000_000 + delta.microseconds * 1000


# --- wal2json ---------------------------------------------------------------

_WAL2JSON_V1_OPS = {
    "insert": CDCOperation.INSERT,
    "update": CDCOperation.UPDATE,
    "delete": CDCOperation.DELETE,
    "message": CDCOperation.MESSAGE,
}
_WAL2JSON_V2_OPS = {
    "I": CDCOperation.INSERT,
    "U": CDCOperation.UPDATE,
    "D": CDCOperation.DELETE,
    "T": CDCOperation.TRUNCATE,
    "M": CDCOperation.MESSAGE,
}


def _parse_wal2json(
    value: Raw | list[Any],
    key_columns: tuple[str, ...] | None,
    exact: bool,
    clock: Clock,
) -> list[CDCEvent]:
    events: list[CDCEvent] = []
    for index, document in enumerate(_wal2json_documents(value, exact)):
        path = f"[{index}]" if index else "value"
        if document.__class__ is not dict:
            raise _fail(path, f"expected a JSON object, got {type(document).__name__}")
        if "change" in document:
            events += _wal2json_v1(document, path, key_columns, clock)
        elif "action" in document:
            events += _wal2json_v2(document, path, key_columns, clock)
        else:
            raise _fail(
                path, "neither a format-version 1 'change' nor a version 2 'action'"
            )
    return events


def _wal2json_documents(value: Raw | list[Any], exact: bool) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, bytearray)):
        return _json_lines(value, exact)
    if isinstance(value, list):
        return value
    return [value]


def _json_lines(text: str | bytes | bytearray, exact: bool) -> list[Any]:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail("value", "not UTF-8 text") from exc
    parse_float = Decimal if exact else None
    stripped = text.strip()
    if not stripped:
        return []
    try:
        whole = json.loads(stripped, parse_float=parse_float)
    except ValueError:
        return [
            _decode(line, f"line {number}", parse_float=parse_float)
            for number, line in enumerate(stripped.splitlines(), start=1)
            if line.strip()
        ]
    except RecursionError as exc:
        raise _fail("value", "nested too deeply") from exc
    return whole if isinstance(whole, list) else [whole]


def _wal2json_v1(
    document: dict[str, Any],
    path: str,
    key_columns: tuple[str, ...] | None,
    clock: Clock,
) -> list[CDCEvent]:
    changes = document["change"]
    if changes.__class__ is not list:
        raise _fail(f"{path}.change", "expected a list")
    xid = document.get("xid")
    lsn = _opt_str(document, "nextlsn", path)
    stamp = _opt_str(document, "timestamp", path)
    ts_ns = None if stamp is None else _pg_ns(stamp, f"{path}.timestamp")
    tx = None if xid is None else _scalar_text(xid, f"{path}.xid")
    captured = _ts_datetime(ts_ns, None, clock)

    events = []
    for index, change in enumerate(changes):
        where = f"{path}.change[{index}]"
        if change.__class__ is not dict:
            raise _fail(where, "expected an object")
        fields = _wal_fields(xid=tx, lsn=lsn, index=index) if tx or lsn else ()
        source = _wal_source(change, where, fields, ts_ns)
        event = _wal2json_v1_change(change, where, key_columns, source, captured)
        event.transaction_id = tx
        event.total_order = index + 1
        event.event_id = _wal_id(
            "1", event, fields, document if not (tx or lsn) else None, index
        )
        events.append(event)
    return events


def _wal_fields(
    **values: PositionValue | None,
) -> tuple[tuple[str, PositionValue], ...]:
    return tuple((name, value) for name, value in values.items() if value is not None)


def _wal_id(
    version: str,
    event: CDCEvent,
    fields: tuple[tuple[str, PositionValue], ...],
    canonical: object,
    index: int,
) -> str:
    if canonical is not None:
        return _canonical_id(f"wal2json-{version}", canonical, index)
    source = event.source
    parts: list[object] = ["wal2json", version, source.schema, source.table]
    parts.append(event.operation.value)
    parts += [f"{name}={value}" for name, value in fields]
    return _derive_id(parts)


def _wal2json_v1_change(
    change: dict[str, Any],
    path: str,
    key_columns: tuple[str, ...] | None,
    source: CDCSourceMetadata,
    captured: datetime,
) -> CDCEvent:
    kind = change.get("kind")
    operation = _WAL2JSON_V1_OPS.get(kind) if kind.__class__ is str else None
    if operation is None:
        raise _fail(f"{path}.kind", f"unrecognised wal2json change kind {_short(kind)}")
    if operation is CDCOperation.MESSAGE:
        return CDCEvent(
            operation,
            source,
            captured_at=captured,
            message=_wal_message(change, path, text=True),
        )

    after = None
    if operation is not CDCOperation.DELETE:
        after = _zip_row(change, ("columnnames", "columnvalues"), path)
    before = None
    if "oldkeys" in change:
        old = change["oldkeys"]
        if old.__class__ is not dict:
            raise _fail(f"{path}.oldkeys", "expected an object")
        before = _zip_row(old, ("keynames", "keyvalues"), f"{path}.oldkeys")
    key = _row_key(after or before, key_columns, path) if key_columns else before
    return CDCEvent(operation, source, before, after, captured_at=captured, key=key)


def _zip_row(obj: Mapping[str, Any], names: tuple[str, str], path: str) -> Row:
    columns = obj.get(names[0])
    values = obj.get(names[1])
    if columns.__class__ is not list or values.__class__ is not list:
        raise _fail(f"{path}.{names[0]}", f"{names[0]} and {names[1]} must be lists")
    if len(columns) != len(values) or not all(c.__class__ is str for c in columns):
        raise _fail(f"{path}.{names[1]}", f"does not match {names[0]}")
    return dict(zip(columns, values, strict=True))


def _wal_source(
    obj: Mapping[str, Any],
    path: str,
    fields: tuple[tuple[str, PositionValue], ...],
    ts_ns: int | None,
) -> CDCSourceMetadata:
    lsn = None
    for name, value in fields:
        if name == "lsn":
            lsn = str(value)
    return CDCSourceMetadata(
        "",
        _opt_str(obj, "schema", path) or "",
        _opt_str(obj, "table", path) or "",
        "wal2json",
        lsn,
        ts_ns=ts_ns,
        position=CDCPosition("wal2json", fields) if fields else None,
        engine="postgresql",
    )


def _wal_message(obj: Mapping[str, Any], path: str, *, text: bool) -> CDCMessage:
    content = _opt_str(obj, "content", path) or ""
    transactional = obj.get("transactional")
    if transactional is not None and transactional.__class__ is not bool:
        raise _fail(f"{path}.transactional", "expected a boolean")
    data = content.encode("utf-8", "surrogatepass") if text else content.encode()
    return CDCMessage(_opt_str(obj, "prefix", path) or "", data, transactional)


def _wal2json_v2(
    document: dict[str, Any],
    path: str,
    key_columns: tuple[str, ...] | None,
    clock: Clock,
) -> list[CDCEvent]:
    action = document.get("action")
    if action in ("B", "C"):
        return []
    operation = _WAL2JSON_V2_OPS.get(action) if action.__class__ is str else None
    if operation is None:
        raise _fail(f"{path}.action", f"unrecognised wal2json action {_short(action)}")

    xid = document.get("xid")
    tx = None if xid is None else _scalar_text(xid, f"{path}.xid")
    lsn = _opt_str(document, "lsn", path)
    stamp = _opt_str(document, "timestamp", path)
    ts_ns = None if stamp is None else _pg_ns(stamp, f"{path}.timestamp")
    fields = _wal_fields(xid=tx, lsn=lsn)
    source = _wal_source(document, path, fields, ts_ns)
    event = CDCEvent(
        operation,
        source,
        captured_at=_ts_datetime(ts_ns, None, clock),
        transaction_id=tx,
    )

    if operation is CDCOperation.MESSAGE:
        event.message = _wal_message(document, path, text=True)
    else:
        _wal2json_v2_rows(event, document, path, key_columns)
    event.event_id = _wal_id("2", event, fields, None if lsn else document, 0)
    return [event]


def _wal2json_v2_rows(
    event: CDCEvent,
    document: dict[str, Any],
    path: str,
    key_columns: tuple[str, ...] | None,
) -> None:
    if "columns" in document:
        event.after = _named_values(document["columns"], f"{path}.columns")
    if "identity" in document:
        event.before = _named_values(document["identity"], f"{path}.identity")
    row = event.after or event.before

    if key_columns:
        event.key = _row_key(row, key_columns, path)
    elif "pk" in document:
        names = tuple(_pk_names(document["pk"], f"{path}.pk"))
        event.key = _row_key(row, names, f"{path}.pk")
    else:
        event.key = event.before


def _named_values(items: object, path: str) -> Row:
    if items.__class__ is not list:
        raise _fail(path, "expected a list of {name, value} objects")
    row: Row = {}
    for index, item in enumerate(items):
        name = item.get("name") if item.__class__ is dict else None
        if name.__class__ is not str or "value" not in item:
            raise _fail(f"{path}[{index}]", "expected an object with name and value")
        row[name] = item["value"]
    return row


def _pk_names(items: object, path: str) -> Iterable[str]:
    if items.__class__ is not list:
        raise _fail(path, "expected a list of {name, type} objects")
    for index, item in enumerate(items):
        name = item.get("name") if item.__class__ is dict else None
        if name.__class__ is not str:
            raise _fail(f"{path}[{index}]", "expected an object with a name")
        yield name


def _pg_ns(text: str, path: str) -> int:
    """Read a PostgreSQL timestamptz text such as ``2019-12-29 04:58:34.806671+00``."""
    normalised = text.replace(" ", "T", 1)
    if len(normalised) >= 3 and normalised[-3] in "+-" and normalised[-2:].isdigit():
        normalised += ":00"
    return _iso_ns(normalised, path)
