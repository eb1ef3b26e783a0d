"""Sessions of people signed in through /login: in Redis, ended by idle time, age, logout or a lock.

``session:<sha256 of the cookie>`` is a hash (who, roles, branch, the CSRF token, when signed in) that
expires after IMAGING_SESSION_IDLE_MINUTES without a request; every request pushes that back, up to
IMAGING_SESSION_MAX_HOURS after sign-in. Only the cookie's hash is a key, so a Redis dump or MONITOR shows
no usable session. ``sessions:of:<username>`` lists a person's sessions, so a lock ends them all at once.
A Redis flush signs everyone out, which is all it may cost: accounts are in the object store.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from redis import Redis

from roles import Role
from settings import Settings

COOKIE = "imaging_session"
PREFIX, OF = "session:", "sessions:of:"


@dataclass(frozen=True)
class Person:
    """Someone signed in: who, their roles and branch, and where their password was checked."""

    username: str
    name: str
    roles: frozenset[Role]
    branch: str
    source: str  # local | directory


@dataclass(frozen=True)
class Session:
    person: Person
    csrf: str  # sent back by the pages on every state-changing request (X-CSRF-Token or a form field)
    started: float


def _key(session_id: str) -> str:
    return PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def start(conn: Redis, settings: Settings, person: Person) -> tuple[str, Session]:
    """Return a new session id (the cookie's value) and its session, stored in Redis."""
    session_id = secrets.token_urlsafe(32)
    session = Session(person, secrets.token_urlsafe(24), time.time())
    key = _key(session_id)
    with conn.pipeline() as pipe:
        pipe.hset(
            key,
            mapping={
                "username": person.username,
                "name": person.name,
                "roles": ",".join(sorted(person.roles)),
                "branch": person.branch,
                "source": person.source,
                "csrf": session.csrf,
                "started": str(session.started),
            },
        )
        pipe.expire(key, settings.session_idle_minutes * 60)
        pipe.sadd(OF + person.username, key)
        pipe.expire(OF + person.username, settings.session_max_hours * 3600)
        pipe.execute()
    return session_id, session


def lookup(conn: Redis, settings: Settings, session_id: str) -> Session | None:
    """Return the live session of this cookie, its idle time reset; None when there is none (ended,
    idle too long, too old)."""
    key = _key(session_id)
    with conn.pipeline(transaction=False) as pipe:  # one round trip; no MULTI/EXEC needed for a read
        pipe.hgetall(key)
        pipe.expire(key, settings.session_idle_minutes * 60, xx=True)
        raw, _ = pipe.execute()
    if not raw:
        return None
    row = {k.decode(): v.decode() for k, v in raw.items()}
    started = float(row["started"])
    if time.time() - started > settings.session_max_hours * 3600:
        conn.delete(key)
        return None
    roles = frozenset(Role(r) for r in row["roles"].split(",") if r in Role.__members__)
    person = Person(row["username"], row["name"], roles, row["branch"], row["source"])
    return Session(person, row["csrf"], started)


def end(conn: Redis, session_id: str) -> None:
    """End one session (logout)."""
    conn.delete(_key(session_id))


def end_all(conn: Redis, username: str) -> int:
    """End every session of a person (their account locked, their roles changed); return how many."""
    keys = [k.decode() for k in conn.smembers(OF + username)]
    ended = conn.delete(*keys) if keys else 0
    conn.delete(OF + username)
    return ended
