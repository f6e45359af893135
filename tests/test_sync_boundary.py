"""Sync boundary: the 0.2.0 API, the three-way plan, mappings, apply and resolve."""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from integration_automation_patterns._types import IntegrationError, ManualClock
from integration_automation_patterns.sync_boundary import (
    DEFAULT_CLOCK_SKEW,
    FieldMapping,
    RecordAuthority,
    SyncBoundary,
    SyncConflict,
    SyncDecision,
    SyncError,
    SyncPlan,
    apply,
    resolve,
)

A = RecordAuthority.SYSTEM_A
B = RecordAuthority.SYSTEM_B
SHARED = RecordAuthority.SHARED
MANUAL = RecordAuthority.MANUAL
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)

STATUS_TO_CODE = {"active": "A1", "closed": "C9"}
CODE_TO_STATUS = {v: k for k, v in STATUS_TO_CODE.items()}


def email_key(value: Any) -> Any:
    """Compare e-mail addresses case- and whitespace-insensitively."""
    return value.strip().lower() if isinstance(value, str) else value


@pytest.fixture
def boundary(clock: ManualClock) -> SyncBoundary:
    """A CRM↔ERP contact boundary with one field of each authority."""
    return SyncBoundary(
        "contact",
        "crm",
        "erp",
        {"owned_a": A, "owned_b": B, "shared": SHARED, "manual": MANUAL},
        {"secret_notes"},
        clock=clock,
    )


def one_field(authority: RecordAuthority, **kwargs: Any) -> SyncBoundary:
    """Return a boundary syncing the single field ``f``."""
    return SyncBoundary(
        "contact", "crm", "erp", {"f": authority}, clock=ManualClock(1e9), **kwargs
    )


# --- 0.2.0 API ---------------------------------------------------------------


def test_authority_for_returns_owner_and_none_for_excluded_or_unlisted() -> None:
    """authority_for gives the listed owner; excluded or unlisted fields give None."""
    boundary = SyncBoundary("c", "crm", "erp", {"email": A, "notes": B}, {"notes"})

    assert boundary.authority_for("email") is A
    assert boundary.authority_for("notes") is None
    assert boundary.authority_for("unknown") is None


def test_is_synced_covers_listed_fields_including_manual() -> None:
    """is_synced is true for listed, non-excluded fields, MANUAL included."""
    boundary = SyncBoundary("c", "crm", "erp", {"m": MANUAL, "x": A}, {"x"})

    assert boundary.is_synced("m")
    assert not boundary.is_synced("x")
    assert not boundary.is_synced("unlisted")


def test_synced_fields_and_fields_owned_by_keep_listing_order(
    boundary: SyncBoundary,
) -> None:
    """synced_fields and fields_owned_by list names in field_authority order."""
    boundary.field_authority["extra_a"] = A
    boundary.field_authority["secret_notes"] = A

    assert boundary.synced_fields() == [
        "owned_a",
        "owned_b",
        "shared",
        "manual",
        "extra_a",
    ]
    assert boundary.fields_owned_by(A) == ["owned_a", "extra_a"]
    assert boundary.fields_owned_by(MANUAL) == ["manual"]


def test_boundary_keeps_positional_order_and_defaults_of_0_2_0() -> None:
    """SyncBoundary(record_type, a_id, b_id, authority, excluded, override) works."""
    boundary = SyncBoundary("account", "sf", "sap", {"f": A}, {"g"}, True)

    assert boundary.record_type == "account"
    assert (boundary.system_a_id, boundary.system_b_id) == ("sf", "sap")
    assert boundary.allow_system_b_override
    assert SyncBoundary("x", "a", "b").field_authority == {}
    assert SyncBoundary("x", "a", "b").excluded_fields == set()
    assert not SyncBoundary("x", "a", "b").allow_system_b_override


