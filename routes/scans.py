"""Scans: uploads stored and queued for capture, and a scan's status with its documents' fields."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis import Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

import metrics
import queues
from counter import (
    PageLeftOut,
    RescanRequest,
    counter_checks,
    document_name,
    field_labels,
    pages_left_out,
    rescan_requests,
)
from errors import DependencyDown, NotFound, QueueUnavailable
from media import SUPPORTED, sniff
from models import DocumentRecord, Scan, ScanFile, find, load
from roles import Operation, Role
from routes.deps import Caller, ErrorBody, RedisConn, SettingsDep, Store, checked_number, require
from routes.documents import FieldView, field_views
from settings import Settings
from storage import ObjectNotFound, ObjectStore
from vocabulary import (
    BUSINESS_NO_PATTERN,
    SCAN_ID_PATTERN,
    FieldStatus,
    ScanMode,
    ScanStatus,
    Stage,
    new_scan_id,
    utcnow,
)

log = logging.getLogger("imaging.api")
router = APIRouter(tags=["scans"])
Scanner = Annotated[Caller, Depends(require(Operation.upload_scans))]
MAX_WAIT = 60.0  # seconds an immediate-mode upload may hold its answer
MAX_FILES = 200  # files in one multipart upload
UploadedFile = tuple[bytes, str, str | None]  # the bytes, their media type, the client's file name


class ScanAccepted(BaseModel):
    scan_id: str
    status: ScanStatus
    mode: ScanMode
    files: list[ScanFile]
    status_url: str
    existing: bool = Field(
        False, description="the same files with the same numbers were uploaded before: this is that scan"
    )


class ScanFieldView(FieldView):
    label: str = Field(description="what the counter calls the field, in Chinese (投保人姓名)")


class DocumentView(BaseModel):
    doc_id: str
    type: str
    label: str = Field(description="what the counter calls the document, in Chinese (投保单, 身份证正面)")
    template: str | None
    pages: list[int]
    status: str = Field(description="ok, or exception when the quality gate asks for a rescan")
    complete: bool = Field(description="every field accepted, by OCR or by key-entry")
    problems: list[str]
    application_no: str | None
    on_file: str | None = Field(None, description="an ID card side already on file: the document it links to")
    party: str | None = Field(None, description="a card front: which party of the form (applicant, insured)")
    person: str | None = Field(None, description="an ID card side: whose it is by its evidence")
    checks: list[str] = Field(default_factory=list, description="what the evidence check found")
    superseded_by: str | None = Field(None, description="the later scan of the same form or card side")
    supersedes: list[str] = Field(default_factory=list, description="earlier scans of the same form or card")
    duplicate_of: str | None = Field(None, description="the first scan of the same form content and numbers")
    fields: dict[str, ScanFieldView]


class RecentScan(BaseModel):
    scan_id: str
    status: ScanStatus
    mode: ScanMode
    uploaded_at: str
    files: list[str | None] = Field(description="the files' names, as sent")
    status_url: str


class RecentScans(BaseModel):
    scans: list[RecentScan] = Field(description="the caller's latest scans (up to 20, a day), newest first")


class ScanView(Scan):
    documents: list[DocumentView] = Field(default_factory=list)  # type: ignore[assignment]
    fields_pending: int = Field(0, description="fields still waiting for key-entry")
    rescans: list[RescanRequest] = Field(
        default_factory=list, description="the pages to scan again, with what to do in Chinese and where"
    )
    notices: list[str] = Field(
        default_factory=list,
        description="evidence checks the counter should act on, in Chinese (a wrong card)",
    )
    left_out: list[PageLeftOut] = Field(
        default_factory=list,
        description="each page that became no document (blank, separator, refused with why) and each "
        "card-shaped region passed over (with its box), in Chinese: 第2页为空白页，已略过",
    )


MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "minItems": 1,
            "maxItems": MAX_FILES,
        },
        "mode": {"type": "string", "enum": [m.value for m in ScanMode]},
        "policy_no": {"type": "string", "pattern": BUSINESS_NO_PATTERN},
        "customer_id": {
            "type": "string",
            "description": "the customer's identity number (resident ID, residence permit, passport, travel "
            "permit, permanent residence card, credit code): a claim the documents are checked against",
        },
        "claim_no": {"type": "string", "pattern": BUSINESS_NO_PATTERN},
        "stage": {"type": "string", "enum": [s.value for s in Stage]},
    },
}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            **{media: {"schema": {"type": "string", "format": "binary"}} for media in SUPPORTED},
            "multipart/form-data": {
                "schema": MULTIPART_SCHEMA,
                "encoding": {"file": {"contentType": ", ".join(SUPPORTED)}},
            },
        },
    }
}


@router.post(
    "/v1/scans",
    status_code=202,
    response_model=ScanAccepted,
    responses={200: {"model": ScanView}, 413: {"model": ErrorBody}, 415: {"model": ErrorBody}},
    openapi_extra=UPLOAD_BODY,
)
async def upload_scan(
    request: Request,
    store: Store,
    conn: RedisConn,
    settings: SettingsDep,
    who: Scanner,
    mode: Annotated[ScanMode, Query(description="immediate: the customer waits; batch: back office")] = (
        ScanMode.batch
    ),
    wait: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT, description="immediate mode: hold the answer up to this many seconds"),
    ] = 0,
) -> JSONResponse:
    """Store scanned files and queue their capture and OCR.

    Either the raw body is one file (JPEG, PNG, TIFF or PDF), with `mode` in the query; or the body is
    `multipart/form-data` with one or more `file` parts and the form fields `mode`, `policy_no`,
    `customer_id`, `claim_no` and `stage`. Every file is stored before the answer. With `?wait=S` in
    immediate mode the answer waits until the scan is read (200, the full result) or S seconds pass
    (202, as without wait)."""
    keys: dict[str, str] = {}
    if (request.headers.get("content-type") or "").startswith("multipart/form-data"):
        files, form = await _multipart(request)
        mode = _form_value(form, "mode", ScanMode, mode)
        keys = _index_keys(form)
    else:
        data = await request.body()
        if not data:
            raise HTTPException(422, "the body is empty: send the scanned file as the request body")
        files = [(data, _media(data, "the body"), None)]
    accepted = await run_in_threadpool(_accept_scan, store, conn, settings, who, mode, files, keys)
    if wait and mode == ScanMode.immediate:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not await request.is_disconnected():
            scan = await run_in_threadpool(load, store, Scan, accepted.scan_id)
            if scan.status in (ScanStatus.captured, ScanStatus.failed):
                view = await run_in_threadpool(_scan_view, store, scan)
                return JSONResponse(view.model_dump(mode="json"), status_code=200)
            await asyncio.sleep(0.1)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202)


@router.get("/v1/scans", response_model=RecentScans)
def my_recent_scans(store: Store, conn: RedisConn, who: Scanner) -> RecentScans:
    """The caller's own latest scans, newest first: the counter page finds there the scans the station's
    folder sent (`imaging scan --watch` run with the clerk's personal token)."""
    try:
        ids = queues.recent_scans(conn, who.person)
    except RedisError as exc:
        raise QueueUnavailable(f"Redis is unreachable, try again shortly: {exc}") from exc
    scans = [scan for scan in (find(store, Scan, i) for i in ids) if scan is not None]
    return RecentScans(
        scans=[
            RecentScan(
                scan_id=s.scan_id,
                status=s.status,
                mode=s.mode,
                uploaded_at=s.uploaded_at.isoformat(),
                files=[f.name for f in s.files],
                status_url=f"/v1/scans/{s.scan_id}",
            )
            for s in scans
        ]
    )


@router.get("/v1/scans/{scan_id}", response_model=ScanView, responses={404: {"model": ErrorBody}})
def scan_status(
    scan_id: Annotated[str, PathParam(pattern=SCAN_ID_PATTERN)], store: Store, who: Scanner
) -> ScanView:
    """A scan's status (queued, processing, captured or failed, with the reason) and, once captured,
    its documents with every field's value, confidence and status (accepted, key_entry, keyed)."""
    scan = load(store, Scan, scan_id)
    if who.role != Role.admin and scan.uploaded_by != who.person:
        raise NotFound(f"no scan {scan_id}")  # another scanner's scan: do not confirm it exists
    return _scan_view(store, scan)


def _media(data: bytes, what: str) -> str:
    media = sniff(data[:1024])
    if media is None:
        raise HTTPException(415, f"{what} is not a file we read; send one of {', '.join(SUPPORTED)}")
    return media


async def _multipart(request: Request) -> tuple[list[UploadedFile], dict[str, str]]:
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=20)
    except Exception as exc:  # python-multipart's parse errors and Starlette's limits
        raise HTTPException(422, f"the multipart body cannot be read: {exc}") from exc
    files = []
    for part in form.getlist("file"):
        if isinstance(part, str):
            raise HTTPException(422, "`file` must be a file part, not a text field")
        data = await part.read()
        if not data:
            raise HTTPException(422, f"file {part.filename or len(files) + 1} is empty")
        files.append((data, _media(data, f"file {part.filename or len(files) + 1}"), part.filename))
    if not files:
        raise HTTPException(422, "no `file` part: send the scanned files as `file`")
    return files, {k: v for k, v in form.multi_items() if isinstance(v, str)}


