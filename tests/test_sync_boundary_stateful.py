"""Random edits on both systems interleaved with sync rounds converge and settle."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.sync_boundary import (
    RecordAuthority,
    SyncBoundary,
    SyncDecision,
    SyncPlan,
    apply,
    resolve,
)
from tests.test_sync_boundary_properties import KINDS, Kind, agree

KIND_BY_NAME = {k.name: k for k in KINDS}
FIELDS: dict[str, Kind] = {
    "Email": KIND_BY_NAME["email"],
    "Status": KIND_BY_NAME["status"],
    "Amount": KIND_BY_NAME["cents"],
    "Name": KIND_BY_NAME["plain"],
    "Phone": KIND_BY_NAME["renamed"],
    "Notes": KIND_BY_NAME["plain"],
}
SYNCED = [name for name in FIELDS if name != "Notes"]
FIELD_NAMES = st.sampled_from(list(FIELDS))


class TwoSystems(RuleBasedStateMachine):
    """A CRM (A) and an ERP (B) edited by people and synced by the planner."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(1_700_000_000.0)
        self.a: dict[str, Any] = {}
        self.b: dict[str, Any] = {}
        self.base: dict[str, Any] | None = None
        self.a_at: datetime | None = None
        self.b_at: datetime | None = None
        self.a_edits: dict[str, Any] = {}
        self.b_edits: dict[str, Any] = {}
        self.boundary = SyncBoundary("contact", "crm", "erp")

    @initialize(
        authority=st.fixed_dictionaries(
            {name: st.sampled_from(list(RecordAuthority)) for name in FIELDS}
        ),
        override=st.booleans(),
    )
    def define_boundary(
        self, authority: dict[str, RecordAuthority], override: bool
    ) -> None:
        """Give each field a random owner; Notes never syncs."""
        mappings = [FIELDS[n].mapping(n) for n in SYNCED]
        self.boundary = SyncBoundary(
            "contact",
            "crm",
            "erp",
            authority,
            {"Notes"},
            override,
            mappings=[m for m in mappings if m is not None],
            clock=self.clock,
        )

    @rule(name=FIELD_NAMES, data=st.data())
    def person_edits_a(self, name: str, data: st.DataObject) -> None:
        """Someone changes a field in the CRM."""
        value = data.draw(FIELDS[name].values)
        self.a[name] = value
        self.a_edits[name] = value
        self.a_at = self.now()

    @rule(name=FIELD_NAMES, data=st.data())
    def person_edits_b(self, name: str, data: st.DataObject) -> None:
        """Someone changes a field in the ERP, in the ERP's representation."""
        kind = FIELDS[name]
        value = data.draw(kind.values)
        self.b[kind.b_name(name)] = kind.b_value(value)
        self.b_edits[kind.b_name(name)] = self.b[kind.b_name(name)]
        self.b_at = self.now()

    @rule(seconds=st.integers(0, 30))
    def time_passes(self, seconds: int) -> None:
        """The wall clock moves on between edits."""
        self.clock.advance(seconds)

    @rule()
    def sync_round(self) -> None:
        """One round: plan, write both sides, store the base; the next is empty."""
        plan = self.plan()
        self.apply(plan)

        settled = self.plan()
        assert not settled.has_writes, settled.to_audit_dict()
        self.assert_agreement(settled)

    @precondition(lambda self: self.base is not None)
    @rule(take_a=st.booleans())
    def steward_resolves_a_review(self, take_a: bool) -> None:
        """A person settles the first held field; it is then in sync."""
        plan = self.plan()
        if not plan.manual_review:
            return
        conflict = plan.manual_review[0]
        value = conflict.value_a if take_a else conflict.value_b

        self.apply(resolve(conflict, value, clock=self.clock))
        self.a_edits.update(self.a)
        self.b_edits.update(self.b)

        after = self.plan()
        assert after.decisions[conflict.field_name] is SyncDecision.UNCHANGED

    @invariant()
    def owners_fields_change_only_by_their_owners(self) -> None:
        """Sync never writes an owner's field into the owner, nor Notes anywhere."""
        boundary = self.boundary
        for name in [*boundary.fields_owned_by(RecordAuthority.SYSTEM_A), "Notes"]:
            assert self.a.get(name, self) is self.a_edits.get(name, self)
        for name in [*boundary.fields_owned_by(RecordAuthority.SYSTEM_B), "Notes"]:
            b_name = FIELDS[name].b_name(name)
            assert self.b.get(b_name, self) is self.b_edits.get(b_name, self)

    def plan(self) -> SyncPlan:
        """Plan a round from the current records and stored base."""
        return self.boundary.plan(
            "c-1",
            self.a,
            self.b,
            self.base,
            a_modified_at=self.a_at,
            b_modified_at=self.b_at,
        )

    def apply(self, plan: SyncPlan) -> None:
        """Write the plan into both systems; the ERP reshapes what it stores."""
        self.a, self.b, self.base = apply(plan, self.a, self.b, base=self.base)
        for b_name in plan.updates_for_b:
            kind = next(k for n, k in FIELDS.items() if k.b_name(n) == b_name)
            self.b[b_name] = kind.echo(self.b[b_name])

    def assert_agreement(self, plan: SyncPlan) -> None:
        """Every synced field both systems hold, outside review, agrees."""
        held = {c.field_name for c in plan.manual_review}
        for name in set(SYNCED) - held:
            kind = FIELDS[name]
            b_name = kind.b_name(name)
            if name in self.a and b_name in self.b:
                b_value = kind.a_value(self.b[b_name])
                assert agree(kind.key(self.a[name]), kind.key(b_value)), name

    def now(self) -> datetime:
        """Return the manual clock's time as an aware datetime."""
        return datetime.fromtimestamp(self.clock.time(), tz=timezone.utc)


TwoSystems.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None
)
TestTwoSystems = TwoSystems.TestCase
