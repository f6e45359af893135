"""Code written against the 0.2.0 API keeps working, with the same results.

Each test pins one behaviour a 0.2.0 caller could rely on: a default, a
positional order, a return value, a counting rule, a text format. Tests marked
``xfail(strict=True)`` pin a 0.2.0 behaviour this version does not keep yet;
their reason says what changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import inspect
import json
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import integration_automation_patterns as package
from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.cdc_event import (
    CDCEvent,
    CDCOperation,
    CDCSourceMetadata,
)
from integration_automation_patterns.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerStats,
    CircuitOpenError,
    CircuitState,
)
from integration_automation_patterns.event_envelope import (
    DeliveryStatus,
    EventEnvelope,
    RetryPolicy,
)
from integration_automation_patterns.kafka_envelope import KafkaEventEnvelope
from integration_automation_patterns.outbox import OutboxProcessor, OutboxRecord
from integration_automation_patterns.saga import (
    SagaOrchestrator,
    SagaResult,
    SagaStep,
)
from integration_automation_patterns.sync_boundary import (
    RecordAuthority,
    SyncBoundary,
    SyncConflict,
)
from integration_automation_patterns.webhook_handler import (
    WebhookEvent,
    WebhookHandler,
    WebhookReplayError,
    WebhookSignatureError,
)

UTC = timezone.utc
FIXED_TIME = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

# -- API shape ----------------------------------------------------------------

ANY = object()
"""Marks a parameter whose default is not compared (a factory, or required)."""

REQUIRED = inspect.Parameter.empty

POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)

# The positional parameters of every 0.2.0 callable, in order, with defaults.
SIGNATURES_0_2_0: list[tuple[str, Callable[..., Any], list[tuple[str, object]]]] = [
    (
        "RetryPolicy",
        RetryPolicy,
        [
            ("max_attempts", 3),
            ("backoff_seconds", 30),
            ("exponential", True),
            ("max_backoff_seconds", 3600),
        ],
    ),
    (
        "EventEnvelope",
        EventEnvelope,
        [
            ("event_id", REQUIRED),
            ("event_type", REQUIRED),
            ("source_system", REQUIRED),
            ("payload", REQUIRED),
            ("correlation_id", ""),
            ("schema_version", "1.0"),
            ("created_at", ANY),
            ("status", DeliveryStatus.PENDING),
            ("attempt_count", 0),
            ("retry_policy", ANY),
            ("tags", ANY),
        ],
    ),
    ("EventEnvelope.mark_skipped", EventEnvelope.mark_skipped, [("reason", "")]),
    (
        "SyncConflict",
        SyncConflict,
        [
            ("field_name", REQUIRED),
            ("value_a", REQUIRED),
            ("value_b", REQUIRED),
            ("record_id", REQUIRED),
            ("last_sync_value", None),
            ("detected_at", ANY),
            ("system_a_modified_at", None),
            ("system_b_modified_at", None),
        ],
    ),
    (
        "SyncBoundary",
        SyncBoundary,
        [
            ("record_type", REQUIRED),
            ("system_a_id", REQUIRED),
            ("system_b_id", REQUIRED),
            ("field_authority", ANY),
            ("excluded_fields", ANY),
            ("allow_system_b_override", False),
        ],
    ),
    (
        "SyncBoundary.detect_conflict",
        SyncBoundary.detect_conflict,
        [
            ("field_name", REQUIRED),
            ("value_a", REQUIRED),
            ("value_b", REQUIRED),
            ("record_id", REQUIRED),
            ("last_sync_value", None),
            ("system_a_modified_at", None),
            ("system_b_modified_at", None),
        ],
    ),
    (
        "CircuitOpenError",
        CircuitOpenError,
        [("name", REQUIRED), ("retry_after", REQUIRED)],
    ),
    (
        "CircuitBreakerStats",
        CircuitBreakerStats,
        [
            ("name", REQUIRED),
            ("state", REQUIRED),
            ("failure_count", REQUIRED),
            ("success_count", REQUIRED),
            ("last_failure_time", REQUIRED),
            ("last_state_change_time", REQUIRED),
        ],
    ),
    (
        "CircuitBreaker",
        CircuitBreaker,
        [
            ("name", REQUIRED),
            ("failure_threshold", 5),
            ("recovery_timeout", 60.0),
            ("success_threshold", 1),
            ("expected_exceptions", (Exception,)),
        ],
    ),
    (
        "SagaStep",
        SagaStep,
        [("name", REQUIRED), ("action", REQUIRED), ("compensate", ANY)],
    ),
    (
        "SagaResult",
        SagaResult,
        [
            ("succeeded", REQUIRED),
            ("failed_step", None),
            ("error", None),
            ("completed_steps", ANY),
            ("compensated_steps", ANY),
            ("step_results", ANY),
        ],
    ),
    ("SagaOrchestrator", SagaOrchestrator, [("name", REQUIRED)]),
    (
        "SagaOrchestrator.add_step",
        SagaOrchestrator.add_step,
        [("name", REQUIRED), ("action", REQUIRED), ("compensate", ANY)],
    ),
    (
        "OutboxRecord",
        OutboxRecord,
        [
            ("aggregate_id", REQUIRED),
            ("event_type", REQUIRED),
            ("payload", REQUIRED),
            ("record_id", ANY),
            ("created_at", ANY),
            ("published_at", None),
            ("attempt_count", 0),
            ("last_error", None),
        ],
    ),
    (
        "OutboxRecord.create",
        OutboxRecord.create,
        [("aggregate_id", REQUIRED), ("event_type", REQUIRED), ("payload", REQUIRED)],
    ),
    (
        "OutboxProcessor",
        OutboxProcessor,
        [
            ("fetch_pending", REQUIRED),
            ("publish", REQUIRED),
            ("mark_published", REQUIRED),
            ("mark_failed", None),
        ],
    ),
    (
        "OutboxProcessor.process_batch",
        OutboxProcessor.process_batch,
        [("batch_size", 100)],
    ),
    (
        "KafkaEventEnvelope",
        KafkaEventEnvelope,
        [
            ("event_id", REQUIRED),
            ("event_type", REQUIRED),
            ("source_system", REQUIRED),
            ("payload", REQUIRED),
            ("topic", REQUIRED),
            ("partition_key", REQUIRED),
            ("schema_version", "1.0"),
            ("created_at", ANY),
            ("headers", ANY),
            ("partition", None),
            ("offset", None),
            ("dead_letter_reason", None),
        ],
    ),
    (
        "KafkaEventEnvelope.create",
        KafkaEventEnvelope.create,
        [
            ("event_type", REQUIRED),
            ("source_system", REQUIRED),
            ("payload", REQUIRED),
            ("topic", REQUIRED),
            ("partition_key", REQUIRED),
            ("schema_version", "1.0"),
            ("headers", None),
        ],
    ),
    (
        "KafkaEventEnvelope.from_consumer_record",
        KafkaEventEnvelope.from_consumer_record,
        [
            ("topic", REQUIRED),
            ("partition", REQUIRED),
            ("offset", REQUIRED),
            ("key", REQUIRED),
            ("value", REQUIRED),
        ],
    ),
    (
        "KafkaEventEnvelope.mark_dead_letter",
        KafkaEventEnvelope.mark_dead_letter,
        [("reason", REQUIRED)],
    ),
    (
        "WebhookEvent",
        WebhookEvent,
        [
            ("event_id", REQUIRED),
            ("event_type", REQUIRED),
            ("payload", REQUIRED),
            ("received_at", ANY),
            ("raw", b""),
        ],
    ),
    (
        "WebhookHandler",
        WebhookHandler,
        [
            ("secret", REQUIRED),
            ("tolerance_seconds", 300.0),
            ("timestamp_field", "timestamp"),
            ("id_field", "id"),
            ("type_field", "type"),
        ],
    ),
    (
        "WebhookHandler.parse",
        WebhookHandler.parse,
        [("payload", REQUIRED), ("signature_header", REQUIRED)],
    ),
    (
        "CDCSourceMetadata",
        CDCSourceMetadata,
        [
            ("database", REQUIRED),
            ("schema", REQUIRED),
            ("table", REQUIRED),
            ("connector", "unknown"),
            ("lsn", None),
            ("server_id", None),
        ],
    ),
    (
        "CDCEvent",
        CDCEvent,
        [
            ("operation", REQUIRED),
            ("source", REQUIRED),
            ("before", None),
            ("after", None),
            ("event_id", ANY),
            ("captured_at", ANY),
            ("transaction_id", None),
        ],
    ),
]

RENAMED_PARAMETERS: list[tuple[str, Callable[..., Any], list[tuple[str, object]]]] = [
    (
        "RetryPolicy.wait_seconds_for_attempt",
        RetryPolicy.wait_seconds_for_attempt,
        [("attempt_number", REQUIRED)],
    ),
    (
        "RetryPolicy.is_exhausted",
        RetryPolicy.is_exhausted,
        [("attempt_number", REQUIRED)],
    ),
]


def positional_parameters(target: Callable[..., Any]) -> list[tuple[str, object]]:
    """Return the parameters a caller may pass by position or by name."""
    parameters = list(inspect.signature(target).parameters.values())
    if parameters and parameters[0].name in {"self", "cls"}:
        parameters = parameters[1:]
    return [
        (p.name, p.default)
        for p in parameters
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]


def assert_signature_keeps(
    target: Callable[..., Any], expected: list[tuple[str, object]]
) -> None:
    """Assert the 0.2.0 parameters lead the signature, same names and defaults."""
    actual = positional_parameters(target)[: len(expected)]

    assert [name for name, _ in actual] == [name for name, _ in expected]
    for (name, default), (_, wanted) in zip(actual, expected, strict=True):
        if wanted is not ANY:
            assert default == wanted, name


@pytest.mark.parametrize(
    ("target", "expected"),
    [pytest.param(t, e, id=name) for name, t, e in SIGNATURES_0_2_0],
)
def test_signature_keeps_0_2_0_parameters(
    target: Callable[..., Any], expected: list[tuple[str, object]]
) -> None:
    """Every 0.2.0 parameter keeps its name, position and default."""
    assert_signature_keeps(target, expected)


@pytest.mark.parametrize(
    ("target", "expected"),
    [pytest.param(t, e, id=name) for name, t, e in RENAMED_PARAMETERS],
)
def test_renamed_parameter_still_accepts_its_0_2_0_keyword(
    target: Callable[..., Any], expected: list[tuple[str, object]]
) -> None:
    """Parameters 0.2.0 callers could pass by keyword keep their 0.2.0 names."""
    assert_signature_keeps(target, expected)


NAMES_AT_ROOT_0_2_0 = [
    "CDCEvent",
    "CDCOperation",
    "CDCSourceMetadata",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "DeliveryStatus",
    "EventEnvelope",
    "KafkaEventEnvelope",
    "OutboxProcessor",
    "OutboxRecord",
    "RecordAuthority",
    "RetryPolicy",
    "SagaOrchestrator",
    "SagaResult",
    "SagaStep",
    "SyncBoundary",
    "SyncConflict",
    "WebhookEvent",
    "WebhookHandler",
    "WebhookReplayError",
    "WebhookSignatureError",
]


@pytest.mark.parametrize("name", NAMES_AT_ROOT_0_2_0)
def test_package_root_exports_0_2_0_name(name: str) -> None:
    """``from integration_automation_patterns import X`` works for 0.2.0 names."""
    assert name in package.__all__
    assert getattr(package, name) is not None


@pytest.mark.parametrize(
    ("enum_type", "values"),
    [
        (
            DeliveryStatus,
            {
                "PENDING": "pending",
                "DISPATCHED": "dispatched",
                "ACKNOWLEDGED": "acknowledged",
                "PROCESSED": "processed",
                "RETRYING": "retrying",
                "FAILED": "failed",
                "SKIPPED": "skipped",
            },
        ),
        (
            RecordAuthority,
            {
                "SYSTEM_A": "system_a",
                "SYSTEM_B": "system_b",
                "SHARED": "shared",
                "MANUAL": "manual",
            },
        ),
        (
            CircuitState,
            {"CLOSED": "closed", "OPEN": "open", "HALF_OPEN": "half_open"},
        ),
        (
            CDCOperation,
            {
                "INSERT": "INSERT",
                "UPDATE": "UPDATE",
                "DELETE": "DELETE",
                "SNAPSHOT": "SNAPSHOT",
                "TRUNCATE": "TRUNCATE",
            },
        ),
    ],
)
def test_enum_members_keep_their_0_2_0_values(
    enum_type: Any, values: dict[str, str]
) -> None:
    """Every 0.2.0 enum member exists with its 0.2.0 value."""
    for name, value in values.items():
        assert enum_type[name].value == value
        assert enum_type(value) is enum_type[name]


# -- event_envelope -----------------------------------------------------------


def envelope(**fields: Any) -> EventEnvelope:
    """Return an envelope built the 0.2.0 way, with keyword fields."""
    base: dict[str, Any] = {
        "event_id": "evt-001",
        "event_type": "crm.contact.updated",
        "source_system": "crm",
        "payload": {"contact_id": "C-1"},
    }
    return EventEnvelope(**{**base, **fields})


def status_of(event: EventEnvelope) -> DeliveryStatus:
    """Read the status afresh (keeps type checkers from narrowing it)."""
    return event.status


def test_envelope_defaults_match_0_2_0() -> None:
    """A new envelope is PENDING with no attempts, an empty correlation and tags."""
    before = datetime.now(UTC)
    event = envelope()
    after = datetime.now(UTC)

    assert event.status is DeliveryStatus.PENDING
    assert event.attempt_count == 0
    assert event.correlation_id == ""
    assert event.schema_version == "1.0"
    assert event.tags == {}
    assert event.retry_policy == RetryPolicy()
    assert before <= event.created_at <= after
    assert event.created_at.utcoffset() == timedelta(0)


def test_envelope_takes_its_fields_by_position() -> None:
    """The constructor accepts every 0.2.0 field by position, in 0.2.0 order."""
    policy = RetryPolicy(5)
    event = EventEnvelope(
        "e",
        "t",
        "s",
        {"k": 1},
        "corr",
        "2.0",
        FIXED_TIME,
        DeliveryStatus.RETRYING,
        2,
        policy,
        {"region": "eu"},
    )

    assert event.correlation_id == "corr"
    assert event.schema_version == "2.0"
    assert event.created_at == FIXED_TIME
    assert event.status is DeliveryStatus.RETRYING
    assert event.attempt_count == 2
    assert event.retry_policy is policy
    assert event.tags == {"region": "eu"}


def test_envelopes_do_not_share_tags() -> None:
    """Each envelope gets its own tags dict."""
    first, second = envelope(), envelope()
    first.mark_skipped("duplicate")

    assert second.tags == {}


def test_mark_dispatched_counts_every_attempt() -> None:
    """Each dispatch, redeliveries included, adds one to attempt_count."""
    event = envelope()
    event.mark_dispatched()
    event.mark_dispatched()

    assert event.status is DeliveryStatus.DISPATCHED
    assert event.attempt_count == 2


def test_happy_path_reaches_processed() -> None:
    """Dispatch, acknowledge, process: PROCESSED is terminal, one attempt made."""
    event = envelope()
    event.mark_dispatched()
    event.mark_acknowledged()
    assert status_of(event) is DeliveryStatus.ACKNOWLEDGED
    assert not event.is_terminal()

    event.mark_processed()

    assert status_of(event) is DeliveryStatus.PROCESSED
    assert event.is_terminal()
    assert event.attempt_count == 1


def test_mark_failed_retries_until_attempts_reach_max_attempts() -> None:
    """With max_attempts=3, failures after attempts 1 and 2 retry; after 3, FAILED."""
    event = envelope()
    seen: list[DeliveryStatus] = []
    for _ in range(3):
        event.mark_dispatched()
        event.mark_failed()
        seen.append(event.status)

    assert seen == [
        DeliveryStatus.RETRYING,
        DeliveryStatus.RETRYING,
        DeliveryStatus.FAILED,
    ]
    assert event.attempt_count == 3
    assert event.is_terminal()


def test_mark_failed_compares_attempt_count_not_failures() -> None:
    """mark_failed counts dispatches: three dispatches then one failure is FAILED."""
    event = envelope()
    for _ in range(3):
        event.mark_dispatched()

    event.mark_failed()

    assert event.status is DeliveryStatus.FAILED


def test_mark_failed_after_acknowledged_retries() -> None:
    """A failure after acknowledgement is still retried within the budget."""
    event = envelope()
    event.mark_dispatched()
    event.mark_acknowledged()

    event.mark_failed()

    assert event.status is DeliveryStatus.RETRYING


def test_single_attempt_policy_fails_at_once() -> None:
    """With max_attempts=1 the first failure is final."""
    event = envelope(retry_policy=RetryPolicy(max_attempts=1))
    event.mark_dispatched()

    event.mark_failed()

    assert event.status is DeliveryStatus.FAILED


def test_mark_skipped_keeps_reason_in_tags() -> None:
    """mark_skipped(reason) is terminal and stores tags['skip_reason']."""
    event = envelope()
    event.mark_skipped(reason="duplicate")

    assert event.status is DeliveryStatus.SKIPPED
    assert event.is_terminal()
    assert event.tags == {"skip_reason": "duplicate"}


def test_mark_skipped_without_reason_adds_no_tag() -> None:
    """mark_skipped() with no reason leaves the tags alone."""
    event = envelope()
    event.mark_skipped()

    assert event.status is DeliveryStatus.SKIPPED
    assert "skip_reason" not in event.tags


def test_next_retry_wait_uses_attempt_count_as_exponent() -> None:
    """While RETRYING the wait is backoff * 2**attempt_count: 60 s, then 120 s."""
    event = envelope(retry_policy=RetryPolicy(max_attempts=5))
    waits: list[int] = []
    for _ in range(2):
        event.mark_dispatched()
        event.mark_failed()
        waits.append(event.next_retry_wait_seconds())

    assert waits == [60, 120]
    assert all(type(w) is int for w in waits)


@pytest.mark.parametrize("steps", [[], ["dispatch"], ["dispatch", "ack"]])
def test_next_retry_wait_is_zero_unless_retrying(steps: list[str]) -> None:
    """Outside RETRYING, next_retry_wait_seconds() is 0."""
    event = envelope()
    for step in steps:
        event.mark_dispatched() if step == "dispatch" else event.mark_acknowledged()

    assert event.next_retry_wait_seconds() == 0


def test_next_retry_wait_is_zero_once_failed() -> None:
    """A FAILED event has nothing to wait for."""
    event = envelope(retry_policy=RetryPolicy(max_attempts=1))
    event.mark_dispatched()
    event.mark_failed()

    assert event.next_retry_wait_seconds() == 0


@pytest.mark.parametrize(
    ("policy", "attempt", "wait"),
    [
        (RetryPolicy(), 0, 30),
        (RetryPolicy(), 1, 60),
        (RetryPolicy(), 7, 3600),
        (RetryPolicy(backoff_seconds=10, max_backoff_seconds=9999), 2, 40),
        (RetryPolicy(backoff_seconds=10, max_backoff_seconds=50), 10, 50),
        (RetryPolicy(backoff_seconds=10, exponential=False), 0, 10),
        (RetryPolicy(backoff_seconds=10, exponential=False), 5, 10),
        (RetryPolicy(), 10_000, 3600),
    ],
)
def test_wait_seconds_for_attempt(policy: RetryPolicy, attempt: int, wait: int) -> None:
    """Waits are backoff * 2**n capped, or fixed when not exponential, as ints."""
    result = policy.wait_seconds_for_attempt(attempt)

    assert result == wait
    assert type(result) is int


def test_fixed_wait_is_not_capped() -> None:
    """0.2.0 returned backoff_seconds unchanged when exponential=False."""
    policy = RetryPolicy(backoff_seconds=100, exponential=False, max_backoff_seconds=50)

    assert policy.wait_seconds_for_attempt(0) == 100


@pytest.mark.parametrize(("attempts", "exhausted"), [(0, False), (2, False), (3, True)])
def test_is_exhausted_at_max_attempts(attempts: int, exhausted: bool) -> None:
    """is_exhausted(n) is n >= max_attempts."""
    assert RetryPolicy(max_attempts=3).is_exhausted(attempts) is exhausted


def test_audit_line_format_is_exact() -> None:
    """to_audit_line() is the 0.2.0 line, field for field."""
    event = envelope(correlation_id="corr-1", created_at=FIXED_TIME)
    event.mark_dispatched()

    assert event.to_audit_line() == (
        "[INTEGRATION_EVENT] event_id=evt-001 type=crm.contact.updated "
        "source=crm status=dispatched attempts=1 correlation=corr-1 "
        "schema=1.0 created=2024-01-02T03:04:05+00:00"
    )


def test_audit_line_says_none_without_correlation() -> None:
    """An empty correlation id prints as correlation=none."""
    assert "correlation=none " in envelope().to_audit_line()


# -- sync_boundary ------------------------------------------------------------


def boundary(**fields: Any) -> SyncBoundary:
    """Return a contact boundary between a CRM (A) and an ERP (B)."""
    base: dict[str, Any] = {
        "record_type": "contact",
        "system_a_id": "crm",
        "system_b_id": "erp",
        "field_authority": {
            "email": RecordAuthority.SYSTEM_A,
            "billing_address": RecordAuthority.SYSTEM_B,
            "status": RecordAuthority.SYSTEM_A,
            "notes": RecordAuthority.MANUAL,
            "phone": RecordAuthority.SHARED,
            "internal_notes": RecordAuthority.SYSTEM_A,
        },
        "excluded_fields": {"internal_notes"},
    }
    return SyncBoundary(**{**base, **fields})


def test_boundary_defaults() -> None:
    """A bare boundary maps nothing, excludes nothing and allows no B override."""
    bare = SyncBoundary("contact", "crm", "erp")

    assert bare.field_authority == {}
    assert bare.excluded_fields == set()
    assert bare.allow_system_b_override is False
    assert bare.synced_fields() == []


@pytest.mark.parametrize(
    ("field_name", "owner"),
    [
        ("email", RecordAuthority.SYSTEM_A),
        ("billing_address", RecordAuthority.SYSTEM_B),
        ("notes", RecordAuthority.MANUAL),
        ("phone", RecordAuthority.SHARED),
        ("internal_notes", None),
        ("unknown", None),
    ],
)
def test_authority_for(field_name: str, owner: RecordAuthority | None) -> None:
    """authority_for is the mapped owner; None for excluded or unmapped fields."""
    assert boundary().authority_for(field_name) is owner


@pytest.mark.parametrize(
    ("field_name", "synced"),
    [("email", True), ("notes", True), ("internal_notes", False), ("unknown", False)],
)
def test_is_synced(field_name: str, synced: bool) -> None:
    """is_synced is True for mapped, non-excluded fields, MANUAL included."""
    assert boundary().is_synced(field_name) is synced


def test_synced_fields_keep_mapping_order() -> None:
    """synced_fields lists mapped fields in mapping order, without exclusions."""
    assert boundary().synced_fields() == [
        "email",
        "billing_address",
        "status",
        "notes",
        "phone",
    ]


def test_fields_owned_by() -> None:
    """fields_owned_by lists a system's non-excluded fields in mapping order."""
    sync = boundary()

    assert sync.fields_owned_by(RecordAuthority.SYSTEM_A) == ["email", "status"]
    assert sync.fields_owned_by(RecordAuthority.SYSTEM_B) == ["billing_address"]
    assert sync.fields_owned_by(RecordAuthority.MANUAL) == ["notes"]


