"""``imaging mailbox``: the SMTP receiver customers send claims material to (aiosmtpd; the only module that
serves SMTP), and the IMAP poller when the mailbox is read from a server instead (intake/imap.py). The
door takes mail for IMAGING_MAILBOX_DOMAIN only (no relaying), refuses a message larger than
IMAGING_MAILBOX_MAX_BYTES at DATA, and answers each message only after it is stored (intake/take.py):
250 once stored and queued, 550 with the reason for a refusal, 451 when the store or Redis is away (the
sending server tries again later).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from redis import Redis
from redis.exceptions import RedisError

import queues
from errors import DependencyDown
from intake.take import receive
from settings import Settings
from storage import ObjectStore, open_store

log = logging.getLogger("imaging.mailbox")


class Mailbox:
    """aiosmtpd's handler: RCPT for our domain only; DATA stored, decided and answered."""

    def __init__(self, settings: Settings, store: ObjectStore, conn: Redis) -> None:
        self.settings, self.store, self.conn = settings, store, conn

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        domain = address.rpartition("@")[2].lower()
        if domain != self.settings.mailbox_domain.lower():
            return (
                f"550 5.7.1 relaying denied: this server takes mail for @{self.settings.mailbox_domain} only"
            )
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        try:
            door = await asyncio.to_thread(receive, self.conn, self.store, self.settings, envelope.content)
        except (DependencyDown, RedisError) as exc:
            log.warning(
                "a mail of %d bytes not taken (451, to be sent again): %s", len(envelope.content), exc
            )
            return "451 4.3.0 the service cannot store mail right now; try again later"
        return f"{door.code} {door.text}"


def controller(settings: Settings, store: ObjectStore, conn: Redis):
    """Return aiosmtpd's controller for the mailbox (started by the caller)."""
    from aiosmtpd.controller import Controller

    return Controller(
        Mailbox(settings, store, conn),
        hostname=settings.mailbox_host,
        port=settings.mailbox_port,
        data_size_limit=settings.mailbox_max_bytes,
        enable_SMTPUTF8=True,  # the refusals say why in Chinese too
        server_hostname=settings.mailbox_domain,
    )


def serve(settings: Settings) -> int:
    """Run the mailbox until SIGTERM or Ctrl-C: the SMTP door when IMAGING_MAILBOX_PORT is set, the IMAP
    poller when IMAGING_MAILBOX_IMAP_URL is; return the exit code."""
    from intake.imap import poll

    conn, store = queues.connect(settings.redis_target), open_store(settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    smtp = controller(settings, store, conn) if settings.mailbox_port else None
    if smtp is not None:
        smtp.start()
        log.info("mailbox listening on %s:%d for @%s", settings.mailbox_host, settings.mailbox_port,
                 settings.mailbox_domain)  # fmt: skip
    if settings.mailbox_imap_url:
        poll(conn, store, settings, stop)  # until stopped
    stop.wait()
    if smtp is not None:
        smtp.stop()
    return 0
