"""The library's hooks wired to OpenTelemetry: spans for sagas and relay batches.

The library never imports OpenTelemetry; ``adapters/otel_hooks.py`` uses the
hooks each pattern offers. A saga listener opens a span per saga and a child
span per step, with a span event for each retry inside a step; no saga store
is needed. The relay's ``on_batch`` report carries the batch's start and
finish times, so each batch becomes a span of its real length, and counts
dead letters. The breaker's ``add_listener`` counts transitions, retry's
``on_retry`` counts retries and ``on_give_up`` counts calls given up on.
Order 1's payment fails twice, trips the breaker and makes the payment call
give up; the saga retries the step after the breaker's cool-down and the
probe succeeds. Order 2's card is declined (tried twice by the step's policy)
and its reservation compensated; the broker refuses order 2's event until
the relay dead-letters it. A ``ManualClock`` keeps it instant. Run it from the
repository root: ``python examples/11_observability_opentelemetry.py``.
"""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

from adapters.otel_hooks import SagaTracer, Telemetry
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integration_automation_patterns import (
    CircuitBreaker,
    CircuitOpenError,
    ManualClock,
    OutboxRecord,
    OutboxRelay,
    RetryPolicy,
    SagaOrchestrator,
    SqlOutboxStore,
    retry,
)


def main(
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> dict[str, Any]:
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    if tracer_provider is None:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = meter_provider or MeterProvider(metric_readers=[reader])
    clock = ManualClock(start=1_700_000_000.0)
    telemetry = Telemetry(
        tracer_provider.get_tracer("orders"),
        meter_provider.get_meter("orders"),
        clock=clock,
    )
    with tempfile.TemporaryDirectory(prefix="iap-otel-") as folder:
        result = run(Path(folder), telemetry, clock)
    for span in exporter.get_finished_spans():
        print(f"  span {span.name} {dict(span.attributes or {})}")
    data = reader.get_metrics_data()
    for scope in data.resource_metrics[0].scope_metrics if data else []:
        for metric in scope.metrics:
            for point in metric.data.data_points:
                if isinstance(point, NumberDataPoint):
                    print(f"  {metric.name} {point.attributes} = {point.value}")
    return result


def run(folder: Path, telemetry: Telemetry, clock: ManualClock) -> dict[str, Any]:
    breaker = CircuitBreaker(
        "payments", 2, 2.0, expected_exceptions=(ConnectionError,), clock=clock
    )
    breaker.add_listener(telemetry.on_transition)
    outages = [ConnectionError("503")] * 2

    def charge_card(amount: int) -> str:
        if outages:
            raise outages.pop(0)
        if amount > 500:
            raise ValueError("card declined")
        return "ch_1"

    @retry(
        RetryPolicy(max_attempts=2, backoff_seconds=1.0),
        on=(ConnectionError, CircuitOpenError),
        clock=clock,
        on_retry=telemetry.on_retry,
        on_give_up=telemetry.on_give_up,
    )
    def charge(ctx: Any) -> str:
        return breaker.execute(charge_card, ctx.data["amount"])

    saga = SagaOrchestrator(
        "order", clock=clock, listeners=[SagaTracer(telemetry.tracer)]
    )
    saga.add_step("reserve", lambda: "r-1", lambda: None)
    saga.add_step(
        "charge", charge, retry=RetryPolicy(max_attempts=2, backoff_seconds=2.0)
    )
    outcomes = [saga.execute({"amount": a}).status for a in (120, 900)]

    store = SqlOutboxStore("sqlite", clock=clock)
    with closing(sqlite3.connect(folder / "orders.db")) as conn, conn:
        store.create_schema(conn)
        store.enqueue(conn, OutboxRecord.create("o-1", "OrderConfirmed", {}))
        store.enqueue(conn, OutboxRecord.create("o-2", "OrderCancelled", {}))

    def publish(record: OutboxRecord) -> None:
        clock.advance(0.01)  # the broker's round trip
        if record.event_type == "OrderCancelled":
            raise ValueError("schema registry refused the event")

    relay = OutboxRelay(
        store,
        lambda: sqlite3.connect(folder / "orders.db"),
        publish,
        retry_policy=RetryPolicy(max_attempts=2, backoff_seconds=1.0),
        clock=clock,
        on_batch=telemetry.on_batch,
    )
    reports = [relay.run_once()]
    clock.advance(1.0)
    reports.append(relay.run_once())
    relay.close()
    return {"sagas": outcomes, "batches": [(r.published, r.dead) for r in reports]}


if __name__ == "__main__":
    print(main())
