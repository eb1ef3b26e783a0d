"""The admin page for staff accounts: list them, lock, unlock, set a new password. Plain forms, rendered
here, each carrying the session's CSRF token; the same changes as `imaging users` and /v1/users."""

from __future__ import annotations

import hmac

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
from routes.templates import page
from storage import ObjectStore

router = APIRouter(include_in_schema=False)
ACTIONS = ("lock", "unlock", "password")


def _admin(request: Request) -> Caller | Response:
    who = page_caller(request)
    if isinstance(who, Response):
        return who
    if not any(may(r, Operation.manage_people) for r in who.roles):
        raise HTTPException(403, "this page is for administrators")
    return who.acting_as(Role.admin)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, store: Store) -> Response:
    who = _admin(request)
    return who if isinstance(who, Response) else _render(store, who)


def _render(store: ObjectStore, who: Caller, message: str = "", status: int = 200) -> HTMLResponse:
    html = page(
        "admin.html",
        accounts=accounts.every(store),
        locked=accounts.AccountState.locked,
        min_password=accounts.MIN_PASSWORD,
        message=message,
        csrf=who.csrf or "",
        person=who.person,
    )
    return HTMLResponse(html, status)


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