def test_boundary_sees_fields_mapped_after_construction() -> None:
    """Editing field_authority after construction takes effect at once."""
    sync = boundary()
    sync.field_authority["fax"] = RecordAuthority.SYSTEM_B

    assert sync.authority_for("fax") is RecordAuthority.SYSTEM_B
    assert sync.detect_conflict("fax", "1", "2", "r") is not None


def test_equal_values_never_conflict() -> None:
    """Equal values are no conflict, whatever the last synced value."""
    assert boundary().detect_conflict("email", "a@x", "a@x", "r", "old@x") is None


def test_first_sync_difference_is_a_conflict() -> None:
    """Without last_sync_value, any difference is reported as a conflict."""
    conflict = boundary().detect_conflict("email", "a@x", "b@x", "rec-1")

    assert isinstance(conflict, SyncConflict)
    assert conflict.last_sync_value is None


@pytest.mark.parametrize(
    ("value_a", "value_b"), [("new@x", "old@x"), ("old@x", "new@x")]
)
def test_one_sided_change_is_no_conflict(value_a: str, value_b: str) -> None:
    """When only one system moved from last_sync_value there is no conflict."""
    assert boundary().detect_conflict("email", value_a, value_b, "r", "old@x") is None


def test_both_sides_changed_is_a_conflict_with_every_value() -> None:
    """A two-sided change returns a conflict carrying all arguments, by position."""
    at_a, at_b = FIXED_TIME, FIXED_TIME + timedelta(seconds=5)
    before = datetime.now(UTC)

    conflict = boundary().detect_conflict(
        "email", "a@x", "b@x", "rec-42", "old@x", at_a, at_b
    )

    assert conflict is not None
    assert (conflict.field_name, conflict.record_id) == ("email", "rec-42")
    assert (conflict.value_a, conflict.value_b) == ("a@x", "b@x")
    assert conflict.last_sync_value == "old@x"
    assert conflict.system_a_modified_at == at_a
    assert conflict.system_b_modified_at == at_b
    assert conflict.last_writer() is RecordAuthority.SYSTEM_B
    assert before <= conflict.detected_at <= datetime.now(UTC)


