"""What every router shares: who is calling and whether their role may, the store, Redis, the settings,
the error body, and the check of a number that becomes part of a storage key."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from redis import Redis
from starlette.exceptions import HTTPException

import idnumber
from roles import Operation, Role, allowed_roles, may
from settings import Settings
from storage import ObjectStore
from vocabulary import BUSINESS_NO_PATTERN

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from IMAGING_API_KEYS"
)


class ErrorBody(BaseModel):
    error: str = Field(examples=["not_found"])
    detail: str | list = Field(examples=["no scan s20261123103000a1b2c3d4e5f6"])


@dataclass(frozen=True)
class Caller:
    key_id: str  # a short hash of the key: safe to store and log, never the key itself
    role: Role


def key_id(key: str) -> str:
    """Return the short hash that stands for an API key in records and logs."""
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:12]


NO_KEY = "send an API key in the X-API-Key header"
UNKNOWN_KEY = "the API key is not known"


def role_of(settings: Settings, api_key: str) -> Role | None:
    """Return the role of a known API key, or None."""
    role = None
    # Compare against every key, each in constant time, so timing tells nothing about which is close.
    for key, key_role in settings.keys.items():
        if hmac.compare_digest(key.encode(), api_key.encode()):
            role = key_role
    return role


def caller(request: Request, api_key: Annotated[str | None, Depends(API_KEY_HEADER)]) -> Caller:
    """Return who is calling, from the X-API-Key header; 401 without a known key."""
    if not api_key:
        raise HTTPException(401, NO_KEY)
    role = role_of(request.app.state.settings, api_key)
    if role is None:
        raise HTTPException(401, UNKNOWN_KEY)
    return Caller(key_id(api_key), role)


def require(operation: Operation):
    """Return a dependency giving the caller if their role may call the operation (roles.py), else 403."""

    def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if not may(who.role, operation):
            allowed = ", ".join(sorted(allowed_roles(operation)))
            raise HTTPException(403, f"role {who.role} may not do this; allowed: {allowed}")
        return who

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
