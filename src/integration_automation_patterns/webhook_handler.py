"""Verify and sign webhooks the way each provider really sends them.

Every verifier checks the exact bytes the provider signed, with the provider's
signed content, algorithm, encoding and time window, looks headers up
case-insensitively from any mapping, and compares in constant time. ``parse``
also decodes the body and names the delivery id to de-duplicate on; a
``ReplayGuard`` turns a second delivery of the same id into an error.

The 0.2.0 ``WebhookHandler`` is kept for code written against it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import string
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal, Protocol, TypeAlias
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from ._types import (
    SYSTEM_CLOCK,
    Clock,
    ConfigurationError,
    IntegrationError,
    JSONValue,
    SystemClock,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "GitHubVerifier",
    "HeaderMapping",
    "HmacVerifier",
    "HubSpotVerifier",
    "MemoryReplayGuard",
    "PagerDutyVerifier",
    "ReplayGuard",
    "SalesforceVerifier",
    "ShopifyVerifier",
    "SlackVerifier",
    "SquareVerifier",
    "StandardWebhooksVerifier",
    "StripeVerifier",
    "TwilioVerifier",
    "WebhookError",
    "WebhookEvent",
    "WebhookFormatError",
    "WebhookHandler",
    "WebhookReplayError",
    "WebhookSignatureError",
    "ZendeskVerifier",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024

SecretInput: TypeAlias = "str | bytes | Sequence[str | bytes]"

_HEX = re.compile(r"[0-9A-Fa-f]*")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_MAX_TIMESTAMP_DIGITS = 20
# The usual Stripe header: an ASCII timestamp, then the first v1 entry onwards.
_STRIPE_SINGLE = re.compile(
    rf"t=([0-9]{{1,{_MAX_TIMESTAMP_DIGITS}}}),v1=(.*)", re.DOTALL
).fullmatch


class WebhookError(IntegrationError, ValueError):
    """Root of every webhook error: the request was not accepted."""


class WebhookSignatureError(WebhookError):
    """No signature in the request matches the body under any configured secret."""


class WebhookReplayError(WebhookError):
    """The request is authentic but stale, too far in the future, or seen before."""


class WebhookFormatError(WebhookError):
    """A header is missing or malformed, or the body is too large or not decodable."""


class HeaderMapping(Protocol):
    """Any header container: a dict, ``email.message.Message``, framework headers."""

    def get(self, key: str, /) -> Any:
        """Return the value stored under ``key``, or None."""
        ...

    def items(self) -> Iterable[tuple[Any, Any]]:
        """Return every (name, value) pair."""
        ...


class ReplayGuard(Protocol):
    """An atomic "seen before?" check over delivery ids."""

    def seen(self, delivery_id: str) -> bool:
        """Record ``delivery_id`` and return True if it was already recorded."""
        ...


@dataclass(frozen=True)
class WebhookEvent:
    """A verified delivery: its id, type, decoded payload and the raw body.

    ``received_at`` is when it was parsed, in Unix seconds (the clock's
    ``time()``), as in 0.2.0.
    """

    event_id: str
    event_type: str
    payload: JSONValue
    received_at: float = field(default_factory=time.time)
    raw: bytes = b""


class MemoryReplayGuard:
    """Remember delivery ids for ``ttl_seconds``, keeping at most ``max_entries``.

    When full, the oldest ids are forgotten first, so a replay older than the
    newest ``max_entries`` deliveries is no longer caught. Thread-safe; one
    process only.
    """

    def __init__(
        self,
        ttl_seconds: float = 86_400.0,
        max_entries: int = 100_000,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not ttl_seconds > 0:
            raise ConfigurationError(f"ttl_seconds must be > 0, got {ttl_seconds!r}")
        if max_entries < 1:
            raise ConfigurationError(f"max_entries must be >= 1, got {max_entries!r}")
        self._ttl = float(ttl_seconds)
        self._max_entries = max_entries
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, delivery_id: str) -> bool:
        """Record ``delivery_id`` and return True if it is still remembered."""
        now = self._clock.monotonic()
        with self._lock:
            self._forget_expired(now)
            if delivery_id in self._expiry:
                return True

            self._expiry[delivery_id] = now + self._ttl
            while len(self._expiry) > self._max_entries:
                self._expiry.popitem(last=False)
            return False

    def discard(self, delivery_id: str) -> None:
        """Forget ``delivery_id`` so a redelivery is accepted (after a failure)."""
        with self._lock:
            self._expiry.pop(delivery_id, None)

    def __len__(self) -> int:
        with self._lock:
            self._forget_expired(self._clock.monotonic())
            return len(self._expiry)

    def __repr__(self) -> str:
        return (
            f"MemoryReplayGuard(ttl_seconds={self._ttl!r}, "
            f"max_entries={self._max_entries!r}, size={len(self._expiry)})"
        )

    def _forget_expired(self, now: float) -> None:
        # A constant TTL on a monotonic clock keeps insertion order = expiry order.
        expiry = self._expiry
        while expiry and next(iter(expiry.values())) <= now:
            expiry.popitem(last=False)


# ---------------------------------------------------------------- shared parsing


def _header(headers: HeaderMapping, name: str, lower: str) -> str | None:
    """Return header ``name`` looked up case-insensitively, or None."""
    try:
        value = headers.get(name)
        if value is None:
            value = headers.get(lower)
            if value is None:
                value = _scan_headers(headers, lower)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise WebhookFormatError(f"cannot read header {name}: {exc}") from exc

    if value is None or type(value) is str:
        return value
    return _header_text(value, name)


def _scan_headers(headers: HeaderMapping, lower: str) -> Any:
    for key, value in headers.items():
        text = key.decode("latin-1") if isinstance(key, bytes) else key
        if isinstance(text, str) and text.lower() == lower:
            return value
    return None


def _header_text(value: object, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    raise WebhookFormatError(f"header {name} must be text, got {type(value).__name__}")


def _fast_header(headers: HeaderMapping, name: str, lower: str) -> str:
    """Return a required header, trying its exact spelling before anything else."""
    try:
        value = headers.get(name)
    except (TypeError, AttributeError, KeyError, ValueError):
        value = None
    if type(value) is str and value:
        return value
    return _required(headers, name, lower)


def _required(headers: HeaderMapping, name: str, lower: str) -> str:
    value = _header(headers, name, lower)
    if not value:
        raise WebhookFormatError(f"missing {name} header")
    return value


def _raw_body(body: object, limit: int) -> bytes:
    """Return ``body`` as bytes, refusing text and bodies over ``limit``."""
    if isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise WebhookFormatError(
            f"body must be the raw request bytes, got {type(body).__name__}"
        )
    if len(body) > limit:
        raise WebhookFormatError(f"body is {len(body)} bytes, over the {limit} limit")
    return body


def _unix_seconds(value: str, name: str) -> int:
    if not (
        value.isascii() and value.isdigit() and len(value) <= _MAX_TIMESTAMP_DIGITS
    ):
        raise WebhookFormatError(f"header {name} is not a Unix timestamp")
    return int(value)


def _b64(digest: bytes) -> str:
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


def _matches_text(expected: Iterable[str], provided: str) -> bool:
    """Compare every expected encoding with ``provided`` in constant time."""
    if not provided.isascii():
        return False
    found = False
    for candidate in expected:
        found |= hmac.compare_digest(candidate, provided)
    return found


def _same_hex(expected: str, provided: str, name: str) -> bool:
    """Compare a lower-case hex digest with a provided one in constant time.

    The usual lower-case signature is compared as text, without decoding it;
    anything else (upper case, stray characters) is decoded as ``_fromhex``
    would and compared as bytes, so both spellings behave as before.
    """
    if provided.isascii() and hmac.compare_digest(expected, provided):
        return True
    return hmac.compare_digest(bytes.fromhex(expected), _fromhex(provided, name))


def _fromhex(value: str, name: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise WebhookFormatError(f"header {name} is not hex") from exc


def _require_base64(values: Iterable[str], name: str) -> None:
    """Raise a format error when a signature is not base64 (after a mismatch)."""
    for value in values:
        if not (value.isascii() and _BASE64.fullmatch(value)):
            raise WebhookFormatError(f"header {name} is not base64")


def _body_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _decode_json(body: bytes, *, allow_empty: bool = False) -> JSONValue:
    if allow_empty and not body.strip():
        return None
    try:
        value: JSONValue = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookFormatError(f"body is not valid JSON: {exc}") from exc
    return value


def _decode_form(body: bytes) -> JSONValue:
    try:
        fields = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=10_000
        )
    except ValueError as exc:
        raise WebhookFormatError(f"body is not a valid form: {exc}") from exc

    form: dict[str, JSONValue] = {}
    for name, values in fields.items():
        form[name] = values[0] if len(values) == 1 else list(values)
    return form


def _decode_auto(body: bytes) -> JSONValue:
    """Decode a JSON body, or a form body, which Slack and Twilio both send."""
    if body.lstrip()[:1] in (b"{", b"["):
        return _decode_json(body)
    return _decode_form(body)


def _field(payload: JSONValue, *path: str) -> JSONValue:
    for name in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(name)
    return payload


def _text_field(payload: JSONValue, *path: str) -> str | None:
    value = _field(payload, *path)
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return None


def _secrets(secret: SecretInput) -> list[str | bytes]:
    if isinstance(secret, (str, bytes)):
        return [secret]
    try:
        items = list(secret)
    except TypeError as exc:
        raise WebhookError("secret must be str, bytes or a sequence of them") from exc
    if not items:
        raise WebhookError("secret must name at least one secret")
    return items


def _utf8_key(secret: str | bytes) -> bytes:
    if isinstance(secret, str):
        key = secret.encode("utf-8")
    elif isinstance(secret, bytes):
        key = secret
    else:
        raise WebhookError(f"secret must be str or bytes, got {type(secret).__name__}")
    if not key:
        raise WebhookError("secret must not be empty")
    return key


_PAD_INNER = bytes(x ^ 0x36 for x in range(256))
_PAD_OUTER = bytes(x ^ 0x5C for x in range(256))


class _HmacKey:
    """An HMAC key with its padded inner and outer states hashed once (RFC 2104).

    Copying the two prepared states per message skips the key schedule that a
    one-shot ``hmac.digest`` repeats on every call.
    """

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes, algorithm: str = "sha256") -> None:
        inner = hashlib.new(algorithm)
        if len(key) > inner.block_size:
            key = hashlib.new(algorithm, key).digest()
        key = key.ljust(inner.block_size, b"\0")
        inner.update(key.translate(_PAD_INNER))
        outer = hashlib.new(algorithm, key.translate(_PAD_OUTER))
        self.inner = inner
        self.outer = outer

    def digest(self, data: bytes) -> bytes:
        """Return the HMAC of ``data``."""
        inner = self.inner.copy()
        inner.update(data)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def digest2(self, head: bytes, data: bytes) -> bytes:
        """Return the HMAC of ``head + data`` without joining them."""
        inner = self.inner.copy()
        inner.update(head)
        inner.update(data)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def __repr__(self) -> str:
        return "_HmacKey(<hidden>)"


def _any_match(
    macs: tuple[_HmacKey, ...], head: bytes, body: bytes, provided: list[bytes]
) -> bool:
    """Return True when some key's HMAC of ``head + body`` is a provided digest."""
    if len(macs) == 1 and len(provided) == 1:
        # One secret and one signature is nearly every request: stay flat.
        mac = macs[0]
        inner = mac.inner.copy()
        inner.update(head)
        inner.update(body)
        outer = mac.outer.copy()
        outer.update(inner.digest())
        return hmac.compare_digest(outer.digest(), provided[0])

    found = False
    for mac in macs:
        expected = mac.digest2(head, body)
        for candidate in provided:
            found |= hmac.compare_digest(expected, candidate)
    return found


