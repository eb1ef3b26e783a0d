"""The service's words, each defined once: document types, field status, stages, modes and id shapes.

Every room imports these; none writes its own copy. Nothing here imports another module of the
project, so capture, OCR, key-entry, the index and the API can all lean on it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum

SCAN_ID_PATTERN = r"^s[0-9]{14}[0-9a-f]{12}$"
# A document id: its scan id without the s, then its place in the scan (d + 14 digits, 12 hex, 3 digits).
DOC_ID = r"d[0-9]{14}[0-9a-f]{12}[0-9]{3}"
DOC_ID_PATTERN = f"^{DOC_ID}$"
FIELD_NAME = r"[a-z][a-z0-9_]{0,39}"
MAIL_ID_PATTERN = r"^m[0-9a-f]{32}$"
BUSINESS_NO_PATTERN = r"^[A-Z0-9][A-Z0-9-]{2,30}[A-Z0-9]$"  # policy, application and claim numbers


class DocType(StrEnum):
    """What a stored document is. Capture finds the forms, cards and other pages (the application form, the
    claims material: claim form, medical invoice, bank card); the others come from uploads' context
    (claims evidence), the e-policy job and signature pads."""

    application_form = "application_form"
    idcard_front = "idcard_front"
    idcard_back = "idcard_back"
    other = "other"
    signature = "signature"
    claim_evidence = "claim_evidence"
    epolicy = "epolicy"
    claim_form = "claim_form"  # 理赔申请书
    medical_invoice = "medical_invoice"  # 医疗收费票据
    bank_card = "bank_card"  # a bank card page: the account a claim is paid to


CARD_TYPES = frozenset({DocType.idcard_front, DocType.idcard_back})


def is_card(doc_type: str) -> bool:
    """Whether a document type is an ID card side."""
    return doc_type in CARD_TYPES


class FieldStatus(StrEnum):
    accepted = "accepted"  # by OCR, every check passed
    key_entry = "key_entry"  # waiting for people
    keyed = "keyed"  # typed by people and accepted (a field the template lets be empty: keyed blank, "")
    conflict = "conflict"  # keyed, but the document's cross-checks fail: waits for a review (indexing/)
    illegible = "illegible"  # a keyer could not read it: the page must be scanned again


TRUSTED = frozenset({FieldStatus.accepted, FieldStatus.keyed})


class ScanMode(StrEnum):
    immediate = "immediate"  # counter staff, the customer is waiting (立等影像化)
    batch = "batch"  # back office, stacks after the fact (事后影像化)


class ScanStatus(StrEnum):
    queued = "queued"
    processing = "processing"
    captured = "captured"
    failed = "failed"


class EventKind(StrEnum):
    """What the service tells core systems (events.py): a document's values all trusted and its checks
    held; a claim's material all received and complete; a customer's acknowledgement of an e-policy."""

    document_completed = "document.completed"
    claim_material_complete = "claim.material_complete"
    epolicy_acknowledged = "epolicy.acknowledged"


class Stage(StrEnum):
    new_business = "new_business"
    underwriting = "underwriting"
    servicing = "servicing"
    claims = "claims"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_scan_id(now: datetime | None = None) -> str:
    """Return a scan id that sorts by upload time: ``s`` + UTC timestamp to the second + the
    microseconds in five hex digits + 28 random bits, so two uploads in one second still sort
    in the order they came (the index lists newest first by this id)."""
    now = now or utcnow()
    return "s" + now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond:05x}" + secrets.token_hex(4)[:7]


def is_scan_id(text: str) -> bool:
    return bool(re.fullmatch(SCAN_ID_PATTERN, text))


def doc_id_for(scan_id: str, index: int) -> str:
    """Return the id of the index-th document (1-based) of a scan: the same on every run of the job."""
    return f"d{scan_id[1:]}{index:03d}"


def epolicy_doc_id(requested_at: datetime, policy_no: str, version: int) -> str:
    """Return the id an e-policy version is indexed under: the doc-id shape, from its request time,
    a hash of the policy number and the version."""
    digest = hashlib.sha256(policy_no.encode()).hexdigest()[:12]
    return f"d{requested_at:%Y%m%d%H%M%S}{digest}{version % 1000:03d}"


def epolicy_source(policy_no: str, version: int) -> str:
    """Return what stands for the scan id of an e-policy version's document (it came from no scan)."""
    return f"epolicy-{policy_no}-v{version}"


def parse_epolicy_source(scan_id: str) -> tuple[str, int] | None:
    """Return the policy number and version an e-policy document's source names, or None."""
    match = re.fullmatch(r"epolicy-(.+)-v([0-9]+)", scan_id)
    return (match.group(1), int(match.group(2))) if match else None


def uploaded_at(doc_id: str) -> datetime:
    """Return when the scan holding the document was uploaded (the doc id begins with it, UTC)."""
    return datetime.strptime(doc_id[1:15], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