@pytest.mark.parametrize("field_name", ["internal_notes", "unknown"])
def test_unsynced_fields_never_conflict(field_name: str) -> None:
    """Excluded and unmapped fields never conflict."""
    assert boundary().detect_conflict(field_name, "a", "b", "r") is None


def test_manual_fields_conflict_like_any_other() -> None:
    """detect_conflict does not special-case MANUAL or SHARED fields."""
    sync = boundary()

    assert sync.detect_conflict("notes", "a", "b", "r") is not None
    assert sync.detect_conflict("phone", "a", "b", "r", "c") is not None


@pytest.mark.parametrize(
    ("at_a", "at_b", "writer"),
    [
        (FIXED_TIME + timedelta(seconds=1), FIXED_TIME, RecordAuthority.SYSTEM_A),
        (FIXED_TIME, FIXED_TIME + timedelta(seconds=1), RecordAuthority.SYSTEM_B),
        (FIXED_TIME, FIXED_TIME, None),
        (FIXED_TIME, None, None),
        (None, FIXED_TIME, None),
    ],
)
def test_last_writer(
    at_a: datetime | None, at_b: datetime | None, writer: RecordAuthority | None
) -> None:
    """last_writer is the later system; None on a tie or a missing timestamp."""
    conflict = SyncConflict(
        "email",
        "a",
        "b",
        "r",
        system_a_modified_at=at_a,
        system_b_modified_at=at_b,
    )

    assert conflict.last_writer() is writer


