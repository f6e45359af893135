"""Reliable delivery to a flaky CRM API: envelope + retry + circuit breaker.

A local ``http.server`` plays the CRM. It answers 503 to its first three
requests, then recovers; later it stores one contact but the connection drops
before its answer. The client wraps each contact in an ``EventEnvelope`` whose
id travels as the ``Idempotency-Key`` header, retries failures with
``call_with_retry``, and guards the CRM with a ``CircuitBreaker``: after three
failures in a row the breaker refuses calls at once, the retry waits for the
breaker's ``retry_after`` hint, and a probe closes the breaker again. The CRM
de-duplicates on the key, so the retried, lost answer creates no second
contact. A ``ManualClock`` drives every wait, so the story runs in a blink.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from http.client import RemoteDisconnected
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.circuit_breaker import (
    CircuitBreaker,
    CircuitOpenError,
)
from integration_automation_patterns.event_envelope import EventEnvelope
from integration_automation_patterns.retry import RetryPolicy, call_with_retry


class FlakyCrm(ThreadingHTTPServer):
    """A CRM that fails its first requests and de-duplicates on Idempotency-Key."""

    def __init__(self, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), CrmHandler)
        self.failures_left = failures
        self.drop_answer_once: set[str] = set()
        self.contacts: dict[str, dict[str, Any]] = {}
        self.requests = 0


class CrmHandler(BaseHTTPRequestHandler):
    server: FlakyCrm

    def do_POST(self) -> None:
        crm = self.server
        crm.requests += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if crm.failures_left > 0:
            crm.failures_left -= 1
            self._answer(503, {"error": "maintenance"})
            return
        key = self.headers["Idempotency-Key"]
        created = key not in crm.contacts
        crm.contacts.setdefault(key, body["payload"])
        if key in crm.drop_answer_once:  # stored, but the answer never arrives
            crm.drop_answer_once.discard(key)
            self.close_connection = True
            return
        self._answer(201 if created else 200, {"id": key, "created": created})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- stdlib name
        """Keep the example's output to its own trace."""


class CrmUnavailableError(Exception):
    """The CRM answered 5xx or the connection failed."""


def post_contact(url: str, envelope: EventEnvelope) -> dict[str, Any]:
    """Send one envelope; raise CrmUnavailableError on a 5xx or a lost answer."""
    envelope.mark_dispatched()
    request = urllib.request.Request(
        url,
        data=json.dumps(envelope.to_dict()).encode(),
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": envelope.idempotency_key,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except (urllib.error.HTTPError, RemoteDisconnected, ConnectionError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()
        envelope.mark_failed()
        raise CrmUnavailableError(f"attempt {envelope.attempt_count}: {exc}") from exc
    envelope.mark_acknowledged()
    envelope.mark_processed()
    return answer


def main() -> dict[str, Any]:
    clock = ManualClock(start=1_700_000_000.0)
    policy = RetryPolicy(max_attempts=6, backoff_seconds=1.0, max_backoff_seconds=60)
    breaker = CircuitBreaker(
        "crm", failure_threshold=3, recovery_timeout=30.0, clock=clock
    )
    transitions: list[str] = []
    breaker.add_listener(
        lambda t: transitions.append(f"{t.old_state.value}->{t.new_state.value}")
    )
    crm = FlakyCrm(failures=3)
    threading.Thread(target=crm.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{crm.server_address[1]}/contacts"

    envelopes = [
        EventEnvelope.new(
            "crm.contact.upsert", "shop", {"email": e}, retry_policy=policy
        )
        for e in ("ada@example.com", "alan@example.com")
    ]
    crm.drop_answer_once.add(envelopes[1].event_id)
    refused = 0

    def deliver(envelope: EventEnvelope) -> dict[str, Any]:
        nonlocal refused
        try:
            return breaker.execute(post_contact, url, envelope)
        except CircuitOpenError as exc:
            refused += 1
            print(f"  breaker refused the call; retry after {exc.retry_after:.0f}s")
            raise

    try:
        for envelope in envelopes:
            answer = call_with_retry(
                deliver,
                envelope,
                policy=policy,
                clock=clock,
                on=(CrmUnavailableError, CircuitOpenError),
            )
            print(
                f"  {envelope.payload['email']}: {envelope.status.value} after"
                f" {envelope.attempt_count} HTTP attempt(s), CRM said {answer}"
            )
    finally:
        crm.shutdown()
        crm.server_close()

    result = {
        "statuses": [e.status for e in envelopes],
        "http_requests": crm.requests,
        "contacts": len(crm.contacts),
        "refused_by_breaker": refused,
        "transitions": transitions,
        "waits": list(clock.sleeps),
    }
    print(f"  breaker transitions {transitions}, waits {clock.sleeps}")
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    main()
