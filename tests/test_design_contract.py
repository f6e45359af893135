"""Conformance to the design contract: every public name, signature and behaviour.

Each test reads one item of the contract's "Shared conventions", "Compatibility
with 0.2.0" and "Module contracts beyond 0.2.0" as a caller would: through the
package root and through the module, with the documented positional order,
keyword-only options and defaults, and checks what the call does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib
import inspect
import json
import logging
import random
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import integration_automation_patterns as root
from integration_automation_patterns import (
    event_envelope,
)
from integration_automation_patterns._types import (
    SYSTEM_CLOCK,
    Clock,
    IntegrationError,
    Jitter,
    ManualClock,
    RetryPolicy,
    new_event_id,
)
from integration_automation_patterns.cdc_event import (
    CDCEvent,
    CDCOperation,
    CDCParseError,
    CDCSourceMetadata,
    DebeziumTransaction,
)
from integration_automation_patterns.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerStats,
    CircuitOpenError,
    CircuitState,
)
from integration_automation_patterns.event_envelope import (
    DeliveryStatus,
    EnvelopeError,
    EventEnvelope,
    InvalidTransitionError,
)
from integration_automation_patterns.kafka_envelope import (
    DeadLetterContext,
    EnvelopeDecodeError,
    KafkaEventEnvelope,
    RetryTopics,
    from_wire_format,
    murmur2,
    partition_for,
    to_wire_format,
)
from integration_automation_patterns.outbox import (
    IdempotencyConflictError,
    Inbox,
    OutboxProcessor,
    OutboxRecord,
    OutboxRelay,
    SqlOutboxStore,
)
from integration_automation_patterns.retry import (
    RetryBudget,
    acall_with_retry,
    call_with_retry,
    retry,
)
from integration_automation_patterns.saga import (
    SagaContext,
    SagaNotFoundError,
    SagaOrchestrator,
    SagaResult,
    SagaStatus,
    SagaStep,
    SqliteSagaStore,
    SqlSagaStore,
)
from integration_automation_patterns.sync_boundary import (
    FieldMapping,
    RecordAuthority,
    SyncBoundary,
    SyncConflict,
    SyncPlan,
    apply,
    resolve,
)
from integration_automation_patterns.webhook_handler import (
    GitHubVerifier,
    HmacVerifier,
    HubSpotVerifier,
    MemoryReplayGuard,
    PagerDutyVerifier,
    SalesforceVerifier,
    ShopifyVerifier,
    SlackVerifier,
    SquareVerifier,
    StandardWebhooksVerifier,
    StripeVerifier,
    TwilioVerifier,
    WebhookError,
    WebhookEvent,
    WebhookFormatError,
    WebhookHandler,
    WebhookReplayError,
    WebhookSignatureError,
    ZendeskVerifier,
)

Param = inspect.Parameter
REQUIRED: Any = Param.empty
ANY_DEFAULT: Any = object()
"""Marks a documented parameter whose default the contract leaves open."""
EITHER: Any = object()
"""Marks a parameter the contract shows as required; a default is compatible."""
ANY_NAME = "*"
"""Names a positional parameter the contract only shows as a placeholder (``n``)."""

POS = Param.POSITIONAL_OR_KEYWORD
KW = Param.KEYWORD_ONLY

# -- the names the contract fixes, by module -----------------------------------

CONTRACT_NAMES: dict[str, list[str]] = {
    "_types": [
        "IntegrationError",
        "Clock",
        "SYSTEM_CLOCK",
        "ManualClock",
        "new_event_id",
        "RetryPolicy",
        "Jitter",
    ],
    "event_envelope": [
        "DeliveryStatus",
        "RetryPolicy",
        "EventEnvelope",
        "EnvelopeError",
        "InvalidTransitionError",
    ],
    "retry": ["retry", "call_with_retry", "acall_with_retry", "RetryBudget"],
    "circuit_breaker": [
        "CircuitState",
        "CircuitOpenError",
        "CircuitBreakerStats",
        "CircuitBreaker",
    ],
    "saga": [
        "SagaStep",
        "SagaResult",
        "SagaOrchestrator",
        "SagaContext",
        "SagaStatus",
        "SqliteSagaStore",
        "SqlSagaStore",
        "SagaNotFoundError",
    ],
    "outbox": [
        "OutboxRecord",
        "OutboxProcessor",
        "SqlOutboxStore",
        "OutboxRelay",
        "Inbox",
        "IdempotencyConflictError",
    ],
    "kafka_envelope": [
        "KafkaEventEnvelope",
        "murmur2",
        "partition_for",
        "to_wire_format",
        "from_wire_format",
        "EnvelopeDecodeError",
        "RetryTopics",
        "DeadLetterContext",
    ],
    "webhook_handler": [
        "WebhookSignatureError",
        "WebhookReplayError",
        "WebhookEvent",
        "WebhookHandler",
        "GitHubVerifier",
        "StripeVerifier",
        "StandardWebhooksVerifier",
        "SlackVerifier",
        "ShopifyVerifier",
        "HubSpotVerifier",
        "TwilioVerifier",
        "SquareVerifier",
        "PagerDutyVerifier",
        "ZendeskVerifier",
        "SalesforceVerifier",
        "HmacVerifier",
        "MemoryReplayGuard",
        "WebhookError",
        "WebhookFormatError",
    ],
    "cdc_event": [
        "CDCOperation",
        "CDCSourceMetadata",
        "CDCEvent",
        "DebeziumTransaction",
        "CDCParseError",
    ],
    "sync_boundary": [
        "RecordAuthority",
        "SyncConflict",
        "SyncBoundary",
        "SyncPlan",
        "FieldMapping",
        "apply",
        "resolve",
    ],
}

PATTERN_MODULES = [m for m in CONTRACT_NAMES if m != "_types"]

NAME_PAIRS = [
    (module, name) for module, names in CONTRACT_NAMES.items() for name in names
]

INPUT_ERRORS: list[type[Exception]] = [
    EnvelopeError,
    InvalidTransitionError,
    EnvelopeDecodeError,
    WebhookError,
    WebhookSignatureError,
    WebhookReplayError,
    WebhookFormatError,
    CDCParseError,
    IdempotencyConflictError,
]

LEAKY_ERRORS = (
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    UnicodeDecodeError,
    json.JSONDecodeError,
    RecursionError,
)

SECRET = "s3cr3t-Do-Not-Leak-9f2c"
BAD_UTF8 = b'{"op": "c", "id": "\xff"}'


def module_named(name: str) -> ModuleType:
    """Import ``integration_automation_patterns.<name>``."""
    return importlib.import_module(f"integration_automation_patterns.{name}")


# -- signature checks ----------------------------------------------------------


@dataclass(frozen=True)
class P:
    """One documented parameter: its name, kind and default."""

    name: str
    kind: Any = POS
    default: Any = REQUIRED


def own_parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    """Return the parameters of ``fn`` a caller passes (no self or cls)."""
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].name in {"self", "cls"}:
        params = params[1:]
    return params


def check_signature(
    fn: Callable[..., Any],
    positional: list[P],
    keyword: list[P] | None = None,
    *,
    var_positional: str | None = None,
    var_keyword: bool = False,
    first_positional_only: bool = False,
) -> None:
    """Assert ``fn`` takes the documented parameters, in order, as documented.

    Positional parameters must come first, in order, with their defaults;
    keyword-only ones must exist with theirs. Any extra parameter must have a
    default, so a call written from the contract still binds.
    """
    params = own_parameters(fn)
    leading = [p for p in params if p.kind in (Param.POSITIONAL_ONLY, POS)]
    names = [p.name for p in leading[: len(positional)]]
    wanted_names = [
        actual if want.name == ANY_NAME else want.name
        for actual, want in zip(names, positional, strict=False)
    ]

    assert names == wanted_names, f"{fn.__qualname__}: {params}"
    assert len(names) == len(positional), f"{fn.__qualname__}: {params}"
    for index, (actual, wanted) in enumerate(zip(leading, positional, strict=False)):
        allowed = (
            {POS, Param.POSITIONAL_ONLY}
            if (index == 0 and first_positional_only)
            else {wanted.kind}
        )
        assert actual.kind in allowed, f"{fn.__qualname__}({actual}) kind"
        assert_default(fn, actual, wanted.default)

    by_name = {p.name: p for p in params}
    for wanted in keyword or []:
        assert wanted.name in by_name, f"{fn.__qualname__} lacks {wanted.name}"
        actual = by_name[wanted.name]
        assert actual.kind is KW, f"{fn.__qualname__}({actual}) not keyword-only"
        assert_default(fn, actual, wanted.default)

    if var_positional is not None:
        star = [p for p in params if p.kind is Param.VAR_POSITIONAL]
        assert star, f"{fn.__qualname__} lacks *{var_positional}"
    if var_keyword:
        assert any(p.kind is Param.VAR_KEYWORD for p in params)

    documented = set(names) | {p.name for p in keyword or []}
    for extra in params:
        if extra.name in documented or extra.kind in (
            Param.VAR_POSITIONAL,
            Param.VAR_KEYWORD,
        ):
            continue
        assert extra.default is not REQUIRED, (
            f"{fn.__qualname__}: undocumented required parameter {extra.name}"
        )


def assert_default(
    fn: Callable[..., Any], actual: inspect.Parameter, want: Any
) -> None:
    """Assert one parameter's default is the documented one."""
    where = f"{fn.__qualname__}({actual.name})"
    if want is EITHER:
        return
    if want is REQUIRED:
        assert actual.default is REQUIRED, f"{where} should be required"
    elif want is ANY_DEFAULT:
        assert actual.default is not REQUIRED, f"{where} should have a default"
    else:
        assert actual.default is not REQUIRED, f"{where} should default to {want!r}"
        assert actual.default == want, f"{where}: {actual.default!r} != {want!r}"
        assert type(actual.default) is type(want) or isinstance(
            actual.default, (int, float)
        ), f"{where}: default type {type(actual.default).__name__}"


def run(coro: Any) -> Any:
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


# ==============================================================================
# Names: the package root and the modules
# ==============================================================================


@pytest.mark.parametrize(("module", "name"), NAME_PAIRS)
def test_contract_name_imports_from_module_and_root(module: str, name: str) -> None:
    """Every fixed name imports from its module and is the same object at the root."""
    from_module = getattr(module_named(module), name)

    assert getattr(root, name) is from_module
    assert name in root.__all__


@pytest.mark.parametrize("module", PATTERN_MODULES)
def test_contract_names_are_in_each_module_all(module: str) -> None:
    """Each module lists the names the contract gives it in its ``__all__``."""
    exported = set(module_named(module).__all__)

    assert set(CONTRACT_NAMES[module]) <= exported


def test_package_root_has_a_version() -> None:
    """The package root carries ``__version__``."""
    assert isinstance(root.__version__, str)
    assert root.__version__


# ==============================================================================
# Shared conventions
# ==============================================================================


@pytest.mark.parametrize("error", INPUT_ERRORS, ids=lambda e: e.__name__)
def test_input_errors_subclass_integration_error_and_value_error(
    error: type[Exception],
) -> None:
    """Input errors are IntegrationErrors and ValueErrors, so old excepts work."""
    assert issubclass(error, IntegrationError)
    assert issubclass(error, ValueError)


def test_integration_error_is_a_plain_exception_root() -> None:
    """IntegrationError derives from Exception, the root of the library's errors."""
    assert issubclass(IntegrationError, Exception)
    assert issubclass(SagaNotFoundError, IntegrationError)
    assert issubclass(CircuitOpenError, IntegrationError)


@pytest.mark.parametrize(
    "error", [WebhookSignatureError, WebhookReplayError, WebhookFormatError]
)
def test_webhook_errors_share_webhook_error(error: type[Exception]) -> None:
    """Every webhook failure is caught by ``except WebhookError``."""
    assert issubclass(error, WebhookError)


def _std_secret() -> str:
    return "whsec_" + base64.b64encode(b"k" * 24).decode()


BAD_INPUTS: list[tuple[str, Callable[[], object]]] = [
    ("envelope.from_dict empty", lambda: EventEnvelope.from_dict({})),
    ("envelope.from_dict not a mapping", lambda: EventEnvelope.from_dict([1])),  # type: ignore[arg-type]
    (
        "envelope.from_dict bad status",
        lambda: EventEnvelope.from_dict(
            {
                "event_id": "e",
                "event_type": "t",
                "source_system": "s",
                "payload": {},
                "status": "nope",
            }
        ),
    ),
    (
        "envelope.from_dict payload list",
        lambda: EventEnvelope.from_dict(
            {"event_id": "e", "event_type": "t", "source_system": "s", "payload": []}
        ),
    ),
    ("envelope.from_json broken", lambda: EventEnvelope.from_json("{")),
    ("envelope.from_json not utf-8", lambda: EventEnvelope.from_json(b"\xff\xfe")),
    ("envelope.from_cloudevent empty", lambda: EventEnvelope.from_cloudevent({})),
    (
        "envelope.from_cloudevent no id",
        lambda: EventEnvelope.from_cloudevent(
            {"specversion": "1.0", "source": "s", "type": "t"}
        ),
    ),
    ("cdc.from_debezium junk", lambda: CDCEvent.from_debezium(b"not json")),
    ("cdc.from_debezium bad utf-8", lambda: CDCEvent.from_debezium(b"\xff")),
    ("cdc.from_debezium int", lambda: CDCEvent.from_debezium(123)),  # type: ignore[arg-type]
    ("cdc.from_debezium list", lambda: CDCEvent.from_debezium([])),  # type: ignore[arg-type]
    (
        "cdc.from_debezium before not object",
        lambda: CDCEvent.from_debezium(
            {"op": "u", "before": 5, "after": {"id": 1}, "source": {}}
        ),
    ),
    ("cdc.from_maxwell empty", lambda: CDCEvent.from_maxwell({})),
    ("cdc.from_maxwell junk", lambda: CDCEvent.from_maxwell(b"\x00\x01")),
    ("cdc.from_dms empty", lambda: CDCEvent.from_dms({})),
    ("cdc.from_dms junk", lambda: CDCEvent.from_dms(b"{")),
    ("cdc.from_wal2json junk", lambda: CDCEvent.from_wal2json(b"]")),
    ("cdc.from_wal2json empty", lambda: CDCEvent.from_wal2json({})),
    (
        "kafka.from_consumer_record junk",
        lambda: KafkaEventEnvelope.from_consumer_record("t", 0, 1, b"k", b"\xff"),
    ),
    (
        "kafka.from_consumer_record missing fields",
        lambda: KafkaEventEnvelope.from_consumer_record("t", 0, 1, b"k", b"{}"),
    ),
    (
        "kafka.from_consumer_record array",
        lambda: KafkaEventEnvelope.from_consumer_record("t", 0, 1, b"k", b"[1]"),
    ),
    ("kafka.from_wire_format short", lambda: from_wire_format(b"\x00\x01")),
    (
        "kafka.from_wire_format magic",
        lambda: from_wire_format(b"\x07\x00\x00\x00\x01x"),
    ),
    (
        "kafka.from_cloudevents_record junk",
        lambda: KafkaEventEnvelope.from_cloudevents_record(b"k", b"\xff", []),
    ),
    ("webhook.parse not json", lambda: _signed_parse(b"\xff\xfe not json")),
    ("webhook.parse json array", lambda: _signed_parse(b"[1, 2]")),
    ("webhook.parse bad hex", lambda: WebhookHandler(SECRET).parse(b"{}", "sha256=zz")),
    ("webhook.parse empty header", lambda: WebhookHandler(SECRET).parse(b"{}", "")),
    (
        "stripe.verify bad header",
        lambda: StripeVerifier(SECRET).verify(b"{}", {"Stripe-Signature": "t=abc,v1="}),
    ),
    ("github.verify no header", lambda: GitHubVerifier(SECRET).verify(b"{}", {})),
    (
        "standard.verify bad timestamp",
        lambda: StandardWebhooksVerifier(_std_secret()).verify(
            b"{}",
            {
                "webhook-id": "m",
                "webhook-timestamp": "x",
                "webhook-signature": "v1,AAAA",
            },
        ),
    ),
    (
        "slack.verify no timestamp",
        lambda: SlackVerifier(SECRET).verify(b"{}", {"X-Slack-Signature": "v0=00"}),
    ),
    (
        "sync.plan not a mapping",
        lambda: SyncBoundary("c", "a", "b", {"x": RecordAuthority.SHARED}).plan(
            "r",
            [],  # type: ignore[arg-type]
            {},
            None,
        ),
    ),
    ("sync.FieldMapping empty", lambda: FieldMapping("", "b")),
]


