"""CDCEvent: the 0.2.0 API, input forms, identity, ordering, TOAST and errors."""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns._types import IntegrationError, ManualClock
from integration_automation_patterns.cdc_event import (
    DEFAULT_UNAVAILABLE_PLACEHOLDER,
    CDCEvent,
    CDCOperation,
    CDCParseError,
    CDCPosition,
    CDCSourceMetadata,
)

SOURCE = {
    "connector": "postgresql",
    "name": "shop",
    "db": "orders",
    "schema": "public",
    "table": "customers",
    "ts_ms": 1_700_000_000_000,
    "txId": 7,
    "lsn": 100,
}


def payload(op: str = "u", **changes: Any) -> dict[str, Any]:
    """Return a plain PostgreSQL Debezium payload with ``changes`` applied."""
    message: dict[str, Any] = {
        "op": op,
        "before": {"id": 1, "name": "Ann", "note": "x"},
        "after": {"id": 1, "name": "Anne", "note": "x"},
        "source": dict(SOURCE),
        "ts_ms": 1_700_000_000_500,
    }
    message.update(changes)
    return message


def test_operation_values_are_upper_case_names() -> None:
    """CDCOperation keeps 0.2.0 values and gains MESSAGE and TOMBSTONE."""
    assert [op.value for op in CDCOperation] == [op.name for op in CDCOperation]
    assert {"MESSAGE", "TOMBSTONE"} <= {op.name for op in CDCOperation}


def test_0_2_0_constructors_keep_their_positional_order() -> None:
    """CDCSourceMetadata and CDCEvent accept the 0.2.0 positional arguments."""
    source = CDCSourceMetadata("db", "public", "t", "debezium", "10", "1")
    moment = datetime(2024, 1, 1, tzinfo=timezone.utc)

    event = CDCEvent(CDCOperation.INSERT, source, None, {"id": 1}, "e-1", moment, "tx")

    assert (event.event_id, event.captured_at, event.transaction_id) == (
        "e-1",
        moment,
        "tx",
    )
    assert CDCSourceMetadata("a", "b", "c").connector == "unknown"


def test_hand_built_events_get_fresh_uuid7_ids() -> None:
    """Events built without an id get distinct UUIDv7 ids."""
    source = CDCSourceMetadata("db", "s", "t")

    first = CDCEvent(CDCOperation.INSERT, source)
    second = CDCEvent(CDCOperation.INSERT, source)

    assert first.event_id != second.event_id
    assert first.event_id[14] == "7"


def test_unknown_op_message_keeps_the_0_2_0_wording() -> None:
    """An unknown op raises a ValueError starting with the 0.2.0 text."""
    with pytest.raises(ValueError, match=r"^Unrecognised Debezium operation code"):
        CDCEvent.from_debezium(payload(op="x"))


def test_parse_error_is_an_integration_and_value_error() -> None:
    """CDCParseError is caught by both IntegrationError and ValueError."""
    assert issubclass(CDCParseError, IntegrationError)
    assert issubclass(CDCParseError, ValueError)


def test_dict_str_bytes_and_schema_wrapped_forms_parse_alike() -> None:
    """The same change as dict, str, bytes or schema-wrapped gives one event."""
    message = payload()
    wrapped = {"schema": {"type": "struct"}, "payload": message}

    events = [
        CDCEvent.from_debezium(message),
        CDCEvent.from_debezium(json.dumps(message)),
        CDCEvent.from_debezium(json.dumps(message).encode()),
        CDCEvent.from_debezium(json.dumps(wrapped).encode()),
    ]

    assert len({event.event_id for event in events}) == 1
    assert all(event == events[0] for event in events)


