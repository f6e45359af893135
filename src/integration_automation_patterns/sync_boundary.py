"""Bi-directional system-of-record sync: field authority, mapping, three-way merge.

A ``SyncBoundary`` states, per field, which system owns it (``RecordAuthority``),
which fields never cross, and how the two systems name and represent a field
(``FieldMapping``). ``SyncBoundary.plan`` compares both sides with the base
snapshot stored at the last successful sync and returns a ``SyncPlan``: the
writes each side needs, the conflicts it met, the fields held for a person and
the next base to store. Because every decision is made against the base, a
value the integration itself wrote comes back as "unchanged", so sync rounds
stop writing instead of echoing updates back and forth.

Conventions used throughout:

* Field names in ``field_authority``, ``excluded_fields``, the base snapshot,
  ``SyncConflict.field_name`` and ``SyncPlan.decisions`` are the canonical,
  system A names. ``updates_for_b`` uses system B's names and representation.
* Values are compared in system A's representation after ``normalize``.
* A key missing from a record means "not sent"; ``None`` is an ordinary value.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

from ._types import SYSTEM_CLOCK, Clock, IntegrationError

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "FieldMapping",
    "RecordAuthority",
    "SyncBoundary",
    "SyncConflict",
    "SyncDecision",
    "SyncError",
    "SyncPlan",
    "apply",
    "resolve",
]

logger = logging.getLogger(__name__)

DEFAULT_CLOCK_SKEW = timedelta(seconds=5)
"""Timestamps closer than this cannot say which system wrote last."""

Converter = Callable[[Any], Any]


class SyncError(IntegrationError, ValueError):
    """A boundary, mapping, record or timestamp that cannot be synced as given."""


class RecordAuthority(enum.Enum):
    """Which system owns a field.

    ``SYSTEM_A``/``SYSTEM_B``: the owner's changes flow out; the other
    side's changes are reverted (or held for review, see
    ``allow_system_b_override``). ``SHARED``: either side may change the field;
    a true conflict goes to the later writer. ``MANUAL``: never synced
    automatically; every difference is held for a person.
    """

    SYSTEM_A = "system_a"
    SYSTEM_B = "system_b"
    SHARED = "shared"
    MANUAL = "manual"


class SyncDecision(enum.Enum):
    """What a plan decided for one field."""

    NOT_SENT = "not_sent"
    """Neither side sent the field."""
    SKIPPED = "skipped"
    """First sync: only the side that may not write the field sent it."""
    UNCHANGED = "unchanged"
    """Neither side changed the field since the base."""
    CONVERGED = "converged"
    """Both sides hold the same new value; only the base moves."""
    A_TO_B = "a_to_b"
    """System A changed the field; B receives the change."""
    B_TO_A = "b_to_a"
    """System B changed the field; A receives the change."""
    REVERT_A = "revert_a"
    """A changed a B-owned field; B's value is written back into A."""
    REVERT_B = "revert_b"
    """B changed an A-owned field; A's value is written back into B."""
    A_AUTHORITY = "a_authority"
    """Both changed an A-owned field; A's value wins."""
    B_AUTHORITY = "b_authority"
    """Both changed a B-owned field; B's value wins."""
    A_LAST_WRITER = "a_last_writer"
    """Both changed a shared field; A wrote later, beyond the clock skew."""
    B_LAST_WRITER = "b_last_writer"
    """Both changed a shared field; B wrote later, beyond the clock skew."""
    REVIEW = "review"
    """Held for a person; nothing is written until ``resolve``."""
    RESOLVED = "resolved"
    """A person chose the value through ``resolve``."""


_WRITES_A = frozenset(
    {
        SyncDecision.B_TO_A,
        SyncDecision.REVERT_A,
        SyncDecision.B_AUTHORITY,
        SyncDecision.B_LAST_WRITER,
    }
)
_WRITES_B = frozenset(
    {
        SyncDecision.A_TO_B,
        SyncDecision.REVERT_B,
        SyncDecision.A_AUTHORITY,
        SyncDecision.A_LAST_WRITER,
    }
)
_KEEPS_BASE = frozenset(
    {SyncDecision.NOT_SENT, SyncDecision.SKIPPED, SyncDecision.REVIEW}
)


class _Missing(enum.Enum):
    MISSING = "missing"


