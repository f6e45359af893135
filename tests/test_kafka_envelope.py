"""The Kafka envelope: the 0.2.0 API, producer records, headers and poison records."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from integration_automation_patterns import _types
from integration_automation_patterns.kafka_envelope import (
    EnvelopeDecodeError,
    KafkaEnvelopeError,
    KafkaEventEnvelope,
)

CREATED = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)


@pytest.fixture
def envelope() -> KafkaEventEnvelope:
    """An order event with one application header and a correlation id."""
    return KafkaEventEnvelope(
        "evt-1",
        "order.created",
        "crm",
        {"order": 7, "lines": [1, 2]},
        "orders",
        "cust-42",
        created_at=CREATED,
        headers={"trace": "abc"},
        correlation_id="req-9",
    )


def test_positional_0_2_0_constructor_and_defaults() -> None:
    """The 0.2.0 positional order and defaults still hold."""
    before = datetime.now(timezone.utc)
    env = KafkaEventEnvelope("e", "t", "s", {"a": 1}, "topic", "key")

    assert env.schema_version == "1.0"
    assert before <= env.created_at <= datetime.now(timezone.utc)
    assert env.headers == {}
    assert (env.partition, env.offset, env.dead_letter_reason) == (None, None, None)


def test_create_assigns_uuid7_id_and_keeps_header_dict() -> None:
    """create() gives a UUIDv7 id and keeps a dict of headers as a dict."""
    env = KafkaEventEnvelope.create(
        "t", "s", {}, "orders", "k", "2.0", headers={"trace": "x"}
    )

    assert env.event_id[14] == "7"
    assert env.schema_version == "2.0"
    assert env.headers == {"trace": "x"}


def test_create_without_headers_gets_empty_dict() -> None:
    """create(headers=None) leaves an empty dict, as in 0.2.0."""
    assert KafkaEventEnvelope.create("t", "s", {}, "o", "k").headers == {}


def test_producer_record_shape(envelope: KafkaEventEnvelope) -> None:
    """to_producer_record returns topic, str key, JSON bytes value and pairs."""
    record = envelope.to_producer_record()

    assert record["topic"] == "orders"
    assert record["key"] == "cust-42"
    body = json.loads(record["value"])
    assert body["payload"] == {"order": 7, "lines": [1, 2]}
    assert body["created_at"] == "2024-05-01T12:30:00+00:00"
    assert {type(v) for _, v in record["headers"]} == {bytes}


def test_body_keeps_the_0_2_0_fields(envelope: KafkaEventEnvelope) -> None:
    """The JSON value still carries 0.2.0's topic and headers object."""
    body = json.loads(envelope.to_producer_record()["value"])

    assert body["topic"] == "orders"
    assert body["headers"] == {"trace": "abc"}


def test_body_headers_are_text_with_the_last_value_winning() -> None:
    """Repeated or binary headers go into the body as text; the last one wins."""
    pairs = [("hop", b"a"), ("bin", b"\xff"), ("hop", b"b")]
    env = KafkaEventEnvelope("e", "t", "s", {}, "o", "k", headers=pairs)

    body = json.loads(env.to_producer_record()["value"])

    assert body["headers"] == {"hop": "b", "bin": "\ufffd"}


@pytest.mark.parametrize(
    ("created_at", "written"),
    [
        (CREATED, "2024-05-01T12:30:00+00:00"),
        (
            datetime(2024, 5, 1, 12, 30, 0, 5, tzinfo=timezone.utc),
            "2024-05-01T12:30:00.000005+00:00",
        ),
    ],
)
def test_created_at_is_written_as_isoformat(created_at: datetime, written: str) -> None:
    """created_at is written by isoformat() with +00:00, never Z, as 0.2.0 did."""
    env = KafkaEventEnvelope("e", "t", "s", {}, "o", "k", created_at=created_at)

    assert json.loads(env.to_producer_record()["value"])["created_at"] == written


@pytest.mark.parametrize(
    "written", ["2024-05-01T12:30:00Z", "2024-05-01T12:30:00+00:00"]
)
def test_created_at_is_read_with_z_or_offset(
    envelope: KafkaEventEnvelope, written: str
) -> None:
    """Readers accept created_at ending in Z as well as +00:00."""
    body = json.loads(envelope.to_producer_record()["value"])
    body["created_at"] = written

    back = KafkaEventEnvelope.from_consumer_record(
        "orders", 0, 0, b"k", json.dumps(body).encode()
    )

    assert back.created_at == CREATED