@pytest.mark.parametrize(
    ("value_a", "value_b", "last_sync", "conflict"),
    [
        ("x", "x", "old", False),
        ("new", "old", "old", False),
        ("old", "new", "old", False),
        ("n1", "n2", "old", True),
        ("n1", "n2", None, True),
        (math.nan, math.nan, None, False),
    ],
)
def test_detect_conflict_needs_both_sides_changed(
    boundary: SyncBoundary,
    value_a: Any,
    value_b: Any,
    last_sync: Any,
    conflict: bool,
) -> None:
    """A conflict is reported only when both sides moved away from the last sync."""
    found = boundary.detect_conflict("shared", value_a, value_b, "r1", last_sync)

    assert (found is not None) is conflict


def test_detect_conflict_fills_the_conflict_from_its_arguments(
    boundary: SyncBoundary, clock: ManualClock
) -> None:
    """The conflict carries values, ids, timestamps and the clock's time."""
    found = boundary.detect_conflict("owned_a", 1, 2, "r9", 0, T0, T0)

    assert found == SyncConflict(
        "owned_a",
        1,
        2,
        "r9",
        0,
        datetime.fromtimestamp(clock.time(), tz=timezone.utc),
        T0,
        T0,
    )


def test_detect_conflict_ignores_excluded_and_unlisted_fields(
    boundary: SyncBoundary,
) -> None:
    """Unsynced fields never conflict, whatever their values."""
    assert boundary.detect_conflict("secret_notes", 1, 2, "r1") is None
    assert boundary.detect_conflict("unlisted", 1, 2, "r1") is None


def test_detect_conflict_compares_after_normalize() -> None:
    """A mapping's normalize hides case and whitespace differences."""
    boundary = SyncBoundary(
        "c",
        "crm",
        "erp",
        {"Email": A},
        mappings=[FieldMapping("Email", "email", normalize=email_key)],
    )

    assert boundary.detect_conflict("Email", "A@x.io ", "a@x.io", "r1") is None


@pytest.mark.parametrize(
    ("a_at", "b_at", "writer"),
    [
        (T0 + timedelta(seconds=1), T0, A),
        (T0, T0 + timedelta(seconds=1), B),
        (T0, T0, None),
        (None, T0, None),
        (T0, None, None),
    ],
)
def test_last_writer_compares_timestamps(
    a_at: datetime | None, b_at: datetime | None, writer: RecordAuthority | None
) -> None:
    """last_writer names the later system, or None when unknown or tied."""
    conflict = SyncConflict("f", 1, 2, "r1", None, T0, a_at, b_at)

    assert conflict.last_writer() is writer


def test_last_writer_refuses_naive_and_aware_timestamps() -> None:
    """Mixing naive and aware timestamps is a SyncError, not a TypeError."""
    conflict = SyncConflict("f", 1, 2, "r1", None, T0, T0, T0.replace(tzinfo=None))

    with pytest.raises(SyncError) as info:
        conflict.last_writer()
    assert isinstance(info.value.__cause__, TypeError)


def test_sync_error_is_an_integration_value_error() -> None:
    """SyncError keeps except ValueError and except IntegrationError working."""
    assert issubclass(SyncError, IntegrationError)
    assert issubclass(SyncError, ValueError)


# --- the three-way decision table ---------------------------------------------

MISSING = object()


def run(
    authority: RecordAuthority,
    a: Any,
    b: Any,
    base: Any,
    **kwargs: Any,
) -> SyncPlan:
    """Plan field ``f`` with each side/base given as a value or MISSING."""
    override = kwargs.pop("override", False)
    boundary = one_field(authority, allow_system_b_override=override)
    rec_a = {} if a is MISSING else {"f": a}
    rec_b = {} if b is MISSING else {"f": b}
    rec_base = None if base is MISSING else {"f": base}
    return boundary.plan("r1", rec_a, rec_b, rec_base, **kwargs)


