"""The event envelope: 0.2.0 API, enforced lifecycle, serialisation, CloudEvents."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from integration_automation_patterns import _types
from integration_automation_patterns._types import IntegrationError, Jitter
from integration_automation_patterns.event_envelope import (
    DeliveryStatus,
    EnvelopeError,
    EventEnvelope,
    InvalidTransitionError,
    RetryPolicy,
)

FIXTURES = Path(__file__).parent / "fixtures" / "cloudevents"
CREATED = datetime(2024, 5, 17, 8, 30, 15, 123456, tzinfo=timezone.utc)
S = DeliveryStatus


def make(**fields: Any) -> EventEnvelope:
    """Build an envelope with fixed, readable values."""
    values: dict[str, Any] = {
        "event_id": "evt-1",
        "event_type": "crm.contact.updated",
        "source_system": "crm",
        "payload": {"contact_id": 42},
        "created_at": CREATED,
    }
    values.update(fields)
    return EventEnvelope(**values)


# -- 0.2.0 compatibility ------------------------------------------------------


def test_defaults_match_0_2_0() -> None:
    """Positional order and defaults are the 0.2.0 ones."""
    env = EventEnvelope("e", "t", "s", {"a": 1})

    assert (env.correlation_id, env.schema_version) == ("", "1.0")
    assert env.status is DeliveryStatus.PENDING
    assert env.attempt_count == 0
    assert env.retry_policy == RetryPolicy()
    assert env.tags == {}
    assert env.created_at.tzinfo is not None


def test_retry_policy_is_the_shared_one() -> None:
    """RetryPolicy here is the one from _types, with 0.2.0 waits."""
    assert RetryPolicy is _types.RetryPolicy
    assert [RetryPolicy().wait_seconds_for_attempt(n) for n in range(4)] == [
        30,
        60,
        120,
        240,
    ]


def test_status_values_are_lowercase_names() -> None:
    """Every DeliveryStatus value is its lowercase name."""
    assert [s.value for s in DeliveryStatus] == [s.name.lower() for s in DeliveryStatus]
    assert len(DeliveryStatus) == 7


def test_tags_default_is_not_shared() -> None:
    """Each envelope gets its own tags dict."""
    a, b = EventEnvelope("a", "t", "s", {}), EventEnvelope("b", "t", "s", {})
    a.mark_skipped("duplicate")

    assert b.tags == {}
    assert a.tags == {"skip_reason": "duplicate"}


def test_happy_path_reaches_processed() -> None:
    """Dispatch, acknowledge, process: one attempt, terminal."""
    env = make()
    env.mark_dispatched()
    env.mark_acknowledged()
    env.mark_processed()

    assert env.status is S.PROCESSED
    assert env.attempt_count == 1
    assert env.is_terminal()


def test_mark_failed_retries_until_the_policy_is_exhausted() -> None:
    """mark_failed gives RETRYING until attempt_count reaches max_attempts."""
    env = make()
    seen = []
    for _ in range(3):
        env.mark_dispatched()
        env.mark_failed()
        seen.append(env.status)

    assert seen == [S.RETRYING, S.RETRYING, S.FAILED]
    assert env.is_terminal()


def test_next_retry_wait_follows_0_2_0() -> None:
    """The wait uses attempt_count as 0.2.0 did, and is 0 unless RETRYING."""
    env = make()
    assert env.next_retry_wait_seconds() == 0

    env.mark_dispatched()
    env.mark_failed()
    assert env.next_retry_wait_seconds() == 60

    env.mark_dispatched()
    assert env.next_retry_wait_seconds() == 0


def test_mark_skipped_without_reason_stores_no_tag() -> None:
    """An empty skip reason leaves tags alone."""
    env = make()
    env.mark_skipped()

    assert env.status is S.SKIPPED
    assert "skip_reason" not in env.tags


def test_audit_line_format() -> None:
    """to_audit_line keeps the 0.2.0 format, 'none' for no correlation."""
    env = make()
    assert env.to_audit_line() == (
        "[INTEGRATION_EVENT] event_id=evt-1 type=crm.contact.updated source=crm "
        "status=pending attempts=0 correlation=none schema=1.0 "
        "created=2024-05-17T08:30:15.123456+00:00"
    )
    assert "correlation=c-9 " in make(correlation_id="c-9").to_audit_line()


def test_new_assigns_a_uuid7_and_accepts_fields() -> None:
    """EventEnvelope.new gives a fresh UUIDv7 id and passes other fields on."""
    a = EventEnvelope.new("t", "s", {"k": 1}, correlation_id="c", tags={"x": "y"})
    b = EventEnvelope.new("t", "s", {})

    assert uuid.UUID(a.event_id).version == 7
    assert a.event_id != b.event_id
    assert (a.correlation_id, a.tags, a.status) == ("c", {"x": "y"}, S.PENDING)


def test_idempotency_key_is_the_event_id() -> None:
    """The idempotency key is the event id."""
    assert make(event_id="abc").idempotency_key == "abc"


# -- lifecycle ----------------------------------------------------------------

LEGAL: dict[DeliveryStatus, set[DeliveryStatus]] = {
    S.PENDING: {S.DISPATCHED, S.SKIPPED},
    S.DISPATCHED: {S.DISPATCHED, S.ACKNOWLEDGED, S.PROCESSED, S.RETRYING}
    | {S.FAILED, S.SKIPPED},
    S.ACKNOWLEDGED: {S.PROCESSED, S.RETRYING, S.FAILED},
    S.RETRYING: {S.DISPATCHED, S.FAILED, S.SKIPPED},
    S.PROCESSED: set(),
    S.FAILED: set(),
    S.SKIPPED: set(),
}
ALL_MOVES = [(a, b) for a in DeliveryStatus for b in DeliveryStatus]


@pytest.mark.parametrize(("current", "target"), ALL_MOVES)
def test_can_move_to_matches_the_table(
    current: DeliveryStatus, target: DeliveryStatus
) -> None:
    """can_move_to answers exactly the legal-move table."""
    assert make(status=current).can_move_to(target) is (target in LEGAL[current])


@pytest.mark.parametrize(
    ("current", "action"),
    [
        (S.PENDING, "mark_acknowledged"),
        (S.PENDING, "mark_processed"),
        (S.RETRYING, "mark_acknowledged"),
        (S.PROCESSED, "mark_dispatched"),
        (S.FAILED, "mark_skipped"),
        (S.SKIPPED, "mark_processed"),
        (S.ACKNOWLEDGED, "mark_dispatched"),
        (S.ACKNOWLEDGED, "mark_skipped"),
    ],
)
def test_illegal_move_raises_and_changes_nothing(
    current: DeliveryStatus, action: str
) -> None:
    """An illegal move names both states and leaves the envelope untouched."""
    env = make(status=current, attempt_count=1)
    before = env.to_dict()

    with pytest.raises(InvalidTransitionError) as caught:
        getattr(env, action)()

    assert current.value in str(caught.value)
    assert caught.value.current is current
    assert caught.value.target.value in str(caught.value)
    assert env.to_dict() == before


def test_invalid_transition_error_hierarchy() -> None:
    """InvalidTransitionError is an IntegrationError and a ValueError."""
    assert issubclass(InvalidTransitionError, EnvelopeError)
    assert issubclass(InvalidTransitionError, IntegrationError)
    assert issubclass(InvalidTransitionError, ValueError)


def test_retrying_cannot_fail_again_until_exhausted() -> None:
    """From RETRYING, a non-final failure is illegal; a permanent one is not."""
    env = make()
    env.mark_dispatched()
    env.mark_failed()

    with pytest.raises(InvalidTransitionError, match="retrying to retrying"):
        env.mark_failed()
    env.mark_failed(permanent=True)
    assert env.status is S.FAILED


def test_transitions_log_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """Each move is logged at DEBUG with the event id in extra."""
    caplog.set_level(logging.DEBUG, "integration_automation_patterns.event_envelope")
    make().mark_dispatched()

    (record,) = caplog.records
    assert record.levelno == logging.DEBUG
    assert record.__dict__["event_id"] == "evt-1"
    assert record.__dict__["status"] == "dispatched"


class LifecycleMachine(RuleBasedStateMachine):
    """Random method sequences checked against a model of the legal moves."""

    def __init__(self) -> None:
        super().__init__()
        self.max_attempts = 3
        self.env = make(retry_policy=RetryPolicy(max_attempts=self.max_attempts))
        self.status = S.PENDING
        self.attempts = 0

    def _apply(
        self, action: Callable[[], None], target: DeliveryStatus, attempts: int
    ) -> None:
        if target in LEGAL[self.status]:
            action()
            self.status, self.attempts = target, attempts
        else:
            with pytest.raises(InvalidTransitionError):
                action()

    @rule()
    def dispatch(self) -> None:
        """Model mark_dispatched."""
        self._apply(self.env.mark_dispatched, S.DISPATCHED, self.attempts + 1)

    @rule()
    def acknowledge(self) -> None:
        """Model mark_acknowledged."""
        self._apply(self.env.mark_acknowledged, S.ACKNOWLEDGED, self.attempts)

    @rule()
    def process(self) -> None:
        """Model mark_processed."""
        self._apply(self.env.mark_processed, S.PROCESSED, self.attempts)

    @rule(permanent=st.booleans())
    def fail(self, permanent: bool) -> None:
        """Model mark_failed."""
        exhausted = permanent or self.attempts >= self.max_attempts
        target = S.FAILED if exhausted else S.RETRYING
        self._apply(
            lambda: self.env.mark_failed(permanent=permanent), target, self.attempts
        )

    @rule(reason=st.sampled_from(["", "duplicate"]))
    def skip(self, reason: str) -> None:
        """Model mark_skipped."""
        self._apply(lambda: self.env.mark_skipped(reason), S.SKIPPED, self.attempts)

    @invariant()
    def matches_model(self) -> None:
        """Status, attempts and terminality agree with the model."""
        assert self.env.status is self.status
        assert self.env.attempt_count == self.attempts
        assert self.env.is_terminal() is (not LEGAL[self.status])


LifecycleMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None
)
test_lifecycle_state_machine = LifecycleMachine.TestCase


# -- dict and JSON ------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
    max_leaves=10,
)
policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 10),
    backoff_seconds=st.integers(0, 100) | st.floats(0, 100),
    exponential=st.booleans(),
    max_backoff_seconds=st.integers(0, 10_000),
    jitter=st.sampled_from(Jitter),
    deadline_seconds=st.none() | st.floats(0.5, 1e6),
)
envelopes = st.builds(
    EventEnvelope,
    event_id=st.text(min_size=1),
    event_type=st.text(),
    source_system=st.text(),
    payload=st.dictionaries(st.text(), json_values, max_size=4),
    correlation_id=st.text(),
    schema_version=st.text(),
    created_at=st.datetimes(timezones=st.just(timezone.utc)),
    status=st.sampled_from(DeliveryStatus),
    attempt_count=st.integers(0, 1000),
    retry_policy=policies,
    tags=st.dictionaries(st.text(), st.text(), max_size=3),
)


@given(envelopes)
@settings(max_examples=150, deadline=None)
def test_dict_and_json_round_trip_every_field(env: EventEnvelope) -> None:
    """to_dict/from_dict and to_json/from_json lose nothing."""
    assert EventEnvelope.from_dict(env.to_dict()) == env
    assert EventEnvelope.from_json(env.to_json()) == env
    assert EventEnvelope.from_json(env.to_json().encode()) == env


def test_to_dict_shape() -> None:
    """Times are RFC 3339 UTC with Z, status by value, the policy nested."""
    data = make(retry_policy=RetryPolicy(5, jitter=Jitter.FULL)).to_dict()

    assert data["created_at"] == "2024-05-17T08:30:15.123456Z"
    assert data["status"] == "pending"
    assert data["retry_policy"] == {
        "max_attempts": 5,
        "backoff_seconds": 30,
        "exponential": True,
        "max_backoff_seconds": 3600,
        "jitter": "full",
        "deadline_seconds": None,
    }
    json.dumps(data)


def test_non_utc_and_naive_times_serialise_as_utc() -> None:
    """An offset time is converted to UTC; a naive one is taken as UTC."""
    plus_two = timezone(timedelta(hours=2))
    aware = make(created_at=datetime(2024, 1, 1, 12, 0, tzinfo=plus_two))
    naive = make(created_at=datetime(2024, 1, 1, 12, 0))

    assert aware.to_dict()["created_at"] == "2024-01-01T10:00:00Z"
    assert naive.to_dict()["created_at"] == "2024-01-01T12:00:00Z"
    assert EventEnvelope.from_dict(aware.to_dict()).created_at == aware.created_at


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=timezone.utc)),
        ("2024-01-01t00:00:00z", datetime(2024, 1, 1, tzinfo=timezone.utc)),
        (
            "2024-01-01T01:30:00.5+01:30",
            datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=timezone.utc),
        ),
        (
            "2023-12-31T23:00:00.123456789-01:00",
            datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc),
        ),
    ],
)
def test_rfc3339_times_parse(text: str, expected: datetime) -> None:
    """Offsets, lower-case separators and long fractions all parse to UTC."""
    data = make().to_dict() | {"created_at": text}
    assert EventEnvelope.from_dict(data).created_at == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T12:30:4x.123456Z",
        "2024-05-01T12:30:45.12345xZ",
        "2024-05-01 12:30:45.123456Z",
        "2024-05-01T12:30:45,123456Z",
        "2024-05-01T12:30:45.123456+",
        "2024/05/01T12:30:45Z",
        "2024-05-01T12-30-45Z",
        "2024-05-01T12:30:45",
        "2024-13-01T12:30:45Z",
        "20240501T123045.123456Z",
    ],
)
def test_cloudevent_time_near_the_plain_shape_is_rejected(text: str) -> None:
    """Text one character off the RFC 3339 shape raises, naming the time."""
    event = make().to_cloudevent() | {"time": text}
    with pytest.raises(EnvelopeError, match="CloudEvent attribute time"):
        EventEnvelope.from_cloudevent(event)


def test_from_dict_defaults_optional_fields() -> None:
    """Only the four 0.2.0 positional fields are required."""
    env = EventEnvelope.from_dict(
        {"event_id": "e", "event_type": "t", "source_system": "s", "payload": {}}
    )
    assert env.status is S.PENDING
    assert env.retry_policy == RetryPolicy()
    assert env.created_at.tzinfo is timezone.utc


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_id": None}, "event_id"),
        ({"event_type": 5}, "event_type"),
        ({"payload": []}, "payload"),
        ({"payload": {1: 2}}, "payload"),
        ({"correlation_id": 1}, "correlation_id"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2024-02-30T00:00:00Z"}, "created_at"),
        ({"created_at": "2024-01-01T00:00:00+24:00"}, "created_at"),
        ({"status": "lost"}, "status"),
        ({"status": ["pending"]}, "status"),
        ({"attempt_count": -1}, "attempt_count"),
        ({"attempt_count": True}, "attempt_count"),
        ({"retry_policy": {"max_attempts": 0}}, "retry_policy"),
        ({"retry_policy": {"max_attempts": "3"}}, "retry_policy.max_attempts"),
        ({"retry_policy": {"jitter": "wild"}}, "retry_policy.jitter"),
        ({"retry_policy": []}, "retry_policy"),
        ({"tags": {"a": 1}}, "tags"),
    ],
)
def test_from_dict_names_the_bad_field(change: dict[Any, Any], field: str) -> None:
    """A bad field raises EnvelopeError naming it, never KeyError/TypeError."""
    data = make().to_dict() | change

    with pytest.raises(EnvelopeError, match=field.replace(".", r"\.")):
        EventEnvelope.from_dict(data)


def test_missing_required_field_is_named() -> None:
    """A missing required field is reported by name."""
    data = make().to_dict()
    del data["source_system"]

    with pytest.raises(EnvelopeError, match="source_system is missing"):
        EventEnvelope.from_dict(data)


@pytest.mark.parametrize("text", ["{", b"\xff\xfe", "[1]", "null", 5])
def test_from_json_rejects_bad_documents(text: Any) -> None:
    """Broken JSON, bad UTF-8 and non-objects raise EnvelopeError."""
    with pytest.raises(EnvelopeError):
        EventEnvelope.from_json(text)


def test_from_json_wraps_decoder_error_as_cause() -> None:
    """The decoder's own error is kept as __cause__."""
    with pytest.raises(EnvelopeError) as caught:
        EventEnvelope.from_json("{")
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


