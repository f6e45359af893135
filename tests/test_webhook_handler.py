"""Each verifier accepts what its provider signs and refuses everything else."""

from __future__ import annotations

import base64
import email.message
import hashlib
import hmac
import http.client
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns._types import IntegrationError, ManualClock
from integration_automation_patterns.webhook_handler import (
    DEFAULT_MAX_BODY_BYTES,
    GitHubVerifier,
    HmacVerifier,
    HubSpotVerifier,
    MemoryReplayGuard,
    PagerDutyVerifier,
    SalesforceVerifier,
    ShopifyVerifier,
    SlackVerifier,
    SquareVerifier,
    StandardWebhooksVerifier,
    StripeVerifier,
    TwilioVerifier,
    WebhookError,
    WebhookEvent,
    WebhookFormatError,
    WebhookReplayError,
    WebhookSignatureError,
    ZendeskVerifier,
    _HmacKey,
)

JSON_BODY = json.dumps(
    {
        "id": "evt_1",
        "type": "invoice.paid",
        "event_id": "sq_1",
        "event": {"id": "pd_1", "event_type": "incident.triggered"},
    }
).encode()
FORM_BODY = b"CallSid=CA123&From=%2B14158675309&Body=hello+there"


def std_secret(seed: str) -> str:
    """Return a Standard Webhooks secret derived from ``seed``."""
    raw = hashlib.sha256(seed.encode()).digest()
    return "whsec_" + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Scheme:
    """How to build, call and break one provider's verifier in these tests."""

    name: str
    make: Callable[..., Any]
    header: str
    malformed: str
    timestamped: bool
    body: bytes = JSON_BODY
    context: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, str] = ("old-secret", "new-secret")
    event_id: str | None = None


SCHEMES = [
    Scheme("github", GitHubVerifier, "X-Hub-Signature-256", "sha1=abcd", False),
    Scheme("stripe", StripeVerifier, "Stripe-Signature", "v1=abcd", True),
    Scheme(
        "standard-webhooks",
        StandardWebhooksVerifier,
        "webhook-signature",
        "v1-no-comma",
        True,
        secrets=(std_secret("old"), std_secret("new")),
    ),
    Scheme("slack", SlackVerifier, "X-Slack-Signature", "v1=abcd", True),
    Scheme("shopify", ShopifyVerifier, "X-Shopify-Hmac-Sha256", "not base64!", False),
    Scheme(
        "hubspot",
        HubSpotVerifier,
        "X-HubSpot-Signature-v3",
        "%%%",
        True,
        context={"url": "https://example.com/hooks/hubspot?portal=1", "method": "POST"},
    ),
    Scheme(
        "twilio",
        TwilioVerifier,
        "X-Twilio-Signature",
        "%%%",
        False,
        body=FORM_BODY,
        context={"url": "https://example.com/sms?tenant=7"},
    ),
    Scheme(
        "square",
        SquareVerifier,
        "x-square-hmacsha256-signature",
        "%%%",
        False,
        context={"url": "https://example.com/hooks/square"},
    ),
    Scheme("pagerduty", PagerDutyVerifier, "X-PagerDuty-Signature", "garbage", False),
    Scheme("zendesk", ZendeskVerifier, "X-Zendesk-Webhook-Signature", "%%%", True),
    Scheme("salesforce", SalesforceVerifier, "x-sfmc-ens-signature", "%%%", False),
    Scheme(
        "hmac",
        lambda secret, **kw: HmacVerifier(
            secret,
            header="X-Signature",
            prefix="sha512=",
            algorithm="sha512",
            template="{timestamp}.{method}.{body}",
            timestamp_header="X-Timestamp",
            id_header="X-Delivery",
            **kw,
        ),
        "X-Signature",
        "sha512=zz",
        True,
        context={"method": "POST"},
    ),
]
TIMESTAMPED = [s for s in SCHEMES if s.timestamped]


def ids(scheme: Scheme) -> str:
    """Name a parametrized case after its provider."""
    return scheme.name


