"""murmur2 partitioning: the Java client's default partitioner for keyed records."""

from __future__ import annotations

import random

from benchmarks._peers import optional
from benchmarks.harness import Case, Contender, Target
from integration_automation_patterns.kafka_envelope import murmur2, partition_for

PARTITIONS = 12


def keys(count: int = 100) -> list[bytes]:
    """Return typical record keys: ids of 8 to 40 bytes."""
    rng = random.Random(20240501)
    return [
        f"customer-{rng.randrange(10**12)}".encode()[: rng.randint(8, 40)]
        for _ in range(count)
    ]


def cases(scale: float = 1.0) -> list[Case]:
    """Return the hash and the partition choice, ours against kafka-python's."""
    batch = keys()
    hashes: dict[str, Contender] = {"ours": lambda: [murmur2(k) for k in batch]}
    picks: dict[str, Contender] = {
        "ours": lambda: [partition_for(k, PARTITIONS) for k in batch]
    }

    default = optional("kafka.partitioner.default")
    if default is not None:
        theirs = default.murmur2
        hashes["kafka-python"] = lambda: [theirs(k) for k in batch]
        picks["kafka-python"] = lambda: [
            (theirs(k) & 0x7FFFFFFF) % PARTITIONS for k in batch
        ]

    targets = [Target("kafka-python", 1.0)] if default is not None else []
    return [
        Case(
            "murmur2 hash",
            hashes,
            targets=targets,
            number=100,
            items=len(batch),
            unit="100 keys",
            item_unit="key",
            note="murmur2 of 100 keys of 8 to 40 bytes per call.",
        ),
        Case(
            "murmur2 partitioning",
            picks,
            targets=list(targets),
            number=100,
            items=len(batch),
            unit="100 keys",
            item_unit="key",
            note=(
                f"The partition of 100 keys among {PARTITIONS}: ours is"
                " `partition_for(key, n)` (with its argument checks),"
                " kafka-python's is its `DefaultPartitioner` arithmetic around"
                " `murmur2`."
            ),
        ),
    ]
