"""Kafka envelope: Java-compatible keys, headers, CloudEvents, DLQ and retry topics.

The library never talks to a broker. It turns events into producer records
(plain dicts of ``topic``, ``key``, ``value`` and ``headers``) that any client
can send, and turns consumed records back into envelopes. Around that core:

* :func:`murmur2` and :func:`partition_for` place a key on the same partition
  as the Java client's default partitioner.
* The CloudEvents Kafka protocol binding, binary and structured content modes.
* Confluent Schema Registry framing (:func:`to_wire_format`).
* Dead-letter records in Kafka Connect or Spring Kafka header conventions
  (:class:`DeadLetterContext`) and delayed retry topics (:class:`RetryTopics`).
* Poison messages surface as :class:`EnvelopeDecodeError`, which carries the
  raw record so it can go straight to a dead-letter topic.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import struct
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal, TypeAlias, TypedDict, cast

from ._types import (
    SYSTEM_CLOCK,
    Clock,
    IntegrationError,
    JSONObject,
    JSONValue,
    new_event_id,
)

__all__ = [
    "DeadLetterContext",
    "EnvelopeDecodeError",
    "HeaderStyle",
    "KafkaEnvelopeError",
    "KafkaEventEnvelope",
    "KafkaRecord",
    "ProducerRecord",
    "RetryTopics",
    "dead_letter_record",
    "from_wire_format",
    "murmur2",
    "partition_for",
    "to_wire_format",
]

logger = logging.getLogger(__name__)

HeaderStyle: TypeAlias = Literal["connect", "spring"]
HeaderInput: TypeAlias = (
    "Mapping[str, bytes | None] | Iterable[tuple[str, bytes | None]]"
)


class ProducerRecord(TypedDict):
    """A record ready for any Kafka producer: topic, key, value and headers.

    ``key`` is the partition key as ``str``, as in 0.2.0; confluent-kafka
    encodes a ``str`` key as UTF-8 itself, kafka-python needs
    ``key_serializer=str.encode``.
    """

    topic: str
    key: str
    value: bytes
    headers: list[tuple[str, bytes]]


class KafkaRecord(TypedDict):
    """A record that may carry a null key or value (a tombstone), as consumed."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


class KafkaEnvelopeError(IntegrationError, ValueError):
    """Bad input to the Kafka envelope: a field, header or frame that is wrong."""


