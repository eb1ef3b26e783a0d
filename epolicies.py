"""HTTP routes for e-policies: issue, status, the staff's PDF, resend, verify, and the customer's page.

The customer's page is reached by the link in the e-mail: a signed, expiring token for one policy
(esign/tokens.py). It offers the PDF, says whether its signature holds and whether this version is
current, and records each download. An address that sends five bad tokens within ten minutes is
refused (429) until the ten minutes have passed.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from redis import Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

import worker
from api import Caller, ErrorBody, RedisConn, SettingsDep, Store, require
from errors import NotFound
from esign.epolicy import EPolicyRequest
from esign.tokens import BadToken, check_token
from esign.verify import load_roots, verify
from models import Delivery, Download, EPolicy, EPolicyStatus, EPolicyVersion, epolicy_file, epolicy_key
from settings import Role, Settings
from storage import ObjectNotFound, ObjectStore
from vocabulary import BUSINESS_NO_PATTERN, utcnow

PolicyNo = Annotated[str, PathParam(pattern=BUSINESS_NO_PATTERN)]
Staff = Annotated[Caller, Depends(require(Role.sales, Role.underwriter, Role.servicing))]
BAD_TOKENS, BAD_TOKEN_WINDOW = 5, 600
CUSTOMER_PAGE = Path(__file__).with_name("web") / "epolicy.html"


class EPolicyAccepted(BaseModel):
    policy_no: str
    version: int
    new: bool = Field(description="false when the same data was sent before: the existing version")
    status: EPolicyStatus
    status_url: str


class EPolicyView(BaseModel):
    policy_no: str
    status: EPolicyStatus = Field(
        description="of the current version: rendering, signed, sent, delivery_failed"
    )
    reason: str | None
    current_version: int
    versions: list[EPolicyVersion]
    deliveries: list[Delivery]
    downloads: list[Download]


def _view(policy: EPolicy) -> EPolicyView:
    current = policy.current
    assert current is not None
    return EPolicyView(
        policy_no=policy.policy_no,
        status=current.status,
        reason=current.reason,
        current_version=current.version,
        versions=policy.versions,
        deliveries=policy.deliveries,
        downloads=policy.downloads,
    )


def _load(store: ObjectStore, policy_no: str) -> EPolicy:
    try:
        return EPolicy.model_validate_json(store.get(epolicy_key(policy_no)))
    except ObjectNotFound:
        raise NotFound(f"no e-policy {policy_no}") from None


def issue(store: ObjectStore, conn: Redis, settings: Settings, request: EPolicyRequest) -> EPolicyAccepted:
    """Return the version this data is: an existing one (same data) or a new one, stored and queued."""
    digest = request.digest()
    found: dict = {}

    def add_version(policy: EPolicy) -> None:
        same = next((v for v in policy.versions if v.digest == digest), None)
        found["new"] = same is None
        if same is None:
            same = EPolicyVersion(version=len(policy.versions) + 1, digest=digest, requested_at=utcnow())
            data = request.model_dump_json(indent=1).encode()
            store.put(epolicy_file(request.policy_no, same.version, "request"), data, "application/json")
            policy.versions.append(same)
        found["version"] = same

    worker.update_epolicy(conn, store, request.policy_no, add_version, create=True)
    same, new = found["version"], found["new"]
    # Queued every time (the job id makes it once): a crash between storing and queueing heals on a resend.
    worker.enqueue(
        conn,
        settings,
        "esign",
        worker.issue_epolicy,
        request.policy_no,
        same.version,
        job_id=f"epolicy-{request.policy_no}-v{same.version}",
    )
    return EPolicyAccepted(
        policy_no=request.policy_no,
        version=same.version,
        new=new,
        status=same.status,
        status_url=f"/v1/epolicies/{request.policy_no}",
    )


def _version_pdf(store: ObjectStore, policy_no: str, version: int | None, kind: str) -> tuple[int, bytes]:
    """Return the version number (the current one if None) and its customer or archive PDF."""
    number = version or _load(store, policy_no).current.version
    try:
        return number, store.get(epolicy_file(policy_no, number, kind))
    except ObjectNotFound:
        raise NotFound(f"e-policy {policy_no} has no signed version {number} (yet)") from None


def _pdf_response(data: bytes, name: str) -> Response:
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-store",
        },
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _customer_policy(request: Request, conn: Redis, settings: Settings, token: str) -> str:
    """Return the policy a customer's token opens; count bad tokens by address and refuse a flood."""
    counter = f"badtoken:{_client(request)}"
    try:
        if int(conn.get(counter) or 0) >= BAD_TOKENS:
            raise HTTPException(
                429, "too many invalid links from this address; try again later", {"Retry-After": "600"}
            )
        return check_token(settings.token_key(), token)
    except BadToken:
        try:
            conn.incr(counter)
            conn.expire(counter, BAD_TOKEN_WINDOW, nx=True)
        except RedisError:
            pass
        raise