def signed(
    scheme: Scheme, clock: ManualClock, secret: str | None = None
) -> tuple[Any, dict[str, str]]:
    """Return a verifier for ``scheme`` and headers it signed for the body."""
    verifier = scheme.make(secret or scheme.secrets[0], clock=clock)
    return verifier, verifier.sign(scheme.body, **scheme.context)


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_signed_request_verifies(scheme: Scheme, clock: ManualClock) -> None:
    """A request signed by ``sign`` verifies and parses."""
    verifier, headers = signed(scheme, clock)

    verifier.verify(scheme.body, headers, **scheme.context)
    event = verifier.parse(scheme.body, headers, **scheme.context)

    assert isinstance(event, WebhookEvent)
    assert event.raw == scheme.body
    assert event.received_at == clock.time()
    assert type(event.received_at) is float


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_every_verifier_takes_one_call_shape(
    scheme: Scheme, clock: ManualClock
) -> None:
    """Context a scheme does not sign is accepted and ignored by every verifier."""
    verifier, headers = signed(scheme, clock)
    context = {"url": "https://example.com/unused", "method": "POST"}
    context.update(scheme.context)

    verifier.verify(scheme.body, headers, **context, tenant="t-7")
    event = verifier.parse(scheme.body, headers, **context, tenant="t-7")

    assert event.raw == scheme.body


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_flipped_body_byte_fails(scheme: Scheme, clock: ManualClock) -> None:
    """Changing one byte of the body breaks the signature."""
    verifier, headers = signed(scheme, clock)
    body = bytearray(scheme.body)
    body[1] ^= 0x01

    with pytest.raises(WebhookSignatureError):
        verifier.verify(bytes(body), headers, **scheme.context)


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_wrong_secret_fails(scheme: Scheme, clock: ManualClock) -> None:
    """A request signed with another secret does not verify."""
    _, headers = signed(scheme, clock, scheme.secrets[1])
    verifier = scheme.make(scheme.secrets[0], clock=clock)

    with pytest.raises(WebhookSignatureError):
        verifier.verify(scheme.body, headers, **scheme.context)


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_missing_signature_header_is_a_format_error(
    scheme: Scheme, clock: ManualClock
) -> None:
    """Without its signature header the request is refused, naming the header."""
    verifier, headers = signed(scheme, clock)
    del headers[scheme.header]

    with pytest.raises(WebhookFormatError, match="missing"):
        verifier.verify(scheme.body, headers, **scheme.context)


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_malformed_signature_header_is_a_format_error(
    scheme: Scheme, clock: ManualClock
) -> None:
    """A signature header of the wrong shape is refused as malformed."""
    verifier, headers = signed(scheme, clock)
    headers[scheme.header] = scheme.malformed

    with pytest.raises(WebhookFormatError):
        verifier.verify(scheme.body, headers, **scheme.context)


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_rotated_secret_list_accepts_old_and_new(
    scheme: Scheme, clock: ManualClock
) -> None:
    """With [new, old] configured, requests signed by either secret verify."""
    old, new = scheme.secrets
    rotating = scheme.make([new, old], clock=clock)

    for secret in (old, new):
        _, headers = signed(scheme, clock, secret)
        rotating.verify(scheme.body, headers, **scheme.context)


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=ids)
def test_stale_timestamp_is_a_replay_error(scheme: Scheme, clock: ManualClock) -> None:
    """A correctly signed request older than the window is refused as a replay."""
    verifier, headers = signed(scheme, clock)
    clock.advance(301)

    with pytest.raises(WebhookReplayError, match="old"):
        verifier.verify(scheme.body, headers, **scheme.context)


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=ids)
def test_timestamp_at_the_window_edge_is_accepted(
    scheme: Scheme, clock: ManualClock
) -> None:
    """A request exactly at the tolerance is still accepted."""
    verifier, headers = signed(scheme, clock)
    clock.advance(300)

    verifier.verify(scheme.body, headers, **scheme.context)


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=ids)
def test_future_timestamp_is_a_replay_error(scheme: Scheme, clock: ManualClock) -> None:
    """A request stamped too far ahead of the receiver's clock is refused."""
    _, headers = signed(scheme, ManualClock(start=clock.time() + 301))
    verifier = scheme.make(scheme.secrets[0], clock=clock)

    with pytest.raises(WebhookReplayError, match="future"):
        verifier.verify(scheme.body, headers, **scheme.context)


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=ids)
def test_disabled_tolerance_accepts_old_requests(
    scheme: Scheme, clock: ManualClock
) -> None:
    """tolerance_seconds=None turns the age check off."""
    _, headers = signed(scheme, clock)
    verifier = scheme.make(
        scheme.secrets[0],
        clock=ManualClock(start=clock.time() + 86_400),
        tolerance_seconds=None,
    )

    verifier.verify(scheme.body, headers, **scheme.context)


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_headers_are_found_in_any_case(scheme: Scheme, clock: ManualClock) -> None:
    """Lower-case, upper-case and Message headers are all found."""
    verifier, headers = signed(scheme, clock)
    message = email.message.Message()
    for name, value in headers.items():
        message[name] = value

    for variant in (
        {k.lower(): v for k, v in headers.items()},
        {k.upper(): v for k, v in headers.items()},
        message,
    ):
        verifier.verify(scheme.body, variant, **scheme.context)


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_oversized_body_is_refused_before_hashing(
    scheme: Scheme, clock: ManualClock
) -> None:
    """A body over max_body_bytes is a format error even when correctly signed."""
    verifier = scheme.make(scheme.secrets[0], clock=clock, max_body_bytes=10)
    headers = verifier.sign(scheme.body, **scheme.context)

    with pytest.raises(WebhookFormatError, match="limit"):
        verifier.verify(scheme.body, headers, **scheme.context)


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_second_parse_of_a_delivery_is_a_replay(
    scheme: Scheme, clock: ManualClock
) -> None:
    """With a replay guard, a delivery parsed twice is refused the second time."""
    guard = MemoryReplayGuard(ttl_seconds=600, clock=clock)
    verifier = scheme.make(scheme.secrets[0], clock=clock, replay_guard=guard)
    headers = verifier.sign(scheme.body, **scheme.context)

    verifier.parse(scheme.body, headers, **scheme.context)
    with pytest.raises(WebhookReplayError, match="already received"):
        verifier.parse(scheme.body, headers, **scheme.context)