_MISSING = _Missing.MISSING


@dataclass(frozen=True)
class FieldMapping:
    """How one field is named and represented on each side.

    Args:
        a_field: the field's name in system A (the canonical name).
        b_field: the field's name in system B.
        to_b: converts an A value into B's representation.
        to_a: converts a B value into A's representation. Give both
            converters or neither; ``to_a(to_b(x))`` must equal ``x`` (after
            ``normalize``) or sync rounds will not settle.
        normalize: applied to A-representation values before they are
            compared, so an echo that was trimmed or re-cased is not a change.
            Written values are never normalized.
    """

    a_field: str
    b_field: str
    to_b: Converter | None = None
    to_a: Converter | None = None
    normalize: Converter | None = None

    def __post_init__(self) -> None:
        for name in ("a_field", "b_field"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise SyncError(f"FieldMapping.{name} must be a non-empty string")

        if (self.to_b is None) != (self.to_a is None):
            raise SyncError(
                f"FieldMapping for {self.a_field!r} needs both to_b and to_a, "
                "or neither"
            )

        for name in ("to_b", "to_a", "normalize"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise SyncError(f"FieldMapping.{name} must be callable or None")

    def b_value(self, value: Any) -> Any:
        """Return ``value`` (A's representation) in B's representation."""
        return self._call(self.to_b, value, "to_b")

    def a_value(self, value: Any) -> Any:
        """Return ``value`` (B's representation) in A's representation."""
        return self._call(self.to_a, value, "to_a")

    def comparable(self, value: Any) -> Any:
        """Return ``value`` (A's representation) as it is compared."""
        return self._call(self.normalize, value, "normalize")

    def _call(self, fn: Converter | None, value: Any, step: str) -> Any:
        if fn is None:
            return value
        try:
            return fn(value)
        except Exception as exc:
            raise SyncError(
                f"{step} of field {self.a_field!r} failed: {type(exc).__name__}"
            ) from exc


_IDENTITY = FieldMapping("_", "_")


@dataclass(slots=True)
class SyncConflict:
    """Both systems hold different values for a field that cannot be synced as is.

    ``value_a`` and ``value_b`` are in system A's representation (a plan
    converts B's value with the field's mapping). ``last_sync_value`` is the
    base value, ``None`` when there was none. ``mapping`` lets ``resolve``
    write the chosen value back in B's name and representation.
    """

    field_name: str
    value_a: Any
    value_b: Any
    record_id: str
    last_sync_value: Any = None
    detected_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    system_a_modified_at: datetime | None = None
    system_b_modified_at: datetime | None = None
    _: KW_ONLY
    mapping: FieldMapping | None = field(default=None, repr=False, compare=False)

    def last_writer(self) -> RecordAuthority | None:
        """Return the system that modified the field last, by its timestamps.

        Returns:
            ``RecordAuthority.SYSTEM_A`` or ``RecordAuthority.SYSTEM_B``;
            ``None`` when a timestamp is missing or both are equal.

        Raises:
            SyncError: the timestamps cannot be compared (naive vs aware).
        """
        a_at, b_at = self.system_a_modified_at, self.system_b_modified_at
        if a_at is None or b_at is None:
            return None

        try:
            if a_at > b_at:
                return RecordAuthority.SYSTEM_A
            if b_at > a_at:
                return RecordAuthority.SYSTEM_B
        except TypeError as exc:
            raise SyncError(
                "system_a_modified_at and system_b_modified_at cannot be compared"
            ) from exc
        return None


@dataclass(frozen=True)
class _Field:
    name: str
    b_name: str
    authority: RecordAuthority
    mapping: FieldMapping


@dataclass(frozen=True)
class _Outcome:
    decision: SyncDecision
    value: Any = None
    conflict: bool = False


@dataclass(frozen=True)
class _Context:
    later: RecordAuthority | None
    allow_b_override: bool


@dataclass(frozen=True)
class SyncPlan:
    """The writes, conflicts and review items of one sync round for one record.

    ``updates_for_a`` uses A's field names and representation,
    ``updates_for_b`` B's. ``conflicts`` lists every field both sides changed
    to different values (decided or not); ``manual_review`` every field held
    for a person, which the plan never writes. Store ``next_base`` once both
    writes succeeded; on failure keep the old base and plan again.
    ``partial`` marks a plan that settles only some fields (from
    ``resolve``): merge its ``next_base`` into the stored base.
    """

    record_id: str
    decisions: Mapping[str, SyncDecision]
    updates_for_a: Mapping[str, Any]
    updates_for_b: Mapping[str, Any]
    conflicts: tuple[SyncConflict, ...]
    manual_review: tuple[SyncConflict, ...]
    next_base: Mapping[str, Any]
    planned_at: datetime
    _: KW_ONLY
    record_type: str = ""
    partial: bool = False

    @property
    def has_writes(self) -> bool:
        """Return True when either side has something to write."""
        return bool(self.updates_for_a) or bool(self.updates_for_b)

    def to_audit_dict(self) -> dict[str, Any]:
        """Return the plan's fields and decisions as JSON-ready data, no values."""
        return {
            "record_id": self.record_id,
            "record_type": self.record_type,
            "planned_at": self.planned_at.isoformat(),
            "partial": self.partial,
            "decisions": {name: d.value for name, d in self.decisions.items()},
            "writes_to_a": sorted(self.updates_for_a),
            "writes_to_b": sorted(self.updates_for_b),
            "conflicts": [c.field_name for c in self.conflicts],
            "manual_review": [c.field_name for c in self.manual_review],
        }


@dataclass
class SyncBoundary:
    """The sync contract between two systems for one record type.

    Args:
        record_type: what the records are ("contact", "account").
        system_a_id: a name for system A ("crm").
        system_b_id: a name for system B ("erp").
        field_authority: the synced fields (canonical, A-side names) and who
            owns each. Only listed fields are ever read or written.
        excluded_fields: fields that never sync, even when listed above.
        allow_system_b_override: hold B's changes to A-owned fields for review
            instead of reverting them.
        mappings: renames and conversions between A's and B's fields; each
            must name a listed, non-excluded field. Unmapped fields keep their
            name and value on both sides.
        clock: where conflict and plan timestamps come from.
    """

    record_type: str
    system_a_id: str
    system_b_id: str
    field_authority: dict[str, RecordAuthority] = field(default_factory=dict)
    excluded_fields: set[str] = field(default_factory=set)
    allow_system_b_override: bool = False
    _: KW_ONLY
    mappings: Sequence[FieldMapping] = ()
    clock: Clock = SYSTEM_CLOCK

    def __post_init__(self) -> None:
        try:
            self.mappings = tuple(self.mappings)
        except TypeError as exc:
            raise SyncError("mappings must be a sequence of FieldMapping") from exc

        if self.mappings:
            self._field_table()

    def authority_for(self, field_name: str) -> RecordAuthority | None:
        """Return the field's owner; None when it is excluded or not listed."""
        if field_name in self.excluded_fields:
            return None
        return self.field_authority.get(field_name)

    def is_synced(self, field_name: str) -> bool:
        """Return True when the field is listed and not excluded (MANUAL too)."""
        return (
            field_name not in self.excluded_fields
            and field_name in self.field_authority
        )

    def synced_fields(self) -> list[str]:
        """Return the synced field names, in ``field_authority`` order."""
        return [f for f in self.field_authority if f not in self.excluded_fields]

    def fields_owned_by(self, authority: RecordAuthority) -> list[str]:
        """Return the synced fields whose authority is ``authority``."""
        return [
            name
            for name, owner in self.field_authority.items()
            if owner == authority and name not in self.excluded_fields
        ]

    def detect_conflict(  # noqa: PLR0917 -- the positional order is the 0.2.0 API
        self,
        field_name: str,
        value_a: Any,
        value_b: Any,
        record_id: str,
        last_sync_value: Any = None,
        system_a_modified_at: datetime | None = None,
        system_b_modified_at: datetime | None = None,
    ) -> SyncConflict | None:
        """Return a conflict when both systems changed a synced field differently.

        Values are in A's representation. Without ``last_sync_value`` (the
        first sync) any difference is a conflict; with it, a difference where
        only one side moved is a pending change, not a conflict. Unsynced
        fields never conflict.
        """
        if not self.is_synced(field_name):
            return None

        mapping = self._mapping_for(field_name)
        norm_a, norm_b = mapping.comparable(value_a), mapping.comparable(value_b)
        if _equal(norm_a, norm_b, field_name):
            return None

        if last_sync_value is not None:
            norm_base = mapping.comparable(last_sync_value)
            a_changed = not _equal(norm_a, norm_base, field_name)
            b_changed = not _equal(norm_b, norm_base, field_name)
            if not (a_changed and b_changed):
                return None

        return SyncConflict(
            field_name,
            value_a,
            value_b,
            record_id,
            last_sync_value,
            self._now(),
            system_a_modified_at,
            system_b_modified_at,
            mapping=mapping if mapping is not _IDENTITY else None,
        )

    def plan(
        self,
        record_id: str,
        a: Mapping[str, Any],
        b: Mapping[str, Any],
        base: Mapping[str, Any] | None,
        *,
        a_modified_at: datetime | None = None,
        b_modified_at: datetime | None = None,
        clock_skew: timedelta | float = DEFAULT_CLOCK_SKEW,
    ) -> SyncPlan:
        """Plan one sync round for a record by a three-way merge against ``base``.

        Args:
            record_id: the record's id, for conflicts and logs.
            a: the record as system A sends it (A's field names).
            b: the record as system B sends it (B's field names).
            base: the ``next_base`` stored after the last successful round,
                or None on the first sync.
            a_modified_at: when A last modified the record.
            b_modified_at: when B last modified the record.
            clock_skew: how far apart the timestamps must be (a timedelta or
                seconds) before the later writer wins a shared-field conflict.

        Returns:
            The plan; it costs one pass over the synced fields.

        Raises:
            SyncError: a record or base is not a mapping, the boundary or a
                timestamp is invalid, or a mapping's converter failed.
        """
        table = self._field_table()
        if not isinstance(record_id, str):
            raise SyncError("record_id must be a string")

        a = _require_mapping(a, "a")
        b = _require_mapping(b, "b")
        if base is not None:
            base = _require_mapping(base, "base")

        context = _Context(
            _later_writer(a_modified_at, b_modified_at, _skew_seconds(clock_skew)),
            self.allow_system_b_override,
        )
        builder = _PlanBuilder(
            record_id, self.record_type, self._now(), a_modified_at, b_modified_at
        )

        for spec in table:
            values = _field_values(spec, a, b, base)
            builder.add(spec, _merge_field(spec, *values, context), *values)

        result = builder.build()
        _log_plan(result)
        return result

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), tz=timezone.utc)

    def _mapping_for(self, field_name: str) -> FieldMapping:
        for mapping in self.mappings:
            if mapping.a_field == field_name:
                return mapping
        return _IDENTITY

    def _field_table(self) -> list[_Field]:
        """Return the synced fields with their B names, owners and mappings."""
        if not isinstance(self.field_authority, Mapping):
            raise SyncError("field_authority must be a mapping of field to authority")

        excluded = _name_set(self.excluded_fields)
        mappings = _index_mappings(self.mappings, self.field_authority, excluded)
        table: list[_Field] = []
        b_names: set[str] = set()

        for name, authority in self.field_authority.items():
            if not isinstance(name, str):
                raise SyncError(f"field names must be strings, got {name!r}")
            if name in excluded:
                continue
            mapping = mappings.get(name, _IDENTITY)
            b_name = mapping.b_field if mapping is not _IDENTITY else name
            if b_name in b_names:
                raise SyncError(f"two synced fields map to B field {b_name!r}")
            b_names.add(b_name)
            table.append(_Field(name, b_name, _as_authority(name, authority), mapping))

        return table


