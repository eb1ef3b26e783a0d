"""Sign-in for staff: the /login page and form, /logout, and what every staff page asks first (a session,
or a redirect to /login).

The session cookie is HttpOnly (no script reads it), SameSite=Lax (another site's form post or fetch does
not carry it; a link from a core system still opens the viewer signed in) and Secure when the service
is reached over HTTPS. The login form carries a CSRF token tied to a cookie of its own (so another site
cannot sign a browser in under its own account); every other form carries the session's token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

from errors import DirectoryUnavailable, ImagingError, QueueUnavailable
from people import audit, sessions
from people.identity import Caller, identify
from people.signin import SignInRefused, check_password
from routes.deps import RedisConn, SettingsDep, Store
from routes.templates import page
from settings import Settings

log = logging.getLogger("imaging.signin")
router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "imaging_login_csrf"
MAX_FORM = 4096  # bytes: a username and a password


def _secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.base_url.startswith("https://")


def _next(raw: str | None) -> str:
    """Return a path on this site to go to after signing in; anything else (another site) goes to /viewer."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/viewer"


def login_page(
    request: Request, settings: Settings, message: str = "", username: str = "", status: int = 200
) -> HTMLResponse:
    """Return the sign-in page, with a fresh login CSRF token in the form and in its own cookie."""
    token = secrets.token_urlsafe(24)
    html = page(
        "login.html",
        message=message,
        username=username,
        csrf=token,
        next=_next(request.query_params.get("next")),
    )
    response = HTMLResponse(html, status)
    response.set_cookie(
        LOGIN_CSRF, token, max_age=3600, httponly=True, samesite="strict", secure=_secure(request, settings)
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep) -> HTMLResponse:
    return login_page(request, settings)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _cross_site(request: Request) -> bool:
    """Whether the browser says the request comes from another site's page (Origin or Sec-Fetch-Site)."""
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return True
    # Our pages send Referrer-Policy: no-referrer, under which a browser's Origin on a form post is "null".
    origin = request.headers.get("origin")
    return origin not in (None, "null") and origin != f"{request.url.scheme}://{request.url.netloc}"


async def read_form(request: Request) -> dict[str, str]:
    """Return a small form's text fields (sign-in, sign-out, the admin page's buttons)."""
    if int(request.headers.get("content-length") or 0) > MAX_FORM:
        raise HTTPException(413, "the form is larger than a few short fields")
    form = await request.form(max_files=0, max_fields=10)
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/login")
async def login(request: Request, store: Store, conn: RedisConn, settings: SettingsDep) -> Response:
    """Check the form's username and password; on success start a session and go on to ``next``."""
    form = await read_form(request)
    sent, kept = form.get("csrf_token", ""), request.cookies.get(LOGIN_CSRF, "")
    if _cross_site(request) or not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
        return login_page(
            request,
            settings,
            "请重新登录 The form expired or came from elsewhere: sign in again.",
            status=403,
        )
    username = form.get("username", "")
    try:
        person = await run_in_threadpool(
            check_password, settings, store, conn, username, form.get("password", ""), _client(request)
        )
        session_id, _ = await run_in_threadpool(sessions.start, conn, settings, person)
    except SignInRefused as exc:
        return login_page(request, settings, exc.message, username, status=401)
    except DirectoryUnavailable as exc:
        log.warning("sign-in of %s: %s", username, exc.message)
        unavailable = "目录服务暂不可用 The staff directory cannot be reached: try again shortly."
        return login_page(request, settings, unavailable, username, status=503)
    except RedisError as exc:  # sessions and the lock-out live in Redis
        raise QueueUnavailable(f"sign-in cannot reach Redis; try again shortly: {exc}") from exc
    response = RedirectResponse(_next(form.get("next")), status_code=303)
    response.set_cookie(
        sessions.COOKIE,
        session_id,
        max_age=settings.session_max_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF)
    return response


@router.post("/logout")
async def logout(request: Request, conn: RedisConn, settings: SettingsDep) -> Response:
    """End the session (the form carries its CSRF token) and go back to the sign-in page."""
    form = await read_form(request)
    session_id = request.cookies.get(sessions.COOKIE)
    if session_id:
        session = await run_in_threadpool(sessions.lookup, conn, settings, session_id)
        if session is not None:
            if not hmac.compare_digest(form.get("csrf_token", "").encode(), session.csrf.encode()):
                raise HTTPException(403, "this sign-out lacks the page's CSRF token: refused")
            await run_in_threadpool(sessions.end, conn, session_id)
            await run_in_threadpool(
                audit.record,
                conn,
                person=session.person.username,
                branch=session.person.branch,
                action="signout",
            )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


def page_caller(request: Request) -> Caller | RedirectResponse:
    """Return the person signed in for a staff page, or the redirect to /login that comes back here.
    Pages are for people: an API key in a header does not open them."""
    state = request.app.state
    try:
        return identify(
            state.settings,
            state.store,
            state.redis,
            method="GET",
            api_key=None,
            session_id=request.cookies.get(sessions.COOKIE),
            csrf=None,
        )
    except ImagingError as exc:
        if exc.http_status != 401:
            raise
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def staff_page(name: str, who: Caller) -> HTMLResponse:
    """Return a staff page from web/, with the person's name and the session's CSRF token filled in."""
    return HTMLResponse(page(name, csrf=who.csrf or "", person=who.person))
