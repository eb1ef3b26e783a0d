"""Records that cross rooms and processes: what is stored as JSON and what travels on the wire.

Each stored record carries ``schema`` so a later version can read an older one.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from errors import NotFound
from storage.base import ObjectNotFound, ObjectStore
from vocabulary import (
    BUSINESS_NO_PATTERN,
    MAIL_ID_PATTERN,
    SCAN_ID_PATTERN,
    ScanMode,
    ScanStatus,
    Stage,
)


class Stored(BaseModel):
    """A record kept as JSON in the object store, under a key made from its id (``key_of``)."""

    noun: ClassVar[str] = "record"  # what a person calls it: "no scan s2026..."

    @staticmethod
    def key_of(ident: str) -> str:
        raise NotImplementedError

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=1).encode()


R = TypeVar("R", bound=Stored)
M = TypeVar("M", bound=BaseModel)


def read(store: ObjectStore, model: type[M], key: str) -> M:
    """Return the JSON object stored at key as a model; raise ObjectNotFound if there is none."""
    return model.model_validate_json(store.get(key))


def find(store: ObjectStore, model: type[R], ident: str) -> R | None:
    """Return the record of this type and id, or None if none is stored."""
    try:
        return read(store, model, model.key_of(ident))
    except ObjectNotFound:
        return None


def load(store: ObjectStore, model: type[R], ident: str) -> R:
    """Return the record of this type and id; raise NotFound ("no scan s2026...") if none is stored."""
    record = find(store, model, ident)
    if record is None:
        raise NotFound(f"no {model.noun} {ident}")
    return record


class ScanFile(BaseModel):
    """One file of an upload, stored once at ``originals/<sha256>``."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: str
    size: int
    name: str | None = None  # the file name the client sent, for people; never part of a key


class Scan(Stored):
    """``scans/<scan_id>.json``: one upload (one or more files), who sent it, and how far it has gone."""

    noun: ClassVar[str] = "scan"

    @staticmethod
    def key_of(scan_id: str) -> str:
        return scan_key(scan_id)

    model_config = ConfigDict(frozen=True)

    schema_: int = Field(1, alias="schema")
    scan_id: str = Field(pattern=SCAN_ID_PATTERN)
    mode: ScanMode
    files: list[ScanFile] = Field(min_length=1)
    policy_no: str | None = None
    customer_id: str | None = None
    claim_no: str | None = None
    stage: Stage | None = None
    uploaded_by: str
    uploaded_at: datetime
    status: ScanStatus = ScanStatus.queued
    pages: int = 0
    documents: list[str] = Field(default_factory=list)  # doc ids, in the order found
    problems: list[str] = Field(default_factory=list)  # why a page must be rescanned (immediate mode: now)
    # What the evidence check of its documents found (indexing/case.py): a card that is no party of the
    # form, an upload's customer_id that no document shows, a card back waiting for its holder.
    checks: list[str] = Field(default_factory=list)
    error: str | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        return scan_key(self.scan_id)


def scan_key(scan_id: str) -> str:
    return f"scans/{scan_id}.json"


class KeyedValue(BaseModel):
    """One value typed by a keyer: who, when, what OCR had said, and in which round."""

    keyer: str
    at: datetime
    value: str
    ocr: str | None
    round: str  # single | blind | arbitration
    answer: str = "value"  # value | blank (the template lets the field be empty) | illegible


class AcceptedConflict(BaseModel):
    """A conflict between a document's values that a person with the authority accepted, and why."""

    review_id: str
    problems: list[str]
    by: str
    role: str
    reason: str
    at: datetime


class FieldRecord(BaseModel):
    """A field or image region of a stored document: where it was found and its image."""

    box: list[int]  # x, y, w, h on the source page
    quad: list[list[float]]
    page: int
    image: str  # object key of the field image
    kind: str | None = None  # None for an image region (signature, photo)
    text: str | None = None  # from a born-digital PDF's text layer
    # The decision (ocr/decide.py) and what people keyed: status accepted | key_entry | keyed.
    value: str | None = None
    confidence: float | None = None
    status: str | None = None
    reasons: list[str] = Field(default_factory=list)
    suggestion: str | None = None  # what OCR read where it was not sure
    double_entry: bool = False
    entries: list[KeyedValue] = Field(default_factory=list)