@pytest.mark.parametrize(
    ("authority", "a", "b", "base", "decision", "for_a", "for_b"),
    [
        (A, 1, 1, 1, SyncDecision.UNCHANGED, {}, {}),
        (SHARED, 2, 2, 1, SyncDecision.CONVERGED, {}, {}),
        (A, 2, 1, 1, SyncDecision.A_TO_B, {}, {"f": 2}),
        (SHARED, 2, 1, 1, SyncDecision.A_TO_B, {}, {"f": 2}),
        (B, 2, 1, 1, SyncDecision.REVERT_A, {"f": 1}, {}),
        (B, 1, 2, 1, SyncDecision.B_TO_A, {"f": 2}, {}),
        (SHARED, 1, 2, 1, SyncDecision.B_TO_A, {"f": 2}, {}),
        (A, 1, 2, 1, SyncDecision.REVERT_B, {}, {"f": 1}),
        (A, 2, 3, 1, SyncDecision.A_AUTHORITY, {}, {"f": 2}),
        (B, 2, 3, 1, SyncDecision.B_AUTHORITY, {"f": 3}, {}),
        (SHARED, 2, 3, 1, SyncDecision.REVIEW, {}, {}),
        (MANUAL, 2, 1, 1, SyncDecision.REVIEW, {}, {}),
        (MANUAL, 1, 2, 1, SyncDecision.REVIEW, {}, {}),
        (MANUAL, 1, 1, 1, SyncDecision.UNCHANGED, {}, {}),
        (A, 2, 3, MISSING, SyncDecision.A_AUTHORITY, {}, {"f": 2}),
        (SHARED, 2, 3, MISSING, SyncDecision.REVIEW, {}, {}),
        (SHARED, 2, 2, MISSING, SyncDecision.CONVERGED, {}, {}),
        (A, MISSING, MISSING, 1, SyncDecision.NOT_SENT, {}, {}),
        (A, 2, MISSING, 1, SyncDecision.A_TO_B, {}, {"f": 2}),
        (B, 2, MISSING, 1, SyncDecision.REVERT_A, {"f": 1}, {}),
        (A, MISSING, 2, 1, SyncDecision.REVERT_B, {}, {"f": 1}),
        (A, 1, MISSING, 1, SyncDecision.UNCHANGED, {}, {}),
        (A, 2, MISSING, MISSING, SyncDecision.A_TO_B, {}, {"f": 2}),
        (SHARED, MISSING, 2, MISSING, SyncDecision.B_TO_A, {"f": 2}, {}),
        (A, MISSING, 2, MISSING, SyncDecision.SKIPPED, {}, {}),
        (B, 2, MISSING, MISSING, SyncDecision.SKIPPED, {}, {}),
        (MANUAL, 2, MISSING, MISSING, SyncDecision.SKIPPED, {}, {}),
        (SHARED, None, 1, 1, SyncDecision.A_TO_B, {}, {"f": None}),
        (SHARED, math.nan, math.nan, math.nan, SyncDecision.UNCHANGED, {}, {}),
    ],
)
def test_plan_decides_each_case_of_the_three_way_merge(  # noqa: PLR0917 -- one parameter per table column
    authority: RecordAuthority,
    a: Any,
    b: Any,
    base: Any,
    decision: SyncDecision,
    for_a: dict[str, Any],
    for_b: dict[str, Any],
) -> None:
    """Each combination of changes and authority yields its documented decision."""
    plan = run(authority, a, b, base)

    assert plan.decisions == {"f": decision}
    assert dict(plan.updates_for_a) == for_a
    assert dict(plan.updates_for_b) == for_b


def test_b_change_to_a_owned_field_goes_to_review_with_override() -> None:
    """allow_system_b_override holds B's change to an A-owned field for review."""
    plan = run(A, 1, 2, 1, override=True)

    assert plan.decisions == {"f": SyncDecision.REVIEW}
    assert not plan.has_writes
    assert [(c.value_a, c.value_b) for c in plan.manual_review] == [(1, 2)]
    assert plan.conflicts == ()


def test_override_does_not_hold_a_changes_to_b_owned_fields() -> None:
    """The override flag concerns B's writes only; A's change is still reverted."""
    plan = run(B, 2, 1, 1, override=True)

    assert plan.decisions == {"f": SyncDecision.REVERT_A}