@pytest.mark.parametrize("scheme", SCHEMES, ids=ids)
def test_errors_never_reveal_the_secret_or_signature(
    scheme: Scheme, clock: ManualClock
) -> None:
    """Messages and repr name headers, never the secret or a computed signature."""
    verifier, headers = signed(scheme, clock)
    _, wrong = signed(scheme, clock, scheme.secrets[1])

    with pytest.raises(WebhookSignatureError) as caught:
        verifier.verify(scheme.body, wrong, **scheme.context)

    text = f"{caught.value} {verifier!r}"
    assert scheme.secrets[0] not in text
    for value in headers.values():
        assert len(value) < 12 or value not in text
    assert scheme.header.lower() in str(caught.value).lower() or "bodySHA256" in text


def test_error_tree_keeps_value_error() -> None:
    """Every webhook error is an IntegrationError and a ValueError."""
    for error in (WebhookSignatureError, WebhookReplayError, WebhookFormatError):
        assert issubclass(error, WebhookError)
        assert issubclass(error, IntegrationError)
        assert issubclass(error, ValueError)


def test_github_parse_uses_delivery_and_event_headers(clock: ManualClock) -> None:
    """GitHub's delivery id and event name come from its headers."""
    verifier = GitHubVerifier("s", clock=clock)
    headers = verifier.sign(JSON_BODY, delivery_id="d-1", event="push")

    event = verifier.parse(JSON_BODY, headers)

    assert (event.event_id, event.event_type) == ("d-1", "push")


def test_stripe_parse_uses_the_event_id(clock: ManualClock) -> None:
    """Stripe's delivery id is the event id in the body."""
    verifier = StripeVerifier("whsec_x", clock=clock)

    event = verifier.parse(JSON_BODY, verifier.sign(JSON_BODY))

    assert (event.event_id, event.event_type) == ("evt_1", "invoice.paid")


