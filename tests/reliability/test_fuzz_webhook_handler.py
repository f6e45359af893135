"""Bad requests to every webhook verifier raise WebhookError and nothing else."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.webhook_handler import (
    GitHubVerifier,
    HmacVerifier,
    HubSpotVerifier,
    PagerDutyVerifier,
    SalesforceVerifier,
    ShopifyVerifier,
    SlackVerifier,
    SquareVerifier,
    StandardWebhooksVerifier,
    StripeVerifier,
    TwilioVerifier,
    WebhookError,
    WebhookHandler,
    ZendeskVerifier,
)
from tests.reliability.fuzzing import fuzz_target
from tests.reliability.sizes import auxiliary, examples

pytestmark = pytest.mark.reliability

# Each parametrized test runs once per scheme, so each run gets a share of the
# verification total (12 schemes, two tests: 24 000 at full size).
PER_SCHEME = examples(1_000, 60)
VERIFICATION = "webhook_handler verification"

CLOCK = ManualClock(start=1_700_000_000.0)
STD_SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"fuzz").digest()).decode()
URL = "https://example.com/hook?x=1"
BODY = b'{"id": "evt_1", "type": "t", "event": {"id": "e"}}'

VERIFIERS: dict[str, tuple[Any, dict[str, Any]]] = {
    "github": (GitHubVerifier("s", clock=CLOCK), {}),
    "stripe": (StripeVerifier("whsec_s", clock=CLOCK), {}),
    "standard": (StandardWebhooksVerifier(STD_SECRET, clock=CLOCK), {}),
    "slack": (SlackVerifier("s", clock=CLOCK), {}),
    "shopify": (ShopifyVerifier("s", clock=CLOCK), {}),
    "hubspot": (HubSpotVerifier("s", clock=CLOCK), {"url": URL}),
    "twilio": (TwilioVerifier("s", clock=CLOCK), {"url": URL}),
    "square": (SquareVerifier("s", clock=CLOCK), {"url": URL}),
    "pagerduty": (PagerDutyVerifier("s", clock=CLOCK), {}),
    "zendesk": (ZendeskVerifier("s", clock=CLOCK), {}),
    "salesforce": (SalesforceVerifier("s", clock=CLOCK), {}),
    "hmac": (
        HmacVerifier(
            "s",
            header="X-Sig",
            template="{timestamp}:{id}:{url}:{body}",
            timestamp_header="X-Ts",
            id_header="X-Id",
            clock=CLOCK,
        ),
        {"url": URL},
    ),
}
HEADER_NAMES = sorted(
    {
        name
        for verifier, context in VERIFIERS.values()
        for name in verifier.sign(BODY, **context)
    }
    | {"X-GitHub-Delivery", "svix-id", "svix-timestamp", "svix-signature", "X-Other"}
)

header_text = st.text(max_size=80) | st.sampled_from(
    ["", "t=1700000000,v1=00", "v1,AAAA", "v0=zz", "sha256=", "v1=,v1=", "%%", " "]
)
header_values = header_text | st.binary(max_size=40) | st.integers() | st.none()
header_maps = st.dictionaries(
    st.sampled_from(HEADER_NAMES) | st.text(max_size=10), header_values, max_size=6
)
bodies = st.binary(max_size=200) | st.just(BODY)


def only_webhook_errors(call: Callable[[], object]) -> None:
    """Run ``call``; any failure must be a WebhookError."""
    with contextlib.suppress(WebhookError):
        call()


@pytest.mark.parametrize("name", sorted(VERIFIERS))
@fuzz_target(
    "webhook_handler",
    "parse, arbitrary bodies and headers",
    counts_toward=VERIFICATION,
)
@given(body=bodies, headers=header_maps)
@settings(max_examples=PER_SCHEME, deadline=None, database=None)
def test_arbitrary_requests(name: str, body: bytes, headers: dict[Any, Any]) -> None:
    """Arbitrary bodies and header maps only raise WebhookError from parse."""
    verifier, context = VERIFIERS[name]

    only_webhook_errors(lambda: verifier.parse(body, headers, **context))


@pytest.mark.parametrize("name", sorted(VERIFIERS))
@fuzz_target(
    "webhook_handler",
    "parse, signed request with one header replaced",
    counts_toward=VERIFICATION,
)
@given(data=st.data())
@settings(max_examples=PER_SCHEME, deadline=None, database=None)
def test_valid_requests_with_one_header_replaced(
    name: str, data: st.DataObject
) -> None:
    """A signed request with one header set to junk only raises WebhookError."""
    verifier, context = VERIFIERS[name]
    headers: dict[str, Any] = dict(verifier.sign(BODY, **context))
    target = data.draw(st.sampled_from(sorted(headers)))
    headers[target] = data.draw(header_values)

    only_webhook_errors(lambda: verifier.parse(BODY, headers, **context))


@pytest.mark.parametrize("name", ["hubspot", "twilio", "square", "hmac"])
@fuzz_target(
    "webhook_handler", "verify, arbitrary URL and method", counts_toward=VERIFICATION
)
@given(url=st.text(max_size=60) | st.none(), method=st.text(max_size=8))
@settings(max_examples=auxiliary(1_000, 60), deadline=None, database=None)
def test_arbitrary_context(name: str, url: str | None, method: str) -> None:
    """Junk URLs and methods only raise WebhookError."""
    verifier, _ = VERIFIERS[name]
    headers = {"X-Twilio-Signature": "AAAA", "X-HubSpot-Signature-v3": "AAAA"}
    context: dict[str, Any] = {"url": url}
    if name in ("hubspot", "hmac"):
        context["method"] = method

    only_webhook_errors(lambda: verifier.verify(BODY, headers, **context))


@fuzz_target(
    "webhook_handler", "verify, non-mapping headers", counts_toward=VERIFICATION
)
@given(headers=st.none() | st.integers() | st.lists(st.text(), max_size=3))
@settings(max_examples=examples(50, 20), deadline=None, database=None)
def test_non_mapping_headers(headers: Any) -> None:
    """Header containers that are not mappings raise WebhookError."""
    for verifier, context in VERIFIERS.values():
        with contextlib.suppress(WebhookError):
            verifier.verify(BODY, headers, **context)


@fuzz_target(
    "webhook_handler",
    "WebhookHandler.parse (0.2.0), arbitrary input",
    counts_toward="webhook_handler 0.2.0 WebhookHandler",
)
@given(body=bodies, header=st.text(max_size=120) | st.binary(max_size=20))
@settings(max_examples=auxiliary(5_000), deadline=None, database=None)
def test_legacy_handler_on_arbitrary_input(body: bytes, header: Any) -> None:
    """The 0.2.0 handler only raises WebhookError on junk bodies and headers."""
    handler = WebhookHandler("s", clock=CLOCK)

    only_webhook_errors(lambda: handler.parse(body, header))
