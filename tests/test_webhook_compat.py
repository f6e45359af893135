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


def test_no_tolerance_skips_the_body_timestamp(clock: ManualClock) -> None:
    """tolerance_seconds=None accepts any body timestamp."""
    handler = WebhookHandler(SECRET, tolerance_seconds=None, clock=clock)
    body = json.dumps({"id": "e", "timestamp": 0}).encode()

    assert handler.parse(body, hexmac(body)).event_id == "e"


def test_missing_type_is_unknown_and_missing_id_is_derived(clock: ManualClock) -> None:
    """Without type the event type is "unknown"; without id, a body digest."""
    handler = WebhookHandler(SECRET, clock=clock)
    body = b'{"x": 1}'

    event = handler.parse(body, hexmac(body))

    assert event.event_type == "unknown"
    assert event.event_id == "sha256:" + hashlib.sha256(body).hexdigest()


def test_custom_fields_are_read(clock: ManualClock) -> None:
    """id_field, type_field and timestamp_field name the body's fields."""
    handler = WebhookHandler(SECRET, 60.0, "ts", "uid", "kind", clock=clock)
    body = json.dumps({"uid": "u1", "kind": "k", "ts": clock.time() - 61}).encode()

    with pytest.raises(WebhookReplayError):
        handler.parse(body, hexmac(body))


@pytest.mark.parametrize(
    ("body", "header"),
    [
        (b"[1, 2]", None),
        (b"not json", None),
        (b'{"timestamp": "soon"}', None),
        (b"{}", ""),
        (b"{}", "sha256=zz"),
    ],
)
def test_bad_input_raises_format_errors(
    body: bytes, header: str | None, clock: ManualClock
) -> None:
    """Non-object bodies, bad timestamps, empty and non-hex headers are malformed."""
    handler = WebhookHandler(SECRET, clock=clock)

    with pytest.raises(WebhookFormatError):
        handler.parse(body, hexmac(body) if header is None else header)


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
