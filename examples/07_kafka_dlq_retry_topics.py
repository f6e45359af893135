"""Kafka retry topics and a dead-letter topic, on in-memory topics.

Four payment events are produced to ``payments`` as Kafka envelopes (key =
account, so each account keeps its partition). The consumer's handler fails
in three ways. A transient failure goes to ``payments.retry.1``, then
``.retry.2``, each consumed only after its delay (``RetryTopics`` writes the
attempt and not-before time in headers) until it succeeds. A failure that
never clears goes through every retry topic, then to ``payments.dlq``. An
invalid payment is permanent, so it goes to the DLQ at once, and a value that
is not an envelope at all (a poison record) is dead-lettered with its raw
bytes untouched. Every DLQ record carries Kafka Connect's error headers,
read back with ``DeadLetterContext``. A ``ManualClock`` serves the delays.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from integration_automation_patterns._types import JSONObject, ManualClock
from integration_automation_patterns.kafka_envelope import (
    DeadLetterContext,
    EnvelopeDecodeError,
    KafkaEventEnvelope,
    KafkaRecord,
    RetryTopics,
)


class TransientError(Exception):
    """The ledger service timed out; worth another try later."""


class InvalidPaymentError(Exception):
    """The payment can never be processed."""


def make_handler() -> Any:
    attempts: Counter[str] = Counter()

    def handle(envelope: KafkaEventEnvelope) -> None:
        payment = envelope.payload
        amount = payment["amount"]
        attempts[envelope.event_id] += 1
        if not isinstance(amount, (int, float)) or amount <= 0:
            raise InvalidPaymentError(f"amount must be positive: {amount}")
        if payment["ledger"] == "flaky" and attempts[envelope.event_id] < 3:
            raise TransientError("ledger timed out")
        if payment["ledger"] == "down":
            raise TransientError("ledger unreachable")

    return handle


def main() -> dict[str, Any]:
    clock = ManualClock(start=1_700_000_000.0)
    retry = RetryTopics("payments", delays=(1.0, 10.0, 60.0), clock=clock)
    topics: dict[str, list[KafkaRecord]] = defaultdict(list)
    handle = make_handler()

    for account, amount, ledger in [
        ("acc-1", 10, "ok"),
        ("acc-2", 20, "flaky"),
        ("acc-3", 30, "down"),
        ("acc-4", -5, "ok"),
    ]:
        payment: JSONObject = {"amount": amount, "ledger": ledger}
        envelope = KafkaEventEnvelope.create(
            "payment.requested", "billing", payment, "payments", account
        )
        produced = envelope.to_producer_record()
        topics["payments"].append(
            KafkaRecord(
                topic=produced["topic"],
                key=produced["key"].encode(),
                value=produced["value"],
                headers=produced["headers"],
            )
        )
    topics["payments"].append(
        KafkaRecord(topic="payments", key=b"acc-5", value=b"\xff not json", headers=[])
    )

    processed: list[str] = []
    waits: list[float] = []
    order = ["payments", *retry.retry_topics]
    offsets: Counter[str] = Counter()
    while any(offsets[t] < len(topics[t]) for t in order):
        for topic in order:
            while offsets[topic] < len(topics[topic]):
                record = topics[topic][offsets[topic]]
                offset = offsets[topic]
                offsets[topic] += 1
                waits.append(retry.remaining_delay(record["headers"]))
                clock.advance(waits[-1])  # a real consumer pauses the partition
                outcome = consume(record, offset, handle, retry)
                if outcome is None:
                    processed.append(record["key"].decode() if record["key"] else "")
                    print(f"  {topic:<18} {record['key']!r} processed")
                else:
                    topics[outcome["topic"]].append(outcome)
                    print(f"  {topic:<18} {record['key']!r} -> {outcome['topic']}")

    dead = [
        DeadLetterContext.from_headers(r["headers"]) for r in topics[retry.dlq_topic]
    ]
    for record, context in zip(topics[retry.dlq_topic], dead, strict=True):
        print(
            f"  DLQ {record['key']!r}: {context.exception_class.rsplit('.', 1)[-1]}"
            f" from {context.topic}: {context.exception_message}"
        )
    return {
        "processed": processed,
        "dlq_keys": [r["key"] for r in topics[retry.dlq_topic]],
        "dlq_contexts": dead,
        "dlq_values": [r["value"] for r in topics[retry.dlq_topic]],
        "topic_sizes": {t: len(r) for t, r in topics.items()},
        "waits": [w for w in waits if w],
    }


def consume(
    record: KafkaRecord, offset: int, handle: Any, retry: RetryTopics
) -> KafkaRecord | None:
    """Process one record; return the record to produce next, or None when done."""
    try:
        envelope = KafkaEventEnvelope.from_consumer_record(
            record["topic"],
            0,
            offset,
            record["key"],
            record["value"],
            headers=record["headers"],
        )
    except EnvelopeDecodeError as poison:
        return poison.dead_letter(topic=retry.dlq_topic)
    try:
        handle(envelope)
    except InvalidPaymentError as exc:
        return envelope.dead_letter(exc, topic=retry.dlq_topic)
    except TransientError as exc:
        return retry.route(
            exc,
            record["key"],
            record["value"],
            record["headers"],
            partition=0,
            offset=offset,
        )
    return None


if __name__ == "__main__":
    main()
