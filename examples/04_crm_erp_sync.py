"""CRM <-> ERP account sync: field authority, field mapping and a conflict.

The CRM (system A) owns the e-mail, the ERP (system B) owns the credit limit,
both may change the phone, and the segment is only ever changed by a person.
The ERP names its fields differently and keeps money in cents, so each field
has a ``FieldMapping``. Since the last sync (the stored base) the CRM changed
the e-mail and the phone, the ERP changed the credit limit, the phone and the
segment. ``SyncBoundary.plan`` makes a three-way merge against the base:
owned changes flow to the other side, the phone conflict goes to the later
writer, and the segment is held for review until a person ``resolve``s it.
A second round then finds nothing to write: applied values do not echo back.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.sync_boundary import (
    FieldMapping,
    RecordAuthority,
    SyncBoundary,
    apply,
    resolve,
)

BOUNDARY = SyncBoundary(
    "account",
    "crm",
    "erp",
    field_authority={
        "email": RecordAuthority.SYSTEM_A,
        "credit_limit": RecordAuthority.SYSTEM_B,
        "phone": RecordAuthority.SHARED,
        "segment": RecordAuthority.MANUAL,
    },
    excluded_fields={"internal_notes"},
    mappings=[
        FieldMapping("email", "EMAIL_ADDR", normalize=str.lower),
        FieldMapping(
            "credit_limit",
            "CREDIT_LIMIT_CENTS",
            to_b=lambda euros: round(euros * 100),
            to_a=lambda cents: cents / 100,
        ),
        FieldMapping("phone", "PHONE"),
        FieldMapping("segment", "SEGMENT"),
    ],
    clock=ManualClock(start=1_700_000_000.0),
)


def main() -> dict[str, Any]:
    base = {
        "email": "ops@acme.example",
        "credit_limit": 5000.0,
        "phone": "+1 555 0100",
        "segment": "smb",
    }
    crm = {**base, "email": "Billing@Acme.example", "phone": "+1 555 0101"}
    crm["internal_notes"] = "never leaves the CRM"
    erp = {
        "EMAIL_ADDR": "ops@acme.example",
        "CREDIT_LIMIT_CENTS": 750_000,
        "PHONE": "+1 555 0199",
        "SEGMENT": "enterprise",
    }
    crm_changed = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)
    erp_changed = crm_changed + timedelta(minutes=3)

    plan = BOUNDARY.plan(
        "acct-42", crm, erp, base, a_modified_at=crm_changed, b_modified_at=erp_changed
    )
    for name, decision in plan.decisions.items():
        print(f"  {name:<13} {decision.value}")
    print(f"  write to CRM {dict(plan.updates_for_a)}")
    print(f"  write to ERP {dict(plan.updates_for_b)}")
    crm, erp, base = apply(plan, crm, erp)

    review = plan.manual_review[0]
    print(
        f"  held for review: {review.field_name} crm={review.value_a!r}"
        f" erp={review.value_b!r}; a person picks the ERP value"
    )
    fix = resolve(review, review.value_b)
    crm, erp, base = apply(fix, crm, erp, base=base)

    again = BOUNDARY.plan("acct-42", crm, erp, base)
    print(f"  second round writes anything: {again.has_writes}")
    return {
        "decisions": {name: d.value for name, d in plan.decisions.items()},
        "updates_for_a": dict(plan.updates_for_a),
        "updates_for_b": dict(plan.updates_for_b),
        "conflicts": [c.field_name for c in plan.conflicts],
        "manual_review": [c.field_name for c in plan.manual_review],
        "crm": crm,
        "erp": erp,
        "second_round_writes": again.has_writes,
    }


if __name__ == "__main__":
    print(main())
