"""Documents: a case's documents by policy, customer or claim number, their page and field images, a
customer's ID card and signature, and the access log.

Every image served is put in the audit trail (who, their branch, which document and part, when, why,
the customers it shows) before it leaves (people/audit.py); if that cannot be written the image is not
served. Images carry their store ETag and are
cached privately by the browser for a short while.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field
from redis import Redis
from starlette.exceptions import HTTPException

import events
import idnumber
from errors import NotFound
from events import DocumentValues
from indexing.access import identity_owner, may_see, visible_entries
from indexing.index import current_cards, lookup, still_valid
from media import SUPPORTED
from models import DocumentRecord, Scan, find, load
from people import audit
from people.reach import reaches, sees_every_branch
from roles import Operation
from routes.deps import Caller, ErrorBody, RedisConn, Store, checked_number, require
from storage import ObjectNotFound, ObjectStore
from vocabulary import (
    DOC_ID_PATTERN,
    FIELD_NAME,
    TRUSTED,
    DocType,
    FieldStatus,
    Stage,
    is_scan_id,
    parse_epolicy_source,
    uploaded_at,
)

IMAGE_CACHE = "private, max-age=300"
router = APIRouter(tags=["documents"])
Reader = Annotated[Caller, Depends(require(Operation.read_documents))]
ValuesReader = Annotated[Caller, Depends(require(Operation.read_values))]
DocId = Annotated[str, PathParam(pattern=DOC_ID_PATTERN)]


class FieldView(BaseModel):
    value: str | None = Field(description="the trusted value; null until accepted or keyed")
    confidence: float | None = Field(description="OCR's lowest word confidence, 0-100")
    status: str | None = Field(description="accepted (by OCR), key_entry (waiting for people) or keyed")
    reasons: list[str] = Field(default_factory=list, description="why the field went to key-entry")
    image_url: str


def field_views(record: DocumentRecord) -> dict[str, FieldView]:
    """Return each field's value, confidence, status and image URL, as the API shows them."""
    return {
        name: FieldView(
            value=f.value,
            confidence=f.confidence,
            status=f.status,
            reasons=f.reasons if f.status == FieldStatus.key_entry else [],
            image_url=f"/v1/documents/{record.doc_id}/fields/{name}",
        )
        for name, f in record.fields.items()
    }


class DocumentSummary(BaseModel):
    doc_id: str
    type: str
    stage: str | None
    uploaded_at: datetime = Field(description="when the scan holding the document was uploaded")
    scan_id: str
    pages: int
    complete: bool
    state: str = Field(
        description="complete; key_entry (fields wait for key-entry); review (keyed values conflict); "
        "rescan (the page is to be scanned again); superseded (a later scan replaces it); incomplete"
    )
    values: dict[str, str] = Field(
        description="its trusted names and numbers by field name (applicant_name, application_no, ...), "
        "ID numbers masked"
    )
    holder: str | None = Field(
        description="an ID card side: its person as a keyed hash, the same on every copy of their card "
        "(the number itself is not sent)"
    )
    on_file: str | None = Field(description="an ID card side already on file: the document it links to")
    rescan: bool = Field(description="its capture (or a keyer) asked for the page to be scanned again")
    superseded_by: str | None = Field(description="the later scan of the same form or card side")
    supersedes: list[str] = Field(description="the earlier scans of the same form or card side")
    duplicate_of: str | None = Field(description="the first scan of the same form content and numbers")
    url: str
    page_urls: list[str]
    thumbnail_url: str | None
    pdf_url: str | None = Field(None, description="an e-policy: its signed PDF (staff copy)")


