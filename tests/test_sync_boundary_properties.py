"""Properties of sync plans over random records, edits, authorities and mappings."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns.sync_boundary import (
    FieldMapping,
    RecordAuthority,
    SyncBoundary,
    SyncPlan,
    apply,
)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
STATUS_CODES = {"active": "A1", "closed": "C9", "hold": "H0", "lead": "L5"}
STATUS_LABELS = {code: label for label, code in STATUS_CODES.items()}


def email_key(value: Any) -> Any:
    """Compare e-mail addresses without case or surrounding spaces."""
    return value.strip().lower() if isinstance(value, str) else value


def email_echo(value: Any) -> Any:
    """Store an e-mail the way a shouting ERP does: upper-cased and padded."""
    return f" {value.upper()}" if isinstance(value, str) else value


def agree(x: Any, y: Any) -> bool:
    """Return True when two compared values are equal, NaN equal to NaN."""
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x):
        return math.isnan(y)
    return bool(x == y)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_infinity=False),
    st.text("ab", max_size=2),
)
PLAIN_VALUES = st.one_of(
    SCALARS, st.lists(st.integers(0, 3) | st.text("ab", max_size=1), max_size=2)
)


@dataclass(frozen=True)
class Kind:
    """A family of fields: their values and how B names and stores them."""

    name: str
    values: st.SearchStrategy[Any]
    b_prefix: str = ""
    to_b: Callable[[Any], Any] | None = None
    to_a: Callable[[Any], Any] | None = None
    normalize: Callable[[Any], Any] | None = None
    echo: Callable[[Any], Any] = field(default=lambda v: v)

    def mapping(self, a_field: str) -> FieldMapping | None:
        """Return the mapping for ``a_field``, or None when B uses it as is."""
        if not (self.b_prefix or self.to_b or self.normalize):
            return None
        return FieldMapping(
            a_field, self.b_name(a_field), self.to_b, self.to_a, self.normalize
        )

    def b_name(self, a_field: str) -> str:
        """Return the name system B uses for ``a_field``."""
        return f"{self.b_prefix}{a_field}"

    def b_value(self, value: Any) -> Any:
        """Return an A value as system B represents it."""
        return value if self.to_b is None else self.to_b(value)

    def a_value(self, value: Any) -> Any:
        """Return a B value as system A represents it."""
        return value if self.to_a is None else self.to_a(value)

    def key(self, value: Any) -> Any:
        """Return an A value as the planner compares it."""
        return value if self.normalize is None else self.normalize(value)


KINDS = [
    Kind("plain", PLAIN_VALUES),
    Kind("renamed", SCALARS, b_prefix="erp_"),
    Kind(
        "status",
        st.sampled_from(sorted(STATUS_CODES)),
        b_prefix="code_",
        to_b=STATUS_CODES.__getitem__,
        to_a=STATUS_LABELS.__getitem__,
    ),
    Kind(
        "email",
        st.text("aB@ ", max_size=4),
        b_prefix="mail_",
        normalize=email_key,
        echo=email_echo,
    ),
    Kind("cents", st.integers(-(10**12), 10**12), "txt_", to_b=str, to_a=int),
]
NAMES = [f"f{i}" for i in range(6)]
MISSING = object()


@dataclass
class Scenario:
    """One boundary, the stored base and what each side sends now."""

    boundary: SyncBoundary
    kinds: dict[str, Kind]
    a: dict[str, Any]
    b: dict[str, Any]
    base: dict[str, Any] | None
    a_at: datetime | None
    b_at: datetime | None

    def plan(self, a: Any, b: Any, base: Any) -> SyncPlan:
        """Plan a round of this scenario's record with the given state."""
        return self.boundary.plan(
            "r1", a, b, base, a_modified_at=self.a_at, b_modified_at=self.b_at
        )

    def store_echoes(self, plan: SyncPlan, new_b: dict[str, Any]) -> None:
        """Reshape the values B received the way B stores them (its echo)."""
        by_b_name = {k.b_name(n): k for n, k in self.kinds.items()}
        for b_name in plan.updates_for_b:
            new_b[b_name] = by_b_name[b_name].echo(new_b[b_name])

    def synced(self) -> list[str]:
        """Return the synced field names."""
        return self.boundary.synced_fields()