def _signed_parse(body: bytes) -> object:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return WebhookHandler(SECRET).parse(body, f"sha256={digest}")


@pytest.mark.parametrize(
    "call", [c for _, c in BAD_INPUTS], ids=[name for name, _ in BAD_INPUTS]
)
def test_bad_input_raises_an_input_error_not_a_builtin(
    call: Callable[[], object],
) -> None:
    """Bad input surfaces as IntegrationError + ValueError, never a raw builtin."""
    with pytest.raises(Exception) as caught:  # noqa: PT011 -- any escape is inspected below
        call()

    error = caught.value
    assert isinstance(error, IntegrationError), repr(error)
    assert isinstance(error, ValueError), repr(error)
    raised: type[BaseException] = type(error)
    assert raised not in LEAKY_ERRORS
    assert str(error), "the message says what was wrong"


@pytest.mark.parametrize(
    ("call", "original"),
    [
        (lambda: EventEnvelope.from_json("{"), json.JSONDecodeError),
        (lambda: EventEnvelope.from_json(BAD_UTF8), UnicodeDecodeError),
        (lambda: CDCEvent.from_debezium(b"not json"), json.JSONDecodeError),
        (lambda: CDCEvent.from_debezium(BAD_UTF8), UnicodeDecodeError),
        (lambda: _signed_parse(BAD_UTF8), UnicodeDecodeError),
        (lambda: _signed_parse(b"{not json"), json.JSONDecodeError),
        (
            lambda: KafkaEventEnvelope.from_consumer_record("t", 0, 1, b"k", b"{x"),
            json.JSONDecodeError,
        ),
    ],
    ids=[
        "envelope-json",
        "envelope-utf8",
        "cdc-json",
        "cdc-utf8",
        "webhook-utf8",
        "webhook-json",
        "kafka-json",
    ],
)
def test_wrapped_decode_errors_keep_the_original_as_cause(
    call: Callable[[], object], original: type[BaseException]
) -> None:
    """A decode failure is wrapped with the original exception as ``__cause__``."""
    with pytest.raises(IntegrationError) as caught:
        call()

    cause: BaseException | None = caught.value
    chain: list[BaseException] = []
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__
    assert any(isinstance(c, original) for c in chain[1:]), chain


def test_input_error_messages_name_the_field_or_header() -> None:
    """The message of an input error names the field or header at fault."""
    with pytest.raises(EnvelopeError, match="event_id"):
        EventEnvelope.from_dict(
            {"event_type": "t", "source_system": "s", "payload": {}}
        )
    with pytest.raises(WebhookFormatError, match=r"(?i)X-Hub-Signature-256"):
        GitHubVerifier(SECRET).verify(b"{}", {})
    with pytest.raises(WebhookFormatError, match=r"(?i)Stripe-Signature"):
        StripeVerifier(SECRET).verify(b"{}", {})
    with pytest.raises(CDCParseError, match="before"):
        CDCEvent.from_debezium(
            {"op": "u", "before": 5, "after": {"id": 1}, "source": {}}
        )


def _verifiers_with_context(clock: Clock) -> list[tuple[Any, dict[str, Any]]]:
    url = "https://example.com/hooks"
    return [
        (GitHubVerifier(SECRET, clock=clock), {}),
        (StripeVerifier("whsec_" + SECRET, clock=clock), {}),
        (StandardWebhooksVerifier(_std_secret(), clock=clock), {}),
        (SlackVerifier(SECRET, clock=clock), {}),
        (ShopifyVerifier(SECRET, clock=clock), {}),
        (HubSpotVerifier(SECRET, clock=clock), {"url": url}),
        (TwilioVerifier(SECRET, clock=clock), {"url": url}),
        (SquareVerifier(SECRET, clock=clock), {"url": url}),
        (PagerDutyVerifier(SECRET, clock=clock), {}),
        (ZendeskVerifier(SECRET, clock=clock), {}),
        (SalesforceVerifier(SECRET, clock=clock), {}),
        (HmacVerifier(SECRET, header="X-Signature", clock=clock), {}),
    ]


VERIFIER_IDS = [
    "github",
    "stripe",
    "standard",
    "slack",
    "shopify",
    "hubspot",
    "twilio",
    "square",
    "pagerduty",
    "zendesk",
    "salesforce",
    "hmac",
]


@pytest.mark.parametrize("index", range(12), ids=VERIFIER_IDS)
def test_secrets_never_appear_in_repr_or_errors(index: int, clock: ManualClock) -> None:
    """A verifier's secret is absent from its repr and from its error messages."""
    verifier, context = _verifiers_with_context(clock)[index]
    body = b'{"id": "evt_1", "type": "t"}'
    headers = verifier.sign(body, **context)
    secret_bits = (SECRET, base64.b64encode(b"k" * 24).decode())

    texts = [repr(verifier), str(verifier)]
    for bad_body, bad_headers in ((body + b" ", headers), (body, {})):
        with pytest.raises(WebhookError) as caught:
            verifier.verify(bad_body, bad_headers, **context)
        texts += [str(caught.value), repr(caught.value)]

    for text in texts:
        assert not any(bit in text for bit in secret_bits), text


def test_webhook_handler_secret_never_appears_in_repr_or_errors() -> None:
    """The 0.2.0 handler keeps its secret out of repr and error messages."""
    handler = WebhookHandler(SECRET)
    texts = [repr(handler), str(handler)]
    for header in ("sha256=" + "00" * 32, "nothex", ""):
        with pytest.raises(WebhookError) as caught:
            handler.parse(b'{"id": "1"}', header)
        texts += [str(caught.value), repr(caught.value)]

    assert not any(SECRET in text for text in texts)


@pytest.mark.parametrize("module", [*PATTERN_MODULES, "_types"])
def test_modules_log_through_their_own_named_logger(module: str) -> None:
    """Each pattern module logs via ``logging.getLogger(__name__)``, no handlers."""
    mod = module_named(module)
    source = inspect.getsource(mod)

    assert "basicConfig(" not in source
    assert "addHandler(" not in source
    if module == "_types":
        return
    loggers = [v for v in vars(mod).values() if isinstance(v, logging.Logger)]
    assert [lg.name for lg in loggers] == [mod.__name__]
    assert loggers[0] is logging.getLogger(mod.__name__)
    assert loggers[0].handlers == []


def _records(caplog: pytest.LogCaptureFixture, module: str) -> list[logging.LogRecord]:
    name = f"integration_automation_patterns.{module}"
    return [r for r in caplog.records if r.name == name]


def test_breaker_logs_lifecycle_at_info_with_breaker_field(
    caplog: pytest.LogCaptureFixture, clock: ManualClock
) -> None:
    """A breaker opening logs INFO on its module's logger with ``breaker``."""
    caplog.set_level(logging.DEBUG, logger="integration_automation_patterns")
    breaker = CircuitBreaker("crm", failure_threshold=1, clock=clock)

    with pytest.raises(ZeroDivisionError):
        breaker.execute(lambda: 1 / 0)

    infos = [
        r for r in _records(caplog, "circuit_breaker") if r.levelno == logging.INFO
    ]
    assert infos
    assert all(getattr(r, "breaker", None) == "crm" for r in infos)


def test_retry_logs_a_warning_with_attempt_field(
    caplog: pytest.LogCaptureFixture, clock: ManualClock
) -> None:
    """A retry logs WARNING on the retry module's logger with ``attempt``."""
    caplog.set_level(logging.DEBUG, logger="integration_automation_patterns")
    calls = iter([ValueError("once"), None])

    def flaky() -> str:
        error = next(calls)
        if error is not None:
            raise error
        return "ok"

    call_with_retry(flaky, policy=RetryPolicy(3, 1), clock=clock)

    warnings = [r for r in _records(caplog, "retry") if r.levelno == logging.WARNING]
    assert warnings
    assert all(hasattr(r, "attempt") for r in warnings)


def test_saga_failed_compensation_logs_error_with_saga_id(
    caplog: pytest.LogCaptureFixture, clock: ManualClock
) -> None:
    """A compensation that keeps failing logs ERROR with ``saga_id``."""
    caplog.set_level(logging.DEBUG, logger="integration_automation_patterns")

    def broken_undo() -> None:
        raise RuntimeError("cannot undo")

    def failing() -> None:
        raise RuntimeError("step failed")

    saga_run = SagaOrchestrator("order", clock=clock)
    saga_run.add_step("reserve", lambda: 1, broken_undo)
    saga_run.add_step("charge", failing, lambda: None)
    result = saga_run.execute()

    errors = [r for r in _records(caplog, "saga") if r.levelno == logging.ERROR]
    assert not result.succeeded
    assert errors
    assert all(getattr(r, "saga_id", None) == result.saga_id for r in errors)


def test_outbox_failed_publish_warns_and_dead_record_logs_error(
    caplog: pytest.LogCaptureFixture, clock: ManualClock, tmp_path: Path
) -> None:
    """A failed publish logs WARNING; a record given up on logs ERROR."""
    caplog.set_level(logging.DEBUG, logger="integration_automation_patterns")
    connect = _sqlite_factory(tmp_path / "log.db")
    store = _outbox_store(connect, clock)
    _enqueue(connect, store, [OutboxRecord.create("acc-1", "Opened", {"n": 1})])

    def refuse(record: OutboxRecord) -> None:
        raise ConnectionError("broker down")

    relay = OutboxRelay(
        store, connect, refuse, retry_policy=RetryPolicy(1, 1), clock=clock
    )
    relay.run_once()
    relay.close()

    levels = {r.levelno for r in _records(caplog, "outbox")}
    assert logging.WARNING in levels
    assert logging.ERROR in levels


def test_time_is_injected_where_patterns_wait_or_compare() -> None:
    """Waiting and time-comparing patterns accept ``clock=``."""
    for fn in (
        CircuitBreaker,
        retry,
        call_with_retry,
        acall_with_retry,
        OutboxRelay,
        WebhookHandler,
        StripeVerifier,
        MemoryReplayGuard,
        SagaOrchestrator,
    ):
        assert "clock" in inspect.signature(fn).parameters, fn


def test_clock_protocol_offers_monotonic_time_sleep_and_an_async_sleep() -> None:
    """Clocks offer ``monotonic()``, ``time()``, ``sleep()`` and an async sleep."""
    for clock_obj in (SYSTEM_CLOCK, ManualClock()):
        assert isinstance(clock_obj.monotonic(), float)
        assert isinstance(clock_obj.time(), float)
        assert callable(clock_obj.sleep)
    async_members = [
        name
        for name, member in vars(Clock).items()
        if inspect.iscoroutinefunction(member)
    ]
    assert async_members
    for name in async_members:
        assert inspect.iscoroutinefunction(getattr(SYSTEM_CLOCK, name))
        assert inspect.iscoroutinefunction(getattr(ManualClock(), name))


def test_system_clock_reads_real_time() -> None:
    """SYSTEM_CLOCK's ``time()`` is Unix time and ``monotonic()`` never goes back."""
    first = SYSTEM_CLOCK.monotonic()

    assert abs(SYSTEM_CLOCK.time() - time.time()) < 5
    assert SYSTEM_CLOCK.monotonic() >= first


def test_signature_checker_catches_each_kind_of_drift() -> None:
    """The signature checker fails on a wrong order, kind, default or extra param."""

    def documented(a: int, b: int = 1, *, c: int = 2) -> None:
        """Match the documented shape."""

    def swapped(b: int = 1, a: int = 0, *, c: int = 2) -> None:
        """Swap the positional order."""

    def keyword_b(a: int, *, b: int = 1, c: int = 2) -> None:
        """Make ``b`` keyword-only."""

    def other_default(a: int, b: int = 5, *, c: int = 2) -> None:
        """Change ``b``'s default."""

    def positional_c(a: int, b: int = 1, c: int = 2) -> None:
        """Let ``c`` be passed by position."""

    def extra_required(a: int, b: int = 1, *, c: int = 2, d: int) -> None:
        """Add a required parameter."""

    def spec(fn: Callable[..., Any]) -> None:
        check_signature(fn, [P("a"), P("b", default=1)], [P("c", KW, 2)])

    spec(documented)
    for drifted in (swapped, keyword_b, other_default, positional_c, extra_required):
        with pytest.raises(AssertionError):
            spec(drifted)


