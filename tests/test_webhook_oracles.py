"""Headers made by the providers' own SDKs verify with ours, and ours with theirs."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import datetime, timezone
from typing import Any

import pytest
import slack_sdk.signature
import standardwebhooks
import stripe
import svix.webhooks
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.webhook_handler import (
    SlackVerifier,
    StandardWebhooksVerifier,
    StripeVerifier,
    TwilioVerifier,
    WebhookSignatureError,
)

STRIPE_SECRET = "whsec_test_secret"
STD_SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"oracle").digest()).decode()
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TWILIO_TOKEN = "12345"

json_bodies = st.dictionaries(
    st.text(max_size=8), st.integers() | st.text(max_size=20), max_size=4
).map(lambda d: json.dumps({"id": "evt_x", "object": "event", **d}).encode())
form_params = st.dictionaries(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1),
    st.text(st.characters(codec="utf-8")),
    max_size=5,
)


def real_now() -> ManualClock:
    """A manual clock set to the wall time, for SDKs that read the real clock."""
    return ManualClock(start=time.time())


class SlackClock(slack_sdk.signature.Clock):
    """slack_sdk's clock pinned to a manual clock."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def now(self) -> float:
        """Return the manual time."""
        return self.clock.time()


@settings(deadline=None, max_examples=40)
@given(body=json_bodies)
def test_stripe_sdk_header_verifies_with_ours(body: bytes) -> None:
    """A Stripe-Signature built by the stripe SDK verifies with StripeVerifier."""
    clock = ManualClock(start=1_700_000_000)
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), STRIPE_SECRET, timestamp=1_700_000_000
    )

    StripeVerifier(STRIPE_SECRET, clock=clock).verify(
        body, {"Stripe-Signature": header}
    )


@settings(deadline=None, max_examples=40)
@given(body=json_bodies)
def test_our_stripe_header_verifies_with_the_sdk(body: bytes) -> None:
    """Our Stripe-Signature passes stripe.Webhook.construct_event."""
    headers = StripeVerifier(STRIPE_SECRET, clock=real_now()).sign(body)

    event = stripe.Webhook.construct_event(
        body.decode(), headers["Stripe-Signature"], STRIPE_SECRET, tolerance=300
    )

    assert event["id"] == "evt_x"


def test_our_rotating_stripe_header_verifies_with_each_secret() -> None:
    """Signed with two secrets, the header passes the SDK under either one."""
    body = b'{"id": "evt_x", "object": "event"}'
    verifier = StripeVerifier(["whsec_new", STRIPE_SECRET], clock=real_now())
    header = verifier.sign(body)["Stripe-Signature"]

    for secret in ("whsec_new", STRIPE_SECRET):
        assert stripe.WebhookSignature.verify_header(body.decode(), header, secret, 300)


def test_sdk_rejects_our_header_for_another_secret() -> None:
    """The oracle really checks: another secret fails in the SDK too."""
    body = b'{"id": "evt_x", "object": "event"}'
    header = StripeVerifier(STRIPE_SECRET, clock=real_now()).sign(body)

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(
            body.decode(), header["Stripe-Signature"], "whsec_other", 300
        )


@pytest.mark.parametrize(
    "library", [standardwebhooks.Webhook, svix.webhooks.Webhook], ids=["std", "svix"]
)
@settings(deadline=None, max_examples=30)
@given(body=json_bodies, msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,20}", fullmatch=True))
def test_library_signature_verifies_with_ours(
    library: Any, body: bytes, msg_id: str
) -> None:
    """A v1 signature made by standardwebhooks or svix verifies with ours."""
    moment = datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)
    signature = library(STD_SECRET).sign(msg_id, moment, body.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": "1700000000",
        "webhook-signature": signature,
    }

    verifier = StandardWebhooksVerifier(
        STD_SECRET, clock=ManualClock(start=1_700_000_000)
    )

    assert verifier.parse(body, headers).event_id == msg_id


@settings(deadline=None, max_examples=30)
@given(body=json_bodies)
def test_our_headers_verify_with_standardwebhooks(body: bytes) -> None:
    """Our webhook-* headers pass standardwebhooks.Webhook.verify."""
    headers = StandardWebhooksVerifier(STD_SECRET, clock=real_now()).sign(body)

    assert standardwebhooks.Webhook(STD_SECRET).verify(body, headers) == json.loads(
        body
    )


