"""Sync plans over random, hostile input: only SyncError escapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.sync_boundary import (
    FieldMapping,
    RecordAuthority,
    SyncBoundary,
    SyncConflict,
    SyncError,
    SyncPlan,
    apply,
    resolve,
)
from tests.reliability.fuzzing import fuzz_target
from tests.reliability.sizes import PRIMARY, auxiliary, examples

T = TypeVar("T")
PLAN = "sync_boundary plan"
NAMES = st.sampled_from(["f0", "f1", "f2", "Email", "", "ü", "f0 "])


def mostly(valid: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """Draw from ``valid`` nine times in ten, else from ``bad``."""
    return st.integers(0, 9).flatmap(lambda n: bad if n == 0 else valid)


def nested(depth: int) -> list[Any]:
    """Return a list nested ``depth`` levels deep, to exhaust recursion."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


SCALARS = st.none() | st.booleans() | st.integers(-2, 2) | st.text("ab", max_size=2)
VALUES = mostly(
    SCALARS,
    st.recursive(
        st.floats() | st.binary(max_size=3) | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text(max_size=3), inner, max_size=3)
            | st.tuples(inner)
        ),
        max_leaves=8,
    ),
)
NOT_RECORDS = st.one_of(
    st.none(), st.integers(), st.text(max_size=3), st.lists(NAMES, max_size=2)
)
RECORDS = mostly(st.dictionaries(NAMES, VALUES, max_size=5), NOT_RECORDS)
B_NAMES = NAMES | NAMES.map(lambda name: f"erp_{name}")
B_RECORDS = mostly(st.dictionaries(B_NAMES, VALUES, max_size=5), NOT_RECORDS)
AUTHORITIES = mostly(
    st.sampled_from(list(RecordAuthority)),
    st.sampled_from(["system_a", "shared", "owner", "", 3, None])
    | st.lists(st.integers(), max_size=1),
)
CONVERTERS = mostly(
    st.none(),
    st.sampled_from([int, str, str.lower, str.strip, float, len, {"a": 1}.get]),
)
STAMPS = mostly(
    st.none() | st.datetimes(timezones=st.just(timezone.utc)),
    st.datetimes(max_value=datetime(9000, 1, 1)) | st.integers() | st.text(max_size=3),
)
SKEWS = mostly(
    st.floats(0, 100) | st.timedeltas(min_value=timedelta(0)),
    st.floats()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.timedeltas()
    | st.text(max_size=2)
    | st.booleans(),
)


FNS: list[Callable[[Any], Any]] = [
    int,
    str,
    str.lower,
    str.strip,
    float,
    len,
    {"a": 1}.get,
    {"a": 1}.__getitem__,
]
CONVERTER_FNS = st.sampled_from(FNS)