class _PlanBuilder:
    """Collects per-field outcomes into a ``SyncPlan``."""

    def __init__(
        self,
        record_id: str,
        record_type: str,
        now: datetime,
        a_at: datetime | None,
        b_at: datetime | None,
    ) -> None:
        self.record_id = record_id
        self.record_type = record_type
        self.now = now
        self.a_at = a_at
        self.b_at = b_at
        self.decisions: dict[str, SyncDecision] = {}
        self.for_a: dict[str, Any] = {}
        self.for_b: dict[str, Any] = {}
        self.conflicts: list[SyncConflict] = []
        self.review: list[SyncConflict] = []
        self.next_base: dict[str, Any] = {}

    def add(
        self, spec: _Field, outcome: _Outcome, a_value: Any, b_value: Any, base: Any
    ) -> None:
        """Record one field's outcome: its writes, base value and conflict."""
        decision = outcome.decision
        self.decisions[spec.name] = decision

        if decision in _WRITES_A:
            self.for_a[spec.name] = outcome.value
        if decision in _WRITES_B:
            self.for_b[spec.b_name] = spec.mapping.b_value(outcome.value)

        if decision not in _KEEPS_BASE:
            self.next_base[spec.name] = outcome.value
        elif base is not _MISSING:
            self.next_base[spec.name] = base

        if outcome.conflict or decision is SyncDecision.REVIEW:
            conflict = self._conflict(spec, a_value, b_value, base)
            if outcome.conflict:
                self.conflicts.append(conflict)
            if decision is SyncDecision.REVIEW:
                self.review.append(conflict)

    def build(self) -> SyncPlan:
        """Return the finished plan."""
        return SyncPlan(
            self.record_id,
            MappingProxyType(self.decisions),
            MappingProxyType(self.for_a),
            MappingProxyType(self.for_b),
            tuple(self.conflicts),
            tuple(self.review),
            MappingProxyType(self.next_base),
            self.now,
            record_type=self.record_type,
        )

    def _conflict(
        self, spec: _Field, a_value: Any, b_value: Any, old_base: Any
    ) -> SyncConflict:
        base_value = None if old_base is _MISSING else old_base
        if a_value is _MISSING:
            a_value = base_value
        if b_value is _MISSING:
            b_value = base_value

        return SyncConflict(
            spec.name,
            a_value,
            b_value,
            self.record_id,
            base_value,
            self.now,
            self.a_at,
            self.b_at,
            mapping=spec.mapping if spec.mapping is not _IDENTITY else None,
        )


