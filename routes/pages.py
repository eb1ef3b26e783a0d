"""The HTML pages: key-entry and viewer for staff; the customer's e-policy page and PDF, reached by the
link in the mail; and the public check the policy's QR code points at. Also /docs (Swagger UI) and the
files under /static/ that the pages load.

The customer's link is a signed, expiring token for one policy (esign/tokens.py). An address that sends
five bad tokens within ten minutes is refused (429) until the ten minutes have passed.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Annotated

import fastapi_offline
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from redis import Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

import epolicies
from errors import NotFound
from esign.tokens import BadToken, check_token
from esign.verify import load_roots, verify
from models import Download, EPolicy, epolicy_file, load
from routes.deps import RedisConn, SettingsDep, Store
from routes.epolicies import PolicyNo, pdf_response
from settings import Settings
from storage import ObjectNotFound, ObjectStore
from vocabulary import utcnow

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parent.parent / "web"
BAD_TOKENS, BAD_TOKEN_WINDOW = 5, 600
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
def keyentry_page() -> HTMLResponse:
    return HTMLResponse((WEB / "keyentry.html").read_text(encoding="utf-8"))


@router.get("/viewer", response_class=HTMLResponse)
def viewer_page() -> HTMLResponse:
    return HTMLResponse((WEB / "viewer.html").read_text(encoding="utf-8"))


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


def _checked_versions(store: ObjectStore, settings: Settings, policy: EPolicy, token: str) -> list[tuple]:
    """Return a row per signed version, newest first: version, signed at, current or not, whether its
    signature holds, and the download link."""
    rows = []
    for v in reversed([v for v in policy.versions if v.signed_at]):
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
def customer_page(token: str, request: Request, store: Store, conn: RedisConn, settings: SettingsDep):
    # A customer opens this in a browser: refusals are a plain page, not JSON.
    try:
        policy = load(store, EPolicy, _customer_policy(request, conn, settings, token))
    except (BadToken, NotFound) as exc:
        return HTMLResponse(_page("—", f"无法打开此链接。{exc.message}", []), status_code=exc.http_status)
    except HTTPException as exc:  # too many bad links from this address
        return HTMLResponse(_page("—", f"请稍后再试。{exc.detail}", []), exc.status_code, exc.headers)
    rows = _checked_versions(store, settings, policy, token)
    if not rows:
        return HTMLResponse(_page(policy.policy_no, "您的电子保单正在生成，请稍后再来。", []))
    return HTMLResponse(_page(policy.policy_no, "", rows))


@router.get("/epolicy/{token}/pdf")
def customer_pdf(
    token: str,
    request: Request,
    store: Store,
    conn: RedisConn,
    settings: SettingsDep,
    version: Annotated[int | None, Query(ge=1, le=10_000)] = None,
):
    policy_no = _customer_policy(request, conn, settings, token)
    number, data = epolicies.version_pdf(store, policy_no, version, "customer")

    def downloaded(p: EPolicy) -> None:
        p.downloads.append(Download(version=number, at=utcnow(), address=_client(request)))

    epolicies.update(conn, store, policy_no, downloaded)
    return pdf_response(data, f"{policy_no}.pdf")


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
