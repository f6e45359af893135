"""Debezium message parse, schema-wrapped and plain, against ``json.loads``."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.harness import Case, Contender, Target
from integration_automation_patterns.cdc_event import CDCEvent

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "cdc"
FLOOR = "floor (json.loads)"


def message(name: str) -> bytes:
    """Return a Debezium fixture as the compact bytes a Kafka record carries."""
    document = json.loads((FIXTURES / "debezium" / name).read_text(encoding="utf-8"))
    return json.dumps(document, separators=(",", ":")).encode()


def cases(scale: float = 1.0) -> list[Case]:
    """Return one case per shape: with the JsonConverter schema, and without."""
    return [
        _case(
            "Debezium parse, schema-wrapped",
            message("pg_create_schema_wrapped.json"),
            "PostgreSQL create with `schemas.enable=true`: the value carries its"
            " Connect schema beside the payload",
        ),
        _case(
            "Debezium parse, plain",
            message("pg_update_replica_identity_default.json"),
            "PostgreSQL update without the schema wrapper",
        ),
    ]


def _case(name: str, raw: bytes, what: str) -> Case:
    contenders: dict[str, Contender] = {
        FLOOR: lambda: json.loads(raw),
        "ours": lambda: CDCEvent.from_debezium(raw),
    }
    return Case(
        name,
        contenders,
        targets=[Target(FLOOR, 1.5)],
        number=2_000,
        note=f"{what} ({len(raw)} bytes); ours is `CDCEvent.from_debezium(raw)`.",
    )
