"""Shared fixtures: a manual clock and real database connections."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from integration_automation_patterns._types import ManualClock

REQUIRE_SERVICES = os.environ.get("IAP_REQUIRE_SERVICES") == "1"


def service_unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when the run requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at a realistic Unix time."""
    return ManualClock(start=1_700_000_000.0)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The DSN of a real PostgreSQL server, from IAP_POSTGRES_DSN."""
    dsn = os.environ.get("IAP_POSTGRES_DSN")
    if not dsn:
        service_unavailable("IAP_POSTGRES_DSN is not set")
    try:
        import psycopg
    except ImportError:
        service_unavailable("psycopg is not installed")
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error as exc:
        service_unavailable(f"PostgreSQL at IAP_POSTGRES_DSN does not answer: {exc}")
    return dsn


@pytest.fixture
def postgres_connect(postgres_dsn: str) -> Iterator[Callable[[], Any]]:
    """A factory of new psycopg connections, inside a throwaway schema."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")

    def connect() -> Any:
        return psycopg.connect(postgres_dsn, options=f"-c search_path={schema}")

    yield connect

    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
