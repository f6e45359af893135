"""Every real CDC message in tests/fixtures/cdc parses to what it holds."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from integration_automation_patterns.cdc_event import (
    CDCEvent,
    CDCNotAChangeError,
    CDCOperation,
    CDCParseError,
    DebeziumTransaction,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cdc"
PLACEHOLDER = "__debezium_unavailable_value"

Row = dict[str, Any]


def load(name: str) -> Any:
    """Return a fixture's JSON."""
    return json.loads((FIXTURES / name).read_bytes())


def raw(name: str) -> bytes:
    """Return a fixture's bytes."""
    return (FIXTURES / name).read_bytes()


def debezium(name: str) -> list[CDCEvent]:
    """Parse a Debezium fixture from its bytes, splitting a {key, value} view."""
    document = load(name)
    if isinstance(document, dict) and set(document) >= {"key", "value"}:
        return [CDCEvent.from_debezium(document["value"], key=document["key"])]
    return [CDCEvent.from_debezium(raw(name))]


def maxwell(name: str) -> list[CDCEvent]:
    """Parse a Maxwell fixture, naming the key column of table test.e."""
    return [CDCEvent.from_maxwell(raw(name), key_columns=_maxwell_key_columns(name))]


def _maxwell_key_columns(name: str) -> tuple[str, ...] | None:
    return ("id",) if name in {"maxwell/insert.json", "maxwell/update.json"} else None


DMS_KEYS = {
    "aws_dms/insert_primary_key_partition.json": ("trans_id",),
    "aws_dms/delete_pk_only.json": ("id",),
    "aws_dms/full_load_record.json": ("id",),
}


def dms(name: str) -> list[CDCEvent]:
    """Parse an AWS DMS fixture with its table's key columns where known."""
    return [CDCEvent.from_dms(raw(name), key_columns=DMS_KEYS.get(name))]


def wal2json(name: str) -> list[CDCEvent]:
    """Parse a wal2json fixture from its bytes."""
    return CDCEvent.from_wal2json(raw(name))


class Expected(NamedTuple):
    """What one parsed event must hold."""

    operation: CDCOperation
    table: tuple[str, str, str]
    key: Row | None
    before: Row | None
    after: Row | None
    position: Row | None


ANNE = {
    "id": 1004,
    "first_name": "Anne",
    "last_name": "Kretchmar",
    "email": "annek@noanswer.org",
}
ANNE_MARIE = {**ANNE, "first_name": "Anne Marie"}
PG_ANNE = {**ANNE, "id": 1}
PG_CUSTOMERS = ("postgres", "public", "customers")
MYSQL_CUSTOMERS = ("inventory", "", "customers")
MONGO_CUSTOMERS = ("inventory", "", "customers")
MS_CUSTOMERS = ("testDB", "dbo", "customers")
JOHN = {
    "id": 1005,
    "first_name": "john",
    "last_name": "doe",
    "email": "john.doe@example.org",
}
ORACLE_ANNE = {
    "ID": 1004,
    "FIRST_NAME": "Anne",
    "LAST_NAME": "Kretchmar",
    "EMAIL": "annek@noanswer.org",
}
ORACLE_RS = {"rs_id": "001234.00012345.0124", "ssn": 1}
MONGO_ANNE = {**ANNE, "_id": 1004}
del MONGO_ANNE["id"]
MONGO_POS = {"rs": "rs0", "ts_ms": 1558965508000}
MAXWELL_ROW = {
    "id": 1,
    "m": 4.2341,
    "c": "2016-10-21 05:33:37.523000",
    "comment": "I am a creature of light.",
}
MAXWELL_ROW_2 = {**MAXWELL_ROW, "m": 5.444, "c": "2016-10-21 05:33:54.631000"}
W1_TABLE = ("", "public", "table1_with_pk")
W1_STAMP = "2018-03-27 11:58:28.988414"