def test_identity_ignores_delivery_details_but_not_position() -> None:
    """Another emit time keeps the id; another lsn, op or table changes it."""
    base = CDCEvent.from_debezium(payload()).event_id
    later = payload(ts_ms=1_800_000_000_000)
    moved = payload(source={**SOURCE, "lsn": 101})
    other_table = payload(source={**SOURCE, "table": "orders"})

    assert CDCEvent.from_debezium(later).event_id == base
    assert CDCEvent.from_debezium(moved).event_id != base
    assert CDCEvent.from_debezium(payload(op="c")).event_id != base
    assert CDCEvent.from_debezium(other_table).event_id != base


def test_threads_reading_a_lazy_id_at_once_see_the_same_id() -> None:
    """A second reader while the id is being derived never gets a fresh UUID."""
    event = CDCEvent.from_debezium(payload())
    derived = CDCEvent.from_debezium(payload()).event_id
    derive, arg = event.__dict__["_lazy_event_id"]
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_first(value: Any) -> str:
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            release.wait(5)
        return str(derive(value))

    event.__dict__["_lazy_event_id"] = (slow_first, arg)
    seen: list[str] = []
    first = threading.Thread(target=lambda: seen.append(event.event_id))
    first.start()
    assert entered.wait(5)
    seen.append(event.event_id)
    release.set()
    first.join(5)

    assert seen == [derived, derived]


def test_without_position_the_id_hashes_the_canonical_message() -> None:
    """Messages without position fields still get a stable, content-based id."""
    message = payload(source={"connector": "postgresql", "db": "orders"})
    reordered = dict(reversed(list(message.items())))

    first = CDCEvent.from_debezium(message)

    assert first.source.position is None
    assert CDCEvent.from_debezium(reordered).event_id == first.event_id
    assert CDCEvent.from_debezium(payload(source={"db": "x"})).event_id != (
        first.event_id
    )


@settings(deadline=None)
@given(lsns=st.lists(st.integers(0, 2**40), min_size=2, max_size=30, unique=True))
def test_positions_order_like_their_lsns(lsns: list[int]) -> None:
    """Sorting events by position sorts them by LSN, even given as strings."""
    events = [
        CDCEvent.from_debezium(payload(source={**SOURCE, "lsn": str(lsn)}))
        for lsn in lsns
    ]

    ordered = sorted(events, key=lambda e: e.source.position or CDCPosition("", ()))

    assert [int(e.source.lsn or 0) for e in ordered] == sorted(lsns)
    assert len({e.event_id for e in events}) == len(lsns)


def test_positions_of_different_connectors_do_not_compare() -> None:
    """Comparing a PostgreSQL position with a MySQL one is a TypeError."""
    pg = CDCPosition("postgresql", (("lsn", 1),))
    mysql = CDCPosition("mysql", (("file", "b.1"), ("pos", 4)))

    with pytest.raises(TypeError):
        _ = pg < mysql
    assert pg == CDCPosition("postgresql", (("lsn", 1),))


def test_postgres_sequence_orders_by_last_commit_then_lsn() -> None:
    """Debezium's sequence [last commit lsn, lsn] orders interleaved changes."""
    early = CDCPosition("postgresql", (("sequence", '["10","30"]'), ("lsn", 30)))
    late = CDCPosition("postgresql", (("sequence", '["20","25"]'), ("lsn", 25)))

    assert early < late


def test_tombstone_carries_the_key() -> None:
    """A None, empty or null value is a TOMBSTONE holding the record key."""
    key = {"schema": {"type": "struct"}, "payload": {"id": 9}}
    for value in (None, b"", "", "null"):
        event = CDCEvent.from_debezium(value, key=key)
        assert event.operation is CDCOperation.TOMBSTONE
        assert event.key == {"id": 9}
        assert event.before is None
        assert event.after is None


def test_tombstone_without_time_reads_the_clock(clock: ManualClock) -> None:
    """The capture time of a message without timestamps comes from the clock."""
    event = CDCEvent.from_debezium(None, key={"id": 1}, clock=clock)

    assert event.captured_at.timestamp() == clock.time()