def _any_match_base64(
    macs: tuple[_HmacKey, ...], head: bytes, body: bytes, provided: list[str]
) -> bool:
    """Return True when some key's base64 HMAC of ``head + body`` was provided."""
    if len(macs) == 1 and len(provided) == 1 and provided[0].isascii():
        mac = macs[0]
        inner = mac.inner.copy()
        inner.update(head)
        inner.update(body)
        outer = mac.outer.copy()
        outer.update(inner.digest())
        expected = binascii.b2a_base64(outer.digest(), newline=False)
        return hmac.compare_digest(expected, provided[0].encode("ascii"))

    found = False
    for mac in macs:
        expected = binascii.b2a_base64(mac.digest2(head, body), newline=False)
        for candidate in provided:
            if candidate.isascii():
                found |= hmac.compare_digest(expected, candidate.encode("ascii"))
    return found


# ------------------------------------------------------------------------ base class


class _Verifier:
    """What every scheme shares: keys, limits, the clock, parse and the guard."""

    provider: ClassVar[str] = "hmac"

    def __init__(
        self,
        secret: SecretInput,
        *,
        clock: Clock,
        replay_guard: ReplayGuard | None,
        max_body_bytes: int,
        tolerance_seconds: float | None = None,
        future_tolerance_seconds: float | None = None,
    ) -> None:
        _check_limits(tolerance_seconds, future_tolerance_seconds, max_body_bytes)
        self._keys: tuple[bytes, ...] = tuple(
            self._key_from(s) for s in _secrets(secret)
        )
        self._macs = tuple(_HmacKey(key) for key in self._keys)
        # With one secret (nearly every endpoint) verify skips the rotation loop.
        self._mac = self._macs[0] if len(self._macs) == 1 else None
        self._clock = clock
        self._replay_guard = replay_guard
        self._max_body_bytes = max_body_bytes
        self._tolerance = tolerance_seconds
        self._future_tolerance = future_tolerance_seconds
        self._past = math.inf if tolerance_seconds is None else tolerance_seconds
        self._ahead = (
            math.inf if future_tolerance_seconds is None else future_tolerance_seconds
        )
        # The system clock's time() is time.time(); calling it directly is cheaper.
        self._time = time.time if type(clock) is SystemClock else clock.time

    def verify(self, body: bytes, headers: HeaderMapping, **context: Any) -> None:
        """Raise unless the request carries a valid signature for ``body``.

        Every scheme accepts the same call shape: context a scheme does not
        sign (``url=``, ``method=``, ...) is accepted and ignored, so a receiver
        can call any verifier the same way.
        """
        raise NotImplementedError

    def parse(
        self, body: bytes, headers: HeaderMapping, **context: Any
    ) -> WebhookEvent:
        """Verify the request, then decode it into a ``WebhookEvent``.

        Raises:
            WebhookSignatureError: no signature matches.
            WebhookReplayError: the timestamp is outside the window, or the
                replay guard has seen the delivery id.
            WebhookFormatError: a header is missing or malformed, or the body
                is too large or does not decode.
        """
        self.verify(body, headers, **context)
        return self._event(bytes(body), headers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(secrets={len(self._keys)})"

    def _key_from(self, secret: str | bytes) -> bytes:
        return _utf8_key(secret)

    def _decode(self, body: bytes) -> JSONValue:
        return _decode_json(body)

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return _text_field(payload, "id") or _body_digest(body)

    def _event_type(self, headers: HeaderMapping, payload: JSONValue) -> str:
        return _text_field(payload, "type") or "unknown"

    def _event(self, body: bytes, headers: HeaderMapping) -> WebhookEvent:
        payload = self._decode(body)
        event_id = self._event_id(body, headers, payload)
        self._check_replay(event_id)

        event = WebhookEvent(
            event_id,
            self._event_type(headers, payload),
            payload,
            self._clock.time(),
            body,
        )
        logger.debug(
            "webhook accepted",
            extra={"event_id": event_id, "provider": self.provider},
        )
        return event

    def _check_replay(self, event_id: str) -> None:
        guard = self._replay_guard
        if guard is not None and guard.seen(f"{self.provider}:{event_id}"):
            logger.info(
                "webhook delivery seen before",
                extra={"event_id": event_id, "provider": self.provider},
            )
            raise WebhookReplayError(f"delivery {event_id!r} was already received")

    def _check_window(self, timestamp: float, name: str) -> None:
        now = self._time()
        if now - self._past <= timestamp <= now + self._ahead:
            return
        if self._tolerance is not None and timestamp < now - self._tolerance:
            raise WebhookReplayError(
                f"header {name} is {now - timestamp:.0f} s old, "
                f"beyond the {self._tolerance:g} s tolerance"
            )
        if self._future_tolerance is not None and timestamp > now + (
            self._future_tolerance
        ):
            raise WebhookReplayError(
                f"header {name} is {timestamp - now:.0f} s in the future, "
                f"beyond the {self._future_tolerance:g} s tolerance"
            )

    def _now_seconds(self) -> int:
        return int(self._clock.time())

    def _match(self, digests: Iterable[bytes], provided: Iterable[bytes]) -> bool:
        found = False
        for expected in digests:
            for candidate in provided:
                found |= hmac.compare_digest(expected, candidate)
        return found


def _check_limits(
    tolerance: float | None, future_tolerance: float | None, max_body_bytes: int
) -> None:
    for name, value in (
        ("tolerance_seconds", tolerance),
        ("future_tolerance_seconds", future_tolerance),
    ):
        if value is not None and not value >= 0:
            raise WebhookError(f"{name} must be >= 0 or None, got {value!r}")
    if not max_body_bytes >= 0:
        raise WebhookError(f"max_body_bytes must be >= 0, got {max_body_bytes!r}")


def _signature_error(name: str) -> WebhookSignatureError:
    return WebhookSignatureError(f"header {name} does not match the body")


# --------------------------------------------------------------------------- GitHub


class GitHubVerifier(_Verifier):
    """GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.

    No timestamp is signed; pair it with a ``replay_guard``. The delivery id
    is ``X-GitHub-Delivery`` and the type ``X-GitHub-Event``.

    Args:
        secret: the webhook secret, or several while rotating.
        clock: where ``received_at`` is read.
        replay_guard: rejects a second delivery of the same id.
        max_body_bytes: larger bodies are refused before hashing.
    """

    provider = "github"
    _HEADER = "X-Hub-Signature-256"
    _LOWER = "x-hub-signature-256"

    def __init__(
        self,
        secret: SecretInput,
        *,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
        )

    def verify(self, body: bytes, headers: HeaderMapping, **context: object) -> None:
        """Raise unless ``X-Hub-Signature-256`` signs ``body``."""
        if type(body) is not bytes or len(body) > self._max_body_bytes:
            body = _raw_body(body, self._max_body_bytes)
        value = _fast_header(headers, self._HEADER, self._LOWER)
        if value[:7] != "sha256=":
            raise WebhookFormatError(f"header {self._HEADER} must start with sha256=")
        signature = value[7:]

        mac = self._mac
        if mac is None:
            if not _any_match(
                self._macs, b"", body, [_fromhex(signature, self._HEADER)]
            ):
                raise _signature_error(self._HEADER)
            return
        inner = mac.inner.copy()
        inner.update(body)
        outer = mac.outer.copy()
        outer.update(inner.digest())
        expected = outer.hexdigest()
        if not _same_hex(expected, signature, self._HEADER):
            raise _signature_error(self._HEADER)

    def sign(
        self,
        body: bytes,
        *,
        delivery_id: str | None = None,
        event: str | None = None,
    ) -> dict[str, str]:
        """Return the headers GitHub would send with ``body``."""
        digest = hmac.digest(self._keys[0], body, "sha256").hex()
        headers = {self._HEADER: f"sha256={digest}"}
        if delivery_id is not None:
            headers["X-GitHub-Delivery"] = delivery_id
        if event is not None:
            headers["X-GitHub-Event"] = event
        return headers

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return _header(headers, "X-GitHub-Delivery", "x-github-delivery") or (
            _body_digest(body)
        )

    def _event_type(self, headers: HeaderMapping, payload: JSONValue) -> str:
        return _header(headers, "X-GitHub-Event", "x-github-event") or "unknown"


# --------------------------------------------------------------------------- Stripe


class StripeVerifier(_Verifier):
    """Stripe: ``Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]`` over ``"<t>.<body>"``.

    The key is the whole ``whsec_...`` string. Every ``v1`` entry is tried
    (Stripe sends one per active secret while rolling); ``v0`` is ignored.
    The delivery id is the event id in the body.

    Args:
        secret: the endpoint secret, or several while rotating.
        tolerance_seconds: oldest accepted timestamp (Stripe's default 300 s);
            None disables the check.
        future_tolerance_seconds: how far ahead a timestamp may be.
        clock: the clock timestamps are compared with.
        replay_guard: rejects a second delivery of the same event id.
        max_body_bytes: larger bodies are refused before hashing.
    """

    provider = "stripe"
    _HEADER = "Stripe-Signature"
    _LOWER = "stripe-signature"

    def __init__(
        self,
        secret: SecretInput,
        *,
        tolerance_seconds: float | None = 300.0,
        future_tolerance_seconds: float | None = 300.0,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
            tolerance_seconds=tolerance_seconds,
            future_tolerance_seconds=future_tolerance_seconds,
        )

    def verify(self, body: bytes, headers: HeaderMapping, **context: object) -> None:
        """Raise unless ``Stripe-Signature`` signs ``body`` within the window."""
        if type(body) is not bytes or len(body) > self._max_body_bytes:
            body = _raw_body(body, self._max_body_bytes)
        try:
            value = headers.get("Stripe-Signature")
        except (TypeError, AttributeError, KeyError, ValueError):
            value = None
        if type(value) is not str:
            value = _required(headers, self._HEADER, self._LOWER)
        mac = self._mac
        single = _STRIPE_SINGLE(value)
        if mac is not None and single is not None:
            stamp, signature = single.groups()
            inner = mac.inner.copy()
            inner.update((stamp + ".").encode())
            inner.update(body)
            outer = mac.outer.copy()
            outer.update(inner.digest())
            expected = outer.hexdigest()
            if not (signature.isascii() and hmac.compare_digest(expected, signature)):
                self._match_entries(value, bytes.fromhex(expected))
        else:
            stamp, provided = _stripe_parts(value, self._HEADER)
            if not _any_match(self._macs, (stamp + ".").encode(), body, provided):
                raise _signature_error(self._HEADER)
        timestamp = int(stamp)

        now = self._time()
        if timestamp < now - self._past or timestamp > now + self._ahead:
            self._check_window(timestamp, self._HEADER)

    def _match_entries(self, value: str, expected: bytes) -> None:
        """Raise unless some ``v1`` entry of the whole header is ``expected``.

        The fast path only compares a single lower-case entry; this parses the
        header fully (raising its format errors) for several entries or other
        spellings, reusing the digest already computed.
        """
        _, provided = _stripe_parts(value, self._HEADER)
        if not self._match((expected,), provided):
            raise _signature_error(self._HEADER)

    def sign(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """Return the ``Stripe-Signature`` header, one ``v1`` per secret."""
        t = self._now_seconds() if timestamp is None else int(timestamp)
        content = b"%d.%b" % (t, body)
        entries = [f"v1={hmac.digest(k, content, 'sha256').hex()}" for k in self._keys]
        return {self._HEADER: ",".join([f"t={t}", *entries])}


def _stripe_parts(value: str, name: str) -> tuple[str, list[bytes]]:
    """Split a ``t=..,v1=..`` header into its timestamp and decoded v1 signatures."""
    timestamp: str | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, _, entry = item.strip().partition("=")
        if key == "v1":
            signatures.append(entry)
        elif key == "t" and timestamp is None:
            timestamp = entry

    if timestamp is None:
        raise WebhookFormatError(f"header {name} has no t= timestamp")
    _unix_seconds(timestamp, name)
    if not signatures:
        raise WebhookFormatError(f"header {name} has no v1= signature")
    return timestamp, [_fromhex(signature, name) for signature in signatures]


# ---------------------------------------------------------------- Standard Webhooks


class StandardWebhooksVerifier(_Verifier):
    """Standard Webhooks and Svix: ``"<id>.<timestamp>.<body>"``, base64 ``v1,``.

    Reads ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``, or
    Svix's ``svix-*`` names. The key is the base64 text after ``whsec_`` (a
    ``bytes`` secret is the raw key). The signature header is a space-separated
    list; any ``v1`` entry matching passes, other versions are ignored.

    Args:
        secret: the ``whsec_`` secret, or several while rotating.
        tolerance_seconds: oldest accepted timestamp (the spec's 300 s).
        future_tolerance_seconds: how far ahead a timestamp may be (300 s).
        clock: the clock timestamps are compared with.
        replay_guard: rejects a second delivery of the same ``webhook-id``.
        max_body_bytes: larger bodies are refused before hashing.
    """

    provider = "standard-webhooks"
    _PREFIX = "whsec_"

    def __init__(
        self,
        secret: SecretInput,
        *,
        tolerance_seconds: float | None = 300.0,
        future_tolerance_seconds: float | None = 300.0,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
            tolerance_seconds=tolerance_seconds,
            future_tolerance_seconds=future_tolerance_seconds,
        )

    def verify(self, body: bytes, headers: HeaderMapping, **context: object) -> None:
        """Raise unless ``webhook-signature`` signs ``body`` within the window."""
        if type(body) is not bytes or len(body) > self._max_body_bytes:
            body = _raw_body(body, self._max_body_bytes)
        try:
            msg_id = headers.get("webhook-id")
            stamp = headers.get("webhook-timestamp")
            value = headers.get("webhook-signature")
        except (TypeError, AttributeError, KeyError, ValueError):
            msg_id = stamp = value = None
        if not (
            type(msg_id) is str
            and type(stamp) is str
            and type(value) is str
            and msg_id
            and stamp
            and value
        ):
            msg_id, stamp, value = _standard_headers(headers)
        if not (stamp.isdecimal() and len(stamp) <= _MAX_TIMESTAMP_DIGITS):
            raise WebhookFormatError("header webhook-timestamp is not a Unix timestamp")
        timestamp = int(stamp)
        head = f"{msg_id}.{stamp}.".encode()

        mac = self._mac
        if mac is None:
            provided = _versioned(value, "webhook-signature")
            if not _any_match_base64(self._macs, head, body, provided):
                _require_base64(provided, "webhook-signature")
                raise _signature_error("webhook-signature")
        else:
            inner = mac.inner.copy()
            inner.update(head)
            inner.update(body)
            outer = mac.outer.copy()
            outer.update(inner.digest())
            expected = b"v1," + binascii.b2a_base64(outer.digest(), newline=False)
            if not (value.isascii() and hmac.compare_digest(expected, value.encode())):
                _match_versioned(value, expected[3:].decode("ascii"))

        now = self._time()
        if timestamp < now - self._past or timestamp > now + self._ahead:
            self._check_window(timestamp, "webhook-timestamp")

    def sign(
        self,
        body: bytes,
        *,
        msg_id: str | None = None,
        timestamp: int | None = None,
        svix: bool = False,
    ) -> dict[str, str]:
        """Return the three headers a sender attaches, one ``v1`` per secret.

        Args:
            body: the exact bytes to send.
            msg_id: the delivery id; a fresh ``msg_`` id when omitted.
            timestamp: Unix seconds; the clock's time when omitted.
            svix: name the headers ``svix-*`` instead of ``webhook-*``.
        """
        msg_id = msg_id if msg_id is not None else "msg_" + _random_id()
        t = self._now_seconds() if timestamp is None else int(timestamp)
        content = b"%b.%d.%b" % (msg_id.encode("utf-8"), t, body)
        signature = " ".join(
            f"v1,{_b64(hmac.digest(k, content, 'sha256'))}" for k in self._keys
        )
        prefix = "svix" if svix else "webhook"
        return {
            f"{prefix}-id": msg_id,
            f"{prefix}-timestamp": str(t),
            f"{prefix}-signature": signature,
        }

    def _key_from(self, secret: str | bytes) -> bytes:
        if isinstance(secret, bytes):
            return _utf8_key(secret)
        if not isinstance(secret, str):
            raise WebhookError("secret must be str or bytes")
        text = secret.removeprefix(self._PREFIX)
        try:
            # Secrets are often shared without their base64 padding.
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WebhookError("secret is not base64 after its whsec_ prefix") from exc
        return _utf8_key(key)

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return (
            _header(headers, "webhook-id", "webhook-id")
            or _header(headers, "svix-id", "svix-id")
            or _body_digest(body)
        )


def _standard_headers(headers: HeaderMapping) -> tuple[str, str, str]:
    """Return the id, timestamp and signature headers, ``webhook-*`` or ``svix-*``."""
    try:
        msg_id = headers.get("webhook-id")
        stamp = headers.get("webhook-timestamp")
        signature = headers.get("webhook-signature")
    except (TypeError, AttributeError, KeyError, ValueError):
        msg_id = stamp = signature = None
    if (
        type(msg_id) is str
        and type(stamp) is str
        and type(signature) is str
        and msg_id
        and stamp
        and signature
    ):
        return msg_id, stamp, signature

    names = ("id", "timestamp", "signature")
    values = [_header(headers, f"webhook-{n}", f"webhook-{n}") for n in names]
    if not any(values):
        values = [_header(headers, f"svix-{n}", f"svix-{n}") for n in names]
    for name, value in zip(names, values, strict=True):
        if not value:
            raise WebhookFormatError(f"missing webhook-{name} (or svix-{name}) header")
    return values[0] or "", values[1] or "", values[2] or ""


def _match_versioned(value: str, expected: str) -> None:
    """Raise unless some ``v1`` entry of a signature header is ``expected``.

    The fast path only compares a header holding exactly one ``v1`` entry;
    this parses every entry (raising its format errors) and reuses the digest.
    """
    provided = _versioned(value, "webhook-signature")
    found = False
    for candidate in provided:
        found |= _matches_text((expected,), candidate)
    if not found:
        _require_base64(provided, "webhook-signature")
        raise _signature_error("webhook-signature")


def _random_id() -> str:
    return secrets.token_urlsafe(18)


def _versioned(value: str, name: str) -> list[str]:
    """Return the base64 signatures of every ``v1,<sig>`` entry in ``value``."""
    found: list[str] = []
    for entry in value.split(" "):
        if not entry:
            continue
        version, sep, signature = entry.partition(",")
        if not sep:
            raise WebhookFormatError(f"header {name} entry is not <version>,<sig>")
        if version == "v1":
            found.append(signature)
    if not found:
        raise WebhookFormatError(f"header {name} has no v1 signature")
    return found


# ---------------------------------------------------------------------------- Slack


class SlackVerifier(_Verifier):
    """Slack: ``X-Slack-Signature: v0=<hex>`` over ``"v0:<ts>:<body>"``.

    Bodies are JSON (Events API) or forms (slash commands, interactivity); a
    form decodes to a dict of its fields. The delivery id is the Events API
    ``event_id`` when present, else a digest of the body.

    Args:
        secret: the signing secret, or several while rotating.
        tolerance_seconds: oldest accepted timestamp (Slack's 300 s).
        future_tolerance_seconds: how far ahead a timestamp may be (300 s).
        clock: the clock timestamps are compared with.
        replay_guard: rejects a second delivery of the same id.
        max_body_bytes: larger bodies are refused before hashing.
    """

    provider = "slack"
    _HEADER = "X-Slack-Signature"
    _TIMESTAMP = "X-Slack-Request-Timestamp"

    def __init__(
        self,
        secret: SecretInput,
        *,
        tolerance_seconds: float | None = 300.0,
        future_tolerance_seconds: float | None = 300.0,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
            tolerance_seconds=tolerance_seconds,
            future_tolerance_seconds=future_tolerance_seconds,
        )

    def verify(self, body: bytes, headers: HeaderMapping, **context: object) -> None:
        """Raise unless ``X-Slack-Signature`` signs ``body`` within the window."""
        body = _raw_body(body, self._max_body_bytes)
        stamp = _required(headers, self._TIMESTAMP, self._TIMESTAMP.lower())
        value = _required(headers, self._HEADER, self._HEADER.lower())
        timestamp = _unix_seconds(stamp, self._TIMESTAMP)
        if value[:3] != "v0=":
            raise WebhookFormatError(f"header {self._HEADER} must start with v0=")
        provided = _fromhex(value[3:], self._HEADER)

        content = b"v0:%b:%b" % (stamp.encode("ascii"), body)
        digests = [hmac.digest(k, content, "sha256") for k in self._keys]
        if not self._match(digests, [provided]):
            raise _signature_error(self._HEADER)
        self._check_window(timestamp, self._TIMESTAMP)

    def sign(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """Return the two headers Slack would send with ``body``."""
        t = self._now_seconds() if timestamp is None else int(timestamp)
        digest = hmac.digest(self._keys[0], b"v0:%d:%b" % (t, body), "sha256")
        return {self._HEADER: f"v0={digest.hex()}", self._TIMESTAMP: str(t)}

    def _decode(self, body: bytes) -> JSONValue:
        return _decode_auto(body)

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return _text_field(payload, "event_id") or _body_digest(body)

    def _event_type(self, headers: HeaderMapping, payload: JSONValue) -> str:
        return (
            _text_field(payload, "type") or _text_field(payload, "command") or "unknown"
        )


# -------------------------------------------------------- body-only base64 schemes


class _BodyBase64Verifier(_Verifier):
    """A base64 HMAC-SHA256 of the body alone, in one header."""

    _HEADER: ClassVar[str]

    def __init__(
        self,
        secret: SecretInput,
        *,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
        )

    def verify(self, body: bytes, headers: HeaderMapping, **context: object) -> None:
        """Raise unless the signature header signs ``body``."""
        body = _raw_body(body, self._max_body_bytes)
        value = _required(headers, self._HEADER, self._HEADER.lower()).strip()

        expected = [_b64(hmac.digest(k, body, "sha256")) for k in self._keys]
        if not _matches_text(expected, value):
            _require_base64([value], self._HEADER)
            raise _signature_error(self._HEADER)

    def sign(self, body: bytes) -> dict[str, str]:
        """Return the signature header the provider would send with ``body``."""
        return {self._HEADER: _b64(hmac.digest(self._keys[0], body, "sha256"))}


class ShopifyVerifier(_BodyBase64Verifier):
    """Shopify: ``X-Shopify-Hmac-Sha256``, base64 HMAC-SHA256 of the body.

    No timestamp is signed. The delivery id is ``X-Shopify-Webhook-Id`` and
    the type ``X-Shopify-Topic``. After a client-secret rotation Shopify may
    sign with the old secret for up to an hour: list both.
    """

    provider = "shopify"
    _HEADER = "X-Shopify-Hmac-Sha256"

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return _header(headers, "X-Shopify-Webhook-Id", "x-shopify-webhook-id") or (
            _body_digest(body)
        )

    def _event_type(self, headers: HeaderMapping, payload: JSONValue) -> str:
        return _header(headers, "X-Shopify-Topic", "x-shopify-topic") or "unknown"


class SalesforceVerifier(_BodyBase64Verifier):
    """Salesforce Marketing Cloud event notifications: ``x-sfmc-ens-signature``.

    A base64 HMAC-SHA256 of the body with the callback's signature key. Nothing
    else is signed (no timestamp, no URL), and a body carries a batch of
    events, so the delivery id is a digest of the body.
    """

    provider = "salesforce"
    _HEADER = "x-sfmc-ens-signature"

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return _body_digest(body)

    def _event_type(self, headers: HeaderMapping, payload: JSONValue) -> str:
        first = payload[0] if isinstance(payload, list) and payload else None
        return _text_field(first, "eventCategoryType") or "unknown"


# --------------------------------------------------------------------------- Square


class SquareVerifier(_Verifier):
    """Square: ``x-square-hmacsha256-signature`` over notification URL + body.

    The URL is the subscription's notification URL exactly as registered;
    give it once as ``notification_url`` or per call as ``url=``. The
    delivery id is the body's ``event_id``.
    """

    provider = "square"
    _HEADER = "x-square-hmacsha256-signature"

    def __init__(
        self,
        secret: SecretInput,
        *,
        notification_url: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
        )
        self._url = notification_url

    def verify(
        self,
        body: bytes,
        headers: HeaderMapping,
        *,
        url: str | None = None,
        **context: object,
    ) -> None:
        """Raise unless the signature header signs the URL and ``body``."""
        body = _raw_body(body, self._max_body_bytes)
        value = _required(headers, self._HEADER, self._HEADER).strip()
        content = self._url_bytes(url) + body

        expected = [_b64(hmac.digest(k, content, "sha256")) for k in self._keys]
        if not _matches_text(expected, value):
            _require_base64([value], self._HEADER)
            raise _signature_error(self._HEADER)

    def sign(self, body: bytes, *, url: str | None = None) -> dict[str, str]:
        """Return the signature header Square would send with ``body``."""
        digest = hmac.digest(self._keys[0], self._url_bytes(url) + body, "sha256")
        return {self._HEADER: _b64(digest)}

    def _url_bytes(self, url: str | None) -> bytes:
        url = url if url is not None else self._url
        if not url:
            raise WebhookFormatError("Square signs the notification URL: pass url=")
        return url.encode("utf-8")

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return _text_field(payload, "event_id") or _body_digest(body)


# ------------------------------------------------------------------------ PagerDuty


class PagerDutyVerifier(_Verifier):
    """PagerDuty V3: ``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>]`` of the body.

    PagerDuty sends one ``v1`` entry per active secret. No timestamp is
    signed. The delivery id is the body's ``event.id``.
    """

    provider = "pagerduty"
    _HEADER = "X-PagerDuty-Signature"

    def __init__(
        self,
        secret: SecretInput,
        *,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
        )

    def verify(self, body: bytes, headers: HeaderMapping, **context: object) -> None:
        """Raise unless one ``v1`` entry signs ``body``."""
        body = _raw_body(body, self._max_body_bytes)
        value = _required(headers, self._HEADER, self._HEADER.lower())
        provided = []
        for entry in value.split(","):
            version, sep, signature = entry.strip().partition("=")
            if not sep:
                raise WebhookFormatError(f"header {self._HEADER} entry is not v1=<hex>")
            if version == "v1":
                provided.append(_fromhex(signature, self._HEADER))
        if not provided:
            raise WebhookFormatError(f"header {self._HEADER} has no v1 signature")

        digests = [hmac.digest(k, body, "sha256") for k in self._keys]
        if not self._match(digests, provided):
            raise _signature_error(self._HEADER)

    def sign(self, body: bytes) -> dict[str, str]:
        """Return the signature header, one ``v1`` entry per secret."""
        entries = [f"v1={hmac.digest(k, body, 'sha256').hex()}" for k in self._keys]
        return {self._HEADER: ",".join(entries)}

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return _text_field(payload, "event", "id") or _body_digest(body)

    def _event_type(self, headers: HeaderMapping, payload: JSONValue) -> str:
        return _text_field(payload, "event", "event_type") or "unknown"


# -------------------------------------------------------------------------- Zendesk


class ZendeskVerifier(_Verifier):
    """Zendesk: base64 HMAC-SHA256 of ``<timestamp><body>`` (no separator).

    The timestamp header is ISO-8601 (``2021-03-25T05:09:27Z``). Zendesk
    documents no window; 300 s each way is this library's default. The
    secret is used as its literal UTF-8 text, even when it looks like base64.
    The delivery id is ``X-Zendesk-Webhook-Invocation-Id``.
    """

    provider = "zendesk"
    _HEADER = "X-Zendesk-Webhook-Signature"
    _TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"

    def __init__(
        self,
        secret: SecretInput,
        *,
        tolerance_seconds: float | None = 300.0,
        future_tolerance_seconds: float | None = 300.0,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
            tolerance_seconds=tolerance_seconds,
            future_tolerance_seconds=future_tolerance_seconds,
        )

    def verify(self, body: bytes, headers: HeaderMapping, **context: object) -> None:
        """Raise unless the signature header signs timestamp + ``body``."""
        body = _raw_body(body, self._max_body_bytes)
        stamp = _required(headers, self._TIMESTAMP, self._TIMESTAMP.lower())
        value = _required(headers, self._HEADER, self._HEADER.lower()).strip()
        timestamp = _iso_seconds(stamp, self._TIMESTAMP)

        content = stamp.encode("utf-8") + body
        expected = [_b64(hmac.digest(k, content, "sha256")) for k in self._keys]
        if not _matches_text(expected, value):
            _require_base64([value], self._HEADER)
            raise _signature_error(self._HEADER)
        self._check_window(timestamp, self._TIMESTAMP)

    def sign(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """Return the two headers Zendesk would send with ``body``.

        Raises:
            WebhookFormatError: ``timestamp`` falls outside the years 1970 to
                9999, which Zendesk's ISO-8601 header cannot carry.
        """
        t = self._now_seconds() if timestamp is None else int(timestamp)
        if not 0 <= t <= _LAST_ISO_SECOND:
            raise WebhookFormatError(
                f"timestamp {t} is outside 1970-9999; Zendesk's header cannot carry it"
            )
        stamp = _utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hmac.digest(self._keys[0], stamp.encode("ascii") + body, "sha256")
        return {self._HEADER: _b64(digest), self._TIMESTAMP: stamp}

    def _decode(self, body: bytes) -> JSONValue:
        return _decode_json(body, allow_empty=True)

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return (
            _header(
                headers,
                "X-Zendesk-Webhook-Invocation-Id",
                "x-zendesk-webhook-invocation-id",
            )
            or _text_field(payload, "id")
            or _body_digest(body)
        )


_LAST_ISO_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z


def _iso_seconds(value: str, name: str) -> float:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WebhookFormatError(f"header {name} is not an ISO-8601 time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


# -------------------------------------------------------------------------- HubSpot

# HubSpot's v3 instructions decode exactly these escapes in the request URI.
_HUBSPOT_URI_ESCAPES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_HUBSPOT_ESCAPE = re.compile("|".join(_HUBSPOT_URI_ESCAPES), re.IGNORECASE)


def _hubspot_uri(uri: str) -> str:
    return _HUBSPOT_ESCAPE.sub(lambda m: _HUBSPOT_URI_ESCAPES[m.group(0).upper()], uri)


class HubSpotVerifier(_Verifier):
    """HubSpot: v3 (HMAC), or the older v1/v2 (plain SHA-256) signatures.

    v3: ``X-HubSpot-Signature-v3`` is base64 HMAC-SHA256 of method + URI +
    body + ``X-HubSpot-Request-Timestamp`` (milliseconds), rejected when older
    than 5 minutes. v1: hex SHA-256 of secret + body; v2: of secret + method +
    URI + body, chosen by ``X-HubSpot-Signature-Version``. v3 is used whenever
    its header is present; ``versions`` limits which are accepted.

    Args:
        secret: the app's client secret, or several while rotating.
        versions: the signature versions accepted.
        tolerance_seconds: oldest accepted v3 timestamp (HubSpot's 300 s).
        future_tolerance_seconds: how far ahead a v3 timestamp may be.
        clock: the clock timestamps are compared with.
        replay_guard: rejects a second delivery of the same body.
        max_body_bytes: larger bodies are refused before hashing.
    """

    provider = "hubspot"
    _V3 = "X-HubSpot-Signature-v3"
    _TIMESTAMP = "X-HubSpot-Request-Timestamp"
    _LEGACY = "X-HubSpot-Signature"
    _VERSION = "X-HubSpot-Signature-Version"

    def __init__(
        self,
        secret: SecretInput,
        *,
        versions: Iterable[Literal["v1", "v2", "v3"]] = ("v1", "v2", "v3"),
        tolerance_seconds: float | None = 300.0,
        future_tolerance_seconds: float | None = 300.0,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
            tolerance_seconds=tolerance_seconds,
            future_tolerance_seconds=future_tolerance_seconds,
        )
        self._versions = frozenset(versions)

    def verify(
        self,
        body: bytes,
        headers: HeaderMapping,
        *,
        method: str = "POST",
        url: str | None = None,
        **context: object,
    ) -> None:
        """Raise unless the v3 (or an accepted v1/v2) signature signs the request."""
        body = _raw_body(body, self._max_body_bytes)
        v3 = _header(headers, self._V3, self._V3.lower())
        if v3 is not None and "v3" in self._versions:
            self._verify_v3(body, headers, v3.strip(), method, url)
            return

        version = (
            _header(headers, self._VERSION, self._VERSION.lower()) or "v1"
        ).strip()
        if version not in ("v1", "v2") or version not in self._versions:
            raise WebhookFormatError(
                f"header {self._VERSION} names a version not accepted: {version[:8]!r}"
            )
        value = _required(headers, self._LEGACY, self._LEGACY.lower()).strip()
        provided = _fromhex(value, self._LEGACY)
        digests = [self._legacy(k, version, body, method, url) for k in self._keys]
        if not self._match(digests, [provided]):
            raise _signature_error(self._LEGACY)

    def sign(
        self,
        body: bytes,
        *,
        method: str = "POST",
        url: str | None = None,
        timestamp_ms: int | None = None,
        version: Literal["v1", "v2", "v3"] = "v3",
    ) -> dict[str, str]:
        """Return the headers HubSpot would send for this signature version."""
        key = self._keys[0]
        if version != "v3":
            digest = self._legacy(key, version, body, method, url).hex()
            return {self._LEGACY: digest, self._VERSION: version}

        ms = int(self._clock.time() * 1000) if timestamp_ms is None else timestamp_ms
        content = self._v3_content(body, method, url, str(ms))
        return {
            self._V3: _b64(hmac.digest(key, content, "sha256")),
            self._TIMESTAMP: str(ms),
        }

    def _verify_v3(
        self,
        body: bytes,
        headers: HeaderMapping,
        value: str,
        method: str,
        url: str | None,
    ) -> None:
        stamp = _required(headers, self._TIMESTAMP, self._TIMESTAMP.lower()).strip()
        millis = _unix_seconds(stamp, self._TIMESTAMP)
        content = self._v3_content(body, method, url, stamp)

        expected = [_b64(hmac.digest(k, content, "sha256")) for k in self._keys]
        if not _matches_text(expected, value):
            _require_base64([value], self._V3)
            raise _signature_error(self._V3)
        self._check_window(millis / 1000, self._TIMESTAMP)

    def _v3_content(
        self, body: bytes, method: str, url: str | None, stamp: str
    ) -> bytes:
        uri = _hubspot_uri(_context_url(url, "HubSpot v3"))
        return (method + uri).encode("utf-8") + body + stamp.encode("ascii")

    def _legacy(
        self, key: bytes, version: str, body: bytes, method: str, url: str | None
    ) -> bytes:
        if version == "v1":
            return hashlib.sha256(key + body).digest()
        uri = _context_url(url, "HubSpot v2")
        return hashlib.sha256(key + (method + uri).encode("utf-8") + body).digest()

    def _decode(self, body: bytes) -> JSONValue:
        return _decode_json(body, allow_empty=True)

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return _body_digest(body)

    def _event_type(self, headers: HeaderMapping, payload: JSONValue) -> str:
        first = payload[0] if isinstance(payload, list) and payload else None
        return _text_field(first, "subscriptionType") or "unknown"


def _context_url(url: str | None, scheme: str) -> str:
    if not url:
        raise WebhookFormatError(f"{scheme} signs the request URL: pass url=")
    if not isinstance(url, str):
        raise WebhookFormatError(f"url must be text, got {type(url).__name__}")
    return url


# --------------------------------------------------------------------------- Twilio

TwilioParams: TypeAlias = "Mapping[str, str | Sequence[str]]"


class TwilioVerifier(_Verifier):
    """Twilio: ``X-Twilio-Signature``, base64 HMAC-SHA1 of URL + sorted params.

    The URL is the full URL Twilio requested, query included. Form parameters
    are appended sorted by name, each name followed by its value. For JSON
    bodies the URL carries ``bodySHA256=<hex SHA-256 of the body>`` and no
    parameters are signed. The URL is also tried with its default port added
    or removed, as Twilio signs inconsistently. An
    ``X-Twilio-Webhooks-Signature-Settings`` header naming ``HMAC_SHA256``
    switches the digest. The delivery id is ``I-Twilio-Idempotency-Token``.
    """

    provider = "twilio"
    _HEADER = "X-Twilio-Signature"
    _SETTINGS = "X-Twilio-Webhooks-Signature-Settings"
    _ALGORITHMS: ClassVar[dict[str, str]] = {
        "HMAC_SHA1": "sha1",
        "HMAC_SHA256": "sha256",
    }

    def __init__(
        self,
        secret: SecretInput,
        *,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
        )

    def verify(
        self,
        body: bytes,
        headers: HeaderMapping,
        *,
        url: str | None = None,
        params: TwilioParams | None = None,
        **context: object,
    ) -> None:
        """Raise unless ``X-Twilio-Signature`` signs the URL and parameters.

        Args:
            body: the raw body: a form, or JSON when the URL has bodySHA256.
            headers: the request headers.
            url: the full URL Twilio requested.
            params: the signed parameters, when not the form in ``body``.
            context: other schemes' context (``method=``, ...), ignored here.
        """
        body = _raw_body(body, self._max_body_bytes)
        url = _context_url(url, "Twilio")
        value = _required(headers, self._HEADER, self._HEADER.lower()).strip()
        algorithm = self._algorithm(headers)
        tail = self._signed_params(body, url, params)

        expected = [
            _b64(hmac.digest(k, (candidate + tail).encode("utf-8"), algorithm))
            for candidate in _url_variants(url)
            for k in self._keys
        ]
        if not _matches_text(expected, value):
            _require_base64([value], self._HEADER)
            raise _signature_error(self._HEADER)

    def sign(
        self,
        body: bytes,
        *,
        url: str | None = None,
        params: TwilioParams | None = None,
    ) -> dict[str, str]:
        """Return the ``X-Twilio-Signature`` header for a request to ``url``."""
        url = _context_url(url, "Twilio")
        tail = self._signed_params(body, url, params)
        digest = hmac.digest(self._keys[0], (url + tail).encode("utf-8"), "sha1")
        return {self._HEADER: _b64(digest)}

    @staticmethod
    def body_sha256_url(url: str, body: bytes) -> str:
        """Return ``url`` with the ``bodySHA256`` parameter Twilio adds for JSON."""
        separator = "&" if urlsplit(url).query else "?"
        return f"{url}{separator}bodySHA256={hashlib.sha256(body).hexdigest()}"

    def _algorithm(self, headers: HeaderMapping) -> str:
        settings = _header(headers, self._SETTINGS, self._SETTINGS.lower())
        if not settings:
            return "sha1"
        for part in settings.split(","):
            name, _, value = part.partition("=")
            if name.strip() == "algorithm":
                algorithm = self._ALGORITHMS.get(value.strip().upper())
                if algorithm is None:
                    raise WebhookFormatError(
                        f"header {self._SETTINGS} names an unsupported algorithm"
                    )
                return algorithm
        return "sha1"

    def _signed_params(self, body: bytes, url: str, params: TwilioParams | None) -> str:
        try:
            query = parse_qs(urlsplit(url).query)
        except ValueError as exc:
            raise WebhookFormatError(f"url is not a valid URL: {exc}") from exc

        if "bodySHA256" in query:
            self._check_body_hash(body, query["bodySHA256"][0])
            return ""
        if params is None:
            params = _form_pairs(body)
        return _twilio_tail(params)

    def _check_body_hash(self, body: bytes, claimed: str) -> None:
        actual = hashlib.sha256(body).hexdigest()
        if not (claimed.isascii() and hmac.compare_digest(actual, claimed.lower())):
            raise WebhookSignatureError("bodySHA256 in the URL does not match the body")

    def _decode(self, body: bytes) -> JSONValue:
        return _decode_auto(body)

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        return _header(
            headers, "I-Twilio-Idempotency-Token", "i-twilio-idempotency-token"
        ) or _body_digest(body)

    def _event_type(self, headers: HeaderMapping, payload: JSONValue) -> str:
        return (
            _text_field(payload, "EventType")
            or _text_field(payload, "type")
            or ("unknown")
        )


def _form_pairs(body: bytes) -> dict[str, list[str]]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=10_000
        )
    except ValueError as exc:
        raise WebhookFormatError(f"body is not a valid form: {exc}") from exc
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _twilio_tail(params: TwilioParams) -> str:
    """Concatenate name+value for sorted names, sorted distinct values each."""
    try:
        parts: list[str] = []
        for name in sorted(set(params)):
            values = params[name]
            if isinstance(values, str):
                values = [values]
            parts.extend(name + value for value in sorted(set(values)))
    except TypeError as exc:
        raise WebhookFormatError(f"Twilio params must be text: {exc}") from exc
    return "".join(parts)


def _url_variants(url: str) -> list[str]:
    """Return ``url`` as given, then with its default port added or removed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookFormatError(f"url is not a valid URL: {exc}") from exc

    userinfo, at, hostport = parts.netloc.rpartition("@")
    host = hostport.rsplit(":", 1)[0] if port is not None else hostport
    if port is not None:
        other = host
    else:
        other = f"{host}:{443 if parts.scheme == 'https' else 80}"
    variant = urlunsplit(parts._replace(netloc=f"{userinfo}{at}{other}"))
    return [url] if variant == url else [url, variant]


# ----------------------------------------------------------------------- HMAC (any)

_TEMPLATE_FIELDS = frozenset({"body", "timestamp", "id", "method", "url"})


class HmacVerifier(_Verifier):
    """Any sender's own HMAC scheme: header, digest, encoding, prefix, content.

    ``template`` says what is signed, with ``{body}`` (the raw body, exactly
    once) and optionally ``{timestamp}`` (from ``timestamp_header``, Unix
    seconds, checked against the window), ``{id}`` (from ``id_header``),
    ``{method}`` and ``{url}`` (passed per call). The signature may carry a
    ``prefix`` such as ``sha256=``.

    Args:
        secret: the shared secret(s); ``bytes`` are used as the raw key.
        header: the header carrying the signature.
        algorithm: a ``hashlib`` digest name.
        encoding: ``"hex"`` or ``"base64"``.
        prefix: text before the encoded signature.
        template: the signed content.
        timestamp_header: the header filling ``{timestamp}``.
        id_header: the header filling ``{id}``, and the delivery id.
        type_header: the header naming the event type.
        tolerance_seconds: oldest accepted timestamp.
        future_tolerance_seconds: how far ahead a timestamp may be.
        clock: the clock timestamps are compared with.
        replay_guard: rejects a second delivery of the same id.
        max_body_bytes: larger bodies are refused before hashing.
    """

    provider = "hmac"

    def __init__(
        self,
        secret: SecretInput,
        *,
        header: str,
        algorithm: str = "sha256",
        encoding: Literal["hex", "base64"] = "hex",
        prefix: str = "",
        template: str = "{body}",
        timestamp_header: str | None = None,
        id_header: str | None = None,
        type_header: str | None = None,
        tolerance_seconds: float | None = 300.0,
        future_tolerance_seconds: float | None = 300.0,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(
            secret,
            clock=clock,
            replay_guard=replay_guard,
            max_body_bytes=max_body_bytes,
            tolerance_seconds=tolerance_seconds,
            future_tolerance_seconds=future_tolerance_seconds,
        )
        if algorithm not in hashlib.algorithms_available:
            raise WebhookError(f"unknown digest algorithm {algorithm!r}")
        if encoding not in ("hex", "base64"):
            raise WebhookError(f"encoding must be 'hex' or 'base64', got {encoding!r}")
        self._header_name = header
        self._algorithm = algorithm
        self._encoding = encoding
        self._prefix = prefix
        self._segments = _template_segments(template)
        self._timestamp_header = timestamp_header
        self._id_header = id_header
        self._type_header = type_header
        if "timestamp" in self._segments and timestamp_header is None:
            raise WebhookError("template uses {timestamp}: set timestamp_header")
        if "id" in self._segments and id_header is None:
            raise WebhookError("template uses {id}: set id_header")

    def verify(
        self,
        body: bytes,
        headers: HeaderMapping,
        *,
        method: str | None = None,
        url: str | None = None,
        **context: object,
    ) -> None:
        """Raise unless the configured header signs the configured content."""
        body = _raw_body(body, self._max_body_bytes)
        value = _required(headers, self._header_name, self._header_name.lower())
        value = value.strip()
        if not value.startswith(self._prefix):
            raise WebhookFormatError(
                f"header {self._header_name} must start with {self._prefix!r}"
            )
        fields = self._fields(headers, method, url)
        content = self._content(body, fields)

        provided = self._decode_signature(value[len(self._prefix) :])
        digests = [hmac.digest(k, content, self._algorithm) for k in self._keys]
        if not self._match(digests, [provided]):
            raise _signature_error(self._header_name)
        if "timestamp" in fields:
            self._check_window(int(fields["timestamp"]), str(self._timestamp_header))

    def sign(
        self,
        body: bytes,
        *,
        timestamp: int | None = None,
        delivery_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> dict[str, str]:
        """Return the headers a sender using this scheme attaches."""
        headers: dict[str, str] = {}
        if self._timestamp_header is not None:
            t = self._now_seconds() if timestamp is None else int(timestamp)
            headers[self._timestamp_header] = str(t)
        if self._id_header is not None:
            headers[self._id_header] = delivery_id or "msg_" + _random_id()

        content = self._content(body, self._fields(headers, method, url))
        digest = hmac.digest(self._keys[0], content, self._algorithm)
        encoded = digest.hex() if self._encoding == "hex" else _b64(digest)
        headers[self._header_name] = self._prefix + encoded
        return headers

    def __repr__(self) -> str:
        return (
            f"HmacVerifier(header={self._header_name!r}, "
            f"algorithm={self._algorithm!r}, secrets={len(self._keys)})"
        )

    def _fields(
        self, headers: HeaderMapping, method: str | None, url: str | None
    ) -> dict[str, str]:
        fields: dict[str, str] = {}
        if self._timestamp_header is not None:
            name = self._timestamp_header
            stamp = _required(headers, name, name.lower()).strip()
            _unix_seconds(stamp, name)
            fields["timestamp"] = stamp
        if self._id_header is not None and "id" in self._segments:
            fields["id"] = _required(headers, self._id_header, self._id_header.lower())
        if "method" in self._segments:
            fields["method"] = _context_text(method, "method")
        if "url" in self._segments:
            fields["url"] = _context_text(url, "url")
        return fields

    def _content(self, body: bytes, fields: Mapping[str, str]) -> bytes:
        parts: list[bytes] = []
        for literal, name in self._segments.pairs:
            parts.append(literal)
            if name == "body":
                parts.append(body)
            elif name is not None:
                parts.append(fields[name].encode("utf-8"))
        return b"".join(parts)

    def _decode_signature(self, text: str) -> bytes:
        if self._encoding == "hex":
            return _fromhex(text, self._header_name)
        if not (text.isascii() and _BASE64.fullmatch(text)):
            raise WebhookFormatError(f"header {self._header_name} is not base64")
        return base64.b64decode(text)

    def _event_id(self, body: bytes, headers: HeaderMapping, payload: JSONValue) -> str:
        if self._id_header is not None:
            found = _header(headers, self._id_header, self._id_header.lower())
            if found:
                return found
        return _text_field(payload, "id") or _body_digest(body)

    def _event_type(self, headers: HeaderMapping, payload: JSONValue) -> str:
        if self._type_header is not None:
            found = _header(headers, self._type_header, self._type_header.lower())
            if found:
                return found
        return _text_field(payload, "type") or "unknown"


class _Template:
    """A parsed signed-content template: literal bytes and field names in order."""

    def __init__(self, pairs: list[tuple[bytes, str | None]]) -> None:
        self.pairs = pairs
        self.names = frozenset(name for _, name in pairs if name is not None)

    def __contains__(self, name: object) -> bool:
        return name in self.names


def _template_segments(template: str) -> _Template:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise WebhookError(f"template is malformed: {exc}") from exc

    pairs: list[tuple[bytes, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (name not in _TEMPLATE_FIELDS or spec or conversion):
            raise WebhookError(
                f"template field {{{name}}} is not one of {sorted(_TEMPLATE_FIELDS)}"
            )
        pairs.append((literal.encode("utf-8"), name))

    if sum(name == "body" for _, name in pairs) != 1:
        raise WebhookError("template must contain {body} exactly once")
    return _Template(pairs)


def _context_text(value: str | None, name: str) -> str:
    if not value or not isinstance(value, str):
        raise WebhookFormatError(f"the signed content needs {name}=: pass it")
    return value


# ------------------------------------------------------------------ 0.2.0 handler


class WebhookHandler:
    """The 0.2.0 handler: one HMAC-SHA256 signature header, fields in the body.

    Accepts ``sha256=<hex>``, ``v1=<hex>``, bare hex, and Stripe's
    ``t=<ts>,v1=<hex>`` (which signs ``"<t>.<body>"``). As in 0.2.0, a
    signature header that cannot be read (empty, not hex) raises
    ``WebhookSignatureError``, where the per-provider verifiers raise
    ``WebhookFormatError``. The event's id and type come from the JSON body's
    ``id_field`` and ``type_field`` (type ``"unknown"`` and id ``""`` when
    absent; a replay guard then keys the delivery by a digest of the body).
    When ``tolerance_seconds`` is set, a Stripe header timestamp or a body
    ``timestamp_field`` (Unix seconds, as a number or decimal text) further
    than that from now raises ``WebhookReplayError``.

    New code should prefer the per-provider verifiers.
    """

    def __init__(
        self,
        secret: SecretInput,
        tolerance_seconds: float | None = 300.0,
        timestamp_field: str = "timestamp",
        id_field: str = "id",
        type_field: str = "type",
        *,
        clock: Clock = SYSTEM_CLOCK,
        replay_guard: ReplayGuard | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        _check_limits(tolerance_seconds, None, max_body_bytes)
        self._keys = tuple(_utf8_key(s) for s in _secrets(secret))
        self.tolerance_seconds = tolerance_seconds
        self.timestamp_field = timestamp_field
        self.id_field = id_field
        self.type_field = type_field
        self._clock = clock
        self._replay_guard = replay_guard
        self._max_body_bytes = max_body_bytes

    def parse(self, payload: bytes, signature_header: str) -> WebhookEvent:
        """Verify ``signature_header`` over ``payload`` and decode the event."""
        body = _raw_body(payload, self._max_body_bytes)
        value = _header_text(signature_header, "signature").strip()
        self._verify(body, value)

        data = _decode_json(body)
        if not isinstance(data, dict):
            raise WebhookFormatError("body must be a JSON object")
        self._check_body_timestamp(data)
        event_id = _text_field(data, self.id_field) or ""
        self._check_replay(event_id or _body_digest(body))

        event_type = _text_field(data, self.type_field) or "unknown"
        return WebhookEvent(event_id, event_type, data, self._clock.time(), body)

    def __repr__(self) -> str:
        return (
            f"WebhookHandler(tolerance_seconds={self.tolerance_seconds!r}, "
            f"secrets={len(self._keys)})"
        )

    def _verify(self, body: bytes, value: str) -> None:
        try:
            content, provided, timestamp = _legacy_signed_parts(body, value)
        except WebhookFormatError as exc:
            raise WebhookSignatureError(str(exc)) from exc

        self._match(content, provided)
        if timestamp is not None:
            self._check_time(timestamp, "signature timestamp")

    def _match(self, content: bytes, provided: list[bytes]) -> None:
        found = False
        for key in self._keys:
            digest = hmac.digest(key, content, "sha256")
            for candidate in provided:
                found |= hmac.compare_digest(digest, candidate)
        if not found:
            raise WebhookSignatureError("signature does not match the payload")

    def _check_body_timestamp(self, data: dict[str, JSONValue]) -> None:
        if self.tolerance_seconds is None or data.get(self.timestamp_field) is None:
            return
        where = f"field {self.timestamp_field!r}"
        self._check_time(_body_seconds(data[self.timestamp_field], where), where)

    def _check_time(self, timestamp: float, where: str) -> None:
        if self.tolerance_seconds is None:
            return
        skew = self._clock.time() - timestamp
        if abs(skew) > self.tolerance_seconds:
            direction = "old" if skew > 0 else "in the future"
            raise WebhookReplayError(
                f"{where} is {abs(skew):.0f} s {direction}, beyond the "
                f"{self.tolerance_seconds:g} s tolerance"
            )

    def _check_replay(self, event_id: str) -> None:
        guard = self._replay_guard
        if guard is not None and guard.seen(f"webhook:{event_id}"):
            raise WebhookReplayError(f"delivery {event_id!r} was already received")


def _legacy_signed_parts(
    body: bytes, value: str
) -> tuple[bytes, list[bytes], int | None]:
    """Return the signed content, the signatures and the Stripe timestamp."""
    if not value:
        raise WebhookFormatError("missing signature header")
    if value.startswith("t=") or ",t=" in value:
        timestamp, provided = _stripe_parts(value, "signature")
        content = b"%b.%b" % (timestamp.encode("ascii"), body)
        return content, provided, int(timestamp)

    for prefix in ("sha256=", "v1="):
        if value.startswith(prefix):
            value = value[len(prefix) :]
            break
    return body, [_fromhex(value, "signature")], None


def _body_seconds(value: JSONValue, where: str) -> float:
    """Read a body timestamp as 0.2.0 did, with ``float()``, refusing non-finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise WebhookFormatError(f"{where} must be Unix seconds")
    try:
        seconds = float(value)
    except (ValueError, OverflowError) as exc:
        raise WebhookFormatError(f"{where} must be Unix seconds") from exc
    if not math.isfinite(seconds):
        raise WebhookFormatError(f"{where} must be finite Unix seconds")
    return seconds