def test_conflict_defaults() -> None:
    """A hand-built conflict has no base, no timestamps and detected_at of now."""
    before = datetime.now(UTC)
    conflict = SyncConflict("email", "a", "b", "r")

    assert conflict.last_sync_value is None
    assert conflict.system_a_modified_at is None
    assert conflict.system_b_modified_at is None
    assert before <= conflict.detected_at <= datetime.now(UTC)


# -- circuit_breaker ----------------------------------------------------------


class Downstream:
    """A fake dependency that fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False

    def __call__(self, value: int = 1) -> int:
        self.calls += 1
        if self.failing:
            raise ConnectionError("downstream unavailable")
        return value


def trip(breaker: CircuitBreaker, times: int) -> None:
    """Make ``times`` failing calls through ``breaker``."""

    def failing() -> None:
        raise ConnectionError("down")

    for _ in range(times):
        with pytest.raises(ConnectionError):
            breaker.execute(failing)


def state_of(breaker: CircuitBreaker) -> CircuitState:
    """Read the state afresh (keeps type checkers from narrowing it)."""
    return breaker.state


def test_breaker_defaults() -> None:
    """A breaker trips after 5 failures, recovers after 60 s, needs 1 probe."""
    breaker = CircuitBreaker("crm")

    assert breaker.name == "crm"
    assert breaker.failure_threshold == 5
    assert breaker.recovery_timeout == 60.0
    assert breaker.success_threshold == 1
    assert breaker.expected_exceptions == (Exception,)
    assert state_of(breaker) is CircuitState.CLOSED


def test_fresh_stats() -> None:
    """A fresh breaker reports CLOSED with zero counters and no failure time."""
    stats = CircuitBreaker("crm").stats()

    assert isinstance(stats, CircuitBreakerStats)
    assert (stats.name, stats.state) == ("crm", CircuitState.CLOSED)
    assert (stats.failure_count, stats.success_count) == (0, 0)
    assert stats.last_failure_time is None


def test_execute_forwards_arguments_and_returns_the_result() -> None:
    """execute(fn, *args, **kwargs) returns fn's value."""
    breaker = CircuitBreaker("crm")

    def add(a: int, b: int = 0) -> int:
        return a + b

    assert breaker.execute(add, 2, b=3) == 5


def test_execute_reraises_the_same_exception() -> None:
    """The function's exception reaches the caller unchanged."""
    breaker = CircuitBreaker("crm")
    error = ConnectionError("down")

    def failing() -> None:
        raise error

    with pytest.raises(ConnectionError) as caught:
        breaker.execute(failing)

    assert caught.value is error


def test_trips_after_exactly_failure_threshold_consecutive_failures() -> None:
    """threshold - 1 failures keep it CLOSED; the threshold-th opens it."""
    breaker = CircuitBreaker("crm", failure_threshold=3)
    trip(breaker, 2)
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().failure_count == 2

    trip(breaker, 1)

    assert state_of(breaker) is CircuitState.OPEN


def test_success_resets_the_failure_streak() -> None:
    """A success while CLOSED resets failure_count, so failures must be consecutive."""
    breaker = CircuitBreaker("crm", failure_threshold=3)
    trip(breaker, 2)
    breaker.execute(lambda: None)
    assert breaker.stats().failure_count == 0

    trip(breaker, 2)

    assert state_of(breaker) is CircuitState.CLOSED


def test_open_breaker_refuses_without_calling(clock: ManualClock) -> None:
    """OPEN raises CircuitOpenError (a RuntimeError) and never runs fn."""
    breaker = CircuitBreaker("crm", failure_threshold=1, clock=clock)
    trip(breaker, 1)
    clock.advance(10)
    downstream = Downstream()

    with pytest.raises(CircuitOpenError) as caught:
        breaker.execute(downstream)

    assert isinstance(caught.value, RuntimeError)
    assert downstream.calls == 0
    assert caught.value.name == "crm"
    assert caught.value.retry_after == pytest.approx(50.0)
    assert str(caught.value) == "Circuit 'crm' is OPEN. Retry after 50.0s."


def test_open_error_can_be_raised_by_callers() -> None:
    """CircuitOpenError(name, retry_after) builds the 0.2.0 message."""
    error = CircuitOpenError("erp", 12.345)

    assert (error.name, error.retry_after) == ("erp", 12.345)
    assert str(error) == "Circuit 'erp' is OPEN. Retry after 12.3s."


def test_half_open_exactly_at_recovery_timeout(clock: ManualClock) -> None:
    """OPEN becomes HALF_OPEN once recovery_timeout has elapsed, not before."""
    breaker = CircuitBreaker(
        "crm", failure_threshold=1, recovery_timeout=30, clock=clock
    )
    trip(breaker, 1)
    clock.advance(29.9)
    assert state_of(breaker) is CircuitState.OPEN

    clock.advance(0.1)

    assert state_of(breaker) is CircuitState.HALF_OPEN


def test_zero_recovery_timeout_probes_at_once() -> None:
    """With recovery_timeout=0 the breaker is HALF_OPEN right after tripping."""
    breaker = CircuitBreaker("crm", failure_threshold=1, recovery_timeout=0)
    trip(breaker, 1)

    assert state_of(breaker) is CircuitState.HALF_OPEN


def test_successful_probe_closes(clock: ManualClock) -> None:
    """One successful probe (success_threshold=1) closes the breaker."""
    breaker = CircuitBreaker("crm", failure_threshold=2, clock=clock)
    trip(breaker, 2)
    clock.advance(60)

    assert breaker.execute(lambda: "ok") == "ok"

    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().failure_count == 0


def test_failed_probe_reopens_for_a_full_timeout(clock: ManualClock) -> None:
    """One failed probe reopens the breaker; recovery counts from that failure."""
    breaker = CircuitBreaker("crm", failure_threshold=3, clock=clock)
    trip(breaker, 3)
    clock.advance(60)
    assert state_of(breaker) is CircuitState.HALF_OPEN

    trip(breaker, 1)

    assert state_of(breaker) is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as caught:
        breaker.execute(lambda: None)
    assert caught.value.retry_after == pytest.approx(60.0)
    clock.advance(60)
    assert state_of(breaker) is CircuitState.HALF_OPEN


def test_success_threshold_needs_that_many_probes(clock: ManualClock) -> None:
    """With success_threshold=2 the first good probe leaves it HALF_OPEN."""
    breaker = CircuitBreaker(
        "crm", failure_threshold=1, success_threshold=2, clock=clock
    )
    trip(breaker, 1)
    clock.advance(60)

    breaker.execute(lambda: None)
    assert state_of(breaker) is CircuitState.HALF_OPEN
    breaker.execute(lambda: None)

    assert state_of(breaker) is CircuitState.CLOSED


def test_unexpected_exceptions_pass_through_uncounted() -> None:
    """Exceptions outside expected_exceptions neither count nor reset the streak."""
    breaker = CircuitBreaker(
        "crm", failure_threshold=2, expected_exceptions=(ConnectionError,)
    )

    def bad_input() -> None:
        raise KeyError("bad input")

    trip(breaker, 1)
    for _ in range(3):
        with pytest.raises(KeyError):
            breaker.execute(bad_input)
    assert breaker.stats().failure_count == 1

    trip(breaker, 1)

    assert state_of(breaker) is CircuitState.OPEN


def test_unexpected_exception_in_half_open_keeps_probing(clock: ManualClock) -> None:
    """An uncounted exception during HALF_OPEN leaves the breaker HALF_OPEN."""
    breaker = CircuitBreaker(
        "crm", failure_threshold=1, expected_exceptions=(ConnectionError,), clock=clock
    )
    trip(breaker, 1)
    clock.advance(60)

    def bad_input() -> None:
        raise KeyError("bad input")

    with pytest.raises(KeyError):
        breaker.execute(bad_input)

    assert state_of(breaker) is CircuitState.HALF_OPEN


