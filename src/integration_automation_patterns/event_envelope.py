"""The event envelope: one unit of integration work, its lifecycle and its wire forms.

An ``EventEnvelope`` carries a payload together with what reliable delivery
needs: a unique id that doubles as the idempotency key, where the event came
from, the delivery status, the number of attempts and the retry policy.

The delivery lifecycle is enforced. The legal moves are::

    PENDING      -> DISPATCHED | SKIPPED
    DISPATCHED   -> DISPATCHED | ACKNOWLEDGED | PROCESSED | RETRYING | FAILED
                    | SKIPPED
    ACKNOWLEDGED -> PROCESSED | RETRYING | FAILED
    RETRYING     -> DISPATCHED | FAILED | SKIPPED
    PROCESSED, FAILED, SKIPPED are terminal

Any other move raises ``InvalidTransitionError`` and leaves the envelope as it
was. Envelopes serialise losslessly to a dict or JSON (``to_dict``/``to_json``)
and map to the CloudEvents 1.0 JSON event format (``to_cloudevent``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ._types import IntegrationError, Jitter, RetryPolicy, new_event_id

__all__ = [
    "DeliveryStatus",
    "EnvelopeError",
    "EventEnvelope",
    "InvalidTransitionError",
    "RetryPolicy",
]

logger = logging.getLogger(__name__)

_UTC = timezone.utc
_DEFAULT_POLICY = RetryPolicy()


class EnvelopeError(IntegrationError, ValueError):
    """An envelope or its serialised form is not valid; the message names the field."""


class DeliveryStatus(enum.Enum):
    """Where one event stands in its delivery lifecycle."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    PROCESSED = "processed"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"


class InvalidTransitionError(EnvelopeError):
    """A lifecycle move that the delivery state machine does not allow.

    Attributes:
        current: the status the envelope is in (and stays in).
        target: the status the move asked for.
    """

    def __init__(self, current: DeliveryStatus, target: DeliveryStatus) -> None:
        super().__init__(f"cannot move an event from {current.value} to {target.value}")
        self.current = current
        self.target = target


_S = DeliveryStatus
_LEGAL_MOVES: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    _S.PENDING: frozenset({_S.DISPATCHED, _S.SKIPPED}),
    _S.DISPATCHED: frozenset(
        {_S.DISPATCHED, _S.ACKNOWLEDGED, _S.PROCESSED, _S.RETRYING}
        | {_S.FAILED, _S.SKIPPED}
    ),
    _S.ACKNOWLEDGED: frozenset({_S.PROCESSED, _S.RETRYING, _S.FAILED}),
    _S.RETRYING: frozenset({_S.DISPATCHED, _S.FAILED, _S.SKIPPED}),
    _S.PROCESSED: frozenset(),
    _S.FAILED: frozenset(),
    _S.SKIPPED: frozenset(),
}
_TERMINAL = frozenset({_S.PROCESSED, _S.FAILED, _S.SKIPPED})


def _utc_now() -> datetime:
    return datetime.now(_UTC)


