"""Who is calling: a person signed in (the session cookie), an API token (personal or service), or one of
the bootstrap keys of IMAGING_API_KEYS; with the roles they act in and the branch they belong to.

The API's gate (api.py) and ``routes.deps.caller`` both ask ``identify``: one answer for a request.
A request made with a session that changes anything must carry the session's CSRF token (the
``X-CSRF-Token`` header; forms send it as a field, checked by their route): a page of another site can
make the browser send the cookie, but cannot read the token.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace

from redis import Redis
from redis.exceptions import RedisError

from errors import ImagingError, QueueUnavailable
from people import sessions, tokens
from people.branches import BranchTree
from roles import Role
from settings import Settings
from storage import ObjectStore

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_KEY = "sign in, or send an API key or token in the X-API-Key header"
UNKNOWN_KEY = "the API key is not known"


class NotSignedIn(ImagingError):
    http_status = 401
    error = "unauthorized"


class CsrfRefused(ImagingError):
    """A state-changing request made with a session but without its CSRF token: another site's form."""

    http_status = 403
    error = "forbidden"


@dataclass(frozen=True)
class Caller:
    """Who is calling and in which role: ``person`` is a username, a service's name, or for a bootstrap
    key a short hash of it (``k...``, safe to store and log; never the key itself)."""

    person: str
    role: Role  # the role this request acts in (routes.deps.require picks it among ``roles``)
    roles: frozenset[Role]  # every role the person holds: an admin who also keys still may not key
    branch: str | None  # None for the bootstrap keys: the root of the branch tree
    via: str  # session | token:<id> | key
    csrf: str | None = None
    session_id: str | None = None
    tree: BranchTree | None = None  # IMAGING_BRANCHES, for reach.py; None: the codes' own prefixes

    @property
    def key_id(self) -> str:
        """The caller as records of before people signed in name them (scans' uploaded_by, keyed values)."""
        return self.person

    def acting_as(self, role: Role) -> Caller:
        return replace(self, role=role)


def key_id(key: str) -> str:
    """Return the short hash that stands for a bootstrap API key in records and logs."""
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:12]


def role_of(settings: Settings, api_key: str) -> Role | None:
    """Return the role of a bootstrap key (IMAGING_API_KEYS, its file, the embedded admin key), or None."""
    role = None
    # Compare against every key, each in constant time, so timing tells nothing about which is close.
    for key, key_role in settings.keys.items():
        if hmac.compare_digest(key.encode(), api_key.encode()):
            role = key_role
    return role


def _first(roles: frozenset[Role]) -> Role:
    return next(r for r in Role if r in roles)


def identify(
    settings: Settings,
    store: ObjectStore,
    conn: Redis,
    *,
    method: str,
    api_key: str | None,
    session_id: str | None,
    csrf: str | None,
) -> Caller:
    """Return the caller of a request; raise NotSignedIn (401), or CsrfRefused (403) for a state-changing
    request made with a session but without its CSRF token. A key in the header wins over a cookie."""
    if api_key:
        if api_key.startswith("imt_"):
            found = tokens.check(store, api_key)
            if found is None or not found[1]:
                raise NotSignedIn(UNKNOWN_KEY)
            record, acting, held = found
            return Caller(
                record.owner,
                _first(acting),
                held,
                record.branch,
                f"token:{record.token_id}",
                tree=settings.branch_tree,
            )
        role = role_of(settings, api_key)
        if role is None:
            raise NotSignedIn(UNKNOWN_KEY)
        return Caller(key_id(api_key), role, frozenset({role}), None, "key")
    if session_id:
        try:
            session = sessions.lookup(conn, settings, session_id)
        except RedisError as exc:
            raise QueueUnavailable(f"sessions (Redis) cannot be read; try again shortly: {exc}") from exc
        if session is None:
            raise NotSignedIn("your session has ended (signed out, or idle too long): sign in again")
        if method not in SAFE_METHODS and not hmac.compare_digest(
            (csrf or "").encode(), session.csrf.encode()
        ):
            raise CsrfRefused("this request lacks the page's CSRF token (X-CSRF-Token): refused")
        person = session.person
        return Caller(
            person.username,
            _first(person.roles),
            person.roles,
            person.branch,
            "session",
            session.csrf,
            session_id,
            settings.branch_tree,
        )
    raise NotSignedIn(NO_KEY)
