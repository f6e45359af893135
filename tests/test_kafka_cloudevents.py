"""The CloudEvents Kafka protocol binding, checked against the cloudevents SDK."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as sdk_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from integration_automation_patterns.kafka_envelope import (
    KafkaEnvelopeError,
    KafkaEventEnvelope,
    ProducerRecord,
)

EXAMPLES: dict[str, Any] = json.loads(
    (
        Path(__file__).parent / "fixtures/kafka/cloudevents_kafka_binding_examples.json"
    ).read_text()
)
CREATED = datetime(2024, 5, 1, 12, 30, 15, 250_000, tzinfo=timezone.utc)


@pytest.fixture
def envelope() -> KafkaEventEnvelope:
    """An envelope with every attribute the binding maps."""
    return KafkaEventEnvelope(
        "evt-1",
        "com.example.order.created",
        "/crm/orders",
        {"order": 7, "total": 12.5, "tags": ["a"]},
        "orders",
        "cust-42",
        schema_version="3",
        created_at=CREATED,
        headers=[("traceparent", b"00-abc-01")],
        correlation_id="req-9",
    )


def to_sdk(record: ProducerRecord) -> sdk_kafka.KafkaMessage:
    """Hand our record to the SDK as its KafkaMessage."""
    return sdk_kafka.KafkaMessage(
        headers=dict(record["headers"]), key=record["key"], value=record["value"]
    )


def sdk_event() -> CloudEvent:
    """A CloudEvent built by the SDK, with our extensions."""
    return CloudEvent(
        {
            "id": "sdk-1",
            "type": "com.example.invoice.paid",
            "source": "/erp",
            "time": CREATED,
            "datacontenttype": "application/json",
            "partitionkey": "inv-5",
            "schemaversion": "2",
            "correlationid": "saga-3",
        },
        {"invoice": 5, "paid": True},
    )


def assert_same_event(envelope: KafkaEventEnvelope, event: Any) -> None:
    """The SDK event carries every envelope field."""
    attributes = event.get_attributes()
    assert attributes["id"] == envelope.event_id
    assert attributes["type"] == envelope.event_type
    assert attributes["source"] == envelope.source_system
    assert attributes["time"] == envelope.created_at
    assert attributes["partitionkey"] == envelope.partition_key
    assert attributes["schemaversion"] == envelope.schema_version
    assert attributes["correlationid"] == envelope.correlation_id
    assert event.get_data() == envelope.payload


def assert_from_sdk(envelope: KafkaEventEnvelope) -> None:
    """The envelope read from the SDK's record equals the SDK event."""
    assert envelope.event_id == "sdk-1"
    assert envelope.event_type == "com.example.invoice.paid"
    assert envelope.source_system == "/erp"
    assert envelope.created_at == CREATED
    assert envelope.partition_key == "inv-5"
    assert envelope.schema_version == "2"
    assert envelope.correlation_id == "saga-3"
    assert envelope.payload == {"invoice": 5, "paid": True}


def test_binary_mode_headers_follow_the_binding(envelope: KafkaEventEnvelope) -> None:
    """Binary mode: ce_ headers, content-type, JSON data, key from partitionkey."""
    record = envelope.to_cloudevents_binary()
    headers = dict(record["headers"])

    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == b"evt-1"
    assert headers["ce_time"] == b"2024-05-01T12:30:15.250000Z"
    assert headers["content-type"] == b"application/json"
    assert record["key"] == "cust-42"
    assert json.loads(record["value"]) == envelope.payload
    assert record["headers"][-1] == ("traceparent", b"00-abc-01")


def test_structured_mode_value_is_the_whole_event(envelope: KafkaEventEnvelope) -> None:
    """Structured mode: the JSON event is the value, content-type cloudevents+json."""
    record = envelope.to_cloudevents_structured()
    event = json.loads(record["value"])

    assert dict(record["headers"])["content-type"].startswith(
        b"application/cloudevents+json"
    )
    assert event["specversion"] == "1.0"
    assert event["data"] == envelope.payload
    assert record["key"] == "cust-42"


def test_sdk_reads_our_binary_record(envelope: KafkaEventEnvelope) -> None:
    """The SDK's from_binary decodes our binary-mode record into the same event."""
    event = sdk_kafka.from_binary(
        to_sdk(envelope.to_cloudevents_binary()), JSONFormat()
    )

    assert_same_event(envelope, event)


def test_sdk_reads_our_structured_record(envelope: KafkaEventEnvelope) -> None:
    """The SDK's from_structured decodes our structured record into the same event."""
    message = to_sdk(envelope.to_cloudevents_structured())

    event = sdk_kafka.from_structured(message, JSONFormat())

    assert_same_event(envelope, event)


