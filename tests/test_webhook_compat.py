"""The 0.2.0 WebhookHandler keeps its signature, formats and behaviour."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json

import pytest

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.webhook_handler import (
    MemoryReplayGuard,
    WebhookEvent,
    WebhookFormatError,
    WebhookHandler,
    WebhookReplayError,
    WebhookSignatureError,
)

SECRET = "compat-secret"


def body_at(clock: ManualClock, **extra: object) -> bytes:
    """Return a JSON event body stamped with the clock's time."""
    data = {"id": "evt_9", "type": "order.created", "timestamp": clock.time(), **extra}
    return json.dumps(data).encode()


def hexmac(content: bytes, secret: str = SECRET) -> str:
    """Return the hex HMAC-SHA256 of ``content``."""
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


def test_constructor_signature_is_unchanged() -> None:
    """Positional parameters and defaults match 0.2.0."""
    parameters = inspect.signature(WebhookHandler).parameters

    assert list(parameters)[:5] == [
        "secret",
        "tolerance_seconds",
        "timestamp_field",
        "id_field",
        "type_field",
    ]
    assert [parameters[n].default for n in list(parameters)[1:5]] == [
        300.0,
        "timestamp",
        "id",
        "type",
    ]


def test_event_fields_are_positional_in_order() -> None:
    """WebhookEvent still takes event_id, event_type, payload, received_at, raw."""
    assert list(inspect.signature(WebhookEvent).parameters) == [
        "event_id",
        "event_type",
        "payload",
        "received_at",
        "raw",
    ]


@pytest.mark.parametrize("form", ["sha256={}", "v1={}", "{}"])
def test_body_signature_forms_verify(form: str, clock: ManualClock) -> None:
    """sha256=<hex>, v1=<hex> and bare hex over the body all verify."""
    handler = WebhookHandler(SECRET, clock=clock)
    body = body_at(clock)

    event = handler.parse(body, form.format(hexmac(body)))

    assert (event.event_id, event.event_type) == ("evt_9", "order.created")
    assert event.raw == body


def test_stripe_form_signs_timestamp_dot_body(clock: ManualClock) -> None:
    """t=<ts>,v1=<hex> verifies over "<t>.<body>", not the body alone."""
    handler = WebhookHandler(SECRET, clock=clock)
    body = body_at(clock)
    t = int(clock.time())

    handler.parse(body, f"t={t},v1={hexmac(f'{t}.'.encode() + body)}")
    with pytest.raises(WebhookSignatureError):
        handler.parse(body, f"t={t},v1={hexmac(body)}")


def test_stripe_form_with_stale_timestamp_is_a_replay(clock: ManualClock) -> None:
    """A Stripe-form header older than the tolerance raises WebhookReplayError."""
    handler = WebhookHandler(SECRET, clock=clock)
    body = json.dumps({"id": "e"}).encode()
    t = int(clock.time()) - 301

    with pytest.raises(WebhookReplayError):
        handler.parse(body, f"t={t},v1={hexmac(f'{t}.'.encode() + body)}")


def test_wrong_signature_raises_signature_error(clock: ManualClock) -> None:
    """A signature from another secret raises WebhookSignatureError (a ValueError)."""
    handler = WebhookHandler(SECRET, clock=clock)
    body = body_at(clock)

    with pytest.raises(ValueError, match="signature") as caught:
        handler.parse(body, hexmac(body, "other"))

    assert isinstance(caught.value, WebhookSignatureError)


@pytest.mark.parametrize("skew", [-301, 301])
def test_body_timestamp_outside_tolerance_is_a_replay(
    skew: int, clock: ManualClock
) -> None:
    """An event whose body timestamp is too old or too new raises a replay error."""
    handler = WebhookHandler(SECRET, clock=clock)
    body = json.dumps({"id": "e", "timestamp": clock.time() + skew}).encode()

    with pytest.raises(WebhookReplayError):
        handler.parse(body, hexmac(body))


def test_null_body_timestamp_skips_the_check(clock: ManualClock) -> None:
    """A null timestamp field counts as absent, as in 0.2.0."""
    body = json.dumps({"id": "e", "timestamp": None}).encode()

    assert WebhookHandler(SECRET, clock=clock).parse(body, hexmac(body)).event_id == "e"


def test_no_tolerance_skips_the_body_timestamp(clock: ManualClock) -> None:
    """tolerance_seconds=None accepts any body timestamp."""
    handler = WebhookHandler(SECRET, tolerance_seconds=None, clock=clock)
    body = json.dumps({"id": "e", "timestamp": 0}).encode()

    assert handler.parse(body, hexmac(body)).event_id == "e"