def router() -> APIRouter:
    routes = APIRouter(tags=["e-policies"])

    @routes.post(
        "/v1/epolicies",
        status_code=202,
        response_model=EPolicyAccepted,
        responses={503: {"model": ErrorBody}},
    )
    def issue_epolicy(
        body: EPolicyRequest,
        store: Store,
        conn: RedisConn,
        settings: SettingsDep,
        who: Annotated[Caller, Depends(require(Role.sales))],
    ) -> EPolicyAccepted:
        """Issue the e-policy of a paid policy: rendered, signed, encrypted, stored, indexed and mailed on the
        `esign` and `mail` queues. The same data again is the same version; changed data (an endorsement)
        is the next version, and the old ones stay."""
        return issue(store, conn, settings, body)

    @routes.get(
        "/v1/epolicies/{policy_no}", response_model=EPolicyView, responses={404: {"model": ErrorBody}}
    )
    def epolicy_status(policy_no: PolicyNo, store: Store, who: Staff) -> EPolicyView:
        """Status of the current version (rendering, signed, sent, delivery_failed with the reason), every
        version, every delivery and download."""
        return _view(_load(store, policy_no))

    @routes.get(
        "/v1/epolicies/{policy_no}/pdf",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}, 404: {"model": ErrorBody}},
    )
    def epolicy_pdf(
        policy_no: PolicyNo,
        store: Store,
        who: Staff,
        version: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ) -> Response:
        """The signed archive copy (not encrypted) of the current version, or of `version`, for staff."""
        number, data = _version_pdf(store, policy_no, version, "archive")
        return _pdf_response(data, f"{policy_no}-v{number}.pdf")

    @routes.post(
        "/v1/epolicies/{policy_no}/resend",
        response_model=EPolicyView,
        responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    )
    def epolicy_resend(policy_no: PolicyNo, store: Store, conn: RedisConn, settings: SettingsDep, who: Staff):
        """Mail the current version to the holder again."""
        current = _load(store, policy_no).current
        if current.status == EPolicyStatus.rendering:
            raise HTTPException(409, "the current version is not signed yet; it is mailed when it is")
        worker.mail_epolicy(conn, store, settings, policy_no, current.version)
        return _view(_load(store, policy_no))

    @routes.post(
        "/v1/verify",
        tags=["e-policies"],
        openapi_extra={
            "requestBody": {
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
            }
        },
    )
    async def verify_pdf(
        request: Request,
        settings: SettingsDep,
        who: Annotated[Caller, Depends(require(*Role))],
        password: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict:
        """Check a PDF's signatures (the body is the PDF): intact, certified with no disallowed change,
        signer, signing time, timestamp, trust against the configured roots; and why not."""
        data = await request.body()
        if not data:
            raise HTTPException(422, "the body is empty: send the PDF as the request body")
        result = await run_in_threadpool(verify, data, load_roots(settings.trust_roots_path), password)
        return result.to_json()

    @routes.get("/epolicy/{token}", response_class=HTMLResponse, include_in_schema=False)
    def customer_page(token: str, request: Request, store: Store, conn: RedisConn, settings: SettingsDep):
        # A customer opens this in a browser: refusals are a plain page, not JSON.
        try:
            policy = _load(store, _customer_policy(request, conn, settings, token))
        except (BadToken, NotFound) as exc:
            return HTMLResponse(_page("—", f"无法打开此链接。{exc.message}", []), status_code=exc.http_status)
        except HTTPException as exc:  # too many bad links from this address
            return HTMLResponse(_page("—", f"请稍后再试。{exc.detail}", []), exc.status_code, exc.headers)
        current = policy.current
        signed = [v for v in policy.versions if v.signed_at]
        if not signed:
            return HTMLResponse(_page(policy.policy_no, "您的电子保单正在生成，请稍后再来。", []))
        rows = []
        for v in reversed(signed):
            try:
                result = verify(
                    store.get(epolicy_file(policy.policy_no, v.version, "archive")),
                    load_roots(settings.trust_roots_path),
                )
                check = (
                    "数字签名有效 signature valid"
                    if result.ok
                    else "签名无效 INVALID: " + "; ".join(p for s in result.signatures for p in s.problems)
                )
            except ObjectNotFound:
                check = "—"
            state = "当前版本 current" if v.version == current.version else "已被替代 superseded"
            rows.append((v.version, v.signed_at, state, check, f"/epolicy/{token}/pdf?version={v.version}"))
        return HTMLResponse(_page(policy.policy_no, "", rows))

    @routes.get("/epolicy/{token}/pdf", include_in_schema=False)
    def customer_pdf(
        token: str,
        request: Request,
        store: Store,
        conn: RedisConn,
        settings: SettingsDep,
        version: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ):
        policy_no = _customer_policy(request, conn, settings, token)
        number, data = _version_pdf(store, policy_no, version, "customer")

        def downloaded(p: EPolicy) -> None:
            p.downloads.append(Download(version=number, at=utcnow(), address=_client(request)))

        worker.update_epolicy(conn, store, policy_no, downloaded)
        return _pdf_response(data, f"{policy_no}.pdf")

    @routes.get("/verify/{policy_no}", response_class=HTMLResponse, include_in_schema=False)
    def public_check(policy_no: PolicyNo, store: Store) -> HTMLResponse:
        """Where the QR code on the policy points: which version is current, and when it was signed."""
        try:
            policy = _load(store, policy_no)
        except NotFound:
            return HTMLResponse(_page(policy_no, "查无此保单 No such policy.", []), status_code=404)
        signed = [v for v in policy.versions if v.signed_at]
        if not signed:
            return HTMLResponse(_page(policy_no, "保单正在生成 The policy is being issued.", []))
        latest = signed[-1]
        message = (
            f"本公司签发的保单，当前为第 {latest.version} 版（{latest.signed_at:%Y-%m-%d %H:%M} UTC 签署）。"
        )
        return HTMLResponse(
            _page(policy_no, message + " A policy we issued; the version above is current.", [])
        )

    return routes


def _page(policy_no: str, message: str, rows: list) -> str:
    template = CUSTOMER_PAGE.read_text(encoding="utf-8")
    body = "".join(
        f"<tr><td>第 {v} 版</td><td>{escape(str(at)[:19])}</td><td class=state>{escape(state)}</td>"
        f'<td class=check>{escape(check)}</td><td><a href="{escape(link)}">下载 PDF</a></td></tr>'
        for v, at, state, check, link in rows
    )
    return (
        template.replace("{{policy_no}}", escape(policy_no))
        .replace("{{message}}", escape(message))
        .replace("{{rows}}", body)
    )
