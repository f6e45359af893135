"""The OpenTelemetry example turns the library's hooks into spans and counters."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from integration_automation_patterns import (
    ManualClock,
    SagaOrchestrator,
    SqliteSagaStore,
)
from integration_automation_patterns.saga import SagaStatus

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STEM = "11_observability_opentelemetry"


def load(stem: str) -> ModuleType:
    """Import ``examples/<stem>.py`` as a module (its name starts with a digit)."""
    spec = importlib.util.spec_from_file_location(
        f"example_{stem}", EXAMPLES / f"{stem}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example module, with ``examples/`` importable for its adapters."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return load(STEM)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """An in-memory span exporter, cleared after the test."""
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def tracer_provider(spans: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A tracer provider exporting every ended span to ``spans``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider
    provider.shutdown()


@pytest.fixture
def metrics() -> InMemoryMetricReader:
    """An in-memory metric reader."""
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(metrics: InMemoryMetricReader) -> Iterator[MeterProvider]:
    """A meter provider read by ``metrics``."""
    provider = MeterProvider(metric_readers=[metrics])
    yield provider
    provider.shutdown()


def counters(reader: InMemoryMetricReader) -> dict[str, dict[tuple[Any, ...], Any]]:
    """Return each counter's values keyed by their sorted attribute items."""
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, dict[tuple[Any, ...], Any]] = {}
    for scope in data.resource_metrics[0].scope_metrics:
        for metric in scope.metrics:
            for point in metric.data.data_points:
                assert isinstance(point, NumberDataPoint)
                key = tuple(sorted((point.attributes or {}).items()))
                found.setdefault(metric.name, {})[key] = point.value
    return found