@dataclass
class EventEnvelope:
    """One event in flight, with the metadata that makes its delivery reliable.

    Attributes:
        event_id: globally unique id; also the idempotency key.
        event_type: what happened, e.g. ``"crm.contact.updated"``.
        source_system: the system the event came from.
        payload: the event's JSON object.
        correlation_id: links the event to a wider workflow ("" when none).
        schema_version: version of the payload's schema.
        created_at: when the event was created (UTC).
        status: where the event stands in its delivery lifecycle.
        attempt_count: delivery attempts made so far.
        retry_policy: how many attempts to make and how long to wait.
        tags: free string metadata for routing and observability.
    """

    event_id: str
    event_type: str
    source_system: str
    payload: dict[str, Any]
    correlation_id: str = ""
    schema_version: str = "1.0"
    created_at: datetime = field(default_factory=_utc_now)
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempt_count: int = 0
    retry_policy: RetryPolicy = _DEFAULT_POLICY
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        event_type: str,
        source_system: str,
        payload: dict[str, Any],
        **fields: Any,
    ) -> EventEnvelope:
        """Create a PENDING envelope with a fresh UUIDv7 ``event_id``.

        Args:
            event_type: what happened.
            source_system: where it happened.
            payload: the event's JSON object.
            **fields: any other envelope field, e.g. ``correlation_id``.
        """
        return cls(new_event_id(), event_type, source_system, payload, **fields)

    @property
    def idempotency_key(self) -> str:
        """Return the key consumers deduplicate on: the ``event_id``."""
        return self.event_id

    # -- lifecycle ---------------------------------------------------------

    def mark_dispatched(self) -> None:
        """Record a delivery attempt; a redelivery counts another attempt."""
        self._move(DeliveryStatus.DISPATCHED)
        self.attempt_count += 1

    def mark_acknowledged(self) -> None:
        """Record that the receiver confirmed receipt."""
        self._move(DeliveryStatus.ACKNOWLEDGED)

    def mark_processed(self) -> None:
        """Record that processing finished successfully."""
        self._move(DeliveryStatus.PROCESSED)

    def mark_failed(self, *, permanent: bool = False) -> None:
        """Record a failed attempt: RETRYING, or FAILED once the policy is used up.

        Args:
            permanent: give up now (FAILED) whatever attempts remain, e.g. for
                an error that no retry can fix.
        """
        exhausted = permanent or self.retry_policy.is_exhausted(self.attempt_count)
        self._move(DeliveryStatus.FAILED if exhausted else DeliveryStatus.RETRYING)

    def mark_skipped(self, reason: str = "") -> None:
        """Record that the event was deliberately not processed.

        Args:
            reason: why, kept in ``tags["skip_reason"]`` when given.
        """
        self._move(DeliveryStatus.SKIPPED)
        if reason:
            self.tags["skip_reason"] = reason

    def next_retry_wait_seconds(self) -> int:
        """Return the seconds to wait before redelivery, or 0 unless RETRYING."""
        if self.status is not DeliveryStatus.RETRYING:
            return 0
        return self.retry_policy.wait_seconds_for_attempt(self.attempt_count)

    def is_terminal(self) -> bool:
        """Return True once the event is PROCESSED, FAILED or SKIPPED."""
        return self.status in _TERMINAL

    def can_move_to(self, target: DeliveryStatus) -> bool:
        """Return True if the lifecycle allows moving to ``target`` now."""
        return target in _LEGAL_MOVES[self.status]

    def _move(self, target: DeliveryStatus) -> None:
        current = self.status
        if target not in _LEGAL_MOVES[current]:
            raise InvalidTransitionError(current, target)

        self.status = target
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "event %s moved from %s to %s",
                self.event_id,
                current.value,
                target.value,
                extra={"event_id": self.event_id, "status": target.value},
            )

    # -- observability -----------------------------------------------------

    def to_audit_line(self) -> str:
        """Return one structured log line describing the envelope."""
        return (
            f"[INTEGRATION_EVENT] event_id={self.event_id} "
            f"type={self.event_type} "
            f"source={self.source_system} "
            f"status={self.status.value} "
            f"attempts={self.attempt_count} "
            f"correlation={self.correlation_id or 'none'} "
            f"schema={self.schema_version} "
            f"created={self.created_at.isoformat()}"
        )

    # -- dict and JSON -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return every field as JSON-ready values.

        Times are RFC 3339 UTC strings, the status is its value and the retry
        policy a nested object. The payload and tags are the envelope's own
        objects, not copies.
        """
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "source_system": self.source_system,
            "payload": self.payload,
            "correlation_id": self.correlation_id,
            "schema_version": self.schema_version,
            "created_at": self._created_text(),
            "status": self.status.value,
            "attempt_count": self.attempt_count,
            "retry_policy": _policy_to_dict(self.retry_policy),
            "tags": self.tags,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventEnvelope:
        """Rebuild an envelope from ``to_dict()`` output.

        ``event_id``, ``event_type``, ``source_system`` and ``payload`` are
        required; the other fields fall back to the constructor's defaults.

        Raises:
            EnvelopeError: a field is missing or has the wrong type or value;
                the message names it.
        """
        _require_mapping(data, "envelope")
        created = data.get("created_at")
        return cls(
            event_id=_required_str(data, "event_id"),
            event_type=_required_str(data, "event_type"),
            source_system=_required_str(data, "source_system"),
            payload=_json_object(data.get("payload", _MISSING), "payload"),
            correlation_id=_optional_str(data, "correlation_id", ""),
            schema_version=_optional_str(data, "schema_version", "1.0"),
            created_at=_utc_now() if created is None else _parse_time(created),
            status=_status(data.get("status", "pending")),
            attempt_count=_attempt_count(data.get("attempt_count", 0)),
            retry_policy=_policy_from(data.get("retry_policy")),
            tags=_tags(data.get("tags", {})),
        )

    def to_json(self) -> str:
        """Return ``to_dict()`` as a JSON document.

        Raises:
            EnvelopeError: the payload or tags hold a value JSON cannot carry.
        """
        try:
            return json.dumps(self.to_dict(), allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise EnvelopeError(f"payload is not JSON-serialisable: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes | bytearray) -> EventEnvelope:
        """Rebuild an envelope from ``to_json()`` output.

        Raises:
            EnvelopeError: the text is not UTF-8 JSON, or a field is invalid.
        """
        return cls.from_dict(_loads(text, "envelope"))

    # -- CloudEvents ---------------------------------------------------------

    def to_cloudevent(self) -> dict[str, Any]:
        """Return the envelope as a CloudEvents 1.0 event in the JSON format.

        ``id``, ``source``, ``type`` and ``time`` come from the envelope, the
        payload is ``data`` (``application/json``), and the correlation id and
        schema version travel as the ``correlationid`` and ``schemaversion``
        extension attributes. Tags named ``ce.<attribute>`` (as
        ``from_cloudevent`` stores foreign attributes) are written back as
        attributes. The payload is shared, not copied.

        Raises:
            EnvelopeError: the envelope cannot form a valid event, e.g. an
                empty ``source_system``.
        """
        if not (self.event_id and self.source_system and self.event_type):
            raise EnvelopeError(_empty_required_field(self))

        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.event_id,
            "source": self.source_system,
            "type": self.event_type,
            "time": self._created_text(),
            "datacontenttype": "application/json",
            "schemaversion": self.schema_version,
            "data": self.payload,
        }
        if self.correlation_id:
            event["correlationid"] = self.correlation_id
        if self.tags:
            _write_foreign_attributes(self.tags, event)
        return event

    def to_cloudevent_json(self) -> bytes:
        """Return the event as CloudEvents structured-mode JSON, UTF-8 encoded.

        This is the body of an ``application/cloudevents+json`` HTTP request or
        Kafka record: the document ``to_cloudevent()`` describes, written
        straight to text instead of through an intermediate dict.

        Raises:
            EnvelopeError: the envelope cannot form a valid event, or the
                payload holds a value JSON cannot carry.
        """
        texts = (self.event_id, self.source_system, self.event_type)
        if self.tags or not all(type(t) is str and t for t in texts):
            return _dump_event(self.to_cloudevent())  # the general path
        if type(self.schema_version) is not str or type(self.correlation_id) is not str:
            return _dump_event(self.to_cloudevent())

        quote = _quote
        head = (
            f'{{"specversion":"1.0","id":{quote(self.event_id)},'
            f'"source":{quote(self.source_system)},"type":{quote(self.event_type)},'
            f'"time":{quote(self._created_text())},'
            f'"datacontenttype":"application/json",'
            f'"schemaversion":{quote(self.schema_version)},'
        )
        if self.correlation_id:
            head += f'"correlationid":{quote(self.correlation_id)},'
        return f'{head}"data":{_dump_payload(self.payload)}}}'.encode()

    def _created_text(self) -> str:
        """Return ``created_at`` as RFC 3339 text, formatted once per value."""
        # Formatting an aware datetime costs more than building the rest of the
        # event, and an envelope is written again on every redelivery. A
        # datetime is immutable, so the text stays right for as long as the
        # field holds the very object it was made from (hence ``is``). Kept
        # in the instance dict, outside the dataclass fields, so equality,
        # repr and to_dict are unchanged.
        created = self.created_at
        memo = self.__dict__.get("_created_memo")
        if memo is not None and memo[0] is created:
            cached: str = memo[1]
            return cached

        text = _format_time(created)
        self.__dict__["_created_memo"] = (created, text)
        return text

    @classmethod
    def from_cloudevent(cls, event: Mapping[str, Any]) -> EventEnvelope:
        """Build a PENDING envelope from a CloudEvents 1.0 JSON-format event.

        The payload is ``data`` (a JSON object) or ``data_base64`` (base64 of a
        UTF-8 JSON object). ``correlationid`` and ``schemaversion`` map to their
        fields; ``subject``, ``dataschema`` and any other extension are kept as
        string tags named ``ce.<attribute>``. Attributes whose value is null
        count as absent (JSON format §3.1). A missing ``time`` means now.

        Raises:
            EnvelopeError: a required attribute is missing or empty, an
                attribute has the wrong type, an extension name breaks the
                naming rule (spec §3.1.1: lower-case ASCII letters and digits),
                or the data is not a JSON object; the message names it.
        """
        _require_mapping(event, "CloudEvent")
        if event.get("specversion") != "1.0":
            raise EnvelopeError(_specversion_problem(event))

        # Positional in the constructor's field order: keywords cost more.
        return cls(
            _ce_required(event, "id"),
            _ce_required(event, "type"),
            _ce_required(event, "source"),
            _ce_payload(event),
            _ce_optional(event, "correlationid", ""),
            _ce_optional(event, "schemaversion", "1.0"),
            _now_or_time(event.get("time")),
            tags=_foreign_attributes(event),
        )


# -- time ---------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
    r"(?:[Zz]|([+-])(\d\d):(\d\d))",
    re.ASCII,
)


def _format_time(value: datetime) -> str:
    """Return ``value`` as RFC 3339 in UTC with a ``Z``; naive means UTC."""
    if value.tzinfo is not _UTC:
        value = (
            value.replace(tzinfo=_UTC)
            if value.tzinfo is None
            else value.astimezone(_UTC)
        )
    return value.isoformat()[:-6] + "Z"


def _parse_time(text: object, where: str = "created_at") -> datetime:
    """Parse an RFC 3339 date-time (section 5.6) into an aware UTC datetime."""
    if type(text) is str and _is_plain_utc(text):
        try:
            return _from_plain_utc(text)
        except ValueError:
            pass  # the general parser below explains what is wrong
    return _parse_rfc3339(text, where)


if sys.version_info >= (3, 11):
    # From 3.11 on fromisoformat reads the Z itself, sparing a string copy.
    _from_plain_utc = datetime.fromisoformat
else:

    def _from_plain_utc(text: str) -> datetime:
        return datetime.fromisoformat(text[:-1] + "+00:00")


def _is_plain_utc(text: str) -> bool:
    """Return True for the shape ``to_dict`` writes: seconds or micros, then Z."""
    # Every third character from index 4 is a separator: one slice compares
    # them all ("2024-05-01T12:30:45.123456Z" gives "--T::.").
    size = len(text)
    if size == 27:
        return text[4:20:3] == "--T::." and text[26] == "Z"
    return size == 20 and text[4:17:3] == "--T::" and text[19] == "Z"


def _parse_rfc3339(text: object, where: str) -> datetime:
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise EnvelopeError(f"{where} must be an RFC 3339 date-time, got {text!r}")

    year, month, day, hour, minute, second, fraction, sign, oh, om = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second)
        ).replace(microsecond=micro, tzinfo=_UTC)
        if sign is None:
            return moment
        if int(oh) > 23 or int(om) > 59:
            raise ValueError("offset out of range")
        offset = timedelta(hours=int(oh), minutes=int(om))
        return moment - offset if sign == "+" else moment + offset
    except (ValueError, OverflowError) as exc:
        raise EnvelopeError(f"{where} is not a valid date-time: {text!r}") from exc


# -- dict validation ----------------------------------------------------------

_MISSING: Any = object()


def _require_mapping(data: object, what: str) -> None:
    # A plain dict (what json.loads returns) skips the slower ABC check.
    if type(data) is not dict and not isinstance(data, Mapping):
        raise EnvelopeError(f"{what} must be a JSON object, got {type(data).__name__}")


def _required_str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name, _MISSING)
    if value is _MISSING:
        raise EnvelopeError(f"{name} is missing")
    if not isinstance(value, str):
        raise EnvelopeError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _optional_str(data: Mapping[str, Any], name: str, default: str) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise EnvelopeError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _json_object(value: object, name: str) -> dict[str, Any]:
    if value is _MISSING:
        raise EnvelopeError(f"{name} is missing")
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise EnvelopeError(f"{name} must be a JSON object with string keys")
    return value


def _status(value: object) -> DeliveryStatus:
    try:
        return DeliveryStatus(value)
    except (ValueError, TypeError) as exc:
        raise EnvelopeError(f"status is not a delivery status: {value!r}") from exc


def _attempt_count(value: object) -> int:
    if not _is_int(value) or value < 0:  # type: ignore[operator]
        raise EnvelopeError(f"attempt_count must be an integer >= 0, got {value!r}")
    return value  # type: ignore[return-value]


def _tags(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise EnvelopeError("tags must be a JSON object of string values")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- retry policy -------------------------------------------------------------


def _policy_to_dict(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "max_attempts": policy.max_attempts,
        "backoff_seconds": policy.backoff_seconds,
        "exponential": policy.exponential,
        "max_backoff_seconds": policy.max_backoff_seconds,
        "jitter": policy.jitter.value,
        "deadline_seconds": policy.deadline_seconds,
    }


_POLICY_FIELDS: dict[str, Callable[[object], bool]] = {
    "max_attempts": _is_int,
    "backoff_seconds": _is_number,
    "exponential": lambda v: isinstance(v, bool),
    "max_backoff_seconds": _is_number,
    "deadline_seconds": lambda v: v is None or _is_number(v),
}


def _policy_from(value: object) -> RetryPolicy:
    if value is None:
        return _DEFAULT_POLICY
    if not isinstance(value, Mapping):
        raise EnvelopeError("retry_policy must be a JSON object")

    options: dict[str, Any] = {}
    for name, valid in _POLICY_FIELDS.items():
        if name in value:
            if not valid(value[name]):
                raise EnvelopeError(f"retry_policy.{name} has the wrong type")
            options[name] = value[name]
    if "jitter" in value:
        options["jitter"] = _jitter(value["jitter"])

    try:
        return RetryPolicy(**options)
    except ValueError as exc:
        raise EnvelopeError(f"retry_policy is not valid: {exc}") from exc


def _jitter(value: object) -> Jitter:
    try:
        return Jitter(value)
    except (ValueError, TypeError) as exc:
        raise EnvelopeError(f"retry_policy.jitter is unknown: {value!r}") from exc


def _loads(text: object, what: str) -> Any:
    if not isinstance(text, (str, bytes, bytearray)):
        raise EnvelopeError(f"{what} JSON must be str or bytes")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise EnvelopeError(f"{what} is not valid UTF-8 JSON: {exc}") from exc


# -- CloudEvents --------------------------------------------------------------

_CE_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "time", "datacontenttype"}
    | {"correlationid", "schemaversion", "data", "data_base64"}
)
_CE_NAME = re.compile(r"[a-z0-9]+", re.ASCII)
_TAG_PREFIX = "ce."
_PLAIN_JSON = (None, "application/json")


def _specversion_problem(event: Mapping[str, Any]) -> str:
    if event.get("specversion") is None:
        return "CloudEvent attribute specversion is missing"
    return f"CloudEvent specversion {event['specversion']!r} is not supported"


def _ce_required(event: Mapping[str, Any], name: str) -> str:
    value = event.get(name)
    if type(value) is str and value:
        return value
    if value is None:
        raise EnvelopeError(f"CloudEvent attribute {name} is missing")
    if not isinstance(value, str) or not value:
        raise EnvelopeError(f"CloudEvent attribute {name} must be a non-empty string")
    return value


def _ce_optional(event: Mapping[str, Any], name: str, default: str) -> str:
    value = event.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise EnvelopeError(f"CloudEvent attribute {name} must be a string")
    return value


def _ce_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    encoded = event.get("data_base64")
    content_type = event.get("datacontenttype")
    if type(data) is dict and encoded is None and content_type in _PLAIN_JSON:
        return data  # the shape to_cloudevent writes

    if content_type not in _PLAIN_JSON and not _is_json_media_type(content_type):
        raise EnvelopeError(
            f"CloudEvent datacontenttype {content_type!r} is not JSON; "
            "the envelope payload must be a JSON object"
        )
    if data is not None and encoded is not None:
        raise EnvelopeError("CloudEvent has both data and data_base64")
    if encoded is not None:
        return _decode_base64_payload(encoded)
    if data is None:
        return {}
    if type(data) is not dict:
        raise EnvelopeError("CloudEvent data must be a JSON object")
    return data


def _decode_base64_payload(encoded: object) -> dict[str, Any]:
    if not isinstance(encoded, str):
        raise EnvelopeError("CloudEvent data_base64 must be a string")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError("CloudEvent data_base64 is not valid base64") from exc
    return _json_object(_loads(raw, "CloudEvent data_base64"), "CloudEvent data")


def _is_json_media_type(content_type: object) -> bool:
    if not isinstance(content_type, str):
        raise EnvelopeError("CloudEvent attribute datacontenttype must be a string")
    media = content_type.split(";", 1)[0].strip().lower()
    return media in {"application/json", "text/json"} or media.endswith("+json")


def _foreign_attributes(event: Mapping[Any, Any]) -> dict[str, str]:
    """Keep attributes the envelope has no field for as ``ce.<name>`` tags."""
    if event.keys() <= _CE_ATTRIBUTES:
        return {}

    tags: dict[str, str] = {}
    for name, value in event.items():
        if name in _CE_ATTRIBUTES:
            continue
        if not isinstance(name, str) or not _CE_NAME.fullmatch(name):
            raise EnvelopeError(
                f"CloudEvent attribute name {name!r} must be lower-case ASCII "
                "letters and digits"
            )
        if value is not None:
            tags[_TAG_PREFIX + name] = _attribute_text(name, value)
    return tags


def _attribute_text(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    raise EnvelopeError(
        f"CloudEvent attribute {name} must be a string, integer or boolean"
    )


# The C string escaper behind json.dumps: attribute values are quoted with it
# directly, so writing an event serialises only the payload generically.
_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
_PAYLOAD_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def _dump_payload(payload: Any) -> str:
    try:
        return _PAYLOAD_ENCODER.encode(payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EnvelopeError(f"payload is not JSON-serialisable: {exc}") from exc


def _dump_event(event: dict[str, Any]) -> bytes:
    return _dump_payload(event).encode()


def _write_foreign_attributes(tags: Mapping[str, str], event: dict[str, Any]) -> None:
    for tag, value in tags.items():
        if not tag.startswith(_TAG_PREFIX):
            continue
        name = tag[len(_TAG_PREFIX) :]
        if name in _CE_ATTRIBUTES or not _CE_NAME.fullmatch(name):
            raise EnvelopeError(f"tag {tag!r} does not name a CloudEvent attribute")
        event[name] = value


def _empty_required_field(envelope: EventEnvelope) -> str:
    for name in ("event_id", "source_system", "event_type"):
        if not getattr(envelope, name):
            return f"{name} must not be empty in a CloudEvent"
    return "envelope is missing a required CloudEvent attribute"


def _now_or_time(text: object) -> datetime:
    if text is None:
        return _utc_now()
    return _parse_time(text, "CloudEvent attribute time")
