"""Every published provider test vector verifies, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.webhook_handler import (
    GitHubVerifier,
    HubSpotVerifier,
    PagerDutyVerifier,
    SlackVerifier,
    SquareVerifier,
    StandardWebhooksVerifier,
    StripeVerifier,
    TwilioVerifier,
    WebhookFormatError,
    WebhookSignatureError,
    ZendeskVerifier,
)

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"


def load(name: str) -> dict[str, Any]:
    """Read one provider's fixture file."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    return data


def vectors(name: str) -> list[dict[str, Any]]:
    """Return the published vectors of one provider."""
    found: list[dict[str, Any]] = load(name)["vectors"]
    return found


def test_every_fixture_names_its_source() -> None:
    """Each copied fixture keeps the source it was published in."""
    files = sorted(FIXTURES.glob("*.json"))
    assert len(files) == 9
    for path in files:
        assert load(path.stem)["source"], path.name


def test_github_vector_verifies() -> None:
    """GitHub's documented secret, payload and header verify."""
    (vector,) = vectors("github")
    verifier = GitHubVerifier(vector["secret"])

    verifier.verify(
        vector["payload"].encode(), {"X-Hub-Signature-256": vector["header_value"]}
    )
    assert verifier.sign(vector["payload"].encode()) == {
        "X-Hub-Signature-256": vector["header_value"]
    }


def test_github_vector_rejects_another_payload() -> None:
    """GitHub's documented header does not sign a different payload."""
    (vector,) = vectors("github")

    with pytest.raises(WebhookSignatureError):
        GitHubVerifier(vector["secret"]).verify(
            b"Hello, World?", {"X-Hub-Signature-256": vector["header_value"]}
        )


@pytest.mark.parametrize(
    "vector", vectors("hubspot"), ids=lambda v: f"{v['version']}-{v['origin']}"
)
def test_hubspot_vectors_verify(vector: dict[str, Any]) -> None:
    """HubSpot's v1, v2 and v3 vectors verify and sign identically."""
    millis = int(vector.get("timestamp", "0"))
    verifier = HubSpotVerifier(
        vector["client_secret"], clock=ManualClock(start=millis / 1000)
    )
    context = {"method": vector.get("method", "POST"), "url": vector.get("uri")}
    if vector["version"] == "v3":
        headers = {
            "X-HubSpot-Signature-v3": vector["expected"],
            "X-HubSpot-Request-Timestamp": vector["timestamp"],
        }
    else:
        headers = {
            "X-HubSpot-Signature": vector["expected"],
            "X-HubSpot-Signature-Version": vector["version"],
        }
    body = vector["body"].encode()

    verifier.verify(body, headers, **context)
    assert verifier.sign(body, version=vector["version"], **context) == headers


def test_slack_vector_verifies() -> None:
    """Slack's documented slash-command request verifies at its timestamp."""
    (vector,) = vectors("slack")
    verifier = SlackVerifier(
        vector["signing_secret"], clock=ManualClock(start=int(vector["timestamp"]))
    )
    headers = {
        "X-Slack-Signature": vector["expected_signature"],
        "X-Slack-Request-Timestamp": vector["timestamp"],
    }

    event = verifier.parse(vector["body"].encode(), headers)

    assert isinstance(event.payload, dict)
    assert event.payload["command"] == "/webhook-collect"
    assert event.event_type == "/webhook-collect"


@pytest.mark.parametrize("vector", vectors("square"), ids=["sdk-live", "sdk-simple"])
def test_square_vectors_verify(vector: dict[str, Any]) -> None:
    """Square's SDK vectors verify over notification URL plus body."""
    verifier = SquareVerifier(
        vector["signature_key"], notification_url=vector["notification_url"]
    )
    headers = {"x-square-hmacsha256-signature": vector["expected"]}

    verifier.verify(vector["body"].encode(), headers)


@pytest.mark.parametrize("negative", load("square")["negative"], ids=["url", "key"])
def test_square_negative_vectors_fail(negative: dict[str, Any]) -> None:
    """Square's negative cases (URL one character short, wrong key) fail."""
    vector = {**vectors("square")[0], **negative}
    verifier = SquareVerifier(vector["signature_key"])

    with pytest.raises(WebhookSignatureError):
        verifier.verify(
            vector["body"].encode(),
            {"x-square-hmacsha256-signature": vectors("square")[0]["expected"]},
            url=vector["notification_url"],
        )


def test_standard_webhooks_vector_verifies() -> None:
    """The Standard Webhooks library's published vector verifies."""
    (vector,) = vectors("standard_webhooks")
    verifier = StandardWebhooksVerifier(
        vector["secret"], clock=ManualClock(start=vector["timestamp"])
    )
    headers = {
        "webhook-id": vector["msg_id"],
        "webhook-timestamp": str(vector["timestamp"]),
        "webhook-signature": vector["expected_signature"],
    }

    verifier.verify(vector["payload"].encode(), headers)
    assert (
        verifier.sign(
            vector["payload"].encode(),
            msg_id=vector["msg_id"],
            timestamp=vector["timestamp"],
        )
        == headers
    )