def test_changed_fields_counts_columns_absent_from_before() -> None:
    """Replica identity default: columns missing from before count as changed."""
    event = CDCEvent.from_debezium(payload(before={"id": 1}))

    assert event.changed_fields() == {"name", "note"}
    assert CDCEvent.from_debezium(payload()).changed_fields() == {"name"}


def test_changed_fields_is_empty_outside_updates() -> None:
    """Inserts, deletes and snapshots report no changed fields (0.2.0)."""
    for op in ("c", "d", "r"):
        assert CDCEvent.from_debezium(payload(op=op)).changed_fields() == set()


@pytest.mark.parametrize(
    "marker",
    [
        DEFAULT_UNAVAILABLE_PLACEHOLDER,
        base64.b64encode(DEFAULT_UNAVAILABLE_PLACEHOLDER.encode()).decode(),
    ],
)
def test_unavailable_columns_never_count_as_changed(marker: str) -> None:
    """TOAST placeholders (text or base64 bytes) are listed, not changed."""
    after = {"id": 1, "name": "Anne", "note": marker}
    event = CDCEvent.from_debezium(payload(after=after))

    assert event.unavailable_fields == frozenset({"note"})
    assert event.changed_fields() == {"name"}
    assert event.merged_after({"id": 1, "note": "kept"}) == {
        "id": 1,
        "name": "Anne",
        "note": "kept",
    }


def test_custom_placeholder_is_honoured() -> None:
    """A configured unavailable.value.placeholder replaces the default."""
    after = {"id": 1, "name": "Anne", "note": "??"}

    event = CDCEvent.from_debezium(payload(after=after), unavailable_placeholder="??")

    assert event.unavailable_fields == frozenset({"note"})


def test_merged_after_refuses_a_missing_previous_value() -> None:
    """Filling a placeholder needs the column in the previous row."""
    after = {"id": 1, "note": DEFAULT_UNAVAILABLE_PLACEHOLDER}
    event = CDCEvent.from_debezium(payload(after=after))

    with pytest.raises(CDCParseError, match=r"after\.note"):
        event.merged_after({"id": 1})


def test_audit_dict_is_json_and_holds_no_row_values() -> None:
    """to_audit_dict serialises and leaves row values out."""
    event = CDCEvent.from_debezium(payload())

    audit = event.to_audit_dict()
    text = json.dumps(audit)

    assert audit["operation"] == "UPDATE"
    assert audit["table"] == "public.customers"
    assert audit["changed_fields"] == ["name"]
    assert audit["position"] == {"lsn": 100, "txId": 7}
    assert "Anne" not in text


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (payload(source="nope"), "source"),
        (payload(source={**SOURCE, "table": 5}), "source.table"),
        (payload(source={**SOURCE, "lsn": [1]}), "source.lsn"),
        (payload(source={**SOURCE, "snapshot": 3}), "source.snapshot"),
        (payload(after=[1]), "after"),
        (payload(transaction={"id": "1", "total_order": "x"}), "transaction"),
        ({"schema": {}, "payload": payload(source={**SOURCE, "db": 1})}, "payload."),
    ],
)
def test_errors_name_the_path_at_fault(message: dict[str, Any], path: str) -> None:
    """Malformed fields raise CDCParseError naming where they are."""
    with pytest.raises(CDCParseError, match=path.replace(".", r"\.")):
        CDCEvent.from_debezium(message)


@pytest.mark.parametrize("value", [b"{", b"\xff\xfe", "[1, 2]", b"[" * 100_000, 42])
def test_undecodable_input_raises_parse_error(value: Any) -> None:
    """Broken JSON, bad bytes, non-objects and deep nesting are parse errors."""
    with pytest.raises(CDCParseError) as caught:
        CDCEvent.from_debezium(value)

    assert "value" in str(caught.value)