def test_missing_type_is_unknown_and_missing_id_is_empty(clock: ManualClock) -> None:
    """Without type the event type is "unknown"; without id, "" as in 0.2.0."""
    handler = WebhookHandler(SECRET, clock=clock)
    body = b'{"x": 1}'

    event = handler.parse(body, hexmac(body))

    assert event.event_type == "unknown"
    assert event.event_id == ""


def test_replay_guard_keys_id_less_bodies_by_digest(clock: ManualClock) -> None:
    """Bodies without an id are told apart by content; a repeat is a replay."""
    handler = WebhookHandler(
        SECRET, clock=clock, replay_guard=MemoryReplayGuard(clock=clock)
    )
    first, second = b'{"x": 1}', b'{"x": 2}'

    handler.parse(first, hexmac(first))
    handler.parse(second, hexmac(second))
    with pytest.raises(WebhookReplayError):
        handler.parse(first, hexmac(first))


def test_received_at_is_the_clock_time_in_seconds(clock: ManualClock) -> None:
    """received_at is the clock's time() as a float, the 0.2.0 type."""
    body = body_at(clock)

    received_at = (
        WebhookHandler(SECRET, clock=clock).parse(body, hexmac(body)).received_at
    )

    assert (type(received_at), received_at) == (float, clock.time())


@pytest.mark.parametrize("offset", [0.5, -299.25])
def test_decimal_text_body_timestamp_is_read(offset: float, clock: ManualClock) -> None:
    """A body timestamp given as decimal text is read with float(), as in 0.2.0."""
    handler = WebhookHandler(SECRET, clock=clock)
    fresh = body_at(clock, timestamp=f"{clock.time() + offset}")
    stale = body_at(clock, timestamp=f"{clock.time() - 300.5}")

    assert handler.parse(fresh, hexmac(fresh)).event_id == "evt_9"
    with pytest.raises(WebhookReplayError):
        handler.parse(stale, hexmac(stale))


def test_custom_fields_are_read(clock: ManualClock) -> None:
    """id_field, type_field and timestamp_field name the body's fields."""
    handler = WebhookHandler(SECRET, 60.0, "ts", "uid", "kind", clock=clock)
    body = json.dumps({"uid": "u1", "kind": "k", "ts": clock.time() - 61}).encode()

    with pytest.raises(WebhookReplayError):
        handler.parse(body, hexmac(body))


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b"not json",
        b'{"timestamp": "soon"}',
        b'{"timestamp": "NaN"}',
        b'{"timestamp": Infinity}',
        b'{"timestamp": "1e999"}',
        b'{"timestamp": 1' + b"0" * 400 + b"}",
        b'{"timestamp": true}',
    ],
)
def test_bad_body_raises_format_errors(body: bytes, clock: ManualClock) -> None:
    """Non-object bodies and timestamps that are not finite seconds are malformed."""
    handler = WebhookHandler(SECRET, clock=clock)

    with pytest.raises(WebhookFormatError):
        handler.parse(body, hexmac(body))


@pytest.mark.parametrize(
    "header", ["", "sha256=zz", "sha256=badhex", "abc", "é", "t=1,v1=zz", "t=x,v1=00"]
)
def test_unreadable_signature_header_is_a_signature_error(
    header: str, clock: ManualClock
) -> None:
    """As in 0.2.0, a header that is empty or not hex is a WebhookSignatureError."""
    with pytest.raises(WebhookSignatureError) as caught:
        WebhookHandler(SECRET, clock=clock).parse(b"{}", header)

    assert not isinstance(caught.value, WebhookFormatError)


def test_replay_guard_refuses_a_second_delivery(clock: ManualClock) -> None:
    """With a replay guard the same event id is accepted once."""
    handler = WebhookHandler(
        SECRET, clock=clock, replay_guard=MemoryReplayGuard(clock=clock)
    )
    body = body_at(clock)

    handler.parse(body, hexmac(body))
    with pytest.raises(WebhookReplayError):
        handler.parse(body, hexmac(body))


def test_rotation_accepts_every_listed_secret(clock: ManualClock) -> None:
    """A list of secrets accepts a signature from any of them."""
    handler = WebhookHandler(["new", SECRET], clock=clock)
    body = body_at(clock)

    handler.parse(body, hexmac(body, "new"))
    handler.parse(body, hexmac(body))


def test_repr_hides_the_secret() -> None:
    """repr names the tolerance, never the secret."""
    assert SECRET not in repr(WebhookHandler(SECRET))
