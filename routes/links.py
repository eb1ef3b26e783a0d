"""Links: staff of a stage put a customer on a policy (servicing) or a claim (claims), saying why; the
customer's identity documents then open to that stage (indexing/links.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from indexing.links import Link, add_link, links_of
from roles import Operation, Role, identity_through
from routes.deps import Caller, ErrorBody, Store, checked_number, require

router = APIRouter(tags=["documents"])


class LinkRequest(BaseModel):
    kind: Literal["policy", "claim"]
    number: str = Field(max_length=40, description="the policy or claim number")
    customer_id: str = Field(max_length=18, description="18-character ID number (GB 11643)")
    reason: str = Field(min_length=3, max_length=500, description="why this person is on it, for the record")


@router.post("/v1/links", status_code=201, response_model=Link, responses={403: {"model": ErrorBody}})
def link_customer(
    body: LinkRequest, store: Store, who: Annotated[Caller, Depends(require(Operation.link_customers))]
) -> Link:
    """Put a customer on a policy (servicing) or a claim (claims): their ID card and signature then open
    to that stage. Recorded with who linked and why; linking twice keeps the first record."""
    if who.role != Role.admin and identity_through(who.role) != body.kind:
        raise HTTPException(
            403, f"role {who.role} links customers to a {identity_through(who.role)}, not a {body.kind}"
        )
    number = checked_number("claim_no" if body.kind == "claim" else "policy_no", body.number)
    customer = checked_number("customer_id", body.customer_id)
    return add_link(store, body.kind, number, customer, who.key_id, who.role.value, body.reason)


@router.get("/v1/customers/{customer_id}/links", response_model=list[Link])
def customer_links(
    customer_id: str, store: Store, who: Annotated[Caller, Depends(require(Operation.read_documents))]
) -> list[Link]:
    """The policies and claims staff put this customer on, with who and why."""
    return links_of(store, checked_number("customer_id", customer_id))