@pytest.mark.parametrize("svix_names", [False, True], ids=["webhook-*", "svix-*"])
def test_our_headers_verify_with_svix(svix_names: bool) -> None:
    """Our headers, under either naming, pass svix.webhooks.Webhook.verify."""
    body = b'{"type": "user.created"}'
    verifier = StandardWebhooksVerifier(STD_SECRET, clock=real_now())
    headers = verifier.sign(body, svix=svix_names)

    svix.webhooks.Webhook(STD_SECRET).verify(body, headers)
    with pytest.raises(svix.webhooks.WebhookVerificationError):
        svix.webhooks.Webhook(STD_SECRET).verify(body + b" ", headers)


@settings(deadline=None, max_examples=40)
@given(body=st.text(max_size=300).map(str.encode))
def test_slack_sdk_signature_verifies_with_ours(body: bytes) -> None:
    """A signature generated by slack_sdk verifies with SlackVerifier."""
    clock = ManualClock(start=1_700_000_000)
    oracle = slack_sdk.signature.SignatureVerifier(SLACK_SECRET, SlackClock(clock))
    headers = {
        "X-Slack-Request-Timestamp": "1700000000",
        "X-Slack-Signature": str(
            oracle.generate_signature(timestamp="1700000000", body=body)
        ),
    }

    SlackVerifier(SLACK_SECRET, clock=clock).verify(body, headers)


@settings(deadline=None, max_examples=40)
@given(body=st.text(max_size=300).map(str.encode))
def test_our_slack_headers_verify_with_slack_sdk(body: bytes) -> None:
    """Our Slack headers pass SignatureVerifier.is_valid_request."""
    clock = ManualClock(start=1_700_000_000)
    oracle = slack_sdk.signature.SignatureVerifier(SLACK_SECRET, SlackClock(clock))

    headers = SlackVerifier(SLACK_SECRET, clock=clock).sign(body)

    assert oracle.is_valid_request(body, headers)
    assert not oracle.is_valid_request(body + b"x", headers)


@settings(deadline=None, max_examples=40)
@given(params=form_params)
def test_twilio_sdk_signature_verifies_with_ours(params: dict[str, str]) -> None:
    """A signature computed by twilio's RequestValidator verifies with ours."""
    url = "https://example.com/sms?tenant=7"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    body = "&".join(
        f"{_quote(name)}={_quote(value)}" for name, value in params.items()
    ).encode()

    TwilioVerifier(TWILIO_TOKEN).verify(
        body, {"X-Twilio-Signature": signature}, url=url
    )


@settings(deadline=None, max_examples=40)
@given(params=form_params)
def test_our_twilio_signature_verifies_with_the_sdk(params: dict[str, str]) -> None:
    """Our X-Twilio-Signature passes RequestValidator.validate."""
    url = "https://example.com:443/voice"
    headers = TwilioVerifier(TWILIO_TOKEN).sign(b"", url=url, params=params)

    assert RequestValidator(TWILIO_TOKEN).validate(
        url, params, headers["X-Twilio-Signature"]
    )


def test_twilio_json_body_both_directions() -> None:
    """The bodySHA256 variant agrees with the SDK both ways."""
    body = b'{"property": "value", "boolean": true}'
    url = TwilioVerifier.body_sha256_url("https://example.com/hook?x=1", body)
    ours = TwilioVerifier(TWILIO_TOKEN)
    sdk = RequestValidator(TWILIO_TOKEN)

    assert sdk.validate(
        url, body.decode(), ours.sign(body, url=url)["X-Twilio-Signature"]
    )
    ours.verify(body, {"X-Twilio-Signature": sdk.compute_signature(url, {})}, url=url)
    with pytest.raises(WebhookSignatureError):
        ours.verify(
            body + b" ", {"X-Twilio-Signature": sdk.compute_signature(url, {})}, url=url
        )


def _quote(text: str) -> str:
    """Form-encode one value the way a browser or Twilio would."""
    from urllib.parse import quote_plus

    return quote_plus(text)
