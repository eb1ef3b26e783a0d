"""The HTML pages: key-entry and viewer for staff; the customer's e-policy page and PDF, reached by the
link in the mail; and the public check the policy's QR code points at.

The customer's link is a signed, expiring token for one policy (esign/tokens.py). An address that sends
five bad tokens within ten minutes is refused (429) until the ten minutes have passed.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
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


@router.get("/keyentry", response_class=HTMLResponse)
def keyentry_page() -> HTMLResponse:
    return HTMLResponse((WEB / "keyentry.html").read_text(encoding="utf-8"))


@router.get("/viewer", response_class=HTMLResponse)
def viewer_page() -> HTMLResponse:
    return HTMLResponse((WEB / "viewer.html").read_text(encoding="utf-8"))


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
            check = (
                "数字签名有效 signature valid"
                if result.ok
                else "签名无效 INVALID: " + "; ".join(p for s in result.signatures for p in s.problems)
            )
        except ObjectNotFound:
            check = "—"
        state = "当前版本 current" if v.version == policy.current.version else "已被替代 superseded"
        rows.append((v.version, v.signed_at, state, check, f"/epolicy/{token}/pdf?version={v.version}"))
    return rows


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


@router.get("/verify/{policy_no}", response_class=HTMLResponse)
def public_check(policy_no: PolicyNo, store: Store) -> HTMLResponse:
    """Where the QR code on the policy points: which version is current, and when it was signed."""
    try:
        policy = load(store, EPolicy, policy_no)
    except NotFound:
        return HTMLResponse(_page(policy_no, "查无此保单 No such policy.", []), status_code=404)
    signed = [v for v in policy.versions if v.signed_at]
    if not signed:
        return HTMLResponse(_page(policy_no, "保单正在生成 The policy is being issued.", []))
    latest = signed[-1]
    message = (
        f"本公司签发的保单，当前为第 {latest.version} 版（{latest.signed_at:%Y-%m-%d %H:%M} UTC 签署）。"
    )
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
