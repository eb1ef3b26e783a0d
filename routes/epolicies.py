"""E-policies for staff and the sale system: issue, status, the staff's PDF, resend; and verifying a PDF.
The records are kept by epolicies.py; the customer's pages are in routes/pages.py."""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

import epolicies
from errors import NotFound
from esign.epolicy import EPolicyRequest
from esign.verify import verify_in_child
from indexing.access import may_see
from models import (
    CustomerLink,
    Delivery,
    DocumentRecord,
    Download,
    EPolicy,
    EPolicyStatus,
    EPolicyVersion,
    find,
    load,
)
from people.reach import reaches
from roles import Operation, Role, may
from routes.deps import Caller, ErrorBody, RedisConn, SettingsDep, Store, require
from routes.documents import log_read
from routes.signin import page_caller, read_form
from routes.templates import page
from storage import ObjectStore
from vocabulary import BUSINESS_NO_PATTERN, utcnow

router = APIRouter(tags=["e-policies"])
PolicyNo = Annotated[str, PathParam(pattern=BUSINESS_NO_PATTERN)]
Staff = Annotated[Caller, Depends(require(Operation.read_epolicies))]
PASSWORD_HEADER = "X-PDF-Password"


class EPolicyAccepted(BaseModel):
    policy_no: str
    version: int
    new: bool = Field(description="false when the same data was sent before: the existing version")
    status: EPolicyStatus
    status_url: str


class ReceiptView(BaseModel):
    """Where a version stands with the customer (签收): delivered, opened, downloaded, acknowledged."""

    version: int
    state: Literal["current", "superseded"]
    delivered_at: datetime | None = Field(description="when its mail was first delivered to the SMTP server")
    opened_at: datetime | None = Field(description="first shown on the customer's page")
    downloaded_at: datetime | None = Field(description="first downloaded from the customer's page")
    acknowledged_at: datetime | None = Field(description="when the customer pressed 'I have received it'")
    acknowledged_link: str | None = Field(description="the id of the link the customer used")
    reminded_at: datetime | None = Field(description="when the one reminder to acknowledge was queued")


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
    links: list[CustomerLink] = Field(
        description="the customer's links mailed, live or revoked (never the token)"
    )
    receipts: list[ReceiptView] = Field(description="each version's receipt (签收), oldest first")


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
        links=policy.links,
        receipts=[_receipt(policy, v) for v in policy.versions],
    )


def _receipt(policy: EPolicy, version: EPolicyVersion) -> ReceiptView:
    sent = [d.at for d in policy.deliveries if d.version == version.version and d.status == "sent" and d.at]
    r = version.receipt
    return ReceiptView(
        version=version.version,
        state="current" if version.version == policy.current.version else "superseded",
        delivered_at=min(sent) if sent else None,
        opened_at=r.opened_at,
        downloaded_at=r.downloaded_at,
        acknowledged_at=r.acknowledged_at,
        acknowledged_link=r.acknowledged_link,
        reminded_at=r.reminded_at,
    )


def pdf_response(data: bytes, name: str) -> Response:
    """Return a PDF as a download that no cache keeps."""
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.post(
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
    who: Annotated[Caller, Depends(require(Operation.issue_epolicies))],
) -> EPolicyAccepted:
    """Issue the e-policy of a paid policy: rendered, signed, encrypted, stored, indexed and mailed on the
    `esign` and `mail` queues. The same data again is the same version; changed data (an endorsement)
    is the next version, and the old ones stay."""
    version, new = epolicies.issue(store, conn, settings, body)
    return EPolicyAccepted(
        policy_no=body.policy_no,
        version=version.version,
        new=new,
        status=version.status,
        status_url=f"/v1/epolicies/{body.policy_no}",
    )


@router.get("/v1/epolicies/{policy_no}", response_model=EPolicyView, responses={404: {"model": ErrorBody}})
def epolicy_status(policy_no: PolicyNo, store: Store, who: Staff) -> EPolicyView:
    """Status of the current version (rendering, signed, sent, delivery_failed with the reason), every
    version, every delivery and download."""
    return _view(load(store, EPolicy, policy_no))


