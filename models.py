"""Records that cross rooms and processes: what is stored as JSON and what travels on the wire.

Each stored record carries ``schema`` so a later version can read an older one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from errors import CorruptObject, DependencyDown, NotFound
from storage.base import ObjectNotFound, ObjectStore
from vocabulary import (
    BUSINESS_NO_PATTERN,
    MAIL_ID_PATTERN,
    SCAN_ID_PATTERN,
    ScanMode,
    ScanStatus,
    Stage,
)

# Upgrades of stored records, one step a version: (record type's class name, the version a step upgrades
# from) -> a function from the JSON object at that version to the next. A record type's schema is the
# default of its ``schema`` field: raising it means adding the step from the old one here. So far every
# type is at 1, which every record this service wrote carries (one without ``schema`` is read as 1).
UPGRADES: dict[tuple[str, int], Callable[[dict], dict]] = {}


def upgrade(model: type[Stored], raw: dict) -> dict:
    """Return a record's JSON object upgraded step by step to the model's current schema."""
    version, target = raw.get("schema", 1), model.current_schema()
    while version < target:
        step = UPGRADES.get((model.__name__, version))
        if step is None:
            raise CorruptObject(f"no upgrade of a {model.noun} from schema {version} to {version + 1}")
        raw = {**step(dict(raw)), "schema": version + 1}
        version += 1
    return raw


class NewerSchema(DependencyDown):
    """A record written by a newer version of the service than this one: refused, never rewritten (it
    would lose what this code does not know). A job is retried, so a rolling upgrade finishes it."""

    error = "record_from_newer_version"


class Stored(BaseModel):
    """A record kept as JSON in the object store, under a key made from its id (``key_of``).

    Its ``schema`` is the version of its shape. A record of a newer schema than this code's is refused
    (``NewerSchema``); an older one is upgraded by the steps in ``UPGRADES`` as it is read. Fields this
    code does not know (a newer minor version added them) are kept on rewrite, nested ones too."""

    noun: ClassVar[str] = "record"  # what a person calls it: "no scan s2026..."
    _stored: dict | None = PrivateAttr(default=None)  # the JSON it was read from, for fields unknown here

    @staticmethod
    def key_of(ident: str) -> str:
        raise NotImplementedError

    @classmethod
    def current_schema(cls) -> int:
        return int(cls.model_fields["schema_"].default)

    @classmethod
    def from_stored(cls, data: bytes, key: str) -> Self:
        """Return the record stored as data at key, upgraded to this code's schema; raise NewerSchema for
        a record of a later one."""
        raw = json.loads(data)
        found = raw.get("schema", 1) if isinstance(raw, dict) else 1
        if isinstance(found, int) and found > cls.current_schema():
            raise NewerSchema(
                f"{key} is {cls.noun} schema {found}, written by a newer version of imaging; this one reads "
                f"up to {cls.current_schema()}: upgrade imaging on this machine"
            )
        raw = upgrade(cls, raw)
        record = cls.model_validate(raw)
        record._stored = raw
        return record

    def to_json(self) -> bytes:
        if not self._stored:
            return self.model_dump_json(by_alias=True, indent=1).encode()
        merged = _keep_unknown(self._stored, self.model_dump(mode="json", by_alias=True))
        return json.dumps(merged, ensure_ascii=False, indent=1).encode()


def _keep_unknown(old: object, new: object) -> object:
    """Return new with the keys of old that new lacks put back, at every depth (lists item by item when
    their lengths agree): what a newer version wrote survives this one's rewrite."""
    if isinstance(old, dict) and isinstance(new, dict):
        kept = {k: _keep_unknown(old.get(k), v) for k, v in new.items()}
        return kept | {k: v for k, v in old.items() if k not in new}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [_keep_unknown(o, n) for o, n in zip(old, new, strict=True)]
    return new


R = TypeVar("R", bound=Stored)
M = TypeVar("M", bound=BaseModel)


def read(store: ObjectStore, model: type[M], key: str) -> M:
    """Return the JSON object stored at key as a model; raise ObjectNotFound if there is none (and
    NewerSchema for a record a newer version wrote)."""
    if issubclass(model, Stored):
        return model.from_stored(store.get(key), key)
    return model.model_validate_json(store.get(key))


def find(store: ObjectStore, model: type[R], ident: str) -> R | None:
    """Return the record of this type and id, or None if none is stored."""
    try:
        return read(store, model, model.key_of(ident))
    except ObjectNotFound:
        return None


def find_all(store: ObjectStore, model: type[R], prefix: str) -> list[R]:
    """Return every record of this type kept as ``<prefix><id>.json``, in key order."""
    found = []
    for info in store.list(prefix):
        record = find(store, model, info.key.removeprefix(prefix).removesuffix(".json"))
        if record is not None:
            found.append(record)
    return found


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
    pages: int | None = None  # how many pages capture read from it (the scan's pages run on across files)


class ScanPage(BaseModel):
    """What became of one page of an upload: in documents, a separator, blank, or refused with why."""

    page: int
    outcome: str  # "document", "separator", "blank", "refused"
    documents: list[str] = Field(default_factory=list)  # the doc ids holding the page
    reason: str | None = None  # why a refused page could not be read
    notes: list[str] = Field(default_factory=list)  # what capture did to it (straightened, turned upright)
    passed_over: list[str] = Field(default_factory=list)  # card-shaped regions not taken for cards, and where
    # The same regions' x, y, w, h in the page's pixels as decoded, and the page's width and height (none
    # in scans captured before they were kept): the counter outlines them and says where they are.
    passed_over_boxes: list[list[int]] = Field(default_factory=list)
    size: list[int] | None = None


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
    uploaded_by: str  # the person or station (a service token's name); k<hash> for a bootstrap key
    uploaded_at: datetime
    branch: str | None = None  # the uploader's branch; None for a bootstrap key (the root of the tree)
    status: ScanStatus = ScanStatus.queued
    pages: int = 0
    documents: list[str] = Field(default_factory=list)  # doc ids, in the order found
    page_outcomes: list[ScanPage] = Field(default_factory=list)  # every page, with what became of it
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
    choices: list[str] | None = None  # a choice field's options (tick boxes), offered to the keyer
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
    text_layer: str | None = None  # object key of a born-digital PDF's words with their boxes (for search)
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

    branch: str | None = None  # the uploading branch (people/reach.py: who may see it); None: the root

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


class Receipt(BaseModel):
    """What became of a version at the customer's end (签收): first shown on their page, first
    downloaded, acknowledged (when, through which link, from which address), and the one reminder."""

    opened_at: datetime | None = None
    downloaded_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_link: str | None = None  # the id of the customer's link it was acknowledged through
    acknowledged_address: str | None = None  # the client as the API's server sees it
    reminder_mail_id: str | None = None  # the reminder mailed when it was not acknowledged in time
    reminded_at: datetime | None = None


class EPolicyVersion(BaseModel):
    version: int
    digest: str  # SHA-256 of the request data (esign/epolicy.py): the same data is the same version
    requested_at: datetime
    status: EPolicyStatus = EPolicyStatus.rendering
    reason: str | None = None
    signed_at: datetime | None = None
    doc_id: str | None = None  # the document the PDF is indexed as
    receipt: Receipt = Field(default_factory=Receipt)


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
