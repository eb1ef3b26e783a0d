"""Local staff accounts, the embedded default: a name, roles, a branch, a state, an argon2 password hash.

Each account is one record in the object store (``people/accounts/<username>.json``), so a Redis flush
loses none; Redis holds only what may be lost: the count of bad passwords and the temporary lock they
cause (people/signin.py).
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import Field

from errors import BadInput
from models import Stored, find, find_all, load
from roles import Role
from storage import ObjectStore
from vocabulary import utcnow

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$"
BRANCH_PATTERN = r"^[0-9A-Za-z]{1,20}$"  # a 机构 code, e.g. 86 (head office), 8611, 861101
PREFIX = "people/accounts/"
MIN_PASSWORD = 10
# argon2id at OWASP's first recommended setting (19 MiB, 2 passes, 1 lane) rather than the library's
# default (RFC 9106's 64 MiB, 3 passes, 4 lanes): measured on this 2-core machine, 7x cheaper a check
# (bench/people_bench.py), so a shift signing in at once does not queue behind the hashes, and still
# about 0.1 s a guess for an attacker with the hash. Hashes keep their parameters: old ones still verify.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class AccountState(StrEnum):
    active = "active"
    locked = "locked"  # by an admin, until unlocked


class Account(Stored):
    """``people/accounts/<username>.json``: one member of staff with a local password."""

    noun: ClassVar[str] = "account"

    @staticmethod
    def key_of(username: str) -> str:
        return PREFIX + username + ".json"

    schema_: int = Field(1, alias="schema")
    username: str = Field(pattern=USERNAME_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    roles: list[Role] = Field(min_length=1)
    branch: str = Field(pattern=BRANCH_PATTERN)
    state: AccountState = AccountState.active
    password_hash: str
    created_at: datetime
    updated_at: datetime
    password_changed_at: datetime

    @property
    def key(self) -> str:
        return self.key_of(self.username)


def checked_username(username: str) -> str:
    """Return the username if it has the shape of one; raise BadInput naming the rule otherwise."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise BadInput(f"username {username!r}: 3-64 lower-case letters, digits, '.', '_' or '-'")
    return username


def _checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"the password is shorter than {MIN_PASSWORD} characters")
    return password


def add(
    store: ObjectStore, username: str, name: str, roles: list[Role], branch: str, password: str
) -> Account:
    """Return the new account, stored; raise BadInput if the username is taken or a value is bad."""
    checked_username(username)
    if find(store, Account, username) is not None:
        raise BadInput(f"account {username} exists already; reset its password or change it instead")
    if not re.fullmatch(BRANCH_PATTERN, branch):
        raise BadInput(f"branch {branch!r}: 1-20 letters and digits (a 机构 code)")
    if not roles:
        raise BadInput("give at least one role")
    now = utcnow()
    account = Account(
        username=username,
        name=name,
        roles=sorted(set(roles)),
        branch=branch,
        password_hash=HASHER.hash(_checked_password(password)),
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    _save(store, account)
    return account


def get(store: ObjectStore, username: str) -> Account:
    """Return the account; raise NotFound ("no account ...") if there is none."""
    return load(store, Account, checked_username(username))


def find_account(store: ObjectStore, username: str) -> Account | None:
    """Return the account, or None (also for a name that cannot be one)."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        return None
    return find(store, Account, username)


def every(store: ObjectStore) -> list[Account]:
    """Return every local account, by username."""
    return find_all(store, Account, PREFIX)


def set_state(store: ObjectStore, username: str, state: AccountState) -> Account:
    """Return the account after locking or unlocking it."""
    account = get(store, username)
    changed = account.model_copy(update={"state": state, "updated_at": utcnow()})
    _save(store, changed)
    return changed


def reset_password(store: ObjectStore, username: str, password: str) -> Account:
    """Return the account with its new password."""
    account = get(store, username)
    now = utcnow()
    changed = account.model_copy(
        update={
            "password_hash": HASHER.hash(_checked_password(password)),
            "updated_at": now,
            "password_changed_at": now,
        }
    )
    _save(store, changed)
    return changed


def set_roles(store: ObjectStore, username: str, roles: list[Role], branch: str | None = None) -> Account:
    """Return the account with its new roles (and branch, if given)."""
    account = get(store, username)
    if not roles:
        raise BadInput("give at least one role")
    update: dict = {"roles": sorted(set(roles)), "updated_at": utcnow()}
    if branch is not None:
        if not re.fullmatch(BRANCH_PATTERN, branch):
            raise BadInput(f"branch {branch!r}: 1-20 letters and digits (a 机构 code)")
        update["branch"] = branch
    changed = account.model_copy(update=update)
    _save(store, changed)
    return changed


def password_matches(account: Account, password: str) -> bool:
    """Whether the password is the account's (argon2 verify, constant time in the hash)."""
    try:
        return HASHER.verify(account.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def spend_a_check(password: str) -> None:
    """Spend what a password check costs, for a name with no account: the answer for an unknown name
    then takes as long as for a known one, and timing does not tell which names exist."""
    password_matches(_dummy(), password)


def _save(store: ObjectStore, account: Account) -> None:
    store.put(account.key, account.to_json(), "application/json")


@functools.cache
def _dummy() -> Account:
    now = utcnow()
    return Account(
        username="nobody",
        name="-",
        roles=[Role.scanner],
        branch="0",
        password_hash=HASHER.hash("not a password of anyone"),
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