def _form_value(form: dict[str, str], name: str, kind, default):
    if name not in form:
        return default
    try:
        return kind(form[name])
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise HTTPException(422, f"{name} must be one of {allowed}, not {form[name]!r}") from None


def _index_keys(form: dict[str, str]) -> dict[str, str]:
    """Return the upload's index keys after checking each against its pattern (422 naming the bad one)."""
    keys = {
        name: checked_number(name, form[name])
        for name in ("policy_no", "claim_no", "customer_id")
        if form.get(name, "").strip()
    }
    if form.get("stage"):
        keys["stage"] = _form_value(form, "stage", Stage, None).value
    return keys


def _scan_view(store: ObjectStore, scan: Scan) -> ScanView:
    documents, rescans = [], []
    for doc_id in scan.documents:
        record = load(store, DocumentRecord, doc_id)
        labels = field_labels(record)
        rescans += rescan_requests(record)
        documents.append(
            DocumentView(
                doc_id=doc_id,
                type=record.type,
                label=document_name(record.type),
                template=record.template,
                pages=record.source_pages,
                status=record.status,
                complete=record.complete,
                problems=record.problems,
                application_no=record.application_no,
                on_file=record.on_file,
                party=record.party,
                person=record.person,
                checks=record.checks,
                superseded_by=record.superseded_by,
                supersedes=record.supersedes,
                duplicate_of=record.duplicate_of,
                fields={
                    name: ScanFieldView(**view.model_dump(), label=labels[name])
                    for name, view in field_views(record).items()
                },
            )
        )
    pending = sum(1 for d in documents for f in d.fields.values() if f.status == FieldStatus.key_entry)
    return ScanView(
        **scan.model_dump(exclude={"documents"}),
        documents=documents,
        fields_pending=pending,
        rescans=rescans,
        notices=counter_checks(scan.checks),
        left_out=pages_left_out(scan.page_outcomes),
    )


