"""The HTML pages: key-entry and viewer for staff; the customer's e-policy page and PDF, reached by the
link in the mail; and the public check the policy's QR code points at. Also /docs (Swagger UI) and the
files under /static/ that the pages load.

The customer's link is a signed, expiring token for one policy, recorded in its record when mailed and
revocable (esign/tokens.py, epolicies.py). Failed attempts count against the token, and against the
policy when the token names a real one, never against an address (one office's NAT is many customers):
past five in ten minutes, that token or policy is refused (429); a live link opens all the same.
"""

from __future__ import annotations

import hashlib
from html import escape
from pathlib import Path
from typing import Annotated

import fastapi_offline
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from redis import Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

import epolicies
from errors import NotFound
from esign.tokens import BadToken, check_token, named_policy
from esign.verify import load_roots, verify
from models import CustomerLink, Download, EPolicy, EPolicyVersion, epolicy_file, load
from routes.deps import RedisConn, SettingsDep, Store
from routes.epolicies import PolicyNo, pdf_response
from routes.signin import page_caller, staff_page
from settings import Settings
from storage import ObjectNotFound, ObjectStore
from vocabulary import utcnow

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parent.parent / "web"
BAD_LINKS, BAD_LINK_WINDOW = 5, 600  # failed attempts on one token or one policy, in seconds
# The customer's page: its links carry the token, so no Referer takes it elsewhere and no cache keeps it.
PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "private, no-store"}
VERIFY_LIMIT = 30  # public checks a minute from one address


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


@router.get("/keyentry", response_class=HTMLResponse)
def keyentry_page(request: Request) -> Response:
    who = page_caller(request)  # a person signed in, or the way to /login
    return who if isinstance(who, Response) else staff_page("keyentry.html", who)


@router.get("/viewer", response_class=HTMLResponse)
def viewer_page(request: Request) -> Response:
    who = page_caller(request)
    return who if isinstance(who, Response) else staff_page("viewer.html", who)


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


def _checked_versions(
    store: ObjectStore, settings: Settings, policy: EPolicy, versions: list[EPolicyVersion], token: str
) -> list[tuple]:
    """Return a row per signed version given, newest first: version, signed at, current or not, whether
    its signature holds, and the download link."""
    rows = []
    for v in reversed(versions):
        try:
            archive = store.get(epolicy_file(policy.policy_no, v.version, "archive"))
            result = verify(archive, load_roots(settings.trust_roots_path))
            check = _what_was_checked(result)
        except ObjectNotFound:
            check = "—"
        state = "当前版本 current" if v.version == policy.current.version else "已被替代 superseded"
        rows.append((v.version, v.signed_at, state, check, f"/epolicy/{token}/pdf?version={v.version}"))
    return rows


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
        return "签名无效 INVALID: " + "; ".join(p for s in result.signatures for p in s.problems)
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
    # A customer opens this in a browser: refusals are a plain page, not JSON.
    try:
        policy, link = _customer_link(store, conn, settings, token)
    except BadToken as exc:
        return HTMLResponse(_page("—", f"无法打开此链接。{exc.message}", []), exc.http_status, PRIVATE)
    except HTTPException as exc:  # too many failed attempts with this token or on this policy
        return HTMLResponse(
            _page("—", f"请稍后再试。{exc.detail}", []), exc.status_code, exc.headers | PRIVATE
        )
    rows = _checked_versions(store, settings, policy, epolicies.versions_for(store, policy, link), token)
    if not rows:
        return HTMLResponse(
            _page(policy.policy_no, "您的电子保单正在生成，请稍后再来。", []), headers=PRIVATE
        )
    return HTMLResponse(_page(policy.policy_no, "", rows), headers=PRIVATE)


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

    def downloaded(p: EPolicy) -> None:
        p.downloads.append(
            Download(version=number, at=utcnow(), address=_client(request), link_id=link.link_id)
        )

    epolicies.update(conn, store, policy.policy_no, downloaded)
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
        f"此二维码对应本公司签发的第 {version} 版（{signed[0].signed_at:%Y-%m-%d %H:%M} UTC 签署）："
        f"投保人 {holder}，产品 {request.product_name}，保额 {request.sum_insured}，保费 {request.premium}，"
        f"生效日 {request.effective_date}。请与纸面核对 Compare with the printout: version {version}, "
        f"sum insured {request.sum_insured}, premium {request.premium}, effective {request.effective_date}."
    )


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
    signed_at = f"{latest.signed_at:%Y-%m-%d %H:%M}"
    message = f"本公司签发的保单，当前为第 {latest.version} 版（{signed_at} UTC 签署）。"
    return HTMLResponse(_page(policy_no, message + " A policy we issued; the version above is current.", []))


def _page(policy_no: str, message: str, rows: list) -> str:
    template = (WEB / "epolicy.html").read_text(encoding="utf-8")
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