def test_decorator_protects_and_keeps_name_and_doc() -> None:
    """@breaker.call returns fn's value, keeps its name and doc, counts failures."""
    breaker = CircuitBreaker("crm", failure_threshold=1)
    downstream = Downstream()

    @breaker.call
    def fetch(value: int) -> int:
        """Fetch a value."""
        return downstream(value)

    assert fetch(7) == 7
    assert (fetch.__name__, fetch.__doc__) == ("fetch", "Fetch a value.")
    downstream.failing = True
    with pytest.raises(ConnectionError):
        fetch(1)
    with pytest.raises(CircuitOpenError):
        fetch(1)
    assert downstream.calls == 2


def test_stats_track_streak_successes_and_times(clock: ManualClock) -> None:
    """stats() reports the streak, successes, last failure and last change times."""
    breaker = CircuitBreaker("crm", failure_threshold=2, clock=clock)
    for _ in range(3):
        breaker.execute(lambda: None)
    clock.advance(5)
    trip(breaker, 1)

    stats = breaker.stats()
    assert (stats.failure_count, stats.success_count) == (1, 3)
    assert stats.last_failure_time == clock.monotonic()

    clock.advance(5)
    trip(breaker, 1)

    stats = breaker.stats()
    assert stats.state is CircuitState.OPEN
    assert stats.failure_count == 2
    assert stats.last_state_change_time == clock.monotonic()


def test_reset_closes_and_clears_counters(clock: ManualClock) -> None:
    """reset() closes an OPEN breaker with zero failure and success counts."""
    breaker = CircuitBreaker("crm", failure_threshold=1, clock=clock)
    trip(breaker, 1)
    clock.advance(1)

    breaker.reset()

    stats = breaker.stats()
    assert state_of(breaker) is CircuitState.CLOSED
    assert (stats.failure_count, stats.success_count) == (0, 0)
    assert stats.last_state_change_time == clock.monotonic()
    assert breaker.execute(lambda: 1) == 1


def test_reset_forgets_the_last_failure_time(clock: ManualClock) -> None:
    """0.2.0's reset() set last_failure_time back to None."""
    breaker = CircuitBreaker("crm", failure_threshold=1, clock=clock)
    trip(breaker, 1)

    breaker.reset()

    assert breaker.stats().last_failure_time is None


def test_success_count_after_recovery_counts_the_probes(clock: ManualClock) -> None:
    """0.2.0 counted successes from the start of HALF_OPEN, across the close."""
    breaker = CircuitBreaker("crm", failure_threshold=1, clock=clock)
    trip(breaker, 1)
    clock.advance(60)

    breaker.execute(lambda: None)

    assert breaker.stats().success_count == 1


# -- saga ---------------------------------------------------------------------


class Ledger:
    """Records the order in which saga actions and compensations run."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def step(self, label: str, result: Any = None) -> Callable[[], Any]:
        """Return a zero-argument callable that records ``label``."""

        def run() -> Any:
            self.entries.append(label)
            return result

        return run

    def failing(self, label: str, error: Exception) -> Callable[[], Any]:
        """Return a zero-argument callable that records ``label`` then raises."""

        def run() -> Any:
            self.entries.append(label)
            raise error

        return run


def test_saga_success_reports_every_step() -> None:
    """A saga whose steps all succeed reports them and their results, in order."""
    ledger = Ledger()
    saga = SagaOrchestrator("order")
    saga.add_step(
        "reserve", ledger.step("reserve", {"hold": 1}), ledger.step("release")
    )
    saga.add_step("charge", ledger.step("charge"), ledger.step("refund"))

    result = saga.execute()

    assert isinstance(result, SagaResult)
    assert result.succeeded is True
    assert (result.failed_step, result.error) == (None, None)
    assert result.completed_steps == ["reserve", "charge"]
    assert result.compensated_steps == []
    assert result.step_results == {"reserve": {"hold": 1}, "charge": None}
    assert ledger.entries == ["reserve", "charge"]


def test_saga_failure_compensates_completed_steps_in_reverse() -> None:
    """A failing step stops the saga; earlier steps are undone last-first."""
    ledger = Ledger()
    error = RuntimeError("card declined")
    saga = (
        SagaOrchestrator("order")
        .add_step("reserve", ledger.step("reserve", 1), ledger.step("release"))
        .add_step("invoice", ledger.step("invoice", 2), ledger.step("void"))
        .add_step("charge", ledger.failing("charge", error), ledger.step("refund"))
        .add_step("ship", ledger.step("ship"), ledger.step("recall"))
    )

    result = saga.execute()

    assert result.succeeded is False
    assert result.failed_step == "charge"
    assert result.error is error
    assert result.completed_steps == ["reserve", "invoice"]
    assert result.compensated_steps == ["invoice", "reserve"]
    assert result.step_results == {"reserve": 1, "invoice": 2}
    assert ledger.entries == ["reserve", "invoice", "charge", "void", "release"]


def test_first_step_failure_compensates_nothing() -> None:
    """When the first step fails there is nothing to compensate."""
    ledger = Ledger()
    saga = SagaOrchestrator("order").add_step(
        "reserve", ledger.failing("reserve", ValueError("x")), ledger.step("release")
    )

    result = saga.execute()

    assert (result.succeeded, result.failed_step) == (False, "reserve")
    assert result.completed_steps == result.compensated_steps == []
    assert ledger.entries == ["reserve"]


def test_failed_compensation_does_not_stop_the_others(clock: ManualClock) -> None:
    """A compensation that raises is left out; earlier ones still run."""
    ledger = Ledger()
    saga = (
        SagaOrchestrator("order", clock=clock)
        .add_step("reserve", ledger.step("reserve"), ledger.step("release"))
        .add_step("invoice", ledger.step("invoice"), ledger.failing("void", OSError()))
        .add_step("charge", ledger.failing("charge", RuntimeError()), ledger.step("x"))
    )

    result = saga.execute()

    assert result.failed_step == "charge"
    assert isinstance(result.error, RuntimeError)
    assert result.compensated_steps == ["reserve"]
    assert ledger.entries[-1] == "release"


class Shutdown(BaseException):
    """A BaseException that is not an Exception, like KeyboardInterrupt."""


def test_base_exception_from_a_step_propagates_uncompensated() -> None:
    """Only Exception fails a step; a BaseException escapes execute() as is."""
    ledger = Ledger()

    def interrupted() -> None:
        raise Shutdown

    saga = (
        SagaOrchestrator("order")
        .add_step("reserve", ledger.step("reserve"), ledger.step("release"))
        .add_step("charge", interrupted, ledger.step("refund"))
    )

    with pytest.raises(Shutdown):
        saga.execute()

    assert ledger.entries == ["reserve"]


def test_saga_runs_again_on_every_execute() -> None:
    """Each execute() runs the steps afresh and returns a new result."""
    ledger = Ledger()
    saga = SagaOrchestrator("order").add_step(
        "reserve", ledger.step("reserve"), ledger.step("release")
    )

    first, second = saga.execute(), saga.execute()

    assert first is not second
    assert ledger.entries == ["reserve", "reserve"]
    assert second.completed_steps == ["reserve"]


def test_empty_saga_succeeds() -> None:
    """A saga with no steps succeeds with nothing completed."""
    result = SagaOrchestrator("noop").execute()

    assert result.succeeded is True
    assert result.completed_steps == []


def test_saga_step_and_result_are_plain_records() -> None:
    """SagaStep and SagaResult build by position, the 0.2.0 way."""
    action, compensate = (lambda: 1), (lambda: None)
    step = SagaStep("reserve", action, compensate)
    first, second = SagaResult(False), SagaResult(False)
    first.completed_steps.append("x")

    assert (step.name, step.action, step.compensate) == ("reserve", action, compensate)
    assert (first.failed_step, first.error) == (None, None)
    assert second.completed_steps == []
    assert second.compensated_steps == []
    assert second.step_results == {}


# -- outbox -------------------------------------------------------------------


def test_outbox_record_create() -> None:
    """create() gives a pending record with a fresh id, UTC time and no errors."""
    before = datetime.now(UTC)
    record = OutboxRecord.create("acct-1", "AccountUpdated", {"status": "active"})
    other = OutboxRecord.create("acct-1", "AccountUpdated", {})

    assert (record.aggregate_id, record.event_type) == ("acct-1", "AccountUpdated")
    assert record.payload == {"status": "active"}
    assert record.record_id != other.record_id
    assert before <= record.created_at <= datetime.now(UTC)
    assert record.published_at is None
    assert (record.attempt_count, record.last_error) == (0, None)
    assert record.is_pending is True


def test_published_record_is_not_pending() -> None:
    """A record with published_at set is no longer pending."""
    record = OutboxRecord("a", "E", {}, published_at=FIXED_TIME)

    assert record.is_pending is False


def test_to_event_dict_is_the_0_2_0_event() -> None:
    """to_event_dict has exactly the 0.2.0 keys and survives json.dumps."""
    record = OutboxRecord("acct-1", "AccountUpdated", {"n": 1}, "rec-1", FIXED_TIME)

    event = record.to_event_dict()

    assert event == {
        "record_id": "rec-1",
        "aggregate_id": "acct-1",
        "event_type": "AccountUpdated",
        "payload": {"n": 1},
        "created_at": "2024-01-02T03:04:05+00:00",
    }
    assert json.loads(json.dumps(event)) == event


class FakeOutbox:
    """The three storage callables of an OutboxProcessor, recording their calls."""

    def __init__(self, records: list[OutboxRecord]) -> None:
        self.records = records
        self.asked: list[int] = []
        self.published: list[str] = []
        self.failures: list[tuple[str, str, int]] = []

    def fetch_pending(self, batch_size: int) -> list[OutboxRecord]:
        """Return up to ``batch_size`` records."""
        self.asked.append(batch_size)
        return self.records[:batch_size]

    def mark_published(self, record_id: str) -> None:
        """Remember that ``record_id`` was published."""
        self.published.append(record_id)

    def mark_failed(self, record_id: str, error: str, attempt: int) -> None:
        """Remember a failed publish."""
        self.failures.append((record_id, error, attempt))


def test_process_batch_publishes_every_record() -> None:
    """Each record's event dict is published, then its id marked published."""
    records = [OutboxRecord.create(f"a{i}", "E", {"i": i}) for i in range(3)]
    outbox = FakeOutbox(records)
    sent: list[dict[str, Any]] = []
    processor = OutboxProcessor(
        outbox.fetch_pending, sent.append, outbox.mark_published
    )

    assert processor.process_batch() == (3, 0)
    assert outbox.asked == [100]
    assert sent == [r.to_event_dict() for r in records]
    assert outbox.published == [r.record_id for r in records]


