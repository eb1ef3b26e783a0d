"""HTTP: validation, auth, enqueueing and serving. No image processing happens here."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from redis import Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import idnumber
import keyentry
import worker
from capture.formats import SUPPORTED, sniff
from errors import DependencyDown, ImagingError, NotFound, QueueUnavailable
from models import DocumentRecord, Scan, ScanFile, document_key, scan_key
from settings import Role, Settings, load_settings
from storage import ObjectNotFound, ObjectStore, open_store
from vocabulary import BUSINESS_NO_PATTERN, SCAN_ID_PATTERN, ScanMode, ScanStatus, Stage, new_scan_id, utcnow

log = logging.getLogger("imaging.api")
MAX_WAIT = 60.0  # seconds an immediate-mode upload may hold its answer
MAX_FILES = 200  # files in one multipart upload
TASK_ID_PATTERN = r"^d[0-9]{14}[0-9a-f]{12}[0-9]{3}\.[a-z][a-z0-9_]{0,39}$"
KEYENTRY_PAGE = Path(__file__).with_name("web") / "keyentry.html"
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from IMAGING_API_KEYS"
)


# ---- errors as JSON -----------------------------------------------------------------------------


class ErrorBody(BaseModel):
    error: str = Field(examples=["not_found"])
    detail: str | list = Field(examples=["no scan s20261123103000a1b2c3d4e5f6"])


def _error(status: int, error: str, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


_HTTP_ERRORS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return _error(exc.status_code, _HTTP_ERRORS.get(exc.status_code, "error"), exc.detail, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return _error(422, "invalid_request", detail)


async def _imaging_error(request: Request, exc: ImagingError) -> JSONResponse:
    headers = {"Retry-After": "30"} if isinstance(exc, DependencyDown) else None
    if exc.http_status >= 500 and not isinstance(exc, DependencyDown):
        return await _unexpected(request, exc)
    return _error(exc.http_status, exc.error, exc.message, headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    reference = secrets.token_hex(6)
    log.error("error %s on %s %s", reference, request.method, request.url.path, exc_info=exc)
    return _error(500, "internal_error", f"an unexpected error; quote reference {reference} to support")


# ---- request size limit -------------------------------------------------------------------------


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"the body is larger than the limit of {limit} bytes (IMAGING_MAX_UPLOAD_BYTES)"
        )


class BodyLimit:
    """Refuse a body over the limit from its Content-Length, or while it streams in, never buffering it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _error(400, "bad_request", "Content-Length is not a number")(scope, receive, send)
                return
            if int(length) > self.limit:
                await _error(413, "too_large", BodyTooLarge(self.limit).detail)(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


# ---- callers and roles --------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    key_id: str  # a short hash of the key: safe to store and log, never the key itself
    role: Role


def _key_id(key: str) -> str:
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:12]


def caller(request: Request, api_key: Annotated[str | None, Depends(API_KEY_HEADER)]) -> Caller:
    if not api_key:
        raise HTTPException(401, "send an API key in the X-API-Key header")
    role = None
    # Compare against every key, each in constant time, so timing tells nothing about which is close.
    for key, key_role in request.app.state.settings.keys.items():
        if hmac.compare_digest(key.encode(), api_key.encode()):
            role = key_role
    if role is None:
        raise HTTPException(401, "the API key is not known")
    return Caller(_key_id(api_key), role)


def require(*roles: Role):
    allowed = {*roles, Role.admin}

    def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if who.role not in allowed:
            raise HTTPException(
                403, f"role {who.role} may not do this; allowed: {', '.join(sorted(allowed))}"
            )
        return who

    return check


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


def get_redis(request: Request) -> Redis:
    return request.app.state.redis


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


