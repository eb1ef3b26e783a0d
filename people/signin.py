"""Sign-in: one function that checks a username and password, for the login page and nothing else.

Local accounts (people/accounts.py) come first; a name with no local account is checked against the
directory when IMAGING_LDAP_URL is set. Bad passwords are counted per username, known or not (so the
answer says nothing of which names exist): after IMAGING_SIGNIN_LOCK_AFTER in a row the name is locked
for IMAGING_SIGNIN_LOCK_MINUTES, logged and put in the audit trail. Every sign-in and every refusal is in
the audit trail.
"""

from __future__ import annotations

import logging

from redis import Redis

from errors import ImagingError
from people import accounts, audit, directory
from people.accounts import AccountState
from people.sessions import Person
from settings import Settings
from storage import ObjectStore

log = logging.getLogger("imaging.signin")
FAILS, LOCKED = "signin:fails:", "signin:locked:"


class SignInRefused(ImagingError):
    """The username and password do not open a session; the message is for the person at the page."""

    http_status = 401
    error = "signin_refused"


def check_password(
    settings: Settings, store: ObjectStore, conn: Redis, username: str, password: str, address: str = ""
) -> Person:
    """Return the person these credentials belong to; raise SignInRefused saying why not (a wrong
    name or password alike, a lock), after counting and auditing the attempt."""
    username = username.strip().lower()
    if not username or not password:
        raise SignInRefused("give your username and password")
    if conn.exists(LOCKED + username):
        _refused(conn, username, "locked after too many bad passwords", address)
        raise SignInRefused(
            f"too many bad passwords: this account is locked for up to {settings.signin_lock_minutes} "
            "minutes; ask an administrator if it should not be"
        )
    person = _local(store, username, password)
    if person is None and settings.ldap_url and accounts.find_account(store, username) is None:
        person = _directory(settings, username, password)  # DirectoryUnavailable: 503, not a bad password
    if person is None:
        _bad_password(settings, conn, username, address)
        raise SignInRefused("wrong username or password")
    if isinstance(person, str):  # the account exists and the password is right, but an admin locked it
        _refused(conn, username, "account locked by an administrator", address)
        raise SignInRefused("this account is locked; ask an administrator to unlock it")
    conn.delete(FAILS + username)
    log.info("sign-in: %s (%s) from %s", person.username, person.source, address or "?")
    audit.record(
        conn,
        person=person.username,
        branch=person.branch,
        action="signin",
        reason=f"{person.source} {address}",
    )
    return person


def _local(store: ObjectStore, username: str, password: str) -> Person | str | None:
    """Return the local account's person if the password is right, "locked" if it is right but the
    account is locked, None otherwise (no such account too, after the same work as a check)."""
    account = accounts.find_account(store, username)
    if account is None:
        accounts.spend_a_check(password)
        return None
    if not accounts.password_matches(account, password):
        return None
    if account.state == AccountState.locked:
        return "locked"
    return Person(account.username, account.name, frozenset(account.roles), account.branch, "local")


def _directory(settings: Settings, username: str, password: str) -> Person | None:
    """Return the directory's person for these credentials (bind as them; roles and branch from their
    groups, people/directory.py), or None: no such person, a wrong password, or no group with a role."""
    entry = directory.authenticate(settings, username, password)
    if entry is None:
        return None
    return Person(entry.username.lower(), entry.name, entry.roles, entry.branch, "directory")


def _bad_password(settings: Settings, conn: Redis, username: str, address: str) -> None:
    window = settings.signin_lock_minutes * 60
    with conn.pipeline() as pipe:
        pipe.incr(FAILS + username)
        pipe.expire(FAILS + username, window)
        fails, _ = pipe.execute()
    _refused(conn, username, f"bad password ({fails} in a row)", address)
    if fails >= settings.signin_lock_after:
        conn.set(LOCKED + username, "1", ex=window)
        conn.delete(FAILS + username)
        log.warning(
            "sign-in: %s locked for %d minutes after %d bad passwords (last from %s)",
            username,
            settings.signin_lock_minutes,
            fails,
            address or "?",
        )
        audit.record(conn, person=username, action="signin_locked", reason=f"{fails} bad passwords {address}")


def _refused(conn: Redis, username: str, why: str, address: str) -> None:
    log.info("sign-in refused for %s from %s: %s", username, address or "?", why)
    audit.record(conn, person=username, action="signin_refused", reason=f"{why} {address}".strip())


def unlock(conn: Redis, username: str) -> None:
    """Lift a lock left by bad passwords (an admin's unlock does this too)."""
    conn.delete(LOCKED + username, FAILS + username)
