"""Who sees which documents: the stages of the role table (roles.py), and the rule for identity documents.

- ``underwriter`` sees new-business and underwriting documents;
- ``servicing`` and ``claims`` see the documents of their own stage, and the identity documents (ID card
  sides, signatures) of customers who are on a policy (servicing) or a claim (claims): a customer is on
  a policy when one of their documents is filed under a policy number, on a claim likewise;
- ``admin`` sees everything; ``scanner`` and ``keyer`` see no documents here (a scanner has its scans'
  status, a keyer the field images of the tasks it holds).
"""

from __future__ import annotations

from indexing.index import Entry, lookup
from models import DocumentRecord, find
from roles import Role, identity_through, stages
from storage import ObjectStore
from vocabulary import DocType

IDENTITY_TYPES = frozenset({DocType.idcard_front, DocType.idcard_back, DocType.signature})
SIGNATURE_REGIONS = frozenset({"applicant_signature"})


def sees_stage(role: Role, stage: str | None) -> bool:
    """Whether the role sees a document of this stage for its stage alone."""
    return role == Role.admin or stage in stages(role)


def is_identity(doc_type: str, part: str | None = None) -> bool:
    """Whether a document (or one region of it) is an identity document: a card side or a signature."""
    return doc_type in IDENTITY_TYPES or (doc_type == DocType.application_form and part in SIGNATURE_REGIONS)


def customer_on_business(store: ObjectStore, role: Role, customers: list[str]) -> bool:
    """Whether any of these customers is on a policy (servicing) or a claim (claims)."""
    kind = identity_through(role)
    if kind is None:
        return False
    for customer in customers:
        for entry in lookup(store, "customer", customer):
            record = find(store, DocumentRecord, entry.doc_id)
            if record is not None and record.keys.get(kind):
                return True
    return False


def may_see(store: ObjectStore, role: Role, record: DocumentRecord, part: str | None = None) -> bool:
    """Whether the role may see the document (``part``: a field or region name, for a signature)."""
    if sees_stage(role, record.stage):
        return True
    kind = identity_through(role)
    if kind is None or not is_identity(record.type, part):
        return False
    if record.keys.get(kind):
        return True
    return customer_on_business(store, role, record.keys.get("customer", []))


def visible_entries(
    store: ObjectStore, role: Role, entries: list[Entry], kind: str, value: str
) -> list[Entry]:
    """Return the entries of one lookup the role may see. Identity documents found under a policy or claim
    are on it by construction; found under a customer they need the customer to be on one."""
    if role == Role.admin:
        return entries
    shown = [e for e in entries if sees_stage(role, e.stage)]
    identity = [e for e in entries if not sees_stage(role, e.stage) and is_identity(e.type)]
    business = identity_through(role)
    if (
        identity
        and business
        and (kind == business or (kind == "customer" and customer_on_business(store, role, [value])))
    ):
        shown += identity
    return sorted(shown, key=lambda e: e.doc_id, reverse=True)