def test_stripe_ignores_v0_and_tries_every_v1(clock: ManualClock) -> None:
    """A v0 entry is ignored; any one of several v1 entries may match."""
    verifier = StripeVerifier("whsec_x", clock=clock)
    good = verifier.sign(JSON_BODY)["Stripe-Signature"]
    t, v1 = good.split(",")
    header = f"{t},v1={'0' * 64},{v1},v0={'1' * 64}"

    verifier.verify(JSON_BODY, {"Stripe-Signature": header})
    with pytest.raises(WebhookSignatureError):
        verifier.verify(JSON_BODY, {"Stripe-Signature": f"{t},v0={v1[3:]},v1=00"})


def test_stripe_signs_with_the_whole_whsec_string(clock: ManualClock) -> None:
    """Stripe's HMAC key is the whsec_ string itself, not its decoded base64."""
    verifier = StripeVerifier("whsec_abc", clock=clock)
    t = int(clock.time())

    expected = hmac.new(b"whsec_abc", f"{t}.".encode() + JSON_BODY, "sha256")

    assert verifier.sign(JSON_BODY)["Stripe-Signature"] == (
        f"t={t},v1={expected.hexdigest()}"
    )


def test_stripe_without_timestamp_is_malformed(clock: ManualClock) -> None:
    """A Stripe header without t= or with a non-numeric one is malformed."""
    verifier = StripeVerifier("whsec_x", clock=clock)

    for header in ("v1=00", "t=abc,v1=00", "t=1,v0=00"):
        with pytest.raises(WebhookFormatError, match="Stripe-Signature"):
            verifier.verify(JSON_BODY, {"Stripe-Signature": header})


def test_hex_signatures_in_upper_case_still_verify(clock: ManualClock) -> None:
    """GitHub and Stripe accept an upper-case hex signature like a lower-case one."""
    github = GitHubVerifier("s", clock=clock)
    stripe = StripeVerifier("whsec_x", clock=clock)
    github_header = github.sign(JSON_BODY)["X-Hub-Signature-256"]
    t, v1 = stripe.sign(JSON_BODY)["Stripe-Signature"].split(",")

    github.verify(
        JSON_BODY, {"X-Hub-Signature-256": "sha256=" + github_header[7:].upper()}
    )
    stripe.verify(JSON_BODY, {"Stripe-Signature": f"{t},v1={v1[3:].upper()}"})


@pytest.mark.parametrize("signature", ["zz" * 32, "é" * 64, "00"])
def test_hex_signature_errors_name_the_header(
    signature: str, clock: ManualClock
) -> None:
    """A non-hex signature is malformed and a short one simply does not match."""
    github = GitHubVerifier("s", clock=clock)
    stripe = StripeVerifier("whsec_x", clock=clock)
    t = int(clock.time())
    error = WebhookSignatureError if signature == "00" else WebhookFormatError

    with pytest.raises(error, match="X-Hub-Signature-256"):
        github.verify(JSON_BODY, {"X-Hub-Signature-256": f"sha256={signature}"})
    with pytest.raises(error, match="Stripe-Signature"):
        stripe.verify(JSON_BODY, {"Stripe-Signature": f"t={t},v1={signature}"})


def test_stripe_timestamp_in_non_ascii_digits_is_malformed(clock: ManualClock) -> None:
    """A Stripe timestamp written in non-ASCII decimal digits is malformed."""
    verifier = StripeVerifier("whsec_x", clock=clock)
    t = "".join(chr(0x0660 + int(d)) for d in str(int(clock.time())))
    digest = hmac.new(b"whsec_x", f"{t}.".encode() + JSON_BODY, "sha256").hexdigest()

    with pytest.raises(WebhookFormatError, match="Stripe-Signature"):
        verifier.verify(JSON_BODY, {"Stripe-Signature": f"t={t},v1={digest}"})


