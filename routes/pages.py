"""The HTML pages: key-entry, viewer and operator for staff; the customer's e-policy page and PDF,
reached by the link in the mail; and the public check the policy's QR code points at. Also /docs
(Swagger UI) and the files under /static/ that the pages load.

The customer's link is a signed, expiring token for one policy, recorded in its record when mailed and
revocable (esign/tokens.py, epolicies.py). Failed attempts count against the token, and against the
policy when the token names a real one, never against an address (one office's NAT is many customers):
past five in ten minutes, that token or policy is refused (429); a live link opens all the same.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import fastapi_offline
from fastapi import APIRouter, Form, Header, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from redis import Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

import epolicies
import events
from errors import NotFound
from esign.epolicy import FREQUENCY_LABELS, EPolicyRequest
from esign.tokens import BadToken, check_token, named_policy
from esign.verify import load_roots, verify
from models import CustomerLink, EPolicy, EPolicyVersion, epolicy_file, load
from roles import Operation, may
from routes.deps import RedisConn, SettingsDep, Store
from routes.epolicies import PASSWORD_HEADER, PolicyNo, check_posted_pdf, pdf_response
from routes.signin import page_caller, staff_page
from routes.templates import page
from settings import Settings
from storage import ObjectNotFound, ObjectStore
from vocabulary import EventKind

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parent.parent / "web"
BAD_LINKS, BAD_LINK_WINDOW = 5, 600  # failed attempts on one token or one policy, in seconds
# The customer's page: its links carry the token, so no Referer takes it elsewhere and no cache keeps it.
PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "private, no-store"}
VERIFY_LIMIT = 30  # public checks a minute from one address
SHANGHAI = ZoneInfo("Asia/Shanghai")  # customers read times in Beijing time


# What /static/ serves, by name and nothing else: the pages' scripts and styles (none inline, for the CSP
# of routes/headers.py), and swagger-ui's files from the fastapi-offline package, so /docs needs no CDN.
SWAGGER_UI = Path(fastapi_offline.__file__).resolve().parent / "static"
STATIC = {p.name: p for p in (WEB / "static").iterdir() if p.suffix in (".js", ".css")} | {
    f"swagger-ui/{name}": SWAGGER_UI / name
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
}
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}


@router.get("/operator", response_class=HTMLResponse)
def operator_page(request: Request) -> Response:
    """The operator page, for a person signed in (else the way to /login); the API routes it calls ask
    for the admin operation, and the page shows their refusal to anyone else."""
    who = page_caller(request)
    return who if isinstance(who, Response) else staff_page("operator.html", who)


@router.get("/keyentry", response_class=HTMLResponse)
def keyentry_page(request: Request) -> Response:
    who = page_caller(request)  # a person signed in, or the way to /login
    return who if isinstance(who, Response) else staff_page("keyentry.html", who)


# The viewer's deep links, for a core system's 核保/保全/理赔 screen to open or embed (README: "Deep links"):
# /viewer?policy_no=..., ?customer=<ID number>, ?claim_no=...; the page searches for it on opening.
DEEP_LINKS = {"policy_no": "policy", "customer": "customer", "claim_no": "claim"}


@router.get("/viewer", response_class=HTMLResponse)
def viewer_page(request: Request) -> Response:
    """The viewer, opened on the case a deep link names (the first of policy_no, customer, claim_no);
    the search runs in the browser through the API, which checks the number and who may see what."""
    who = page_caller(request)
    if isinstance(who, Response):
        return who
    kind, number = next(
        (
            (kind, value[:64])
            for name, kind in DEEP_LINKS.items()
            if (value := request.query_params.get(name))
        ),
        ("", ""),
    )
    return HTMLResponse(
        page(
            "viewer.html",
            csrf=who.csrf or "",
            person=who.person,
            kind=kind,
            number=number,
            may_download=any(may(role, Operation.download_originals) for role in who.roles),
        )
    )


@router.get("/docs", response_class=HTMLResponse)
def docs_page() -> HTMLResponse:
    return HTMLResponse((WEB / "docs.html").read_text(encoding="utf-8"))


@router.get("/static/{name:path}")
def static_file(name: str) -> FileResponse:
    """Return one of the files in STATIC; 404 for any other name."""
    if name not in STATIC:
        raise HTTPException(404, f"no static file {name!r}")
    path = STATIC[name]
    # no-cache: revalidated (ETag) on each load, so a page never runs an older release's script
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _too_many() -> HTTPException:
    return HTTPException(
        429, "too many failed attempts with this link; try again later", {"Retry-After": "600"}
    )


def _failed(conn: Redis, counters: list[str]) -> int:
    """Count one failed attempt on each counter; return the highest count (0 when Redis is away: the
    customer's page stays up without its throttle)."""
    try:
        counts = [conn.incr(counter) for counter in counters]
        for counter in counters:
            conn.expire(counter, BAD_LINK_WINDOW, nx=True)
    except RedisError:
        return 0
    return max(counts)


def _customer_link(
    store: ObjectStore, conn: Redis, settings: Settings, token: str
) -> tuple[EPolicy, CustomerLink]:
    """Return the policy record and the recorded, live link a customer's token opens; raise BadToken,
    or HTTPException 429 when the token or its policy failed too often."""
    per_token = "badlink:token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    try:
        spent = int(conn.get(per_token) or 0) >= BAD_LINKS  # a token that failed cannot succeed later
    except RedisError:
        spent = False
    if spent:
        raise _too_many()
    try:
        return epolicies.open_link(store, check_token(settings.token_key(), token))
    except BadToken:
        counters = [per_token]
        named = named_policy(token)
        if named and store.exists(EPolicy.key_of(named)):
            counters.append(f"badlink:policy:{named}")
        if _failed(conn, counters) > BAD_LINKS:
            raise _too_many() from None
        raise


@dataclass(frozen=True)
class VersionRow:
    """One version as the customer's page shows it."""

    version: int
    signed_at: str  # Beijing time
    state: str  # current or superseded
    check: str  # whether its signature holds, in words
    pdf: str  # the download link
    acknowledged_at: str | None  # Beijing time, once the customer acknowledged receipt
    receipt_check: str  # the form's proof that it came from this page (see _receipt_check)


def beijing(at: datetime | None) -> str:
    """Return a time as the customer reads it: Beijing time, to the minute."""
    return f"{at.astimezone(SHANGHAI):%Y-%m-%d %H:%M} 北京时间" if at else "—"


def _receipt_check(settings: Settings, link: CustomerLink, version: int) -> str:
    """Return the value the receipt form carries: a MAC of the link and version, so an acknowledgement is
    accepted only from the page this link shows (on top of the link's own secret token)."""
    signed = f"receipt:{link.link_id}:{version}".encode()
    return hmac.new(settings.token_key(), signed, hashlib.sha256).hexdigest()[:32]


def _checked_versions(
    store: ObjectStore,
    settings: Settings,
    policy: EPolicy,
    link: CustomerLink,
    versions: list[EPolicyVersion],
    token: str,
) -> list[VersionRow]:
    """Return a row per signed version given, newest first: when signed, current or superseded, whether
    its signature holds, the download link, and whether and when the customer acknowledged it."""
    rows = []
    roots = load_roots(settings.trust_roots_path)
    for v in reversed(versions):
        try:
            archive = store.get(epolicy_file(policy.policy_no, v.version, "archive"))
            check = _what_was_checked(verify(archive, roots))
        except ObjectNotFound:
            check = "—"
        state = "当前版本 current" if v.version == policy.current.version else "已被替代 superseded"
        acknowledged = v.receipt.acknowledged_at
        rows.append(
            VersionRow(
                version=v.version,
                signed_at=beijing(v.signed_at),
                state=state,
                check=check,
                pdf=f"/epolicy/{token}/pdf?version={v.version}",
                acknowledged_at=beijing(acknowledged) if acknowledged else None,
                receipt_check=_receipt_check(settings, link, v.version),
            )
        )
    return rows


def _summary(request: EPolicyRequest) -> list[tuple[str, str]]:
    """Return the policy's key facts as the customer's page lists them."""
    until = f"{request.expiry_date}" if request.expiry_date else "终身 whole life"
    return [
        ("产品 Product", request.product_name),
        ("被保险人 Insured", request.insured.name),
        ("保险期间 Period", f"{request.effective_date} 至 {until}"),
        ("保险金额 Sum insured", f"¥{request.sum_insured:,}"),
        ("保费 Premium", f"¥{request.premium:,}（{FREQUENCY_LABELS[request.payment_frequency]}）"),
    ]


def _common_name(subject: str | None) -> str:
    """Return the Common Name of a subject as pyHanko words it ("Common Name: X, Organization: Y")."""
    for part in (subject or "").split(", "):
        if part.startswith("Common Name: "):
            return part.removeprefix("Common Name: ")
    return subject or "?"


def _what_was_checked(result) -> str:
    """Return, for the customer, whether the signature holds and what that rests on: who signed, which
    root vouches for them, and whether that root is only a TEST one (poppler would not trust it)."""
    if not result.ok:
        failures = [f for s in result.signatures for f in s.failures]
        return (
            "签名无效："
            + "；".join(f.zh for f in failures)
            + " INVALID: "
            + "; ".join(f.en for f in failures)
            + "".join(f" {p}" for p in result.problems)
        )
    sig = result.signatures[0]
    said = (
        f"数字签名有效 signature valid: 签署人 signed by {_common_name(sig.signer)}, "
        f"信任根 trusted root {_common_name(sig.trusted_by)}"
    )
    if any(s.test_only for s in result.signatures):
        said = "测试证书，仅供测试 TEST certificate, not valid for a real policy. " + said
    return said


@router.get("/epolicy/{token}", response_class=HTMLResponse)
def customer_page(token: str, store: Store, conn: RedisConn, settings: SettingsDep):
    """The customer's page: the policy's key facts, each version issued to them (current or superseded)
    with its signature checked, its PDF and the "I have received it" button (签收)."""
    # A customer opens this in a browser: refusals are a plain page, not JSON.
    try:
        policy, link = _customer_link(store, conn, settings, token)
    except BadToken as exc:
        return HTMLResponse(_page("—", f"无法打开此链接。{exc.message}", []), exc.http_status, PRIVATE)
    except HTTPException as exc:  # too many failed attempts with this token or on this policy
        return HTMLResponse(
            _page("—", f"请稍后再试。{exc.detail}", []), exc.status_code, exc.headers | PRIVATE
        )
    offered = epolicies.versions_for(store, policy, link)
    if not offered:
        return HTMLResponse(
            _page(policy.policy_no, "您的电子保单正在生成，请稍后再来。", []), headers=PRIVATE
        )
    epolicies.mark_opened(conn, store, policy, [v.version for v in offered])
    rows = _checked_versions(store, settings, policy, link, offered, token)
    facts = _summary(epolicies.load_request(store, policy.policy_no, offered[-1].version))
    return HTMLResponse(_page(policy.policy_no, "", rows, facts, token), headers=PRIVATE)


@router.post("/epolicy/{token}/receipt", response_class=HTMLResponse)
def acknowledge_receipt(
    token: str,
    request: Request,
    store: Store,
    conn: RedisConn,
    settings: SettingsDep,
    version: Annotated[int, Form(ge=1, le=10_000)],
    check: Annotated[str, Form(max_length=64)],
):
    """The customer's "I have received it" (签收) for a version: recorded once with the time, the link
    used and the address, then back to the page (303). Only the page's own form is accepted: the link's
    token, a MAC of link and version in the form, and no other site as the Origin."""
    try:
        policy, link = _customer_link(store, conn, settings, token)
    except BadToken as exc:
        return HTMLResponse(_page("—", f"无法打开此链接。{exc.message}", []), exc.http_status, PRIVATE)
    except HTTPException as exc:
        return HTMLResponse(_page("—", f"请稍后再试。{exc.detail}", []), exc.status_code, PRIVATE)
    offered = [v.version for v in epolicies.versions_for(store, policy, link)]
    genuine = hmac.compare_digest(check, _receipt_check(settings, link, version))
    if version not in offered or not genuine or not _same_origin(request, settings):
        refused = (
            "此签收请求无效，请从保单页面点击“我已收到”。This acknowledgement did not come from your page."
        )
        return HTMLResponse(_page(policy.policy_no, refused, []), 403, PRIVATE)
    done, _ = epolicies.acknowledge(conn, store, policy.policy_no, version, link.link_id, _client(request))
    when = done.receipt.acknowledged_at
    data = {"policy_no": policy.policy_no, "version": version, "acknowledged_at": when}
    subject = f"{policy.policy_no}-v{version}"
    events.emit(conn, store, settings, EventKind.epolicy_acknowledged, subject, data)  # once per version
    return RedirectResponse(f"/epolicy/{token}#v{version}", status_code=303, headers=PRIVATE)


def _same_origin(request: Request, settings: Settings) -> bool:
    """Return whether the request's Origin, if it names one, is this service (as reached, or as the
    public URL says): a form another site submits is refused. Our pages' own forms are sent with
    ``Origin: null`` (their Referrer-Policy is no-referrer), which names none."""
    origin = request.headers.get("origin")
    own = {str(request.base_url).rstrip("/"), settings.base_url}
    return origin in (None, "null") or origin in own


@router.get("/epolicy/{token}/pdf")
def customer_pdf(
    token: str,
    request: Request,
    store: Store,
    conn: RedisConn,
    settings: SettingsDep,
    version: Annotated[int | None, Query(ge=1, le=10_000)] = None,
):
    """The customer's PDF of the newest version issued to the link's holder, or of ``version``."""
    policy, link = _customer_link(store, conn, settings, token)
    offered = [v.version for v in epolicies.versions_for(store, policy, link)]
    number = version or (offered[-1] if offered else None)
    if number not in offered:
        raise NotFound(f"this link opens no such signed version of e-policy {policy.policy_no} (yet)")
    number, data = epolicies.version_pdf(store, policy.policy_no, number, "customer")
    epolicies.record_download(conn, store, policy.policy_no, number, _client(request), link.link_id)
    return pdf_response(data, f"{policy.policy_no}.pdf")


def _throttled(conn: Redis, request: Request, what: str, limit: int, window: int) -> bool:
    """Count one request from this address; return whether it is over ``limit`` in ``window`` seconds."""
    counter = f"throttle:{what}:{_client(request)}"
    try:
        seen = conn.incr(counter)
        if seen == 1:
            conn.expire(counter, window)
    except RedisError:
        return False  # the check is public and read-only: it stays up when Redis is away
    return seen > limit


def _matching_version(store: ObjectStore, policy: EPolicy, version: int, digest: str) -> str | None:
    """Return what a printout with this QR code must show, if the code names a version we signed: the
    version, when it was signed and its key facts (the holder's name masked); else None."""
    signed = [v for v in policy.versions if v.signed_at and v.version == version]
    if not signed or len(digest) < 16 or not signed[0].digest.startswith(digest):
        return None
    request = epolicies.load_request(store, policy.policy_no, version)
    holder = request.holder.name[0] + "*" * (len(request.holder.name) - 1)
    return (
        f"此二维码对应本公司签发的第 {version} 版（{beijing(signed[0].signed_at)}签署）："
        f"投保人 {holder}，产品 {request.product_name}，保额 {request.sum_insured}，保费 {request.premium}，"
        f"生效日 {request.effective_date}。请与纸面核对 Compare with the printout: version {version}, "
        f"sum insured {request.sum_insured}, premium {request.premium}, effective {request.effective_date}."
    )


@router.get("/verify", response_class=HTMLResponse)
def verify_page() -> HTMLResponse:
    """The public page where anyone drops a PDF to check its signatures: the browser posts it to
    POST /verify, which answers as the API's verify does; nothing is stored."""
    return HTMLResponse((WEB / "verify.html").read_text(encoding="utf-8"))


@router.post("/verify")
async def public_verify(
    request: Request,
    conn: RedisConn,
    settings: SettingsDep,
    password: Annotated[str | None, Header(alias=PASSWORD_HEADER, max_length=64)] = None,
) -> dict:
    """POST /v1/verify without an API key, for the public page: the same check, the same limits (the
    child process, IMAGING_MAX_VERIFY_BYTES), throttled per address; the file is not stored."""
    if _throttled(conn, request, "verify-pdf", VERIFY_LIMIT, 60):
        raise HTTPException(
            429, "too many checks from this address; try again in a minute", {"Retry-After": "60"}
        )
    return await check_posted_pdf(request, settings, password)


@router.get("/verify/{policy_no}", response_class=HTMLResponse)
def public_check(
    policy_no: PolicyNo,
    request: Request,
    store: Store,
    conn: RedisConn,
    v: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    d: Annotated[str | None, Query(pattern=r"^[0-9a-f]{16,64}$")] = None,
) -> HTMLResponse:
    """Where the QR code on the policy points (``?v=<version>&d=<digest of the policy data>``): whether
    the code names a version we signed, and what that version says, so a doctored printout carrying a
    real policy number shows its difference. Without the code's digest: which version is current."""
    if _throttled(conn, request, "verify", VERIFY_LIMIT, 60):
        return HTMLResponse(_page(policy_no, "请稍后再试 Too many checks; try again in a minute.", []), 429)
    try:
        policy = load(store, EPolicy, policy_no)
    except NotFound:
        return HTMLResponse(_page(policy_no, "查无此保单 No such policy.", []), status_code=404)
    if v is not None and d is not None:
        said = _matching_version(store, policy, v, d)
        if said is None:
            refused = "此二维码与本公司签发的保单不符 The code matches no policy version we issued."
            return HTMLResponse(_page(policy_no, refused, []), status_code=404)
        return HTMLResponse(_page(policy_no, said, []))
    signed = [version for version in policy.versions if version.signed_at]
    if not signed:
        return HTMLResponse(_page(policy_no, "保单正在生成 The policy is being issued.", []))
    latest = signed[-1]
    message = f"本公司签发的保单，当前为第 {latest.version} 版（{beijing(latest.signed_at)}签署）。"
    return HTMLResponse(_page(policy_no, message + " A policy we issued; the version above is current.", []))


def _page(
    policy_no: str,
    message: str,
    rows: list[VersionRow],
    facts: list[tuple[str, str]] | None = None,
    token: str = "",
) -> str:
    """Return the customer's page (web/epolicy.html): the message, the policy's key facts, and a card per
    version with its state, signing time, check, PDF and receipt (签收)."""
    return page(
        "epolicy.html", policy_no=policy_no, message=message, rows=rows, facts=facts or [], token=token
    )
