"""What every router shares: who is calling and whether their role may, the store, Redis, the settings,
the error body, and the check of a number that becomes part of a storage key."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader
from pydantic import BaseModel, Field
from redis import Redis
from starlette.exceptions import HTTPException

import idnumber
from people import sessions
from people.identity import Caller, identify
from roles import Operation, Role, allowed_roles, may
from settings import Settings
from storage import ObjectStore
from vocabulary import BUSINESS_NO_PATTERN

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An API token (imaging tokens add) or a key of IMAGING_API_KEYS",
)


class ErrorBody(BaseModel):
    error: str = Field(examples=["not_found"])
    detail: str | list = Field(examples=["no scan s20261123103000a1b2c3d4e5f6"])


SESSION_COOKIE = APIKeyCookie(
    name=sessions.COOKIE, auto_error=False, description="The session of a person signed in at /login"
)


def identify_request(request: Request) -> Caller:
    """Return who is calling (people/identity.py), as the gate found them or now; raise NotSignedIn
    (401) or CsrfRefused (403)."""
    found = request.scope.get("state", {}).get("caller")
    if found is not None:
        return found
    state = request.app.state
    return identify(
        state.settings,
        state.store,
        state.redis,
        method=request.method,
        api_key=request.headers.get("x-api-key"),
        session_id=request.cookies.get(sessions.COOKIE),
        csrf=request.headers.get("x-csrf-token"),
    )


def caller(
    request: Request,
    api_key: Annotated[str | None, Depends(API_KEY_HEADER)],
    session: Annotated[str | None, Depends(SESSION_COOKIE)],
) -> Caller:
    """Return who is calling: the X-API-Key header (a token or a bootstrap key), else the session cookie;
    401 without either."""
    return identify_request(request)


def require(operation: Operation):
    """Return a dependency giving the caller, acting in the first of their roles that may call the
    operation (roles.py), else 403."""

    def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
        for role in Role:
            if role in who.roles and may(role, operation):
                return who.acting_as(role)
        allowed = ", ".join(sorted(allowed_roles(operation)))
        held = ", ".join(sorted(who.roles))
        raise HTTPException(403, f"role {held} may not do this; allowed: {allowed}")

    return check


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


def get_redis(request: Request) -> Redis:
    return request.app.state.redis


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


Store = Annotated[ObjectStore, Depends(get_store)]
RedisConn = Annotated[Redis, Depends(get_redis)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def checked_number(name: str, raw: str) -> str:
    """Return a policy_no, claim_no or customer_id normalised, or raise 422 naming it: numbers become
    storage keys, so nothing that does not fit its pattern goes further."""
    value = raw.strip().upper()
    if name == "customer_id":
        identity = idnumber.identify(value)
        if not identity.ok:
            kind = f" (as a {identity.kind.value})" if identity.kind else ""
            raise HTTPException(422, f"customer_id{kind}: {identity.problem}; nothing is filed under it")
        return identity.number
    if not re.fullmatch(BUSINESS_NO_PATTERN, value):
        raise HTTPException(422, f"{name} {raw!r} is not 4-32 letters, digits and dashes")
    return value