Store = Annotated[ObjectStore, Depends(get_store)]
RedisConn = Annotated[Redis, Depends(get_redis)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


# ---- bodies -------------------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    redis: str
    storage: str


class ScanAccepted(BaseModel):
    scan_id: str
    status: ScanStatus
    mode: ScanMode
    files: list[ScanFile]
    status_url: str


class FieldView(BaseModel):
    value: str | None = Field(description="the trusted value; null until accepted or keyed")
    confidence: float | None = Field(description="OCR's lowest word confidence, 0-100")
    status: str | None = Field(description="accepted (by OCR), key_entry (waiting for people) or keyed")
    reasons: list[str] = Field(default_factory=list, description="why the field went to key-entry")
    image_url: str


class DocumentView(BaseModel):
    doc_id: str
    type: str
    template: str | None
    pages: list[int]
    status: str = Field(description="ok, or exception when the quality gate asks for a rescan")
    complete: bool = Field(description="every field accepted, by OCR or by key-entry")
    problems: list[str]
    application_no: str | None
    on_file: str | None = Field(None, description="an ID card side already on file: the document it links to")
    fields: dict[str, FieldView]


class ScanView(Scan):
    documents: list[DocumentView] = Field(default_factory=list)  # type: ignore[assignment]
    fields_pending: int = Field(0, description="fields still waiting for key-entry")


class TaskView(BaseModel):
    task_id: str
    field: str
    label: str
    kind: str
    round: str = Field(description="single, blind (double entry, no suggestion shown) or arbitration")
    suggestion: str | None = Field(description="what OCR read; withheld in blind rounds")
    values: list[str] = Field(description="arbitration: the two keyers' differing values")
    reasons: list[str] = Field(description="why OCR's reading was not accepted")
    image_url: str
    lease_seconds: int
    doc_id: str
    document_type: str
    scan_id: str


class NextTask(BaseModel):
    task: TaskView | None
    waiting: int = Field(description="fields waiting for key-entry, this one included")


class KeyedIn(BaseModel):
    value: str = Field(max_length=200)


class KeyResult(BaseModel):
    task_id: str
    status: str = Field(description="keyed (accepted) or waiting (for a second keyer or an arbiter)")
    value: str | None = None
    detail: str | None = None


def _task_view(task: keyentry.Task) -> TaskView:
    return TaskView(
        task_id=task.task_id,
        field=task.field,
        label=task.label,
        kind=task.kind,
        round=task.round,
        suggestion=task.suggestion,
        values=task.values,
        reasons=task.reasons,
        image_url=f"/v1/keyentry/{task.task_id}/image",
        lease_seconds=max(0, round(task.lease_until - time.time())),
        doc_id=task.doc_id,
        document_type=task.doc_type,
        scan_id=task.scan_id,
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
        "customer_id": {"type": "string", "description": "18-character ID number (GB 11643)"},
        "claim_no": {"type": "string", "pattern": BUSINESS_NO_PATTERN},
        "stage": {"type": "string", "enum": [s.value for s in Stage]},
    },
}


class FailedJobOut(BaseModel):
    job_id: str
    queue: str
    func: str
    ended_at: str
    error: str


class RequeueRequest(BaseModel):
    job_ids: list[str] = Field(min_length=1, max_length=1000)


class RequeueResult(BaseModel):
    requeued: list[str]


# ---- the app ------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(
        title="Imaging and e-policy service",
        version="0.1.0",
        description="Scans in, trusted field values and indexed images out; signed e-policies delivered.",
        responses={
            400: {
                "model": ErrorBody,
                "description": "the request cannot be read: a body that is not UTF-8, a bad Content-Length",
            },
            401: {"model": ErrorBody},
            403: {"model": ErrorBody},
            413: {"model": ErrorBody, "description": "the body is over IMAGING_MAX_UPLOAD_BYTES"},
            422: {"model": ErrorBody},
            503: {"model": ErrorBody},
        },
    )
    app.state.settings = settings
    app.state.store = open_store(settings)
    app.state.redis = worker.connect(settings.redis_url)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ImagingError, _imaging_error)
    app.add_exception_handler(Exception, _unexpected)
    app.include_router(_routes())
    from epolicies import router as epolicy_routes  # these build on this module's dependencies
    from retrieval import router as retrieval_routes

    app.include_router(retrieval_routes())
    app.include_router(epolicy_routes())
    return app


