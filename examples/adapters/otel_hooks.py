"""OpenTelemetry adapters for the library's hooks: spans and counters.

``SagaTracer`` is a saga listener: it opens a span per saga run (or per
resume) and a child span per step action or compensation, records each retry
inside a step as a span event, and ends the spans when the step or the saga
ends, at the times the orchestrator's clock gave. It needs no saga store.
``Telemetry`` holds the counters fed by the circuit breaker's
``add_listener``, retry's ``on_retry`` and ``on_give_up`` and the outbox
relay's ``on_batch`` hook, and writes one span per relay batch from the
batch report's start and finish times.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from integration_automation_patterns import (
    SYSTEM_CLOCK,
    BatchReport,
    CircuitTransition,
    Clock,
    RetryDetails,
)
from integration_automation_patterns.saga import SagaEvent, SagaEventKind

__all__ = ["SagaTracer", "Telemetry"]

K = SagaEventKind
_OPEN = {K.SAGA_STARTED, K.SAGA_RESUMED, K.STEP_STARTED, K.COMPENSATION_STARTED}
_RETRY = {K.STEP_RETRYING, K.COMPENSATION_RETRYING}
_PHASE = {K.STEP_STARTED: "action", K.COMPENSATION_STARTED: "compensation"}


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


class SagaTracer:
    """A saga listener that turns lifecycle events into saga and step spans."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        self.spans: dict[tuple[str, ...], trace.Span] = {}

    def __call__(self, event: SagaEvent) -> None:
        """Open, annotate or end the span the event belongs to."""
        if event.kind in _OPEN:
            self._open(event)
            return
        # A tracer must never break the saga: an unknown span is skipped.
        span = self.spans.get(self._key(event), trace.INVALID_SPAN)
        if event.kind in _RETRY:
            attributes: dict[str, str | int | float] = {
                "attempt": event.attempt,
                "delay": event.delay or 0.0,
                "error": repr(event.error),
            }
            span.add_event("retry", attributes, timestamp=_ns(event.time))
            return
        self._end(event)

    def _key(self, event: SagaEvent) -> tuple[str, ...]:
        if event.kind.value.startswith("saga_"):
            return (event.saga_id,)
        phase = "action" if event.kind.value.startswith("step_") else "compensation"
        return (event.saga_id, event.step or "", phase)

    def _open(self, event: SagaEvent) -> None:
        start = _ns(event.time)
        if event.step is None:
            span = self.tracer.start_span(f"saga {event.saga_name}", start_time=start)
            span.set_attribute("saga.id", event.saga_id)
            span.set_attribute("saga.resumed", event.kind is K.SAGA_RESUMED)
            self.spans[(event.saga_id,)] = span
            return
        parent = trace.set_span_in_context(self.spans[(event.saga_id,)])
        span = self.tracer.start_span(
            f"saga step {event.step}", parent, start_time=start
        )
        span.set_attribute("saga.phase", _PHASE[event.kind])
        self.spans[self._key(event)] = span

    def _end(self, event: SagaEvent) -> None:
        span = self.spans.pop(self._key(event), trace.INVALID_SPAN)
        if event.step is not None and event.attempt:
            span.set_attribute("saga.attempts", event.attempt)
        if event.kind.value.startswith("saga_"):
            span.set_attribute("saga.status", event.kind.value.removeprefix("saga_"))
        elif event.error is not None:
            span.set_status(trace.StatusCode.ERROR, str(event.error))
        span.end(end_time=_ns(event.time))


class Telemetry:
    """Counters for the breaker, retry and relay hooks, and relay batch spans."""

    def __init__(
        self,
        tracer: trace.Tracer,
        meter: Any,
        outbox: str = "outbox",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.tracer, self.outbox, self.clock = tracer, outbox, clock
        self.transitions = meter.create_counter("circuit_breaker.transitions")
        self.retries = meter.create_counter("retry.retries")
        self.give_ups = meter.create_counter("retry.give_ups")
        self.dead_letters = meter.create_counter("outbox.dead_letters")

    def on_transition(self, t: CircuitTransition) -> None:
        """Count one breaker state change by breaker and edge."""
        edge = {"breaker": t.name, "from": t.old_state.value, "to": t.new_state.value}
        self.transitions.add(1, edge)

    def on_retry(self, details: RetryDetails) -> None:
        """Count one retry of the named callable."""
        self.retries.add(1, {"function": details.name.rsplit(".", 1)[-1]})

    def on_give_up(self, details: RetryDetails) -> None:
        """Count one call given up on, by callable and reason."""
        function = details.name.rsplit(".", 1)[-1]
        self.give_ups.add(1, {"function": function, "reason": details.give_up_reason})

    def on_batch(self, report: BatchReport) -> None:
        """Write the batch's span from its report's times; count dead letters."""
        # The report's times are monotonic; end the span on the wall clock.
        wall = self.clock.time() - (self.clock.monotonic() - report.finished_at)
        end = _ns(wall)
        start = end - _ns(report.duration)
        span = self.tracer.start_span("outbox relay batch", start_time=start)
        for name in ("claimed", "published", "failed", "dead", "fenced"):
            span.set_attribute(f"outbox.{name}", getattr(report, name))
        if report.dead_ids:
            span.set_attribute("outbox.dead_ids", list(report.dead_ids))
        span.end(end_time=end)
        self.dead_letters.add(report.dead, {"outbox": self.outbox})