@st.composite
def mappings(draw: st.DrawFn, names: list[str]) -> Any:
    """Draw a FieldMapping for one of ``names``, or garbage where one is expected."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.text(max_size=3) | st.integers())
    a_field = draw(mostly(st.sampled_from(names), NAMES) if names else NAMES)
    converters = draw(st.booleans())
    to_b = draw(CONVERTER_FNS) if converters else None
    to_a = draw(CONVERTER_FNS) if converters else None
    normalize = draw(st.none() | CONVERTER_FNS)
    try:
        return FieldMapping(a_field, f"erp_{a_field}", to_b, to_a, normalize)
    except SyncError:
        return a_field  # refused parts (an empty name): pass the garbage on


@st.composite
def boundaries(draw: st.DrawFn) -> SyncBoundary | None:
    """Draw a boundary from random parts; None when construction refused them."""
    authority: Any = draw(
        mostly(st.dictionaries(NAMES, AUTHORITIES, max_size=5), NOT_RECORDS)
    )
    excluded: Any = draw(
        mostly(st.sets(NAMES, max_size=2), st.integers() | st.text(max_size=2))
    )
    names = list(authority) if isinstance(authority, dict) else []
    try:
        return SyncBoundary(
            "contact",
            "crm",
            "erp",
            authority,
            excluded,
            draw(st.booleans()),
            mappings=draw(st.lists(mappings(names), max_size=2, unique_by=id)),
            clock=ManualClock(1_700_000_000.0),
        )
    except SyncError:
        return None


FEW_NAMES = st.sampled_from(["f0", "f1", "ü"])
FEW_B_NAMES = FEW_NAMES | FEW_NAMES.map(lambda name: f"erp_{name}")


@st.composite
def valid_boundaries(draw: st.DrawFn) -> SyncBoundary:
    """Draw a well-formed boundary whose converters may still fail on values."""
    names = draw(st.lists(FEW_NAMES, min_size=1, max_size=3, unique=True))
    authority = {n: draw(st.sampled_from(list(RecordAuthority))) for n in names}
    mapped = draw(st.sets(st.sampled_from(names)).map(lambda m: m - {""}))
    excluded = draw(st.sets(st.sampled_from(names)).map(lambda e: e - mapped))
    converters = {n: draw(st.booleans()) for n in mapped}
    return SyncBoundary(
        "contact",
        "crm",
        "erp",
        authority,
        excluded,
        draw(st.booleans()),
        mappings=[
            FieldMapping(
                n,
                f"erp_{n}",
                draw(CONVERTER_FNS) if converters[n] else None,
                draw(CONVERTER_FNS) if converters[n] else None,
                draw(st.none() | CONVERTER_FNS),
            )
            for n in sorted(mapped)
        ],
        clock=ManualClock(1_700_000_000.0),
    )


HOSTILE = st.one_of(
    SCALARS,
    st.floats(),
    st.binary(max_size=2),
    st.lists(st.floats() | st.text(max_size=2), max_size=2),
)


def check_plan(plan: SyncPlan, a: Any, b: Any, base: Any) -> None:
    """A plan that came back applies cleanly and audits as JSON."""
    json.dumps(plan.to_audit_dict())
    stored = base if isinstance(base, dict) else None
    new_a, new_b, new_base = apply(plan, a, b, base=stored)
    assert set(new_a) >= set(a)
    assert set(new_b) >= set(b)
    assert set(plan.next_base) <= set(new_base)


def attempt(call: Callable[[], T]) -> T | SyncError:
    """Return what ``call`` returns, or the SyncError it raised, with a message."""
    try:
        return call()
    except SyncError as exc:
        error = exc
    assert str(error)
    return error


@fuzz_target(
    "sync_boundary", "plan, hostile records, bases and boundaries", counts_toward=PLAN
)
@settings(max_examples=examples(PRIMARY // 2, 100), deadline=None, database=None)
@given(
    boundary=boundaries(),
    record_id=st.text(max_size=3) | st.integers(),
    a=RECORDS,
    b=B_RECORDS,
    base=st.none() | RECORDS,
    a_at=STAMPS,
    b_at=STAMPS,
    skew=SKEWS,
)
def test_plan_raises_only_sync_error(  # noqa: PLR0917 -- one argument per drawn input
    boundary: SyncBoundary | None,
    record_id: Any,
    a: Any,
    b: Any,
    base: Any,
    a_at: Any,
    b_at: Any,
    skew: Any,
) -> None:
    """Planning random records returns a usable plan or raises SyncError."""
    if boundary is None:
        return
    plan = attempt(
        lambda: boundary.plan(
            record_id,
            a,
            b,
            base,
            a_modified_at=a_at,
            b_modified_at=b_at,
            clock_skew=skew,
        )
    )
    if isinstance(plan, SyncError):
        return

    check_plan(plan, a, b, base)
    for conflict in plan.manual_review:
        fix = attempt(lambda: resolve(conflict, conflict.value_a))  # noqa: B023 -- called at once
        if isinstance(fix, SyncPlan):
            apply(fix, a, b, base=plan.next_base)


@fuzz_target("sync_boundary", "plan over random records", counts_toward=PLAN)
@settings(max_examples=examples(PRIMARY // 2, 100), deadline=None, database=None)
@given(
    boundary=valid_boundaries(),
    a=st.dictionaries(FEW_NAMES, HOSTILE, max_size=3),
    b=st.dictionaries(FEW_B_NAMES, HOSTILE, max_size=3),
    base=st.none() | st.dictionaries(FEW_NAMES, HOSTILE, max_size=3),
    stamps=st.tuples(STAMPS, STAMPS),
)
def test_plan_over_random_values_raises_only_sync_error(
    boundary: SyncBoundary,
    a: dict[str, Any],
    b: dict[str, Any],
    base: dict[str, Any] | None,
    stamps: tuple[Any, Any],
) -> None:
    """Hostile values and failing converters give a plan or a SyncError."""
    plan = attempt(
        lambda: boundary.plan(
            "r1", a, b, base, a_modified_at=stamps[0], b_modified_at=stamps[1]
        )
    )
    if isinstance(plan, SyncPlan):
        check_plan(plan, a, b, base)


@fuzz_target("sync_boundary", "FieldMapping, hostile converters")
@settings(max_examples=auxiliary(), deadline=None, database=None)
@given(
    a_field=NAMES | st.integers() | st.none(),
    b_field=NAMES | st.integers() | st.none(),
    to_b=CONVERTERS | st.integers(),
    to_a=CONVERTERS | st.integers(),
    normalize=CONVERTERS | st.text(max_size=2),
)
def test_field_mapping_raises_only_sync_error(
    a_field: Any, b_field: Any, to_b: Any, to_a: Any, normalize: Any
) -> None:
    """FieldMapping accepts good parts and refuses others with SyncError."""
    attempt(lambda: FieldMapping(a_field, b_field, to_b, to_a, normalize))


@fuzz_target("sync_boundary", "resolve and apply, random inputs")
@settings(max_examples=auxiliary(5_000), deadline=None, database=None)
@given(
    mapping=mappings(["f0"]),
    values=st.tuples(VALUES, VALUES, VALUES),
    a=RECORDS,
    b=B_RECORDS,
    base=st.none() | RECORDS,
)
def test_resolve_and_apply_raise_only_sync_error(
    mapping: Any, values: tuple[Any, Any, Any], a: Any, b: Any, base: Any
) -> None:
    """Resolving any conflict and applying it raises nothing but SyncError."""
    value_a, value_b, chosen = values
    conflict = SyncConflict(
        "f0",
        value_a,
        value_b,
        "r1",
        mapping=mapping if isinstance(mapping, FieldMapping) else None,
    )

    fix = attempt(lambda: resolve(conflict, chosen, clock=ManualClock()))
    if isinstance(fix, SyncPlan):
        attempt(lambda: apply(fix, a, b, base=base))


@fuzz_target("sync_boundary", "detect_conflict and last_writer")
@settings(max_examples=auxiliary(), deadline=None, database=None)
@given(values=st.tuples(VALUES, VALUES, VALUES), a_at=STAMPS, b_at=STAMPS)
def test_detect_conflict_and_last_writer_raise_only_sync_error(
    values: tuple[Any, Any, Any], a_at: Any, b_at: Any
) -> None:
    """detect_conflict and last_writer on random input raise only SyncError."""
    boundary = SyncBoundary("c", "crm", "erp", {"f": RecordAuthority.SHARED})
    conflict = SyncConflict("f", 1, 2, "r1", None, system_a_modified_at=a_at)
    conflict.system_b_modified_at = b_at

    attempt(lambda: boundary.detect_conflict("f", *values, "r1"))
    attempt(conflict.last_writer)


def plan_and_check(boundary: SyncBoundary, a: Any, b: Any, base: Any) -> None:
    """Plan one record pair; a plan that comes back must apply and audit."""
    plan = attempt(
        lambda: boundary.plan(
            "r1",
            a,
            b,
            base,
            a_modified_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
            b_modified_at=datetime(2024, 1, 2, tzinfo=timezone.utc),
        )
    )
    if isinstance(plan, SyncPlan):
        check_plan(plan, a, b, base)


@pytest.mark.parametrize("depth", [2_000, 5_000])
@pytest.mark.parametrize("authority", list(RecordAuthority), ids=str)
@pytest.mark.parametrize("normalize", [None, str], ids=["plain", "normalized"])
def test_deeply_nested_values_raise_only_sync_error(
    depth: int, authority: RecordAuthority, normalize: Callable[[Any], Any] | None
) -> None:
    """Values thousands deep in records, bases and conflicts raise only SyncError."""
    deep = nested(depth)
    boundary = SyncBoundary(
        "contact",
        "crm",
        "erp",
        {"f0": authority, "f1": RecordAuthority.SHARED},
        mappings=[FieldMapping("f0", "erp_f0", None, None, normalize)],
        clock=ManualClock(1_700_000_000.0),
    )

    plan_and_check(boundary, {"f0": deep, "f1": 1}, {"erp_f0": 1, "f1": deep}, None)
    plan_and_check(boundary, {"f0": 1}, {"erp_f0": deep}, {"f0": deep})
    plan_and_check(boundary, {"f0": deep}, {"erp_f0": deep}, {"f0": 0, "f1": deep})
    attempt(lambda: boundary.detect_conflict("f0", deep, 1, "r1", deep))
    conflict = SyncConflict("f0", deep, 1, "r1", None)
    fix = attempt(lambda: resolve(conflict, deep, clock=ManualClock()))
    if isinstance(fix, SyncPlan):
        attempt(lambda: apply(fix, {"f0": 1}, {"erp_f0": 2}, base=None))
