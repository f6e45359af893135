"""Bad secrets and timestamps: webhook verifiers raise only WebhookError.

Complements test_fuzz_webhook_handler.py (junk bodies, headers and context)
with the two inputs it leaves fixed: the secret a verifier is built with and
the timestamp a sender signs.
"""

from __future__ import annotations

import contextlib
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
    WebhookFormatError,
    WebhookReplayError,
    WebhookSignatureError,
    ZendeskVerifier,
)
from tests.reliability.fuzzing import fuzz_target
from tests.reliability.sizes import auxiliary

pytestmark = pytest.mark.reliability

CLOCK = ManualClock(start=1_700_000_000.0)
VERIFICATION = "webhook_handler verification"
URL = "https://example.com/hook?x=1"
BODY = b'{"id": "evt_1", "type": "t"}'
LAST_ISO_SECOND = 253_402_300_799
"""9999-12-31T23:59:59Z, the last second an ISO-8601 timestamp header carries."""


def hmac_verifier(secret: Any, clock: ManualClock) -> HmacVerifier:
    """A generic HMAC verifier that signs a timestamp, an id and the URL."""
    return HmacVerifier(
        secret,
        header="X-Sig",
        template="{timestamp}:{id}:{url}:{body}",
        timestamp_header="X-Ts",
        id_header="X-Id",
        clock=clock,
    )


SCHEMES: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "github": (GitHubVerifier, {}),
    "stripe": (StripeVerifier, {}),
    "standard": (StandardWebhooksVerifier, {}),
    "slack": (SlackVerifier, {}),
    "shopify": (ShopifyVerifier, {}),
    "hubspot": (HubSpotVerifier, {"url": URL}),
    "twilio": (TwilioVerifier, {"url": URL}),
    "square": (SquareVerifier, {"url": URL}),
    "pagerduty": (PagerDutyVerifier, {}),
    "zendesk": (ZendeskVerifier, {}),
    "salesforce": (SalesforceVerifier, {}),
    "hmac": (hmac_verifier, {"url": URL}),
}
TIMESTAMPED = {
    "stripe": "timestamp",
    "standard": "timestamp",
    "slack": "timestamp",
    "zendesk": "timestamp",
    "hmac": "timestamp",
    "hubspot": "timestamp_ms",
}

single_secrets = (
    st.text(max_size=40)
    | st.binary(max_size=40)
    | st.sampled_from(["", "whsec_", "whsec_!!", "whsec_AAAA", "=", "v1,"])
)
secrets = single_secrets | st.lists(single_secrets, max_size=3) | st.none()


def build(name: str, secret: Any) -> Any:
    """Build scheme ``name``'s verifier; None when the secret is refused."""
    factory, _ = SCHEMES[name]
    try:
        return factory(secret, clock=CLOCK)
    except WebhookError:
        return None


@fuzz_target(
    "webhook_handler", "every verifier, random secrets", counts_toward=VERIFICATION
)
@given(name=st.sampled_from(sorted(SCHEMES)), secret=secrets, other=single_secrets)
@settings(max_examples=auxiliary(5_000), deadline=None, database=None)
def test_random_secrets_sign_and_verify_or_raise_webhook_errors(
    name: str, secret: Any, other: Any
) -> None:
    """A verifier accepts its own signature and rejects another secret's."""
    verifier = build(name, secret)
    if verifier is None:
        return
    context = SCHEMES[name][1]
    headers = verifier.sign(BODY, **context)

    verifier.verify(BODY, headers, **context)
    stranger = build(name, other)
    if stranger is None or other == secret:
        return
    with contextlib.suppress(WebhookSignatureError):
        stranger.verify(BODY, headers, **context)
        # Two secrets may derive the same key (str and its UTF-8 bytes).
        verifier.verify(BODY, stranger.sign(BODY, **context), **context)


@fuzz_target(
    "webhook_handler",
    "timestamped verifiers, random signed timestamps",
    counts_toward=VERIFICATION,
)
@given(
    name=st.sampled_from(sorted(TIMESTAMPED)),
    offset=st.integers(-1_700_000_000, 250_000_000_000)
    | st.integers()
    | st.integers(-400, 400)
    | st.sampled_from([-301, -300, 300, 301])
    # 1970 and 9999 at their edges, where an ISO-8601 header stops.
    | st.sampled_from([-1, 0, LAST_ISO_SECOND, LAST_ISO_SECOND + 1, 2**63]).map(
        lambda stamp: stamp - 1_700_000_000
    ),
)
@settings(max_examples=auxiliary(5_000), deadline=None, database=None)
def test_random_timestamps_are_accepted_in_window_or_replay_errors(
    name: str, offset: int
) -> None:
    """Signed times verify in the window, fail outside it, or sign refuses them."""
    verifier = build(name, "s3cret" if name != "standard" else "whsec_AAAA")
    context = SCHEMES[name][1]
    now = int(CLOCK.time())
    stamp = now + offset
    if name == "hubspot":
        stamp = stamp * 1000
    if name == "zendesk" and not 0 <= stamp <= LAST_ISO_SECOND:
        with pytest.raises(WebhookFormatError, match=f"timestamp {stamp} "):
            verifier.sign(BODY, timestamp=stamp)
        return
    try:
        headers = verifier.sign(BODY, **context, **{TIMESTAMPED[name]: stamp})
    except WebhookError:
        assert name != "zendesk"
        return
    try:
        verifier.parse(BODY, headers, **context)
    except WebhookReplayError:
        assert abs(offset) > 300
        return
    except WebhookError:
        assert abs(offset) > 300
        return
    assert abs(offset) <= 300


@fuzz_target(
    "webhook_handler",
    "timestamped verifiers, mutated timestamp headers",
    counts_toward=VERIFICATION,
)
@given(
    name=st.sampled_from(sorted(TIMESTAMPED)),
    text=st.text(max_size=24)
    | st.integers().map(str)
    | st.sampled_from(["", " 1700000000", "1e9", "-0", "NaN", "1700000000.5"]),
)
@settings(max_examples=auxiliary(5_000), deadline=None, database=None)
def test_mutated_timestamp_text_raises_only_webhook_errors(
    name: str, text: str
) -> None:
    """Any text in the signed timestamp's place raises at most WebhookError."""
    verifier = build(name, "s3cret" if name != "standard" else "whsec_AAAA")
    context = SCHEMES[name][1]
    headers = dict(verifier.sign(BODY, **context))
    stamp = str(int(CLOCK.time()))
    for key, value in headers.items():
        if stamp in value:
            headers[key] = value.replace(stamp, text)
        elif stamp + "000" in value:
            headers[key] = value.replace(stamp + "000", text)

    with contextlib.suppress(WebhookError):
        verifier.parse(BODY, headers, **context)
