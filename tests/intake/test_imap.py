"""The claims mailbox read from an IMAP server (intake/imap.py) against a real one (pymap, an asyncio IMAP
server, in its own process): a known customer's claim mail is taken in and queued, a stranger's refused
with a reply mail saying why, both deleted from the folder once stored; a second look finds nothing."""

from __future__ import annotations

import imaplib
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from rq.job import Job

from intake import contacts
from intake.imap import poll_once
from intake.take import QUARANTINE, MailIn
from models import Mail, find
from settings import Settings
from storage import open_store
from supervisor import free_port
from tests.intake.test_mailbox import CLAIM, CUSTOMER, HOLDER_ID, POLICY, _mail, _photo
from tests.servers import wait_until

USER, PASSWORD = "claims", "imap password"


@pytest.fixture(scope="module")
def imap_port():
    """pymap's in-memory server on loopback, one user; yields its port."""
    port = free_port()
    pymap = Path(sys.executable).with_name("pymap")
    process = subprocess.Popen(
        [str(pymap), "--host", "127.0.0.1", "--port", str(port), "--no-tls", "dict",
         "--demo-user", USER, "--demo-password", PASSWORD],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def answers() -> bool:
        try:
            imaplib.IMAP4("127.0.0.1", port, timeout=2).logout()
            return True
        except OSError:
            return False

    wait_until(answers, 30, "pymap to answer")
    yield port
    process.terminate()
    process.wait(10)


def _folder(port: int) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    imap.login(USER, PASSWORD)
    imap.select("INBOX")
    return imap


def test_mail_read_from_imap_is_taken_in_or_refused_by_mail_and_then_deleted(
    settings: Settings, redis_conn, imap_port: int
) -> None:
    settings = settings.model_copy(
        update={
            "mailbox_imap_url": f"imap://{USER}@127.0.0.1:{imap_port}/INBOX",
            "mailbox_imap_password": SecretStr(PASSWORD),
        }
    )
    store = open_store(settings)
    contacts.note(store, CUSTOMER, HOLDER_ID, POLICY)
    imap = _folder(imap_port)
    claim = _mail(CUSTOMER, f"理赔号 {CLAIM}", {"invoice.jpg": _photo()})
    stranger = _mail("someone@else.example", f"理赔号 {CLAIM}", {"invoice.jpg": _photo()})
    for message in (claim, stranger):  # the company's mail server delivers them into the folder
        assert imap.append("INBOX", None, None, message.as_bytes())[0] == "OK"

    read = poll_once(redis_conn, store, settings)
    assert sorted(read.values()) == [250, 550]
    taken = next(mail_id for mail_id, code in read.items() if code == 250)
    assert find(store, MailIn, taken).number == CLAIM
    assert Job.exists(f"take-{taken}", connection=redis_conn), "queued for its scan"
    refused = next(mail_id for mail_id, code in read.items() if code == 550)
    assert store.exists(f"{QUARANTINE}{refused}.eml") and find(store, MailIn, refused) is None
    replies = [
        m for m in (find(store, Mail, i.key[5:-5]) for i in store.list("mail/") if i.key.endswith(".json"))
    ]
    assert [(m.to, m.subject) for m in replies] == [
        (["someone@else.example"], f"无法受理您的邮件：理赔号 {CLAIM}")
    ]
    assert Job.exists(f"mail-{replies[0].mail_id}", connection=redis_conn), "the refusal is queued to go"

    imap.noop()
    assert imap.uid("search", None, "ALL")[1] == [b""], "both deleted once stored"
    imap.logout()
    assert poll_once(redis_conn, store, settings) == {}
