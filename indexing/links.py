"""Links: which customers are on which policy or claim, as the evidence says, never as an upload's tags say.

Servicing sees a customer's identity documents (ID card sides, signature) when the customer is on a
policy, claims when the customer is on a claim (roles.py ``identity_through``). A customer is on a
policy when the sale system issued an e-policy naming them (holder or insured: an ``epolicy`` document
filed under them), or when servicing staff linked them to it; on a claim when claims staff linked them.
A scan tagged with a claim number and someone's ID number links nobody: anyone who may upload could
otherwise open a stranger's ID card to claims.

Each staff link is two small objects, so both questions are one prefix listing::

    links/<policy|claim>/<number>/<HMAC of the ID number>.json      who is on this policy or claim
    links/customer/<HMAC of the ID number>/<policy|claim>=<number>.json   what this customer is on
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from indexing.index import lookup, segment
from models import read
from storage import ObjectStore
from vocabulary import BUSINESS_NO_PATTERN, DocType, utcnow

LINK_KINDS = ("policy", "claim")


class Link(BaseModel):
    """A customer put on a policy or claim by a person of that stage, with the reason they gave."""

    schema_: int = Field(1, alias="schema")
    kind: str = Field(pattern=r"^(policy|claim)$")
    number: str = Field(pattern=BUSINESS_NO_PATTERN)
    customer_id: str
    by: str  # who linked: the caller's key id
    role: str
    reason: str = Field(max_length=500)
    at: datetime

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=1).encode()


def _keys(store: ObjectStore, kind: str, number: str, customer: str) -> tuple[str, str]:
    name = segment(store, "customer", customer)
    return f"links/{kind}/{number}/{name}.json", f"links/customer/{name}/{kind}={number}.json"


def add_link(
    store: ObjectStore, kind: str, number: str, customer: str, by: str, role: str, reason: str
) -> Link:
    """Return the link after storing it both ways (linking twice keeps the first link's record)."""
    link = Link(kind=kind, number=number, customer_id=customer, by=by, role=role, reason=reason, at=utcnow())
    forward, back = _keys(store, kind, number, customer)
    if store.exists(forward):
        link = read(store, Link, forward)
    store.put(forward, link.to_json(), "application/json")
    store.put(back, link.to_json(), "application/json")
    return link


def links_of(store: ObjectStore, customer: str) -> list[Link]:
    """Return the staff links of one customer, to policies and claims."""
    prefix = f"links/customer/{segment(store, 'customer', customer)}/"
    return [read(store, Link, info.key) for info in store.list(prefix)]


def on_business(store: ObjectStore, kind: str, customer: str) -> bool:
    """Whether the customer is on a policy (an issued e-policy names them, or servicing linked them) or on
    a claim (claims linked them)."""
    prefix = f"links/customer/{segment(store, 'customer', customer)}/{kind}="
    if any(True for _ in store.list(prefix)):
        return True
    return kind == "policy" and any(e.type == DocType.epolicy for e in lookup(store, "customer", customer))