def draw_side(
    draw: st.DrawFn, kind: Kind, base_value: Any, b_side: bool
) -> tuple[Any, bool]:
    """Draw what one side sends for a field: kept, echoed, edited or not sent."""
    choice = draw(st.sampled_from(["keep", "echo", "edit", "drop"]))
    value = base_value
    if choice == "edit":
        value = draw(kind.values)
    if value is MISSING or choice == "drop":
        return MISSING, False
    if not b_side:
        return value, True
    stored = kind.b_value(value)
    return (kind.echo(stored) if choice == "echo" else stored), True


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Draw a boundary with random authorities, mappings, base and edits."""
    kinds = {name: draw(st.sampled_from(KINDS)) for name in NAMES}
    authority = {n: draw(st.sampled_from(list(RecordAuthority))) for n in NAMES}
    excluded = draw(st.sets(st.sampled_from(NAMES), max_size=2))
    mappings = [kinds[n].mapping(n) for n in NAMES if n not in excluded]
    boundary = SyncBoundary(
        "contact",
        "crm",
        "erp",
        authority,
        excluded,
        draw(st.booleans()),
        mappings=[m for m in mappings if m is not None],
    )

    first_sync = draw(st.booleans())
    base: dict[str, Any] = {}
    a: dict[str, Any] = {"crm_only": "keep me"}
    b: dict[str, Any] = {"erp_only": "keep me"}
    for name in NAMES:
        kind = kinds[name]
        base_value = draw(st.one_of(st.just(MISSING), kind.values))
        if base_value is not MISSING and not first_sync:
            base[name] = base_value
        value, sent = draw_side(draw, kind, base_value, b_side=False)
        if sent:
            a[name] = value
        value, sent = draw_side(draw, kind, base_value, b_side=True)
        if sent:
            b[kind.b_name(name)] = value

    stamps = st.none() | st.integers(0, 20).map(lambda s: T0 + timedelta(seconds=s))
    return Scenario(
        boundary,
        kinds,
        a,
        b,
        None if first_sync else base,
        draw(stamps),
        draw(stamps),
    )


def review_names(plan: SyncPlan) -> set[str]:
    """Return the names of the fields a plan holds for review."""
    return {c.field_name for c in plan.manual_review}


@settings(deadline=None)
@given(scenarios())
def test_a_second_round_after_apply_writes_nothing(case: Scenario) -> None:
    """After apply, planning again writes nothing and holds the same reviews."""
    plan = case.plan(case.a, case.b, case.base)
    new_a, new_b, new_base = apply(plan, case.a, case.b)
    case.store_echoes(plan, new_b)

    again = case.plan(new_a, new_b, new_base)

    assert not again.has_writes, again.to_audit_dict()
    assert review_names(again) == review_names(plan)
    assert {c.field_name for c in again.conflicts} <= review_names(plan)


@settings(deadline=None)
@given(scenarios())
def test_synced_fields_outside_review_agree_after_apply(case: Scenario) -> None:
    """Every synced field outside review holds equal values on both sides."""
    plan = case.plan(case.a, case.b, case.base)
    new_a, new_b, new_base = apply(plan, case.a, case.b)

    for name in set(case.synced()) - review_names(plan):
        kind = case.kinds[name]
        b_name = kind.b_name(name)
        if name in new_a and b_name in new_b:
            a_key = kind.key(new_a[name])
            assert agree(a_key, kind.key(kind.a_value(new_b[b_name]))), name
            assert agree(a_key, kind.key(new_base[name])), name


@settings(deadline=None)
@given(scenarios())
def test_owners_fields_are_never_written_into_the_owner(case: Scenario) -> None:
    """An A-owned field is never written into A, a B-owned never into B."""
    plan = case.plan(case.a, case.b, case.base)
    boundary = case.boundary

    for name in boundary.fields_owned_by(RecordAuthority.SYSTEM_A):
        assert name not in plan.updates_for_a
    for name in boundary.fields_owned_by(RecordAuthority.SYSTEM_B):
        assert case.kinds[name].b_name(name) not in plan.updates_for_b
    for name in boundary.fields_owned_by(RecordAuthority.MANUAL) + list(
        review_names(plan)
    ):
        assert name not in plan.updates_for_a
        assert case.kinds[name].b_name(name) not in plan.updates_for_b


@settings(deadline=None)
@given(scenarios())
def test_excluded_and_unlisted_fields_are_untouched(case: Scenario) -> None:
    """Writes touch only synced fields; every other key keeps its value."""
    plan = case.plan(case.a, case.b, case.base)
    new_a, new_b, _ = apply(plan, case.a, case.b)
    synced_a = set(case.synced())
    synced_b = {case.kinds[n].b_name(n) for n in synced_a}

    assert set(plan.updates_for_a) <= synced_a
    assert set(plan.updates_for_b) <= synced_b
    assert set(plan.next_base) <= synced_a
    for key in case.a.keys() - synced_a:
        assert new_a[key] is case.a[key]
    for key in case.b.keys() - synced_b:
        assert new_b[key] is case.b[key]


@settings(deadline=None)
@given(scenarios())
def test_a_record_at_its_base_plans_nothing(case: Scenario) -> None:
    """When both sides still hold the base, nothing is written or reviewed."""
    base = case.base or {}
    a = dict(base)
    b = {case.kinds[n].b_name(n): case.kinds[n].b_value(v) for n, v in base.items()}

    plan = case.plan(a, b, base)

    assert not plan.has_writes
    assert plan.manual_review == ()
    assert plan.conflicts == ()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
@settings(deadline=None)
@given(data=st.data())
def test_mappings_used_by_the_tests_round_trip(kind: Kind, data: st.DataObject) -> None:
    """to_a(to_b(x)) equals x, after normalize, for every mapping used here."""
    value = data.draw(kind.values)

    back = kind.a_value(kind.echo(kind.b_value(value)))

    assert agree(kind.key(back), kind.key(value))
