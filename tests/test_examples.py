"""Every embedded example tells its story: each outcome is checked, not just run."""

from __future__ import annotations

import importlib.util
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from integration_automation_patterns.event_envelope import DeliveryStatus
from integration_automation_patterns.saga import SagaStatus
from tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DEMO = EXAMPLES / "end_to_end.py"
NUMBERED = sorted(EXAMPLES.glob("0[1-7]_*.py"))
BROKER_PORTS = {"rabbitmq": 5672, "nats": 4222, "redis": 6379}


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


def run_main(stem: str) -> dict[str, Any]:
    """Run an example's ``main()`` and return its result."""
    result: dict[str, Any] = load(stem).main()
    return result


# ------------------------------------------------------------------ numbered


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_example_has_a_header_a_main_and_stays_short(path: Path) -> None:
    """Each numbered example opens with the story it shows and stays readable."""
    module = load(path.stem)
    lines = path.read_text(encoding="utf-8").splitlines()

    assert module.__doc__
    assert len(module.__doc__.split()) > 40
    assert callable(module.main)
    assert len(lines) <= 170


def test_seven_numbered_examples_exist() -> None:
    """The seven embedded stories are all present, numbered 01 to 07."""
    assert [p.name[:2] for p in NUMBERED] == [f"0{n}" for n in range(1, 8)]


def test_flaky_crm_is_reached_through_retry_and_breaker() -> None:
    """503s trip the breaker, the retry waits out its hint, a probe closes it."""
    result = run_main("01_flaky_crm_delivery")

    assert result["statuses"] == [DeliveryStatus.PROCESSED] * 2
    assert result["transitions"] == [
        "closed->open",
        "open->half_open",
        "half_open->closed",
    ]
    assert result["refused_by_breaker"] == 1
    assert result["waits"][:3] == [1.0, 2.0, 4.0]
    assert result["waits"][3] == pytest.approx(26.0)
    # 3 x 503, the probe, then a stored contact whose answer was lost, resent.
    assert result["http_requests"] == 6
    assert result["contacts"] == 2


def test_outbox_and_inbox_lose_nothing_and_apply_once() -> None:
    """A rollback emits nothing, a crashed relay is fenced, duplicates apply once."""
    result = run_main("02_outbox_inbox_sqlite")

    assert result["events_enqueued"] == 3
    assert result["deliveries"] == 5
    assert (result["applied"], result["duplicates_dropped"]) == (3, 2)
    assert result["effects"] == 3
    assert result["fenced_marks"] == 0
    assert (result["published"], result["pending"]) == (3, 0)
    assert result["tiers"] == {"acc-1": "platinum", "acc-2": "silver"}
    assert result["conflict_refused"] is True


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_saga_survives_a_killed_process_and_resumes_elsewhere() -> None:
    """A SIGKILLed saga is found incomplete, fenced by its lease, then resumed once."""
    result = run_main("03_saga_crash_and_resume")

    assert result["child_exit"] == -signal.SIGKILL
    assert result["status_after_crash"] == "running"
    assert result["journal_after_crash"] == {
        "charge/action": "started",
        "reserve/action": "done",
    }
    assert result["incomplete"] == ["order-7001"]
    assert result["refused_while_leased"] is True
    assert result["status"] is SagaStatus.COMPLETED
    assert result["completed_steps"] == ["reserve", "charge", "ship"]
    assert result["ship_result"] == "shipment for 7001"
    assert (result["charge_calls"], result["charges"]) == (2, 1)


def test_crm_erp_sync_maps_fields_and_settles_the_conflict() -> None:
    """Owned fields flow, the phone goes to the later writer, review is resolved."""
    result = run_main("04_crm_erp_sync")

    assert result["decisions"] == {
        "email": "a_to_b",
        "credit_limit": "b_to_a",
        "phone": "b_last_writer",
        "segment": "review",
    }
    assert result["updates_for_b"] == {"EMAIL_ADDR": "Billing@Acme.example"}
    assert result["updates_for_a"] == {"credit_limit": 7500.0, "phone": "+1 555 0199"}
    assert result["conflicts"] == ["phone"]
    assert result["manual_review"] == ["segment"]
    assert result["erp"]["SEGMENT"] == result["crm"]["segment"] == "enterprise"
    assert "internal_notes" not in result["erp"]
    assert result["second_round_writes"] is False


def test_webhook_receiver_accepts_each_provider_and_refuses_the_rest() -> None:
    """Signed GitHub, Stripe and Standard Webhooks pass; replays and forgeries fail."""
    result = run_main("05_webhook_receiver")

    assert result["statuses"] == {
        "github push": 200,
        "stripe invoice.paid": 200,
        "standard order.created": 200,
        "github redelivery": 200,
        "stripe altered body": 401,
        "standard stale": 200,
        "github unsigned": 400,
    }
    assert result["accepted"] == [
        ("push", "gh-1"),
        ("invoice.paid", "evt_1"),
        ("order.created", "msg_1"),
    ]


