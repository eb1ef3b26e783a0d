"""Staff sign-in against an LDAP or Active Directory directory (``IMAGING_LDAP_*``, on when the URL is set).

The password is checked by binding as the person; their roles and branch come from their groups (a search
of ``groupOfNames``/``groupOfUniqueNames`` under a group base, or their ``memberOf``), mapped by the
settings. The person's DN is found by a search (as the service account, or anonymously) or written from a
DN template. Every value a person types reaches the directory escaped (ldap3's ``escape_filter_chars``
and ``escape_rdn``), so ``*`` or ``admin)(|(uid=*`` finds nobody. An empty password never reaches it: a
simple bind with a name and no password is an unauthenticated bind (RFC 4513 5.1.2), which Active
Directory and other servers answer with success.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCertificateError,
    LDAPException,
    LDAPInvalidDnError,
    LDAPInvalidFilterError,
    LDAPPasswordIsMandatoryError,
    LDAPSASLPrepError,
    LDAPSocketOpenError,
    LDAPSocketReceiveError,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from errors import ConfigError, DirectoryUnavailable
from roles import Role

if TYPE_CHECKING:
    from settings import Settings

log = logging.getLogger(__name__)

MAX_USERNAME = 256
# LDAP result codes (RFC 4511 4.1.9) this module tells apart.
SUCCESS, SIZE_LIMIT_EXCEEDED, NO_SUCH_OBJECT, BUSY, UNAVAILABLE = 0, 4, 32, 51, 52


@dataclass(frozen=True)
class DirectoryEntry:
    """A person the directory vouched for: their sign-in name as the directory spells it, their full name,
    the roles their groups give, and their branch (机构 code)."""

    username: str
    name: str
    roles: frozenset[Role]
    branch: str


@dataclass(frozen=True)
class _Person:
    dn: str
    attributes: dict
    groups: list[str]


def authenticate(settings: Settings, username: str, password: str) -> DirectoryEntry | None:
    """Return the person's entry when the directory accepts the password and their groups give a role and
    one branch; None for an unknown name, a wrong or empty password, or no mapped group (and always when
    IMAGING_LDAP_URL is unset). Raises DirectoryUnavailable when the directory cannot be reached, does not
    answer within IMAGING_LDAP_TIMEOUT, fails TLS or refuses the service account."""
    if not settings.ldap_urls or not password or not _may_be_a_name(username):
        return None
    started = time.monotonic()
    try:
        with _connection(settings) as conn:
            person = _find_and_bind(conn, settings, username, password)
    except (LDAPException, OSError) as exc:
        raise DirectoryUnavailable(_why(settings, exc, time.monotonic() - started)) from None
    return None if person is None else _entry(settings, username, person)


def _may_be_a_name(username: str) -> bool:
    return 0 < len(username) <= MAX_USERNAME and username.isprintable() and not username.isspace()


def _server(settings: Settings, url: str) -> Server:
    ca_file = str(settings.ldap_ca_file) if settings.ldap_ca_file else None
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file, sni=urlsplit(url).hostname)
    # get_info=NONE: the default reads the server's schema on every connection (7.5 ms instead of 0.3 ms).
    return Server(url, get_info=NONE, tls=tls, connect_timeout=settings.ldap_timeout)


@contextmanager
def _connection(settings: Settings) -> Iterator[Connection]:
    """Yield an open, unbound connection to the first server of IMAGING_LDAP_URL that answers, upgraded by
    StartTLS when the settings ask."""
    conn = _open(settings)
    try:
        # Each request is one small write: without TCP_NODELAY, Nagle holds the first write after the TLS
        # handshake until the server's delayed ACK (up to 40 ms): 64 ms a sign-in over TLS, 15 with it.
        conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if settings.ldap_starttls and not conn.start_tls(read_server_info=False):
            raise LDAPStartTLSError(conn.last_error or "the directory refused StartTLS")
        yield conn
    finally:
        with suppress(LDAPException, OSError):
            conn.unbind()


def _open(settings: Settings) -> Connection:
    """Return an open connection to the first server that takes one; raises the last server's error."""
    for url in settings.ldap_urls:
        conn = Connection(
            _server(settings, url),
            read_only=True,
            receive_timeout=settings.ldap_timeout,
            auto_referrals=False,  # AD answers a search at the domain root with referrals to other servers
            raise_exceptions=False,
        )
        try:
            conn.open(read_server_info=False)
        except LDAPSocketOpenError as exc:  # refused, unreachable, or its certificate failed: the next one
            error = exc
            log.warning("directory: %s: %s", url, exc)
        else:
            return conn
    raise error


