"""The HTTP app: its factory, the body limit, errors as JSON, and one router per resource (routes/).

Validation, auth, enqueueing and serving happen in the routes; no image processing happens here.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import production
import queues
from errors import DependencyDown, ImagingError
from people.identity import identify
from people.sessions import COOKIE as SESSION_COOKIE
from routes import (
    admin,
    claims,
    counter,
    customers,
    documents,
    epolicies,
    events,
    figures,
    jobs,
    keyentry,
    links,
    operations,
    pages,
    people,
    reviews,
    scans,
    signin,
)
from routes.deps import ErrorBody
from routes.headers import SecurityHeaders
from routes.request_id import RequestId
from settings import Settings, load_settings
from storage import open_store

log = logging.getLogger("imaging.api")


# ---- errors as JSON -----------------------------------------------------------------------------


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


# ---- the gate: who and how much, before a byte of the body is read -------------------------------


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(413, f"the body is larger than the limit of {limit} bytes ({setting})")


def body_limit(settings: Settings, method: str, path: str) -> tuple[int, str]:
    """Return the largest body a route takes and the setting that says so: uploads of scans and PDFs to
    verify are files; every other body is a small JSON document."""
    if method == "POST" and path == "/v1/scans":
        return settings.max_upload_bytes, "IMAGING_MAX_UPLOAD_BYTES"
    if method == "POST" and path in ("/v1/verify", "/verify"):
        return settings.max_verify_bytes, "IMAGING_MAX_VERIFY_BYTES"
    return settings.max_json_bytes, "IMAGING_MAX_JSON_BYTES"


class Gate:
    """Refuse a request before its body is read: a caller on a route of the API who is not signed in
    and has no known token or key (401), or a session without its CSRF token (403) (a JSON body was
    parsed before the key was checked, so anyone could make the API hold a 64 MiB document); and a body
    over its route's limit, from its Content-Length or as it streams in. The caller found is kept in
    the request's state for ``routes.deps.caller``."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and not length.isdigit():
            await _error(400, "bad_request", "Content-Length is not a number")(scope, receive, send)
            return
        has_body = (length is not None and int(length) > 0) or b"transfer-encoding" in headers
        if has_body and scope["path"].startswith("/v1/"):
            request = Request(scope)
            try:
                found = await run_in_threadpool(
                    identify,
                    self.settings,
                    scope["app"].state.store,
                    scope["app"].state.redis,
                    method=scope["method"],
                    api_key=request.headers.get("x-api-key"),
                    session_id=request.cookies.get(SESSION_COOKIE),
                    csrf=request.headers.get("x-csrf-token"),
                )
            except ImagingError as exc:
                retry = {"Retry-After": "30"} if isinstance(exc, DependencyDown) else None
                await _error(exc.http_status, exc.error, exc.message, retry)(scope, receive, send)
                return
            scope.setdefault("state", {})["caller"] = found
        limit, setting = body_limit(self.settings, scope["method"], scope["path"])
        if length is not None and int(length) > limit:
            await _error(413, "too_large", BodyTooLarge(limit, setting).detail)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        await self.app(scope, limited, send)


# ---- the app ------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    production.check(settings)
    app = FastAPI(
        title="Imaging and e-policy service",
        version="0.1.0",
        description="Scans in, trusted field values and indexed images out; signed e-policies delivered.",
        docs_url=None,  # routes/pages.py serves /docs with swagger-ui from this service; no ReDoc (its CSP)
        redoc_url=None,
        responses={
            400: {
                "model": ErrorBody,
                "description": "the request cannot be read: a body that is not UTF-8, a bad Content-Length",
            },
            401: {"model": ErrorBody},
            403: {"model": ErrorBody},
            413: {
                "model": ErrorBody,
                "description": "the body is over the route's limit (IMAGING_MAX_*_BYTES)",
            },
            422: {"model": ErrorBody},
            503: {"model": ErrorBody},
        },
    )
    app.state.settings = settings
    app.state.store = open_store(settings)
    app.state.redis = queues.connect(settings.redis_target)
    production.check_parts(settings, app.state.store, app.state.redis)
    app.add_middleware(Gate, settings=settings)
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(RequestId)  # outermost: every answer, a refusal by the gate too, carries the id
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ImagingError, _imaging_error)
    app.add_exception_handler(Exception, _unexpected)
    for resource in (
        jobs,
        operations,
        scans,
        keyentry,
        documents,
        customers,
        claims,
        links,
        reviews,
        epolicies,
        events,
        people,
        figures,
        signin,
        admin,
        counter,
        pages,
    ):
        app.include_router(resource.router)
    return app