def test_we_read_sdk_binary_output() -> None:
    """from_cloudevents_record reads the SDK's binary-mode message."""
    message = sdk_kafka.to_binary(sdk_event(), JSONFormat())

    envelope = KafkaEventEnvelope.from_cloudevents_record(
        message.key, message.value, message.headers, topic="invoices"
    )

    assert_from_sdk(envelope)
    assert envelope.topic == "invoices"


def test_we_read_sdk_structured_output() -> None:
    """from_cloudevents_record reads the SDK's structured-mode message."""
    message = sdk_kafka.to_structured(sdk_event(), JSONFormat())

    envelope = KafkaEventEnvelope.from_cloudevents_record(
        message.key, message.value, message.headers
    )

    assert_from_sdk(envelope)


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_round_trip_through_ourselves(envelope: KafkaEventEnvelope, mode: str) -> None:
    """Both modes read back into the same fields and keep non-CE headers."""
    record = (
        envelope.to_cloudevents_binary()
        if mode == "binary"
        else envelope.to_cloudevents_structured()
    )

    back = KafkaEventEnvelope.from_cloudevents_record(
        record["key"], record["value"], record["headers"], topic="orders"
    )

    assert back.to_producer_record() == envelope.to_producer_record()


def test_mode_is_chosen_by_content_type_not_by_ce_headers(
    envelope: KafkaEventEnvelope,
) -> None:
    """A structured record with stray ce_ headers is still read as structured."""
    record = envelope.to_cloudevents_structured()
    headers = [*record["headers"], ("ce_id", b"decoy")]

    back = KafkaEventEnvelope.from_cloudevents_record(
        record["key"], record["value"], headers
    )

    assert back.event_id == "evt-1"


def test_content_type_header_name_and_value_are_case_insensitive(
    envelope: KafkaEventEnvelope,
) -> None:
    """Content-Type and APPLICATION/CLOUDEVENTS+JSON still select structured mode."""
    record = envelope.to_cloudevents_structured()
    headers = [("Content-Type", b"Application/CloudEvents+JSON")]

    back = KafkaEventEnvelope.from_cloudevents_record(
        record["key"], record["value"], headers
    )

    assert back.payload == envelope.payload


def test_spec_structured_example_reads() -> None:
    """The binding spec's structured example (no data) reads with an empty payload."""
    example = EXAMPLES["structured_mode"]
    headers = {k: v.encode() for k, v in example["headers"].items()}

    envelope = KafkaEventEnvelope.from_cloudevents_record(
        example["key"],
        json.dumps(example["value_partial"]).encode(),
        headers,
        topic=example["topic"],
    )

    assert envelope.event_id == "1234-1234-1234"
    assert envelope.created_at == datetime(2018, 4, 5, 3, 56, 24, tzinfo=timezone.utc)
    assert envelope.partition_key == "mykey"
    assert envelope.payload == {}


def test_spec_binary_example_with_avro_data_is_refused_clearly() -> None:
    """The spec's binary example carries Avro data, which is not a JSON payload."""
    example = EXAMPLES["binary_mode"]
    headers = {k: v.encode() for k, v in example["headers"].items()}

    with pytest.raises(KafkaEnvelopeError, match="application/avro"):
        KafkaEventEnvelope.from_cloudevents_record(
            example["key"], b"\x02\x06abc", headers
        )


def test_binary_tombstone_reads_with_empty_payload(
    envelope: KafkaEventEnvelope,
) -> None:
    """A binary-mode record with a null value is an event without data."""
    record = envelope.to_cloudevents_binary()

    back = KafkaEventEnvelope.from_cloudevents_record(None, None, record["headers"])

    assert back.payload == {}
    assert back.partition_key == "cust-42"


@pytest.mark.parametrize(
    ("headers", "value", "message"),
    [
        ([("ce_id", b"1")], b"{}", "ce_specversion"),
        ([("ce_specversion", b"0.3"), ("ce_id", b"1")], b"{}", "specversion"),
        (
            [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_type", b"t")],
            b"{}",
            "'source' missing",
        ),
        ([("content-type", b"application/cloudevents+xml")], b"<e/>", "format"),
        ([("content-type", b"application/cloudevents+json")], b"[]", "JSON object"),
        (
            [("ce_specversion", b"1.0"), ("ce_time", b"noon")],
            b"{}",
            "attribute 'time'",
        ),
        ([("ce_specversion", b"\xff")], b"{}", "UTF-8"),
    ],
    ids=[
        "no-specversion",
        "old-specversion",
        "no-source",
        "xml-format",
        "array-event",
        "bad-time",
        "bad-utf8",
    ],
)
def test_malformed_cloudevents_raise_clear_errors(
    headers: list[tuple[str, bytes]], value: bytes, message: str
) -> None:
    """Malformed CloudEvents records raise KafkaEnvelopeError naming the fault."""
    with pytest.raises(KafkaEnvelopeError, match=message):
        KafkaEventEnvelope.from_cloudevents_record(b"k", value, headers)