def test_debezium_read_model_keeps_toast_and_ignores_tombstones() -> None:
    """The unchanged TOAST column survives; redelivery and tombstone change nothing."""
    module = load("06_debezium_read_model")
    result = module.main()

    assert result["read_model"] == {
        1004: {"id": 1004, "email": "dana@new.example", "biography": module.BIO}
    }
    assert (result["applied"], result["duplicates"], result["tombstones"]) == (4, 1, 1)
    assert result["seen_ids"] == 5


def test_kafka_retry_topics_and_dead_letters_route_each_failure() -> None:
    """Transient failures climb the retry topics; permanent and poison go to the DLQ."""
    result = run_main("07_kafka_dlq_retry_topics")
    contexts = result["dlq_contexts"]

    assert result["processed"] == ["acc-1", "acc-2"]
    assert result["dlq_keys"] == [b"acc-4", b"acc-5", b"acc-3"]
    assert [c.exception_class.rsplit(".", 1)[-1] for c in contexts] == [
        "InvalidPaymentError",
        "EnvelopeDecodeError",
        "TransientError",
    ]
    assert [c.topic for c in contexts] == ["payments", "payments", "payments.retry.3"]
    assert result["dlq_values"][1] == b"\xff not json"
    assert result["waits"] == [1.0, 10.0, 60.0]
    assert result["topic_sizes"] == {
        "payments": 5,
        "payments.retry.1": 2,
        "payments.retry.2": 2,
        "payments.retry.3": 1,
        "payments.dlq": 3,
    }


# ---------------------------------------------------------------------- demo


def run_demo(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the demo as ``make demo`` does; return the process and its duration."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(DEMO), *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=ROOT,
    )
    return done, time.monotonic() - started


def summary(stdout: str) -> dict[str, str]:
    """Return the summary rows the demo printed, by name."""
    block = stdout.split("== summary", 1)[1]
    return dict(re.findall(r"^   (\S.*?)\s{2,}(\S.*)$", block, re.MULTILINE))


def first_number(text: str) -> int:
    """Return the leading integer of a summary value."""
    match = re.match(r"\d+", text)
    assert match is not None, text
    return int(match.group())


def test_demo_runs_the_whole_flow_and_its_invariants_hold() -> None:
    """The embedded demo exits 0 in under 10 s with the expected figures."""
    done, seconds = run_demo()
    rows = summary(done.stdout)

    assert done.returncode == 0, done.stdout + done.stderr
    assert seconds < 10
    assert rows["webhooks received"] == "6"
    assert rows["webhooks rejected"] == "1"
    assert rows["duplicates dropped"] == "2 (replay guard 1, inbox 1)"
    assert rows["sagas completed"] == "2"
    assert rows["sagas compensated"] == "1"
    assert first_number(rows["events published"]) == 9
    assert rows["effects applied"] == "9"
    redelivered = first_number(rows["messages redelivered"])
    assert redelivered >= 1
    assert first_number(rows["redeliveries dropped"]) == redelivered
    assert rows["invariants"] == "8/8 hold"
    assert "BROKEN" not in done.stdout
    assert "saga compensated: charge_payment failed" in done.stdout


def test_demo_fails_when_an_effect_is_applied_twice() -> None:
    """A planted double-apply breaks the exactly-once invariant and the exit code."""
    done, _ = run_demo("--fault", "double-apply")
    rows = summary(done.stdout)

    assert done.returncode == 1
    assert first_number(rows["effects applied"]) > 9
    assert "[BROKEN] each published event applied exactly once" in done.stdout


def closed_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("broker", "scheme"),
    [("rabbitmq", "amqp://guest:guest@"), ("nats", "nats://"), ("redis", "redis://")],
)
def test_demo_explains_an_unreachable_broker(broker: str, scheme: str) -> None:
    """Asking for a broker that is not there exits 2 with a clear message."""
    url = f"{scheme}127.0.0.1:{closed_port()}"
    done, _ = run_demo("--broker", broker, "--broker-url", url)

    assert done.returncode == 2
    assert f"cannot reach the {broker} broker" in done.stderr
    assert "== summary" not in done.stdout


def broker_listening(port: int) -> bool:
    """Return True when something accepts connections on the local port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.services
@pytest.mark.parametrize("broker", sorted(BROKER_PORTS))
def test_demo_runs_over_a_real_broker(broker: str) -> None:
    """The flow over RabbitMQ, NATS JetStream or Redis Streams keeps its invariants."""
    if not broker_listening(BROKER_PORTS[broker]):
        service_unavailable(f"{broker} is not listening on 127.0.0.1")
    done, _ = run_demo("--broker", broker)
    rows = summary(done.stdout)

    assert done.returncode == 0, done.stdout + done.stderr
    assert first_number(rows["events published"]) == 9
    assert rows["effects applied"] == "9"
    assert first_number(rows["redeliveries dropped"]) == first_number(
        rows["messages redelivered"]
    )
    assert rows["invariants"] == "8/8 hold"