def test_metadata_travels_in_headers_and_body(envelope: KafkaEventEnvelope) -> None:
    """Event id, type, source, schema version and correlation id are in both."""
    record = envelope.to_producer_record()
    headers = dict(record["headers"])
    body = json.loads(record["value"])

    for name, expected in [
        ("event_id", "evt-1"),
        ("event_type", "order.created"),
        ("source_system", "crm"),
        ("schema_version", "1.0"),
        ("correlation_id", "req-9"),
    ]:
        assert headers[name] == expected.encode()
        assert body[name] == expected
    assert record["headers"][-1] == ("trace", b"abc")


def test_header_pairs_keep_order_and_duplicates() -> None:
    """Headers given as pairs keep their order and repeated names."""
    pairs = [("b", b"1"), ("a", b"\x00\xff"), ("b", b"2")]
    env = KafkaEventEnvelope("e", "t", "s", {}, "o", "k", headers=pairs)

    assert env.header_list == pairs
    assert env.to_producer_record()["headers"][-3:] == pairs


def test_header_dict_values_are_utf8_encoded() -> None:
    """A 0.2.0 dict of str values becomes UTF-8 pairs in insertion order."""
    env = KafkaEventEnvelope("e", "t", "s", {}, "o", "k", headers={"z": "ü", "a": "1"})

    assert env.header_list == [("z", "ü".encode()), ("a", b"1")]


@pytest.mark.parametrize(
    "headers",
    [[("a",)], [(1, b"x")], [("a", 3)], 5],
    ids=["not-a-pair", "name-not-str", "value-not-bytes", "not-iterable"],
)
def test_malformed_headers_are_refused(headers: object) -> None:
    """Headers that are not (str, bytes) pairs raise KafkaEnvelopeError."""
    with pytest.raises(KafkaEnvelopeError, match="header"):
        KafkaEventEnvelope("e", "t", "s", {}, "o", "k", headers=headers)  # type: ignore[arg-type]


def test_consumer_record_round_trip(envelope: KafkaEventEnvelope) -> None:
    """A produced record reads back into the same event, with its position."""
    record = envelope.to_producer_record()

    back = KafkaEventEnvelope.from_consumer_record(
        "orders", 3, 1_042, record["key"], record["value"], headers=record["headers"]
    )

    assert (back.event_id, back.event_type, back.source_system) == (
        "evt-1",
        "order.created",
        "crm",
    )
    assert back.payload == envelope.payload
    assert back.created_at == CREATED
    assert back.correlation_id == "req-9"
    assert (back.partition_key, back.partition, back.offset) == ("cust-42", 3, 1_042)
    assert back.header_list == [("trace", b"abc")]


def test_0_2_0_positional_consumer_call_without_headers(
    envelope: KafkaEventEnvelope,
) -> None:
    """from_consumer_record(topic, partition, offset, key, value) still works."""
    record = envelope.to_producer_record()

    back = KafkaEventEnvelope.from_consumer_record(
        "orders", 0, 5, record["key"], record["value"]
    )

    assert back.event_id == "evt-1"
    assert back.headers == {"trace": "abc"}


def test_record_headers_win_over_the_body_copy(envelope: KafkaEventEnvelope) -> None:
    """Given record headers, the body's 0.2.0 headers object is not used."""
    record = envelope.to_producer_record()
    headers = [*record["headers"][:-1], ("trace", b"from-kafka")]

    back = KafkaEventEnvelope.from_consumer_record(
        "orders", 0, 5, record["key"], record["value"], headers=headers
    )

    assert back.headers == [("trace", b"from-kafka")]


@pytest.mark.parametrize("written", [5, ["trace"], {"trace": 1}])
def test_malformed_body_headers_are_a_decode_error(written: object) -> None:
    """Without record headers, a body headers field not of strings is poison."""
    body = json.loads(
        KafkaEventEnvelope("e", "t", "s", {}, "o", "k").to_producer_record()["value"]
    )
    body["headers"] = written

    with pytest.raises(EnvelopeDecodeError, match="'headers'"):
        KafkaEventEnvelope.from_consumer_record(
            "o", 0, 0, b"k", json.dumps(body).encode()
        )


def test_str_value_is_read_as_utf8(envelope: KafkaEventEnvelope) -> None:
    """A str value decodes like its UTF-8 bytes and is kept as bytes."""
    record = envelope.to_producer_record()

    back = KafkaEventEnvelope.from_consumer_record(
        "orders", 0, 5, record["key"], record["value"].decode()
    )

    assert back.event_id == "evt-1"
    assert back.dead_letter(ValueError("x"))["value"] == record["value"]


def test_unencodable_str_value_is_a_decode_error() -> None:
    """A str value with a lone surrogate raises EnvelopeDecodeError."""
    with pytest.raises(EnvelopeDecodeError, match="value"):
        KafkaEventEnvelope.from_consumer_record("o", 0, 0, b"k", "\ud800")