def _wide(*, b: int = 1, f: str = "-876.563", e: str = "3.54") -> Row:
    return {
        "a": 1,
        "b": b,
        "c": 2,
        "d": 3,
        "e": Decimal(e),
        "f": Decimal(f),
        "g": Decimal("1.23"),
        "h": "teste     ",
        "i": "testando",
        "j": "um texto longo",
        "k": "001110010101010",
        "l": "Sat Nov 02 17:30:52 2013",
        "m": "02-04-2013",
        "n": True,
        "o": '{ "a": 123 }',
        "p": "'Old' 'Parr'",
    }


W_IDENTITY = {"b": 1, "c": 2, "d": 3}
W_TABLE = ("", "public", "table_with_pk")
MSG = CDCOperation.MESSAGE


def _w1_rows() -> list[Expected]:
    insert = CDCOperation.INSERT
    rows = [
        {"a": 1, "b": "Backup and Restore", "c": W1_STAMP},
        {"a": 2, "b": "Tuning", "c": W1_STAMP},
        {"a": 3, "b": "Replication", "c": W1_STAMP},
    ]
    deleted = [{"a": 1, "c": W1_STAMP}, {"a": 2, "c": W1_STAMP}]
    return [
        *[Expected(insert, W1_TABLE, None, None, row, None) for row in rows],
        Expected(MSG, ("", "", ""), None, None, None, None),
        *[
            Expected(CDCOperation.DELETE, W1_TABLE, key, key, None, None)
            for key in deleted
        ],
        Expected(
            insert,
            ("", "public", "table1_without_pk"),
            None,
            None,
            {"a": 1, "b": Decimal("2.34"), "c": "Tapir"},
            None,
        ),
    ]


