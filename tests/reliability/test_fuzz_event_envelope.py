"""Bad input to the envelope parsers raises EnvelopeError and nothing else."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns.event_envelope import EnvelopeError, EventEnvelope
from tests.reliability.fuzzing import fuzz_target
from tests.reliability.sizes import PRIMARY, examples

pytestmark = pytest.mark.reliability

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.binary(max_size=10)
)


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists and dicts (with str or int keys) of ``inner``."""
    return st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=12) | st.integers(), inner, max_size=4
    )


json_values = st.recursive(SCALARS, containers, max_leaves=12)
# A replaced field gets a small value; arbitrary values cover wide, nested ones.
field_values = st.recursive(SCALARS, containers, max_leaves=3)
FROM_DICT = "event_envelope from_dict"
FROM_EVENT = "event_envelope from_cloudevent"

VALID_DICT = EventEnvelope.new("t", "s", {"k": [1, 2]}, tags={"a": "b"}).to_dict()
VALID_EVENT = EventEnvelope.new("t", "s", {"k": 1}, correlation_id="c").to_cloudevent()
DICT_KEYS = st.sampled_from([*VALID_DICT, "retry_policy", "x"])
EVENT_KEYS = st.sampled_from([*VALID_EVENT, "data_base64", "subject", "Bad"])
policy_values = st.dictionaries(
    st.sampled_from([*VALID_DICT["retry_policy"], "x"]), field_values, max_size=4
)


def only_envelope_errors(parse: Any, value: Any) -> None:
    """Call ``parse``; any failure must be an EnvelopeError."""
    with contextlib.suppress(EnvelopeError):
        parse(value)


@fuzz_target("event_envelope", "from_dict, arbitrary values", counts_toward=FROM_DICT)
@given(json_values)
@settings(max_examples=examples(PRIMARY // 2, 100), deadline=None, database=None)
def test_from_dict_on_arbitrary_values(value: Any) -> None:
    """Arbitrary JSON-ish values never escape as other errors."""
    only_envelope_errors(EventEnvelope.from_dict, value)


@fuzz_target("event_envelope", "from_dict, mutated fields", counts_toward=FROM_DICT)
@given(st.dictionaries(DICT_KEYS, field_values, max_size=4), policy_values)
@settings(max_examples=examples(PRIMARY // 2, 100), deadline=None, database=None)
def test_from_dict_on_mutated_fields(
    changes: dict[str, Any], policy: dict[str, Any]
) -> None:
    """A valid dict with fields replaced by junk only raises EnvelopeError."""
    only_envelope_errors(EventEnvelope.from_dict, VALID_DICT | changes)
    only_envelope_errors(EventEnvelope.from_dict, VALID_DICT | {"retry_policy": policy})


@fuzz_target(
    "event_envelope",
    "from_json, arbitrary bytes and text",
    counts_toward="event_envelope from_json",
)
@given(st.binary(max_size=200) | st.text(max_size=200))
@settings(max_examples=examples(), deadline=None, database=None)
def test_from_json_on_arbitrary_bytes(raw: bytes | str) -> None:
    """Random bytes and text never escape as decode errors."""
    only_envelope_errors(EventEnvelope.from_json, raw)


@pytest.mark.parametrize("depth", [10, 1_000, 100_000])
def test_from_json_on_deep_nesting(depth: int) -> None:
    """Deeply nested documents raise EnvelopeError, not RecursionError."""
    nested = "[" * depth + "]" * depth
    only_envelope_errors(EventEnvelope.from_json, f'{{"payload": {nested}}}')
    only_envelope_errors(EventEnvelope.from_json, "[" * depth)


@fuzz_target(
    "event_envelope", "from_cloudevent, mutated attributes", counts_toward=FROM_EVENT
)
@given(st.dictionaries(EVENT_KEYS, field_values, max_size=4))
@settings(max_examples=examples(8_000, 100), deadline=None, database=None)
def test_from_cloudevent_on_mutated_attributes(changes: dict[str, Any]) -> None:
    """A valid event with attributes replaced by junk only raises EnvelopeError."""
    only_envelope_errors(EventEnvelope.from_cloudevent, VALID_EVENT | changes)


@fuzz_target(
    "event_envelope", "from_cloudevent, arbitrary values", counts_toward=FROM_EVENT
)
@given(json_values)
@settings(max_examples=examples(8_000, 100), deadline=None, database=None)
def test_from_cloudevent_on_arbitrary_values(value: Any) -> None:
    """Arbitrary values never escape as other errors."""
    only_envelope_errors(EventEnvelope.from_cloudevent, value)


@fuzz_target(
    "event_envelope", "from_cloudevent, arbitrary time text", counts_toward=FROM_EVENT
)
@given(st.text(max_size=40))
@settings(max_examples=examples(2_000, 100), deadline=None, database=None)
def test_time_attribute_on_arbitrary_text(text: str) -> None:
    """Any time text either parses or raises EnvelopeError naming time."""
    event = VALID_EVENT | {"time": text}
    try:
        EventEnvelope.from_cloudevent(event)
    except EnvelopeError:
        with pytest.raises(EnvelopeError, match="time"):
            EventEnvelope.from_cloudevent(event)


@fuzz_target(
    "event_envelope", "from_cloudevent, arbitrary data_base64", counts_toward=FROM_EVENT
)
@given(st.binary(max_size=60))
@settings(max_examples=examples(2_000, 100), deadline=None, database=None)
def test_data_base64_on_arbitrary_bytes(raw: bytes) -> None:
    """data_base64 over random bytes only raises EnvelopeError."""
    event = dict(VALID_EVENT)
    del event["data"]
    event["data_base64"] = base64.b64encode(raw).decode()
    only_envelope_errors(EventEnvelope.from_cloudevent, event)


def test_valid_inputs_still_parse() -> None:
    """The fixtures used above are themselves valid."""
    assert EventEnvelope.from_dict(VALID_DICT).to_dict() == VALID_DICT
    assert EventEnvelope.from_json(json.dumps(VALID_DICT)).to_dict() == VALID_DICT
    assert EventEnvelope.from_cloudevent(VALID_EVENT).to_cloudevent() == VALID_EVENT