class DocumentRecord(Stored):
    """``documents/<doc_id>/record.json``."""

    noun: ClassVar[str] = "document"

    @staticmethod
    def key_of(doc_id: str) -> str:
        return document_key(doc_id)

    schema_: int = Field(1, alias="schema")
    doc_id: str
    scan_id: str
    type: str
    template: str | None = None
    source_pages: list[int]
    pages: list[str]  # object keys of the rectified page (or card) images
    thumbnail: str | None = None  # object key of a small image of the first page
    status: str  # ok | exception
    problems: list[str] = Field(default_factory=list)
    application_no: str | None = None
    fields: dict[str, FieldRecord] = Field(default_factory=dict)
    regions: dict[str, FieldRecord] = Field(default_factory=dict)
    captured_at: datetime
    complete: bool = False  # every field accepted, by OCR or by key-entry
    # indexing/: the business stage, the numbers it is entered under ({"policy": [...], "customer": [...],
    # "claim": [...]}), the index entry keys written for it, and the ID card on file it links to.
    stage: str | None = None
    keys: dict[str, list[str]] = Field(default_factory=dict)
    index: list[str] = Field(default_factory=list)
    on_file: str | None = None
    # An identity document's person by its own evidence (a card's trusted number, the front beside a
    # back): whose identity it shows, which is what servicing and claims may see it by (indexing/access).
    person: str | None = None
    image_sha256: str | None = None  # of the first page image: the same card scanned again is found
    # indexing/case.py: which party of the form in its scan an ID card front is (applicant | insured), the
    # numbers the scan's evidence ties it to beyond its own (a matched card: the form's policy number),
    # and what that evidence check found for a person to look at.
    party: str | None = None
    tied: dict[str, list[str]] = Field(default_factory=dict)
    checks: list[str] = Field(default_factory=list)
    accepted_conflicts: list[AcceptedConflict] = Field(default_factory=list)  # keyentry.py, by a review
    # A later scan of the same form (application number) or of the same person's card side supersedes
    # the earlier one; both point at each other. The same form content under the same numbers is also a
    # duplicate of the first scan of it.
    superseded_by: str | None = None
    supersedes: list[str] = Field(default_factory=list)
    duplicate_of: str | None = None

    @property
    def rescan(self) -> bool:
        """Whether its capture (or a keyer) asked for the page to be scanned again."""
        return self.status == "exception"

    @property
    def key(self) -> str:
        return document_key(self.doc_id)


def document_key(doc_id: str) -> str:
    return f"documents/{doc_id}/record.json"


class MailStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    failed = "failed"


class Mail(Stored):
    """``mail/<mail_id>.json``: one message to deliver exactly once; its bytes are ``mail/<mail_id>.eml``."""

    noun: ClassVar[str] = "mail"

    @staticmethod
    def key_of(mail_id: str) -> str:
        return mail_key(mail_id)

    model_config = ConfigDict(frozen=True)

    policy_no: str | None = None  # an e-policy's mail: its delivery is written into the policy record
    schema_: int = Field(1, alias="schema")
    mail_id: str = Field(pattern=MAIL_ID_PATTERN)
    to: list[str]
    subject: str
    status: MailStatus = MailStatus.queued
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None
    delivered_to: str | None = None  # "smtp://host:port" or the outbox file

    @property
    def key(self) -> str:
        return mail_key(self.mail_id)


def mail_key(mail_id: str) -> str:
    return f"mail/{mail_id}.json"


def mail_body_key(mail_id: str) -> str:
    return f"mail/{mail_id}.eml"


class EPolicyStatus(StrEnum):
    rendering = "rendering"  # queued or being rendered and signed
    signed = "signed"  # stored, the mail not yet delivered
    sent = "sent"  # the mail went out
    delivery_failed = "delivery_failed"  # the mail could not be delivered (see reason)


class EPolicyVersion(BaseModel):
    version: int
    digest: str  # SHA-256 of the request data (esign/epolicy.py): the same data is the same version
    requested_at: datetime
    status: EPolicyStatus = EPolicyStatus.rendering
    reason: str | None = None
    signed_at: datetime | None = None
    doc_id: str | None = None  # the document the PDF is indexed as


class Delivery(BaseModel):
    mail_id: str
    version: int
    to: str
    queued_at: datetime
    status: str = "queued"  # queued | sent | failed
    at: datetime | None = None
    error: str | None = None


class Download(BaseModel):
    version: int
    at: datetime
    address: str  # the client as the API's server sees it (IMAGING_TRUSTED_PROXIES)
    link_id: str | None = None  # the customer's link it came through


class CustomerLink(BaseModel):
    """A link to the customer's page, recorded when its mail is queued: the token's id (never the token),
    whom it went to, for which version, until when; and whether, when and why it was revoked. A token
    whose id is not here, or is revoked, opens nothing."""

    link_id: str
    version: int  # the version mailed with it: its holder is the one the link is bound to
    to: str  # the holder's e-mail address it was sent to
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


class EPolicy(Stored):
    """``epolicies/<policy_no>/policy.json``: the versions of one policy, their delivery, the customer's
    links and downloads."""

    noun: ClassVar[str] = "e-policy"

    @staticmethod
    def key_of(policy_no: str) -> str:
        return epolicy_key(policy_no)

    schema_: int = Field(1, alias="schema")
    policy_no: str = Field(pattern=BUSINESS_NO_PATTERN)
    versions: list[EPolicyVersion] = Field(default_factory=list)
    deliveries: list[Delivery] = Field(default_factory=list)
    downloads: list[Download] = Field(default_factory=list)
    links: list[CustomerLink] = Field(default_factory=list)

    @property
    def key(self) -> str:
        return epolicy_key(self.policy_no)

    @property
    def current(self) -> EPolicyVersion | None:
        return self.versions[-1] if self.versions else None


def epolicy_key(policy_no: str) -> str:
    return f"epolicies/{policy_no}/policy.json"


def epolicy_file(policy_no: str, version: int, kind: str) -> str:
    """Return the key of a version's ``request`` (.json), ``customer`` (encrypted PDF) or ``archive`` PDF."""
    return {
        "request": f"epolicies/{policy_no}/v{version}.json",
        "customer": f"epolicies/{policy_no}/v{version}.pdf",
        "archive": f"epolicies/{policy_no}/v{version}.archive.pdf",
    }[kind]