CASES: dict[str, tuple[Callable[[str], list[CDCEvent]], list[Expected]]] = {
    "debezium/pg_create_schema_wrapped.json": (
        debezium,
        [
            Expected(
                CDCOperation.INSERT,
                PG_CUSTOMERS,
                None,
                None,
                PG_ANNE,
                {"sequence": '["24023119","24023128"]', "lsn": 24023128, "txId": 555},
            )
        ],
    ),
    "debezium/pg_update_replica_identity_default.json": (
        debezium,
        [
            Expected(
                CDCOperation.UPDATE,
                PG_CUSTOMERS,
                None,
                {"id": 1},
                {**PG_ANNE, "first_name": "Anne Marie"},
                {"lsn": 24023128, "txId": 556},
            )
        ],
    ),
    "debezium/pg_delete_before_only.json": (
        debezium,
        [
            Expected(
                CDCOperation.DELETE,
                PG_CUSTOMERS,
                None,
                {"id": 1},
                None,
                {"lsn": 46523128, "txId": 556},
            )
        ],
    ),
    "debezium/pg_truncate.json": (
        debezium,
        [
            Expected(
                CDCOperation.TRUNCATE,
                PG_CUSTOMERS,
                None,
                None,
                None,
                {"lsn": 46523128, "txId": 556},
            )
        ],
    ),
    "debezium/pg_message_transactional.json": (
        debezium,
        [
            Expected(
                MSG,
                ("postgres", "", ""),
                None,
                None,
                None,
                {"lsn": 46523128, "txId": 556},
            )
        ],
    ),
    "debezium/pg_message_non_transactional.json": (
        debezium,
        [Expected(MSG, ("postgres", "", ""), None, None, None, {"lsn": 46523128})],
    ),
    "debezium/pg_change_with_transaction_block.json": (
        debezium,
        [
            Expected(
                CDCOperation.INSERT,
                ("", "", ""),
                None,
                None,
                {"pk": "2", "aa": "1"},
                None,
            )
        ],
    ),
    "debezium/pg_update_unchanged_toast_placeholder.json": (
        debezium,
        [
            Expected(
                CDCOperation.UPDATE,
                ("sourcedb", "inventory", "customers"),
                None,
                None,
                {**ANNE, "first_name": "Dana", "biography": PLACEHOLDER},
                {"lsn": 34650016, "txId": 627},
            )
        ],
    ),
    "debezium/mysql_create_schema_wrapped.json": (
        debezium,
        [
            Expected(
                CDCOperation.INSERT,
                MYSQL_CUSTOMERS,
                None,
                None,
                ANNE,
                {"file": "mysql-bin.000003", "pos": 154, "row": 0},
            )
        ],
    ),
    "debezium/mysql_update.json": (
        debezium,
        [
            Expected(
                CDCOperation.UPDATE,
                MYSQL_CUSTOMERS,
                None,
                ANNE,
                ANNE_MARIE,
                {"file": "mysql-bin.000003", "pos": 484, "row": 0},
            )
        ],
    ),
    "debezium/mysql_delete.json": (
        debezium,
        [
            Expected(
                CDCOperation.DELETE,
                MYSQL_CUSTOMERS,
                None,
                ANNE_MARIE,
                None,
                {"file": "mysql-bin.000003", "pos": 805, "row": 0},
            )
        ],
    ),
    "debezium/mysql_truncate.json": (
        debezium,
        [
            Expected(
                CDCOperation.TRUNCATE,
                MYSQL_CUSTOMERS,
                None,
                None,
                None,
                {"file": "mysql-bin.000003", "pos": 484, "row": 0},
            )
        ],
    ),
    "debezium/mysql_snapshot_read_key_and_value.json": (
        debezium,
        [
            Expected(
                CDCOperation.SNAPSHOT,
                ("inventory", "", "products_on_hand"),
                {"product_id": 101},
                None,
                {"product_id": 101, "quantity": 3},
                {"file": "mysql-bin.000003", "pos": 156, "row": 0},
            )
        ],
    ),
    "debezium/testres_serde_update.json": (
        debezium,
        [
            Expected(
                CDCOperation.UPDATE,
                MYSQL_CUSTOMERS,
                None,
                {**ANNE, "first_name": "Anne-Marie"},
                ANNE,
                {"file": "mysql-bin.000003", "pos": 154, "row": 0},
            )
        ],
    ),
    "debezium/tombstone_record.json": (
        debezium,
        [
            Expected(
                CDCOperation.TOMBSTONE, ("", "", ""), {"id": 1001}, None, None, None
            )
        ],
    ),
    "debezium/sqlserver_create_schema_wrapped.json": (
        debezium,
        [
            Expected(
                CDCOperation.INSERT,
                MS_CUSTOMERS,
                None,
                None,
                JOHN,
                {
                    "commit_lsn": "00000027:00000758:0005",
                    "change_lsn": "00000027:00000758:0003",
                    "event_serial_no": "1",
                },
            )
        ],
    ),
    "debezium/sqlserver_update.json": (
        debezium,
        [
            Expected(
                CDCOperation.UPDATE,
                MS_CUSTOMERS,
                None,
                JOHN,
                {**JOHN, "email": "noreply@example.org"},
                {
                    "commit_lsn": "00000027:00000ac0:0007",
                    "change_lsn": "00000027:00000ac0:0002",
                    "event_serial_no": "2",
                },
            )
        ],
    ),
    "debezium/sqlserver_delete.json": (
        debezium,
        [
            Expected(
                CDCOperation.DELETE,
                MS_CUSTOMERS,
                None,
                {**JOHN, "email": "noreply@example.org"},
                None,
                {
                    "commit_lsn": "00000027:00000db0:0007",
                    "change_lsn": "00000027:00000db0:0005",
                    "event_serial_no": "1",
                },
            )
        ],
    ),
    "debezium/oracle_create_schema_wrapped.json": (
        debezium,
        [
            Expected(
                CDCOperation.INSERT,
                ("", "", ""),
                None,
                None,
                ORACLE_ANNE,
                {
                    "commit_scn": "2122185",
                    "scn": "2122185",
                    **ORACLE_RS,
                    "row_id": "AAASgjAAMAAAACnAAA",
                    "txId": "6.28.807",
                },
            )
        ],
    ),
    "debezium/oracle_update.json": (
        debezium,
        [
            Expected(
                CDCOperation.UPDATE,
                ("", "", ""),
                None,
                ORACLE_ANNE,
                {**ORACLE_ANNE, "EMAIL": "anne@example.com"},
                {
                    "commit_scn": "2125544",
                    "scn": "2125544",
                    **ORACLE_RS,
                    "row_id": "AAASgjAAMAAAACnAAA",
                    "txId": "6.9.809",
                },
            )
        ],
    ),
    "debezium/oracle_delete.json": (
        debezium,
        [
            Expected(
                CDCOperation.DELETE,
                ("", "", ""),
                None,
                {**ORACLE_ANNE, "EMAIL": "anne@example.com"},
                None,
                {
                    "commit_scn": "2122184",
                    "scn": "2122184",
                    **ORACLE_RS,
                    "row_id": "AAASgjAAMAAAACnAAA",
                    "txId": "6.28.807",
                },
            )
        ],
    ),
    "debezium/oracle_truncate.json": (
        debezium,
        [
            Expected(
                CDCOperation.TRUNCATE,
                ("ORCLPDB1", "DEBEZIUM", "TEST_TABLE"),
                None,
                None,
                None,
                {
                    "commit_scn": "13271102",
                    "scn": "13234397",
                    **ORACLE_RS,
                    "txId": "02000a0037030000",
                },
            )
        ],
    ),
    "debezium/mongodb_create_schema_wrapped.json": (
        debezium,
        [
            Expected(
                CDCOperation.INSERT,
                MONGO_CUSTOMERS,
                {"_id": 1004},
                None,
                MONGO_ANNE,
                {**MONGO_POS, "ord": 31},
            )
        ],
    ),
    "debezium/mongodb_update_change_streams.json": (
        debezium,
        [
            Expected(
                CDCOperation.UPDATE,
                MONGO_CUSTOMERS,
                {"_id": 1004},
                {**MONGO_ANNE, "first_name": "unknown"},
                {**MONGO_ANNE, "first_name": "Anne Marie"},
                {
                    **MONGO_POS,
                    "ord": 1,
                    "txnNumber": 1,
                    "lsid": load("debezium/mongodb_update_change_streams.json")[
                        "source"
                    ]["lsid"],
                },
            )
        ],
    ),
    "debezium/mongodb_delete_snapshot_true.json": (
        debezium,
        [
            Expected(
                CDCOperation.DELETE,
                MONGO_CUSTOMERS,
                {"_id": 1004},
                {**MONGO_ANNE, "first_name": "Anne Marie"},
                None,
                {**MONGO_POS, "ord": 6},
            )
        ],
    ),
    "debezium/mongodb_legacy_oplog_read_snapshot.json": (
        debezium,
        [
            Expected(
                CDCOperation.SNAPSHOT,
                MONGO_CUSTOMERS,
                {"_id": 1004},
                None,
                MONGO_ANNE,
                {**MONGO_POS, "ord": 31},
            )
        ],
    ),
    "debezium/mongodb_legacy_oplog_update_patch_filter.json": (
        debezium,
        [
            Expected(
                CDCOperation.UPDATE,
                MONGO_CUSTOMERS,
                {"_id": 1004},
                None,
                None,
                {**MONGO_POS, "ord": 6},
            )
        ],
    ),
    "debezium/mongodb_legacy_oplog_delete_filter.json": (
        debezium,
        [
            Expected(
                CDCOperation.DELETE,
                MONGO_CUSTOMERS,
                {"_id": 1004},
                None,
                None,
                {**MONGO_POS, "ord": 6},
            )
        ],
    ),
    "maxwell/insert.json": (
        maxwell,
        [
            Expected(
                CDCOperation.INSERT,
                ("test", "", "e"),
                {"id": 1},
                None,
                MAXWELL_ROW,
                {"file": "master.000006", "pos": 800911, "xid": 23396},
            )
        ],
    ),
    "maxwell/update.json": (
        maxwell,
        [
            Expected(
                CDCOperation.UPDATE,
                ("test", "", "e"),
                {"id": 1},
                MAXWELL_ROW,
                MAXWELL_ROW_2,
                None,
            )
        ],
    ),
    "maxwell/delete.json": (
        maxwell,
        [
            Expected(
                CDCOperation.DELETE, ("test", "", "e"), None, MAXWELL_ROW_2, None, None
            )
        ],
    ),
    "maxwell/insert_zero_datetime.json": (
        maxwell,
        [
            Expected(
                CDCOperation.INSERT,
                ("", "", "test_datetime"),
                None,
                None,
                {"dtcol": "0000-00-00 00:00:00"},
                None,
            )
        ],
    ),
    "maxwell/insert_set_column.json": (
        maxwell,
        [
            Expected(
                CDCOperation.INSERT,
                ("", "", "test_sets"),
                None,
                None,
                {"setcol": ["b_val", "c_val"]},
                None,
            )
        ],
    ),
    "aws_dms/insert_primary_key_partition.json": (
        dms,
        [
            Expected(
                CDCOperation.INSERT,
                ("", "testdb", "retail_trans"),
                {"trans_id": 1274},
                None,
                load("aws_dms/insert_primary_key_partition.json")["data"],
                {
                    "timestamp": "2022-03-14T14:18:11.104009Z",
                    "transaction-id": 8590392498,
                },
            )
        ],
    ),
    "aws_dms/insert_schema_table_partition.json": (
        dms,
        [
            Expected(
                CDCOperation.INSERT,
                ("", "public", "task_instance"),
                None,
                None,
                load("aws_dms/insert_schema_table_partition.json")["data"],
                {"timestamp": "2022-12-18T19:28:42.524922Z", "transaction-id": 364547},
            )
        ],
    ),
    "aws_dms/delete_pk_only.json": (
        dms,
        [
            Expected(
                CDCOperation.DELETE,
                ("", "public", "dag_run"),
                {"id": 2636},
                {"id": 2636},
                None,
                {"timestamp": "2022-12-24T12:49:52.607759Z", "transaction-id": 372172},
            )
        ],
    ),
    "aws_dms/full_load_record.json": (
        dms,
        [
            Expected(
                CDCOperation.SNAPSHOT,
                ("", "lab_logix_crm_replica", "acy_leads"),
                {"id": 315209},
                None,
                load("aws_dms/full_load_record.json")["data"],
                {"timestamp": "2020-12-15T05:47:42.724458Z"},
            )
        ],
    ),
    "wal2json/v1_stream_pg_recvlogical.json": (
        wal2json,
        [Expected(MSG, ("", "", ""), None, None, None, None), *_w1_rows()],
    ),
    "wal2json/v1_transaction_insert_message_delete.json": (wal2json, _w1_rows()),
    "wal2json/v1_update_oldkeys_replica_identity_full.json": (
        wal2json,
        [
            Expected(
                CDCOperation.UPDATE,
                W_TABLE,
                _wide(f="876.563"),
                _wide(f="876.563"),
                _wide(),
                None,
            )
        ],
    ),
    "wal2json/v2_update_identity.json": (
        wal2json,
        [
            Expected(
                CDCOperation.UPDATE,
                W_TABLE,
                _wide(f="876.563"),
                _wide(f="876.563"),
                _wide(),
                None,
            )
        ],
    ),
    "wal2json/v2_update_many_types.json": (
        wal2json,
        [Expected(CDCOperation.UPDATE, W_TABLE, W_IDENTITY, W_IDENTITY, _wide(), None)],
    ),
    "wal2json/v2_update1_expected.raw.jsonl": (
        wal2json,
        [
            Expected(
                CDCOperation.UPDATE,
                W_TABLE,
                W_IDENTITY,
                W_IDENTITY,
                _wide(e="3.540"),
                None,
            ),
            Expected(
                CDCOperation.UPDATE,
                W_TABLE,
                W_IDENTITY,
                W_IDENTITY,
                _wide(b=-1, e="3.540"),
                None,
            ),
        ],
    ),
    "wal2json/v2_truncate.json": (
        wal2json,
        [
            Expected(
                CDCOperation.TRUNCATE,
                ("", "public", "table_truncate_1"),
                None,
                None,
                None,
                None,
            )
        ],
    ),
    # Both files are empty in the shared fixture set; empty output is no events.
    "wal2json/v2_stream_example3.json": (wal2json, []),
    "wal2json/v2_stream_example3.raw.jsonl": (wal2json, []),
}