@pytest.mark.parametrize(
    ("signature", "error"),
    [
        ("v1," + "A" * 43 + "=", WebhookSignatureError),
        ("v1," + "é" * 44, WebhookFormatError),
        ("v1," + "*" * 44, WebhookFormatError),
        ("v2," + "A" * 43 + "=", WebhookFormatError),
        ("v1", WebhookFormatError),
    ],
    ids=["wrong", "non-ascii", "non-base64", "no-v1", "no-comma"],
)
def test_standard_webhooks_single_entry_errors(
    signature: str, error: type[WebhookError], clock: ManualClock
) -> None:
    """One bad signature entry is a mismatch if base64, else malformed."""
    verifier = StandardWebhooksVerifier(std_secret("a"), clock=clock)
    headers = verifier.sign(JSON_BODY, msg_id="msg_1")

    with pytest.raises(error, match="webhook-signature"):
        verifier.verify(JSON_BODY, {**headers, "webhook-signature": signature})


def test_standard_webhooks_reads_svix_headers(clock: ManualClock) -> None:
    """Svix's svix-* header names verify and give the delivery id."""
    verifier = StandardWebhooksVerifier(std_secret("a"), clock=clock)
    headers = verifier.sign(JSON_BODY, msg_id="msg_1", svix=True)

    assert set(headers) == {"svix-id", "svix-timestamp", "svix-signature"}
    assert verifier.parse(JSON_BODY, headers).event_id == "msg_1"


def test_standard_webhooks_raw_bytes_secret(clock: ManualClock) -> None:
    """A bytes secret is the raw key, equal to the whsec_ form of its base64."""
    raw = hashlib.sha256(b"k").digest()
    as_bytes = StandardWebhooksVerifier(raw, clock=clock)
    as_text = StandardWebhooksVerifier(
        "whsec_" + base64.b64encode(raw).decode(), clock=clock
    )

    as_text.verify(JSON_BODY, as_bytes.sign(JSON_BODY))


def test_standard_webhooks_rejects_a_non_base64_secret() -> None:
    """A whsec_ secret that is not base64 is refused at construction."""
    with pytest.raises(WebhookError, match="base64"):
        StandardWebhooksVerifier("whsec_not*base64")


def test_standard_webhooks_signs_one_entry_per_secret(clock: ManualClock) -> None:
    """While rotating, the signature header lists one v1 entry per secret."""
    both = StandardWebhooksVerifier([std_secret("a"), std_secret("b")], clock=clock)
    only_b = StandardWebhooksVerifier(std_secret("b"), clock=clock)

    headers = both.sign(JSON_BODY)

    assert headers["webhook-signature"].count("v1,") == 2
    only_b.verify(JSON_BODY, headers)


def test_pagerduty_parse_uses_the_event_id(clock: ManualClock) -> None:
    """PagerDuty's delivery id and type come from the body's event object."""
    verifier = PagerDutyVerifier(["a", "b"], clock=clock)

    headers = verifier.sign(JSON_BODY)
    event = verifier.parse(JSON_BODY, headers)

    assert headers["X-PagerDuty-Signature"].count("v1=") == 2
    assert (event.event_id, event.event_type) == ("pd_1", "incident.triggered")


def test_shopify_parse_uses_webhook_id_and_topic(clock: ManualClock) -> None:
    """Shopify's delivery id and topic come from its headers."""
    verifier = ShopifyVerifier("s", clock=clock)
    headers = {
        **verifier.sign(JSON_BODY),
        "X-Shopify-Webhook-Id": "w-1",
        "X-Shopify-Topic": "orders/create",
    }

    event = verifier.parse(JSON_BODY, headers)

    assert (event.event_id, event.event_type) == ("w-1", "orders/create")


def test_square_parse_uses_event_id_and_needs_a_url(clock: ManualClock) -> None:
    """Square's delivery id is event_id; without a URL verification cannot run."""
    verifier = SquareVerifier("k", clock=clock)
    url = "https://example.com/square"
    headers = verifier.sign(JSON_BODY, url=url)

    assert verifier.parse(JSON_BODY, headers, url=url).event_id == "sq_1"
    with pytest.raises(WebhookFormatError, match="url="):
        verifier.verify(JSON_BODY, headers)