def _find_and_bind(conn: Connection, settings: Settings, username: str, password: str) -> _Person | None:
    """Return the person once their password is proven, with their entry and groups; None if it is not."""
    if settings.ldap_user_dn_template:
        dn = settings.ldap_user_dn_template.replace("{username}", escape_rdn(username))
        if not _bind(conn, dn, password):
            return None
        return _read_person(conn, settings, dn, BASE, "(objectClass=*)")
    if settings.ldap_bind_dn and not _bind(
        conn, settings.ldap_bind_dn, settings.ldap_service_password() or ""
    ):
        raise DirectoryUnavailable(
            f"the directory refused the service account IMAGING_LDAP_BIND_DN={settings.ldap_bind_dn} "
            f"({conn.result.get('description')}): check it and its password"
        )
    attribute_filter = f"({settings.ldap_user_attribute}={escape_filter_chars(username)})"
    person = _read_person(conn, settings, settings.ldap_base_dn, SUBTREE, attribute_filter)
    return person if person is not None and _bind(conn, person.dn, password) else None


def _bind(conn: Connection, dn: str, password: str) -> bool:
    """Return whether the directory accepts the password for dn (an empty one is never sent)."""
    if not password:
        return False
    try:
        accepted = conn.rebind(user=dn, password=password, read_server_info=False)
    except (LDAPPasswordIsMandatoryError, LDAPSASLPrepError):  # characters a password may not hold
        return False
    if not accepted and conn.result.get("result") in (BUSY, UNAVAILABLE):
        raise DirectoryUnavailable(f"the directory is {conn.result['description']}; try again shortly")
    return bool(accepted)


def _read_person(
    conn: Connection, settings: Settings, base: str, scope: str, selector: str
) -> _Person | None:
    """Return the one entry under base that the selector and IMAGING_LDAP_USER_FILTER find, with its groups;
    None for none or several."""
    wanted = [settings.ldap_user_attribute, settings.ldap_name_attribute]
    if settings.ldap_branch_attribute:
        wanted.append(settings.ldap_branch_attribute)
    if not settings.ldap_group_base_dn:
        wanted.append("memberOf")
    found = _search(
        conn, base, scope, f"(&{selector}{settings.ldap_user_filter})", wanted, "IMAGING_LDAP_BASE_DN"
    )
    if len(found) != 1:
        if found:
            log.warning("directory: %s names %d entries under %s; refused", selector, len(found), base)
        return None
    dn, attributes = found[0]
    if settings.ldap_group_base_dn:
        groups = _search(
            conn,
            settings.ldap_group_base_dn,
            SUBTREE,
            settings.ldap_group_filter.replace("{dn}", escape_filter_chars(dn)),
            ["1.1"],  # no attributes: the groups' DNs are enough
            "IMAGING_LDAP_GROUP_BASE_DN",
            size_limit=0,
        )
        return _Person(dn, attributes, [group_dn for group_dn, _ in groups])
    return _Person(dn, attributes, _values(attributes, "memberOf"))


def _search(
    conn: Connection,
    base: str,
    scope: str,
    query: str,
    attributes: list[str],
    setting: str,
    size_limit: int = 2,
) -> list[tuple[str, dict]]:
    """Return (DN, attributes) of the entries found; raises DirectoryUnavailable for an error answer."""
    conn.search(base, query, scope, attributes=attributes, size_limit=size_limit)
    code = conn.result.get("result")
    if code == NO_SUCH_OBJECT and scope == SUBTREE:
        raise DirectoryUnavailable(f"{setting}: the directory has no entry {base}; check the setting")
    if code not in (SUCCESS, SIZE_LIMIT_EXCEEDED, NO_SUCH_OBJECT):
        raise DirectoryUnavailable(
            f"the directory answered a search under {base}: {conn.result['description']}"
        )
    return [(r["dn"], dict(r["attributes"])) for r in conn.response or [] if r["type"] == "searchResEntry"]


