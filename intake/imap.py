"""The claims mailbox read from an IMAP server (IMAGING_MAILBOX_IMAP_URL), for a deployment whose mail
server cannot forward to `imaging mailbox`'s SMTP door: the only module that speaks IMAP (imaplib).

Each unseen message of the folder goes through the same door (intake/take.py ``receive``): taken in, or
refused with a reply mail saying why (no SMTP answer reaches the sender here; the company's mail server
accepted the message, so the sender is its problem, not a forged address of ours to bounce to). A
message is deleted from the folder only once it is stored (``mailin/`` or ``quarantine/``); when the
store or Redis is away it stays unseen and the next look takes it.
"""

from __future__ import annotations

import imaplib
import logging
import threading
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.exceptions import RedisError

from errors import DependencyDown
from intake.take import receive, refuse_by_mail
from settings import Settings
from storage import ObjectStore

log = logging.getLogger("imaging.mailbox")


def poll_once(conn: Redis, store: ObjectStore, settings: Settings) -> dict[str, int]:
    """Return each message read this time (its mail id) with the door's answer (250 or 550), after
    taking in or refusing every unseen message of the folder and deleting those that are stored."""
    url = urlsplit(settings.mailbox_imap_url or "")
    secure = url.scheme == "imaps"
    client = imaplib.IMAP4_SSL if secure else imaplib.IMAP4
    password = settings.mailbox_imap_password.get_secret_value() if settings.mailbox_imap_password else ""
    seen: dict[str, int] = {}
    with client(url.hostname, url.port or (993 if secure else 143), timeout=30) as imap:
        imap.login(unquote(url.username or ""), password)
        imap.select(url.path.strip("/") or "INBOX")
        _, found = imap.uid("search", None, "UNSEEN")
        for uid in found[0].split() if found and found[0] else []:
            _, parts = imap.uid("fetch", uid, "(BODY.PEEK[])")
            raw = next(p[1] for p in parts if isinstance(p, tuple))
            try:
                door = receive(conn, store, settings, raw)
                if door.code != 250:
                    refuse_by_mail(conn, store, settings, door)
            except (DependencyDown, RedisError) as exc:  # left unseen: the next look takes it
                log.warning("IMAP message %s not taken: %s", uid.decode(), exc)
                continue
            imap.uid("store", uid, "+FLAGS", "(\\Seen \\Deleted)")
            seen[door.mail_id] = door.code
        imap.expunge()
    return seen


def poll(conn: Redis, store: ObjectStore, settings: Settings, stop: threading.Event) -> None:
    """Look at the folder every IMAGING_MAILBOX_IMAP_SECONDS until ``stop``; a server that does not answer
    or refuses the login is logged, and the next look tries again."""
    while not stop.is_set():
        try:
            taken = poll_once(conn, store, settings)
            if taken:
                log.info("IMAP: %d messages read", len(taken))
        except (imaplib.IMAP4.error, OSError) as exc:
            log.warning("IMAP %s: %s", urlsplit(settings.mailbox_imap_url or "").hostname, exc)
        stop.wait(settings.mailbox_imap_seconds)