def test_zendesk_parse_uses_the_invocation_id(clock: ManualClock) -> None:
    """Zendesk's delivery id is its invocation id header; empty bodies parse to None."""
    verifier = ZendeskVerifier("s", clock=clock)
    headers = {**verifier.sign(b""), "X-Zendesk-Webhook-Invocation-Id": "inv-1"}

    event = verifier.parse(b"", headers)

    assert (event.event_id, event.payload) == ("inv-1", None)


def test_zendesk_rejects_a_non_iso_timestamp(clock: ManualClock) -> None:
    """A Zendesk timestamp that is not ISO-8601 is malformed."""
    verifier = ZendeskVerifier("s", clock=clock)
    headers = verifier.sign(JSON_BODY)
    headers["X-Zendesk-Webhook-Signature-Timestamp"] = "yesterday"

    with pytest.raises(WebhookFormatError, match="Timestamp"):
        verifier.verify(JSON_BODY, headers)


def test_salesforce_batch_id_is_a_body_digest(clock: ManualClock) -> None:
    """Salesforce batches get a deterministic id from the body and the first type."""
    verifier = SalesforceVerifier("k", clock=clock)
    body = b'[{"eventCategoryType": "TransactionalSendEvents.EmailSent"}]'

    event = verifier.parse(body, verifier.sign(body))

    assert event.event_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert event.event_type == "TransactionalSendEvents.EmailSent"


def test_hubspot_v3_decodes_the_documented_uri_escapes(clock: ManualClock) -> None:
    """HubSpot v3 signs the URI with %3A-style escapes decoded."""
    verifier = HubSpotVerifier("s", clock=clock)
    plain = "https://example.com/hook?next=a:b"
    escaped = "https://example.com/hook?next=a%3Ab"

    headers = verifier.sign(JSON_BODY, url=plain)

    verifier.verify(JSON_BODY, headers, url=escaped)


def test_hubspot_versions_limit_what_is_accepted(clock: ManualClock) -> None:
    """A verifier limited to v3 refuses a v1-only request."""
    verifier = HubSpotVerifier("s", versions=("v3",), clock=clock)
    headers = HubSpotVerifier("s", clock=clock).sign(JSON_BODY, version="v1")

    with pytest.raises(WebhookFormatError, match="Version"):
        verifier.verify(JSON_BODY, headers)


def test_hubspot_batch_type_comes_from_the_first_event(clock: ManualClock) -> None:
    """A HubSpot batch is typed by its first event's subscription type."""
    verifier = HubSpotVerifier("s", clock=clock)
    body = b'[{"eventId": 1, "subscriptionType": "contact.creation"}]'
    url = "https://example.com/h"

    event = verifier.parse(body, verifier.sign(body, url=url), url=url)

    assert event.event_type == "contact.creation"


def test_twilio_json_body_and_idempotency_token(clock: ManualClock) -> None:
    """A JSON body signs through bodySHA256 and the token is the delivery id."""
    verifier = TwilioVerifier("token", clock=clock)
    url = TwilioVerifier.body_sha256_url("https://example.com/hook?a=1", JSON_BODY)
    headers = {**verifier.sign(JSON_BODY, url=url), "I-Twilio-Idempotency-Token": "t1"}

    event = verifier.parse(JSON_BODY, headers, url=url)

    assert event.event_id == "t1"
    assert isinstance(event.payload, dict)


def test_twilio_explicit_params_for_get_requests(clock: ManualClock) -> None:
    """Parameters passed explicitly are signed instead of the body."""
    verifier = TwilioVerifier("token", clock=clock)
    params = {"Digits": ["1", "2"], "CallSid": "CA1"}
    url = "https://example.com/voice"

    headers = verifier.sign(b"", url=url, params=params)

    verifier.verify(b"", headers, url=url, params=params)
    with pytest.raises(WebhookSignatureError):
        verifier.verify(b"", headers, url=url, params={"CallSid": "CA1"})