def _field_values(
    spec: _Field,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    base: Mapping[str, Any] | None,
) -> tuple[Any, Any, Any]:
    """Return A's value, B's value in A's form and the base value of a field."""
    b_value = _read(b, spec.b_name)
    if b_value is not _MISSING:
        b_value = spec.mapping.a_value(b_value)
    base_value = _MISSING if base is None else _read(base, spec.name)
    return _read(a, spec.name), b_value, base_value


def _merge_field(
    spec: _Field, a_value: Any, b_value: Any, base_value: Any, ctx: _Context
) -> _Outcome:
    """Decide one field; a side that did not send it still holds the base."""
    if a_value is _MISSING and b_value is _MISSING:
        return _Outcome(SyncDecision.NOT_SENT)
    if a_value is _MISSING:
        a_value = base_value
    if b_value is _MISSING:
        b_value = base_value
    if a_value is _MISSING or b_value is _MISSING:
        return _first_sync_one_side(spec, a_value, b_value)

    return _three_way(spec, a_value, b_value, base_value, ctx)


def _first_sync_one_side(spec: _Field, a_value: Any, b_value: Any) -> _Outcome:
    """Copy a field only one side sent, when there is no base, if allowed."""
    if b_value is _MISSING:
        if spec.authority in (RecordAuthority.SYSTEM_A, RecordAuthority.SHARED):
            return _Outcome(SyncDecision.A_TO_B, a_value)
        return _Outcome(SyncDecision.SKIPPED)

    if spec.authority in (RecordAuthority.SYSTEM_B, RecordAuthority.SHARED):
        return _Outcome(SyncDecision.B_TO_A, b_value)
    return _Outcome(SyncDecision.SKIPPED)