def test_process_batch_passes_batch_size() -> None:
    """process_batch(batch_size) asks fetch_pending for that many records."""
    outbox = FakeOutbox([OutboxRecord.create(f"a{i}", "E", {}) for i in range(5)])
    processor = OutboxProcessor(
        outbox.fetch_pending, lambda _: None, outbox.mark_published
    )

    assert processor.process_batch(batch_size=2) == (2, 0)
    assert outbox.asked == [2]


def test_publish_failure_is_counted_reported_and_skipped() -> None:
    """A failed publish counts, is reported as attempt_count + 1; the batch goes on."""
    bad = OutboxRecord("a1", "E", {}, "bad", attempt_count=4)
    good = OutboxRecord("a2", "E", {}, "good")
    outbox = FakeOutbox([bad, good])

    def publish(event: dict[str, Any]) -> None:
        if event["record_id"] == "bad":
            raise ConnectionError("broker down")

    processor = OutboxProcessor(
        outbox.fetch_pending, publish, outbox.mark_published, outbox.mark_failed
    )

    assert processor.process_batch() == (1, 1)
    assert outbox.published == ["good"]
    assert outbox.failures == [("bad", "broker down", 5)]


def test_mark_published_failure_counts_as_failed() -> None:
    """If mark_published raises, the record counts as failed and is reported."""
    outbox = FakeOutbox([OutboxRecord("a", "E", {}, "r1")])

    def mark_published(record_id: str) -> None:
        raise OSError("db gone")

    processor = OutboxProcessor(
        outbox.fetch_pending, lambda _: None, mark_published, outbox.mark_failed
    )

    assert processor.process_batch() == (0, 1)
    assert outbox.failures == [("r1", "db gone", 1)]


def test_failure_without_or_with_broken_mark_failed_is_still_counted() -> None:
    """No mark_failed, or one that raises, leaves the failure count intact."""
    outbox = FakeOutbox([OutboxRecord("a", "E", {}, "r1")])

    def publish(event: dict[str, Any]) -> None:
        raise ConnectionError("down")

    def broken(record_id: str, error: str, attempt: int) -> None:
        raise OSError("also down")

    without = OutboxProcessor(outbox.fetch_pending, publish, outbox.mark_published)
    broken_mark = OutboxProcessor(
        outbox.fetch_pending, publish, outbox.mark_published, broken
    )

    assert without.process_batch() == (0, 1)
    assert broken_mark.process_batch() == (0, 1)


def test_empty_batch_publishes_nothing() -> None:
    """With nothing pending, process_batch returns (0, 0) and publishes nothing."""
    sent: list[dict[str, Any]] = []
    processor = OutboxProcessor(lambda n: [], sent.append, lambda _: None)

    assert processor.process_batch() == (0, 0)
    assert sent == []


def test_fetch_pending_returning_none_is_an_empty_batch() -> None:
    """0.2.0 treated any falsy fetch_pending result, None included, as empty."""
    fetch: Callable[[int], Any] = lambda n: None  # noqa: E731 -- a one-line fake
    processor = OutboxProcessor(fetch, lambda _: None, lambda _: None)

    assert processor.process_batch() == (0, 0)


# -- kafka_envelope -----------------------------------------------------------


def test_kafka_create_defaults() -> None:
    """create() fills a fresh id, UTC time, version 1.0 and empty broker fields."""
    before = datetime.now(UTC)
    env = KafkaEventEnvelope.create("OrderPlaced", "oms", {"id": 1}, "orders", "42")
    other = KafkaEventEnvelope.create("OrderPlaced", "oms", {}, "orders", "42")

    assert (env.event_type, env.source_system) == ("OrderPlaced", "oms")
    assert (env.topic, env.partition_key) == ("orders", "42")
    assert env.payload == {"id": 1}
    assert env.schema_version == "1.0"
    assert env.headers == {}
    assert (env.partition, env.offset, env.dead_letter_reason) == (None, None, None)
    assert env.event_id != other.event_id
    assert before <= env.created_at <= datetime.now(UTC)


def test_kafka_create_takes_version_and_headers_by_position() -> None:
    """create(..., schema_version, headers) keeps the 0.2.0 positional order."""
    env = KafkaEventEnvelope.create("E", "s", {}, "t", "k", "2.1", {"trace": "abc"})

    assert env.schema_version == "2.1"
    assert env.headers == {"trace": "abc"}


def test_producer_record_value_carries_the_event() -> None:
    """to_producer_record: topic, JSON bytes value with the event's fields."""
    env = KafkaEventEnvelope(
        "evt-1",
        "OrderPlaced",
        "oms",
        {"order": "42"},
        "orders",
        "42",
        "1.1",
        FIXED_TIME,
    )

    record: Any = env.to_producer_record()
    body = json.loads(record["value"])

    assert record["topic"] == "orders"
    assert isinstance(record["value"], bytes)
    assert body["event_id"] == "evt-1"
    assert body["event_type"] == "OrderPlaced"
    assert body["source_system"] == "oms"
    assert body["payload"] == {"order": "42"}
    assert body["schema_version"] == "1.1"
    assert datetime.fromisoformat(body["created_at"]) == FIXED_TIME


def test_value_is_readable_by_a_0_2_0_consumer_on_python_3_10() -> None:
    """The value has 0.2.0's topic, headers and a created_at without "Z"."""
    env = KafkaEventEnvelope(
        "evt-1", "E", "s", {}, "orders", "k", created_at=FIXED_TIME, headers={"a": "b"}
    )

    body = json.loads(env.to_producer_record()["value"])

    assert (body["topic"], body["headers"]) == ("orders", {"a": "b"})
    assert body["created_at"] == FIXED_TIME.isoformat()
    assert not body["created_at"].endswith("Z")


def test_producer_record_headers_are_str_bytes_pairs() -> None:
    """Application headers go out as (str, bytes) pairs, in insertion order."""
    env = KafkaEventEnvelope.create(
        "E", "s", {}, "t", "k", headers={"trace": "abc", "tenant": "é"}
    )

    record: Any = env.to_producer_record()
    headers = record["headers"]

    assert all(isinstance(n, str) and isinstance(v, bytes) for n, v in headers)
    app = [(n, v) for n, v in headers if n in {"trace", "tenant"}]
    assert app == [("trace", b"abc"), ("tenant", "é".encode())]


def test_producer_record_key_is_the_partition_key_string() -> None:
    """0.2.0 put partition_key, a str, under "key"."""
    record: Any = KafkaEventEnvelope.create(
        "E", "s", {}, "t", "key1"
    ).to_producer_record()

    assert record["key"] == "key1"


def test_producer_consumer_round_trip() -> None:
    """A produced record consumed back gives the same event, with partition/offset."""
    env = KafkaEventEnvelope.create(
        "OrderPlaced", "oms", {"order": "42"}, "orders", "42"
    )
    record: Any = env.to_producer_record()

    received = KafkaEventEnvelope.from_consumer_record(
        record["topic"], 3, 100, record["key"], record["value"]
    )

    assert received.event_id == env.event_id
    assert (received.event_type, received.source_system) == ("OrderPlaced", "oms")
    assert received.payload == {"order": "42"}
    assert (received.topic, received.partition_key) == ("orders", "42")
    assert (received.partition, received.offset) == (3, 100)
    assert received.created_at == env.created_at


