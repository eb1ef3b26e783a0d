"""tokens: the customer's link to one policy, signed and expiring, so it opens that policy and nothing else.

A token is ``<policy_no>.<expiry as unix seconds>.<HMAC-SHA256 of both, base64url>``; the secret is the
setting IMAGING_TOKEN_SECRET or, by default, a random one kept in ``<data dir>/keys/token.secret``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

from errors import BadInput

TOKEN_PATTERN = re.compile(r"^([A-Z0-9][A-Z0-9-]{2,30}[A-Z0-9])\.([0-9]{10})\.([A-Za-z0-9_-]{43})$")


class BadToken(BadInput):
    """The link is altered, expired or not ours."""

    http_status = 403
    error = "bad_token"


def _mac(secret: bytes, policy_no: str, expires: int) -> str:
    digest = hmac.new(secret, f"{policy_no}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_token(secret: bytes, policy_no: str, lifetime_seconds: int, now: float | None = None) -> str:
    """Return a token that opens this policy's page until lifetime_seconds from now."""
    expires = int((now or time.time()) + lifetime_seconds)
    return f"{policy_no}.{expires}.{_mac(secret, policy_no, expires)}"


def check_token(secret: bytes, token: str, now: float | None = None) -> str:
    """Return the policy number the token opens; raise BadToken if it is altered or expired."""
    match = TOKEN_PATTERN.fullmatch(token)
    if not match:
        raise BadToken("this link is not valid")
    policy_no, expires, mac = match.group(1), int(match.group(2)), match.group(3)
    if not hmac.compare_digest(mac, _mac(secret, policy_no, expires)):
        raise BadToken("this link is not valid")
    if expires < (now or time.time()):
        raise BadToken("this link has expired; ask for the e-policy to be sent again")
    return policy_no