def _accept_scan(
    store: ObjectStore,
    conn: Redis,
    settings: Settings,
    who: Caller,
    mode: ScanMode,
    files: list[UploadedFile],
    keys: dict[str, str],
) -> ScanAccepted:
    # Refuse before storing anything if the queue is away: we must not accept work we cannot queue.
    try:
        conn.ping()
    except RedisError as exc:
        raise QueueUnavailable(f"the job queue (Redis) is unreachable, try again shortly: {exc}") from exc
    upload = _upload_key(who, mode, files, keys)
    earlier = _earlier_scan(store, upload)
    if earlier is not None:
        log.info("scan %s: the same upload again, answered with it", earlier.scan_id)
        with contextlib.suppress(RedisError):
            queues.note_recent_scan(conn, who.person, earlier.scan_id)
        return ScanAccepted(
            scan_id=earlier.scan_id,
            status=earlier.status,
            mode=earlier.mode,
            files=earlier.files,
            status_url=f"/v1/scans/{earlier.scan_id}",
            existing=True,
        )
    stored = [
        ScanFile(sha256=store.put_original(data, media), content_type=media, size=len(data), name=name)
        for data, media, name in files
    ]
    scan = Scan(
        scan_id=new_scan_id(),
        mode=mode,
        files=stored,
        uploaded_by=who.person,
        uploaded_at=utcnow(),
        branch=who.branch,
        **keys,
    )
    store.put(scan.key, scan.to_json(), "application/json")
    try:
        queues.open_scan(conn, settings, scan)
    except QueueUnavailable:
        # Refused, so not kept: a scan record without its job would wait for ever. (The originals stay;
        # they are content-addressed, may be another scan's too, and the client's retry reuses them.)
        try:
            store.delete(scan.key)
        except DependencyDown:
            log.error("scan %s: refused, but its record could not be removed", scan.scan_id)
        raise
    store.put(upload, json.dumps({"scan_id": scan.scan_id}).encode(), "application/json")
    with contextlib.suppress(RedisError):  # a convenience for the counter page: never a reason to refuse
        queues.note_recent_scan(conn, who.person, scan.scan_id)
    metrics.count_upload(conn, scan.scan_id, mode.value)
    size = sum(f.size for f in stored)
    log.info(
        "scan %s stored (%d files, %d bytes) and queued on %s", scan.scan_id, len(stored), size, mode.value
    )
    return ScanAccepted(
        scan_id=scan.scan_id,
        status=scan.status,
        mode=mode,
        files=stored,
        status_url=f"/v1/scans/{scan.scan_id}",
    )


def _upload_key(who: Caller, mode: ScanMode, files: list[UploadedFile], keys: dict[str, str]) -> str:
    """Return the object that remembers an upload: the same bytes, in the same order, with the same
    numbers and mode, from the same caller, are the same upload (a retried request, a double click)."""
    digest = hashlib.sha256(json.dumps([who.key_id, mode.value, sorted(keys.items())]).encode())
    for data, _media, _name in files:
        digest.update(hashlib.sha256(data).digest())
    return f"uploads/{digest.hexdigest()}.json"


def _earlier_scan(store: ObjectStore, upload: str) -> Scan | None:
    """Return the scan this upload made before, unless it failed (sending it again is then a retry)."""
    try:
        scan_id = json.loads(store.get(upload))["scan_id"]
    except ObjectNotFound:
        return None
    scan = find(store, Scan, scan_id)
    return scan if scan is not None and scan.status != ScanStatus.failed else None
