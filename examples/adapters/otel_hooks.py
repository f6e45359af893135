"""OpenTelemetry adapters for the library's hooks: spans and counters.

``TracedSagaStore`` wraps any ``SagaStore``: the orchestrator journals every
step boundary through it, so it opens a span per saga and a child span per
step (action or compensation), ended when the journal records the step done
or failed. ``Telemetry`` holds the counters fed by the circuit breaker's
``add_listener``, retry's ``on_retry`` and the outbox relay's ``on_batch``
hook, and a span per relay batch: opened by the batch's first publish (the
relay has no hook before a batch) and closed by ``on_batch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from integration_automation_patterns import (
    BatchReport,
    CircuitTransition,
    OutboxRecord,
    RetryDetails,
    SagaRecord,
    SagaStatus,
    SagaStore,
    StepEntry,
)

__all__ = ["Telemetry", "TracedSagaStore"]


class TracedSagaStore:
    """A SagaStore that turns journal writes into saga and step spans."""

    def __init__(self, store: SagaStore, tracer: trace.Tracer) -> None:
        self.store, self.tracer = store, tracer
        self.spans: dict[tuple[str, ...], trace.Span] = {}

    def create(self, record: SagaRecord, *, owner: str, lease_until: float) -> None:
        self.store.create(record, owner=owner, lease_until=lease_until)
        span = self.tracer.start_span(f"saga {record.name}")
        span.set_attribute("saga.id", record.saga_id)
        self.spans[(record.saga_id,)] = span

    def record(
        self, saga_id: str, step: str, phase: str, entry: StepEntry, **kwargs: Any
    ) -> None:
        self.store.record(saga_id, step, phase, entry, **kwargs)
        key = (saga_id, step, phase)
        if entry.state == "started":
            saga = self.spans.get((saga_id,))
            parent = trace.set_span_in_context(saga) if saga else None
            span = self.tracer.start_span(f"saga step {step}", parent)
            span.set_attribute("saga.phase", phase)
            self.spans[key] = span
            return
        # A tracer must never break the saga: an unknown span is skipped.
        span = self.spans.pop(key, trace.INVALID_SPAN)
        if entry.state == "failed":
            span.set_status(trace.StatusCode.ERROR, entry.error)
        span.end()

    def finish(self, saga_id: str, status: SagaStatus, *, owner: str) -> None:
        self.store.finish(saga_id, status, owner=owner)
        span = self.spans.pop((saga_id,), trace.INVALID_SPAN)
        span.set_attribute("saga.status", status.value)
        span.end()

    def load(self, saga_id: str) -> SagaRecord | None:
        return self.store.load(saga_id)

    def acquire(self, saga_id: str, **kwargs: Any) -> bool:
        taken = self.store.acquire(saga_id, **kwargs)
        if taken:
            span = self.tracer.start_span("saga resumed")
            span.set_attribute("saga.id", saga_id)
            self.spans[(saga_id,)] = span
        return taken

    def incomplete(self, name: str | None = None) -> list[str]:
        return self.store.incomplete(name)


class Telemetry:
    """Counters for the breaker, retry and relay hooks, and relay batch spans."""

    def __init__(
        self, tracer: trace.Tracer, meter: Any, outbox: str = "outbox"
    ) -> None:
        self.tracer, self.outbox = tracer, outbox
        self.transitions = meter.create_counter("circuit_breaker.transitions")
        self.retries = meter.create_counter("retry.retries")
        self.dead_letters = meter.create_counter("outbox.dead_letters")
        self.batch: trace.Span | None = None

    def on_transition(self, t: CircuitTransition) -> None:
        """Count one breaker state change by breaker and edge."""
        edge = {"breaker": t.name, "from": t.old_state.value, "to": t.new_state.value}
        self.transitions.add(1, edge)

    def on_retry(self, details: RetryDetails) -> None:
        """Count one retry of the named callable."""
        self.retries.add(1, {"function": details.name.rsplit(".", 1)[-1]})

    def publishing(
        self, publish: Callable[[OutboxRecord], object]
    ) -> Callable[[OutboxRecord], None]:
        """Wrap the relay's publish so a batch span starts with its first publish."""

        def traced(record: OutboxRecord) -> None:
            self.batch = self.batch or self.tracer.start_span("outbox relay batch")
            publish(record)

        return traced

    def on_batch(self, report: BatchReport) -> None:
        """End the batch span with the report's figures; count dead letters."""
        span, self.batch = self.batch, None
        span = span or self.tracer.start_span("outbox relay batch")
        for name in ("claimed", "published", "failed", "dead", "fenced"):
            span.set_attribute(f"outbox.{name}", getattr(report, name))
        span.end()
        self.dead_letters.add(report.dead, {"outbox": self.outbox})