@pytest.mark.parametrize(
    ("a_offset", "decision", "for_a", "for_b"),
    [
        (10.0, SyncDecision.A_LAST_WRITER, {}, {"f": "a"}),
        (-10.0, SyncDecision.B_LAST_WRITER, {"f": "b"}, {}),
        (3.0, SyncDecision.REVIEW, {}, {}),
        (-5.0, SyncDecision.REVIEW, {}, {}),
    ],
)
def test_shared_conflict_goes_to_the_later_writer_beyond_clock_skew(
    a_offset: float,
    decision: SyncDecision,
    for_a: dict[str, Any],
    for_b: dict[str, Any],
) -> None:
    """Timestamps within the skew cannot pick a winner; farther apart they do."""
    plan = run(
        SHARED,
        "a",
        "b",
        "base",
        a_modified_at=T0 + timedelta(seconds=a_offset),
        b_modified_at=T0,
    )

    assert plan.decisions == {"f": decision}
    assert (dict(plan.updates_for_a), dict(plan.updates_for_b)) == (for_a, for_b)
    assert [c.field_name for c in plan.conflicts] == ["f"]


def test_default_clock_skew_is_five_seconds() -> None:
    """Timestamps less than five seconds apart cannot pick a writer by default."""
    assert timedelta(seconds=5) == DEFAULT_CLOCK_SKEW


def test_clock_skew_accepts_seconds_and_timedelta() -> None:
    """clock_skew may be given as float seconds or a timedelta."""
    stamps = {"a_modified_at": T0 + timedelta(seconds=2), "b_modified_at": T0}

    as_float = run(SHARED, "a", "b", "base", clock_skew=1.0, **stamps)
    as_delta = run(SHARED, "a", "b", "base", clock_skew=timedelta(seconds=3), **stamps)

    assert as_float.decisions == {"f": SyncDecision.A_LAST_WRITER}
    assert as_delta.decisions == {"f": SyncDecision.REVIEW}


def test_timestamps_do_not_override_authority() -> None:
    """An owned field's conflict goes to its owner even if the other wrote later."""
    plan = run(A, "a", "b", "base", a_modified_at=T0, b_modified_at=T0 + timedelta(1))

    assert plan.decisions == {"f": SyncDecision.A_AUTHORITY}


def test_review_keeps_the_old_base_and_writes_nothing() -> None:
    """A field in review is never written and its base stays as it was."""
    plan = run(MANUAL, "x", "y", "old")

    assert not plan.has_writes
    assert dict(plan.next_base) == {"f": "old"}
    (conflict,) = plan.manual_review
    assert (conflict.value_a, conflict.value_b, conflict.last_sync_value) == (
        "x",
        "y",
        "old",
    )


def test_review_of_an_unsent_side_shows_the_base_value() -> None:
    """A side that did not send the field is shown holding the base value."""
    plan = run(MANUAL, MISSING, "new", "old")

    (conflict,) = plan.manual_review
    assert (conflict.value_a, conflict.value_b) == ("old", "new")


def test_excluded_and_unlisted_fields_are_neither_read_nor_written(
    boundary: SyncBoundary,
) -> None:
    """Only listed, non-excluded fields appear in decisions, writes and base."""
    a = {"owned_a": 1, "secret_notes": "a", "crm_only": object()}
    b = {"owned_a": 1, "secret_notes": "b", "erp_only": object()}

    plan = boundary.plan("r1", a, b, None)

    assert set(plan.decisions) == {"owned_a", "owned_b", "shared", "manual"}
    assert not plan.has_writes
    assert dict(plan.next_base) == {"owned_a": 1}


def test_next_base_drops_fields_that_left_the_boundary(
    boundary: SyncBoundary,
) -> None:
    """Base entries of fields no longer synced are not carried forward."""
    plan = boundary.plan("r1", {}, {}, {"retired": 1, "owned_a": 2})

    assert dict(plan.next_base) == {"owned_a": 2}


# --- mappings ------------------------------------------------------------------


@pytest.fixture
def crm_erp(clock: ManualClock) -> SyncBoundary:
    """CRM `Email`/`Status` mapped to ERP `email_address`/`status_code`."""
    return SyncBoundary(
        "contact",
        "crm",
        "erp",
        {"Email": A, "Status": B, "Name": SHARED},
        {"LeadScore"},
        mappings=[
            FieldMapping("Email", "email_address", normalize=email_key),
            FieldMapping(
                "Status",
                "status_code",
                to_b=STATUS_TO_CODE.__getitem__,
                to_a=CODE_TO_STATUS.__getitem__,
            ),
        ],
        clock=clock,
    )


