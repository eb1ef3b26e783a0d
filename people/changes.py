"""Changes to people and tokens, as the CLI, the API and the admin page make them: each does the change,
ends what it must (a locked person's sessions), and puts it in the audit trail with who made it."""

from __future__ import annotations

from redis import Redis

from people import accounts, audit, sessions, signin, tokens
from people.accounts import Account, AccountState
from people.tokens import ApiToken, TokenKind
from roles import Role
from storage import ObjectStore


def add_user(
    store: ObjectStore,
    conn: Redis,
    by: str,
    username: str,
    name: str,
    roles: list[Role],
    branch: str,
    password: str,
) -> Account:
    account = accounts.add(store, username, name, roles, branch, password)
    audit.record(
        conn,
        person=by,
        action="account_add",
        object=username,
        reason=f"roles {','.join(roles)} branch {branch}",
    )
    return account


def lock_user(store: ObjectStore, conn: Redis, by: str, username: str) -> Account:
    account = accounts.set_state(store, username, AccountState.locked)
    ended = sessions.end_all(conn, username)
    audit.record(conn, person=by, action="account_lock", object=username, reason=f"{ended} session(s) ended")
    return account


def unlock_user(store: ObjectStore, conn: Redis, by: str, username: str) -> Account:
    account = accounts.set_state(store, username, AccountState.active)
    signin.unlock(conn, username)
    audit.record(conn, person=by, action="account_unlock", object=username)
    return account


def reset_user(store: ObjectStore, conn: Redis, by: str, username: str, password: str) -> Account:
    account = accounts.reset_password(store, username, password)
    signin.unlock(conn, username)
    ended = sessions.end_all(conn, username)
    audit.record(conn, person=by, action="account_reset", object=username, reason=f"{ended} session(s) ended")
    return account


def set_user_roles(
    store: ObjectStore, conn: Redis, by: str, username: str, roles: list[Role], branch: str | None
) -> Account:
    account = accounts.set_roles(store, username, roles, branch)
    ended = sessions.end_all(conn, username)  # a session holds the roles it began with
    audit.record(
        conn,
        person=by,
        action="account_roles",
        object=username,
        reason=f"roles {','.join(account.roles)} branch {account.branch}; {ended} session(s) ended",
    )
    return account


def add_token(
    store: ObjectStore,
    conn: Redis,
    by: str,
    *,
    kind: TokenKind,
    owner: str,
    roles: list[Role],
    branch: str | None,
    days: int,
    label: str = "",
) -> tuple[str, ApiToken]:
    secret, record = tokens.create(
        store, kind=kind, owner=owner, roles=roles, branch=branch, days=days, created_by=by, label=label
    )
    audit.record(
        conn,
        person=by,
        action="token_add",
        object=record.token_id,
        reason=f"{kind} for {owner}, roles {','.join(record.roles)}, until {record.expires_at:%Y-%m-%d}",
    )
    return secret, record


def revoke_token(store: ObjectStore, conn: Redis, by: str, token_id: str) -> ApiToken:
    record = tokens.revoke(store, token_id, by)
    audit.record(
        conn, person=by, action="token_revoke", object=token_id, reason=f"{record.kind} of {record.owner}"
    )
    return record