def _three_way(
    spec: _Field, a_value: Any, b_value: Any, base_value: Any, ctx: _Context
) -> _Outcome:
    """Decide a field both sides hold a value for, against the base."""
    norm = spec.mapping.comparable
    norm_a, norm_b = norm(a_value), norm(b_value)
    has_base = base_value is not _MISSING
    norm_base = norm(base_value) if has_base else _MISSING

    a_changed = not has_base or not _equal(norm_a, norm_base, spec.name)
    if _equal(norm_a, norm_b, spec.name):
        decision = SyncDecision.CONVERGED if a_changed else SyncDecision.UNCHANGED
        return _Outcome(decision, a_value)

    b_changed = not has_base or not _equal(norm_b, norm_base, spec.name)
    if a_changed and b_changed:
        return _both_changed(spec, a_value, b_value, ctx)
    if a_changed:
        return _a_changed(spec, a_value, b_value)
    return _b_changed(spec, a_value, b_value, ctx)


def _both_changed(spec: _Field, a_value: Any, b_value: Any, ctx: _Context) -> _Outcome:
    """Settle a true conflict: authority first, then the later writer."""
    authority = spec.authority
    if authority is RecordAuthority.SHARED:
        authority = ctx.later or RecordAuthority.MANUAL
        if authority is RecordAuthority.SYSTEM_A:
            return _Outcome(SyncDecision.A_LAST_WRITER, a_value, conflict=True)
        if authority is RecordAuthority.SYSTEM_B:
            return _Outcome(SyncDecision.B_LAST_WRITER, b_value, conflict=True)

    if authority is RecordAuthority.SYSTEM_A:
        return _Outcome(SyncDecision.A_AUTHORITY, a_value, conflict=True)
    if authority is RecordAuthority.SYSTEM_B:
        return _Outcome(SyncDecision.B_AUTHORITY, b_value, conflict=True)
    return _Outcome(SyncDecision.REVIEW, conflict=True)


