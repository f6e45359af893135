"""The broker adapter examples tell their stories against real brokers."""

from __future__ import annotations

import ast
import importlib.util
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BROKER_EXAMPLES = [
    EXAMPLES / "08_outbox_postgres_to_rabbitmq.py",
    EXAMPLES / "09_outbox_to_nats_jetstream.py",
    EXAMPLES / "10_redis_streams_consumer_group_inbox.py",
]
PORTS = {"RabbitMQ": 5672, "NATS": 4222, "Redis": 6379}


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


def require(broker: str) -> None:
    """Skip (or fail under IAP_REQUIRE_SERVICES=1) unless the broker listens."""
    try:
        socket.create_connection(("127.0.0.1", PORTS[broker]), timeout=1).close()
    except OSError as exc:
        service_unavailable(f"{broker} is not listening on 127.0.0.1: {exc}")


def test_broker_examples_have_a_header_a_main_and_stay_short() -> None:
    """Examples 08 to 10 open with the story they show and stay readable."""
    for path in BROKER_EXAMPLES:
        source = path.read_text(encoding="utf-8")
        header = source.split('"""')[1]

        assert len(header.split()) > 60, path.name
        assert "def main(" in source
        assert len(source.splitlines()) <= 170, path.name


@pytest.mark.services
def test_rabbitmq_nack_is_retried_and_each_record_arrives_once_in_order(
    postgres_connect: Callable[[], Any],
) -> None:
    """A broker nack fails the record, holds its aggregate, and the retry delivers."""
    require("RabbitMQ")
    result = load("08_outbox_postgres_to_rabbitmq").main(postgres_connect)

    # (published, failed, released): o-1's payment nacked, its shipment held.
    assert result["batches"] == [(2, 1, 1), (2, 0, 0)]
    assert result["delivered"] == [
        ("o-1", "OrderPlaced"),
        ("o-2", "OrderPlaced"),
        ("o-1", "OrderPaid"),
        ("o-1", "OrderShipped"),
    ]
    assert result["record_ids"] == result["enqueued_ids"]
    assert len(set(result["record_ids"])) == 4
    assert result["attempts"] == [0, 0, 1, 0]
    assert [error.split(":")[0] for error in result["errors"]] == ["NackError"]
    assert (result["published"], result["pending"], result["dead"]) == (4, 0, 0)


@pytest.mark.services
def test_nats_jetstream_stores_a_republished_record_once(
    postgres_connect: Callable[[], Any],
) -> None:
    """Nats-Msg-Id set to the record id turns relay B's re-publishes into duplicates."""
    require("NATS")
    result = load("09_outbox_to_nats_jetstream").main(postgres_connect)

    assert result["publishes"] == 5
    assert result["duplicate_acks"] == [False, False, True, True, False]
    assert result["stream_sequences"] == [1, 2, 1, 2, 3]
    assert result["stream_messages"] == 3
    assert result["consumed_ids"] == result["claimed_by_a"]
    assert result["consumed"] == ["inv-1", "inv-2", "inv-3"]
    assert (result["published"], result["pending"]) == (3, 0)


@pytest.mark.services
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_redis_pending_message_is_applied_once_after_takeover(
    dialect: str, request: pytest.FixtureRequest
) -> None:
    """XACK follows the inbox commit; a re-delivered pending entry applies once."""
    require("Redis")
    connect = None
    if dialect == "postgresql":
        connect = request.getfixturevalue("postgres_connect")
    result = load("10_redis_streams_consumer_group_inbox").main(connect, dialect)

    assert result["entries"] == result["delivered_to_worker_1"] == 5
    assert result["pending_after_crash"] == 2
    assert result["reclaimed"] == ["pay-3", "pay-4"]
    assert sorted(result["applied"]) == ["pay-1", "pay-2", "pay-3", "pay-4"]
    assert result["duplicates"] == ["pay-2", "pay-4"]
    assert result["booked"] == {
        "pay-1": ("acc-A", 100),
        "pay-2": ("acc-B", 50),
        "pay-3": ("acc-A", 25),
        "pay-4": ("acc-B", 10),
    }
    assert (result["new_after_takeover"], result["pending"]) == (0, 0)


# ------------------------------------------------------------ ecosystem table


def test_every_supported_row_of_the_ecosystem_table_names_a_proof() -> None:
    """A row marked supported in ECOSYSTEM.md names a test or the matrix run."""
    rows = [
        line
        for line in (ROOT / "ECOSYSTEM.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("|") and "**supported**" in line
    ]

    assert len(rows) > 20
    for row in rows:
        assert "tests/" in row or "make matrix" in row, row


def test_every_test_the_ecosystem_table_names_exists() -> None:
    """Each ``tests/...py::name`` cited in ECOSYSTEM.md is a test function there."""
    text = (ROOT / "ECOSYSTEM.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"(tests/[\w/]+\.py)::(\w+)", text))
    defined: dict[str, set[str]] = {}
    for path, _ in cited:
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        defined[path] = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }

    assert len(cited) > 40
    assert sorted(c for c in cited if c[1] not in defined[c[0]]) == []
