"""Bad-input fuzzing of the Kafka envelope's decoders and dead-letter context."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from integration_automation_patterns.kafka_envelope import (
    DeadLetterContext,
    EnvelopeDecodeError,
    KafkaEnvelopeError,
    KafkaEventEnvelope,
    from_wire_format,
    to_wire_format,
)
from tests.reliability.fuzzing import fuzz_target
from tests.reliability.sizes import auxiliary, examples

header_lists = st.lists(
    st.tuples(st.text(max_size=12), st.one_of(st.none(), st.binary(max_size=16))),
    max_size=6,
)
json_objects = st.dictionaries(
    st.sampled_from(
        [
            "event_id",
            "event_type",
            "source_system",
            "payload",
            "schema_version",
            "created_at",
            "correlation_id",
            "partition_key",
            "dead_letter_reason",
        ]
    ),
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(max_size=20),
        st.just("2024-01-01T00:00:00Z"),
        st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
        st.lists(st.integers(), max_size=3),
    ),
)
values = st.one_of(
    st.none(),
    st.binary(max_size=200),
    json_objects.map(lambda d: json.dumps(d).encode()),
)


@fuzz_target(
    "kafka_envelope",
    "from_consumer_record, random records",
    counts_toward="kafka_envelope from_consumer_record",
)
@settings(max_examples=examples(), deadline=None, database=None)
@given(
    key=st.one_of(st.none(), st.binary(max_size=16)),
    value=values,
    headers=header_lists,
)
def test_from_consumer_record_raises_only_decode_errors(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]]
) -> None:
    """Random records either decode or raise EnvelopeDecodeError with the raw value."""
    error: EnvelopeDecodeError | None = None
    try:
        envelope = KafkaEventEnvelope.from_consumer_record(
            "orders", 0, 1, key, value, headers=headers
        )
    except EnvelopeDecodeError as exc:
        error = exc

    if error is None:
        assert isinstance(envelope.payload, dict)
    else:
        assert (error.key, error.value) == (key, value)


@fuzz_target(
    "kafka_envelope",
    "from_wire_format, random frames",
    counts_toward="kafka_envelope from_wire_format",
)
@settings(max_examples=examples(), deadline=None, database=None)
@given(data=st.binary(max_size=64))
@example(data=b"\x00\x80\x00\x00\x00")
@example(data=b"\x00\x7f\xff\xff\xff")
def test_from_wire_format_raises_only_envelope_errors(data: bytes) -> None:
    """Frames round-trip, or are short, of another magic or a negative id."""
    try:
        schema_id, payload = from_wire_format(data)
    except KafkaEnvelopeError:
        assert len(data) < 5 or data[0] != 0 or data[1] >= 0x80
        return
    assert to_wire_format(schema_id, payload) == data


@fuzz_target("kafka_envelope", "from_cloudevents_record, random records")
@settings(max_examples=auxiliary(5_000), deadline=None, database=None)
@given(key=st.one_of(st.none(), st.binary(max_size=16)), value=values, h=header_lists)
def test_from_cloudevents_record_raises_only_envelope_errors(
    key: bytes | None, value: bytes | None, h: list[tuple[str, bytes | None]]
) -> None:
    """Random CloudEvents records decode or raise KafkaEnvelopeError."""
    headers = [*h, ("ce_specversion", b"1.0"), ("ce_id", b"i"), ("ce_type", b"t")]
    try:
        KafkaEventEnvelope.from_cloudevents_record(key, value, headers)
    except KafkaEnvelopeError:
        return


@fuzz_target("kafka_envelope", "DeadLetterContext.from_headers, random headers")
@settings(max_examples=auxiliary(5_000), deadline=None, database=None)
@given(headers=header_lists)
def test_dead_letter_context_reader_raises_only_envelope_errors(
    headers: list[tuple[str, bytes | None]],
) -> None:
    """Random context headers are read or raise KafkaEnvelopeError."""
    names = ["__connect.errors.topic", "kafka_dlt-original-offset"]
    try:
        DeadLetterContext.from_headers([(names[len(headers) % 2], b"x"), *headers])
    except KafkaEnvelopeError:
        return


optional_text = st.one_of(st.none(), st.text(max_size=30))
partitions = st.one_of(st.none(), st.integers(0, 2**31 - 1))
longs = st.one_of(st.none(), st.integers(0, 2**63 - 1))
connect_contexts = st.builds(
    DeadLetterContext,
    topic=st.text(max_size=30),
    partition=partitions,
    offset=longs,
    exception_class=st.text(max_size=30),
    exception_message=optional_text,
    stacktrace=optional_text,
)
spring_contexts = st.builds(
    DeadLetterContext,
    topic=st.text(max_size=30),
    partition=partitions,
    offset=longs,
    exception_class=st.text(max_size=30),
    exception_message=optional_text,
    stacktrace=optional_text,
    timestamp_ms=longs,
    consumer_group=optional_text,
)


@fuzz_target("kafka_envelope", "dead-letter context, Connect round trips")
@settings(max_examples=auxiliary(), deadline=None, database=None)
@given(context=connect_contexts)
def test_connect_context_round_trips(context: DeadLetterContext) -> None:
    """Any Connect-style context survives writing and reading its headers."""
    assert DeadLetterContext.from_headers(context.to_headers("connect")) == context


@fuzz_target("kafka_envelope", "dead-letter context, Spring round trips")
@settings(max_examples=auxiliary(), deadline=None, database=None)
@given(context=spring_contexts)
def test_spring_context_round_trips(context: DeadLetterContext) -> None:
    """Any Spring-style context survives writing and reading its headers."""
    assert DeadLetterContext.from_headers(context.to_headers("spring")) == context
