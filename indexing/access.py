"""Who sees which documents: the stages of the role table (roles.py), and the rule for identity documents.

- ``underwriter`` sees new-business and underwriting documents;
- ``servicing`` and ``claims`` see the documents of their own stage, and the identity documents (ID card
  sides, the applicant's signature) of a person who is on a policy (servicing) or a claim (claims)
  by evidence or a staff link (indexing/links.py). Whose identity a document shows is its own evidence:
  a card front's trusted ID number, the front beside a back, the form's trusted applicant number for
  the applicant's signature; never the numbers the upload was tagged with, nor another person listed
  on the same document;
- ``admin`` sees everything; ``scanner`` and ``keyer`` see no documents here (a scanner has its scans'
  status, a keyer the field images of the tasks it holds).
"""

from __future__ import annotations

from indexing.index import Entry, trusted_value
from indexing.links import on_business
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


def identity_owner(record: DocumentRecord, part: str | None = None) -> str | None:
    """Return whose identity the document (or its region ``part``) shows, by its own evidence; None when
    that is not known (a back whose front was not beside it, a number nobody trusted yet)."""
    if record.type == DocType.idcard_front:
        return trusted_value(record.fields, "id_number") or record.person
    if record.type == DocType.application_form and part in SIGNATURE_REGIONS:
        return trusted_value(record.fields, "applicant_id_number")
    return record.person if record.type in IDENTITY_TYPES else None


def may_see(store: ObjectStore, role: Role, record: DocumentRecord, part: str | None = None) -> bool:
    """Whether the role may see the document (``part``: a field or region name, for a signature). For
    servicing and claims an identity document follows its person's links, whatever its stage: an upload
    tagged with a claim number is a claims document, but it must not open a stranger's ID card."""
    if role == Role.admin:
        return True
    kind = identity_through(role)
    if kind is not None and is_identity(record.type, part):
        owner = identity_owner(record, part)
        return owner is not None and on_business(store, kind, owner)
    return sees_stage(role, record.stage)


def visible_entries(store: ObjectStore, role: Role, entries: list[Entry]) -> list[Entry]:
    """Return the entries of one lookup the role may see: by stage, and identity documents of people who
    are on a policy or claim for the role (their records are read to know whose identity they show)."""
    if role == Role.admin:
        return entries
    if not identity_through(role):
        return [e for e in entries if sees_stage(role, e.stage)]
    shown = [e for e in entries if not is_identity(e.type) and sees_stage(role, e.stage)]
    for e in entries:
        if is_identity(e.type):
            record = find(store, DocumentRecord, e.doc_id)
            if record is not None and may_see(store, role, record):
                shown.append(e)
    return sorted(shown, key=lambda e: e.doc_id, reverse=True)