def test_twilio_sha256_settings_header_switches_digest(clock: ManualClock) -> None:
    """X-Twilio-Webhooks-Signature-Settings: algorithm=HMAC_SHA256 uses SHA-256."""
    verifier = TwilioVerifier("token", clock=clock)
    url = "https://example.com/sms"
    content = (url + "Bodyhi").encode()
    signature = base64.b64encode(hmac.digest(b"token", content, "sha256")).decode()
    settings_header = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    headers = {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": settings_header,
    }

    verifier.verify(b"Body=hi", headers, url=url)
    with pytest.raises(WebhookFormatError, match="algorithm"):
        verifier.verify(
            b"Body=hi",
            {**headers, "X-Twilio-Webhooks-Signature-Settings": "algorithm=MD5"},
            url=url,
        )


def test_twilio_without_url_is_a_format_error(clock: ManualClock) -> None:
    """Twilio signs the URL, so verifying without one is refused clearly."""
    verifier = TwilioVerifier("token", clock=clock)

    with pytest.raises(WebhookFormatError, match="url="):
        verifier.verify(FORM_BODY, {"X-Twilio-Signature": "x"})


def test_slack_event_id_from_events_api_body(clock: ManualClock) -> None:
    """Slack Events API deliveries de-duplicate on their event_id."""
    verifier = SlackVerifier("s", clock=clock)

    event = verifier.parse(JSON_BODY, verifier.sign(JSON_BODY))

    assert (event.event_id, event.event_type) == ("sq_1", "invoice.paid")


def test_hmac_verifier_servicenow_recipe(clock: ManualClock) -> None:
    """A base64 key, base64 signature over "<timestamp>.<body>" verifies."""
    key = base64.b64decode("c2VydmljZW5vdy1zaGFyZWQta2V5")
    verifier = HmacVerifier(
        key,
        header="X-SN-Signature",
        encoding="base64",
        template="{timestamp}.{body}",
        timestamp_header="X-SN-Timestamp",
        clock=clock,
    )
    stamp = str(int(clock.time()))
    signature = hmac.digest(key, f"{stamp}.".encode() + JSON_BODY, "sha256")
    headers = {
        "X-SN-Signature": base64.b64encode(signature).decode(),
        "X-SN-Timestamp": stamp,
    }

    assert verifier.sign(JSON_BODY) == headers
    assert verifier.parse(JSON_BODY, headers).event_id == "evt_1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"template": "{nonce}{body}"}, "not one of"),
        ({"template": "{timestamp}"}, "exactly once"),
        ({"template": "{body}{body}"}, "exactly once"),
        ({"template": "{timestamp}{body}"}, "timestamp_header"),
        ({"template": "{id}{body}"}, "id_header"),
        ({"algorithm": "nope"}, "algorithm"),
        ({"encoding": "base32"}, "encoding"),
    ],
)
def test_hmac_verifier_rejects_bad_configuration(
    options: dict[str, Any], message: str
) -> None:
    """Impossible templates, digests and encodings fail at construction."""
    with pytest.raises(WebhookError, match=message):
        HmacVerifier("s", header="X-Sig", **options)


def test_hmac_verifier_needs_context_its_template_names(clock: ManualClock) -> None:
    """A template with {url} refuses a call that gives no url."""
    verifier = HmacVerifier("s", header="X-Sig", template="{url}{body}", clock=clock)
    headers = verifier.sign(JSON_BODY, url="https://e.com")

    verifier.verify(JSON_BODY, headers, url="https://e.com")
    with pytest.raises(WebhookFormatError, match="url="):
        verifier.verify(JSON_BODY, headers)


@pytest.mark.parametrize(
    "secret", ["", b"", [], 42], ids=["empty-str", "empty-bytes", "none", "int"]
)
def test_unusable_secrets_are_refused(secret: Any) -> None:
    """Empty or non-text secrets are refused when the verifier is built."""
    with pytest.raises(WebhookError):
        GitHubVerifier(secret)


def test_text_body_is_refused(clock: ManualClock) -> None:
    """A decoded str body is refused: only the raw bytes carry the signature."""
    verifier = GitHubVerifier("s", clock=clock)
    headers = verifier.sign(JSON_BODY)

    with pytest.raises(WebhookFormatError, match="raw request bytes"):
        verifier.verify(JSON_BODY.decode(), headers)  # type: ignore[arg-type]