def body_0_2_0(**extra: Any) -> bytes:
    """Return a record value as a 0.2.0 producer wrote it."""
    body = {
        "event_id": "evt-7",
        "event_type": "AccountUpdated",
        "source_system": "crm",
        "payload": {"id": "001"},
        "topic": "crm.accounts",
        "schema_version": "1.0",
        "created_at": "2024-01-02T03:04:05+00:00",
        "headers": {"trace": "abc"},
        **extra,
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(("key", "partition_key"), [(b"001", "001"), ("001", "001")])
def test_consumes_a_record_written_by_0_2_0(
    key: bytes | str, partition_key: str
) -> None:
    """A value written by a 0.2.0 producer decodes; the key gives partition_key."""
    env = KafkaEventEnvelope.from_consumer_record(
        "crm.accounts", 0, 9, key, body_0_2_0()
    )

    assert (env.event_id, env.event_type, env.source_system) == (
        "evt-7",
        "AccountUpdated",
        "crm",
    )
    assert env.payload == {"id": "001"}
    assert env.partition_key == partition_key
    assert env.created_at == FIXED_TIME
    assert (env.partition, env.offset) == (0, 9)


def test_consumed_record_without_key_has_empty_partition_key() -> None:
    """A keyless 0.2.0 record gets partition_key ''."""
    env = KafkaEventEnvelope.from_consumer_record("t", 0, 0, None, body_0_2_0())

    assert env.partition_key == ""


def test_round_trip_keeps_headers_through_the_value() -> None:
    """0.2.0 carried headers inside the value, so a 5-argument decode kept them."""
    env = KafkaEventEnvelope.create("E", "s", {}, "t", "k", headers={"trace": "abc"})
    record: Any = env.to_producer_record()

    received = KafkaEventEnvelope.from_consumer_record(
        "t", 0, 0, record["key"], record["value"]
    )

    assert received.headers == {"trace": "abc"}


def test_headers_written_by_0_2_0_are_read() -> None:
    """0.2.0 read the envelope's headers from the value's "headers" object."""
    env = KafkaEventEnvelope.from_consumer_record("t", 0, 0, b"k", body_0_2_0())

    assert env.headers == {"trace": "abc"}


def test_consumer_record_value_may_be_text() -> None:
    """0.2.0's from_consumer_record accepted the value as str as well as bytes."""
    value: Any = body_0_2_0().decode()

    env = KafkaEventEnvelope.from_consumer_record("t", 0, 0, b"k", value)

    assert env.event_id == "evt-7"


def test_mark_dead_letter_returns_a_dlq_copy() -> None:
    """mark_dead_letter returns a copy on <topic>.dlq; the original is untouched."""
    env = KafkaEventEnvelope.create("E", "s", {"a": 1}, "orders.v1", "k1")
    env.partition, env.offset = 2, 17

    dead = env.mark_dead_letter("parse error")

    assert dead is not env
    assert (dead.topic, dead.dead_letter_reason) == ("orders.v1.dlq", "parse error")
    assert (env.topic, env.dead_letter_reason) == ("orders.v1", None)
    assert dead.event_id == env.event_id
    assert dead.payload == env.payload
    assert (dead.partition, dead.offset) == (2, 17)


# -- webhook_handler ----------------------------------------------------------

SECRET = "whsec_compat"


def signed(data: dict[str, Any], secret: str = SECRET) -> tuple[bytes, str]:
    """Return a JSON body and its hex HMAC-SHA256 over the body."""
    body = json.dumps(data).encode()
    return body, hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("form", ["sha256={}", "v1={}", "{}", "  sha256={}  "])
def test_webhook_signature_forms(form: str, clock: ManualClock) -> None:
    """sha256=<hex>, v1=<hex> and bare hex over the body all verify."""
    body, digest = signed({"id": "evt_1", "type": "account.updated"})
    handler = WebhookHandler(SECRET, clock=clock)

    event = handler.parse(body, form.format(digest))

    assert isinstance(event, WebhookEvent)
    assert (event.event_id, event.event_type) == ("evt_1", "account.updated")
    assert event.payload == {"id": "evt_1", "type": "account.updated"}
    assert event.raw == body


def test_stripe_form_verifies_over_timestamp_dot_body(clock: ManualClock) -> None:
    """t=<ts>,v1=<hex> verifies the HMAC of "<t>.<body>", as Stripe signs it."""
    body = json.dumps({"id": "evt_2", "type": "charge.succeeded"}).encode()
    stamp = str(int(clock.time()))
    content = stamp.encode() + b"." + body
    digest = hmac.new(SECRET.encode(), content, hashlib.sha256).hexdigest()

    event = WebhookHandler(SECRET, clock=clock).parse(body, f"t={stamp},v1={digest}")

    assert event.event_id == "evt_2"


@pytest.mark.parametrize("header", ["sha256=" + "0" * 64, "v1=" + "ab" * 32, "00"])
def test_wrong_signature_raises(header: str, clock: ManualClock) -> None:
    """A signature that does not match raises WebhookSignatureError, a ValueError."""
    body, _ = signed({"id": "1", "type": "t"})

    with pytest.raises(WebhookSignatureError) as caught:
        WebhookHandler(SECRET, clock=clock).parse(body, header)

    assert isinstance(caught.value, ValueError)
    assert SECRET not in str(caught.value)


def test_non_hex_signature_is_a_signature_error(clock: ManualClock) -> None:
    """0.2.0 reported 'sha256=badhex' as WebhookSignatureError."""
    body, _ = signed({"id": "1", "type": "t"})

    with pytest.raises(WebhookSignatureError):
        WebhookHandler(SECRET, clock=clock).parse(body, "sha256=badhex")


def test_signed_body_that_is_not_json_is_a_value_error(clock: ManualClock) -> None:
    """A correctly signed body that is not JSON still raises a ValueError."""
    body = b"not json"
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    with pytest.raises(ValueError):  # noqa: PT011 -- 0.2.0 promised only ValueError
        WebhookHandler(SECRET, clock=clock).parse(body, digest)


def test_signature_by_another_secret_raises(clock: ManualClock) -> None:
    """A body signed with another secret is refused."""
    body, digest = signed({"id": "1"}, secret="someone-else")

    with pytest.raises(WebhookSignatureError):
        WebhookHandler(SECRET, clock=clock).parse(body, digest)


def test_custom_fields_and_unknown_type(clock: ManualClock) -> None:
    """id_field/type_field pick the fields; a missing type reads 'unknown'."""
    handler = WebhookHandler(SECRET, None, "ts", "event_id", "kind", clock=clock)
    body, digest = signed({"event_id": 123, "kind": "order.paid"})
    untyped, untyped_digest = signed({"event_id": "e-2"})

    event = handler.parse(body, digest)

    assert (event.event_id, event.event_type) == ("123", "order.paid")
    assert handler.parse(untyped, untyped_digest).event_type == "unknown"


def test_missing_id_gives_an_empty_event_id(clock: ManualClock) -> None:
    """0.2.0 set event_id to '' when the body had no id field."""
    body, digest = signed({"type": "t"})

    assert WebhookHandler(SECRET, clock=clock).parse(body, digest).event_id == ""


def test_received_at_is_unix_seconds(clock: ManualClock) -> None:
    """0.2.0 stamped received_at with time.time(), a float."""
    body, digest = signed({"id": "1"})

    received: Any = WebhookHandler(SECRET, clock=clock).parse(body, digest).received_at

    assert isinstance(received, float)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (-300, True), (300, True), (-301, False), (301, False), (-600, False)],
)
def test_body_timestamp_tolerance(
    offset: float, accepted: bool, clock: ManualClock
) -> None:
    """A body timestamp beyond tolerance_seconds from now, either way, is a replay."""
    body, digest = signed({"id": "1", "timestamp": clock.time() + offset})
    handler = WebhookHandler(SECRET, clock=clock)

    if accepted:
        assert handler.parse(body, digest).event_id == "1"
    else:
        with pytest.raises(WebhookReplayError) as caught:
            handler.parse(body, digest)
        assert isinstance(caught.value, ValueError)


def test_float_and_numeric_text_timestamps_are_checked(clock: ManualClock) -> None:
    """Float seconds and digit strings both count as Unix timestamps."""
    handler = WebhookHandler(SECRET, clock=clock)
    fresh, fresh_digest = signed({"id": "1", "timestamp": clock.time() + 0.5})
    stale, stale_digest = signed({"id": "2", "timestamp": str(int(clock.time()) - 900)})

    assert handler.parse(fresh, fresh_digest).event_id == "1"
    with pytest.raises(WebhookReplayError):
        handler.parse(stale, stale_digest)


def test_decimal_text_timestamp_is_accepted(clock: ManualClock) -> None:
    """0.2.0 read the body timestamp with float(), so "1700000000.5" was valid."""
    body, digest = signed({"id": "1", "timestamp": f"{clock.time() + 0.5}"})

    assert WebhookHandler(SECRET, clock=clock).parse(body, digest).event_id == "1"