def test_maxwell_update_rebuilds_before_from_old() -> None:
    """Maxwell's old holds changed columns only; before is data overlaid with it."""
    message = {
        "database": "shop",
        "table": "t",
        "type": "update",
        "ts": 1,
        "data": {"id": 1, "a": 2, "b": 3},
        "old": {"a": 1},
    }

    event = CDCEvent.from_maxwell(message, key_columns=["id"])

    assert event.before == {"id": 1, "a": 1, "b": 3}
    assert event.changed_fields() == {"a"}
    assert event.key == {"id": 1}


def test_dms_update_reads_the_before_image() -> None:
    """DMS BeforeImageSettings give the update its before row."""
    message = {
        "data": {"id": 1, "a": 2},
        "before-image": {"id": 1, "a": 1},
        "metadata": {
            "record-type": "data",
            "operation": "update",
            "schema-name": "s",
            "table-name": "t",
            "timestamp": "2024-01-01T00:00:00.000001Z",
        },
    }

    event = CDCEvent.from_dms(message)

    assert event.changed_fields() == {"a"}
    assert event.captured_at == datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc)


def test_wal2json_v2_markers_are_skipped_and_lsn_gives_the_id() -> None:
    """B/C lines yield nothing; rows with an lsn get position-derived ids."""
    lines = "\n".join(
        json.dumps(line)
        for line in (
            {"action": "B", "xid": 5},
            {
                "action": "I",
                "xid": 5,
                "lsn": "0/16B2D40",
                "schema": "s",
                "table": "t",
                "columns": [{"name": "id", "type": "int", "value": 1}],
                "pk": [{"name": "id", "type": "int"}],
            },
            {"action": "C", "xid": 5},
        )
    )

    (event,) = CDCEvent.from_wal2json(lines)

    assert event.key == {"id": 1}
    assert event.transaction_id == "5"
    assert event.source.lsn == "0/16B2D40"
    assert CDCEvent.from_wal2json(lines)[0].event_id == event.event_id


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode(),
        lambda text: f" \n{text}\r\n\t ".encode(),
        lambda text: text.encode("utf-8-sig"),
        lambda text: text.encode("utf-16-le"),
        lambda text: text.encode("utf-16-be"),
        lambda text: text.encode("utf-32-le"),
        lambda text: text.encode("utf-16"),
        lambda text: bytearray(text.encode()),
        lambda text: text,
        lambda text: f"{text}\n",
    ],
    ids=[
        "utf-8",
        "whitespace",
        "utf-8-bom",
        "utf-16-le",
        "utf-16-be",
        "utf-32-le",
        "utf-16-bom",
        "bytearray",
        "str",
        "str-newline",
    ],
)
def test_debezium_json_in_every_form_json_loads_reads_parses_alike(
    encode: Any,
) -> None:
    """Every encoding and spacing json.loads accepts gives the same event."""
    message = payload(after={"id": 1, "name": "Zoë ✓"})

    parsed = CDCEvent.from_debezium(encode(json.dumps(message, ensure_ascii=False)))

    assert parsed == CDCEvent.from_debezium(message)
    assert parsed.after == {"id": 1, "name": "Zoë ✓"}


def outcome(value: Any) -> object:
    """Return the event parsed from ``value``, or the error and its cause's type."""
    try:
        return CDCEvent.from_debezium(value)
    except CDCParseError as exc:
        return (str(exc), type(exc.__cause__))


def loads_outcome(raw: bytes) -> object:
    """Return the outcome of json.loads's document, or the error its failure gives."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        return (f"value: not valid JSON ({exc!s:.80})", type(exc))
    return outcome(document)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"op": "u"} x',
        b'{"op": "u",}',
        b'{"op": "u"}{}',
        b'{"op": "\xff"}',
        b'{"op": "u"',
        b'{"op": "\xed\xa0\x80"}',
        b"{\x00}\x00",
        b'{"op": "u", "source": {"lsn": 1e999}}',
    ],
)
def test_debezium_bytes_parse_as_their_json_loads_document(raw: bytes) -> None:
    """Bytes give json.loads's error, or the outcome of its decoded document."""
    assert outcome(raw) == loads_outcome(raw)
