"""Bad input to every CDC parser raises only the documented CDCParseError."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.cdc_event import (
    CDCEvent,
    CDCParseError,
    DebeziumTransaction,
)
from tests.reliability.fuzzing import fuzz_target
from tests.reliability.sizes import auxiliary, examples

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cdc"

PARSERS: dict[str, Callable[[Any], object]] = {
    "debezium": CDCEvent.from_debezium,
    "maxwell": CDCEvent.from_maxwell,
    "aws_dms": CDCEvent.from_dms,
    "wal2json": CDCEvent.from_wal2json,
    "transaction": DebeziumTransaction.from_message,
}


def _valid(area: str) -> list[Any]:
    return [
        json.loads(p.read_bytes())
        for p in sorted((FIXTURES / area).glob("*.json"))
        if not p.name.startswith("_")
    ]


VALID = {
    "debezium": _valid("debezium"),
    "maxwell": _valid("maxwell"),
    "aws_dms": _valid("aws_dms"),
    "wal2json": _valid("wal2json"),
    "transaction": [
        json.loads((FIXTURES / "debezium" / name).read_bytes())
        for name in ("pg_transaction_begin.json", "pg_transaction_end.json")
    ],
}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["c", "u", "d", "r", "t", "m", "{", '{"$oid": 1}', "1:2"])
)
JSON_TREES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


def attempt(parse: Callable[[Any], object], value: Any) -> None:
    """Parse ``value``; only CDCParseError may escape."""
    with contextlib.suppress(CDCParseError):
        parse(value)


@st.composite
def mutated(draw: st.DrawFn, area: str) -> Any:
    """A valid message of ``area`` with one value replaced, removed or added."""
    message = json.loads(json.dumps(draw(st.sampled_from(VALID[area]))))
    holders: list[Any] = list(_holders(message))
    holder: Any = draw(st.sampled_from(holders))
    if isinstance(holder, list):
        replace: bool = draw(st.booleans())
        if holder and replace:
            holder[draw(st.integers(0, len(holder) - 1))] = draw(JSON_TREES)
        else:
            holder.append(draw(JSON_TREES))
        return message
    keys = sorted(holder)
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if keys and action == "replace":
        holder[draw(st.sampled_from(keys))] = draw(JSON_TREES)
    elif keys and action == "drop":
        del holder[draw(st.sampled_from(keys))]
    else:
        holder[draw(st.text(max_size=8))] = draw(JSON_TREES)
    return message


def _holders(node: Any) -> Any:
    if isinstance(node, (dict, list)):
        yield node
        for child in node.values() if isinstance(node, dict) else node:
            yield from _holders(child)


def tree_or_mutation(data: st.DataObject, area: str) -> None:
    """Feed parser ``area`` a random JSON tree or a mutated valid message.

    Each is passed as the decoded value and as its JSON, in bytes or text;
    only CDCParseError may escape either way.
    """
    message = data.draw(JSON_TREES | mutated(area))
    text = json.dumps(message)

    attempt(PARSERS[area], message)
    attempt(PARSERS[area], text.encode() if data.draw(st.booleans()) else text)


@pytest.mark.parametrize("area", ["aws_dms", "debezium", "maxwell", "wal2json"])
@fuzz_target(
    "cdc_event",
    "random JSON trees and mutated valid messages",
    counts_toward="cdc_event {area}",
)
@settings(max_examples=examples(), deadline=None, database=None)
@given(data=st.data())
def test_trees_and_mutations_raise_only_parse_errors(
    area: str, data: st.DataObject
) -> None:
    """A random JSON value or a changed real message raises at most CDCParseError."""
    tree_or_mutation(data, area)


@fuzz_target(
    "cdc_event",
    "transaction markers, random JSON trees and mutated valid messages",
    counts_toward="cdc_event transaction",
)
@settings(max_examples=auxiliary(), deadline=None, database=None)
@given(data=st.data())
def test_transaction_trees_and_mutations_raise_only_parse_errors(
    data: st.DataObject,
) -> None:
    """Transaction markers, random or mutated, raise at most CDCParseError."""
    tree_or_mutation(data, "transaction")


@fuzz_target("cdc_event", "every parser, random bytes")
@settings(max_examples=auxiliary(5_000), deadline=None, database=None)
@given(area=st.sampled_from(sorted(PARSERS)), blob=st.binary(max_size=64))
def test_random_bytes_raise_only_parse_errors(area: str, blob: bytes) -> None:
    """Undecodable or truncated bytes raise at most CDCParseError."""
    attempt(PARSERS[area], blob)


@fuzz_target("cdc_event", "Debezium and Maxwell, random keys")
@settings(max_examples=auxiliary(), deadline=None, database=None)
@given(key=JSON_TREES)
def test_random_debezium_keys_raise_only_parse_errors(key: Any) -> None:
    """Any JSON key beside a valid value raises at most CDCParseError."""
    value = VALID["debezium"][0]

    attempt(lambda v: CDCEvent.from_debezium(v, key=key), value)
    attempt(lambda v: CDCEvent.from_maxwell(v, key=key), VALID["maxwell"][3])


def _outcome(value: Any) -> object:
    try:
        return CDCEvent.from_debezium(value, clock=ManualClock(1_700_000_000.0))
    except CDCParseError as exc:
        return (str(exc), type(exc.__cause__))


def _loads_outcome(raw: bytes) -> object:
    try:
        document = json.loads(raw)
    except ValueError as exc:
        return (f"value: not valid JSON ({exc!s:.80})", type(exc))
    return _outcome(document)


@fuzz_target("cdc_event", "Debezium, bytes against json.loads")
@settings(max_examples=auxiliary(), deadline=None, database=None)
@given(
    tree=JSON_TREES,
    spacing=st.sampled_from(["", " ", "\n", "\t\r\n", "\x0b", "\u00a0"]),
    tail=st.binary(max_size=4),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16-le", "utf-32-be"]),
)
def test_debezium_bytes_parse_as_their_json_loads_document(
    tree: Any, spacing: str, tail: bytes, encoding: str
) -> None:
    """Any bytes give the outcome of json.loads's document, or its error."""
    text = json.dumps({"op": "c", "source": tree}, ensure_ascii=False) + spacing
    raw = text.encode(encoding, "surrogatepass") + tail

    assert _outcome(raw) == _loads_outcome(raw)
