"""Claims: one claim's material, checklist and invoices' total (indexing/claim.py), for claims staff and the
claims system. Documents of branches the caller does not reach count for nothing; identity documents the
caller may not see are listed without their values. Each read is in the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.exceptions import HTTPException

from errors import NotFound
from indexing.access import may_see
from indexing.claim import ClaimCase, claim_case, claim_records
from people.reach import reaches
from roles import Operation
from routes.deps import Caller, ErrorBody, RedisConn, SettingsDep, Store, checked_number, require
from routes.documents import audit_read, customers_of

router = APIRouter(tags=["claims"])
Reader = Annotated[Caller, Depends(require(Operation.read_claims))]


@router.get("/v1/claims/{claim_no}", response_model=ClaimCase, responses={404: {"model": ErrorBody}})
def claim(
    request: Request,
    claim_no: str,
    store: Store,
    conn: RedisConn,
    settings: SettingsDep,
    who: Reader,
    claim_type: Annotated[
        str | None, Query(max_length=40, description="default: the first checklist")
    ] = None,
) -> ClaimCase:
    """The claim's material by type (state and trusted values), the checklist of its type with what is
    still missing, the invoices' total, the checks across the material, and whether it is complete."""
    number = checked_number("claim_no", claim_no)
    if claim_type is not None and claim_type not in settings.checklists:
        raise HTTPException(422, f"claim_type {claim_type!r} is none of {', '.join(settings.checklists)}")
    records = [r for r in claim_records(store, number) if reaches(who, r.branch)]
    if not records:
        raise NotFound(f"no claim {number}")
    case = claim_case(store, conn, number, settings, claim_type, records)
    hidden = {r.doc_id for r in records if not may_see(store, who.role, r)}
    for items in case.material.values():
        for item in items:
            if item.doc_id in hidden:
                item.values, item.withheld = {}, True
    customers = sorted({c for r in records for c in customers_of(store, r)})
    audit_read(request, conn, who, f"{number} claim case", customers)
    return case