def _dn_key(dn: str) -> tuple[tuple[str, str], ...]:
    """Return a DN in the form two spellings of one DN share (case and spaces around separators aside)."""
    return tuple((kind.lower(), value.lower()) for kind, value, _ in parse_dn(dn, strip=True))


def _configured(pairs: list[tuple[str, str]], setting: str) -> list[tuple[str, tuple]]:
    try:
        return [(name, _dn_key(dn)) for name, dn in pairs]
    except LDAPInvalidDnError as exc:
        raise ConfigError(f"{setting}: {exc}") from None


def _entry(settings: Settings, typed: str, person: _Person) -> DirectoryEntry | None:
    """Return the entry for a proven person, or None (logged) when their groups give no role or not one
    branch."""
    groups = set()
    for dn in person.groups:
        with suppress(LDAPInvalidDnError):
            groups.add(_dn_key(dn))
    roles = {
        Role(r) for r, key in _configured(settings.ldap_roles, "IMAGING_LDAP_ROLE_GROUPS") if key in groups
    }
    codes = {
        c for c, key in _configured(settings.ldap_branches, "IMAGING_LDAP_BRANCH_GROUPS") if key in groups
    }
    if settings.ldap_branch_attribute:
        codes |= {str(v) for v in _values(person.attributes, settings.ldap_branch_attribute)}
    username = next(iter(_values(person.attributes, settings.ldap_user_attribute)), typed)
    if not roles:
        log.info("directory: %s is in no group of IMAGING_LDAP_ROLE_GROUPS; refused", username)
        return None
    if len(codes) != 1:
        log.warning(
            "directory: %s has %s branches (%s), not one; refused", username, len(codes), sorted(codes)
        )
        return None
    name = next(iter(_values(person.attributes, settings.ldap_name_attribute)), username)
    return DirectoryEntry(str(username), str(name), frozenset(roles), codes.pop())


def _values(attributes: dict, name: str) -> list:
    """Return an attribute's values as a list (ldap3 gives a single-valued one as a plain value)."""
    value = next((v for k, v in attributes.items() if k.lower() == name.lower()), [])
    return value if isinstance(value, list) else [value]


def _why(settings: Settings, exc: Exception, seconds: float) -> str:
    """Return what went wrong with the directory, in words that say where to look."""
    where = f"the directory at {settings.ldap_url}"
    # A timeout reaches here in several guises (a receive error, a rebind "abruptly closed", a TLS error).
    if seconds >= settings.ldap_timeout or isinstance(exc, TimeoutError):
        return f"{where} did not answer within {settings.ldap_timeout} s (IMAGING_LDAP_TIMEOUT)"
    if names := re.search(r"doesn't match any name in \[(.*)\]", str(exc)):  # and the whole certificate
        return f"TLS with {where} failed: its certificate does not name {names[1]}; use a name it holds"
    # A failed TLS handshake comes as LDAPSocketOpenError too ("socket ssl wrapping error: ...").
    if isinstance(exc, ssl.SSLError | LDAPStartTLSError | LDAPCertificateError) or "ssl" in str(exc).lower():
        return f"TLS with {where} failed ({exc}); check IMAGING_LDAP_CA_FILE and the server's certificate"
    if isinstance(exc, LDAPInvalidFilterError):  # typed names and DNs are escaped: a setting's is wrong
        return (
            f"IMAGING_LDAP_USER_FILTER or IMAGING_LDAP_GROUP_FILTER: {exc}: "
            f"{settings.ldap_user_filter or '(none)'}, {settings.ldap_group_filter}"
        )
    if isinstance(exc, LDAPSocketOpenError):
        return f"{where} cannot be reached ({exc}); is it running, and is IMAGING_LDAP_URL right?"
    if isinstance(exc, LDAPSocketReceiveError):
        return f"{where} closed the connection ({exc})"
    return f"{where} failed: {exc}"