def test_standard_webhooks_negative_vector_fails() -> None:
    """The published signature differing in its last character fails."""
    (vector,) = vectors("standard_webhooks")
    (negative, _) = load("standard_webhooks")["negative_vectors"]
    verifier = StandardWebhooksVerifier(
        vector["secret"], clock=ManualClock(start=vector["timestamp"])
    )
    headers = {
        "webhook-id": vector["msg_id"],
        "webhook-timestamp": str(vector["timestamp"]),
        "webhook-signature": negative["signature"],
    }

    with pytest.raises(WebhookSignatureError):
        verifier.verify(vector["payload"].encode(), headers)


def test_standard_webhooks_ignores_other_versions_among_garbage() -> None:
    """A valid v1 among foreign v1 and v2 entries passes; v2 is never used."""
    (vector,) = vectors("standard_webhooks")
    (_, mixed) = load("standard_webhooks")["negative_vectors"]
    verifier = StandardWebhooksVerifier(
        vector["secret"], clock=ManualClock(start=vector["timestamp"])
    )
    headers = {
        "webhook-id": vector["msg_id"],
        "webhook-timestamp": str(vector["timestamp"]),
    }
    body = vector["payload"].encode()

    garbage = " ".join(mixed["header_entries"])
    verifier.verify(
        body,
        {**headers, "webhook-signature": f"{garbage} {vector['expected_signature']}"},
    )
    with pytest.raises(WebhookSignatureError):
        verifier.verify(body, {**headers, "webhook-signature": garbage})


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr",
    ],
)
def test_standard_webhooks_accepts_unpadded_secrets(secret: str) -> None:
    """Secrets needing no, one or two padding characters all load and round-trip."""
    verifier = StandardWebhooksVerifier(secret, clock=ManualClock(start=1_614_265_330))
    body = b'{"test": 2432232314}'

    verifier.verify(body, verifier.sign(body))


def test_stripe_documented_header_shape_parses() -> None:
    """Stripe's documented header (with a v0 entry) fails on signature, not format."""
    header = load("stripe")["doc_example_header"]
    verifier = StripeVerifier("whsec_unknown", clock=ManualClock(start=1_492_774_577))

    with pytest.raises(WebhookSignatureError):
        verifier.verify(b"{}", {"Stripe-Signature": header})


def test_pagerduty_documented_header_shape_parses() -> None:
    """PagerDuty's two-entry header parses; an unknown secret fails on signature."""
    header = load("pagerduty")["doc_example_header"]

    with pytest.raises(WebhookSignatureError):
        PagerDutyVerifier("unknown").verify(b"{}", {"X-PagerDuty-Signature": header})


def twilio_body(vector: dict[str, Any]) -> bytes:
    """Rebuild the POST body a Twilio vector's parameters came in."""
    if "body" in vector:
        return str(vector["body"]).encode()
    if "params_multi" in vector:
        return urlencode([tuple(pair) for pair in vector["params_multi"]]).encode()
    return urlencode(vector["params"]).encode()


@pytest.mark.parametrize("vector", vectors("twilio"), ids=lambda v: v["expected"])
def test_twilio_vectors_verify(vector: dict[str, Any]) -> None:
    """Twilio's SDK and documentation vectors verify, ports and JSON included."""
    verifier = TwilioVerifier(vector["auth_token"])
    headers = {"X-Twilio-Signature": vector["expected"]}

    verifier.verify(twilio_body(vector), headers, url=vector["url"])


@pytest.mark.parametrize(
    "vector", [v for v in vectors("twilio") if ":443" in v["url"] or ":80" in v["url"]]
)
def test_twilio_port_vectors_verify_without_the_port(vector: dict[str, Any]) -> None:
    """A signature made over the URL with a default port verifies without it."""
    verifier = TwilioVerifier(vector["auth_token"])
    url = vector["url"].replace(":443", "").replace(":80", "")

    verifier.verify(
        twilio_body(vector), {"X-Twilio-Signature": vector["expected"]}, url=url
    )


def test_twilio_json_vector_rejects_a_changed_body() -> None:
    """The bodySHA256 in the URL binds the JSON body."""
    (vector,) = [v for v in vectors("twilio") if "body" in v]

    with pytest.raises(WebhookSignatureError, match="bodySHA256"):
        TwilioVerifier(vector["auth_token"]).verify(
            b'{"property": "other"}',
            {"X-Twilio-Signature": vector["expected"]},
            url=vector["url"],
        )


def test_zendesk_static_test_secret_is_a_literal_key() -> None:
    """Zendesk's test secret is used as its UTF-8 text, not base64-decoded."""
    secret = load("zendesk")["static_test_secret"]
    signer = ZendeskVerifier(secret, clock=ManualClock(start=1_616_648_967))
    literal = ZendeskVerifier(secret.encode(), clock=ManualClock(start=1_616_648_967))
    body = b'{"say": "hello"}'

    headers = signer.sign(body)

    assert headers["X-Zendesk-Webhook-Signature-Timestamp"] == "2021-03-25T05:09:27Z"
    literal.verify(body, headers)


def test_malformed_fixture_values_raise_format_errors() -> None:
    """A Slack header without its v0= prefix is a format error, not a mismatch."""
    (vector,) = vectors("slack")
    verifier = SlackVerifier(
        vector["signing_secret"], clock=ManualClock(start=int(vector["timestamp"]))
    )

    with pytest.raises(WebhookFormatError, match="X-Slack-Signature"):
        verifier.verify(
            vector["body"].encode(),
            {
                "X-Slack-Signature": vector["expected_signature"][3:],
                "X-Slack-Request-Timestamp": vector["timestamp"],
            },
        )