NOT_CHANGES = {
    "debezium/mysql_schema_change_topic.json": (debezium, "schema_change"),
    "maxwell/ddl_table_create.json": (maxwell, "schema_change"),
    "maxwell/ddl_table_alter.json": (maxwell, "schema_change"),
    "aws_dms/control_create_table.json": (dms, "control"),
    "debezium/pg_transaction_begin.json": (debezium, "transaction"),
    "debezium/pg_transaction_end.json": (debezium, "transaction"),
}

OTHER_FIXTURES = {
    "debezium/testres_serde_unwrapped.json",
    "debezium/mysql_key_schema_wrapped.json",
    "maxwell/kafka_key.json",
}


def test_every_fixture_has_a_case() -> None:
    """Each of the 55 fixture files is covered by one of the tables below."""
    files = {
        p.relative_to(FIXTURES).as_posix()
        for p in FIXTURES.rglob("*.json*")
        if not p.name.startswith("_")
    }
    covered = set(CASES) | set(NOT_CHANGES) | OTHER_FIXTURES

    assert len(files) == 55
    assert files == covered


def _actual(event: CDCEvent) -> Expected:
    source = event.source
    position = source.position
    return Expected(
        event.operation,
        (source.database, source.schema, source.table),
        event.key,
        event.before,
        event.after,
        None if position is None else position.to_dict(),
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_parses_to_what_it_holds(name: str) -> None:
    """Operation, table, key, before/after and position match the fixture."""
    parse, expected = CASES[name]

    events = parse(name)

    assert [_actual(event) for event in events] == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_ids_are_stable_across_parses(name: str) -> None:
    """Parsing the same message twice gives the same event ids."""
    parse, _ = CASES[name]

    first = [event.event_id for event in parse(name)]
    second = [event.event_id for event in parse(name)]

    assert first == second


def test_fixture_ids_are_distinct_across_fixtures() -> None:
    """No two changes among the fixtures share an id.

    The only repeats are the same change: the fourth document of the
    pg_recvlogical stream is byte for byte the transaction fixture.
    """
    stream = [e.event_id for e in wal2json("wal2json/v1_stream_pg_recvlogical.json")]
    single = [
        e.event_id
        for e in wal2json("wal2json/v1_transaction_insert_message_delete.json")
    ]
    assert stream[1:] == single

    ids = [
        event.event_id
        for name, (parse, _) in CASES.items()
        if name != "wal2json/v1_transaction_insert_message_delete.json"
        for event in parse(name)
    ]
    assert len(ids) == len(set(ids))
    assert len(ids) == 51


@pytest.mark.parametrize("name", sorted(NOT_CHANGES))
def test_non_change_fixture_is_refused_with_its_kind(name: str) -> None:
    """DDL, control records and transaction boundaries are not row changes."""
    parse, kind = NOT_CHANGES[name]

    with pytest.raises(CDCNotAChangeError) as caught:
        parse(name)

    assert caught.value.kind == kind


def test_transaction_boundaries_parse() -> None:
    """BEGIN and END boundaries carry the id, time and per-table counts."""
    begin = DebeziumTransaction.from_message(raw("debezium/pg_transaction_begin.json"))
    end = DebeziumTransaction.from_message(load("debezium/pg_transaction_end.json"))

    assert begin == DebeziumTransaction("BEGIN", "571:53195829", 1486500577125)
    assert end == DebeziumTransaction(
        "END", "571:53195832", 1486500577691, 2, (("s1.a", 1), ("s2.a", 1))
    )
    assert begin.event_id != end.event_id


def test_change_with_transaction_block_carries_its_order() -> None:
    """The transaction block gives id, total and per-table order (strings read)."""
    (event,) = debezium("debezium/pg_change_with_transaction_block.json")

    assert event.transaction_id == "571:53195832"
    assert (event.total_order, event.data_collection_order) == (1, 1)
    assert event.captured_at.isoformat() == "2020-01-30T13:28:04.335000+00:00"


def test_flattened_row_is_refused_as_unknown_operation() -> None:
    """A row flattened by ExtractNewRecordState has no op to read."""
    with pytest.raises(CDCParseError, match=r"^Unrecognised Debezium operation code"):
        CDCEvent.from_debezium(raw("debezium/testres_serde_unwrapped.json"))


def test_schema_wrapped_key_fixture_gives_the_key() -> None:
    """A JsonConverter key with its schema unwraps to the key's fields."""
    key = raw("debezium/mysql_key_schema_wrapped.json")

    event = CDCEvent.from_debezium(
        raw("debezium/mysql_create_schema_wrapped.json"), key=key
    )
    tombstone = CDCEvent.from_debezium(None, key=key)

    assert event.key == {"id": 1001}
    assert tombstone.operation is CDCOperation.TOMBSTONE
    assert tombstone.key == {"id": 1001}


def test_maxwell_kafka_key_fixture_gives_the_key() -> None:
    """Maxwell's hash key yields the primary key columns without the pk. prefix."""
    event = CDCEvent.from_maxwell(
        raw("maxwell/insert.json"), key=raw("maxwell/kafka_key.json")
    )

    assert event.key == {"id": 4, "part2": "hello"}


def test_toast_fixture_lists_the_placeholder_column() -> None:
    """The unchanged TOAST column is unavailable and filled from the last row."""
    (event,) = debezium("debezium/pg_update_unchanged_toast_placeholder.json")
    previous = {**ANNE, "biography": "Born in 1970."}

    assert event.unavailable_fields == frozenset({"biography"})
    assert event.source.snapshot == "false"
    assert event.merged_after(previous)["biography"] == "Born in 1970."


def test_message_fixture_decodes_content() -> None:
    """A logical decoding message keeps its prefix and base64-decoded content."""
    (event,) = debezium("debezium/pg_message_transactional.json")

    assert event.message is not None
    assert event.message.prefix == "foo"
    assert event.message.content == base64.b64decode("Ymfy")


def test_mongodb_update_description_is_decoded() -> None:
    """updatedFields given as a JSON string become a document."""
    (event,) = debezium("debezium/mongodb_update_change_streams.json")
    (legacy,) = debezium("debezium/mongodb_legacy_oplog_update_patch_filter.json")

    assert event.updated_fields == {"first_name": "Anne Marie"}
    assert event.changed_fields() == {"first_name"}
    assert legacy.updated_fields == {"first_name": "Anne Marie"}
    assert legacy.changed_fields() == {"first_name"}


def test_snapshot_marker_accepts_string_and_boolean() -> None:
    """source.snapshot reads both the string enum and the old boolean."""
    (string,) = debezium("debezium/mysql_snapshot_read_key_and_value.json")
    (boolean,) = debezium("debezium/mongodb_delete_snapshot_true.json")
    (plain,) = debezium("debezium/mysql_update.json")

    assert (string.source.snapshot, string.source.is_snapshot) == ("true", True)
    assert (boolean.source.snapshot, boolean.source.is_snapshot) == ("true", True)
    assert (plain.source.snapshot, plain.source.is_snapshot) == ("false", False)


def test_commit_time_uses_the_finest_timestamp() -> None:
    """ts_ns wins over ts_us and ts_ms; older messages fall back to ts_ms."""
    (fine,) = debezium("debezium/pg_create_schema_wrapped.json")
    (coarse,) = debezium("debezium/pg_update_unchanged_toast_placeholder.json")

    assert fine.source.ts_ns == 1559033904863123000
    assert fine.captured_at.isoformat() == "2019-05-28T08:58:24.863123+00:00"
    assert coarse.source.ts_ns == 1570448151151000000