def test_mapping_writes_in_the_other_systems_names_and_representation(
    crm_erp: SyncBoundary,
) -> None:
    """Writes to B use B's field names and values; writes to A use A's."""
    base = {"Email": "ann@x.io", "Status": "active", "Name": "Ann"}
    a = {"Email": "ann@y.io", "Status": "active", "Name": "Ann"}
    b = {"email_address": "ann@x.io", "status_code": "C9", "Name": "Ann"}

    plan = crm_erp.plan("r1", a, b, base)

    assert dict(plan.updates_for_b) == {"email_address": "ann@y.io"}
    assert dict(plan.updates_for_a) == {"Status": "closed"}
    assert dict(plan.next_base) == {
        "Email": "ann@y.io",
        "Status": "closed",
        "Name": "Ann",
    }


def test_normalize_turns_a_recased_echo_into_no_change(
    crm_erp: SyncBoundary,
) -> None:
    """B storing the written e-mail lower-cased and padded is not a new change."""
    base = {"Email": "Ann@X.io"}
    plan = crm_erp.plan(
        "r1", {"Email": "Ann@X.io"}, {"email_address": " ann@x.io"}, base
    )

    assert plan.decisions["Email"] is SyncDecision.UNCHANGED
    assert not plan.has_writes


def test_converter_failure_is_a_sync_error_naming_the_field(
    crm_erp: SyncBoundary,
) -> None:
    """An unknown status code raises SyncError with the KeyError as cause."""
    with pytest.raises(SyncError, match="'Status'") as info:
        crm_erp.plan("r1", {}, {"status_code": "??"}, None)
    assert isinstance(info.value.__cause__, KeyError)


@pytest.mark.parametrize(
    ("mappings", "message"),
    [
        ([FieldMapping("Notes", "notes")], "excluded"),
        ([FieldMapping("Other", "other")], "no authority"),
        ([FieldMapping("Email", "e"), FieldMapping("Email", "f")], "twice"),
        ([FieldMapping("Email", "x"), FieldMapping("Name", "x")], "twice"),
        ([FieldMapping("Email", "Name")], "two synced fields"),
        (["Email"], "FieldMapping"),
    ],
)
def test_invalid_mappings_are_refused_at_construction(
    mappings: list[Any], message: str
) -> None:
    """Mappings naming excluded, unlisted or duplicate fields raise SyncError."""
    with pytest.raises(SyncError, match=message):
        SyncBoundary(
            "c",
            "crm",
            "erp",
            {"Email": A, "Name": A, "Notes": A},
            {"Notes"},
            mappings=mappings,
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"a_field": "", "b_field": "x"},
        {"a_field": "x", "b_field": 3},
        {"a_field": "x", "b_field": "y", "to_b": str},
        {"a_field": "x", "b_field": "y", "to_a": str},
        {"a_field": "x", "b_field": "y", "normalize": "lower"},
    ],
)
def test_field_mapping_refuses_bad_arguments(kwargs: dict[str, Any]) -> None:
    """FieldMapping needs names and both converters or neither."""
    with pytest.raises(SyncError):
        FieldMapping(**kwargs)


def test_mapping_round_trips_used_in_tests_hold() -> None:
    """The status mapping converts both ways without loss."""
    for status in STATUS_TO_CODE:
        assert CODE_TO_STATUS[STATUS_TO_CODE[status]] == status


# --- records and arguments -----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("r1", [], {}, None), {}, "record a"),
        (("r1", {}, "b", None), {}, "record b"),
        (("r1", {}, {}, 5), {}, "record base"),
        ((1, {}, {}, None), {}, "record_id"),
        (("r1", {}, {}, None), {"a_modified_at": 5}, "a_modified_at"),
        (("r1", {}, {}, None), {"clock_skew": -1}, "clock_skew"),
        (("r1", {}, {}, None), {"clock_skew": "5s"}, "clock_skew"),
        (
            ("r1", {}, {}, None),
            {"a_modified_at": T0, "b_modified_at": T0.replace(tzinfo=None)},
            "naive",
        ),
    ],
)
def test_plan_refuses_bad_input_with_sync_error(
    boundary: SyncBoundary,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    message: str,
) -> None:
    """Non-mapping records, bad ids, timestamps and skews raise SyncError."""
    with pytest.raises(SyncError, match=message):
        boundary.plan(*args, **kwargs)


