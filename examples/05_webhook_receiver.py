"""A webhook receiver on ``http.server`` for GitHub, Stripe and Standard Webhooks.

One endpoint per provider verifies the exact bytes it received with that
provider's scheme, then hands the event on. The senders sign with the same
verifiers' ``sign()``, as GitHub, Stripe and a Standard Webhooks (Svix) sender
would. One ``MemoryReplayGuard`` remembers delivery ids across providers.
Besides three good deliveries the story sends a redelivery (answered 200 and
ignored, so the sender stops retrying), a body altered in transit (401), a
stale timestamp (ignored as a replay) and a request without its signature
header (400).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from integration_automation_patterns.webhook_handler import (
    GitHubVerifier,
    MemoryReplayGuard,
    StandardWebhooksVerifier,
    StripeVerifier,
    WebhookEvent,
    WebhookFormatError,
    WebhookReplayError,
    WebhookSignatureError,
)

STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-demo-key").decode()
SENDERS: dict[str, Any] = {
    "/github": GitHubVerifier("gh-secret"),
    "/stripe": StripeVerifier("whsec_stripe_demo"),
    "/standard": StandardWebhooksVerifier(STANDARD_SECRET),
}
ANSWERS = {
    WebhookReplayError: (200, "ignored"),  # seen before or stale: never retry it
    WebhookSignatureError: (401, "bad signature"),
    WebhookFormatError: (400, "malformed"),
}


class Hooks(ThreadingHTTPServer):
    """The receiving service: one verifier per endpoint, one shared replay guard."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Receiver)
        guard = MemoryReplayGuard(ttl_seconds=3600)
        self.verifiers: dict[str, Any] = {
            "/github": GitHubVerifier("gh-secret", replay_guard=guard),
            "/stripe": StripeVerifier("whsec_stripe_demo", replay_guard=guard),
            "/standard": StandardWebhooksVerifier(STANDARD_SECRET, replay_guard=guard),
        }
        self.accepted: list[WebhookEvent] = []


class Receiver(BaseHTTPRequestHandler):
    server: Hooks

    def do_POST(self) -> None:
        verifier = self.server.verifiers.get(self.path)
        if verifier is None:
            self._answer(404, "no such endpoint")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            event = verifier.parse(body, self.headers)
        except (WebhookReplayError, WebhookSignatureError, WebhookFormatError) as exc:
            status, word = ANSWERS[type(exc)]
            self._answer(status, f"{word}: {exc}")
            return
        self.server.accepted.append(event)
        self._answer(200, f"accepted {event.event_type} {event.event_id}")

    def _answer(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- stdlib name
        """Keep the example's output to its own trace."""


def post(base: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(base + path, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            status, text = exc.code, exc.read().decode()
    print(f"  POST {path:<10} -> {status} {text[:70]}")
    return int(status)


def deliveries() -> list[tuple[str, str, bytes, dict[str, str]]]:
    push = json.dumps({"ref": "refs/heads/main", "commits": 3}).encode()
    paid = json.dumps({"id": "evt_1", "type": "invoice.paid"}).encode()
    order = json.dumps({"type": "order.created", "order": "o-9"}).encode()
    github = SENDERS["/github"].sign(push, delivery_id="gh-1", event="push")
    stripe = SENDERS["/stripe"].sign(paid)
    standard = SENDERS["/standard"].sign(order, msg_id="msg_1")
    stale = SENDERS["/standard"].sign(
        order, msg_id="msg_2", timestamp=int(time.time()) - 3600
    )
    return [
        ("github push", "/github", push, github),
        ("stripe invoice.paid", "/stripe", paid, stripe),
        ("standard order.created", "/standard", order, standard),
        ("github redelivery", "/github", push, github),
        ("stripe altered body", "/stripe", paid.replace(b"evt_1", b"evt_2"), stripe),
        ("standard stale", "/standard", order, stale),
        ("github unsigned", "/github", push, {"X-GitHub-Delivery": "gh-2"}),
    ]


def main() -> dict[str, Any]:
    server = Hooks()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        statuses = {
            label: post(base, path, body, {"Content-Type": "application/json", **hdrs})
            for label, path, body, hdrs in deliveries()
        }
    finally:
        server.shutdown()
        server.server_close()
    return {
        "statuses": statuses,
        "accepted": [(e.event_type, e.event_id) for e in server.accepted],
    }


if __name__ == "__main__":
    print(main())
