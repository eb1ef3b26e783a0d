"""HTTP: validation, auth, enqueueing and serving. No image processing happens here."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from redis import Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import worker
from capture.formats import SUPPORTED, sniff
from errors import DependencyDown, ImagingError, NotFound, QueueUnavailable
from models import SCAN_ID_PATTERN, Scan, ScanMode, ScanStatus, new_scan_id, scan_key, utcnow
from settings import Role, Settings, load_settings
from storage import ObjectNotFound, ObjectStore, open_store

log = logging.getLogger("imaging.api")
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
    sha256: str
    status_url: str


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
            401: {"model": ErrorBody},
            403: {"model": ErrorBody},
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
        responses={413: {"model": ErrorBody}, 415: {"model": ErrorBody}},
        tags=["scans"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in SUPPORTED},
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
    ) -> ScanAccepted:
        """Store a scanned file (JPEG, PNG, TIFF or PDF as the raw body) and queue its capture."""
        data = await request.body()
        if not data:
            raise HTTPException(422, "the body is empty: send the scanned file as the request body")
        media = sniff(data[:1024])
        if media is None:
            raise HTTPException(415, f"the body is not a file we read; send one of {', '.join(SUPPORTED)}")
        return await run_in_threadpool(_accept_scan, store, conn, settings, who, mode, data, media)

    @router.get(
        "/v1/scans/{scan_id}", response_model=Scan, responses={404: {"model": ErrorBody}}, tags=["scans"]
    )
    def scan_status(
        scan_id: Annotated[str, PathParam(pattern=SCAN_ID_PATTERN)],
        store: Store,
        who: Annotated[Caller, Depends(require(Role.scanner))],
    ) -> Scan:
        """A scan's status: queued, processing, captured or failed (with the reason)."""
        try:
            scan = Scan.model_validate_json(store.get(scan_key(scan_id)))
        except ObjectNotFound:
            raise NotFound(f"no scan {scan_id}") from None
        if who.role != Role.admin and scan.uploaded_by != who.key_id:
            raise NotFound(f"no scan {scan_id}")  # another scanner's scan: do not confirm it exists
        return scan

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


def _accept_scan(
    store: ObjectStore,
    conn: Redis,
    settings: Settings,
    who: Caller,
    mode: ScanMode,
    data: bytes,
    media: str,
) -> ScanAccepted:
    # Refuse before storing anything if the queue is away: we must not accept work we cannot queue.
    try:
        conn.ping()
    except RedisError as exc:
        raise QueueUnavailable(f"the job queue (Redis) is unreachable, try again shortly: {exc}") from exc
    digest = store.put_original(data, media)
    scan = Scan(
        scan_id=new_scan_id(),
        mode=mode,
        sha256=digest,
        content_type=media,
        size=len(data),
        uploaded_by=who.key_id,
        uploaded_at=utcnow(),
    )
    store.put(scan.key, scan.to_json(), "application/json")
    worker.enqueue(
        conn, settings, mode.value, worker.capture_scan, scan.scan_id, job_id=f"capture-{scan.scan_id}"
    )
    log.info("scan %s stored (%s, %d bytes) and queued on %s", scan.scan_id, media, len(data), mode.value)
    return ScanAccepted(
        scan_id=scan.scan_id,
        status=scan.status,
        mode=mode,
        sha256=digest,
        status_url=f"/v1/scans/{scan.scan_id}",
    )
