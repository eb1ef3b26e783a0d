"""The customer's token: every part signed, and never written whole into a log line."""

from __future__ import annotations

import logging
import sys

import pytest

from esign.tokens import BadToken, HideLinks, LinkToken, check_token, hide_links, make_token, new_link

SECRET = b"s" * 32


def test_a_token_says_what_was_signed_and_each_part_is_covered() -> None:
    link = new_link("P2026110000123", 3600, now=1_800_000_000)
    token = make_token(SECRET, link)
    assert check_token(SECRET, token, now=1_800_000_000) == link
    policy_no, link_id, expires, mac = token.split(".")
    assert (policy_no, expires) == ("P2026110000123", "1800003600") and len(link_id) == 16
    for forged in (
        f"P2026110000124.{link_id}.{expires}.{mac}",
        f"{policy_no}.{'0' * 16}.{expires}.{mac}",
        f"{policy_no}.{link_id}.1900000000.{mac}",
    ):
        with pytest.raises(BadToken, match="not valid"):
            check_token(SECRET, forged, now=1_800_000_000)
    with pytest.raises(BadToken, match="not valid"):
        check_token(b"another secret", token, now=1_800_000_000)
    with pytest.raises(BadToken, match="expired"):
        check_token(SECRET, token, now=1_800_003_601)


def test_two_links_to_one_policy_have_their_own_ids() -> None:
    assert new_link("P2026110000123", 60).link_id != new_link("P2026110000123", 60).link_id


def test_tokens_are_hidden_wherever_a_log_line_has_them() -> None:
    token = make_token(SECRET, LinkToken("P2026110000123", "0123456789abcdef", 1_800_000_000))
    assert hide_links(f"GET /epolicy/{token}/pdf?version=2 HTTP/1.1") == (
        "GET /epolicy/<redacted>/pdf?version=2 HTTP/1.1"
    )
    assert hide_links(f"link https://e.example.com/epolicy/{token}.") == (
        "link https://e.example.com/epolicy/<redacted>"
    )
    assert hide_links(f"token={token} sent") == "token=<redacted> sent"
    old = "P2026110000123.1800000000." + "x" * 43  # a link mailed before tokens had ids
    assert hide_links(f'"GET /epolicy/{old} HTTP/1.1" 403') == '"GET /epolicy/<redacted> HTTP/1.1" 403'
    assert hide_links("GET /verify/P2026110000123?v=1") == "GET /verify/P2026110000123?v=1"

    # As uvicorn's access log calls it, the path one of the arguments; and a traceback that quotes a link.
    access = logging.LogRecord("uvicorn.access", 20, "", 0, '%s - "%s %s HTTP/%s" %d', None, None)
    access.args = ("10.0.0.1:5", "GET", f"/epolicy/{token}", "1.1", 200)
    try:
        raise ValueError(f"cannot serve /epolicy/{token}/pdf")
    except ValueError:
        failed = logging.LogRecord("imaging.api", 40, "", 0, "failed", None, sys.exc_info())
    text = ""
    for record in (access, failed):
        assert HideLinks().filter(record)
        text += logging.Formatter().format(record) + "\n"
    assert '"GET /epolicy/<redacted> HTTP/1.1" 200' in text and "/epolicy/<redacted>/pdf" in text
    assert token not in text and token.rsplit(".", 1)[1] not in text
