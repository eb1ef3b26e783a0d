"""tokens: the customer's link to one policy, signed, expiring and named, so it opens that policy and
nothing else, and can be withdrawn.

A token is ``<policy_no>.<link id>.<expiry as unix seconds>.<HMAC-SHA256 of the three, base64url>``. The
link id (16 random hex digits) names the token in the policy's record, where it is recorded when mailed
and can be revoked (epolicies.py); the HMAC makes every part unforgeable. The secret is the setting
IMAGING_TOKEN_SECRET or, by default, a random one kept in ``<data dir>/keys/token.secret``.

Whoever holds the token opens the policy, so it is written nowhere but the mail: ``HideLinks`` takes it
out of every log line (uvicorn's access log quotes the path it is in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from errors import BadInput
from redaction import Redact

POLICY_NO = r"[A-Z0-9][A-Z0-9-]{2,30}[A-Z0-9]"
TOKEN = rf"({POLICY_NO})\.([0-9a-f]{{16}})\.([0-9]{{10}})\.([A-Za-z0-9_-]{{43}})"
TOKEN_PATTERN = re.compile(f"^{TOKEN}$")


class BadToken(BadInput):
    """The link is altered, expired, revoked or not ours."""

    http_status = 403
    error = "bad_token"


@dataclass(frozen=True)
class LinkToken:
    """What a token says: the policy it opens, the id it is recorded under, and until when."""

    policy_no: str
    link_id: str
    expires: int  # unix seconds


def new_link(policy_no: str, lifetime_seconds: int, now: float | None = None) -> LinkToken:
    """Return a fresh link to this policy, with a random id, that opens it until lifetime_seconds from now."""
    return LinkToken(policy_no, secrets.token_hex(8), int((now or time.time()) + lifetime_seconds))


def _mac(secret: bytes, link: LinkToken) -> str:
    signed = f"{link.policy_no}.{link.link_id}.{link.expires}".encode()
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_token(secret: bytes, link: LinkToken) -> str:
    """Return the token for a link: its three parts and their HMAC."""
    return f"{link.policy_no}.{link.link_id}.{link.expires}.{_mac(secret, link)}"


def check_token(secret: bytes, token: str, now: float | None = None) -> LinkToken:
    """Return what the token says; raise BadToken if it is altered or expired. Whether it was recorded
    and is still live is for the policy's record to say (epolicies.open_link)."""
    match = TOKEN_PATTERN.fullmatch(token)
    if not match:
        raise BadToken("this link is not valid")
    link = LinkToken(match.group(1), match.group(2), int(match.group(3)))
    if not hmac.compare_digest(match.group(4), _mac(secret, link)):
        raise BadToken("this link is not valid")
    if link.expires < (now or time.time()):
        raise BadToken("this link has expired; ask for the e-policy to be sent again")
    return link


def named_policy(token: str) -> str | None:
    """Return the policy number a well-formed token names, signed or not (to count failures against it)."""
    match = TOKEN_PATTERN.fullmatch(token)
    return match.group(1) if match else None


# A link's path (quoted or not, old tokens too) and a bare token wherever it stands.
LINK_IN_TEXT = re.compile(r"(/epolicy/)[^/?#\s\"'<>]+|" + TOKEN)


def hide_links(text: str) -> str:
    """Return text with every customer's token in it replaced: ``/epolicy/<redacted>/pdf``."""
    return LINK_IN_TEXT.sub(lambda m: (m.group(1) or "") + "<redacted>", text)


class HideLinks(Redact):
    """A logging filter that hides customers' tokens in the message, its arguments (uvicorn's access log
    passes the path as one) and its traceback."""

    def __init__(self) -> None:
        super().__init__(hide_links)