def test_to_json_rejects_unserialisable_payload() -> None:
    """A payload JSON cannot carry raises EnvelopeError naming the payload."""
    with pytest.raises(EnvelopeError, match="payload"):
        make(payload={"when": datetime.now(timezone.utc)}).to_json()


# -- CloudEvents --------------------------------------------------------------


def test_to_cloudevent_maps_every_attribute() -> None:
    """The JSON event format carries the envelope as the contract says."""
    event = make(correlation_id="corr-7", schema_version="2.1").to_cloudevent()

    assert event == {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "crm",
        "type": "crm.contact.updated",
        "time": "2024-05-17T08:30:15.123456Z",
        "datacontenttype": "application/json",
        "schemaversion": "2.1",
        "correlationid": "corr-7",
        "data": {"contact_id": 42},
    }


def test_to_cloudevent_omits_empty_correlation() -> None:
    """Without a correlation id there is no correlationid attribute."""
    assert "correlationid" not in make().to_cloudevent()


def test_to_cloudevent_rejects_empty_source() -> None:
    """CloudEvents requires a non-empty source; the field is named."""
    with pytest.raises(EnvelopeError, match="source_system"):
        make(source_system="").to_cloudevent()


def test_time_follows_a_reassigned_created_at() -> None:
    """Writing twice, then changing created_at, writes the new time."""
    env = make()
    assert env.to_cloudevent()["time"] == env.to_cloudevent()["time"]

    env.created_at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    assert env.to_cloudevent()["time"] == "2025-01-02T03:04:05Z"
    assert env.to_dict()["created_at"] == "2025-01-02T03:04:05Z"
    assert env == make(created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert "memo" not in repr(env)


def test_cloudevent_round_trip() -> None:
    """from_cloudevent(to_cloudevent()) keeps the mapped fields."""
    env = make(correlation_id="c", schema_version="3")
    back = EventEnvelope.from_cloudevent(env.to_cloudevent())

    assert (back.event_id, back.event_type, back.source_system) == (
        "evt-1",
        "crm.contact.updated",
        "crm",
    )
    assert (back.payload, back.created_at) == (env.payload, env.created_at)
    assert (back.correlation_id, back.schema_version) == ("c", "3")
    assert back.status is S.PENDING


def test_sdk_reads_what_we_write() -> None:
    """The cloudevents SDK parses and validates our JSON event."""
    env = make(correlation_id="corr-7", tags={"ce.subject": "contact/42"})
    wire = json.dumps(env.to_cloudevent()).encode()

    event = JSONFormat().read(None, wire)

    assert event.get_id() == "evt-1"
    assert event.get_source() == "crm"
    assert event.get_type() == "crm.contact.updated"
    assert event.get_time() == CREATED
    assert event.get_datacontenttype() == "application/json"
    assert event.get_subject() == "contact/42"
    assert event.get_extension("correlationid") == "corr-7"
    assert event.get_extension("schemaversion") == "1.0"
    assert event.get_data() == {"contact_id": 42}


@given(
    envelopes.filter(lambda e: all((e.event_id, e.source_system, e.event_type))),
    st.sampled_from([{}, {"ce.subject": "contact/42"}]),
)
@settings(max_examples=150, deadline=None)
def test_structured_json_is_the_cloudevent_document(
    env: EventEnvelope, tags: dict[str, str]
) -> None:
    """to_cloudevent_json() writes exactly the document to_cloudevent() returns."""
    env.tags = tags

    assert json.loads(env.to_cloudevent_json()) == env.to_cloudevent()


def test_sdk_reads_our_structured_json_bytes() -> None:
    """The SDK reads to_cloudevent_json() output as the same event."""
    env = make(correlation_id="corr-7", payload={"name": 'Zoë "Q"', "n": 1})

    event = JSONFormat().read(None, env.to_cloudevent_json())

    assert (event.get_id(), event.get_time()) == ("evt-1", CREATED)
    assert event.get_extension("correlationid") == "corr-7"
    assert event.get_data() == {"name": 'Zoë "Q"', "n": 1}


@pytest.mark.parametrize("payload", [{"x": float("nan")}, {"x": object()}, {"x": {1j}}])
def test_structured_json_refuses_a_payload_json_cannot_carry(payload: Any) -> None:
    """A NaN or an unserialisable payload value raises EnvelopeError."""
    with pytest.raises(EnvelopeError, match="payload"):
        make(payload=payload).to_cloudevent_json()


def test_structured_json_refuses_an_empty_required_attribute() -> None:
    """An empty source cannot form an event, in either writer."""
    with pytest.raises(EnvelopeError, match="source"):
        make(source_system="").to_cloudevent_json()


def test_we_read_what_the_sdk_writes() -> None:
    """An event written by the SDK becomes the matching envelope."""
    attributes = {
        "id": "sdk-1",
        "source": "/erp/orders",
        "type": "erp.order.created",
        "time": CREATED,
        "datacontenttype": "application/json",
        "correlationid": "corr-sdk",
        "subject": "order/9",
    }
    wire = JSONFormat().write(CloudEvent(attributes, {"order": 9}))

    env = EventEnvelope.from_cloudevent(json.loads(wire))

    assert (env.event_id, env.source_system, env.event_type) == (
        "sdk-1",
        "/erp/orders",
        "erp.order.created",
    )
    assert env.created_at == CREATED
    assert env.payload == {"order": 9}
    assert env.correlation_id == "corr-sdk"
    assert env.tags == {"ce.subject": "order/9"}


def test_we_read_sdk_binary_data_as_data_base64() -> None:
    """SDK bytes data arrives as data_base64 and decodes to the payload."""
    event = CloudEvent(
        {"id": "b", "source": "s", "type": "t", "datacontenttype": "application/json"},
        b'{"raw": true}',
    )
    mapping = json.loads(JSONFormat().write(event))

    assert "data_base64" in mapping
    assert EventEnvelope.from_cloudevent(mapping).payload == {"raw": True}


def test_sdk_round_trip_keeps_foreign_attributes() -> None:
    """Foreign attributes survive SDK -> envelope -> SDK as strings."""
    spec = json.loads((FIXTURES / "spec_example.json").read_text())["event"]
    spec = spec | {"datacontenttype": "application/json", "data": {"pr": 123}}

    env = EventEnvelope.from_cloudevent(spec)
    again = JSONFormat().read(None, json.dumps(env.to_cloudevent()))

    assert env.tags == {
        "ce.subject": "123",
        "ce.comexampleextension1": "value",
        "ce.comexampleothervalue": "5",
    }
    assert again.get_subject() == "123"
    assert again.get_extension("comexampleextension1") == "value"


def spec_examples() -> list[dict[str, Any]]:
    """Return the structured events of the spec's JSON-format examples."""
    doc = json.loads((FIXTURES / "json_format_examples.json").read_text())
    return [example["structured"] for example in doc["examples"]]


def test_spec_example_with_json_data_object() -> None:
    """Spec JSON-format example 3 (a JSON object in data) is read."""
    env = EventEnvelope.from_cloudevent(spec_examples()[2])

    assert env.event_id == "C234-1234-1234"
    assert env.payload == {"appinfoA": "abc", "appinfoB": 123, "appinfoC": True}
    assert env.created_at == datetime(2018, 4, 5, 17, 31, tzinfo=timezone.utc)
    assert "ce.subject" not in env.tags
    assert env.tags["ce.comexampleothervalue"] == "5"


def test_spec_example_with_base64_json() -> None:
    """Spec JSON-format example 6 (data_base64 of a JSON object) is read."""
    env = EventEnvelope.from_cloudevent(spec_examples()[5])
    assert env.payload == {"xyz": 123}


@pytest.mark.parametrize(
    ("index", "field"),
    [(0, "datacontenttype"), (1, "datacontenttype"), (3, "data"), (4, "data")],
)
def test_spec_examples_without_a_json_object_are_refused(
    index: int, field: str
) -> None:
    """Spec examples whose data is not a JSON object raise, naming why."""
    with pytest.raises(EnvelopeError, match=field):
        EventEnvelope.from_cloudevent(spec_examples()[index])


def minimal_event(**changes: Any) -> dict[str, Any]:
    """Return a small valid CloudEvent with ``changes`` applied."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "x",
        "source": "s",
        "type": "t",
        "data": {},
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not ...}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"specversion": ...}, "specversion is missing"),
        ({"specversion": "0.3"}, "specversion '0.3'"),
        ({"id": ...}, "id is missing"),
        ({"source": None}, "source is missing"),
        ({"type": ""}, "type must be a non-empty string"),
        ({"id": 7}, "id must be"),
        ({"time": "2018-04-05"}, "time"),
        ({"correlationid": 5}, "correlationid"),
        ({"schemaversion": []}, "schemaversion"),
        ({"Bad_Name": "x"}, "'Bad_Name'"),
        ({"comexample-ext": "x"}, "'comexample-ext'"),
        ({"nested": {"a": 1}}, "nested"),
        ({"data_base64": "e30="}, "both data and data_base64"),
        ({"data": ..., "data_base64": "%%%"}, "data_base64"),
        ({"data": ..., "data_base64": base64.b64encode(b"[1]").decode()}, "data"),
        ({"datacontenttype": 5}, "datacontenttype"),
    ],
)
def test_from_cloudevent_names_the_bad_attribute(
    changes: dict[str, Any], message: str
) -> None:
    """Missing, mistyped or badly named attributes raise EnvelopeError."""
    with pytest.raises(EnvelopeError, match=message):
        EventEnvelope.from_cloudevent(minimal_event(**changes))


def test_from_cloudevent_defaults() -> None:
    """No data means an empty payload; no time means now; +json types pass."""
    env = EventEnvelope.from_cloudevent(
        minimal_event(data=..., datacontenttype="application/cloudevents+json")
    )
    assert env.payload == {}
    assert env.schema_version == "1.0"
    assert datetime.now(timezone.utc) - env.created_at < timedelta(minutes=1)


def test_from_cloudevent_rejects_non_mapping() -> None:
    """A list is not an event."""
    with pytest.raises(EnvelopeError, match="CloudEvent must be a JSON object"):
        EventEnvelope.from_cloudevent([])  # type: ignore[arg-type]
