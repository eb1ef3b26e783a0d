"""People: staff accounts and API tokens (admin), and the audit trail (auditor)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

import idnumber
from people import accounts, audit, changes, tokens
from people.accounts import Account
from people.audit import Event
from people.tokens import TokenKind
from roles import Operation, Role
from routes.deps import Caller, ErrorBody, RedisConn, SettingsDep, Store, checked_number, require

router = APIRouter(tags=["people"])
Admin = Annotated[Caller, Depends(require(Operation.manage_people))]
Auditor = Annotated[Caller, Depends(require(Operation.read_audit))]


class AccountView(BaseModel):
    username: str
    name: str
    roles: list[Role]
    branch: str
    state: str = Field(description="active, or locked by an admin")
    created_at: datetime
    updated_at: datetime


def _view(account: Account) -> AccountView:
    return AccountView(**account.model_dump(include=set(AccountView.model_fields)))


class NewAccount(BaseModel):
    username: str = Field(pattern=accounts.USERNAME_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    roles: list[Role] = Field(min_length=1)
    branch: str = Field(pattern=accounts.BRANCH_PATTERN)
    password: str = Field(min_length=accounts.MIN_PASSWORD, max_length=200)


class NewPassword(BaseModel):
    password: str = Field(min_length=accounts.MIN_PASSWORD, max_length=200)


class RolesChange(BaseModel):
    roles: list[Role] = Field(min_length=1)
    branch: str | None = Field(None, pattern=accounts.BRANCH_PATTERN)


@router.get("/v1/users", response_model=list[AccountView])
def list_users(store: Store, who: Admin) -> list[AccountView]:
    """Every local staff account."""
    return [_view(a) for a in accounts.every(store)]


@router.post("/v1/users", status_code=201, response_model=AccountView, responses={422: {"model": ErrorBody}})
def add_user(body: NewAccount, store: Store, conn: RedisConn, who: Admin) -> AccountView:
    """Make a local account (422 if the username is taken)."""
    return _view(
        changes.add_user(
            store, conn, who.person, body.username, body.name, body.roles, body.branch, body.password
        )
    )


@router.post("/v1/users/{username}/lock", response_model=AccountView, responses={404: {"model": ErrorBody}})
def lock_user(username: str, store: Store, conn: RedisConn, who: Admin) -> AccountView:
    """Lock an account: it cannot sign in, its sessions end, its personal tokens stop working."""
    return _view(changes.lock_user(store, conn, who.person, accounts.checked_username(username)))


@router.post("/v1/users/{username}/unlock", response_model=AccountView, responses={404: {"model": ErrorBody}})
def unlock_user(username: str, store: Store, conn: RedisConn, who: Admin) -> AccountView:
    """Unlock an account (also a lock left by bad passwords)."""
    return _view(changes.unlock_user(store, conn, who.person, accounts.checked_username(username)))


@router.post(
    "/v1/users/{username}/password", response_model=AccountView, responses={404: {"model": ErrorBody}}
)
def reset_password(
    username: str, body: NewPassword, store: Store, conn: RedisConn, who: Admin
) -> AccountView:
    """Set a new password; the account's sessions end."""
    return _view(
        changes.reset_user(store, conn, who.person, accounts.checked_username(username), body.password)
    )


@router.put("/v1/users/{username}/roles", response_model=AccountView, responses={404: {"model": ErrorBody}})
def set_roles(username: str, body: RolesChange, store: Store, conn: RedisConn, who: Admin) -> AccountView:
    """Replace an account's roles (and branch); its sessions end, so the new roles hold at once."""
    user = accounts.checked_username(username)
    return _view(changes.set_user_roles(store, conn, who.person, user, body.roles, body.branch))


class NewToken(BaseModel):
    kind: TokenKind
    owner: str = Field(description="the person (personal) or the service's name, e.g. scanner-8611-01")
    roles: list[Role] = Field(min_length=1)
    branch: str | None = Field(None, description="service tokens: the branch the machine works for")
    days: int | None = Field(None, ge=1, le=3650, description="lifetime (default IMAGING_TOKEN_DAYS)")
    label: str = Field("", max_length=100)


class TokenView(BaseModel):
    token_id: str
    kind: TokenKind
    owner: str
    label: str
    roles: list[Role]
    branch: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


class TokenMade(TokenView):
    token: str = Field(description="the token itself, shown this once: only its hash is kept")


def _token_view(record: tokens.ApiToken) -> TokenView:
    return TokenView(**record.model_dump(include=set(TokenView.model_fields)))


@router.post("/v1/tokens", status_code=201, response_model=TokenMade, responses={422: {"model": ErrorBody}})
def add_token(body: NewToken, store: Store, conn: RedisConn, settings: SettingsDep, who: Admin) -> TokenMade:
    """Make a personal or service API token; the answer is the only place the token appears."""
    days = body.days or settings.token_days
    secret, record = changes.add_token(
        store,
        conn,
        who.person,
        kind=body.kind,
        owner=body.owner,
        roles=body.roles,
        branch=body.branch,
        days=days,
        label=body.label,
    )
    return TokenMade(**_token_view(record).model_dump(), token=secret)


@router.get("/v1/tokens", response_model=list[TokenView])
def list_tokens(store: Store, who: Admin) -> list[TokenView]:
    """Every token, live, expired or revoked (never the token itself)."""
    return [_token_view(r) for r in tokens.every(store)]


@router.delete("/v1/tokens/{token_id}", response_model=TokenView, responses={404: {"model": ErrorBody}})
def revoke_token(token_id: str, store: Store, conn: RedisConn, who: Admin) -> TokenView:
    """Revoke a token: every API process refuses it within a second."""
    return _token_view(changes.revoke_token(store, conn, who.person, token_id))


@router.get("/v1/audit", response_model=list[Event], tags=["service"])
def audit_trail(
    store: Store,
    conn: RedisConn,
    who: Auditor,
    customer_id: Annotated[str | None, Query(description="every event that concerned this customer")] = None,
    person: Annotated[str | None, Query(max_length=64, description="everything this person did")] = None,
    since: Annotated[datetime | None, Query(description="from this time (ISO 8601, UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[Event]:
    """Who did what: reads of images and PDFs with the case they were opened for, keyed values and
    arbitrations, changes to accounts and tokens, sign-ins and refusals; from the archive in the store
    and the newest events in Redis, oldest first (the newest `limit`)."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    customer = store.private_name(checked_number("customer_id", customer_id)) if customer_id else None
    events = audit.query(conn, store, person=person, customer=customer, since=since, limit=limit)
    audit.record(
        conn,
        person=who.person,
        branch=who.branch,
        role=who.role,
        action="audit_query",
        reason=f"customer {idnumber.mask(customer_id)}" if customer_id else f"person {person or '*'}",
    )
    return events