def _a_changed(spec: _Field, a_value: Any, b_value: Any) -> _Outcome:
    """Settle a change made in A only."""
    if spec.authority is RecordAuthority.MANUAL:
        return _Outcome(SyncDecision.REVIEW)
    if spec.authority is RecordAuthority.SYSTEM_B:
        return _Outcome(SyncDecision.REVERT_A, b_value)
    return _Outcome(SyncDecision.A_TO_B, a_value)


def _b_changed(spec: _Field, a_value: Any, b_value: Any, ctx: _Context) -> _Outcome:
    """Settle a change made in B only."""
    if spec.authority is RecordAuthority.MANUAL:
        return _Outcome(SyncDecision.REVIEW)
    if spec.authority is RecordAuthority.SYSTEM_A:
        if ctx.allow_b_override:
            return _Outcome(SyncDecision.REVIEW)
        return _Outcome(SyncDecision.REVERT_B, a_value)
    return _Outcome(SyncDecision.B_TO_A, b_value)


def apply(
    plan: SyncPlan,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    base: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Return ``(new_a, new_b, new_base)``: both records with the plan's writes.

    The inputs are not modified. For a full plan the new base is the plan's
    ``next_base``; a partial plan (from ``resolve``) needs the stored
    ``base`` to merge into.

    Raises:
        SyncError: a record or base is not a mapping, or a partial plan was
            given without ``base``.
    """
    if not isinstance(plan, SyncPlan):
        raise SyncError("plan must be a SyncPlan")
    a = _require_mapping(a, "a")
    b = _require_mapping(b, "b")

    if base is None and plan.partial:
        raise SyncError("a partial plan needs the stored base to merge into")
    old_base = {} if base is None else dict(_require_mapping(base, "base"))

    return (
        {**a, **plan.updates_for_a},
        {**b, **plan.updates_for_b},
        {**old_base, **plan.next_base},
    )


def resolve(
    conflict: SyncConflict, value: Any, *, clock: Clock = SYSTEM_CLOCK
) -> SyncPlan:
    """Turn a reviewed conflict into a partial plan that writes ``value``.

    ``value`` is in A's representation. A side that already holds it (after
    ``normalize``) is not written. Apply the plan with the stored base:
    ``apply(plan, a, b, base=base)``.

    Raises:
        SyncError: ``conflict`` is not a SyncConflict or its mapping fails.
    """
    if not isinstance(conflict, SyncConflict):
        raise SyncError("conflict must be a SyncConflict")

    mapping = conflict.mapping or _IDENTITY
    name = conflict.field_name
    b_name = mapping.b_field if conflict.mapping else name
    wanted = mapping.comparable(value)

    for_a = {} if _holds(mapping, conflict.value_a, wanted, name) else {name: value}
    for_b = {}
    if not _holds(mapping, conflict.value_b, wanted, name):
        for_b[b_name] = mapping.b_value(value)

    return SyncPlan(
        conflict.record_id,
        MappingProxyType({name: SyncDecision.RESOLVED}),
        MappingProxyType(for_a),
        MappingProxyType(for_b),
        (),
        (),
        MappingProxyType({name: value}),
        datetime.fromtimestamp(clock.time(), tz=timezone.utc),
        partial=True,
    )


def _holds(mapping: FieldMapping, current: Any, wanted: Any, name: str) -> bool:
    return _equal(mapping.comparable(current), wanted, name)


def _index_mappings(
    mappings: Iterable[object],
    authority: Mapping[str, object],
    excluded: frozenset[object],
) -> dict[str, FieldMapping]:
    """Return the mappings by A field, refusing ones that cannot be right."""
    index: dict[str, FieldMapping] = {}
    b_fields: set[str] = set()

    for mapping in mappings:
        if not isinstance(mapping, FieldMapping):
            raise SyncError(f"mappings must hold FieldMapping, got {type(mapping)!r}")
        name = mapping.a_field
        if name in excluded:
            raise SyncError(f"mapping names excluded field {name!r}")
        if name not in authority:
            raise SyncError(f"mapping names {name!r}, which has no authority")
        if name in index or mapping.b_field in b_fields:
            raise SyncError(f"field {name!r} or {mapping.b_field!r} mapped twice")
        index[name] = mapping
        b_fields.add(mapping.b_field)

    return index


def _name_set(names: object) -> frozenset[object]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise SyncError("excluded_fields must be a collection of field names")
    try:
        return frozenset(names)
    except TypeError as exc:
        raise SyncError("excluded_fields must hold hashable field names") from exc


def _as_authority(name: str, value: object) -> RecordAuthority:
    if isinstance(value, RecordAuthority):
        return value
    try:
        return RecordAuthority(value)
    except (ValueError, TypeError) as exc:
        raise SyncError(
            f"authority of field {name!r} is not a RecordAuthority"
        ) from exc


def _require_mapping(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SyncError(f"record {name} must be a mapping, got {type(value).__name__}")
    return value


def _read(record: Mapping[str, Any], key: str) -> Any:
    try:
        return record[key]
    except KeyError:
        return _MISSING


def _skew_seconds(clock_skew: object) -> float:
    if isinstance(clock_skew, timedelta):
        seconds = clock_skew.total_seconds()
    elif isinstance(clock_skew, float) or type(clock_skew) is int:
        seconds = _as_seconds(clock_skew)
    else:
        raise SyncError("clock_skew must be a timedelta or seconds")

    if math.isnan(seconds) or seconds < 0:
        raise SyncError("clock_skew must be >= 0")
    return seconds


def _as_seconds(value: float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _later_writer(
    a_at: datetime | None, b_at: datetime | None, skew: float
) -> RecordAuthority | None:
    """Return the side that wrote later by more than ``skew`` seconds."""
    for name, stamp in (("a_modified_at", a_at), ("b_modified_at", b_at)):
        if stamp is not None and not isinstance(stamp, datetime):
            raise SyncError(f"{name} must be a datetime or None")
    if a_at is None or b_at is None:
        return None

    try:
        gap = (a_at - b_at).total_seconds()
    except TypeError as exc:
        raise SyncError(
            "a_modified_at and b_modified_at must both be naive or both aware"
        ) from exc

    if gap > skew:
        return RecordAuthority.SYSTEM_A
    if -gap > skew:
        return RecordAuthority.SYSTEM_B
    return None


def _equal(x: Any, y: Any, name: str) -> bool:
    """Compare two values of field ``name``, treating NaN as equal to NaN."""
    try:
        return _same(x, y)
    except Exception as exc:
        raise SyncError(
            f"values of field {name!r} cannot be compared: {type(exc).__name__}"
        ) from exc


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x):
        return math.isnan(y)
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(v, y[k]) for k, v in x.items())
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(map(_same, x, y))
    return bool(x == y)


def _log_plan(plan: SyncPlan) -> None:
    extra = {
        "record_id": plan.record_id,
        "record_type": plan.record_type,
        "writes_to_a": len(plan.updates_for_a),
        "writes_to_b": len(plan.updates_for_b),
        "conflict_count": len(plan.conflicts),
    }
    logger.debug("sync plan ready", extra=extra)

    if plan.manual_review:
        fields = [c.field_name for c in plan.manual_review]
        logger.warning(
            "sync fields held for review",
            extra={**extra, "review_fields": fields},
        )