def _routes() -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, tags=["service"])
    def healthz(store: Store, conn: RedisConn) -> JSONResponse:
        """Whether Redis and the object store answer; 503 names the part that is down."""
        parts = {"redis": "ok", "storage": "ok"}
        try:
            conn.ping()
        except RedisError as exc:
            parts["redis"] = f"down: {exc}"
        try:
            store.ping()
        except DependencyDown as exc:
            parts["storage"] = f"down: {exc.message}"
        ok = all(v == "ok" for v in parts.values())
        return JSONResponse({"status": "ok" if ok else "down", **parts}, status_code=200 if ok else 503)

    @router.post(
        "/v1/scans",
        status_code=202,
        response_model=ScanAccepted,
        responses={200: {"model": ScanView}, 413: {"model": ErrorBody}, 415: {"model": ErrorBody}},
        tags=["scans"],
        openapi_extra={
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
        },
    )
    async def upload_scan(
        request: Request,
        store: Store,
        conn: RedisConn,
        settings: SettingsDep,
        who: Annotated[Caller, Depends(require(Role.scanner))],
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
                scan = await run_in_threadpool(_load_scan, store, accepted.scan_id)
                if scan.status in (ScanStatus.captured, ScanStatus.failed):
                    view = await run_in_threadpool(_scan_view, store, scan)
                    return JSONResponse(view.model_dump(mode="json"), status_code=200)
                await asyncio.sleep(0.1)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    @router.get(
        "/v1/scans/{scan_id}", response_model=ScanView, responses={404: {"model": ErrorBody}}, tags=["scans"]
    )
    def scan_status(
        scan_id: Annotated[str, PathParam(pattern=SCAN_ID_PATTERN)],
        store: Store,
        who: Annotated[Caller, Depends(require(Role.scanner))],
    ) -> ScanView:
        """A scan's status (queued, processing, captured or failed, with the reason) and, once captured,
        its documents with every field's value, confidence and status (accepted, key_entry, keyed)."""
        scan = _load_scan(store, scan_id)
        if who.role != Role.admin and scan.uploaded_by != who.key_id:
            raise NotFound(f"no scan {scan_id}")  # another scanner's scan: do not confirm it exists
        return _scan_view(store, scan)

    @router.get("/v1/keyentry/next", response_model=NextTask, tags=["key-entry"])
    def keyentry_next(conn: RedisConn, who: Annotated[Caller, Depends(require(Role.keyer))]) -> NextTask:
        """Lease the next field to key to the caller: its image, kind, OCR suggestion (not in a blind
        round) and document. The lease runs out after `lease_seconds`; the task then returns to the pool."""
        task = keyentry.lease(conn, who.key_id)
        waiting = keyentry.waiting(conn)
        if task is None:
            return NextTask(task=None, waiting=waiting)
        return NextTask(task=_task_view(task), waiting=waiting)

    @router.post(
        "/v1/keyentry/{task_id}",
        response_model=KeyResult,
        responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
        tags=["key-entry"],
    )
    def keyentry_submit(
        task_id: Annotated[str, PathParam(pattern=TASK_ID_PATTERN)],
        body: KeyedIn,
        conn: RedisConn,
        store: Store,
        who: Annotated[Caller, Depends(require(Role.keyer))],
    ) -> KeyResult:
        """Submit the value for a leased field, validated like OCR output (422 with the reason; the lease
        is kept). A double-entry field waits for a second blind keyer, and for an arbiter if they differ."""
        return KeyResult(**keyentry.submit(conn, store, task_id, who.key_id, body.value))

    @router.get(
        "/v1/keyentry/{task_id}/image",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
        tags=["key-entry"],
    )
    def keyentry_image(
        task_id: Annotated[str, PathParam(pattern=TASK_ID_PATTERN)],
        conn: RedisConn,
        store: Store,
        who: Annotated[Caller, Depends(require(Role.keyer))],
    ) -> Response:
        """The field image of a task leased to the caller."""
        task = keyentry.held(conn, task_id, who.key_id)
        return Response(store.get(task.image), media_type="image/png", headers={"Cache-Control": "private"})

    @router.get("/keyentry", response_class=HTMLResponse, include_in_schema=False)
    def keyentry_page() -> HTMLResponse:
        return HTMLResponse(KEYENTRY_PAGE.read_text(encoding="utf-8"))

    @router.get("/v1/jobs/failed", response_model=list[FailedJobOut], tags=["jobs"])
    def jobs_failed(
        conn: RedisConn, who: Annotated[Caller, Depends(require(Role.admin))]
    ) -> list[FailedJobOut]:
        """Jobs that failed for good, oldest first."""
        return [
            FailedJobOut(job_id=f.job_id, queue=f.queue, func=f.func, ended_at=f.ended_at, error=f.error)
            for f in worker.failed_jobs(conn)
        ]

    @router.post("/v1/jobs/requeue", response_model=RequeueResult, tags=["jobs"])
    def jobs_requeue(
        body: RequeueRequest, conn: RedisConn, who: Annotated[Caller, Depends(require(Role.admin))]
    ) -> RequeueResult:
        """Put failed jobs back on their queues."""
        return RequeueResult(requeued=worker.requeue(conn, body.job_ids))

    return router


def _media(data: bytes, what: str) -> str:
    media = sniff(data[:1024])
    if media is None:
        raise HTTPException(415, f"{what} is not a file we read; send one of {', '.join(SUPPORTED)}")
    return media


async def _multipart(request: Request) -> tuple[list[tuple[bytes, str, str | None]], dict[str, str]]:
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


def checked_number(name: str, raw: str) -> str:
    """Return a policy_no, claim_no or customer_id normalised, or raise 422 naming it: numbers become
    storage keys, so nothing that does not fit its pattern goes further."""
    value = raw.strip().upper()
    if name == "customer_id":
        if not idnumber.is_valid(value):
            raise HTTPException(422, "customer_id is not an 18-character ID number with a valid check digit")
    elif not re.fullmatch(BUSINESS_NO_PATTERN, value):
        raise HTTPException(422, f"{name} {raw!r} is not 4-32 letters, digits and dashes")
    return value


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


def _load_scan(store: ObjectStore, scan_id: str) -> Scan:
    try:
        return Scan.model_validate_json(store.get(scan_key(scan_id)))
    except ObjectNotFound:
        raise NotFound(f"no scan {scan_id}") from None


def field_views(record: DocumentRecord) -> dict[str, FieldView]:
    """Return each field's value, confidence, status and image URL, as the API shows them."""
    return {
        name: FieldView(
            value=f.value,
            confidence=f.confidence,
            status=f.status,
            reasons=f.reasons if f.status == "key_entry" else [],
            image_url=f"/v1/documents/{record.doc_id}/fields/{name}",
        )
        for name, f in record.fields.items()
    }


def _scan_view(store: ObjectStore, scan: Scan) -> ScanView:
    documents = []
    for doc_id in scan.documents:
        record = DocumentRecord.model_validate_json(store.get(document_key(doc_id)))
        fields = field_views(record)
        documents.append(
            DocumentView(
                doc_id=doc_id,
                type=record.type,
                template=record.template,
                pages=record.source_pages,
                status=record.status,
                complete=record.complete,
                problems=record.problems,
                application_no=record.application_no,
                on_file=record.on_file,
                fields=fields,
            )
        )
    pending = sum(1 for d in documents for f in d.fields.values() if f.status == "key_entry")
    return ScanView(**scan.model_dump(exclude={"documents"}), documents=documents, fields_pending=pending)


def _accept_scan(
    store: ObjectStore,
    conn: Redis,
    settings: Settings,
    who: Caller,
    mode: ScanMode,
    files: list[tuple[bytes, str, str | None]],
    keys: dict[str, str],
) -> ScanAccepted:
    # Refuse before storing anything if the queue is away: we must not accept work we cannot queue.
    try:
        conn.ping()
    except RedisError as exc:
        raise QueueUnavailable(f"the job queue (Redis) is unreachable, try again shortly: {exc}") from exc
    stored = [
        ScanFile(sha256=store.put_original(data, media), content_type=media, size=len(data), name=name)
        for data, media, name in files
    ]
    scan = Scan(
        scan_id=new_scan_id(),
        mode=mode,
        files=stored,
        uploaded_by=who.key_id,
        uploaded_at=utcnow(),
        **keys,
    )
    store.put(scan.key, scan.to_json(), "application/json")
    try:
        conn.zadd(worker.OPEN_SCANS, {scan.scan_id: time.time()})
        worker.enqueue(
            conn, settings, mode.value, worker.capture_scan, scan.scan_id, job_id=f"capture-{scan.scan_id}"
        )
    except (QueueUnavailable, RedisError):
        # Refused, so not kept: a scan record without its job would wait for ever. (The originals stay;
        # they are content-addressed, may be another scan's too, and the client's retry reuses them.)
        try:
            store.delete(scan.key)
        except DependencyDown:
            log.error("scan %s: refused, but its record could not be removed", scan.scan_id)
        with contextlib.suppress(RedisError):
            conn.zrem(worker.OPEN_SCANS, scan.scan_id)
        raise QueueUnavailable(f"the job queue (Redis) did not take scan {scan.scan_id}; try again") from None
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
