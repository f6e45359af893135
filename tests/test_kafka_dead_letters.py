"""Dead-letter records, retry topics and Schema Registry framing."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.kafka_envelope import (
    DeadLetterContext,
    KafkaEnvelopeError,
    KafkaEventEnvelope,
    RetryTopics,
    from_wire_format,
    to_wire_format,
)

FIXTURES = Path(__file__).parent / "fixtures/kafka"
DLQ: dict[str, Any] = json.loads((FIXTURES / "dlq_headers.json").read_text())
WIRE: dict[str, Any] = json.loads(
    (FIXTURES / "schema_registry_wire_vectors.json").read_text()
)


def failure() -> ValueError:
    """Return a raised-and-caught error, so it has a traceback."""
    try:
        raise ValueError("total must be positive")
    except ValueError as exc:
        return exc


@pytest.fixture
def consumed() -> KafkaEventEnvelope:
    """An envelope read from partition 4, offset 981 of 'orders'."""
    record = KafkaEventEnvelope.create(
        "order.created", "crm", {"total": -1}, "orders", "cust-1"
    ).to_producer_record()
    return KafkaEventEnvelope.from_consumer_record(
        "orders",
        4,
        981,
        record["key"],
        record["value"],
        headers=[*record["headers"], ("trace", b"t-1"), ("trace", b"t-2")],
    )


def test_connect_style_dead_letter(consumed: KafkaEventEnvelope) -> None:
    """Connect style: original bytes kept, __connect.errors.* headers as text."""
    raw = consumed._raw
    assert raw is not None

    record = consumed.dead_letter(failure())
    headers = dict(record["headers"])

    assert record["topic"] == "orders.dlq"
    assert (record["key"], record["value"]) == (raw["key"], raw["value"])
    assert record["headers"][: len(raw["headers"])] == raw["headers"]
    assert headers["__connect.errors.topic"] == b"orders"
    assert headers["__connect.errors.partition"] == b"4"
    assert headers["__connect.errors.offset"] == b"981"
    assert headers["__connect.errors.exception.class.name"] == b"builtins.ValueError"
    assert headers["__connect.errors.exception.message"] == b"total must be positive"
    assert b"Traceback" in headers["__connect.errors.exception.stacktrace"]


def test_connect_header_names_match_the_fixture(consumed: KafkaEventEnvelope) -> None:
    """Every Connect header we write is one Kafka Connect documents."""
    documented = set(DLQ["kafka_connect"]["headers"])

    record = consumed.dead_letter(failure())

    written = {n for n, _ in record["headers"] if n.startswith("__connect.")}
    assert written <= documented
    assert len(written) == 6


def test_spring_style_dead_letter_uses_binary_integers(
    consumed: KafkaEventEnvelope,
) -> None:
    """Spring style: kafka_dlt-* names, 4-byte partition and 8-byte offset."""
    record = consumed.dead_letter(failure(), header_style="spring", topic="orders-dlt")
    headers = dict(record["headers"])

    assert record["topic"] == "orders-dlt"
    assert headers["kafka_dlt-original-partition"] == (4).to_bytes(4, "big")
    assert headers["kafka_dlt-original-offset"] == (981).to_bytes(8, "big")
    assert headers["kafka_dlt-exception-fqcn"] == b"builtins.ValueError"
    assert {n for n, _ in record["headers"] if n.startswith("kafka_dlt-")} <= set(
        DLQ["spring_kafka_dlt"]["headers"]
    )


def test_dead_letter_overrides_position_and_logs_error(
    consumed: KafkaEventEnvelope, caplog: pytest.LogCaptureFixture
) -> None:
    """Explicit partition/offset win, and dead-lettering logs at ERROR."""
    with caplog.at_level(logging.ERROR):
        record = consumed.dead_letter(failure(), partition=1, offset=2)

    context = DeadLetterContext.from_headers(record["headers"])
    assert (context.partition, context.offset) == (1, 2)
    assert caplog.records[-1].levelno == logging.ERROR
    assert caplog.records[-1].__dict__["event_id"] == consumed.event_id


def test_unconsumed_envelope_dead_letters_its_producer_record() -> None:
    """An envelope never consumed dead-letters the bytes it would have produced."""
    envelope = KafkaEventEnvelope.create("t", "s", {"a": 1}, "orders", "k")

    record = envelope.dead_letter(failure())

    assert record["value"] == envelope.to_producer_record()["value"]


def test_dead_lettering_twice_replaces_the_context(
    consumed: KafkaEventEnvelope,
) -> None:
    """A second dead-letter keeps one set of context headers, the newest."""
    first = consumed.dead_letter(failure())
    again = KafkaEventEnvelope.from_consumer_record(
        first["topic"], 0, 5, first["key"], first["value"], headers=first["headers"]
    )

    second = again.dead_letter(RuntimeError("still broken"))
    names = [n for n, _ in second["headers"] if n == "__connect.errors.topic"]

    assert names == ["__connect.errors.topic"]
    context = DeadLetterContext.from_headers(second["headers"])
    assert (context.topic, context.exception_message) == ("orders.dlq", "still broken")


@pytest.mark.parametrize("style", ["connect", "spring"])
def test_context_round_trips_through_headers(style: Any) -> None:
    """DeadLetterContext -> headers -> DeadLetterContext is the identity."""
    context = DeadLetterContext(
        topic="orders",
        partition=2**31 - 1,
        offset=2**40,
        exception_class="com.example.BadRecord",
        exception_message="ünïcode",
        stacktrace="at x\nat y",
        timestamp_ms=1_700_000_000_000 if style == "spring" else None,
        consumer_group="billing" if style == "spring" else None,
    )

    assert DeadLetterContext.from_headers(context.to_headers(style)) == context


def test_reads_connect_null_message() -> None:
    """Connect may write a null exception message; it reads back as empty text."""
    headers = [
        ("__connect.errors.topic", b"t"),
        ("__connect.errors.exception.class.name", b"java.lang.NullPointerException"),
        ("__connect.errors.exception.message", None),
    ]

    context = DeadLetterContext.from_headers(headers)

    assert context.exception_message == ""
    assert context.exception_class == "java.lang.NullPointerException"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([("other", b"x")], "no dead-letter context"),
        ([("__connect.errors.topic", b"t")], "exception.class.name"),
        (
            [
                ("kafka_dlt-original-topic", b"t"),
                ("kafka_dlt-exception-fqcn", b"E"),
                ("kafka_dlt-original-offset", b"\x00\x01"),
            ],
            "8-byte",
        ),
        (
            [
                ("__connect.errors.topic", b"t"),
                ("__connect.errors.exception.class.name", b"E"),
                ("__connect.errors.partition", b"four"),
            ],
            "decimal",
        ),
    ],
    ids=["none", "missing-class", "short-offset", "text-partition"],
)
def test_malformed_context_headers_are_named(
    headers: list[tuple[str, bytes]], message: str
) -> None:
    """Bad or missing context headers raise KafkaEnvelopeError naming them."""
    with pytest.raises(KafkaEnvelopeError, match=message):
        DeadLetterContext.from_headers(headers)


def test_unknown_header_style_is_refused(consumed: KafkaEventEnvelope) -> None:
    """Only 'connect' and 'spring' are header styles."""
    with pytest.raises(KafkaEnvelopeError, match="header_style"):
        consumed.dead_letter(failure(), header_style="kafka")  # type: ignore[arg-type]


# -- retry topics -----------------------------------------------------------


def test_retry_topics_route_then_dead_letter(clock: ManualClock) -> None:
    """Each failure moves the record one retry topic on; after the last, the DLQ."""
    topics = RetryTopics("orders", delays=(5, 60), clock=clock)
    headers: list[tuple[str, bytes]] = [("trace", b"t")]

    first = topics.route(failure(), b"k", b"v", headers)
    second = topics.route(failure(), b"k", b"v", first["headers"], partition=0)
    third = topics.route(failure(), b"k", b"v", second["headers"], offset=8)

    assert [first["topic"], second["topic"], third["topic"]] == [
        "orders.retry.1",
        "orders.retry.2",
        "orders.dlq",
    ]
    assert topics.attempts(second["headers"]) == 2
    assert (third["key"], third["value"]) == (b"k", b"v")
    assert DeadLetterContext.from_headers(third["headers"]).topic == "orders.retry.2"
    assert [v for n, v in third["headers"] if n == "trace"] == [b"t"]


def test_remaining_delay_counts_down_with_the_clock(clock: ManualClock) -> None:
    """A retry record must wait its delay; the wait shrinks as time passes."""
    topics = RetryTopics("orders", delays=(30,), clock=clock)
    record = topics.route(failure(), None, b"v")

    assert topics.remaining_delay(record["headers"]) == pytest.approx(30)
    clock.advance(20)
    assert topics.remaining_delay(record["headers"]) == pytest.approx(10)
    clock.advance(15)
    assert topics.remaining_delay(record["headers"]) == 0.0


def test_first_delivery_has_no_attempts_or_wait(clock: ManualClock) -> None:
    """A record without retry headers has had 0 attempts and need not wait."""
    topics = RetryTopics("orders", clock=clock)

    assert topics.attempts([]) == 0
    assert topics.remaining_delay({}) == 0.0
    assert topics.retry_topics == ("orders.retry.1", "orders.retry.2", "orders.retry.3")
    assert topics.dlq_topic == "orders.dlq"


def test_no_delays_goes_straight_to_custom_dlq(clock: ManualClock) -> None:
    """With no delays and a custom suffix the first failure is dead-lettered."""
    topics = RetryTopics("orders", delays=(), dlq_suffix="-dlt", clock=clock)

    assert topics.route(failure(), b"k", b"v")["topic"] == "orders-dlt"


@pytest.mark.parametrize("delays", [(-1,), (float("nan"),), (True,), ("5",)])
def test_bad_delays_are_refused(delays: Any) -> None:
    """Negative, non-finite or non-numeric delays raise KafkaEnvelopeError."""
    with pytest.raises(KafkaEnvelopeError, match="delays"):
        RetryTopics("orders", delays=delays)


def test_bad_attempt_header_is_named(clock: ManualClock) -> None:
    """A corrupt retry-attempt header raises an error naming it."""
    topics = RetryTopics("orders", clock=clock)

    with pytest.raises(KafkaEnvelopeError, match="retry-attempt"):
        topics.attempts([("retry-attempt", b"many")])


# -- Schema Registry framing ----------------------------------------------


def test_wire_format_header_vector() -> None:
    """Schema id 1 frames as 00 00000001."""
    vector = WIRE["prefix_format_v0"]["vectors"][0]

    assert to_wire_format(vector["schema_id"], b"") == bytes.fromhex(
        vector["header_hex"]
    )


def test_wire_format_avro_message_vector() -> None:
    """The Avro message vector splits into schema 1337 and its payload."""
    vector = WIRE["prefix_format_v0"]["vectors"][1]
    message = bytes.fromhex(vector["message_hex"])

    schema_id, payload = from_wire_format(message)

    assert schema_id == vector["schema_id"]
    assert payload == bytes.fromhex("08666f6f6f")
    assert to_wire_format(schema_id, payload) == message


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"", "0 bytes"),
        (b"\x00\x00\x01", "3 bytes"),
        (b'{"a":1}', "magic byte 0x7b"),
        (bytes.fromhex("0189791762233641869674299b90a802e2"), "magic byte 0x01"),
    ],
    ids=["empty", "short", "json", "guid-framing"],
)
def test_bad_frames_raise_clear_errors(frame: bytes, message: str) -> None:
    """Short frames and wrong magic bytes raise KafkaEnvelopeError."""
    with pytest.raises(KafkaEnvelopeError, match=message):
        from_wire_format(frame)


@pytest.mark.parametrize("schema_id", [-1, 2**31, True])
def test_schema_id_must_fit_32_bits(schema_id: int) -> None:
    """Schema ids outside 0..2**31-1 (or bools) are refused."""
    with pytest.raises(KafkaEnvelopeError, match="schema_id"):
        to_wire_format(schema_id, b"x")
