"""CloudEvents structured JSON, out (envelope to bytes) and in (bytes to envelope).

The floor is ``json.dumps``/``json.loads`` of the same event document: what any
implementation pays before it adds mapping and validation.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from benchmarks._peers import optional
from benchmarks.harness import Case, Contender, Target
from integration_automation_patterns.event_envelope import EventEnvelope

FLOOR_OUT = "floor (json.dumps)"
FLOOR_IN = "floor (json.loads)"
SDK = "cloudevents SDK"
SDK_WRITE = "cloudevents SDK (write only)"


def payload() -> dict[str, Any]:
    """Return a typical CRM event payload of about half a kilobyte."""
    return {
        "account_id": "ACC-001234",
        "name": "Example Industries",
        "owner": {"id": 42, "email": "owner@example.com"},
        "lines": [{"sku": f"SKU-{i}", "qty": i, "price": 9.5 * i} for i in range(6)],
        "tags": ["priority", "emea", "renewal"],
        "active": True,
    }


def envelope() -> EventEnvelope:
    """Return the envelope both directions use."""
    return EventEnvelope(
        event_id="018f2a4e-8c3b-7a10-9d2e-1f2a3b4c5d6e",
        event_type="crm.account.updated",
        source_system="/crm/accounts",
        payload=payload(),
        correlation_id="corr-7",
        created_at=datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=timezone.utc),
    )


def cases(scale: float = 1.0) -> list[Case]:
    """Return the two cases: structured JSON out, and in."""
    source = envelope()
    document = source.to_cloudevent()
    raw = json.dumps(document).encode()
    return [_out(source, document), _in(raw)]


def _out(source: EventEnvelope, document: dict[str, Any]) -> Case:
    contenders: dict[str, Contender] = {
        FLOOR_OUT: lambda: json.dumps(document).encode(),
        "ours": source.to_cloudevent_json,
    }
    sdk = _sdk()
    if sdk is not None:
        event_class, json_format = sdk
        attributes = {k: v for k, v in document.items() if k != "data"}
        attributes["time"] = source.created_at
        event = event_class(dict(attributes), source.payload)
        contenders[SDK] = lambda: json_format.write(
            event_class(dict(attributes), source.payload)
        )
        contenders[SDK_WRITE] = lambda: json_format.write(event)
    return Case(
        "CloudEvents structured JSON out",
        contenders,
        targets=_targets(contenders, FLOOR_OUT),
        number=2_000,
        note=(
            "From the event in memory to UTF-8 JSON bytes. Ours is"
            " `envelope.to_cloudevent_json()`: it checks the required"
            " attributes, quotes them with the C escaper and serialises only"
            " the payload generically. The SDK checks attributes"
            " when a `CloudEvent` is built, so its like-for-like path is"
            " `JSONFormat().write(CloudEvent(attributes, data))`; `write only`"
            " times `write` of an event built beforehand. The floor is"
            " `json.dumps` of the finished document."
        ),
    )


def _in(raw: bytes) -> Case:
    contenders: dict[str, Contender] = {
        FLOOR_IN: lambda: json.loads(raw),
        "ours": lambda: EventEnvelope.from_cloudevent(json.loads(raw)),
    }
    sdk = _sdk()
    if sdk is not None:
        _, json_format = sdk
        contenders[SDK] = lambda: json_format.read(None, raw)
    return Case(
        "CloudEvents structured JSON in",
        contenders,
        targets=_targets(contenders, FLOOR_IN),
        number=2_000,
        note=(
            "From UTF-8 JSON bytes to a validated event object: ours is"
            " `EventEnvelope.from_cloudevent(json.loads(raw))`, the SDK"
            " `JSONFormat().read(None, raw)`, the floor `json.loads`."
        ),
    )


def _targets(contenders: dict[str, Contender], floor: str) -> list[Target]:
    targets = [Target(floor, 1.5)]
    if SDK in contenders:
        targets.insert(0, Target(SDK, 0.5))
    return targets


def _sdk() -> tuple[Any, Any] | None:
    event = optional("cloudevents.core.v1.event")
    formats = optional("cloudevents.core.formats.json")
    if event is None or formats is None:
        return None
    return event.CloudEvent, formats.JSONFormat()
