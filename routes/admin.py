"""The admin page for staff accounts: list them, lock, unlock, set a new password. Plain forms, rendered
here, each carrying the session's CSRF token; the same changes as `imaging users` and /v1/users."""

from __future__ import annotations

import hmac
from html import escape
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from errors import BadInput
from people import accounts, changes
from people.identity import Caller
from roles import Operation, Role, may
from routes.deps import RedisConn, Store
from routes.signin import page_caller, read_form
from storage import ObjectStore

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parent.parent / "web"
ACTIONS = ("lock", "unlock", "password")


def _admin(request: Request) -> Caller | Response:
    who = page_caller(request)
    if isinstance(who, Response):
        return who
    if not any(may(r, Operation.manage_people) for r in who.roles):
        raise HTTPException(403, "this page is for administrators")
    return who.acting_as(Role.admin)


def _row(account: accounts.Account, csrf: str) -> str:
    user = escape(account.username)
    toggle = "unlock" if account.state == accounts.AccountState.locked else "lock"
    hidden = f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
    return (
        f"<tr><td>{user}</td><td>{escape(account.name)}</td><td>{escape(', '.join(account.roles))}</td>"
        f"<td>{escape(account.branch)}</td><td class=state>{escape(account.state)}</td>"
        f'<td><form method="post" action="/admin/users/{user}/{toggle}">{hidden}'
        f'<button type="submit">{toggle}</button></form> '
        f'<form method="post" action="/admin/users/{user}/password">{hidden}'
        f'<input type="password" name="password" placeholder="new password" autocomplete="new-password" '
        f'minlength="{accounts.MIN_PASSWORD}"><button type="submit">reset</button></form></td></tr>'
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, store: Store) -> Response:
    who = _admin(request)
    return who if isinstance(who, Response) else _render(store, who)


def _render(store: ObjectStore, who: Caller, message: str = "", status: int = 200) -> HTMLResponse:
    rows = "".join(_row(a, who.csrf or "") for a in accounts.every(store))
    page = (WEB / "admin.html").read_text(encoding="utf-8")
    return HTMLResponse(
        page.replace("{{rows}}", rows)
        .replace("{{message}}", escape(message))
        .replace("{{csrf}}", escape(who.csrf or ""))
        .replace("{{person}}", escape(who.person)),
        status,
    )


@router.post("/admin/users/{username}/{action}")
async def user_action(
    username: str, action: str, request: Request, store: Store, conn: RedisConn
) -> Response:
    """Lock, unlock or set the password of an account from the admin page; back to the list."""
    who = _admin(request)
    if isinstance(who, Response):
        return who
    form = await read_form(request)
    if not hmac.compare_digest(form.get("csrf_token", "").encode(), (who.csrf or "").encode()):
        raise HTTPException(403, "this form lacks the page's CSRF token: refused")
    if action not in ACTIONS:
        raise HTTPException(404, f"no action {action!r}")
    user = accounts.checked_username(username)
    try:
        if action == "lock":
            await run_in_threadpool(changes.lock_user, store, conn, who.person, user)
        elif action == "unlock":
            await run_in_threadpool(changes.unlock_user, store, conn, who.person, user)
        else:
            await run_in_threadpool(
                changes.reset_user, store, conn, who.person, user, form.get("password", "")
            )
    except BadInput as exc:
        return _render(store, who, exc.message, 422)
    return RedirectResponse("/admin/users", status_code=303)