def test_cdc_ids_are_the_same_in_another_process() -> None:
    """A content-derived CDC id does not depend on the process or hash seed."""
    import subprocess
    import sys

    value = json.dumps(DEBEZIUM_UPDATE)
    script = (
        "import sys\n"
        "from integration_automation_patterns import CDCEvent\n"
        "print(CDCEvent.from_debezium(sys.stdin.read().encode()).event_id)\n"
    )
    ids = {
        subprocess.run(
            [sys.executable, "-c", script],
            input=value,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2")
    }

    assert ids == {CDCEvent.from_debezium(value.encode()).event_id}


@pytest.mark.parametrize("index", range(12), ids=VERIFIER_IDS)
def test_secrets_are_never_logged(
    index: int, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing a verifier logs, at any level, carries its secret."""
    caplog.set_level(logging.DEBUG)
    guard = MemoryReplayGuard(clock=clock)
    verifier, context = _verifiers_with_context(clock)[index]
    verifier._replay_guard = guard
    body = b'{"id": "evt_1", "type": "t"}'
    headers = verifier.sign(body, **context)

    verifier.parse(body, headers, **context)
    for bad_body in (body, body + b" "):
        with pytest.raises(WebhookError):
            verifier.parse(bad_body, headers, **context)

    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert SECRET not in logged
    assert base64.b64encode(b"k" * 24).decode() not in logged


# ==============================================================================
# _types
# ==============================================================================


def test_manual_clock_advance_moves_both_readings() -> None:
    """``ManualClock.advance(seconds)`` moves ``monotonic()`` and ``time()``."""
    clock = ManualClock(100.0)

    clock.advance(2.5)

    assert clock.monotonic() == 102.5
    assert clock.time() == 102.5
    check_signature(ManualClock.advance, [P("seconds")])


def test_manual_clock_records_sleeps_without_waiting() -> None:
    """``ManualClock.sleep`` and its async sleep append to ``sleeps`` and advance."""
    clock = ManualClock(0.0)
    started = time.monotonic()

    clock.sleep(30.0)
    run(clock.asleep(5.0))

    assert clock.sleeps == [30.0, 5.0]
    assert clock.monotonic() == 35.0
    assert time.monotonic() - started < 1.0


def test_new_event_id_is_a_uuidv7_string() -> None:
    """``new_event_id()`` returns an RFC 9562 UUIDv7 string."""
    event_id = new_event_id()
    parsed = uuid.UUID(event_id)

    assert isinstance(event_id, str)
    assert str(parsed) == event_id
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    millis = parsed.int >> 80
    assert abs(millis / 1000 - time.time()) < 5


def test_new_event_ids_are_unique_and_time_ordered() -> None:
    """Successive ids are distinct and sort in creation order."""
    ids = [new_event_id() for _ in range(2000)]

    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_jitter_members() -> None:
    """Jitter offers NONE, FULL, EQUAL and DECORRELATED."""
    assert {m.name for m in Jitter} == {"NONE", "FULL", "EQUAL", "DECORRELATED"}


def test_retry_policy_signature() -> None:
    """RetryPolicy keeps the 0.2.0 positional order and adds keyword-only options."""
    check_signature(
        RetryPolicy,
        [
            P("max_attempts", default=3),
            P("backoff_seconds", default=30),
            P("exponential", default=True),
            P("max_backoff_seconds", default=3600),
        ],
        [P("jitter", KW, Jitter.NONE), P("deadline_seconds", KW, None)],
    )
    for method in (RetryPolicy.wait_seconds_for_attempt, RetryPolicy.is_exhausted):
        check_signature(method, [P(ANY_NAME)])
    check_signature(
        RetryPolicy.delay_for_attempt,
        [P(ANY_NAME)],
        [P("rng", KW, None), P("previous", KW, None)],
    )


def test_retry_policy_rejects_jitter_as_a_positional_argument() -> None:
    """``jitter`` and ``deadline_seconds`` cannot be passed by position."""
    with pytest.raises(TypeError):
        RetryPolicy(3, 30, True, 3600, Jitter.FULL)  # type: ignore[call-arg]


def test_wait_seconds_for_attempt_doubles_and_caps() -> None:
    """``wait_seconds_for_attempt(n)`` is ``backoff * 2**n`` capped, as an int."""
    policy = RetryPolicy(backoff_seconds=10, max_backoff_seconds=50)

    waits = [policy.wait_seconds_for_attempt(n) for n in range(5)]

    assert waits == [10, 20, 40, 50, 50]
    assert all(type(w) is int for w in waits)
    assert (
        RetryPolicy(backoff_seconds=10, exponential=False).wait_seconds_for_attempt(4)
        == 10
    )
    assert RetryPolicy().wait_seconds_for_attempt(0) == 30
    assert RetryPolicy().wait_seconds_for_attempt(100) == 3600


def test_is_exhausted_counts_attempts_against_max_attempts() -> None:
    """``is_exhausted(n)`` is ``n >= max_attempts``."""
    policy = RetryPolicy(max_attempts=3)

    assert [policy.is_exhausted(n) for n in range(5)] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_delay_for_attempt_without_jitter_equals_the_ceiling() -> None:
    """Without jitter the delay is the exponential, capped wait as a float."""
    policy = RetryPolicy(backoff_seconds=1.5, max_backoff_seconds=10)

    delays = [policy.delay_for_attempt(n) for n in range(5)]

    assert delays == [1.5, 3.0, 6.0, 10.0, 10.0]
    assert all(isinstance(d, float) for d in delays)


@pytest.mark.parametrize("jitter", [Jitter.FULL, Jitter.EQUAL, Jitter.DECORRELATED])
def test_jittered_delays_stay_in_range_and_follow_the_rng(jitter: Jitter) -> None:
    """Jittered delays stay within their documented range and repeat per seed."""
    policy = RetryPolicy(backoff_seconds=2, max_backoff_seconds=40, jitter=jitter)

    first = [policy.delay_for_attempt(n, rng=random.Random(7)) for n in range(6)]
    again = [policy.delay_for_attempt(n, rng=random.Random(7)) for n in range(6)]

    assert first == again
    for n, delay in enumerate(first):
        ceiling = min(2 * 2**n, 40)
        assert 0 <= delay <= 40
        if jitter is Jitter.FULL:
            assert delay <= ceiling
        if jitter is Jitter.EQUAL:
            assert ceiling / 2 <= delay <= ceiling
        if jitter is Jitter.DECORRELATED:
            assert delay >= 2
    decorrelated = RetryPolicy(
        backoff_seconds=2, max_backoff_seconds=1000, jitter=Jitter.DECORRELATED
    )
    for seed in range(20):
        delay = decorrelated.delay_for_attempt(3, rng=random.Random(seed), previous=5.0)
        assert 2 <= delay <= 15


def test_retry_policy_is_the_same_class_everywhere() -> None:
    """The policy in ``event_envelope`` is the shared ``_types.RetryPolicy``."""
    assert event_envelope.RetryPolicy is RetryPolicy
    assert root.RetryPolicy is RetryPolicy


# ==============================================================================
# event_envelope (0.2.0)
# ==============================================================================


def test_delivery_status_values_are_lowercase_names() -> None:
    """DeliveryStatus has the seven 0.2.0 members, valued by lowercase name."""
    names = [
        "PENDING",
        "DISPATCHED",
        "ACKNOWLEDGED",
        "PROCESSED",
        "RETRYING",
        "FAILED",
        "SKIPPED",
    ]

    assert [m.name for m in DeliveryStatus][: len(names)] == names
    for name in names:
        assert DeliveryStatus[name].value == name.lower()


def test_event_envelope_signature() -> None:
    """EventEnvelope keeps the 0.2.0 positional order and defaults."""
    check_signature(
        EventEnvelope,
        [
            P("event_id"),
            P("event_type"),
            P("source_system"),
            P("payload"),
            P("correlation_id", default=""),
            P("schema_version", default="1.0"),
            P("created_at", default=ANY_DEFAULT),
            P("status", default=DeliveryStatus.PENDING),
            P("attempt_count", default=0),
            P("retry_policy", default=ANY_DEFAULT),
            P("tags", default=ANY_DEFAULT),
        ],
    )


def _envelope(**fields: Any) -> EventEnvelope:
    return EventEnvelope(
        "evt-001", "crm.contact.updated", "crm", {"id": "c-1"}, **fields
    )


def test_event_envelope_defaults() -> None:
    """A new envelope is PENDING, 0 attempts, default policy, UTC now, no tags."""
    before = datetime.now(timezone.utc)
    env = _envelope()
    other = _envelope()

    assert env.status is DeliveryStatus.PENDING
    assert env.attempt_count == 0
    assert env.correlation_id == ""
    assert env.schema_version == "1.0"
    assert env.retry_policy == RetryPolicy()
    assert env.tags == {}
    assert env.tags is not other.tags
    assert env.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= env.created_at <= datetime.now(timezone.utc)


def test_event_envelope_positional_construction() -> None:
    """All eleven fields bind by position in the documented order."""
    created = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    policy = RetryPolicy(5, 1)

    env = EventEnvelope(
        "e",
        "t",
        "s",
        {"k": 1},
        "corr",
        "2.0",
        created,
        DeliveryStatus.PENDING,
        0,
        policy,
        {"a": "b"},
    )

    assert (env.correlation_id, env.schema_version, env.created_at) == (
        "corr",
        "2.0",
        created,
    )
    assert env.retry_policy is policy
    assert env.tags == {"a": "b"}


def test_mark_dispatched_counts_attempts() -> None:
    """``mark_dispatched()`` sets DISPATCHED and adds one attempt each time."""
    env = _envelope()

    env.mark_dispatched()
    env.mark_dispatched()

    assert env.status is DeliveryStatus.DISPATCHED
    assert env.attempt_count == 2


def test_acknowledged_then_processed_is_terminal() -> None:
    """The 0.2.0 happy path: dispatched, acknowledged, processed (terminal)."""
    env = _envelope()
    env.mark_dispatched()

    env.mark_acknowledged()
    assert env.status is DeliveryStatus.ACKNOWLEDGED
    assert not env.is_terminal()
    env.mark_processed()

    assert status_of(env) is DeliveryStatus.PROCESSED
    assert env.is_terminal()


def test_mark_failed_retries_until_the_policy_is_exhausted() -> None:
    """``mark_failed()`` gives RETRYING, then FAILED once attempts exhaust policy."""
    env = _envelope(retry_policy=RetryPolicy(max_attempts=2, backoff_seconds=10))

    env.mark_dispatched()
    env.mark_failed()
    assert env.status is DeliveryStatus.RETRYING
    assert not env.is_terminal()
    assert env.next_retry_wait_seconds() > 0
    assert isinstance(env.next_retry_wait_seconds(), int)
    env.mark_dispatched()
    env.mark_failed()

    assert status_of(env) is DeliveryStatus.FAILED
    assert env.is_terminal()
    assert env.next_retry_wait_seconds() == 0


def test_0_2_0_exhaustion_by_repeated_dispatch() -> None:
    """Dispatching max_attempts times then failing gives FAILED, as in 0.2.0."""
    env = _envelope()
    for _ in range(3):
        env.mark_dispatched()

    env.mark_failed()

    assert env.status is DeliveryStatus.FAILED


def test_next_retry_wait_is_zero_unless_retrying() -> None:
    """``next_retry_wait_seconds()`` is 0 in every status but RETRYING."""
    env = _envelope()
    assert env.next_retry_wait_seconds() == 0
    env.mark_dispatched()
    assert env.next_retry_wait_seconds() == 0


@pytest.mark.parametrize("reason", ["duplicate", ""])
def test_mark_skipped_stores_the_reason_only_when_given(reason: str) -> None:
    """``mark_skipped(reason="")`` is terminal and keeps a given reason in tags."""
    env = _envelope()

    env.mark_skipped(reason) if reason else env.mark_skipped()

    assert env.status is DeliveryStatus.SKIPPED
    assert env.is_terminal()
    assert env.tags.get("skip_reason") == (reason or None)
    check_signature(EventEnvelope.mark_skipped, [P("reason", default="")])


def test_to_audit_line_format() -> None:
    """``to_audit_line()`` follows the documented key=value layout and order."""
    created = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    env = _envelope(correlation_id="corr-9", schema_version="2.1", created_at=created)
    env.mark_dispatched()

    line = env.to_audit_line()

    match = re.fullmatch(
        r"\[INTEGRATION_EVENT\] event_id=evt-001 type=crm\.contact\.updated "
        r"source=crm status=dispatched attempts=1 correlation=corr-9 schema=2\.1 "
        r"created=(\S+)",
        line,
    )
    assert match, line
    assert datetime.fromisoformat(match.group(1).replace("Z", "+00:00")) == created


def test_mark_after_terminal_raises_invalid_transition() -> None:
    """An illegal lifecycle move raises InvalidTransitionError and changes nothing."""
    env = _envelope()
    env.mark_dispatched()
    env.mark_processed()

    with pytest.raises(InvalidTransitionError):
        env.mark_dispatched()

    assert env.status is DeliveryStatus.PROCESSED
    assert env.attempt_count == 1


# -- event_envelope beyond 0.2.0 -------------------------------------------------


def test_envelope_new_assigns_a_fresh_id() -> None:
    """``EventEnvelope.new(...)`` builds a PENDING envelope with a new UUIDv7 id."""
    env = EventEnvelope.new("t", "crm", {"a": 1}, correlation_id="c")
    other = EventEnvelope.new("t", "crm", {"a": 1})

    assert env.status is DeliveryStatus.PENDING
    assert env.correlation_id == "c"
    assert env.event_id != other.event_id
    assert uuid.UUID(env.event_id).version == 7


def test_envelope_dict_and_json_round_trip() -> None:
    """``to_dict``/``from_dict`` and ``to_json``/``from_json`` are lossless."""
    env = _envelope(correlation_id="c", tags={"k": "v"})
    env.mark_dispatched()
    env.mark_failed()

    assert EventEnvelope.from_dict(env.to_dict()) == env
    assert EventEnvelope.from_json(env.to_json()) == env
    assert isinstance(env.to_json(), str)
    json.dumps(env.to_dict())


def test_envelope_cloudevent_round_trip() -> None:
    """``to_cloudevent`` is a CloudEvents 1.0 event ``from_cloudevent`` reads back."""
    env = _envelope(correlation_id="corr")

    event = env.to_cloudevent()
    back = EventEnvelope.from_cloudevent(event)

    assert event["specversion"] == "1.0"
    assert (event["id"], event["type"], event["source"]) == (
        "evt-001",
        "crm.contact.updated",
        "crm",
    )
    assert (back.event_id, back.event_type, back.source_system, back.payload) == (
        env.event_id,
        env.event_type,
        env.source_system,
        env.payload,
    )
    assert back.correlation_id == "corr"
    json.dumps(event)


def test_cloudevent_matches_the_cloudevents_sdk() -> None:
    """The CloudEvents SDK reads ``to_cloudevent`` and writes what we read back."""
    formats = pytest.importorskip("cloudevents.core.formats.json")
    env = _envelope()

    event = formats.JSONFormat().read(None, json.dumps(env.to_cloudevent()).encode())
    back = EventEnvelope.from_cloudevent(json.loads(formats.JSONFormat().write(event)))

    assert event.get_id() == env.event_id
    assert event.get_data() == env.payload
    assert (back.event_id, back.payload) == (env.event_id, env.payload)


# ==============================================================================
# retry
# ==============================================================================


def test_retry_decorator_signature() -> None:
    """``retry(policy=None, *, on, budget, clock, on_retry, rng)``."""
    check_signature(
        retry,
        [P("policy", default=None)],
        [
            P("on", KW, (Exception,)),
            P("budget", KW, None),
            P("clock", KW, None),
            P("on_retry", KW, None),
            P("rng", KW, None),
        ],
    )
    positional = [p for p in own_parameters(retry) if p.kind is not KW]
    assert [p.name for p in positional] == ["policy"]


@pytest.mark.parametrize("fn", [call_with_retry, acall_with_retry])
def test_call_with_retry_signature(fn: Callable[..., Any]) -> None:
    """``call_with_retry(fn, *args, policy=..., **kwargs)`` and its async twin."""
    check_signature(
        fn,
        [P("fn")],
        [P("policy", KW, ANY_DEFAULT)],
        var_positional="args",
        var_keyword=True,
        first_positional_only=True,
    )


def test_acall_with_retry_is_a_coroutine_function() -> None:
    """``acall_with_retry`` is awaited."""
    assert inspect.iscoroutinefunction(acall_with_retry)


def test_giving_up_reraises_the_last_exception_unchanged(clock: ManualClock) -> None:
    """After the last attempt the last exception itself propagates."""
    raised: list[Exception] = []

    def always_fails(tag: str, *, n: int) -> None:
        error = ConnectionError(f"{tag}-{n}-{len(raised)}")
        raised.append(error)
        raise error

    with pytest.raises(ConnectionError) as caught:
        call_with_retry(always_fails, "crm", policy=RetryPolicy(3, 1), clock=clock, n=7)

    assert len(raised) == 3
    assert caught.value is raised[-1]
    assert clock.sleeps == [1.0, 2.0]


def test_call_with_retry_returns_and_passes_arguments(clock: ManualClock) -> None:
    """Arguments reach ``fn`` and its result is returned after a retry."""
    seen: list[tuple[Any, ...]] = []

    def flaky(a: int, b: int, *, scale: int) -> int:
        seen.append((a, b, scale))
        if len(seen) == 1:
            raise TimeoutError("slow")
        return (a + b) * scale

    assert (
        call_with_retry(flaky, 1, 2, policy=RetryPolicy(3, 0.5), clock=clock, scale=10)
        == 30
    )
    assert seen == [(1, 2, 10), (1, 2, 10)]
    assert clock.sleeps == [0.5]


def test_acall_with_retry_retries_and_reraises_unchanged(clock: ManualClock) -> None:
    """The async twin retries on the clock and re-raises the last exception."""
    raised: list[Exception] = []

    async def down(x: int) -> int:
        raised.append(OSError(x))
        raise raised[-1]

    async def main() -> None:
        with pytest.raises(OSError) as caught:  # noqa: PT011 -- identity is checked
            await acall_with_retry(down, 5, policy=RetryPolicy(2, 4), clock=clock)
        assert caught.value is raised[-1]

    run(main())

    assert len(raised) == 2
    assert clock.sleeps == [4.0]


def test_retry_on_filters_which_exceptions_are_retried(clock: ManualClock) -> None:
    """An exception outside ``on`` propagates at once, without a retry."""
    calls: list[int] = []

    @retry(RetryPolicy(5, 1), on=(ConnectionError,), clock=clock)
    def parse() -> None:
        calls.append(1)
        raise KeyError("bad")

    with pytest.raises(KeyError):
        parse()

    assert calls == [1]
    assert clock.sleeps == []


def test_retry_decorator_keeps_the_signature_sync_and_async(clock: ManualClock) -> None:
    """The decorator returns a sync or async wrapper keeping the signature."""

    def fetch(order_id: str, *, limit: int = 3) -> str:
        """Fetch an order."""
        return order_id * limit

    async def afetch(order_id: str, *, limit: int = 3) -> str:
        """Fetch an order asynchronously."""
        return order_id * limit

    wrapped = retry(clock=clock)(fetch)
    awrapped = retry(clock=clock)(afetch)

    assert inspect.signature(wrapped) == inspect.signature(fetch)
    assert inspect.signature(awrapped) == inspect.signature(afetch)
    assert wrapped.__name__ == "fetch"
    assert wrapped.__doc__ == "Fetch an order."
    assert not inspect.iscoroutinefunction(wrapped)
    assert inspect.iscoroutinefunction(awrapped)
    assert wrapped("a", limit=2) == "aa"
    assert run(awrapped("b")) == "bbb"


def test_retry_on_retry_hook_sees_each_retry(clock: ManualClock) -> None:
    """``on_retry`` is called once per retry."""
    hooks: list[object] = []
    attempts = iter([ValueError("1"), ValueError("2"), None])

    @retry(RetryPolicy(3, 1), on_retry=hooks.append, clock=clock)
    def op() -> str:
        error = next(attempts)
        if error:
            raise error
        return "done"

    assert op() == "done"
    assert len(hooks) == 2


def test_retry_budget_stops_retries_when_spent(clock: ManualClock) -> None:
    """With an empty budget a failure is not retried."""
    budget = RetryBudget(0.0, min_retries_per_second=0.0, max_tokens=0.0, clock=clock)
    calls: list[int] = []

    def fails() -> None:
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        call_with_retry(fails, policy=RetryPolicy(5, 1), budget=budget, clock=clock)

    assert calls == [1]


def test_retry_defaults_to_the_default_policy(clock: ManualClock) -> None:
    """``retry()`` with no policy uses ``RetryPolicy()``: three attempts, 30 s, 60 s."""
    calls: list[int] = []

    @retry(clock=clock)
    def fails() -> None:
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        fails()

    assert len(calls) == 3
    assert clock.sleeps == [30.0, 60.0]


def test_deadline_seconds_stops_waits_that_would_end_past_it(
    clock: ManualClock,
) -> None:
    """With ``deadline_seconds`` no wait is started that would end past it."""
    calls: list[float] = []

    def fails() -> None:
        calls.append(clock.monotonic())
        raise ConnectionError("down")

    policy = RetryPolicy(10, 4, deadline_seconds=15)
    with pytest.raises(ConnectionError):
        call_with_retry(fails, policy=policy, clock=clock)

    assert sum(clock.sleeps) <= 15
    assert clock.sleeps == [4.0, 8.0]
    assert len(calls) == 3


# ==============================================================================
# circuit_breaker (0.2.0)
# ==============================================================================


def test_circuit_state_values() -> None:
    """CircuitState is CLOSED, OPEN, HALF_OPEN valued closed/open/half_open."""
    assert [(s.name, s.value) for s in CircuitState] == [
        ("CLOSED", "closed"),
        ("OPEN", "open"),
        ("HALF_OPEN", "half_open"),
    ]


def test_circuit_open_error_is_a_runtime_error() -> None:
    """``CircuitOpenError(name, retry_after)`` is a RuntimeError naming the breaker."""
    error = CircuitOpenError("erp", 12.5)

    assert isinstance(error, RuntimeError)
    assert isinstance(error, IntegrationError)
    assert error.name == "erp"
    assert error.retry_after == 12.5
    assert "erp" in str(error)
    check_signature(CircuitOpenError, [P("name"), P("retry_after")])


def test_circuit_breaker_stats_signature() -> None:
    """CircuitBreakerStats keeps the six 0.2.0 fields in order."""
    check_signature(
        CircuitBreakerStats,
        [
            P("name"),
            P("state"),
            P("failure_count"),
            P("success_count"),
            P("last_failure_time"),
            P("last_state_change_time"),
        ],
    )
    stats = CircuitBreakerStats("x", CircuitState.CLOSED, 1, 2, None, 3.0)
    assert (stats.failure_count, stats.success_count) == (1, 2)


def test_circuit_breaker_signature() -> None:
    """The breaker keeps the 0.2.0 positional order and keyword-only options."""
    check_signature(
        CircuitBreaker,
        [
            P("name"),
            P("failure_threshold", default=5),
            P("recovery_timeout", default=60.0),
            P("success_threshold", default=1),
            P("expected_exceptions", default=(Exception,)),
        ],
        [
            P("failure_rate_threshold", KW, None),
            P("window_size", KW, ANY_DEFAULT),
            P("window_seconds", KW, None),
            P("minimum_calls", KW, ANY_DEFAULT),
            P("slow_call_duration", KW, None),
            P("slow_call_rate_threshold", KW, None),
            P("half_open_max_calls", KW, 1),
            P("exclude", KW, ()),
            P("clock", KW, ANY_DEFAULT),
        ],
    )
    check_signature(
        CircuitBreaker.execute,
        [P("fn")],
        var_positional="args",
        var_keyword=True,
        first_positional_only=True,
    )
    check_signature(
        CircuitBreaker.execute_async,
        [P("fn")],
        var_positional="args",
        var_keyword=True,
        first_positional_only=True,
    )
    assert inspect.iscoroutinefunction(CircuitBreaker.execute_async)
    for method in ("reset", "stats", "force_open"):
        check_signature(getattr(CircuitBreaker, method), [])
    check_signature(
        CircuitBreaker.add_listener,
        [P(own_parameters(CircuitBreaker.add_listener)[0].name)],
    )


def test_breaker_opens_refuses_and_recovers(clock: ManualClock) -> None:
    """Failures open the breaker; it refuses; a probe after the timeout closes it."""
    breaker = CircuitBreaker("crm", 2, 30.0, 1, (ConnectionError,), clock=clock)
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise ConnectionError("down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.execute(down)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as refused:
        breaker.execute(down)
    assert calls == [1, 1]
    assert 0 < refused.value.retry_after <= 30.0
    assert refused.value.name == "crm"

    clock.advance(30.0)
    assert breaker.execute(_add, 1, y=2) == 3

    assert state_of(breaker) is CircuitState.CLOSED


def test_0_2_0_configuration_stays_readable() -> None:
    """Constructor arguments stay readable as attributes, as 0.2.0 dataclasses were."""
    breaker = CircuitBreaker("n", 3, 10.0, 2, (OSError,))
    handler = WebhookHandler(SECRET, 10, "ts", "eid", "kind")

    assert (breaker.name, breaker.failure_threshold, breaker.recovery_timeout) == (
        "n",
        3,
        10.0,
    )
    assert (breaker.success_threshold, breaker.expected_exceptions) == (2, (OSError,))
    assert SagaOrchestrator("order").name == "order"
    assert (handler.tolerance_seconds, handler.timestamp_field) == (10, "ts")
    assert (handler.id_field, handler.type_field) == ("eid", "kind")


def test_unexpected_exceptions_do_not_count(clock: ManualClock) -> None:
    """An exception outside ``expected_exceptions`` passes through uncounted."""
    breaker = CircuitBreaker(
        "crm", 1, expected_exceptions=(ConnectionError,), clock=clock
    )

    with pytest.raises(KeyError):
        breaker.execute(_missing_key)

    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats().failure_count == 0


def test_breaker_stats_and_reset(clock: ManualClock) -> None:
    """``stats()`` reports the counts; ``reset()`` closes an open breaker."""
    breaker = CircuitBreaker("erp", failure_threshold=1, clock=clock)
    breaker.execute(lambda: "ok")
    with pytest.raises(ValueError, match="bad"):
        breaker.execute(_raise, ValueError("bad"))

    stats = breaker.stats()
    assert isinstance(stats, CircuitBreakerStats)
    assert stats.name == "erp"
    assert stats.state is CircuitState.OPEN
    assert stats.failure_count == 1
    assert stats.last_failure_time is not None
    breaker.reset()

    assert breaker.state is CircuitState.CLOSED


def _raise(error: BaseException) -> None:
    raise error


def _add(x: int, *, y: int) -> int:
    return x + y


def _missing_key() -> int:
    table: dict[str, int] = {}
    return table["x"]


def state_of(breaker: CircuitBreaker) -> CircuitState:
    """Read the state afresh (keeps type checkers from narrowing it)."""
    return breaker.state


def status_of(env: EventEnvelope) -> DeliveryStatus:
    """Read the status afresh (keeps type checkers from narrowing it)."""
    return env.status


def test_breaker_call_decorates_sync_and_async(clock: ManualClock) -> None:
    """``call`` wraps plain and ``async def`` functions, keeping their signature."""
    breaker = CircuitBreaker("svc", clock=clock)

    def add(a: int, b: int = 1) -> int:
        return a + b

    async def aadd(a: int, b: int = 1) -> int:
        return a + b

    wrapped = breaker.call(add)
    awrapped = breaker.call(aadd)

    assert wrapped(2, b=3) == 5
    assert run(awrapped(4)) == 5
    assert inspect.iscoroutinefunction(awrapped)
    assert inspect.signature(wrapped) == inspect.signature(add)
    assert inspect.signature(awrapped) == inspect.signature(aadd)


# -- circuit_breaker beyond 0.2.0 -------------------------------------------------


def test_execute_async_counts_failures_and_refuses(clock: ManualClock) -> None:
    """``await execute_async(fn, ...)`` runs coroutines under the breaker."""
    breaker = CircuitBreaker("svc", failure_threshold=1, clock=clock)

    async def down(x: int) -> int:
        raise ConnectionError(str(x))

    async def ok(x: int, *, y: int) -> int:
        return x * y

    async def main() -> None:
        assert await breaker.execute_async(ok, 3, y=4) == 12
        with pytest.raises(ConnectionError):
            await breaker.execute_async(down, 1)
        with pytest.raises(CircuitOpenError):
            await breaker.execute_async(ok, 1, y=1)

    run(main())


def test_listeners_hear_transitions_and_force_open_holds(clock: ManualClock) -> None:
    """``add_listener`` hears every change; ``force_open`` refuses until reset."""
    breaker = CircuitBreaker("svc", recovery_timeout=1.0, clock=clock)
    heard: list[Any] = []
    breaker.add_listener(heard.append)

    breaker.force_open()
    clock.advance(3600)

    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        breaker.execute(lambda: None)
    breaker.reset()
    assert state_of(breaker) is CircuitState.CLOSED
    assert len(heard) == 2


def test_failure_rate_threshold_opens_over_the_window(clock: ManualClock) -> None:
    """With ``failure_rate_threshold`` the rate over the window trips the breaker."""
    breaker = CircuitBreaker(
        "rate", failure_rate_threshold=0.5, window_size=4, minimum_calls=4, clock=clock
    )
    outcomes = [True, False, True, False]

    for good in outcomes:
        if good:
            breaker.execute(lambda: None)
        else:
            with pytest.raises(ConnectionError):
                breaker.execute(_raise, ConnectionError("x"))

    assert breaker.state is CircuitState.OPEN


def test_exclude_keeps_exceptions_out_of_the_count(clock: ManualClock) -> None:
    """Excluded exceptions neither fail nor trip the breaker."""
    breaker = CircuitBreaker(
        "svc", failure_threshold=1, exclude=(LookupError,), clock=clock
    )

    with pytest.raises(KeyError):
        breaker.execute(_missing_key)

    assert breaker.state is CircuitState.CLOSED


def test_breaker_stays_open_until_recovery_timeout(clock: ManualClock) -> None:
    """Calls are refused until ``recovery_timeout`` has passed, then probed."""
    breaker = CircuitBreaker("svc", 1, 30.0, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.execute(_raise, ConnectionError("x"))

    clock.advance(29.5)
    with pytest.raises(CircuitOpenError) as refused:
        breaker.execute(lambda: None)
    assert refused.value.retry_after == pytest.approx(0.5)
    clock.advance(0.5)

    assert breaker.execute(lambda: "probe") == "probe"


def test_success_threshold_needs_that_many_probes(clock: ManualClock) -> None:
    """With ``success_threshold=2`` two successful probes close the breaker."""
    breaker = CircuitBreaker("svc", 1, 10.0, 2, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.execute(_raise, ConnectionError("x"))
    clock.advance(10.0)

    breaker.execute(lambda: None)
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.execute(lambda: None)

    assert state_of(breaker) is CircuitState.CLOSED


def test_a_failed_probe_reopens(clock: ManualClock) -> None:
    """A probe that fails in HALF_OPEN opens the breaker again."""
    breaker = CircuitBreaker("svc", 1, 10.0, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.execute(_raise, ConnectionError("x"))
    clock.advance(10.0)

    with pytest.raises(ConnectionError):
        breaker.execute(_raise, ConnectionError("y"))

    assert breaker.state is CircuitState.OPEN


@pytest.mark.parametrize("permits", [1, 2])
def test_half_open_max_calls_limits_concurrent_probes(
    permits: int, clock: ManualClock
) -> None:
    """HALF_OPEN admits ``half_open_max_calls`` probes at once and refuses more."""
    breaker = CircuitBreaker("svc", 1, 5.0, 3, half_open_max_calls=permits, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.execute(_raise, ConnectionError("x"))
    clock.advance(5.0)
    admitted: list[int] = []

    def probe(depth: int) -> None:
        admitted.append(depth)
        if depth < 3:
            breaker.execute(probe, depth + 1)

    with pytest.raises(CircuitOpenError) as refused:
        breaker.execute(probe, 1)

    assert admitted == list(range(1, permits + 1))
    assert refused.value.state is CircuitState.HALF_OPEN


def test_window_seconds_forgets_old_outcomes(clock: ManualClock) -> None:
    """A time window forgets outcomes past ``window_seconds``; a count does not."""

    def rate_breaker(**window: Any) -> CircuitBreaker:
        breaker = CircuitBreaker(
            "w", failure_rate_threshold=0.5, minimum_calls=3, clock=clock, **window
        )
        for _ in range(2):
            with pytest.raises(ConnectionError):
                breaker.execute(_raise, ConnectionError("x"))
        return breaker

    recent = rate_breaker(window_seconds=10.0)
    recent.execute(lambda: None)
    timed = rate_breaker(window_seconds=10.0)
    counted = rate_breaker(window_size=10)
    clock.advance(11.0)
    timed.execute(lambda: None)
    counted.execute(lambda: None)

    assert recent.state is CircuitState.OPEN
    assert timed.state is CircuitState.CLOSED
    assert counted.state is CircuitState.OPEN


def test_slow_calls_trip_the_breaker(clock: ManualClock) -> None:
    """Calls slower than ``slow_call_duration`` count toward the slow-call rate."""
    breaker = CircuitBreaker(
        "slow",
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.5,
        window_size=2,
        minimum_calls=2,
        clock=clock,
    )

    def slow() -> str:
        clock.advance(2.0)
        return "late"

    assert breaker.execute(slow) == "late"
    assert breaker.execute(slow) == "late"

    assert breaker.state is CircuitState.OPEN


# ==============================================================================
# saga (0.2.0)
# ==============================================================================


def test_saga_step_and_result_signatures() -> None:
    """SagaStep and SagaResult keep their 0.2.0 positional fields."""
    check_signature(SagaStep, [P("name"), P("action"), P("compensate", default=EITHER)])
    check_signature(
        SagaResult,
        [
            P("succeeded"),
            P("failed_step", default=None),
            P("error", default=None),
            P("completed_steps", default=ANY_DEFAULT),
            P("compensated_steps", default=ANY_DEFAULT),
            P("step_results", default=ANY_DEFAULT),
        ],
    )
    result = SagaResult(True)
    other = SagaResult(False)
    assert (result.completed_steps, result.compensated_steps, result.step_results) == (
        [],
        [],
        {},
    )
    assert result.completed_steps is not other.completed_steps
    step = SagaStep("a", lambda: 1, lambda: None)
    assert step.name == "a"


def test_saga_step_requires_compensate_positionally() -> None:
    """``SagaStep(name, action, compensate)`` binds all three by position."""
    undo = lambda: None  # noqa: E731 -- a callable identity is what is checked
    step = SagaStep("reserve", lambda: 1, undo)

    assert step.compensate is undo


def test_saga_orchestrator_signatures() -> None:
    """``SagaOrchestrator(name, *, store=None)`` and its documented methods."""
    check_signature(SagaOrchestrator, [P("name")], [P("store", KW, None)])
    check_signature(
        SagaOrchestrator.add_step,
        [P("name"), P("action"), P("compensate", default=EITHER)],
    )
    check_signature(
        SagaOrchestrator.execute, [P("data", default=None)], [P("saga_id", KW, None)]
    )
    check_signature(
        SagaOrchestrator.execute_async,
        [P("data", default=None)],
        [P("saga_id", KW, None)],
    )
    assert inspect.iscoroutinefunction(SagaOrchestrator.execute_async)
    check_signature(SagaOrchestrator.resume, [P("saga_id")])


def test_0_2_0_saga_succeeds_with_fluent_steps() -> None:
    """The 0.2.0 flow: fluent ``add_step`` with no-argument lambdas, ``execute()``."""
    trace: list[str] = []
    saga_run = SagaOrchestrator("order-placement")

    returned = saga_run.add_step("reserve", lambda: "r-1", lambda: trace.append("-r"))
    returned.add_step("charge", lambda: "c-1", lambda: trace.append("-c"))
    result = saga_run.execute()

    assert returned is saga_run
    assert isinstance(result, SagaResult)
    assert result.succeeded
    assert result.failed_step is None
    assert result.error is None
    assert result.completed_steps == ["reserve", "charge"]
    assert result.compensated_steps == []
    assert result.step_results == {"reserve": "r-1", "charge": "c-1"}
    assert trace == []


def test_0_2_0_saga_failure_compensates_in_reverse(clock: ManualClock) -> None:
    """A failing step is reported and the completed ones undone in reverse."""
    trace: list[str] = []
    boom = RuntimeError("card declined")

    def charge() -> None:
        raise boom

    saga_run = SagaOrchestrator("order", clock=clock)
    saga_run.add_step("a", lambda: trace.append("a"), lambda: trace.append("-a"))
    saga_run.add_step("b", lambda: trace.append("b"), lambda: trace.append("-b"))
    saga_run.add_step("charge", charge, lambda: trace.append("-charge"))
    result = saga_run.execute()

    assert not result.succeeded
    assert result.failed_step == "charge"
    assert result.error is boom
    assert result.completed_steps == ["a", "b"]
    assert result.compensated_steps == ["b", "a"]
    assert trace == ["a", "b", "-b", "-a"]


# -- saga beyond 0.2.0 ---------------------------------------------------------


def test_saga_steps_receive_a_context_with_the_data(clock: ManualClock) -> None:
    """A one-argument step receives a SagaContext carrying ``data`` and results."""
    seen: list[SagaContext] = []

    def act(ctx: SagaContext) -> str:
        seen.append(ctx)
        return ctx.step

    saga_run = (
        SagaOrchestrator("ctx", clock=clock).add_step("a", act).add_step("b", act)
    )
    result = saga_run.execute({"order": 1}, saga_id="s-ctx")

    assert result.succeeded
    assert [c.step for c in seen] == ["a", "b"]
    assert all(c.data == {"order": 1} and c.saga_id == "s-ctx" for c in seen)
    assert seen[1].results["a"] == "a"
    assert {s.name for s in SagaStatus} >= {"COMPLETED"}


def test_saga_execute_async_runs_async_steps(clock: ManualClock) -> None:
    """``await execute_async(...)`` accepts ``async def`` steps and compensations."""
    trace: list[str] = []

    async def reserve() -> str:
        trace.append("reserve")
        return "r"

    async def undo() -> None:
        trace.append("-reserve")

    async def fail() -> None:
        raise RuntimeError("no")

    saga_run = SagaOrchestrator("async", clock=clock)
    saga_run.add_step("reserve", reserve, undo).add_step("fail", fail, None)
    result = run(saga_run.execute_async({"x": 1}))

    assert not result.succeeded
    assert result.completed_steps == ["reserve"]
    assert result.compensated_steps == ["reserve"]
    assert trace == ["reserve", "-reserve"]


class Crash(BaseException):
    """Stands for the process dying mid-saga."""


def _crashing_saga(
    store: Any, clock: ManualClock, armed: dict[str, bool], trace: list[str]
) -> SagaOrchestrator:
    def reserve() -> str:
        trace.append("reserve")
        return "r-1"

    def charge() -> str:
        trace.append("charge")
        if armed["crash"]:
            raise Crash
        return "c-1"

    saga_run = SagaOrchestrator("pay", store=store, clock=clock)
    return saga_run.add_step("reserve", reserve, None).add_step("charge", charge, None)


def _saga_stores(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if kind == "sqlite-path":
        return SqliteSagaStore(tmp_path / "saga.db")
    if kind == "sqlite-str":
        return SqliteSagaStore(str(tmp_path / "saga.db"))
    if kind == "sql-sqlite":
        path = tmp_path / "saga.db"
        return SqlSagaStore(lambda: sqlite3.connect(path), "sqlite")
    connect = request.getfixturevalue("postgres_connect")
    return SqlSagaStore(connect, "postgresql")


@pytest.mark.parametrize(
    "kind", ["sqlite-path", "sqlite-str", "sql-sqlite", "postgresql"]
)
def test_saga_store_lists_incomplete_and_resume_finishes(
    kind: str, tmp_path: Path, clock: ManualClock, request: pytest.FixtureRequest
) -> None:
    """A crashed saga shows in ``incomplete()`` and ``resume(saga_id)`` finishes it."""
    store = _saga_stores(kind, tmp_path, request)
    request.addfinalizer(store.close)
    armed = {"crash": True}
    trace: list[str] = []
    saga_run = _crashing_saga(store, clock, armed, trace)

    assert store.incomplete() == []
    with pytest.raises(Crash):
        saga_run.execute({"amount": 5}, saga_id="p-1")
    assert store.incomplete() == ["p-1"]
    armed["crash"] = False
    result = saga_run.resume("p-1")

    assert result.succeeded
    assert result.step_results == {"reserve": "r-1", "charge": "c-1"}
    assert trace == ["reserve", "charge", "charge"]
    assert store.incomplete() == []


def test_saga_store_signatures() -> None:
    """``SqliteSagaStore(path)``, ``SqlSagaStore(connect, dialect)``, ``incomplete``."""
    check_signature(SqliteSagaStore, [P("path")])
    check_signature(SqlSagaStore, [P("connect"), P("dialect")])
    check_signature(SqlSagaStore.incomplete, [])


def test_resume_of_an_unknown_saga_raises_not_found(
    tmp_path: Path, clock: ManualClock
) -> None:
    """``resume`` of an id the journal does not hold raises SagaNotFoundError."""
    saga_run = SagaOrchestrator(
        "x", store=SqliteSagaStore(tmp_path / "s.db"), clock=clock
    )
    saga_run.add_step("a", lambda: 1)

    with pytest.raises(SagaNotFoundError):
        saga_run.resume("missing")


# ==============================================================================
# outbox (0.2.0)
# ==============================================================================


def test_outbox_record_signature_and_defaults() -> None:
    """OutboxRecord keeps its 0.2.0 positional fields and defaults."""
    check_signature(
        OutboxRecord,
        [
            P("aggregate_id"),
            P("event_type"),
            P("payload"),
            P("record_id", default=ANY_DEFAULT),
            P("created_at", default=ANY_DEFAULT),
            P("published_at", default=None),
            P("attempt_count", default=0),
            P("last_error", default=None),
        ],
    )
    record = OutboxRecord("acc-1", "AccountOpened", {"n": 1})
    other = OutboxRecord("acc-1", "AccountOpened", {"n": 1})

    uuid.UUID(record.record_id)
    assert record.record_id != other.record_id
    assert record.created_at.utcoffset() == timedelta(0)
    assert (record.published_at, record.attempt_count, record.last_error) == (
        None,
        0,
        None,
    )


def test_outbox_record_create_and_is_pending() -> None:
    """``create(aggregate_id, event_type, payload)`` gives a pending record."""
    check_signature(
        OutboxRecord.create, [P("aggregate_id"), P("event_type"), P("payload")]
    )
    record = OutboxRecord.create("acc-1", "AccountOpened", {"n": 1})

    assert record.is_pending is True
    record.published_at = datetime.now(timezone.utc)
    assert record.is_pending is False


def test_to_event_dict_keys_and_json() -> None:
    """``to_event_dict()`` has exactly the five documented keys and is JSON-ready."""
    record = OutboxRecord.create("acc-1", "AccountOpened", {"n": 1, "tags": ["a"]})

    event = record.to_event_dict()

    assert set(event) == {
        "record_id",
        "aggregate_id",
        "event_type",
        "payload",
        "created_at",
    }
    assert event["record_id"] == record.record_id
    assert event["payload"] == {"n": 1, "tags": ["a"]}
    assert json.loads(json.dumps(event))["aggregate_id"] == "acc-1"


def test_outbox_processor_signature() -> None:
    """``OutboxProcessor(fetch_pending, publish, mark_published, mark_failed=None)``."""
    check_signature(
        OutboxProcessor,
        [
            P("fetch_pending"),
            P("publish"),
            P("mark_published"),
            P("mark_failed", default=None),
        ],
    )
    check_signature(OutboxProcessor.process_batch, [P("batch_size", default=100)])


def test_outbox_processor_returns_published_and_failed() -> None:
    """``process_batch`` publishes event dicts and returns ``(published, failed)``."""
    good = OutboxRecord.create("a", "Ok", {"n": 1})
    bad = OutboxRecord.create("b", "Bad", {"n": 2})
    asked: list[int] = []
    sent: list[dict[str, Any]] = []
    published: list[str] = []
    failures: list[tuple[str, str, int]] = []

    def fetch(n: int) -> list[OutboxRecord]:
        asked.append(n)
        return [good, bad]

    def publish(event: dict[str, Any]) -> None:
        sent.append(event)
        if event["event_type"] == "Bad":
            raise ConnectionError("broker said no")

    processor = OutboxProcessor(
        fetch, publish, published.append, lambda r, e, n: failures.append((r, e, n))
    )
    outcome = processor.process_batch()

    assert outcome == (1, 1)
    assert isinstance(outcome, tuple)
    assert asked == [100]
    assert sent == [good.to_event_dict(), bad.to_event_dict()]
    assert published == [good.record_id]
    assert len(failures) == 1
    assert failures[0][0] == bad.record_id
    assert "broker said no" in failures[0][1]
    assert failures[0][2] == 1


def test_outbox_processor_without_mark_failed_still_counts() -> None:
    """Without ``mark_failed`` a failed publish is only counted."""
    record = OutboxRecord.create("a", "T", {})

    def publish(event: dict[str, Any]) -> None:
        raise OSError("down")

    processor = OutboxProcessor(lambda n: [record], publish, lambda rid: None)

    assert processor.process_batch(5) == (0, 1)


# -- outbox beyond 0.2.0 ---------------------------------------------------------


def _sqlite_factory(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path, timeout=30)

    return connect


def _outbox_store(
    connect: Callable[[], Any], clock: Clock, dialect: str = "sqlite"
) -> SqlOutboxStore:
    store = SqlOutboxStore(dialect, clock=clock)
    conn = connect()
    store.create_schema(conn)
    conn.commit()
    conn.close()
    return store


def _enqueue(
    connect: Callable[[], Any], store: SqlOutboxStore, records: list[OutboxRecord]
) -> None:
    conn = connect()
    for record in records:
        store.enqueue(conn, record)
    conn.commit()
    conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_connect(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Callable[[], Any]]]:
    """A dialect and a factory of real connections to a fresh database."""
    if request.param == "sqlite":
        yield "sqlite", _sqlite_factory(tmp_path / "outbox.db")
        return
    yield "postgresql", request.getfixturevalue("postgres_connect")


def test_sql_outbox_store_signatures() -> None:
    """The store's constructor and methods take the documented arguments."""
    check_signature(
        SqlOutboxStore, [P("dialect", default=EITHER)], [P("table", KW, "outbox")]
    )
    assert own_parameters(SqlOutboxStore)[0].name == "dialect"
    check_signature(SqlOutboxStore.create_schema, [P("conn")])
    check_signature(SqlOutboxStore.enqueue, [P("conn"), P("record")])
    check_signature(
        SqlOutboxStore.claim, [P("conn"), P("limit")], [P("lease_seconds", KW, 30)]
    )
    check_signature(SqlOutboxStore.mark_published, [P("conn"), P("ids"), P("token")])
    check_signature(SqlOutboxStore.stats, [P("conn")])
    names = [p.name for p in own_parameters(SqlOutboxStore.mark_failed)[:4]]
    assert names[0] == "conn"
    assert names[2:] == ["error", "token"]
    assert own_parameters(SqlOutboxStore.mark_failed)[1].kind is POS


def test_sql_outbox_store_mark_failed_parameter_names() -> None:
    """``mark_failed(conn, id, error, token, ...)`` uses the documented names."""
    check_signature(
        SqlOutboxStore.mark_failed, [P("conn"), P("id"), P("error"), P("token")]
    )


def test_sql_outbox_store_claim_publish_fail_and_stats(
    db_connect: tuple[str, Callable[[], Any]], clock: ManualClock
) -> None:
    """Enqueue, claim under a token, mark published or failed, and read stats."""
    dialect, connect = db_connect
    store = _outbox_store(connect, clock, dialect)
    records = [OutboxRecord.create(f"acc-{i}", "Opened", {"i": i}) for i in range(3)]
    _enqueue(connect, store, records)
    conn = connect()

    batch = store.claim(conn, 10)
    conn.commit()
    claimed = list(batch.records)
    ids = [r.record_id for r in claimed]
    assert sorted(ids) == sorted(r.record_id for r in records)
    assert store.claim(conn, 10).records == ()
    conn.commit()

    assert store.mark_published(conn, ids[:2], "stale-token") == 0
    assert store.mark_published(conn, ids[:2], batch.token) == 2
    store.mark_failed(conn, ids[2], "broker down", batch.token)
    conn.commit()
    stats = store.stats(conn)
    conn.close()

    assert stats.published == 2
    assert stats.pending == 1


def test_sql_outbox_store_table_option(tmp_path: Path, clock: ManualClock) -> None:
    """``table=`` names the table the store creates and uses."""
    connect = _sqlite_factory(tmp_path / "t.db")
    store = SqlOutboxStore("sqlite", table="events_outbox", clock=clock)
    conn = connect()
    store.create_schema(conn)
    store.enqueue(conn, OutboxRecord.create("a", "T", {}))
    conn.commit()

    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "events_outbox" in names
    assert store.stats(conn).pending == 1
    conn.close()


def test_outbox_relay_signature() -> None:
    """``OutboxRelay(store, connect, publish, *, batch_size=100, ...)`` and its loop."""
    check_signature(
        OutboxRelay,
        [P("store"), P("connect"), P("publish")],
        [
            P("batch_size", KW, 100),
            P("lease_seconds", KW, 30),
            P("retry_policy", KW, None),
            P("clock", KW, None),
        ],
    )
    check_signature(OutboxRelay.run_once, [])
    check_signature(OutboxRelay.run_forever, [P("stop")])


def test_outbox_relay_run_once_publishes_in_order(
    db_connect: tuple[str, Callable[[], Any]], clock: ManualClock
) -> None:
    """``run_once()`` publishes every pending record once, in enqueue order."""
    dialect, connect = db_connect
    store = _outbox_store(connect, clock, dialect)
    records = [OutboxRecord.create("acc-1", "Changed", {"i": i}) for i in range(5)]
    _enqueue(connect, store, records)
    sent: list[Any] = []

    relay = OutboxRelay(store, connect, sent.append, clock=clock)
    relay.run_once()
    relay.run_once()
    relay.close()

    assert [r.record_id for r in sent] == [r.record_id for r in records]
    conn = connect()
    assert store.stats(conn).published == 5
    conn.close()


def test_outbox_relay_run_forever_stops_on_the_event(
    tmp_path: Path, clock: ManualClock
) -> None:
    """``run_forever(stop)`` relays until ``stop`` is set, then returns."""
    connect = _sqlite_factory(tmp_path / "f.db")
    store = _outbox_store(connect, clock)
    _enqueue(
        connect, store, [OutboxRecord.create("a", "T", {"i": i}) for i in range(3)]
    )
    stop = threading.Event()
    sent: list[Any] = []

    def publish(record: Any) -> None:
        sent.append(record)
        if len(sent) == 3:
            stop.set()

    relay = OutboxRelay(store, connect, publish, clock=clock)
    worker = threading.Thread(target=relay.run_forever, args=(stop,))
    worker.start()
    worker.join(timeout=30)

    assert not worker.is_alive()
    assert len(sent) == 3


def test_inbox_signatures() -> None:
    """``Inbox(dialect, *, table=...)`` and ``process(..., *, consumer="default")``."""
    check_signature(Inbox, [P("dialect", default=EITHER)], [P("table", KW, "inbox")])
    check_signature(Inbox.create_schema, [P("conn")])
    check_signature(
        Inbox.process,
        [P("conn"), P("message_id"), P("handler")],
        [P("consumer", KW, "default")],
    )


def test_inbox_runs_each_message_once_per_consumer(
    db_connect: tuple[str, Callable[[], Any]], clock: ManualClock
) -> None:
    """``process`` runs the handler once per message id and consumer."""
    dialect, connect = db_connect
    inbox = Inbox(dialect)
    conn = connect()
    inbox.create_schema(conn)
    conn.commit()
    handled: list[str] = []

    inbox.process(conn, "m-1", lambda c: handled.append("default"))
    conn.commit()
    inbox.process(conn, "m-1", lambda c: handled.append("again"))
    inbox.process(conn, "m-1", lambda c: handled.append("billing"), consumer="billing")
    conn.commit()
    conn.close()

    assert handled == ["default", "billing"]


def test_inbox_table_option(tmp_path: Path) -> None:
    """``Inbox(..., table=...)`` creates and uses that table."""
    conn = sqlite3.connect(tmp_path / "i.db")
    inbox = Inbox("sqlite", table="seen_messages")
    inbox.create_schema(conn)
    inbox.process(conn, "m-1", lambda c: None)

    assert conn.execute("SELECT COUNT(*) FROM seen_messages").fetchone() == (1,)
    conn.close()


def test_claim_lease_expires_and_fences_the_old_token(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Past ``lease_seconds`` another claim takes the records; the old token fails."""
    connect = _sqlite_factory(tmp_path / "lease.db")
    store = _outbox_store(connect, clock)
    _enqueue(connect, store, [OutboxRecord.create("a", "T", {})])
    conn = connect()

    first = store.claim(conn, 5, lease_seconds=5)
    conn.commit()
    clock.advance(4)
    assert store.claim(conn, 5).records == ()
    clock.advance(2)
    second = store.claim(conn, 5)
    conn.commit()
    ids = [r.record_id for r in second.records]

    assert ids == [r.record_id for r in first.records]
    assert store.mark_published(conn, ids, first.token) == 0
    assert store.mark_published(conn, ids, second.token) == 1
    conn.close()


def test_inbox_raises_idempotency_conflict_for_a_changed_payload(
    tmp_path: Path,
) -> None:
    """The same message id with another payload hash is an IdempotencyConflictError."""
    conn = sqlite3.connect(tmp_path / "c.db")
    inbox = Inbox("sqlite")
    inbox.create_schema(conn)
    inbox.process(conn, "m-1", lambda c: None, payload_hash="aaa")

    with pytest.raises(IdempotencyConflictError):
        inbox.process(conn, "m-1", lambda c: None, payload_hash="bbb")
    conn.close()


def test_idempotency_conflict_error_is_an_input_error() -> None:
    """IdempotencyConflictError is an IntegrationError and a ValueError."""
    assert issubclass(IdempotencyConflictError, IntegrationError)
    assert issubclass(IdempotencyConflictError, ValueError)


# ==============================================================================
# kafka_envelope (0.2.0)
# ==============================================================================


def test_kafka_envelope_signatures() -> None:
    """KafkaEventEnvelope, ``create`` and ``from_consumer_record`` keep 0.2.0 order."""
    check_signature(
        KafkaEventEnvelope,
        [
            P("event_id"),
            P("event_type"),
            P("source_system"),
            P("payload"),
            P("topic"),
            P("partition_key"),
            P("schema_version", default="1.0"),
            P("created_at", default=ANY_DEFAULT),
            P("headers", default=ANY_DEFAULT),
            P("partition", default=None),
            P("offset", default=None),
            P("dead_letter_reason", default=None),
        ],
    )
    check_signature(
        KafkaEventEnvelope.create,
        [
            P("event_type"),
            P("source_system"),
            P("payload"),
            P("topic"),
            P("partition_key"),
            P("schema_version", default="1.0"),
            P("headers", default=None),
        ],
    )
    check_signature(
        KafkaEventEnvelope.from_consumer_record,
        [P("topic"), P("partition"), P("offset"), P("key"), P("value")],
    )
    check_signature(KafkaEventEnvelope.mark_dead_letter, [P("reason")])


def test_kafka_envelope_defaults() -> None:
    """A bare envelope has empty headers, no partition/offset/reason, UTC now."""
    env = KafkaEventEnvelope("e", "T", "crm", {}, "topic", "key")
    other = KafkaEventEnvelope("e", "T", "crm", {}, "topic", "key")

    assert env.schema_version == "1.0"
    assert env.headers == {}
    assert env.headers is not other.headers
    assert (env.partition, env.offset, env.dead_letter_reason) == (None, None, None)
    assert env.created_at.utcoffset() == timedelta(0)


def test_to_producer_record_shape() -> None:
    """``to_producer_record()``: topic, key, value bytes, headers [(str, bytes)]."""
    env = KafkaEventEnvelope.create(
        "AccountUpdated",
        "crm",
        {"id": "a-1"},
        "crm.accounts",
        "a-1",
        headers={"trace": "t-1"},
    )

    record = env.to_producer_record()

    assert isinstance(record, dict)
    assert set(record) == {"topic", "key", "value", "headers"}
    assert record["topic"] == "crm.accounts"
    assert record["key"] in ("a-1", b"a-1")
    assert isinstance(record["value"], bytes)
    assert isinstance(record["headers"], list)
    headers: list[Any] = list(record["headers"])
    assert all(
        isinstance(h, tuple)
        and len(h) == 2
        and isinstance(h[0], str)
        and isinstance(h[1], bytes)
        for h in headers
    )
    assert ("trace", b"t-1") in record["headers"]
    json.loads(record["value"])


def test_producer_record_round_trips_through_from_consumer_record() -> None:
    """What ``to_producer_record`` writes, ``from_consumer_record`` reads back."""
    env = KafkaEventEnvelope.create(
        "AccountUpdated",
        "crm",
        {"id": "a-1", "n": [1, 2]},
        "crm.accounts",
        "a-1",
        "2.0",
    )
    record = env.to_producer_record()
    key = record["key"]

    back = KafkaEventEnvelope.from_consumer_record(
        "crm.accounts", 3, 42, key, record["value"]
    )

    assert (back.event_id, back.event_type, back.source_system) == (
        env.event_id,
        "AccountUpdated",
        "crm",
    )
    assert back.payload == env.payload
    assert back.partition_key == "a-1"
    assert back.schema_version == "2.0"
    assert (back.topic, back.partition, back.offset) == ("crm.accounts", 3, 42)
    assert back.created_at == env.created_at


def test_create_assigns_distinct_ids() -> None:
    """``create`` assigns each envelope a fresh id."""
    first = KafkaEventEnvelope.create("T", "s", {}, "t", "k")
    second = KafkaEventEnvelope.create("T", "s", {}, "t", "k")

    assert first.event_id != second.event_id
    uuid.UUID(first.event_id)


def test_from_consumer_record_reads_a_0_2_0_producer_value() -> None:
    """A value written by the 0.2.0 producer (str key, body headers) still decodes."""
    value = json.dumps(
        {
            "event_id": "e-1",
            "event_type": "T",
            "source_system": "crm",
            "payload": {"a": 1},
            "topic": "t",
            "schema_version": "1.0",
            "created_at": "2024-01-01T00:00:00+00:00",
            "headers": {},
        }
    ).encode()

    env = KafkaEventEnvelope.from_consumer_record("t", 0, 5, "acc-1", value)

    assert (env.event_id, env.payload, env.partition_key) == ("e-1", {"a": 1}, "acc-1")
    assert env.created_at == datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_from_consumer_record_accepts_a_str_value_as_in_0_2_0() -> None:
    """A JSON text value, accepted by 0.2.0, still decodes."""
    value = KafkaEventEnvelope.create(
        "T", "s", {"a": 1}, "t", "k"
    ).to_producer_record()["value"]

    env = KafkaEventEnvelope.from_consumer_record(
        "t",
        0,
        1,
        "k",
        value.decode(),
    )

    assert env.payload == {"a": 1}


def test_mark_dead_letter_returns_a_copy_on_the_dlq_topic() -> None:
    """``mark_dead_letter(reason)`` copies onto ``<topic>.dlq``; the original stays."""
    env = KafkaEventEnvelope.create("T", "crm", {"a": 1}, "crm.accounts", "k")

    dead = env.mark_dead_letter("schema mismatch")

    assert dead is not env
    assert dead.topic == "crm.accounts.dlq"
    assert dead.dead_letter_reason == "schema mismatch"
    assert dead.event_id == env.event_id
    assert dead.payload == env.payload
    assert env.topic == "crm.accounts"
    assert env.dead_letter_reason is None
    assert dead.to_producer_record()["topic"] == "crm.accounts.dlq"


# -- kafka_envelope beyond 0.2.0 --------------------------------------------------

# Java client's Utils.murmur2 results (signed 32-bit) from Kafka's own tests.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), list(JAVA_MURMUR2.items()))
def test_murmur2_matches_the_java_client(data: bytes, expected: int) -> None:
    """``murmur2(data: bytes) -> int`` gives the Java client's 32-bit hash."""
    value = murmur2(data)

    assert isinstance(value, int)
    assert value & 0xFFFFFFFF == expected & 0xFFFFFFFF


@pytest.mark.parametrize(("data", "expected"), list(JAVA_MURMUR2.items()))
@pytest.mark.parametrize("partitions", [1, 3, 12, 100])
def test_partition_for_matches_the_java_default_partitioner(
    data: bytes, expected: int, partitions: int
) -> None:
    """``partition_for(key, n)`` is ``toPositive(murmur2(key)) % n`` as in Java."""
    wanted = (expected & 0x7FFFFFFF) % partitions

    assert partition_for(data, partitions) == wanted
    assert partition_for(data.decode(), partitions) == wanted


def test_partition_for_agrees_with_kafka_python() -> None:
    """Keys land on the partition kafka-python's default partitioner picks."""
    default = pytest.importorskip("kafka.partitioner.default")
    rng = random.Random(3)
    for _ in range(300):
        key = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        n = rng.randrange(1, 64)
        expected = (default.murmur2(key) & 0x7FFFFFFF) % n
        assert partition_for(key, n) == expected


def test_wire_format_round_trips_the_confluent_framing() -> None:
    """``to_wire_format`` frames 0 + 4-byte schema id; ``from_wire_format`` reads it."""
    framed = to_wire_format(258, b"payload")

    assert framed == b"\x00\x00\x00\x01\x02payload"
    assert from_wire_format(framed) == (258, b"payload")


def test_cloudevents_binary_and_structured_round_trip() -> None:
    """Both CloudEvents Kafka modes are read back by ``from_cloudevents_record``."""
    env = KafkaEventEnvelope.create("AccountUpdated", "crm", {"a": 1}, "crm.acc", "k-1")

    for record in (env.to_cloudevents_binary(), env.to_cloudevents_structured()):
        assert set(record) >= {"topic", "key", "value", "headers"}
        back = KafkaEventEnvelope.from_cloudevents_record(
            record["key"], record["value"], record["headers"]
        )
        assert (back.event_id, back.event_type, back.source_system, back.payload) == (
            env.event_id,
            "AccountUpdated",
            "crm",
            {"a": 1},
        )
    binary_headers = dict(env.to_cloudevents_binary()["headers"])
    assert binary_headers["ce_specversion"] == b"1.0"
    assert binary_headers["ce_id"] == env.event_id.encode()


def test_envelope_dead_letter_routes_to_the_dlq() -> None:
    """``dead_letter(...)`` builds a record for ``<topic>.dlq`` carrying the error."""
    env = KafkaEventEnvelope.create("T", "crm", {"a": 1}, "orders", "k")

    record = env.dead_letter(ValueError("bad amount"))

    assert record["topic"] == "orders.dlq"
    assert any(b"bad amount" in value for _, value in record["headers"])
    context = DeadLetterContext.from_headers(record["headers"])
    assert context.topic == "orders"


def test_dead_lettering_logs_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """Dead-lettering a record logs ERROR: a person must act."""
    caplog.set_level(logging.DEBUG, logger="integration_automation_patterns")
    env = KafkaEventEnvelope.create("T", "crm", {"a": 1}, "orders", "k")

    env.dead_letter(ValueError("bad amount"))

    assert any(r.levelno == logging.ERROR for r in _records(caplog, "kafka_envelope"))


def test_retry_topics_route_through_delays_then_the_dlq() -> None:
    """``RetryTopics`` sends a failure to a retry topic, then to the DLQ."""
    topics = RetryTopics("orders", (1.0, 10.0))
    headers: list[tuple[str, bytes]] = []
    seen: list[str] = []

    for _ in range(3):
        record = topics.route(RuntimeError("x"), b"k", b"v", headers)
        seen.append(record["topic"])
        headers = record["headers"]

    assert seen[-1] == "orders.dlq"
    assert len(set(seen[:2])) == 2
    assert all(t.startswith("orders") for t in seen)


def test_envelope_decode_error_carries_the_poison_record() -> None:
    """An undecodable record raises EnvelopeDecodeError that can dead-letter itself."""
    with pytest.raises(EnvelopeDecodeError) as caught:
        KafkaEventEnvelope.from_consumer_record("orders", 1, 9, b"k", b"garbage")

    record = caught.value.dead_letter()
    assert record["value"] == b"garbage"
    assert record["topic"].startswith("orders")


# ==============================================================================
# webhook_handler (0.2.0)
# ==============================================================================


def test_webhook_handler_signatures() -> None:
    """WebhookHandler and WebhookEvent keep their 0.2.0 parameters."""
    check_signature(
        WebhookHandler,
        [
            P("secret"),
            P("tolerance_seconds", default=300.0),
            P("timestamp_field", default="timestamp"),
            P("id_field", default="id"),
            P("type_field", default="type"),
        ],
    )
    check_signature(WebhookHandler.parse, [P("payload"), P("signature_header")])
    check_signature(
        WebhookEvent,
        [
            P("event_id"),
            P("event_type"),
            P("payload"),
            P("received_at", default=EITHER),
            P("raw", default=EITHER),
        ],
    )


def test_webhook_errors_are_value_errors() -> None:
    """WebhookSignatureError and WebhookReplayError are ValueErrors."""
    assert issubclass(WebhookSignatureError, ValueError)
    assert issubclass(WebhookReplayError, ValueError)


def _hex(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("style", ["sha256", "v1", "bare", "stripe"])
def test_webhook_handler_accepts_every_documented_header(style: str) -> None:
    """``parse`` takes sha256=, v1=, bare hex and Stripe's t=,v1= over "<t>.<body>"."""
    body = json.dumps({"id": "evt_1", "type": "invoice.paid", "amount": 5}).encode()
    now = int(time.time())
    header = {
        "sha256": f"sha256={_hex(body)}",
        "v1": f"v1={_hex(body)}",
        "bare": _hex(body),
        "stripe": f"t={now},v1={_hex(str(now).encode() + b'.' + body)}",
    }[style]

    event = WebhookHandler(SECRET).parse(body, header)

    assert isinstance(event, WebhookEvent)
    assert event.event_id == "evt_1"
    assert event.event_type == "invoice.paid"
    assert event.payload == {"id": "evt_1", "type": "invoice.paid", "amount": 5}
    assert event.raw == body


def test_stripe_header_over_the_body_alone_is_rejected() -> None:
    """The Stripe form signs "<t>.<body>"; an HMAC of the body alone fails."""
    body = b'{"id": "evt_1"}'
    now = int(time.time())

    with pytest.raises(WebhookSignatureError):
        WebhookHandler(SECRET).parse(body, f"t={now},v1={_hex(body)}")


@pytest.mark.parametrize("header", [f"sha256={'0' * 64}", "v1=" + "ab" * 32, "cd" * 32])
def test_webhook_handler_rejects_a_wrong_signature(header: str) -> None:
    """A signature that does not match raises WebhookSignatureError."""
    with pytest.raises(WebhookSignatureError):
        WebhookHandler(SECRET).parse(b'{"id": "1"}', header)


def test_webhook_handler_rejects_another_secret() -> None:
    """A body signed with another secret is refused."""
    body = b'{"id": "1"}'

    with pytest.raises(WebhookSignatureError):
        WebhookHandler(SECRET).parse(body, f"sha256={_hex(body, 'other')}")


def test_webhook_handler_custom_fields_and_unknown_type() -> None:
    """Id and type come from ``id_field``/``type_field``; "unknown" type if absent."""
    body = json.dumps({"eventId": "E-9", "kind": "order.closed"}).encode()
    handler = WebhookHandler(SECRET, id_field="eventId", type_field="kind")

    event = handler.parse(body, _hex(body))
    plain = WebhookHandler(SECRET).parse(b'{"id": "x"}', _hex(b'{"id": "x"}'))

    assert (event.event_id, event.event_type) == ("E-9", "order.closed")
    assert plain.event_type == "unknown"


@pytest.mark.parametrize("offset", [-1000, 1000])
def test_webhook_handler_refuses_timestamps_outside_tolerance(offset: int) -> None:
    """A body timestamp older or newer than the tolerance raises WebhookReplayError."""
    body = json.dumps({"id": "1", "timestamp": int(time.time()) + offset}).encode()

    with pytest.raises(WebhookReplayError):
        WebhookHandler(SECRET).parse(body, _hex(body))
    with pytest.raises(WebhookReplayError):
        WebhookHandler(SECRET, 300.0).parse(body, _hex(body))


def test_webhook_handler_tolerance_window_and_field(clock: ManualClock) -> None:
    """Within tolerance passes; a custom ``timestamp_field`` is read; None disables."""
    now = int(clock.time())
    fresh = json.dumps({"id": "1", "sent": now - 100}).encode()
    stale = json.dumps({"id": "2", "sent": now - 100, "timestamp": 1}).encode()

    WebhookHandler(SECRET, 120, timestamp_field="sent", clock=clock).parse(
        fresh, _hex(fresh)
    )
    with pytest.raises(WebhookReplayError):
        WebhookHandler(SECRET, 60, timestamp_field="sent", clock=clock).parse(
            fresh, _hex(fresh)
        )
    WebhookHandler(SECRET, None, clock=clock).parse(stale, _hex(stale))
    old_body = json.dumps({"id": "3", "timestamp": now - 10_000}).encode()
    WebhookHandler(SECRET, tolerance_seconds=None).parse(old_body, _hex(old_body))


def test_webhook_handler_without_timestamp_skips_replay_check() -> None:
    """A body without ``timestamp_field`` is not checked for age."""
    body = b'{"id": "1", "type": "t"}'

    assert WebhookHandler(SECRET, 1.0).parse(body, _hex(body)).event_id == "1"


# -- webhook_handler beyond 0.2.0 --------------------------------------------------


@pytest.mark.parametrize("index", range(12), ids=VERIFIER_IDS)
def test_verifier_sign_verify_parse_round_trip(index: int, clock: ManualClock) -> None:
    """Each verifier's ``sign`` headers pass ``verify`` and ``parse`` gives an event."""
    verifier, context = _verifiers_with_context(clock)[index]
    body = json.dumps({"id": "evt_1", "type": "thing.happened"}).encode()

    headers = verifier.sign(body, **context)
    verifier.verify(body, headers, **context)
    event = verifier.parse(body, headers, **context)

    assert isinstance(headers, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    assert isinstance(event, WebhookEvent)
    assert event.event_id
    assert event.payload is not None
    assert event.raw == body


@pytest.mark.parametrize("index", range(12), ids=VERIFIER_IDS)
def test_verifier_refuses_a_tampered_body(index: int, clock: ManualClock) -> None:
    """A changed body fails with WebhookSignatureError."""
    verifier, context = _verifiers_with_context(clock)[index]
    body = json.dumps({"id": "evt_1", "amount": 10}).encode()
    headers = verifier.sign(body, **context)

    with pytest.raises(WebhookSignatureError):
        verifier.verify(body.replace(b"10", b"99"), headers, **context)
    with pytest.raises(WebhookSignatureError):
        verifier.parse(body.replace(b"10", b"99"), headers, **context)


@pytest.mark.parametrize("index", range(12), ids=VERIFIER_IDS)
def test_verifier_reports_missing_headers_as_format_errors(
    index: int, clock: ManualClock
) -> None:
    """A request without the scheme's headers fails with WebhookFormatError."""
    verifier, context = _verifiers_with_context(clock)[index]

    with pytest.raises(WebhookFormatError):
        verifier.verify(b"{}", {}, **context)


@pytest.mark.parametrize("index", range(12), ids=VERIFIER_IDS)
def test_verifier_methods_have_the_documented_shape(
    index: int, clock: ManualClock
) -> None:
    """``verify(body, headers, **ctx)``, ``parse(...)`` and ``sign(body, **ctx)``."""
    verifier, _ = _verifiers_with_context(clock)[index]

    for method in ("verify", "parse"):
        params = own_parameters(getattr(verifier, method))
        assert [p.name for p in params[:2]] == ["body", "headers"]
        assert all(p.kind is KW for p in params[2:-1])
        assert params[-1].kind is inspect.Parameter.VAR_KEYWORD
    sign_params = own_parameters(verifier.sign)
    assert sign_params[0].name == "body"
    assert all(p.kind is KW for p in sign_params[1:])


def test_headers_are_looked_up_case_insensitively(clock: ManualClock) -> None:
    """Verifiers find their headers whatever the case the framework used."""
    verifier = GitHubVerifier(SECRET, clock=clock)
    body = b'{"id": 1}'
    headers = {k.lower(): v for k, v in verifier.sign(body).items()}

    verifier.verify(body, headers)


def test_stripe_verifier_window(clock: ManualClock) -> None:
    """Stripe signatures older than the tolerance raise WebhookReplayError."""
    verifier = StripeVerifier("whsec_" + SECRET, clock=clock)
    body = b'{"id": "evt_1"}'
    headers = verifier.sign(body)

    clock.advance(301)

    with pytest.raises(WebhookReplayError):
        verifier.verify(body, headers)


def test_stripe_verifier_agrees_with_the_stripe_sdk(clock: ManualClock) -> None:
    """The Stripe SDK accepts what ``StripeVerifier.sign`` produces."""
    stripe = pytest.importorskip("stripe")
    secret = "whsec_" + SECRET
    body = b'{"id": "evt_1", "object": "event", "type": "invoice.paid"}'
    header = StripeVerifier(secret, clock=SYSTEM_CLOCK).sign(body)["Stripe-Signature"]

    stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance=300)


def test_memory_replay_guard_turns_a_second_delivery_into_an_error(
    clock: ManualClock,
) -> None:
    """With a MemoryReplayGuard the same delivery id is refused the second time."""
    guard = MemoryReplayGuard(clock=clock)
    verifier = StripeVerifier("whsec_" + SECRET, clock=clock, replay_guard=guard)
    body = b'{"id": "evt_1", "type": "t"}'
    headers = verifier.sign(body)

    verifier.parse(body, headers)

    with pytest.raises(WebhookReplayError):
        verifier.parse(body, headers)
    assert isinstance(MemoryReplayGuard(), MemoryReplayGuard)


def test_webhook_handler_takes_a_replay_guard(clock: ManualClock) -> None:
    """The 0.2.0 handler also refuses a repeated id when given a guard."""
    handler = WebhookHandler(
        SECRET, clock=clock, replay_guard=MemoryReplayGuard(clock=clock)
    )
    body = b'{"id": "evt_9"}'

    handler.parse(body, _hex(body))
    with pytest.raises(WebhookReplayError):
        handler.parse(body, _hex(body))


# ==============================================================================
# cdc_event (0.2.0)
# ==============================================================================

DEBEZIUM_UPDATE: dict[str, Any] = {
    "op": "u",
    "before": {"id": 1, "email": "old@example.com", "name": "Ann"},
    "after": {"id": 1, "email": "new@example.com", "name": "Ann"},
    "source": {
        "connector": "postgresql",
        "db": "shop",
        "schema": "public",
        "table": "customers",
        "lsn": 33845816,
        "ts_ms": 1700000000000,
        "name": "srv",
    },
    "ts_ms": 1700000000500,
    "transaction": {"id": "571:33845816", "total_order": 1, "data_collection_order": 1},
}


def test_cdc_operation_values() -> None:
    """CDCOperation values are the upper-case names, with MESSAGE and TOMBSTONE."""
    names = {
        "INSERT",
        "UPDATE",
        "DELETE",
        "SNAPSHOT",
        "TRUNCATE",
        "MESSAGE",
        "TOMBSTONE",
    }

    assert {m.name for m in CDCOperation} >= names
    for name in names:
        assert CDCOperation[name].value == name


def test_cdc_source_metadata_signature() -> None:
    """CDCSourceMetadata keeps its 0.2.0 positional fields and defaults."""
    check_signature(
        CDCSourceMetadata,
        [
            P("database"),
            P("schema"),
            P("table"),
            P("connector", default="unknown"),
            P("lsn", default=None),
            P("server_id", default=None),
        ],
    )
    meta = CDCSourceMetadata("db", "public", "t")
    assert (meta.connector, meta.lsn, meta.server_id) == ("unknown", None, None)


def test_cdc_event_signature_and_direct_construction() -> None:
    """CDCEvent keeps its 0.2.0 order; defaults give a str id and a UTC time."""
    check_signature(
        CDCEvent,
        [
            P("operation"),
            P("source"),
            P("before", default=None),
            P("after", default=None),
            P("event_id", default=ANY_DEFAULT),
            P("captured_at", default=ANY_DEFAULT),
            P("transaction_id", default=None),
        ],
    )
    source = CDCSourceMetadata("db", "public", "t")
    event = CDCEvent(CDCOperation.INSERT, source, None, {"id": 1})
    given = CDCEvent(
        CDCOperation.INSERT,
        source,
        None,
        {"id": 1},
        "evt-1",
        datetime(2024, 1, 1, tzinfo=timezone.utc),
        "tx-1",
    )

    assert isinstance(event.event_id, str)
    assert event.event_id
    assert isinstance(event.captured_at, datetime)
    assert event.captured_at.utcoffset() == timedelta(0)
    assert (given.event_id, given.transaction_id) == ("evt-1", "tx-1")
    assert given.captured_at == datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("op", "operation"),
    [
        ("c", CDCOperation.INSERT),
        ("u", CDCOperation.UPDATE),
        ("d", CDCOperation.DELETE),
        ("r", CDCOperation.SNAPSHOT),
        ("t", CDCOperation.TRUNCATE),
    ],
)
def test_from_debezium_maps_operation_codes(op: str, operation: CDCOperation) -> None:
    """Debezium's c/u/d/r/t codes map to INSERT/UPDATE/DELETE/SNAPSHOT/TRUNCATE."""
    payload = dict(DEBEZIUM_UPDATE, op=op)
    if op == "c":
        payload["before"] = None
    if op == "d":
        payload["after"] = None
    if op == "t":
        payload["before"] = payload["after"] = None

    assert CDCEvent.from_debezium(payload).operation is operation


def test_from_debezium_reads_the_0_2_0_payload() -> None:
    """``from_debezium(payload)`` reads rows, source, capture time and transaction."""
    event = CDCEvent.from_debezium(DEBEZIUM_UPDATE)

    assert event.before == DEBEZIUM_UPDATE["before"]
    assert event.after == DEBEZIUM_UPDATE["after"]
    assert (event.source.database, event.source.schema, event.source.table) == (
        "shop",
        "public",
        "customers",
    )
    assert event.source.connector == "debezium"
    assert event.source.lsn == "33845816"
    assert event.transaction_id == "571:33845816"
    assert event.captured_at == datetime.fromtimestamp(1700000000, timezone.utc)


@pytest.mark.parametrize("op", ["x", "", "create", None])
def test_unknown_debezium_op_message(op: object) -> None:
    """An unknown ``op`` raises "Unrecognised Debezium operation code..."."""
    with pytest.raises(
        ValueError, match=r"^Unrecognised Debezium operation code"
    ) as caught:
        CDCEvent.from_debezium(dict(DEBEZIUM_UPDATE, op=op))

    assert isinstance(caught.value, CDCParseError)


def test_changed_fields_only_for_updates() -> None:
    """``changed_fields()`` lists the updated columns, and nothing for non-updates."""
    update = CDCEvent.from_debezium(DEBEZIUM_UPDATE)
    insert = CDCEvent.from_debezium(dict(DEBEZIUM_UPDATE, op="c", before=None))

    assert update.changed_fields() == {"email"}
    assert isinstance(update.changed_fields(), set)
    assert insert.changed_fields() == set()


def test_to_audit_dict_is_json_and_holds_no_row_values() -> None:
    """``to_audit_dict()`` is JSON-serialisable and carries no row values."""
    audit = CDCEvent.from_debezium(DEBEZIUM_UPDATE).to_audit_dict()

    text = json.dumps(audit)
    assert "old@example.com" not in text
    assert "new@example.com" not in text
    assert "Ann" not in text
    assert audit["operation"] == "UPDATE"
    assert "email" in text


# -- cdc_event beyond 0.2.0 --------------------------------------------------------


def test_from_debezium_signature() -> None:
    """``from_debezium(value, *, key=None)``."""
    check_signature(CDCEvent.from_debezium, [P("value")], [P("key", KW, None)])
    for name in ("from_maxwell", "from_dms", "from_wal2json"):
        assert own_parameters(getattr(CDCEvent, name))[0].name == "value"


def test_from_debezium_reads_kafka_bytes_with_schema_envelope_and_key() -> None:
    """A raw Kafka value (JSON converter envelope) and key decode to the same event."""
    value = json.dumps(
        {"schema": {"type": "struct"}, "payload": DEBEZIUM_UPDATE}
    ).encode()
    key = json.dumps({"schema": {"type": "struct"}, "payload": {"id": 1}}).encode()

    from_bytes = CDCEvent.from_debezium(value, key=key)
    from_dict = CDCEvent.from_debezium(DEBEZIUM_UPDATE)

    assert from_bytes.operation is CDCOperation.UPDATE
    assert from_bytes.after == DEBEZIUM_UPDATE["after"]
    assert from_bytes.event_id == from_dict.event_id


def test_debezium_tombstone_is_a_tombstone_event() -> None:
    """A null value with a key is a TOMBSTONE."""
    event = CDCEvent.from_debezium(None, key=b'{"id": 1}')

    assert event.operation is CDCOperation.TOMBSTONE


def test_cdc_event_ids_are_deterministic_content_ids() -> None:
    """The same change gives the same id every time; a different one does not."""
    first = CDCEvent.from_debezium(json.dumps(DEBEZIUM_UPDATE).encode())
    again = CDCEvent.from_debezium(json.loads(json.dumps(DEBEZIUM_UPDATE)))
    other = CDCEvent.from_debezium(
        dict(
            DEBEZIUM_UPDATE,
            ts_ms=1700000000999,
            source=dict(DEBEZIUM_UPDATE["source"], lsn=1),
        )
    )

    assert first.event_id == again.event_id
    assert first.event_id != other.event_id
    uuid.UUID(first.event_id)


def test_from_maxwell_reads_an_update() -> None:
    """``from_maxwell`` rebuilds the before row from Maxwell's ``old``."""
    value = {
        "database": "shop",
        "table": "customers",
        "type": "update",
        "ts": 1700000000,
        "xid": 42,
        "commit": True,
        "data": {"id": 1, "email": "new@example.com"},
        "old": {"email": "old@example.com"},
    }

    event = CDCEvent.from_maxwell(json.dumps(value).encode())

    assert event.operation is CDCOperation.UPDATE
    assert event.after == {"id": 1, "email": "new@example.com"}
    assert event.before == {"id": 1, "email": "old@example.com"}
    assert event.changed_fields() == {"email"}
    assert event.source.table == "customers"
    assert event.transaction_id == "42"


def test_from_dms_reads_an_insert() -> None:
    """``from_dms`` reads AWS DMS's data/metadata record."""
    value = {
        "data": {"id": 1, "email": "a@example.com"},
        "metadata": {
            "timestamp": "2023-11-14T22:13:20.000000Z",
            "record-type": "data",
            "operation": "insert",
            "partition-key-type": "schema-table",
            "schema-name": "public",
            "table-name": "customers",
            "transaction-id": 7,
        },
    }

    event = CDCEvent.from_dms(value)

    assert event.operation is CDCOperation.INSERT
    assert event.after == {"id": 1, "email": "a@example.com"}
    assert (event.source.schema, event.source.table) == ("public", "customers")


@pytest.mark.parametrize("version", [1, 2])
def test_from_wal2json_returns_a_list_of_events(version: int) -> None:
    """``from_wal2json`` reads both format versions into a list of events."""
    value: dict[str, Any]
    if version == 2:
        value = {
            "action": "I",
            "schema": "public",
            "table": "customers",
            "columns": [
                {"name": "id", "type": "integer", "value": 1},
                {"name": "email", "type": "text", "value": "a@x"},
            ],
        }
    else:
        value = {
            "xid": 5,
            "change": [
                {
                    "kind": "insert",
                    "schema": "public",
                    "table": "customers",
                    "columnnames": ["id", "email"],
                    "columntypes": ["integer", "text"],
                    "columnvalues": [1, "a@x"],
                }
            ],
        }

    events = CDCEvent.from_wal2json(json.dumps(value).encode())

    assert isinstance(events, list)
    assert len(events) == 1
    assert events[0].operation is CDCOperation.INSERT
    assert events[0].after == {"id": 1, "email": "a@x"}


def test_debezium_transaction_reads_a_boundary_message() -> None:
    """DebeziumTransaction reads a transaction metadata message."""
    message = {
        "status": "END",
        "id": "571:33845816",
        "ts_ms": 1700000000000,
        "event_count": 2,
        "data_collections": [{"data_collection": "public.customers", "event_count": 2}],
    }

    tx = DebeziumTransaction.from_message(json.dumps(message).encode())

    assert tx.status == "END"
    assert tx.transaction_id == "571:33845816"
    assert tx.event_count == 2


# ==============================================================================
# sync_boundary (0.2.0)
# ==============================================================================


def test_record_authority_values() -> None:
    """RecordAuthority has SYSTEM_A, SYSTEM_B, SHARED and MANUAL."""
    assert [m.name for m in RecordAuthority] == [
        "SYSTEM_A",
        "SYSTEM_B",
        "SHARED",
        "MANUAL",
    ]


def test_sync_conflict_signature() -> None:
    """SyncConflict keeps its 0.2.0 positional fields."""
    check_signature(
        SyncConflict,
        [
            P("field_name"),
            P("value_a"),
            P("value_b"),
            P("record_id"),
            P("last_sync_value", default=None),
            P("detected_at", default=ANY_DEFAULT),
            P("system_a_modified_at", default=None),
            P("system_b_modified_at", default=None),
        ],
    )
    conflict = SyncConflict("email", "a", "b", "r-1")
    assert conflict.detected_at.utcoffset() == timedelta(0)


def test_sync_conflict_last_writer() -> None:
    """``last_writer()`` names the later system, or None without a clear answer."""
    early = datetime(2024, 1, 1, tzinfo=timezone.utc)
    late = early + timedelta(minutes=1)

    def writer(a: datetime | None, b: datetime | None) -> RecordAuthority | None:
        return SyncConflict("f", 1, 2, "r", None, early, a, b).last_writer()

    assert writer(late, early) is RecordAuthority.SYSTEM_A
    assert writer(early, late) is RecordAuthority.SYSTEM_B
    assert writer(early, early) is None
    assert writer(None, late) is None


def test_sync_boundary_signature_and_defaults() -> None:
    """SyncBoundary keeps its 0.2.0 order; defaults are empty and not shared."""
    check_signature(
        SyncBoundary,
        [
            P("record_type"),
            P("system_a_id"),
            P("system_b_id"),
            P("field_authority", default=ANY_DEFAULT),
            P("excluded_fields", default=ANY_DEFAULT),
            P("allow_system_b_override", default=False),
        ],
    )
    check_signature(
        SyncBoundary.detect_conflict,
        [
            P("field_name"),
            P("value_a"),
            P("value_b"),
            P("record_id"),
            P("last_sync_value", default=None),
            P("system_a_modified_at", default=None),
            P("system_b_modified_at", default=None),
        ],
    )
    one, two = SyncBoundary("c", "crm", "erp"), SyncBoundary("c", "crm", "erp")
    assert (one.field_authority, one.excluded_fields) == ({}, set())
    assert one.field_authority is not two.field_authority


def _contact_boundary() -> SyncBoundary:
    return SyncBoundary(
        "contact",
        "crm",
        "erp",
        {
            "email": RecordAuthority.SYSTEM_A,
            "address": RecordAuthority.SYSTEM_B,
            "phone": RecordAuthority.SHARED,
            "notes": RecordAuthority.MANUAL,
            "score": RecordAuthority.SYSTEM_A,
        },
        {"score"},
    )


def test_sync_boundary_queries() -> None:
    """``authority_for``, ``is_synced``, ``synced_fields`` and ``fields_owned_by``."""
    boundary = _contact_boundary()

    assert boundary.authority_for("email") is RecordAuthority.SYSTEM_A
    assert boundary.authority_for("score") is None
    assert boundary.authority_for("unknown") is None
    assert boundary.is_synced("notes")
    assert not boundary.is_synced("score")
    assert boundary.synced_fields() == ["email", "address", "phone", "notes"]
    assert boundary.fields_owned_by(RecordAuthority.SYSTEM_A) == ["email"]


def test_detect_conflict_semantics() -> None:
    """Only fields both sides changed away from the last sync value conflict."""
    boundary = _contact_boundary()
    at_a = datetime(2024, 1, 2, tzinfo=timezone.utc)
    at_b = datetime(2024, 1, 1, tzinfo=timezone.utc)

    assert boundary.detect_conflict("score", 1, 2, "r") is None
    assert boundary.detect_conflict("phone", "1", "1", "r") is None
    assert boundary.detect_conflict("phone", "2", "1", "r", "1") is None
    assert boundary.detect_conflict("phone", "1", "2", "r", "1") is None
    first_sync = boundary.detect_conflict("phone", "1", "2", "r")
    conflict = boundary.detect_conflict("phone", "2", "3", "r-7", "1", at_a, at_b)

    assert isinstance(first_sync, SyncConflict)
    assert isinstance(conflict, SyncConflict)
    assert (conflict.field_name, conflict.value_a, conflict.value_b) == (
        "phone",
        "2",
        "3",
    )
    assert (conflict.record_id, conflict.last_sync_value) == ("r-7", "1")
    assert conflict.last_writer() is RecordAuthority.SYSTEM_A


# -- sync_boundary beyond 0.2.0 ----------------------------------------------------


def test_plan_sends_owned_changes_and_holds_manual_fields(clock: ManualClock) -> None:
    """``plan(...)`` returns a SyncPlan: owner changes flow, MANUAL goes to review."""
    boundary = SyncBoundary(
        "contact",
        "crm",
        "erp",
        {
            "email": RecordAuthority.SYSTEM_A,
            "address": RecordAuthority.SYSTEM_B,
            "notes": RecordAuthority.MANUAL,
        },
        clock=clock,
    )
    base = {"email": "a@x", "address": "Main St", "notes": "n"}
    a = {"email": "new@x", "address": "Main St", "notes": "n-a"}
    b = {"email": "a@x", "address": "Elm St", "notes": "n-b"}

    plan = boundary.plan("r-1", a, b, base)

    assert isinstance(plan, SyncPlan)
    assert plan.updates_for_b.get("email") == "new@x"
    assert plan.updates_for_a.get("address") == "Elm St"
    assert "notes" not in plan.updates_for_a
    assert "notes" not in plan.updates_for_b
    assert [c.field_name for c in plan.manual_review] == ["notes"]


def test_field_mapping_renames_and_converts(clock: ManualClock) -> None:
    """A FieldMapping writes B's name and representation."""
    boundary = SyncBoundary(
        "contact",
        "crm",
        "erp",
        {"email": RecordAuthority.SYSTEM_A},
        mappings=[FieldMapping("email", "EmailAddress", str.upper, str.lower)],
        clock=clock,
    )

    plan = boundary.plan(
        "r-1", {"email": "new@x"}, {"EmailAddress": "OLD@X"}, {"email": "old@x"}
    )

    assert dict(plan.updates_for_b) == {"EmailAddress": "NEW@X"}


def test_apply_writes_the_plan_into_both_records(clock: ManualClock) -> None:
    """Module-level ``apply(plan, a, b)`` returns both records with the writes made."""
    boundary = SyncBoundary(
        "contact",
        "crm",
        "erp",
        {"email": RecordAuthority.SYSTEM_A, "address": RecordAuthority.SYSTEM_B},
        clock=clock,
    )
    a = {"email": "new@x", "address": "Main"}
    b = {"email": "old@x", "address": "Elm"}
    plan = boundary.plan("r", a, b, {"email": "old@x", "address": "Main"})
    check_signature(apply, [P("plan"), P("a"), P("b")])

    result = apply(plan, a, b)

    new_a, new_b = result[0], result[1]
    assert new_a["address"] == "Elm"
    assert new_b["email"] == "new@x"
    assert a == {"email": "new@x", "address": "Main"}


def test_resolve_settles_a_reviewed_conflict(clock: ManualClock) -> None:
    """``resolve(conflict, value)`` writes the chosen value to both sides."""
    boundary = SyncBoundary(
        "c", "crm", "erp", {"notes": RecordAuthority.MANUAL}, clock=clock
    )
    plan = boundary.plan("r", {"notes": "from-a"}, {"notes": "from-b"}, {"notes": "n"})
    check_signature(resolve, [P("conflict"), P("value")])

    settled = resolve(plan.manual_review[0], "chosen")

    assert isinstance(settled, SyncPlan)
    assert settled.updates_for_a.get("notes") == "chosen"
    assert settled.updates_for_b.get("notes") == "chosen"


def test_sync_plan_rounds_settle_without_echo(clock: ManualClock) -> None:
    """After applying a plan and storing its base, the next plan writes nothing."""
    boundary = _contact_boundary()
    a = {"email": "new@x", "phone": "1"}
    b = {"email": "old@x", "phone": "1"}
    plan = boundary.plan("r", a, b, {"email": "old@x", "phone": "1"})
    new_a, new_b = apply(plan, a, b)[:2]

    again = boundary.plan("r", new_a, new_b, plan.next_base)

    assert not again.updates_for_a
    assert not again.updates_for_b