def test_null_key_falls_back_to_body_partition_key(
    envelope: KafkaEventEnvelope,
) -> None:
    """A record consumed with a null key keeps the body's partition key."""
    record = envelope.to_producer_record()

    back = KafkaEventEnvelope.from_consumer_record("o", 0, 0, None, record["value"])

    assert back.partition_key == "cust-42"


def test_mark_dead_letter_returns_copy(envelope: KafkaEventEnvelope) -> None:
    """mark_dead_letter copies to <topic>.dlq with the reason; the original stays."""
    dead = envelope.mark_dead_letter("schema mismatch")

    assert (dead.topic, dead.dead_letter_reason) == ("orders.dlq", "schema mismatch")
    assert (envelope.topic, envelope.dead_letter_reason) == ("orders", None)
    assert dead.event_id == envelope.event_id
    dead.headers["extra"] = "x"  # type: ignore[call-overload]
    assert "extra" not in envelope.headers


def test_dead_letter_reason_survives_the_wire(envelope: KafkaEventEnvelope) -> None:
    """The dead-letter reason is carried in a header and read back."""
    record = envelope.mark_dead_letter("bad total").to_producer_record()

    back = KafkaEventEnvelope.from_consumer_record(
        record["topic"], 0, 0, record["key"], record["value"], headers=record["headers"]
    )

    assert ("dead_letter_reason", b"bad total") in record["headers"]
    assert back.dead_letter_reason == "bad total"


def test_naive_created_at_is_sent_as_utc() -> None:
    """A naive created_at is written as UTC rather than without an offset."""
    env = KafkaEventEnvelope(
        "e", "t", "s", {}, "o", "k", created_at=datetime(2024, 1, 1, 8, 0)
    )

    body = json.loads(env.to_producer_record()["value"])

    assert body["created_at"] == "2024-01-01T08:00:00+00:00"


def test_unserialisable_payload_names_the_payload() -> None:
    """A payload that is not JSON raises KafkaEnvelopeError naming 'payload'."""
    env = KafkaEventEnvelope("e", "t", "s", {"x": object()}, "o", "k")  # type: ignore[dict-item]

    with pytest.raises(KafkaEnvelopeError, match="payload") as caught:
        env.to_producer_record()
    assert isinstance(caught.value.__cause__, TypeError)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "tombstone"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"event_id": "e", "payload": {}}', "'event_type' is missing"),
        (
            b'{"event_id":"e","event_type":"t","source_system":"s","payload":[]}',
            "'payload' must be a JSON object",
        ),
        (
            (
                b'{"event_id":"e","event_type":"t","source_system":"s","payload":{},'
                b'"created_at":"yesterday"}'
            ),
            "created_at",
        ),
    ],
    ids=["tombstone", "binary", "array", "missing-field", "payload-list", "bad-time"],
)
def test_poison_records_raise_decode_error_with_raw_record(
    value: bytes | None, message: str
) -> None:
    """A poison value raises EnvelopeDecodeError carrying topic, position and bytes."""
    headers = [("h", b"1")]

    with pytest.raises(EnvelopeDecodeError, match=message) as caught:
        KafkaEventEnvelope.from_consumer_record(
            "orders", 2, 77, b"k", value, headers=headers
        )

    error = caught.value
    assert (error.topic, error.partition, error.offset) == ("orders", 2, 77)
    assert (error.key, error.value, error.headers) == (b"k", value, headers)
    assert isinstance(error, ValueError)
    assert isinstance(error, _types.IntegrationError)
    assert isinstance(error.__cause__, KafkaEnvelopeError)


def test_invalid_utf8_key_is_a_decode_error(envelope: KafkaEventEnvelope) -> None:
    """A key that is not UTF-8 is reported as a poison record naming the key."""
    value = envelope.to_producer_record()["value"]

    with pytest.raises(EnvelopeDecodeError, match="key is not valid UTF-8"):
        KafkaEventEnvelope.from_consumer_record("o", 0, 0, b"\xff", value)


def test_poison_record_goes_to_dlq_with_original_bytes() -> None:
    """A decode error builds a DLQ record with the raw key and value untouched."""
    raw = b"\x00\x01not-json"

    with pytest.raises(EnvelopeDecodeError) as caught:
        KafkaEventEnvelope.from_consumer_record(
            "orders", 1, 9, b"key", raw, headers=[("trace", b"t")]
        )
    record = caught.value.dead_letter()

    assert record["topic"] == "orders.dlq"
    assert (record["key"], record["value"]) == (b"key", raw)
    assert record["headers"][0] == ("trace", b"t")
    assert ("__connect.errors.offset", b"9") in record["headers"]
    assert (
        "__connect.errors.exception.class.name",
        b"integration_automation_patterns.kafka_envelope.EnvelopeDecodeError",
    ) in record["headers"]