def test_plan_refuses_unknown_authority_values() -> None:
    """An authority that is not a RecordAuthority is refused when planning."""
    boundary = SyncBoundary("c", "crm", "erp", {"f": "owner"})  # type: ignore[dict-item]

    with pytest.raises(SyncError, match="'f'"):
        boundary.plan("r1", {}, {}, None)


def test_plan_accepts_authority_given_by_value() -> None:
    """An authority given as its string value works like the enum member."""
    boundary = SyncBoundary("c", "crm", "erp", {"f": "system_a"})  # type: ignore[dict-item]

    plan = boundary.plan("r1", {"f": 1}, {"f": 2}, None)

    assert plan.decisions == {"f": SyncDecision.A_AUTHORITY}


def test_uncomparable_values_raise_sync_error() -> None:
    """A value whose equality raises is reported as a SyncError for its field."""

    class Hostile:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no")

        __hash__ = object.__hash__

    with pytest.raises(SyncError, match="'f'") as info:
        run(SHARED, Hostile(), 1, 1)
    assert isinstance(info.value.__cause__, RuntimeError)


# --- apply, resolve, audit, logging --------------------------------------------


def test_apply_returns_updated_copies_and_leaves_inputs_alone(
    crm_erp: SyncBoundary,
) -> None:
    """apply merges the writes into copies of both records and returns next_base."""
    a = {"Email": "new@x.io", "Status": "active", "LeadScore": 7}
    b = {"email_address": "old@x.io", "status_code": "A1", "Name": "Ann"}
    plan = crm_erp.plan("r1", a, b, {"Email": "old@x.io", "Status": "active"})

    new_a, new_b, new_base = apply(plan, a, b)

    assert new_a == {**a, "Name": "Ann"}
    assert new_b == {**b, "email_address": "new@x.io"}
    assert a == {"Email": "new@x.io", "Status": "active", "LeadScore": 7}
    assert b["email_address"] == "old@x.io"
    assert new_base == dict(plan.next_base)


def test_apply_refuses_garbage() -> None:
    """apply raises SyncError for a non-plan or non-mapping records."""
    plan = run(A, 1, 1, 1)

    with pytest.raises(SyncError):
        apply("plan", {}, {})  # type: ignore[arg-type]
    with pytest.raises(SyncError):
        apply(plan, {}, [])  # type: ignore[arg-type]


def test_resolve_writes_the_chosen_value_where_it_is_missing(
    crm_erp: SyncBoundary, clock: ManualClock
) -> None:
    """resolve writes only the side that lacks the value, in that side's form."""
    base = {"Email": "old@x.io", "Status": "active", "Name": "Ann"}
    a = {**base, "Name": "Anne"}
    b = {"email_address": "old@x.io", "status_code": "A1", "Name": "Annie"}
    plan = crm_erp.plan("r1", a, b, base)
    (conflict,) = plan.manual_review

    fix = resolve(conflict, "Anne", clock=clock)
    new_a, new_b, new_base = apply(fix, a, b, base=base)

    assert fix.partial
    assert dict(fix.updates_for_a) == {}
    assert dict(fix.updates_for_b) == {"Name": "Anne"}
    assert new_base == {**base, "Name": "Anne"}
    assert not crm_erp.plan("r1", new_a, new_b, new_base).has_writes
    assert crm_erp.plan("r1", new_a, new_b, new_base).manual_review == ()


