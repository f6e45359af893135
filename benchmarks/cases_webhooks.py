"""Webhook verification of a 2 KB body: GitHub, Stripe and Standard Webhooks.

The physical floor is one ``hmac.digest`` of the signed bytes plus one
``hmac.compare_digest``, with the signed bytes and the expected digest
prepared outside the timer: no header parsing, no decoding.
"""

from __future__ import annotations

import base64
import hmac
import json
import time

from benchmarks._peers import optional
from benchmarks.harness import Case, Contender, Target
from integration_automation_patterns.webhook_handler import (
    GitHubVerifier,
    StandardWebhooksVerifier,
    StripeVerifier,
)

SECRET = "bench-webhook-secret"
STRIPE_SECRET = "whsec_bench_stripe_secret"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"bench-standard-webhooks-key").decode()


def body_of(size: int = 2048) -> bytes:
    """Return a JSON event body of exactly ``size`` bytes."""
    event = {"id": "evt_1", "type": "invoice.paid", "data": {"note": ""}}
    filler = size - len(json.dumps(event, separators=(",", ":")))
    event["data"] = {"note": "x" * filler}
    body = json.dumps(event, separators=(",", ":")).encode()
    assert len(body) == size
    return body


def cases(scale: float = 1.0) -> list[Case]:
    """Return one case per scheme: ours, the SDK where there is one, the floor."""
    body = body_of()
    return [_github(body), _stripe(body), _standard(body)]


def _floor(key: bytes, signed: bytes) -> Contender:
    expected = hmac.digest(key, signed, "sha256")

    def floor() -> bool:
        return hmac.compare_digest(hmac.digest(key, signed, "sha256"), expected)

    return floor


def _github(body: bytes) -> Case:
    verifier = GitHubVerifier(SECRET)
    headers = verifier.sign(body)
    contenders: dict[str, Contender] = {
        "floor (hmac.digest + compare)": _floor(SECRET.encode(), body),
        "ours": lambda: verifier.verify(body, headers),
    }
    return Case(
        "webhook verify 2 KB, GitHub",
        contenders,
        targets=[Target("floor (hmac.digest + compare)", 1.2)],
        number=2_000,
        note="`X-Hub-Signature-256` over the body; no SDK verifies GitHub's scheme.",
    )


def _stripe(body: bytes) -> Case:
    verifier = StripeVerifier(STRIPE_SECRET)
    now = int(time.time())
    headers = verifier.sign(body, timestamp=now)
    signed = b"%d.%b" % (now, body)
    contenders: dict[str, Contender] = {
        "floor (hmac.digest + compare)": _floor(STRIPE_SECRET.encode(), signed),
        "ours": lambda: verifier.verify(body, headers),
    }
    stripe = optional("stripe")
    if stripe is not None:
        header = headers["Stripe-Signature"]
        check = stripe.WebhookSignature.verify_header
        contenders["stripe SDK"] = lambda: check(body, header, STRIPE_SECRET, 300)
    return Case(
        "webhook verify 2 KB, Stripe",
        contenders,
        targets=_targets(contenders, "stripe SDK"),
        number=2_000,
        note=(
            "`Stripe-Signature: t=..,v1=..` over `<t>.<body>`, with the 300 s"
            " window; the SDK is `stripe.WebhookSignature.verify_header`."
        ),
    )


def _standard(body: bytes) -> Case:
    verifier = StandardWebhooksVerifier(STANDARD_SECRET)
    now = int(time.time())
    headers = verifier.sign(body, msg_id="msg_bench", timestamp=now)
    signed = b"msg_bench.%d.%b" % (now, body)
    key = base64.b64decode(STANDARD_SECRET.removeprefix("whsec_"))
    contenders: dict[str, Contender] = {
        "floor (hmac.digest + compare)": _floor(key, signed),
        "ours": lambda: verifier.verify(body, headers),
    }
    standardwebhooks = optional("standardwebhooks")
    if standardwebhooks is not None:
        sdk = standardwebhooks.Webhook(STANDARD_SECRET)
        contenders["standardwebhooks SDK"] = lambda: sdk.verify(
            body, headers, json_parse=False
        )
    return Case(
        "webhook verify 2 KB, Standard Webhooks",
        contenders,
        targets=_targets(contenders, "standardwebhooks SDK"),
        number=2_000,
        note=(
            "`webhook-id`/`webhook-timestamp`/`webhook-signature` over"
            " `<id>.<t>.<body>`, base64 `v1,` signature; the SDK is"
            " `standardwebhooks.Webhook.verify(..., json_parse=False)`."
        ),
    )


def _targets(contenders: dict[str, Contender], sdk: str) -> list[Target]:
    targets = [Target("floor (hmac.digest + compare)", 1.2)]
    if sdk in contenders:
        targets.append(Target(sdk, 1.0))
    return targets