class EnvelopeDecodeError(KafkaEnvelopeError):
    """A consumed record is not a valid envelope (a poison message).

    The raw record travels with the error, so a consumer can log it, skip it
    and hand it to :meth:`dead_letter` instead of crashing on it.

    Attributes:
        topic: the topic the record was read from.
        partition: its partition.
        offset: its offset.
        key: the record key exactly as consumed.
        value: the record value exactly as consumed.
        headers: the record headers in their original order.
    """

    def __init__(
        self,
        message: str,
        *,
        topic: str,
        partition: int | None,
        offset: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        super().__init__(
            f"{message} (topic={topic!r} partition={partition} offset={offset})"
        )
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = list(headers)

    def dead_letter(
        self,
        *,
        topic: str | None = None,
        header_style: HeaderStyle = "connect",
    ) -> KafkaRecord:
        """Build the dead-letter record for this poison message.

        Args:
            topic: the dead-letter topic; defaults to ``<topic>.dlq``.
            header_style: ``"connect"`` or ``"spring"`` context headers.
        """
        return dead_letter_record(
            self,
            topic=self.topic,
            key=self.key,
            value=self.value,
            headers=self.headers,
            partition=self.partition,
            offset=self.offset,
            dlq_topic=topic,
            header_style=header_style,
        )


# --------------------------------------------------------------------------
# Partitioning
# --------------------------------------------------------------------------

_MURMUR_SEED = 0x9747B28C
_MURMUR_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF
_BLOCK_READERS = [struct.Struct(f"<{n}I").unpack_from for n in range(33)]


def murmur2(data: bytes) -> int:
    """Return the Kafka Java client's murmur2 hash of ``data`` as a signed int.

    This is MurmurHash2 with seed ``0x9747b28c`` over little-endian 4-byte
    blocks, exactly as ``org.apache.kafka.common.utils.Utils.murmur2``; the
    result is a Java ``int`` (-2**31 .. 2**31-1).
    """
    length = len(data)
    m, mask = _MURMUR_M, _MASK32
    h = _MURMUR_SEED ^ length
    tail = length & 3
    body = length - tail

    blocks = body >> 2
    if blocks < 33:
        words = _BLOCK_READERS[blocks](data)
    else:
        words = struct.unpack_from(f"<{blocks}I", data)
    # XOR commutes with the 32-bit mask, so each block needs only two masks.
    for word in words:
        k = (word * m) & mask
        h = ((h * m) ^ ((k ^ (k >> 24)) * m)) & mask

    if tail:
        if tail == 3:
            h ^= data[body + 2] << 16
        if tail >= 2:
            h ^= data[body + 1] << 8
        h = ((h ^ data[body]) * m) & mask

    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def partition_for(key: str | bytes, num_partitions: int) -> int:
    """Return the partition the Java client's default partitioner picks for ``key``.

    That is ``(murmur2(key) & 0x7fffffff) % num_partitions``; a ``str`` key is
    hashed as its UTF-8 bytes. Records without a key are spread by the
    producer (sticky partitioning) and have no fixed partition.

    Raises:
        KafkaEnvelopeError: ``num_partitions`` is not a positive int, or the
            key is neither ``str`` nor bytes.
    """
    if isinstance(num_partitions, bool) or not isinstance(num_partitions, int):
        raise KafkaEnvelopeError(
            f"num_partitions must be an int, got {type(num_partitions).__name__}"
        )
    if num_partitions < 1:
        raise KafkaEnvelopeError(f"num_partitions must be >= 1, got {num_partitions}")

    return (murmur2(_key_bytes(key)) & 0x7FFFFFFF) % num_partitions


def _key_bytes(key: object) -> bytes:
    if isinstance(key, str):
        try:
            return key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise KafkaEnvelopeError("key is not encodable as UTF-8") from exc
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise KafkaEnvelopeError(f"key must be str or bytes, got {type(key).__name__}")


# --------------------------------------------------------------------------
# Schema Registry framing
# --------------------------------------------------------------------------

_WIRE_HEADER = struct.Struct(">bi")
_WIRE_MAGIC = 0


def to_wire_format(schema_id: int, payload: bytes) -> bytes:
    """Frame ``payload`` for Confluent Schema Registry: magic 0, id, payload.

    The frame is one zero byte, the schema id as a big-endian signed 32-bit
    int, then the serialized payload (Avro, JSON Schema text or Protobuf).

    Raises:
        KafkaEnvelopeError: the schema id does not fit in 32 bits, or the
            payload is not bytes.
    """
    if isinstance(schema_id, bool) or not isinstance(schema_id, int):
        raise KafkaEnvelopeError(
            f"schema_id must be an int, got {type(schema_id).__name__}"
        )
    if not 0 <= schema_id <= 0x7FFFFFFF:
        raise KafkaEnvelopeError(f"schema_id must be in 0..2**31-1, got {schema_id}")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise KafkaEnvelopeError(f"payload must be bytes, got {type(payload).__name__}")

    return _WIRE_HEADER.pack(_WIRE_MAGIC, schema_id) + bytes(payload)


def from_wire_format(data: bytes) -> tuple[int, bytes]:
    """Split a Schema Registry frame into ``(schema_id, payload)``.

    The id is read as ``to_wire_format`` writes it, so every frame this
    returns frames back to the same bytes.

    Raises:
        KafkaEnvelopeError: the frame is shorter than five bytes, its first
            byte is not the magic byte 0 (0x01 is the schema-GUID framing,
            which this function does not read), or its schema id is negative
            (no registry assigns one, and Confluent's Java and Python clients
            disagree on what those four bytes mean).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise KafkaEnvelopeError(f"frame must be bytes, got {type(data).__name__}")
    frame = bytes(data)
    if len(frame) < _WIRE_HEADER.size:
        raise KafkaEnvelopeError(
            f"Schema Registry frame is {len(frame)} bytes; it needs at least "
            f"{_WIRE_HEADER.size} (magic byte and 4-byte schema id)"
        )

    magic, schema_id = _WIRE_HEADER.unpack_from(frame)
    if magic != _WIRE_MAGIC:
        raise KafkaEnvelopeError(
            f"Schema Registry frame starts with magic byte 0x{frame[0]:02x}; "
            "expected 0x00"
        )
    if schema_id < 0:
        raise KafkaEnvelopeError(
            f"Schema Registry frame carries schema id {schema_id}; registry ids "
            "are in 0..2**31-1"
        )
    return schema_id, frame[_WIRE_HEADER.size :]


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------


def _header_pairs(headers: object, what: str) -> list[tuple[str, bytes]]:
    """Return ``headers`` as ordered ``(str, bytes)`` pairs, duplicates kept.

    A mapping's ``str`` values are UTF-8 encoded; a null value becomes ``b""``.
    """
    try:
        items = headers.items() if isinstance(headers, Mapping) else headers
        pairs = [_header_pair(item, what) for item in cast("Iterable[Any]", items)]
    except TypeError as exc:
        raise KafkaEnvelopeError(
            f"{what} must be a mapping or a sequence of (name, value) pairs"
        ) from exc
    return pairs


def _header_pair(item: object, what: str) -> tuple[str, bytes]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise KafkaEnvelopeError(f"{what}: each header must be a (name, value) pair")
    name, value = item
    if not isinstance(name, str):
        raise KafkaEnvelopeError(f"{what}: header name {name!r} is not a str")
    if value is None:
        return name, b""
    if isinstance(value, str):
        return name, _utf8(value, f"header {name!r}")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return name, bytes(value)
    raise KafkaEnvelopeError(
        f"{what}: header {name!r} value must be bytes or str, "
        f"got {type(value).__name__}"
    )


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise KafkaEnvelopeError(f"{what} is not encodable as UTF-8") from exc


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KafkaEnvelopeError(f"{what} is not valid UTF-8") from exc


def _last(headers: Sequence[tuple[str, bytes]], name: str) -> bytes | None:
    for header, value in reversed(headers):
        if header == name:
            return value
    return None


# --------------------------------------------------------------------------
# The envelope
# --------------------------------------------------------------------------

_METADATA_HEADERS = (
    "event_id",
    "event_type",
    "source_system",
    "schema_version",
    "correlation_id",
)
_OWN_HEADERS = frozenset((*_METADATA_HEADERS, "dead_letter_reason"))

_CE_PREFIX = "ce_"
_CE_CONTENT_TYPE = "content-type"
_CE_STRUCTURED = "application/cloudevents"
_CE_JSON = "application/cloudevents+json; charset=UTF-8"
_DATA_CONTENT_TYPE = "application/json"
_CE_ATTRIBUTES = {
    "id": "event_id",
    "type": "event_type",
    "source": "source_system",
    "schemaversion": "schema_version",
    "correlationid": "correlation_id",
    "partitionkey": "partition_key",
    "time": "created_at",
}


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _rfc3339(moment: datetime) -> str:
    text = _aware(moment).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _parse_time(text: object, what: str) -> datetime:
    if not isinstance(text, str):
        raise KafkaEnvelopeError(f"{what} must be an RFC 3339 string")
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise KafkaEnvelopeError(f"{what} is not an RFC 3339 time: {text!r}") from exc
    if moment.tzinfo is None:
        raise KafkaEnvelopeError(f"{what} has no UTC offset: {text!r}")
    return moment


def _dump_json(value: JSONValue, what: str) -> bytes:
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise KafkaEnvelopeError(f"{what} is not JSON-serialisable: {exc}") from exc
    return text.encode("utf-8")


def _load_json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        loaded = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise KafkaEnvelopeError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(loaded, dict):
        raise KafkaEnvelopeError(f"{what} must be a JSON object")
    return loaded


def _require_str(body: Mapping[str, Any], name: str, default: str | None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        if value is None:
            raise KafkaEnvelopeError(f"field {name!r} is missing")
        raise KafkaEnvelopeError(f"field {name!r} must be a string")
    return value


@dataclass
class KafkaEventEnvelope:
    """An integration event bound for, or read from, a Kafka topic.

    The 0.2.0 fields and their order are kept. ``partition`` and ``offset``
    say where a consumed record came from (``None`` before it is produced); to
    compute the partition a key maps to, call :meth:`partition_for`.

    ``headers`` accepts the 0.2.0 ``dict`` of str values, or an ordered
    sequence of ``(name, bytes)`` pairs in which a name may repeat (Kafka
    allows both). A dict stays a dict; pairs are kept as a list. Either way
    :attr:`header_list` is the ordered ``(str, bytes)`` view that goes on the
    wire.

    Attributes:
        correlation_id: keyword-only; ties the event to the request or saga
            that caused it.
    """

    event_id: str
    event_type: str
    source_system: str
    payload: JSONObject
    topic: str
    partition_key: str
    schema_version: str = "1.0"
    created_at: datetime = field(default_factory=_utc_now)
    headers: dict[str, str] | list[tuple[str, bytes]] = field(default_factory=dict)
    partition: int | None = None
    offset: int | None = None
    dead_letter_reason: str | None = None
    correlation_id: str = field(default="", kw_only=True)
    _raw: KafkaRecord | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.headers, dict):
            self.headers = _header_pairs(self.headers, "headers")

    @classmethod
    def create(  # noqa: PLR0917 -- the 0.2.0 signature is positional
        cls,
        event_type: str,
        source_system: str,
        payload: JSONObject,
        topic: str,
        partition_key: str,
        schema_version: str = "1.0",
        headers: dict[str, str] | list[tuple[str, bytes]] | None = None,
        *,
        correlation_id: str = "",
    ) -> KafkaEventEnvelope:
        """Create an envelope with a new UUIDv7 event id and the current UTC time."""
        return cls(
            event_id=new_event_id(),
            event_type=event_type,
            source_system=source_system,
            payload=payload,
            topic=topic,
            partition_key=partition_key,
            schema_version=schema_version,
            headers={} if headers is None else headers,
            correlation_id=correlation_id,
        )

    @property
    def header_list(self) -> list[tuple[str, bytes]]:
        """Return the application headers as ordered ``(str, bytes)`` pairs."""
        return _header_pairs(self.headers, "headers")

    def partition_for(self, num_partitions: int) -> int:
        """Return the partition the Java client picks for this envelope's key."""
        return partition_for(self.partition_key, num_partitions)

    # -- plain records ------------------------------------------------------

    def to_producer_record(self) -> ProducerRecord:
        """Return the record to produce: JSON body, key and metadata headers.

        The event id, type, source, schema version and correlation id travel
        both in the JSON body and as headers, so a consumer can route or
        filter without decoding the value; the application headers follow.
        The body also keeps what 0.2.0 wrote: ``topic``, ``headers`` (an
        object of text values) and ``created_at`` in ``isoformat()`` form
        (``+00:00``, which Python 3.10's ``fromisoformat`` reads). The key is
        the partition key as ``str``.
        """
        application = self.header_list
        body: dict[str, JSONValue] = {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "source_system": self.source_system,
            "schema_version": self.schema_version,
            "correlation_id": self.correlation_id,
            "partition_key": self.partition_key,
            "topic": self.topic,
            "created_at": _aware(self.created_at).isoformat(),
            "headers": _headers_as_text(application),
            "payload": self.payload,
        }
        if self.dead_letter_reason is not None:
            body["dead_letter_reason"] = self.dead_letter_reason

        return ProducerRecord(
            topic=self.topic,
            key=self._record_key(),
            value=_dump_json(body, "payload"),
            headers=self._metadata_headers() + application,
        )

    def _record_key(self) -> str:
        _utf8(self.partition_key, "partition_key")
        return self.partition_key

    def _metadata_headers(self) -> list[tuple[str, bytes]]:
        pairs = [
            (name, _utf8(str(getattr(self, name)), name)) for name in _METADATA_HEADERS
        ]
        if self.dead_letter_reason is not None:
            reason = _utf8(self.dead_letter_reason, "dead_letter_reason")
            pairs.append(("dead_letter_reason", reason))
        return pairs

    @classmethod
    def from_consumer_record(
        cls,
        topic: str,
        partition: int | None,
        offset: int | None,
        key: bytes | str | None,
        value: bytes | str | None,
        *,
        headers: HeaderInput | None = None,
    ) -> KafkaEventEnvelope:
        """Decode a consumed record produced by :meth:`to_producer_record`.

        The body is authoritative for the event's metadata; headers other
        than the metadata ones become the envelope's ``headers`` (as pairs, in
        order). When no record headers are given, the body's ``headers``
        object (as 0.2.0 wrote it) becomes a ``dict`` of them. A ``str`` value
        is read as UTF-8 text. The raw record is kept, so :meth:`dead_letter`
        forwards the original bytes untouched.

        Raises:
            EnvelopeDecodeError: the value is null, not JSON, or lacks a
                required field; the error carries the raw record.
        """
        where = (topic, partition, offset)
        pairs: list[tuple[str, bytes]] = []
        try:
            pairs = [] if headers is None else _header_pairs(headers, "headers")
            envelope = cls._decode(topic, key, value, pairs)
        except KafkaEnvelopeError as exc:
            raise _poison(exc, where, key, value, pairs) from exc

        raw_key = _raw_bytes(key)
        envelope.partition, envelope.offset = partition, offset
        envelope._raw = KafkaRecord(
            topic=topic, key=raw_key, value=_raw_bytes(value), headers=list(pairs)
        )
        return envelope

    @classmethod
    def _decode(
        cls,
        topic: str,
        key: object,
        value: object,
        headers: list[tuple[str, bytes]],
    ) -> KafkaEventEnvelope:
        if value is None:
            raise KafkaEnvelopeError("value is null (a tombstone), not an envelope")
        if isinstance(value, str):
            value = _utf8(value, "value")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise KafkaEnvelopeError(
                f"value must be bytes or str, got {type(value).__name__}"
            )
        if key is not None and _raw_bytes(key) is None:
            raise KafkaEnvelopeError(f"key must be bytes, got {type(key).__name__}")

        body = _load_json_object(bytes(value), "value")
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise KafkaEnvelopeError("field 'payload' must be a JSON object")
        reason = body.get("dead_letter_reason")
        if reason is not None and not isinstance(reason, str):
            raise KafkaEnvelopeError("field 'dead_letter_reason' must be a string")

        partition_key = _require_str(body, "partition_key", "")
        raw_key = _raw_bytes(key)
        if raw_key is not None:
            partition_key = _text(raw_key, "key")

        return cls(
            event_id=_require_str(body, "event_id", None),
            event_type=_require_str(body, "event_type", None),
            source_system=_require_str(body, "source_system", None),
            payload=payload,
            topic=topic,
            partition_key=partition_key,
            schema_version=_require_str(body, "schema_version", "1.0"),
            created_at=_parse_time(body.get("created_at"), "field 'created_at'"),
            headers=_consumed_headers(headers, body),
            dead_letter_reason=reason,
            correlation_id=_require_str(body, "correlation_id", ""),
        )

    def mark_dead_letter(self, reason: str) -> KafkaEventEnvelope:
        """Return a copy bound for ``<topic>.dlq``; the original is unchanged."""
        copy = replace(
            self,
            topic=f"{self.topic}.dlq",
            dead_letter_reason=reason,
            headers=self._copied_headers(),
            payload=dict(self.payload),
        )
        copy._raw = self._raw
        return copy

    def _copied_headers(self) -> dict[str, str] | list[tuple[str, bytes]]:
        if isinstance(self.headers, dict):
            return dict(self.headers)
        return list(self.headers)

    # -- dead letters ---------------------------------------------------------

    def dead_letter(
        self,
        exception: BaseException,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        header_style: HeaderStyle = "connect",
    ) -> KafkaRecord:
        """Build the dead-letter record for this envelope after ``exception``.

        The key, value and headers are the original bytes when the envelope
        was consumed, else those of :meth:`to_producer_record`; the error
        context is added in Kafka Connect (``__connect.errors.*``) or Spring
        Kafka (``kafka_dlt-*``) header names.

        Args:
            exception: why processing failed.
            topic: the dead-letter topic; defaults to ``<topic>.dlq``.
            partition: the original partition; defaults to ``self.partition``.
            offset: the original offset; defaults to ``self.offset``.
            header_style: ``"connect"`` or ``"spring"``.
        """
        source: KafkaRecord
        if self._raw is not None:
            source = self._raw
        else:
            produced = self.to_producer_record()
            source = KafkaRecord(
                topic=produced["topic"],
                key=_utf8(produced["key"], "partition_key"),
                value=produced["value"],
                headers=produced["headers"],
            )

        return dead_letter_record(
            exception,
            topic=self.topic,
            key=source["key"],
            value=source["value"],
            headers=source["headers"],
            partition=self.partition if partition is None else partition,
            offset=self.offset if offset is None else offset,
            dlq_topic=topic,
            header_style=header_style,
            event_id=self.event_id,
        )

    # -- CloudEvents Kafka binding ---------------------------------------------

    def _ce_attributes(self) -> dict[str, str]:
        attributes = {
            "specversion": "1.0",
            "id": self.event_id,
            "source": self.source_system,
            "type": self.event_type,
            "time": _rfc3339(self.created_at),
            "partitionkey": self.partition_key,
            "schemaversion": self.schema_version,
        }
        if self.correlation_id:
            attributes["correlationid"] = self.correlation_id
        return attributes

    def to_cloudevents_binary(self) -> ProducerRecord:
        """Return the record in the CloudEvents Kafka binding's binary mode.

        Attributes become ``ce_<name>`` headers, ``datacontenttype`` becomes
        the ``content-type`` header, the payload (JSON) is the value, and the
        key is the ``partitionkey`` attribute (binding §3.1, §3.2), a ``str``
        as in :meth:`to_producer_record`.
        """
        headers = [
            (f"{_CE_PREFIX}{name}", _utf8(value, f"attribute {name!r}"))
            for name, value in self._ce_attributes().items()
        ]
        headers.append((_CE_CONTENT_TYPE, _DATA_CONTENT_TYPE.encode("ascii")))

        return ProducerRecord(
            topic=self.topic,
            key=self._record_key(),
            value=_dump_json(self.payload, "payload"),
            headers=headers + self.header_list,
        )

    def to_cloudevents_structured(self) -> ProducerRecord:
        """Return the record in the binding's structured mode (JSON event format).

        The whole event, attributes and data, is the value; ``content-type``
        is ``application/cloudevents+json`` (binding §3.3). The key is the
        partition key as ``str``, as in :meth:`to_producer_record`.
        """
        event: dict[str, JSONValue] = dict(self._ce_attributes())
        event["datacontenttype"] = _DATA_CONTENT_TYPE
        event["data"] = self.payload

        return ProducerRecord(
            topic=self.topic,
            key=self._record_key(),
            value=_dump_json(event, "payload"),
            headers=[(_CE_CONTENT_TYPE, _CE_JSON.encode("ascii")), *self.header_list],
        )

    @classmethod
    def from_cloudevents_record(
        cls,
        key: bytes | str | None,
        value: bytes | None,
        headers: HeaderInput,
        *,
        topic: str = "",
        partition: int | None = None,
        offset: int | None = None,
    ) -> KafkaEventEnvelope:
        """Read a CloudEvent in either content mode of the Kafka binding.

        The mode is told apart by the ``content-type`` header, as the binding
        says: a value starting with ``application/cloudevents`` is structured,
        anything else binary. Only the JSON event format and JSON object data
        are read. Headers that are not CloudEvents attributes are kept.

        Raises:
            KafkaEnvelopeError: a required attribute is missing, the data is
                not a JSON object, or a header or value is malformed.
        """
        pairs = _header_pairs(headers, "headers")
        content_type = _content_type(pairs)
        if content_type.lower().startswith(_CE_STRUCTURED):
            fields, rest = _read_structured(value, content_type, pairs)
        else:
            fields, rest = _read_binary(value, content_type, pairs)

        if key is not None:
            key_bytes = _key_bytes(key)
            fields["partition_key"] = _text(key_bytes, "key")
        return cls._from_ce_fields(fields, rest, topic, partition, offset)

    @classmethod
    def _from_ce_fields(
        cls,
        fields: dict[str, Any],
        headers: list[tuple[str, bytes]],
        topic: str,
        partition: int | None,
        offset: int | None,
    ) -> KafkaEventEnvelope:
        for name in ("event_id", "event_type", "source_system"):
            if not fields.get(name):
                attribute = next(k for k, v in _CE_ATTRIBUTES.items() if v == name)
                raise KafkaEnvelopeError(f"CloudEvents attribute {attribute!r} missing")
        created = fields.get("created_at")

        return cls(
            event_id=fields["event_id"],
            event_type=fields["event_type"],
            source_system=fields["source_system"],
            payload=fields["payload"],
            topic=topic,
            partition_key=fields.get("partition_key", ""),
            schema_version=fields.get("schema_version", "1.0"),
            created_at=_utc_now() if created is None else created,
            headers=headers,
            partition=partition,
            offset=offset,
            correlation_id=fields.get("correlation_id", ""),
        )


def _headers_as_text(pairs: list[tuple[str, bytes]]) -> JSONObject:
    """Return headers as 0.2.0 wrote them in the body: name to text, last wins."""
    return {name: value.decode("utf-8", "replace") for name, value in pairs}


def _consumed_headers(
    headers: list[tuple[str, bytes]], body: Mapping[str, Any]
) -> dict[str, str] | list[tuple[str, bytes]]:
    """Return the record's application headers, else the body's 0.2.0 copy."""
    if headers:
        return [pair for pair in headers if pair[0] not in _OWN_HEADERS]

    written = body.get("headers", {})
    if not isinstance(written, dict) or not all(
        isinstance(value, str) for value in written.values()
    ):
        raise KafkaEnvelopeError("field 'headers' must be an object of strings")
    return dict(written)


def _raw_bytes(data: object) -> bytes | None:
    """Return ``data`` as bytes when it is bytes-like or text, else ``None``."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        # surrogatepass keeps even unencodable text for the dead-letter record.
        return data.encode("utf-8", "surrogatepass")
    return None


def _poison(
    cause: KafkaEnvelopeError,
    where: tuple[str, int | None, int | None],
    key: object,
    value: object,
    headers: list[tuple[str, bytes]],
) -> EnvelopeDecodeError:
    topic, partition, offset = where
    logger.warning(
        "undecodable Kafka record",
        extra={"topic": topic, "partition": partition, "offset": offset},
    )
    return EnvelopeDecodeError(
        str(cause),
        topic=topic,
        partition=partition,
        offset=offset,
        key=_raw_bytes(key),
        value=_raw_bytes(value),
        headers=headers,
    )


def _content_type(headers: Sequence[tuple[str, bytes]]) -> str:
    for name, value in reversed(headers):
        if name.lower() == _CE_CONTENT_TYPE:
            return _text(value, "header 'content-type'").strip()
    return ""


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("", "application/json", "text/json") or media.endswith("+json")


def _read_binary(
    value: bytes | None,
    content_type: str,
    headers: list[tuple[str, bytes]],
) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    fields: dict[str, Any] = {}
    rest: list[tuple[str, bytes]] = []
    specversion = None
    for name, raw in headers:
        lowered = name.lower()
        attribute = lowered[len(_CE_PREFIX) :]
        if lowered == _CE_CONTENT_TYPE:
            continue
        if not lowered.startswith(_CE_PREFIX) or (
            attribute not in _CE_ATTRIBUTES and attribute != "specversion"
        ):
            rest.append((name, raw))
            continue
        text = _text(raw, f"header {name!r}")
        if attribute == "specversion":
            specversion = text
        else:
            fields[_CE_ATTRIBUTES[attribute]] = _attribute(attribute, text)

    if specversion is None:
        raise KafkaEnvelopeError("CloudEvents header 'ce_specversion' missing")
    _check_specversion(specversion)
    fields["payload"] = _binary_data(value, content_type)
    return fields, rest


def _binary_data(value: bytes | None, content_type: str) -> JSONObject:
    if value is None or len(value) == 0:
        return {}
    if not _is_json(content_type):
        raise KafkaEnvelopeError(
            f"data of content type {content_type!r} is not JSON; only JSON object "
            "data maps to an envelope payload"
        )
    return _load_json_object(bytes(value), "value (CloudEvents data)")


def _read_structured(
    value: bytes | None,
    content_type: str,
    headers: list[tuple[str, bytes]],
) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/cloudevents+json":
        raise KafkaEnvelopeError(f"event format {media!r} is not supported")
    if value is None:
        raise KafkaEnvelopeError("structured CloudEvent has a null value")

    event = _load_json_object(bytes(value), "value (structured CloudEvent)")
    _check_specversion(event.get("specversion"))
    fields: dict[str, Any] = {}
    for attribute, name in _CE_ATTRIBUTES.items():
        if attribute in event:
            if not isinstance(event[attribute], str):
                raise KafkaEnvelopeError(f"attribute {attribute!r} must be a string")
            fields[name] = _attribute(attribute, event[attribute])

    fields["payload"] = _structured_data(event)
    rest = [pair for pair in headers if pair[0].lower() != _CE_CONTENT_TYPE]
    return fields, rest


def _structured_data(event: Mapping[str, Any]) -> JSONObject:
    if "data_base64" in event:
        try:
            raw = base64.b64decode(event["data_base64"], validate=True)
        except (TypeError, ValueError, binascii.Error) as exc:
            raise KafkaEnvelopeError("attribute 'data_base64' is not base64") from exc
        return _binary_data(raw, str(event.get("datacontenttype", "")))

    data = event.get("data", {})
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KafkaEnvelopeError("CloudEvents 'data' must be a JSON object")
    return cast("JSONObject", data)


def _attribute(attribute: str, text: str) -> str | datetime:
    if attribute == "time":
        return _parse_time(text, "attribute 'time'")
    return text


def _check_specversion(specversion: object) -> None:
    if specversion != "1.0":
        raise KafkaEnvelopeError(
            f"CloudEvents specversion {specversion!r} is not supported (only '1.0')"
        )


# --------------------------------------------------------------------------
# Dead letters
# --------------------------------------------------------------------------

_CONNECT = "__connect.errors."
_SPRING = "kafka_dlt-"
_CONNECT_HEADERS = {
    "topic": _CONNECT + "topic",
    "partition": _CONNECT + "partition",
    "offset": _CONNECT + "offset",
    "exception_class": _CONNECT + "exception.class.name",
    "exception_message": _CONNECT + "exception.message",
    "stacktrace": _CONNECT + "exception.stacktrace",
}
_SPRING_HEADERS = {
    "topic": _SPRING + "original-topic",
    "partition": _SPRING + "original-partition",
    "offset": _SPRING + "original-offset",
    "timestamp_ms": _SPRING + "original-timestamp",
    "consumer_group": _SPRING + "original-consumer-group",
    "exception_class": _SPRING + "exception-fqcn",
    "exception_message": _SPRING + "exception-message",
    "stacktrace": _SPRING + "exception-stacktrace",
}
_SPRING_WIDTHS = {"partition": 4, "offset": 8, "timestamp_ms": 8}
_INT_FIELDS = ("partition", "offset", "timestamp_ms")


@dataclass(frozen=True)
class DeadLetterContext:
    """Where a dead-lettered record came from and why it failed.

    It writes and reads the two header conventions tools expect: Kafka
    Connect's ``__connect.errors.*`` (every value UTF-8 text, numbers in
    decimal) and Spring Kafka's ``kafka_dlt-*`` (partition as a 4-byte and
    offset and timestamp as 8-byte big-endian integers). Connect has no
    timestamp or consumer-group header; those fields are Spring-only.
    """

    topic: str
    partition: int | None
    offset: int | None
    exception_class: str
    exception_message: str | None = None
    stacktrace: str | None = None
    timestamp_ms: int | None = None
    consumer_group: str | None = None

    def __post_init__(self) -> None:
        limits = {
            "partition": 2**31 - 1,
            "offset": 2**63 - 1,
            "timestamp_ms": 2**63 - 1,
        }
        for name, limit in limits.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise KafkaEnvelopeError(f"DeadLetterContext.{name} must be an int")
            if not 0 <= value <= limit:
                raise KafkaEnvelopeError(
                    f"DeadLetterContext.{name} must be in 0..{limit}, got {value}"
                )

    @classmethod
    def from_exception(
        cls,
        exception: BaseException,
        *,
        topic: str,
        partition: int | None = None,
        offset: int | None = None,
        timestamp_ms: int | None = None,
        consumer_group: str | None = None,
    ) -> DeadLetterContext:
        """Describe ``exception`` raised while processing a record of ``topic``."""
        kind = type(exception)
        message = str(exception)
        lines = traceback.format_exception(kind, exception, exception.__traceback__)
        trace = "".join(lines)

        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            exception_class=f"{kind.__module__}.{kind.__qualname__}",
            exception_message=message or None,
            stacktrace=trace,
            timestamp_ms=timestamp_ms,
            consumer_group=consumer_group,
        )

    def to_headers(self, style: HeaderStyle = "connect") -> list[tuple[str, bytes]]:
        """Return the context as headers in ``style`` (absent fields are omitted)."""
        names = _style_names(style)
        headers: list[tuple[str, bytes]] = []
        for attribute, header in names.items():
            value = getattr(self, attribute)
            if value is None:
                continue
            headers.append((header, _encode_context(attribute, value, style)))
        return headers

    @classmethod
    def from_headers(cls, headers: HeaderInput) -> DeadLetterContext:
        """Read the context back from either header convention.

        The last occurrence of a header wins, as when a record was
        dead-lettered more than once.

        Raises:
            KafkaEnvelopeError: no context headers, a required one missing
                (topic or exception class) or one malformed.
        """
        pairs = _header_pairs(headers, "headers")
        if any(name.startswith(_CONNECT) for name, _ in pairs):
            style: HeaderStyle = "connect"
        elif any(name.startswith(_SPRING) for name, _ in pairs):
            style = "spring"
        else:
            raise KafkaEnvelopeError("no dead-letter context headers found")

        values: dict[str, Any] = {}
        for attribute, header in _style_names(style).items():
            raw = _last(pairs, header)
            if raw is not None:
                values[attribute] = _decode_context(attribute, header, raw, style)
        for required in ("topic", "exception_class"):
            if required not in values:
                raise KafkaEnvelopeError(
                    f"dead-letter header {_style_names(style)[required]!r} missing"
                )
        values.setdefault("partition", None)
        values.setdefault("offset", None)
        return cls(**values)


def _style_names(style: str) -> dict[str, str]:
    if style == "connect":
        return _CONNECT_HEADERS
    if style == "spring":
        return _SPRING_HEADERS
    raise KafkaEnvelopeError(
        f"header_style must be 'connect' or 'spring', got {style!r}"
    )


def _encode_context(attribute: str, value: int | str, style: str) -> bytes:
    if attribute in _INT_FIELDS:
        number = cast("int", value)
        if style == "spring":
            return number.to_bytes(_SPRING_WIDTHS[attribute], "big", signed=True)
        return str(number).encode("ascii")
    return _utf8(cast("str", value), f"dead-letter {attribute}")


def _decode_context(attribute: str, header: str, raw: bytes, style: str) -> Any:
    if attribute not in _INT_FIELDS:
        return _text(raw, f"header {header!r}")
    if style == "spring":
        width = _SPRING_WIDTHS[attribute]
        if len(raw) != width:
            raise KafkaEnvelopeError(
                f"header {header!r} must be a {width}-byte big-endian integer, "
                f"got {len(raw)} bytes"
            )
        return int.from_bytes(raw, "big", signed=True)
    return _decimal(raw, header)


def _decimal(raw: bytes, header: str) -> int:
    text = _text(raw, f"header {header!r}").strip()
    if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 20:
        raise KafkaEnvelopeError(f"header {header!r} is not a decimal integer")
    return int(text)


def dead_letter_record(
    exception: BaseException,
    *,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: HeaderInput = (),
    partition: int | None = None,
    offset: int | None = None,
    dlq_topic: str | None = None,
    header_style: HeaderStyle = "connect",
    event_id: str | None = None,
) -> KafkaRecord:
    """Build a dead-letter record for any consumed record, envelope or not.

    The key and value bytes are forwarded untouched and the original headers
    keep their order; earlier context headers of the same style are replaced
    by the new ones, appended last.

    Args:
        exception: why processing failed.
        topic: the topic the record was read from.
        key: the original key bytes.
        value: the original value bytes.
        headers: the original headers.
        partition: the original partition.
        offset: the original offset.
        dlq_topic: where to send it; defaults to ``<topic>.dlq``.
        header_style: ``"connect"`` or ``"spring"``.
        event_id: the event id, when known, for the log line.
    """
    names = set(_style_names(header_style).values())
    context = DeadLetterContext.from_exception(
        exception, topic=topic, partition=partition, offset=offset
    )
    kept = [pair for pair in _header_pairs(headers, "headers") if pair[0] not in names]
    destination = f"{topic}.dlq" if dlq_topic is None else dlq_topic

    logger.error(
        "record dead-lettered",
        extra={
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "event_id": event_id,
            "dlq_topic": destination,
            "exception_class": context.exception_class,
        },
    )
    return KafkaRecord(
        topic=destination,
        key=key,
        value=value,
        headers=kept + context.to_headers(header_style),
    )


# --------------------------------------------------------------------------
# Retry topics
# --------------------------------------------------------------------------


class RetryTopics:
    """Route failed records through delayed retry topics, then a dead-letter topic.

    Attempt ``n`` (1-based) of a record that failed on ``base_topic`` goes to
    ``<base_topic>.retry.<n>`` with its attempt count and not-before time
    (Unix milliseconds) in headers; a consumer of that topic waits
    :meth:`remaining_delay` before processing. After the last delay the
    record goes to ``<base_topic><dlq_suffix>`` with dead-letter context.
    The original key and value bytes are never changed.
    """

    ATTEMPT_HEADER = "retry-attempt"
    NOT_BEFORE_HEADER = "retry-not-before-ms"

    def __init__(
        self,
        base_topic: str,
        delays: Sequence[float] = (1.0, 10.0, 60.0),
        dlq_suffix: str = ".dlq",
        *,
        header_style: HeaderStyle = "connect",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not base_topic:
            raise KafkaEnvelopeError("base_topic must be a non-empty string")
        checked: tuple[object, ...] = tuple(delays)
        for delay in checked:
            if isinstance(delay, bool) or not isinstance(delay, (int, float)):
                raise KafkaEnvelopeError(f"delays must be numbers, got {delay!r}")
            if not math.isfinite(delay) or delay < 0:
                raise KafkaEnvelopeError(f"delays must be finite and >= 0: {delay}")
        _style_names(header_style)

        self.base_topic = base_topic
        self.delays: tuple[float, ...] = tuple(float(d) for d in delays)
        self.dlq_topic = f"{base_topic}{dlq_suffix}"
        self.header_style: HeaderStyle = header_style
        self._clock = clock

    @property
    def retry_topics(self) -> tuple[str, ...]:
        """Return the retry topic names in attempt order."""
        return tuple(self.topic_for_attempt(n) for n in range(1, len(self.delays) + 1))

    def topic_for_attempt(self, attempt: int) -> str:
        """Return the topic for retry ``attempt`` (1-based); past the last, the DLQ."""
        if attempt < 1:
            raise KafkaEnvelopeError(f"attempt must be >= 1, got {attempt}")
        if attempt > len(self.delays):
            return self.dlq_topic
        return f"{self.base_topic}.retry.{attempt}"

    def attempts(self, headers: HeaderInput) -> int:
        """Return how many retries the record has had (0 for a first delivery)."""
        raw = _last(_header_pairs(headers, "headers"), self.ATTEMPT_HEADER)
        if raw is None:
            return 0
        count = _decimal(raw, self.ATTEMPT_HEADER)
        if count < 0:
            raise KafkaEnvelopeError(f"header {self.ATTEMPT_HEADER!r} is negative")
        return count

    def remaining_delay(self, headers: HeaderInput) -> float:
        """Return the seconds a consumer must still wait before processing."""
        raw = _last(_header_pairs(headers, "headers"), self.NOT_BEFORE_HEADER)
        if raw is None:
            return 0.0
        due_ms = _decimal(raw, self.NOT_BEFORE_HEADER)
        return max(0.0, due_ms / 1000.0 - self._clock.time())

    def route(
        self,
        exception: BaseException,
        key: bytes | None,
        value: bytes | None,
        headers: HeaderInput = (),
        *,
        partition: int | None = None,
        offset: int | None = None,
    ) -> KafkaRecord:
        """Return the record to produce after ``exception``: next retry or DLQ.

        Args:
            exception: why this attempt failed.
            key: the record key, forwarded untouched.
            value: the record value, forwarded untouched.
            headers: the consumed headers; the retry headers are replaced.
            partition: the partition it was read from, for DLQ context.
            offset: the offset it was read from, for DLQ context.
        """
        pairs = _header_pairs(headers, "headers")
        attempt = self.attempts(pairs) + 1
        source = (
            self.base_topic if attempt == 1 else self.topic_for_attempt(attempt - 1)
        )
        if attempt > len(self.delays):
            return dead_letter_record(
                exception,
                topic=source,
                key=key,
                value=value,
                headers=pairs,
                partition=partition,
                offset=offset,
                dlq_topic=self.dlq_topic,
                header_style=self.header_style,
            )

        due_ms = round((self._clock.time() + self.delays[attempt - 1]) * 1000)
        own = (self.ATTEMPT_HEADER, self.NOT_BEFORE_HEADER)
        kept = [pair for pair in pairs if pair[0] not in own]
        kept.append((self.ATTEMPT_HEADER, str(attempt).encode("ascii")))
        kept.append((self.NOT_BEFORE_HEADER, str(due_ms).encode("ascii")))
        topic = self.topic_for_attempt(attempt)

        logger.warning(
            "record routed to retry topic",
            extra={"topic": source, "retry_topic": topic, "attempt": attempt},
        )
        return KafkaRecord(topic=topic, key=key, value=value, headers=kept)