def test_resolve_converts_through_the_conflicts_mapping(clock: ManualClock) -> None:
    """A resolved mapped field is written to B under B's name and code."""
    boundary = SyncBoundary(
        "c",
        "crm",
        "erp",
        {"Status": MANUAL},
        mappings=[
            FieldMapping(
                "Status",
                "status_code",
                to_b=STATUS_TO_CODE.__getitem__,
                to_a=CODE_TO_STATUS.__getitem__,
            )
        ],
        clock=clock,
    )
    plan = boundary.plan("r1", {"Status": "active"}, {"status_code": "C9"}, None)

    fix = resolve(plan.manual_review[0], "closed", clock=clock)

    assert dict(fix.updates_for_a) == {"Status": "closed"}
    assert dict(fix.updates_for_b) == {}
    assert fix.decisions == {"Status": SyncDecision.RESOLVED}


def test_partial_plan_needs_the_stored_base() -> None:
    """Applying a resolve plan without the base would lose it, so it is refused."""
    fix = resolve(SyncConflict("f", 1, 2, "r1"), 3)

    with pytest.raises(SyncError, match="base"):
        apply(fix, {}, {})


def test_resolve_refuses_a_non_conflict() -> None:
    """resolve raises SyncError for anything but a SyncConflict."""
    with pytest.raises(SyncError):
        resolve("f", 1)  # type: ignore[arg-type]


def test_audit_dict_is_json_and_holds_no_values(crm_erp: SyncBoundary) -> None:
    """to_audit_dict lists fields and decisions but never a field value."""
    a = {"Email": "secret-a@x.io", "Status": "active", "Name": "Secret A"}
    b = {"email_address": "secret-b@x.io", "status_code": "C9", "Name": "Secret B"}

    audit = crm_erp.plan("r1", a, b, None).to_audit_dict()
    text = json.dumps(audit)

    assert "secret" not in text.lower()
    assert audit["decisions"] == {
        "Email": "a_authority",
        "Status": "b_authority",
        "Name": "review",
    }
    assert audit["writes_to_a"] == ["Status"]
    assert audit["writes_to_b"] == ["email_address"]
    assert audit["manual_review"] == ["Name"]
    assert audit["conflicts"] == ["Email", "Status", "Name"]
    assert audit["planned_at"] == "2023-11-14T22:13:20+00:00"


def test_plan_logs_counts_and_review_fields_without_values(
    crm_erp: SyncBoundary, caplog: pytest.LogCaptureFixture
) -> None:
    """A plan logs DEBUG counts and a WARNING naming review fields, no values."""
    caplog.set_level(logging.DEBUG, logger="integration_automation_patterns")

    crm_erp.plan("r7", {"Name": "Secret A"}, {"Name": "Secret B"}, None)

    debug, warning = caplog.records
    assert (debug.levelno, warning.levelno) == (logging.DEBUG, logging.WARNING)
    assert debug.__dict__["record_id"] == "r7"
    assert warning.__dict__["review_fields"] == ["Name"]
    assert "Secret" not in caplog.text


def test_plan_reads_boundary_changes_made_after_construction(
    boundary: SyncBoundary,
) -> None:
    """Editing field_authority or excluded_fields later changes the next plan."""
    boundary.excluded_fields.add("owned_a")
    boundary.field_authority["late"] = A

    plan = boundary.plan("r1", {"owned_a": 1, "late": 2}, {}, None)

    assert "owned_a" not in plan.decisions
    assert dict(plan.updates_for_b) == {"late": 2}


def test_plan_calls_each_fields_converters_a_bounded_number_of_times() -> None:
    """plan is one pass: each field's converters run a fixed few times, at most 5."""
    calls: list[str] = []

    def counted(value: Any) -> Any:
        calls.append("call")
        return value

    names = [f"f{i}" for i in range(2_000)]
    boundary = SyncBoundary(
        "c",
        "crm",
        "erp",
        dict.fromkeys(names, SHARED),
        mappings=[FieldMapping(n, f"b_{n}", counted, counted, counted) for n in names],
    )
    a = dict.fromkeys(names, 2)
    b = {f"b_{n}": 3 for n in names}

    plan = boundary.plan("r1", a, b, dict.fromkeys(names, 1), a_modified_at=T0)

    assert len(plan.manual_review) == len(names)
    assert len(calls) <= 5 * len(names)
