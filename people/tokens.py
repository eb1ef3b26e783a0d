"""API tokens for machines and integrations: personal (a person's, acting as them) or service (a scanner
station, a core system), created, listed, expired and revoked at runtime by an admin.

A token is ``imt_<token id>_<secret>``, shown once when made. The store keeps only its SHA-256, in
``people/tokens/<token id>.json`` with its owner, roles, branch, expiry and revocation, so every API
process sees a new or revoked token at once, without a restart. Each process keeps what it read for
CACHE_SECONDS at most, so a revocation is refused everywhere within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from errors import BadInput
from models import Stored, find, find_all, load
from people import accounts
from people.accounts import AccountState
from roles import Role
from storage import ObjectStore
from vocabulary import utcnow

PREFIX = "people/tokens/"
TOKEN = re.compile(r"^imt_([0-9a-f]{12})_[A-Za-z0-9_-]{40,50}$")
CACHE_SECONDS = 0.5
SERVICE_NAME = r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$"


class TokenKind(StrEnum):
    personal = "personal"  # acts as its owner, with at most the owner's roles while the account is active
    service = "service"  # a machine: a scanner station, a core system


class ApiToken(Stored):
    """``people/tokens/<token_id>.json``: one token, by the hash of its secret."""

    noun: ClassVar[str] = "token"

    @staticmethod
    def key_of(token_id: str) -> str:
        return PREFIX + token_id + ".json"

    schema_: int = Field(1, alias="schema")
    token_id: str = Field(pattern=r"^[0-9a-f]{12}$")
    kind: TokenKind
    owner: str = Field(description="the person (personal) or the service's name")
    label: str = Field("", max_length=100)
    roles: list[Role] = Field(min_length=1)
    branch: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def key(self) -> str:
        return self.key_of(self.token_id)

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


def create(
    store: ObjectStore,
    *,
    kind: TokenKind,
    owner: str,
    roles: list[Role],
    branch: str | None,
    days: int,
    created_by: str,
    label: str = "",
) -> tuple[str, ApiToken]:
    """Return the new token (the only time it is seen whole) and its stored record."""
    if kind == TokenKind.personal:
        account = accounts.get(store, owner)
        outside = set(roles) - set(account.roles)
        if outside:
            raise BadInput(f"{owner} does not hold the role(s) {', '.join(sorted(outside))}")
        branch = account.branch
    else:
        if not re.fullmatch(SERVICE_NAME, owner):
            raise BadInput(f"service name {owner!r}: 3-64 lower-case letters, digits, '.', '_' or '-'")
        if Role.keyer in roles or Role.admin in roles:
            raise BadInput("a service token cannot key or administer: those are for people")
        if not branch or not re.fullmatch(accounts.BRANCH_PATTERN, branch):
            raise BadInput("a service token needs the branch it works for (--branch)")
    if not roles:
        raise BadInput("give at least one role")
    token_id = secrets.token_hex(6)
    secret = f"imt_{token_id}_{secrets.token_urlsafe(33)}"
    now = utcnow()
    record = ApiToken(
        token_id=token_id,
        kind=kind,
        owner=owner,
        label=label,
        roles=sorted(set(roles)),
        branch=branch,
        sha256=hashlib.sha256(secret.encode()).hexdigest(),
        created_at=now,
        created_by=created_by,
        expires_at=now + timedelta(days=days),
    )
    store.put(record.key, record.to_json(), "application/json")
    _CACHE.pop(token_id, None)
    return secret, record


def every(store: ObjectStore) -> list[ApiToken]:
    """Return every token record, live or not, by id."""
    return find_all(store, ApiToken, PREFIX)


def revoke(store: ObjectStore, token_id: str, by: str) -> ApiToken:
    """Return the token's record, revoked now (a second revocation changes nothing)."""
    if not re.fullmatch(r"[0-9a-f]{12}", token_id):
        raise BadInput(f"{token_id!r} is not a token id (12 hex digits)")
    record = load(store, ApiToken, token_id)
    if record.revoked_at is None:
        record = record.model_copy(update={"revoked_at": utcnow(), "revoked_by": by})
        store.put(record.key, record.to_json(), "application/json")
    _CACHE.pop(token_id, None)
    return record


_CACHE: dict[str, tuple[float, ApiToken | None, accounts.Account | None]] = {}
_CACHE_LOCK = threading.Lock()


def _records(store: ObjectStore, token_id: str) -> tuple[ApiToken | None, accounts.Account | None]:
    """Return the token's record and its owner's account (personal tokens), read at most every
    CACHE_SECONDS in this process."""
    now = time.monotonic()
    with _CACHE_LOCK:
        cached = _CACHE.get(token_id)
    if cached and now - cached[0] < CACHE_SECONDS:
        return cached[1], cached[2]
    record = find(store, ApiToken, token_id)
    account = None
    if record is not None and record.kind == TokenKind.personal:
        account = accounts.find_account(store, record.owner)
    with _CACHE_LOCK:
        _CACHE[token_id] = (now, record, account)
        if len(_CACHE) > 10_000:
            _CACHE.clear()
    return record, account


def check(store: ObjectStore, presented: str) -> tuple[ApiToken, frozenset[Role], frozenset[Role]] | None:
    """Return a live token's record, the roles it acts with and every role its person holds; None for
    anything else (unknown, wrong secret, expired, revoked, its owner's account gone or locked)."""
    match = TOKEN.match(presented)
    if not match:
        return None
    record, account = _records(store, match.group(1))
    if record is None or not record.live(utcnow()):
        return None
    if not hmac.compare_digest(record.sha256, hashlib.sha256(presented.encode()).hexdigest()):
        return None
    if record.kind == TokenKind.service:
        return record, frozenset(record.roles), frozenset(record.roles)
    if account is None or account.state != AccountState.active:
        return None
    held = frozenset(account.roles)
    return record, frozenset(record.roles) & held, held
