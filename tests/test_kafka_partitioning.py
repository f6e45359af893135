"""murmur2 and the Java-compatible partitioner, against vectors and two clients."""

from __future__ import annotations

import json
import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest

from integration_automation_patterns.kafka_envelope import (
    KafkaEnvelopeError,
    KafkaEventEnvelope,
    murmur2,
    partition_for,
)

# kafka-python 3.0 loads its protocol schemas with a deprecated importlib call.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures/kafka/murmur2_vectors.json").read_text()
)
MURMUR_CASES = VECTORS["murmur2_vectors"]["cases"]
PARTITION_CASES = VECTORS["partition_vectors"]["cases"]


def random_keys(count: int, seed: int) -> list[bytes]:
    """Return ``count`` random keys of length 0..64."""
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(0, 64)) for _ in range(count)]


def as_signed(value: int) -> int:
    """Read an unsigned 32-bit value as a Java int."""
    return value - (1 << 32) if value & 0x80000000 else value


@pytest.mark.parametrize("case", MURMUR_CASES, ids=lambda c: c["input_utf8"])
def test_murmur2_matches_kafka_java_client_vectors(case: dict[str, Any]) -> None:
    """murmur2 returns the Java client's signed value for each UtilsTest vector."""
    assert murmur2(case["input_utf8"].encode()) == case["expected"]


@pytest.mark.parametrize("case", PARTITION_CASES, ids=lambda c: c["key_hex"] or "empty")
def test_partition_for_matches_java_partitioner_vectors(case: dict[str, Any]) -> None:
    """partition_for reproduces the Java partitioner's choice over 1000 partitions."""
    key = bytes.fromhex(case["key_hex"])

    assert (
        partition_for(key, VECTORS["partition_vectors"]["num_partitions"])
        == (case["expected_partition"])
    )


def test_murmur2_agrees_with_kafka_python_on_random_keys() -> None:
    """Our murmur2 equals kafka-python's (read as signed) on 10 000 random keys."""
    keys = random_keys(10_000, seed=2)

    mismatches = [k for k in keys if murmur2(k) != as_signed(kafka_python_murmur2(k))]

    assert mismatches == []


@pytest.mark.parametrize("num_partitions", [1, 3, 12, 1000])
def test_partition_for_agrees_with_librdkafka_murmur2(num_partitions: int) -> None:
    """partition_for equals confluent-kafka's murmur2(key, n) on 10 000 keys."""
    keys = random_keys(10_000, seed=num_partitions)

    ours = [partition_for(k, num_partitions) for k in keys]
    theirs = [confluent_kafka.murmur2(k, num_partitions) for k in keys]

    assert ours == theirs


def test_str_keys_hash_as_utf8() -> None:
    """A str key lands where its UTF-8 bytes land."""
    assert partition_for("kunde-ä-7", 24) == partition_for("kunde-ä-7".encode(), 24)


def test_result_uses_positive_mask_not_abs() -> None:
    """The sign bit is masked off (toPositive), not negated like abs()."""
    key = b"foobar"  # murmur2 is negative for this key
    assert murmur2(key) < 0

    assert partition_for(key, 1000) == (murmur2(key) & 0x7FFFFFFF) % 1000
    assert partition_for(key, 1000) != abs(murmur2(key)) % 1000


def test_envelope_partition_for_uses_its_partition_key() -> None:
    """The envelope's partition_for hashes its partition key; partition stays data."""
    envelope = KafkaEventEnvelope.create("t", "crm", {}, "orders", "cust-42")

    assert envelope.partition_for(12) == partition_for("cust-42", 12)
    assert envelope.partition is None


@pytest.mark.parametrize("bad", [0, -3, True, 2.0, "8"])
def test_partition_count_must_be_a_positive_int(bad: Any) -> None:
    """A partition count that is not a positive int is refused clearly."""
    with pytest.raises(KafkaEnvelopeError, match="num_partitions"):
        partition_for(b"k", bad)


def test_key_of_wrong_type_is_refused() -> None:
    """A key that is neither str nor bytes raises KafkaEnvelopeError."""
    with pytest.raises(KafkaEnvelopeError, match="key must be str or bytes"):
        partition_for(42, 8)  # type: ignore[arg-type]


def best_times(
    ours: Callable[[], object], theirs: Callable[[], object], repeats: int = 7
) -> tuple[float, float]:
    """Return the fastest CPU time of each, measured alternately.

    CPU time of this process, not wall time, so other work on the machine
    does not decide the comparison.
    """
    timings: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, into in ((ours, timings[0]), (theirs, timings[1])):
            started = time.process_time()
            fn()
            into.append(time.process_time() - started)
    return min(timings[0]), min(timings[1])


def test_murmur2_is_faster_than_kafka_python() -> None:
    """Our pure-Python murmur2 beats kafka-python's on keys of 0-64 bytes."""
    keys = random_keys(5_000, seed=9)

    ours, theirs = best_times(
        lambda: [murmur2(k) for k in keys],
        lambda: [kafka_python_murmur2(k) for k in keys],
    )

    assert ours < theirs, f"ours {ours:.4f}s vs kafka-python {theirs:.4f}s"