def test_bytearray_and_memoryview_bodies_are_accepted(clock: ManualClock) -> None:
    """Bodies handed over as bytearray or memoryview verify like bytes."""
    verifier = StripeVerifier("whsec_x", clock=clock)
    headers = verifier.sign(JSON_BODY)

    verifier.verify(bytearray(JSON_BODY), headers)  # type: ignore[arg-type]
    verifier.verify(memoryview(JSON_BODY), headers)  # type: ignore[arg-type]


def test_bytes_header_names_and_values_are_read(clock: ManualClock) -> None:
    """ASGI-style bytes header names and values are found case-insensitively."""
    verifier = GitHubVerifier("s", clock=clock)
    headers = verifier.sign(JSON_BODY)
    raw = {k.lower().encode(): v.encode() for k, v in headers.items()}

    verifier.verify(JSON_BODY, raw)  # type: ignore[arg-type]


def test_non_json_body_is_a_format_error(clock: ManualClock) -> None:
    """parse refuses a signed body that is not JSON, keeping the cause."""
    verifier = GitHubVerifier("s", clock=clock)
    body = b"\xff{not json"

    with pytest.raises(WebhookFormatError, match="JSON") as caught:
        verifier.parse(body, verifier.sign(body))

    assert isinstance(caught.value.__cause__, ValueError)


def test_parse_logs_the_accepted_delivery(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An accepted delivery is logged at DEBUG with its event id and provider."""
    verifier = GitHubVerifier("s", clock=clock)
    headers = verifier.sign(JSON_BODY, delivery_id="d-9")

    with caplog.at_level(logging.DEBUG, logger=verifier.__module__):
        verifier.parse(JSON_BODY, headers)

    (record,) = caplog.records
    assert (record.event_id, record.provider) == ("d-9", "github")  # type: ignore[attr-defined]


def test_default_body_limit_is_five_mebibytes() -> None:
    """The default body limit is 5 MiB."""
    assert DEFAULT_MAX_BODY_BYTES == 5 * 1024 * 1024


@settings(deadline=None, max_examples=150)
@given(key=st.binary(min_size=1, max_size=200), head=st.binary(), data=st.binary())
def test_prepared_key_equals_the_standard_hmac(
    key: bytes, head: bytes, data: bytes
) -> None:
    """The prepared-state HMAC equals hmac.digest for every key length."""
    for algorithm in ("sha256", "sha1", "sha512"):
        prepared = _HmacKey(key, algorithm)
        assert prepared.digest(head + data) == hmac.digest(key, head + data, algorithm)
        assert prepared.digest2(head, data) == hmac.digest(key, head + data, algorithm)


def test_common_header_containers_type_check_and_verify(clock: ManualClock) -> None:
    """dict, Mapping and http.client.HTTPMessage satisfy HeaderMapping as typed."""
    verifier = GitHubVerifier("s", clock=clock)
    signed_headers = verifier.sign(JSON_BODY)
    as_dict: dict[str, str] = {k.lower(): v for k, v in signed_headers.items()}
    as_mapping: Mapping[str, str] = MappingProxyType(as_dict)
    as_message = http.client.HTTPMessage()
    for name, value in signed_headers.items():
        as_message[name.upper()] = value

    verifier.verify(JSON_BODY, as_dict)
    verifier.verify(JSON_BODY, as_mapping)
    verifier.verify(JSON_BODY, as_message)


@pytest.mark.parametrize(
    "options",
    [
        {"tolerance_seconds": -1.0},
        {"future_tolerance_seconds": float("nan")},
        {"max_body_bytes": -1},
    ],
    ids=["negative-past", "nan-future", "negative-body"],
)
def test_impossible_limits_are_refused(options: dict[str, Any]) -> None:
    """Negative or NaN windows and body limits fail at construction."""
    with pytest.raises(WebhookError, match="must be >= 0"):
        StripeVerifier("whsec_x", **options)