def children(
    parent: ReadableSpan, finished: tuple[ReadableSpan, ...]
) -> list[tuple[str, object]]:
    """Return the names and phases of the spans whose parent is ``parent``."""
    assert parent.context is not None
    return [
        (s.name, (s.attributes or {})["saga.phase"])
        for s in finished
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def test_example_and_its_adapter_have_a_header_and_stay_short() -> None:
    """Example 11 and its adapter module open with what they show and stay short."""
    for path in (EXAMPLES / f"{STEM}.py", EXAMPLES / "adapters" / "otel_hooks.py"):
        source = path.read_text(encoding="utf-8")

        assert len(source.split('"""')[1].split()) > 60, path.name
        assert len(source.splitlines()) <= 170, path.name


def test_story_outcome_is_one_completed_and_one_compensated_saga(
    example: ModuleType,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
) -> None:
    """The instrumented story still behaves: sagas end right, one event dies."""
    result = example.main(tracer_provider, meter_provider)

    assert result["sagas"] == [SagaStatus.COMPLETED, SagaStatus.COMPENSATED]
    assert result["batches"] == [(1, 0), (0, 1)]


def test_each_saga_step_gets_a_span_under_its_saga_span(
    example: ModuleType,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: InMemorySpanExporter,
) -> None:
    """Steps and compensations are child spans; a failed step's span is an error."""
    example.main(tracer_provider, meter_provider)
    finished = spans.get_finished_spans()
    sagas = [s for s in finished if s.name == "saga order"]

    assert all((s.attributes or {})["saga.resumed"] is False for s in sagas)
    assert [(s.attributes or {})["saga.status"] for s in sagas] == [
        "completed",
        "compensated",
    ]
    assert children(sagas[0], finished) == [
        ("saga step reserve", "action"),
        ("saga step charge", "action"),
    ]
    assert children(sagas[1], finished) == [
        ("saga step reserve", "action"),
        ("saga step charge", "action"),
        ("saga step reserve", "compensation"),
    ]
    errors = [s for s in finished if s.status.status_code is StatusCode.ERROR]
    assert [s.name for s in errors] == ["saga step charge"]
    assert "card declined" in (errors[0].status.description or "")


def test_retries_inside_a_step_are_events_on_its_span(
    example: ModuleType,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: InMemorySpanExporter,
) -> None:
    """Each saga step retry is a span event at the time it happened."""
    example.main(tracer_provider, meter_provider)
    charges = [s for s in spans.get_finished_spans() if s.name == "saga step charge"]

    assert [(s.attributes or {})["saga.attempts"] for s in charges] == [2, 2]
    for span in charges:
        (event,) = span.events
        assert event.name == "retry"
        assert dict(event.attributes or {})["delay"] == 2.0
        assert span.start_time is not None
        assert span.end_time is not None
        assert span.start_time <= event.timestamp < span.end_time
    assert "ConnectionError" in str(dict(charges[0].events[0].attributes or {}))
    assert "card declined" in str(dict(charges[1].events[0].attributes or {}))


def test_each_relay_batch_gets_a_span_with_its_figures(
    example: ModuleType,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: InMemorySpanExporter,
) -> None:
    """Two relay batches give two spans as long as the batch, with its counts."""
    example.main(tracer_provider, meter_provider)
    found = [s for s in spans.get_finished_spans() if s.name == "outbox relay batch"]
    batches = [dict(s.attributes or {}) for s in found]

    assert [
        (b["outbox.claimed"], b["outbox.published"], b["outbox.dead"]) for b in batches
    ] == [(2, 1, 0), (1, 0, 1)]
    assert ["outbox.dead_ids" in b for b in batches] == [False, True]
    durations = [(s.end_time or 0) - (s.start_time or 0) for s in found]
    # Float seconds near 1.7e9 carry sub-microsecond rounding.
    assert durations == pytest.approx([20_000_000, 10_000_000], abs=1_000)


def test_counters_for_transitions_retries_and_dead_letters(
    example: ModuleType,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metrics: InMemoryMetricReader,
) -> None:
    """The breaker trips and closes once, retry waits once and gives up once."""
    example.main(tracer_provider, meter_provider)
    found = counters(metrics)

    edges = {
        (dict(key)["from"], dict(key)["to"]): value
        for key, value in found["circuit_breaker.transitions"].items()
    }
    assert edges == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }
    assert found["retry.retries"] == {(("function", "charge"),): 1}
    assert found["retry.give_ups"] == {
        (("function", "charge"), ("reason", "attempts exhausted")): 1
    }
    assert found["outbox.dead_letters"] == {(("outbox", "outbox"),): 1}


def test_a_resumed_saga_is_traced_under_a_resume_span(
    example: ModuleType,
    tracer_provider: TracerProvider,
    spans: InMemorySpanExporter,
    tmp_path: Path,
) -> None:
    """After a crash mid-step, resume opens a span and the rerun step ends in it."""
    clock = ManualClock(start=1_700_000_000.0)
    store = SqliteSagaStore(tmp_path / "sagas.db")
    tracer = example.SagaTracer(tracer_provider.get_tracer("test"))
    crashes = [KeyboardInterrupt()]

    def ship() -> str:
        if crashes:
            raise crashes.pop()
        return "shipped"

    def build() -> SagaOrchestrator:
        saga = SagaOrchestrator(
            "order", store=store, clock=clock, lease_seconds=5, listeners=[tracer]
        )
        return saga.add_step("reserve", lambda: "r").add_step("ship", ship)

    with pytest.raises(KeyboardInterrupt):
        build().execute(saga_id="order-9")
    clock.advance(6)  # the crashed worker's lease runs out
    result = build().resume("order-9")
    store.close()

    assert result.status is SagaStatus.COMPLETED
    finished = spans.get_finished_spans()
    resumed = [s for s in finished if (s.attributes or {}).get("saga.resumed")]
    assert [s.name for s in resumed] == ["saga order"]
    assert (resumed[0].attributes or {})["saga.status"] == "completed"
    assert children(resumed[0], finished) == [("saga step ship", "action")]