class DocumentList(BaseModel):
    kind: str = Field(description="policy, customer or claim")
    number: str
    total: int = Field(description="documents you may see that match the filters, on every page")
    documents: list[DocumentSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null at the end")
    customers: list[str] = Field(description="ID numbers on these documents: look up their ID cards")


class OriginalView(BaseModel):
    name: str | None = Field(description="the file name the scanner sent")
    content_type: str
    size: int
    url: str


class DocumentMeta(DocumentSummary):
    template: str | None
    captured_at: datetime
    status: str
    problems: list[str]
    keys: dict[str, list[str]] = Field(description="the numbers it is filed under: policy, customer, claim")
    party: str | None = Field(description="an ID card front: the form's party it is (applicant, insured)")
    checks: list[str] = Field(description="what the evidence check of its scan found for a person")
    fields: dict[str, FieldView]
    regions: dict[str, str] = Field(description="image regions (signature, photo): name to image URL")
    originals: list[OriginalView] = Field(
        description="the files of the upload it came from, as the scanner sent them (download_originals)"
    )


class IdCardView(BaseModel):
    customer_id: str
    front: DocumentSummary | None
    back: DocumentSummary | None
    valid_to: str | None = Field(description="the back's expiry, YYYY-MM-DD or 长期, once trusted")
    valid: bool | None = Field(description="whether the card is valid today; null when unknown")


class SignatureView(BaseModel):
    customer_id: str
    doc_id: str
    image_url: str
    uploaded_at: datetime


class AccessRecord(BaseModel):
    at: datetime
    who: str
    role: str
    doc_id: str
    part: str


def document_state(record: DocumentRecord) -> str:
    """Return where the document stands, as the viewer shows it: superseded, rescan, complete, key_entry,
    review or incomplete (in that order: a superseded page waits for nothing)."""
    statuses = {f.status for f in record.fields.values()}
    if record.superseded_by:
        return "superseded"
    if record.rescan:
        return "rescan"
    if record.complete:
        return "complete"
    if FieldStatus.key_entry in statuses:
        return "key_entry"
    if FieldStatus.conflict in statuses:
        return "review"
    return "incomplete"


def key_values(record: DocumentRecord) -> dict[str, str]:
    """Return the document's trusted names and numbers by field name, ID numbers masked (GB 11643: the
    region and the last four characters shown)."""
    found = {"application_no": record.application_no} if record.application_no else {}
    for name, f in record.fields.items():
        if f.status not in TRUSTED or not f.value:
            continue
        if f.kind == "id_number":
            found[name] = idnumber.mask(f.value)
        elif f.kind == "name" or name.endswith("_no"):
            found[name] = f.value
    return found


def _summary(record: DocumentRecord, store: ObjectStore) -> DocumentSummary:
    base = f"/v1/documents/{record.doc_id}"
    card = record.type in (DocType.idcard_front, DocType.idcard_back)
    return DocumentSummary(
        doc_id=record.doc_id,
        type=record.type,
        stage=record.stage,
        uploaded_at=uploaded_at(record.doc_id),
        scan_id=record.scan_id,
        pages=len(record.pages),
        complete=record.complete,
        state=document_state(record),
        values=key_values(record),
        holder=store.private_name(record.person)[:16] if card and record.person else None,
        on_file=record.on_file,
        rescan=record.rescan,
        superseded_by=record.superseded_by,
        supersedes=record.supersedes,
        duplicate_of=record.duplicate_of,
        url=base,
        page_urls=[f"{base}/pages/{n}" for n in range(1, len(record.pages) + 1)],
        thumbnail_url=f"{base}/thumbnail" if record.thumbnail else None,
        pdf_url=_epolicy_pdf(record),
    )


def _epolicy_pdf(record: DocumentRecord) -> str | None:
    """The staff PDF of an e-policy document (its scan id is ``epolicy-<policy_no>-v<k>``)."""
    source = parse_epolicy_source(record.scan_id) if record.type == DocType.epolicy else None
    return f"/v1/epolicies/{source[0]}/pdf?version={source[1]}" if source else None


def _meta(record: DocumentRecord, store: ObjectStore) -> DocumentMeta:
    base = f"/v1/documents/{record.doc_id}"
    fields = field_views(record)
    scan = find(store, Scan, record.scan_id) if is_scan_id(record.scan_id) else None
    files = scan.files if scan else []
    return DocumentMeta(
        **_summary(record, store).model_dump(),
        originals=[
            OriginalView(
                name=f.name, content_type=f.content_type, size=f.size, url=f"{base}/original?file={n}"
            )
            for n, f in enumerate(files, start=1)
        ],
        template=record.template,
        captured_at=record.captured_at,
        status=record.status,
        problems=record.problems,
        keys=record.keys,
        party=record.party,
        checks=record.checks,
        fields=fields,
        regions={name: f"{base}/fields/{name}" for name in record.regions},
    )


def _readable(store: ObjectStore, who: Caller, doc_id: str, part: str | None = None) -> DocumentRecord:
    """Return the record if the caller may see it; a document it may not see is reported as absent."""
    record = load(store, DocumentRecord, doc_id)
    if not reaches(who, record.branch) or not may_see(store, who.role, record, part):
        raise NotFound(f"no document {doc_id}")
    return record


def customers_of(store: ObjectStore, record: DocumentRecord) -> list[str]:
    """Return the customers a document concerns, by the keyed hash the index and the audit trail use."""
    numbers = {*record.keys.get("customer", []), *([record.person] if record.person else [])}
    return sorted(store.private_name(n) for n in numbers)


def reason_of(request: Request) -> str:
    """Return why the reader opened this: the number the viewer was opened for (its X-Reason header)."""
    return "".join(c for c in (request.headers.get("x-reason") or "")[:64] if c.isprintable())


def log_read(
    request: Request, store: ObjectStore, conn: Redis, who: Caller, record: DocumentRecord, part: str
) -> None:
    """Put one image read in the audit trail; raise QueueUnavailable (503) if it cannot be written."""
    audit_read(request, conn, who, f"{record.doc_id} {part}", customers_of(store, record))


def audit_read(
    request: Request, conn: Redis, who: Caller, what: str, customers: list[str], action: str = "read"
) -> None:
    """Put one read (or download) in the audit trail, with the caller and the reason the viewer gave
    (X-Reason)."""
    audit.record(
        conn,
        person=who.person,
        branch=who.branch,
        role=who.role.value,
        action=action,
        object=what,
        reason=reason_of(request),
        customers=customers,
    )


def _image(
    request: Request,
    store: ObjectStore,
    conn: Redis,
    who: Caller,
    record: DocumentRecord,
    key: str,
    part: str,
):
    try:
        info = store.stat(key)
    except ObjectNotFound:
        raise NotFound(f"document {record.doc_id} has no {part}") from None
    log_read(request, store, conn, who, record, part)
    etag = f'"{info.etag}"'
    headers = {"ETag": etag, "Cache-Control": IMAGE_CACHE}
    if etag in (request.headers.get("if-none-match") or "").replace("W/", "").split(", "):
        return Response(status_code=304, headers=headers)
    return Response(store.get(key), media_type=info.content_type or "image/png", headers=headers)


IMAGE_RESPONSES = {
    200: {"content": {"image/png": {}}, "description": "the image"},
    304: {"description": "not modified (If-None-Match)"},
    404: {"model": ErrorBody},
}


def _in_reach(store: ObjectStore, who: Caller, entries: list) -> list:
    """Return the entries of documents whose branch the caller reaches (their records are read only
    when the caller does not see every branch)."""
    if sees_every_branch(who):
        return entries
    return [e for e in entries if (r := find(store, DocumentRecord, e.doc_id)) and reaches(who, r.branch)]


@router.get("/v1/documents", response_model=DocumentList)
def find_documents(
    store: Store,
    who: Reader,
    policy_no: Annotated[str | None, Query(description="policy or application number")] = None,
    customer_id: Annotated[str | None, Query(description="18-character ID number")] = None,
    claim_no: str | None = None,
    type: Annotated[DocType | None, Query(description="only documents of this type")] = None,
    stage: Stage | None = None,
    since: Annotated[date | None, Query(description="uploaded on or after this day (UTC)")] = None,
    until: Annotated[date | None, Query(description="uploaded on or before this day (UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=DOC_ID_PATTERN, description="from next_cursor")] = None,
) -> DocumentList:
    """Everything filed under one policy (or application), customer or claim number that you may see,
    newest first, `limit` to a page. One prefix listing of the index answers it."""
    asked = (("policy", "policy_no", policy_no), ("customer", "customer_id", customer_id))
    given = [(k, name, v) for k, name, v in (*asked, ("claim", "claim_no", claim_no)) if v]
    if len(given) != 1:
        raise HTTPException(422, "give exactly one of policy_no, customer_id or claim_no")
    kind, name, raw = given[0]
    number = checked_number(name, raw)
    entries = visible_entries(store, who.role, lookup(store, kind, number))
    entries = _in_reach(store, who, entries)
    entries = [
        e
        for e in entries
        if (type is None or e.type == type.value)
        and (stage is None or e.stage == stage.value)
        and (since is None or e.uploaded_at.date() >= since)
        and (until is None or e.uploaded_at.date() <= until)
    ]
    start = next((i for i, e in enumerate(entries) if e.doc_id < cursor), len(entries)) if cursor else 0
    page = entries[start : start + limit]
    records = [r for r in (find(store, DocumentRecord, e.doc_id) for e in page) if r is not None]
    customers = sorted({c for r in records for c in r.keys.get("customer", [])} - {number})
    more = start + limit < len(entries)
    return DocumentList(
        kind=kind,
        number=number,
        total=len(entries),
        documents=[_summary(r, store) for r in records],
        next_cursor=page[-1].doc_id if more and page else None,
        customers=customers,
    )


@router.get("/v1/documents/{doc_id}", response_model=DocumentMeta, responses={404: {"model": ErrorBody}})
def document(doc_id: DocId, store: Store, who: Reader) -> DocumentMeta:
    """A document's metadata: type, stage, numbers it is filed under, pages, fields with their values."""
    return _meta(_readable(store, who, doc_id), store)


@router.get(
    "/v1/documents/{doc_id}/values", response_model=DocumentValues, responses={404: {"model": ErrorBody}}
)
def document_values(
    request: Request, doc_id: DocId, store: Store, conn: RedisConn, who: ValuesReader
) -> DocumentValues:
    """A document's trusted values, for a core system (the data of its `document.completed` event):
    each field read and proven or keyed, the numbers it is filed under, the fields still open, and
    `complete`. The same role, stage and branch rules as the document; each read is in the audit trail."""
    record = _readable(store, who, doc_id)
    audit_read(request, conn, who, f"{doc_id} values", customers_of(store, record))
    return events.document_values(record)


@router.get("/v1/documents/{doc_id}/pages/{n}", response_class=Response, responses=IMAGE_RESPONSES)
def page_image(
    request: Request,
    doc_id: DocId,
    n: Annotated[int, PathParam(ge=1, le=1000)],
    store: Store,
    conn: RedisConn,
    who: Reader,
) -> Response:
    """Page n (from 1) of a document, rectified, as PNG."""
    record = _readable(store, who, doc_id)
    if n > len(record.pages):
        raise NotFound(f"document {doc_id} has {len(record.pages)} page(s), not {n}")
    return _image(request, store, conn, who, record, record.pages[n - 1], f"page {n}")


@router.get("/v1/documents/{doc_id}/thumbnail", response_class=Response, responses=IMAGE_RESPONSES)
def thumbnail(
    request: Request,
    doc_id: DocId,
    store: Store,
    conn: RedisConn,
    who: Reader,
) -> Response:
    """A small image of the document's first page, for result lists."""
    record = _readable(store, who, doc_id)
    if not record.thumbnail:
        raise NotFound(f"document {doc_id} has no thumbnail")
    return _image(request, store, conn, who, record, record.thumbnail, "thumbnail")


@router.get("/v1/documents/{doc_id}/fields/{name}", response_class=Response, responses=IMAGE_RESPONSES)
def field_image(
    request: Request,
    doc_id: DocId,
    name: Annotated[str, PathParam(pattern=f"^{FIELD_NAME}$")],
    store: Store,
    conn: RedisConn,
    who: Reader,
) -> Response:
    """The image of one field, or of a region such as `applicant_signature` or `photo`."""
    record = _readable(store, who, doc_id, name)
    part = record.fields.get(name) or record.regions.get(name)
    if part is None:
        raise NotFound(f"document {doc_id} has no field or region {name}")
    return _image(request, store, conn, who, record, part.image, name)


@router.get(
    "/v1/documents/{doc_id}/original",
    response_class=Response,
    responses={
        200: {
            "content": {media: {} for media in [*SUPPORTED, "application/octet-stream"]},
            "description": "the file as uploaded",
        },
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
    },
)
def original(
    request: Request,
    doc_id: DocId,
    store: Store,
    conn: RedisConn,
    who: Annotated[Caller, Depends(require(Operation.download_originals))],
    file: Annotated[int, Query(ge=1, le=1000, description="which file of the upload, from 1")] = 1,
) -> Response:
    """A file of the upload the document came from, as the scanner sent it (a download, in the audit
    trail). An upload holds other documents too: only a caller who may see every one of them gets it."""
    record = _readable(store, who, doc_id)
    if not is_scan_id(record.scan_id):
        raise NotFound(f"document {doc_id} came from no upload (an e-policy: its PDF is the original)")
    scan = load(store, Scan, record.scan_id)
    records = [find(store, DocumentRecord, d) for d in scan.documents]
    hidden = [
        r for r in records if r is None or not reaches(who, r.branch) or not may_see(store, who.role, r)
    ]
    if hidden:
        raise HTTPException(
            403,
            f"the upload of {doc_id} also holds {len(hidden)} document(s) you may not see: "
            "its original is not yours to download; use the document's page images",
        )
    if file > len(scan.files):
        raise NotFound(f"the upload of {doc_id} has {len(scan.files)} file(s), not {file}")
    sent = scan.files[file - 1]
    data = store.get_original(sent.sha256)
    audit_read(request, conn, who, f"{doc_id} original {file}", customers_of(store, record), "download")
    name = sent.name or f"{record.scan_id}-{file}"
    return Response(
        data,
        media_type=sent.content_type if sent.content_type in SUPPORTED else "application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/v1/customers/{customer_id}/idcard", response_model=IdCardView, responses={404: {"model": ErrorBody}}
)
def idcard(customer_id: str, store: Store, who: Reader) -> IdCardView:
    """The customer's current ID card: the newest front and back on file, and whether it is valid."""
    customer = checked_number("customer_id", customer_id)
    cards = {
        t: r
        for t, r in current_cards(store, customer).items()
        if reaches(who, r.branch) and may_see(store, who.role, r)
    }
    if not cards:
        raise NotFound(f"no ID card on file for customer {idnumber.mask(customer)}")
    back = cards.get(DocType.idcard_back)
    valid_to = None
    if back is not None and (f := back.fields.get("valid_to")) and f.status in TRUSTED:
        valid_to = f.value
    return IdCardView(
        customer_id=customer,
        front=_summary(cards[DocType.idcard_front], store) if DocType.idcard_front in cards else None,
        back=_summary(back, store) if back else None,
        valid_to=valid_to,
        valid=still_valid(valid_to) if valid_to else None,
    )


@router.get(
    "/v1/customers/{customer_id}/signature",
    response_model=SignatureView,
    responses={404: {"model": ErrorBody}},
)
def signature(customer_id: str, store: Store, who: Reader) -> SignatureView:
    """The customer's newest signature: a signature document, or the applicant's signature on the newest
    application form they signed."""
    customer = checked_number("customer_id", customer_id)
    for entry in lookup(store, "customer", customer):
        if entry.type not in (DocType.signature, DocType.application_form):
            continue
        record = find(store, DocumentRecord, entry.doc_id)
        if record is None or record.rescan or not reaches(who, record.branch):  # a rescan is no specimen
            continue
        if record.type == DocType.signature and record.pages and may_see(store, who.role, record):
            url = f"/v1/documents/{record.doc_id}/pages/1"
        elif (
            "applicant_signature" in record.regions
            and identity_owner(record, "applicant_signature") == customer
            and may_see(store, who.role, record, "applicant_signature")
        ):
            url = f"/v1/documents/{record.doc_id}/fields/applicant_signature"
        else:
            continue
        return SignatureView(
            customer_id=customer, doc_id=record.doc_id, image_url=url, uploaded_at=entry.uploaded_at
        )
    raise NotFound(f"no signature on file for customer {idnumber.mask(customer)}")


@router.get("/v1/access", response_model=list[AccessRecord], tags=["service"])
def access_log(
    conn: RedisConn,
    store: Store,
    who: Annotated[Caller, Depends(require(Operation.read_access_log))],
    doc_id: Annotated[str | None, Query(pattern=DOC_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AccessRecord]:
    """The newest image reads, optionally of one document (admin only), from the audit trail."""
    reads = [e for e in audit.query(conn, store, limit=10**9) if e.action == "read"]
    found = []
    for event in reversed(reads):
        read_doc, _, part = event.object.partition(" ")
        if doc_id is not None and read_doc != doc_id:
            continue
        found.append(AccessRecord(at=event.at, who=event.person, role=event.role, doc_id=read_doc, part=part))
        if len(found) >= limit:
            break
    return found