@router.get(
    "/v1/epolicies/{policy_no}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, 404: {"model": ErrorBody}},
)
def epolicy_pdf(
    request: Request,
    policy_no: PolicyNo,
    store: Store,
    conn: RedisConn,
    who: Staff,
    version: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> Response:
    """The signed archive copy (not encrypted) of the current version, or of `version`, for staff who
    see its stage (the first version is new business, later ones servicing); every read is logged."""
    number, data = epolicies.version_pdf(store, policy_no, version, "archive")
    doc_id = load(store, EPolicy, policy_no).versions[number - 1].doc_id
    record = find(store, DocumentRecord, doc_id) if doc_id else None
    if record is None or not reaches(who, record.branch) or not may_see(store, who.role, record):
        raise NotFound(f"e-policy {policy_no} has no signed version {number} you may see")
    log_read(request, store, conn, who, record, f"pdf v{number}")
    return pdf_response(data, f"{policy_no}-v{number}.pdf")


@router.post(
    "/v1/epolicies/{policy_no}/resend",
    response_model=EPolicyView,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
def epolicy_resend(policy_no: PolicyNo, store: Store, conn: RedisConn, settings: SettingsDep, who: Staff):
    """Mail the current version to the holder again."""
    current = load(store, EPolicy, policy_no).current
    if current.status == EPolicyStatus.rendering:
        raise HTTPException(409, "the current version is not signed yet; it is mailed when it is")
    epolicies.mail_version(conn, store, settings, policy_no, current.version)
    return _view(load(store, EPolicy, policy_no))


@router.post(
    "/v1/epolicies/{policy_no}/links/revoke",
    response_model=EPolicyView,
    responses={404: {"model": ErrorBody}},
)
def epolicy_revoke_links(policy_no: PolicyNo, store: Store, conn: RedisConn, who: Staff) -> EPolicyView:
    """Revoke every live link to the customer's page mailed for this policy (a mail that went astray, a
    customer who asks): they open nothing from now on. A resend mails a new one."""
    return _view(epolicies.revoke_links(conn, store, policy_no, f"revoked by staff ({who.key_id})"))


@router.post(
    "/v1/verify",
    openapi_extra={
        "requestBody": {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def verify_pdf(
    request: Request,
    settings: SettingsDep,
    who: Annotated[Caller, Depends(require(Operation.verify_pdfs))],
    password: Annotated[
        str | None,
        Header(alias=PASSWORD_HEADER, max_length=64, description="the password of an encrypted PDF"),
    ] = None,
) -> dict:
    """Check a PDF's signatures and document timestamps (the body is the PDF; an encrypted one's password
    in the X-PDF-Password header): intact, signer, certification level, changes since, timestamp, trust
    against the configured roots (named in `roots`); each failure with its reason (`failures[].reason`:
    expired, revoked, untrusted_root, disallowed_algorithm, modified, forbidden_change,
    changed_after_signing, ...) in Chinese and English. The file is read in a child process with memory
    and time limits and is not stored; one that lists more than 20 signatures is refused."""
    return await check_posted_pdf(request, settings, password)


async def check_posted_pdf(request: Request, settings, password: str | None) -> dict:
    """Return the verification of the PDF in the request's body (for the API and the public page)."""
    if "password" in request.query_params:
        # A URL is written into access logs, proxies' logs and browsers' histories: the customer's
        # password must not be, so it is refused here rather than quietly used.
        raise HTTPException(422, f"send the PDF's password in the {PASSWORD_HEADER} header, not in the URL")
    data = await request.body()
    if not data:
        raise HTTPException(422, "the body is empty: send the PDF as the request body")
    return await run_in_threadpool(verify_in_child, data, settings.trust_roots_path, password)


# ---- the staff's page: /epolicies ----------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")
DONE = {"resent": "已重新发送当前版本 The current version was mailed again.",
        "revoked": "已撤销全部客户链接 Every link to the customer's page was revoked."}  # fmt: skip


def _page_staff(request: Request) -> Caller | Response:
    """Return the person signed in, acting in a role that may see e-policies; the sign-in page if nobody
    is; 403 for anyone else (the same operation as the API's, roles.Operation.read_epolicies)."""
    who = page_caller(request)
    if isinstance(who, Response):
        return who
    for role in Role:
        if role in who.roles and may(role, Operation.read_epolicies):
            return who.acting_as(role)
    raise HTTPException(403, "this page is for staff who handle e-policies")


def _beijing(moment: datetime | None) -> str:
    return f"{moment.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}" if moment else "—"


def _staff_page(store: ObjectStore, who: Caller, number: str, message: str = "") -> HTMLResponse:
    """Return the page, with the policy's record when number names one."""
    policy, status = None, 200
    if number and not re.fullmatch(BUSINESS_NO_PATTERN, number):
        message, status = f"“{number}”不是保单号（如 P2026110000123）: not a policy number", 422
    elif number:
        policy = find(store, EPolicy, number)
        if policy is None or not policy.versions:
            policy, message, status = None, f"未找到保单 {number} 的电子保单 No e-policy for {number}", 404
    html = page(
        "epolicies.html",
        csrf=who.csrf or "",
        person=who.person,
        number=number,
        message=message,
        policy=_view(policy) if policy else None,
        now=utcnow(),
        beijing=_beijing,
    )
    return HTMLResponse(html, status)


@router.get("/epolicies", response_class=HTMLResponse, include_in_schema=False)
def staff_epolicies_page(
    request: Request,
    store: Store,
    policy_no: Annotated[str, Query(max_length=40)] = "",
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The staff's e-policy page: search by policy number; each version's receipt in Beijing time."""
    who = _page_staff(request)
    if isinstance(who, Response):
        return who
    return _staff_page(store, who, policy_no.strip().upper(), DONE.get(done, ""))


@router.post("/epolicies/{policy_no}/{action}", include_in_schema=False)
async def staff_epolicy_action(
    policy_no: str, action: str, request: Request, store: Store, conn: RedisConn, settings: SettingsDep
) -> Response:
    """Resend the current version or revoke the customer's links from the page (the API's own calls);
    back to the page, which says what was done."""
    who = _page_staff(request)
    if isinstance(who, Response):
        return who
    form = await read_form(request)
    if not hmac.compare_digest(form.get("csrf_token", "").encode(), (who.csrf or "").encode()):
        raise HTTPException(403, "this form lacks the page's CSRF token: refused")
    if action not in ("resend", "revoke") or not re.fullmatch(BUSINESS_NO_PATTERN, policy_no):
        raise HTTPException(404, f"no action {action!r} for {policy_no!r}")
    try:
        if action == "resend":
            await run_in_threadpool(epolicy_resend, policy_no, store, conn, settings, who)
        else:
            await run_in_threadpool(epolicy_revoke_links, policy_no, store, conn, who)
    except HTTPException as exc:  # 409: not signed yet
        return _staff_page(store, who, policy_no, f"未能重新发送 Not mailed: {exc.detail}")
    except NotFound:
        return _staff_page(store, who, policy_no)  # says the policy is not found
    done = "resent" if action == "resend" else "revoked"
    return RedirectResponse(f"/epolicies?policy_no={policy_no}&done={done}", status_code=303)