def test_no_tolerance_or_no_timestamp_skips_the_replay_check(
    clock: ManualClock,
) -> None:
    """tolerance_seconds=None, or no timestamp field in the body, accepts any age."""
    stale, stale_digest = signed({"id": "1", "timestamp": 0})
    undated, undated_digest = signed({"id": "2"})

    lenient = WebhookHandler(SECRET, None, clock=clock)
    assert lenient.parse(stale, stale_digest).event_id == "1"
    assert (
        WebhookHandler(SECRET, clock=clock).parse(undated, undated_digest).event_id
        == "2"
    )


def test_custom_timestamp_field(clock: ManualClock) -> None:
    """timestamp_field names the body field checked for replays."""
    handler = WebhookHandler(SECRET, 60, "sent_at", clock=clock)
    body, digest = signed({"id": "1", "sent_at": clock.time() - 61, "timestamp": 0})

    with pytest.raises(WebhookReplayError):
        handler.parse(body, digest)


def test_signature_is_checked_before_the_timestamp(clock: ManualClock) -> None:
    """A stale body with a bad signature reports the signature."""
    body, _ = signed({"id": "1", "timestamp": 0})

    with pytest.raises(WebhookSignatureError):
        WebhookHandler(SECRET, clock=clock).parse(body, "sha256=" + "0" * 64)


def test_handler_works_with_the_system_clock() -> None:
    """Built the 0.2.0 way (no clock), a fresh signed event parses."""
    body, digest = signed({"id": "1", "type": "t", "timestamp": time.time()})

    event = WebhookHandler(secret=SECRET, tolerance_seconds=300).parse(
        payload=body, signature_header=f"sha256={digest}"
    )

    assert event.event_type == "t"


# -- cdc_event ----------------------------------------------------------------


def debezium(op: str, **fields: Any) -> dict[str, Any]:
    """Return a Debezium change payload with a PostgreSQL-like source block."""
    message: dict[str, Any] = {
        "op": op,
        "before": None,
        "after": None,
        "source": {
            "db": "shop",
            "schema": "public",
            "table": "customers",
            "ts_ms": 1_700_000_000_123,
            "lsn": 24023128,
            "server_id": 7,
        },
    }
    message.update(fields)
    return message


@pytest.mark.parametrize(
    ("op", "operation"),
    [
        ("c", CDCOperation.INSERT),
        ("u", CDCOperation.UPDATE),
        ("d", CDCOperation.DELETE),
        ("r", CDCOperation.SNAPSHOT),
        ("t", CDCOperation.TRUNCATE),
    ],
)
def test_debezium_op_codes(op: str, operation: CDCOperation) -> None:
    """Debezium c/u/d/r/t map to INSERT/UPDATE/DELETE/SNAPSHOT/TRUNCATE."""
    row = {"id": 1}
    fields: dict[str, Any] = {"before": row} if op == "d" else {"after": row}
    if op == "t":
        fields = {}

    assert CDCEvent.from_debezium(debezium(op, **fields)).operation is operation


def test_debezium_fields_map_to_the_event() -> None:
    """Rows pass through; source maps db/schema/table, lsn and server_id as text."""
    event = CDCEvent.from_debezium(
        debezium(
            "u",
            before={"id": 1, "name": "Ann"},
            after={"id": 1, "name": "Anna"},
            transaction={"id": 571, "total_order": 1, "data_collection_order": 1},
        )
    )

    assert event.before == {"id": 1, "name": "Ann"}
    assert event.after == {"id": 1, "name": "Anna"}
    source = event.source
    assert (source.database, source.schema, source.table) == (
        "shop",
        "public",
        "customers",
    )
    assert source.connector == "debezium"
    assert (source.lsn, source.server_id) == ("24023128", "7")
    assert event.captured_at == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert event.transaction_id == "571"
    assert event.event_id


def test_debezium_without_transaction_or_offsets() -> None:
    """No transaction block means transaction_id None; absent lsn/server_id are None."""
    message = debezium("c", after={"id": 1})
    del message["source"]["lsn"], message["source"]["server_id"]

    event = CDCEvent.from_debezium(message)

    assert event.transaction_id is None
    assert (event.source.lsn, event.source.server_id) == (None, None)


def test_debezium_without_source_block() -> None:
    """A payload with no source block gives empty database, schema and table."""
    event = CDCEvent.from_debezium({"op": "c", "after": {"id": 1}})

    assert (event.source.database, event.source.schema, event.source.table) == (
        "",
        "",
        "",
    )
    assert event.source.connector == "debezium"
    assert event.after == {"id": 1}


@pytest.mark.parametrize("op", ["x", "", "create"])
def test_unknown_op_is_a_value_error(op: str) -> None:
    """An unknown op raises a ValueError starting with the 0.2.0 message."""
    with pytest.raises(ValueError, match=r"^Unrecognised Debezium operation code"):
        CDCEvent.from_debezium(debezium(op))


def test_missing_op_is_a_value_error() -> None:
    """A payload with no op raises the same ValueError as an unknown op."""
    message = debezium("c", after={"id": 1})
    del message["op"]

    with pytest.raises(ValueError, match=r"^Unrecognised Debezium operation code"):
        CDCEvent.from_debezium(message)


def test_changed_fields_of_an_update() -> None:
    """changed_fields lists the after-keys whose value differs from before."""
    event = CDCEvent.from_debezium(
        debezium(
            "u",
            before={"id": 1, "name": "Ann", "city": "Oslo"},
            after={"id": 1, "name": "Anna", "city": "Oslo"},
        )
    )

    assert event.changed_fields() == {"name"}


@pytest.mark.parametrize(
    "operation", [CDCOperation.INSERT, CDCOperation.DELETE, CDCOperation.SNAPSHOT]
)
def test_changed_fields_is_empty_unless_update(operation: CDCOperation) -> None:
    """changed_fields is empty for anything but an UPDATE."""
    source = CDCSourceMetadata("db", "s", "t")
    event = CDCEvent(operation, source, {"a": 1}, {"a": 2})

    assert event.changed_fields() == set()


def test_changed_fields_of_an_update_without_before_is_empty() -> None:
    """An UPDATE with no before image reports no changed fields."""
    event = CDCEvent(
        CDCOperation.UPDATE, CDCSourceMetadata("db", "s", "t"), None, {"a": 1}
    )

    assert event.changed_fields() == set()


def test_audit_dict_has_the_0_2_0_fields_and_no_row_values() -> None:
    """to_audit_dict keeps the 0.2.0 keys and values, is JSON, and omits row values."""
    event = CDCEvent.from_debezium(
        debezium(
            "u",
            before={"id": 1, "email": "old@secret.example"},
            after={"id": 1, "email": "new@secret.example"},
            transaction={"id": "tx-9"},
        )
    )

    audit = event.to_audit_dict()

    expected = {
        "event_id": event.event_id,
        "operation": "UPDATE",
        "table": "public.customers",
        "database": "shop",
        "connector": "debezium",
        "captured_at": event.captured_at.isoformat(),
        "transaction_id": "tx-9",
        "changed_fields": ["email"],
        "lsn": "24023128",
    }
    assert {k: audit[k] for k in expected} == expected
    assert "secret.example" not in json.dumps(audit)


def test_hand_built_event_defaults() -> None:
    """CDCEvent(operation, source) has no rows, a fresh id, UTC time, no transaction."""
    before = datetime.now(UTC)
    source = CDCSourceMetadata("db", "public", "t")

    first = CDCEvent(CDCOperation.INSERT, source)
    second = CDCEvent(CDCOperation.INSERT, source)

    assert (first.before, first.after, first.transaction_id) == (None, None, None)
    assert first.event_id != second.event_id
    assert before <= first.captured_at <= datetime.now(UTC)
    assert (source.connector, source.lsn, source.server_id) == ("unknown", None, None)


def test_cdc_event_is_a_mutable_dataclass() -> None:
    """0.2.0 events are dataclasses whose fields callers may reassign."""
    event = CDCEvent(CDCOperation.INSERT, CDCSourceMetadata("db", "s", "t"))
    event.after = {"id": 2}

    assert dataclasses.is_dataclass(event)
    assert event.after == {"id": 2}


def test_audit_dict_of_a_hand_built_event_is_json() -> None:
    """A hand-built event's audit dict serialises, with nulls for unknowns."""
    event = CDCEvent(
        CDCOperation.DELETE,
        CDCSourceMetadata("db", "s", "t"),
        before={"id": math.pi},
        captured_at=FIXED_TIME,
        event_id="e-1",
    )

    audit = json.loads(json.dumps(event.to_audit_dict()))

    assert audit["event_id"] == "e-1"
    assert audit["captured_at"] == "2024-01-02T03:04:05+00:00"
    assert (audit["transaction_id"], audit["lsn"], audit["changed_fields"]) == (
        None,
        None,
        [],
    )
