"""Taking a customer's mail in: the decision at the door (known sender, images or PDFs only, a number in the
subject), the stored message, the scan it becomes, and the reply that says what arrived and what a claim
still lacks.

The receiver (intake/mailbox.py) decides while the sending server waits, so a refusal is the SMTP answer
itself (550 with the reason), which the customer's own mail server returns to them: no mail of ours goes
to a forged sender (backscatter). A refused message is kept only under ``quarantine/mail/`` (deleted after
IMAGING_QUARANTINE_DAYS by ``imaging retention run``); an accepted one is stored at
``mailin/<mail_id>.eml`` with its record ``mailin/<mail_id>.json`` before the 250, and queued.

The job ``take_mail`` stores its attachments as originals and opens a scan under the number (uploaded by
``mailbox:<mail_id>``); once the scan is captured, ``reply_mail`` mails the sender what was received and,
for a claim, what is still missing (the claim case's checklist). The mail id is a SHA-256 of its sender
and Message-ID (else of its bytes), so a message delivered twice is one; every step finds what an earlier
run did and does not do it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import ClassVar

from pydantic import Field
from redis import Redis

import epolicies
import metrics
import queues
from counter import pages_left_out, rescan_requests
from intake.contacts import find_contact
from intake.letter import Letter, numbers_in, read_letter
from models import DocumentRecord, Mail, Scan, ScanFile, Stored, find, load
from settings import Settings
from storage import ObjectNotFound, ObjectStore
from vocabulary import ScanMode, ScanStatus, Stage, new_scan_id, utcnow

log = logging.getLogger("imaging.intake")

MAILBOX = "mailbox:"  # a scan's uploaded_by for a mailed one: mailbox:<mail_id>
QUARANTINE = "quarantine/mail/"
MAX_ATTACHMENTS = 20
TAKE_MAIL = "worker.take_mail"
REPLY_MAIL = "worker.reply_mail"
# What a customer reads for each document type found in their mail.
TYPE_NAMES = {
    "application_form": "投保单",
    "idcard_front": "身份证人像面",
    "idcard_back": "身份证国徽面",
    "claim_form": "理赔申请书",
    "medical_invoice": "医疗收费票据",
    "bank_card": "银行卡",
    "claim_evidence": "理赔材料（照片）",
    "other": "其他材料",
}


@dataclass(frozen=True)
class Decision:
    """What the door decided: the number to file under, or why the mail is refused (Chinese, English)."""

    kind: str | None = None  # claim | policy
    number: str | None = None
    refused_zh: str | None = None
    refused_en: str | None = None


def _refused(zh: str, en: str) -> Decision:
    return Decision(refused_zh=zh, refused_en=en)


def decide(store: ObjectStore, letter: Letter) -> Decision:
    """Return whether a mail is taken in and under which number: from an address a customer gave on an
    e-policy, with only images or PDFs attached (at least one), and a claim number, or one of the
    sender's policy numbers, in the subject."""
    contact = find_contact(store, letter.sender) if letter.sender else None
    if contact is None:
        return _refused(
            "发件地址不是我们登记的客户邮箱，请用您投保时留下的邮箱发送",
            "the sender is not an address a customer gave us; write from the address on your policy",
        )
    if not letter.attachments or len(letter.attachments) > MAX_ATTACHMENTS:
        return _refused(
            f"请附上 1 至 {MAX_ATTACHMENTS} 个理赔材料的照片或 PDF 文件",
            f"attach 1 to {MAX_ATTACHMENTS} photos or PDF files of the material",
        )
    if bad := letter.refused_attachments:
        names = "、".join(a.name for a in bad)
        return _refused(
            f"附件 {names} 不是图片（JPEG、PNG、TIFF）或 PDF，请只发送照片或 PDF 文件",
            f"{', '.join(a.name for a in bad)}: not an image (JPEG, PNG, TIFF) or a PDF; send only those",
        )
    found = numbers_in(letter.subject)
    claims = [n for kind, n in found if kind == "claim"]
    policies = [n for kind, n in found if kind == "policy" or (kind is None and n in contact.policies)]
    if claims:
        return Decision("claim", claims[0])
    if policies and policies[0] in contact.policies:
        return Decision("policy", policies[0])
    if policies:
        return _refused(
            f"保单号 {policies[0]} 不在此邮箱登记的保单中，请核对保单号",
            f"policy {policies[0]} is not one of this address's policies",
        )
    return _refused(
        "请在邮件主题中写明理赔号（如“理赔号 CL2026000123”）或保单号",
        "write the claim number (理赔号 ...) or the policy number (保单号 ...) in the subject",
    )


class MailIn(Stored):
    """``mailin/<mail_id>.json``: a customer's mail taken in, the scan it became and the reply."""

    noun: ClassVar[str] = "mail-in"

    @staticmethod
    def key_of(mail_id: str) -> str:
        return f"mailin/{mail_id}.json"

    schema_: int = Field(1, alias="schema")
    mail_id: str = Field(pattern=r"^i[0-9a-f]{32}$")
    received_at: datetime
    sender: str
    subject: str
    message_id: str | None = None
    kind: str  # claim | policy
    number: str
    attachments: list[ScanFile] = Field(default_factory=list)
    scan_id: str | None = None
    reply_mail_id: str | None = None

    @property
    def key(self) -> str:
        return self.key_of(self.mail_id)


def raw_key(mail_id: str) -> str:
    return f"mailin/{mail_id}.eml"


def mail_id_of(raw: bytes, letter: Letter) -> str:
    """Return a message's id: of its sender and Message-ID when it has one (a client sending it again
    may encode it anew, with other MIME boundaries), else of its bytes."""
    if letter.message_id and letter.sender:
        return "i" + hashlib.sha256(f"{letter.sender}\n{letter.message_id}".encode()).hexdigest()[:32]
    return "i" + hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class Door:
    """What the door did with a message: the SMTP answer, and what it was."""

    code: int  # 250 taken in, 550 refused
    text: str
    mail_id: str
    letter: Letter
    decision: Decision


def receive(conn: Redis, store: ObjectStore, settings: Settings, raw: bytes) -> Door:
    """Return the door's answer to a message, after storing it (accepted: under ``mailin/`` and queued for
    ``take_mail``; refused: under ``quarantine/mail/`` only)."""
    letter = read_letter(raw)
    mail_id = mail_id_of(raw, letter)
    decision = decide(store, letter)
    if decision.number is None:
        store.put(f"{QUARANTINE}{mail_id}.eml", raw, "message/rfc822")
        note = {"mail_id": mail_id, "received_at": utcnow().isoformat(), "refused": decision.refused_en}
        with contextlib.suppress(ObjectNotFound):  # the same message again: its first note (and reply) stand
            note = json.loads(store.get(f"{QUARANTINE}{mail_id}.json"))
        store.put(f"{QUARANTINE}{mail_id}.json", json.dumps(note).encode(), "application/json")
        log.info("mail %s refused: %s", mail_id, decision.refused_en)
        return Door(550, f"5.7.1 {decision.refused_zh} ({decision.refused_en})", mail_id, letter, decision)
    if find(store, MailIn, mail_id) is None:
        store.put(raw_key(mail_id), raw, "message/rfc822")
        files = [
            ScanFile(sha256=hashlib.sha256(a.data).hexdigest(), content_type=a.media or "", size=len(a.data),
                     name=a.name[:200])
            for a in letter.attachments
        ]  # fmt: skip
        record = MailIn(
            mail_id=mail_id, received_at=utcnow(), sender=letter.sender or "", subject=letter.subject[:300],
            message_id=letter.message_id, kind=decision.kind or "claim", number=decision.number,
            attachments=files,
        )  # fmt: skip
        store.put(record.key, record.to_json(), "application/json")
    queue_take(conn, settings, mail_id)
    log.info("mail %s taken in for %s %s", mail_id, decision.kind, decision.number)
    text = f"2.0.0 received: {len(letter.attachments)} files for {decision.kind} {decision.number}"
    return Door(250, text, mail_id, letter, decision)


def refuse_by_mail(conn: Redis, store: ObjectStore, settings: Settings, door: Door) -> Mail | None:
    """Return the reply that tells a sender why their mail was refused, queued once (for mail read from
    IMAP, where no SMTP answer reaches them); None when the sender is no single address."""
    note_key = f"{QUARANTINE}{door.mail_id}.json"
    note = json.loads(store.get(note_key))
    if note.get("reply_mail_id"):
        return None  # a poll before this one replied
    if not door.letter.sender:
        return None
    message = EmailMessage()
    message["Subject"] = f"无法受理您的邮件：{door.letter.subject[:60]}"
    message["From"], message["To"] = settings.mail_from, door.letter.sender
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or "localhost")
    if door.letter.message_id:
        message["In-Reply-To"] = door.letter.message_id
    lines = ["您好：", "", "您的邮件未被受理：" + (door.decision.refused_zh or ""), "",
             f"({door.decision.refused_en})", "", "此邮件由系统自动发送。"]  # fmt: skip
    message.set_content("\n".join(lines))
    mail = epolicies.submit_mail(conn, store, settings, message, enqueue_now=False)
    store.put(note_key, json.dumps({**note, "reply_mail_id": mail.mail_id}).encode(), "application/json")
    epolicies.queue_delivery(conn, settings, mail.mail_id)
    return mail


def take(conn: Redis, store: ObjectStore, settings: Settings, mail_id: str) -> str:
    """Return the scan id a mail became, after storing its attachments as originals and queueing their
    capture under its number (once: the scan id is recorded first, a rerun finds it)."""
    record = load(store, MailIn, mail_id)
    scan_id = record.scan_id or new_scan_id()
    if record.scan_id is None:
        record = record.model_copy(update={"scan_id": scan_id})
        store.put(record.key, record.to_json(), "application/json")
    made = find(store, Scan, scan_id)
    if made is not None:  # made by an earlier run, whose queueing may have failed: queued again (once)
        if made.status == ScanStatus.queued:
            queues.open_scan(conn, settings, made)
        return scan_id
    letter = read_letter(store.get(raw_key(mail_id)))
    for attachment in letter.attachments:
        store.put_original(attachment.data, attachment.media or "application/octet-stream")
    numbers = {"claim_no": record.number, "stage": Stage.claims} if record.kind == "claim" else {}
    scan = Scan(
        scan_id=scan_id,
        mode=ScanMode.batch,
        files=record.attachments,
        uploaded_by=MAILBOX + mail_id,
        uploaded_at=record.received_at,
        policy_no=record.number if record.kind == "policy" else None,
        **numbers,
    )
    store.put(scan.key, scan.to_json(), "application/json")
    queues.open_scan(conn, settings, scan)
    metrics.count_upload(conn, scan_id, scan.mode.value)  # an upload like the counter's: counted, listed
    log.info("mail %s: scan %s queued", mail_id, scan_id)
    return scan_id


def scan_ended(conn: Redis, settings: Settings, scan: Scan) -> None:
    """Queue the reply to the mail a scan came from, once its capture ended (captured or failed)."""
    if scan.uploaded_by.startswith(MAILBOX):
        queue_reply(conn, settings, scan.uploaded_by.removeprefix(MAILBOX))


def queue_take(conn: Redis, settings: Settings, mail_id: str) -> None:
    queues.enqueue(conn, settings, "batch", TAKE_MAIL, mail_id, job_id=f"take-{mail_id}")


def queue_reply(conn: Redis, settings: Settings, mail_id: str) -> None:
    queues.enqueue(conn, settings, "mail", REPLY_MAIL, mail_id, job_id=f"reply-{mail_id}")


def reply(
    conn: Redis, store: ObjectStore, settings: Settings, mail_id: str, missing: list[str] | None
) -> Mail:
    """Return the reply to a mail taken in, stored and queued once: what arrived, what it was read as,
    and for a claim what is still missing (``missing``: the claim case's list; None for a policy's mail)."""
    record = load(store, MailIn, mail_id)
    if record.reply_mail_id:
        epolicies.queue_delivery(conn, settings, record.reply_mail_id)
        return load(store, Mail, record.reply_mail_id)
    scan = load(store, Scan, record.scan_id or "")
    documents = [r for r in (find(store, DocumentRecord, d) for d in scan.documents) if r is not None]
    message = reply_letter(record, scan, documents, missing, settings.mail_from)
    mail = epolicies.submit_mail(conn, store, settings, message, enqueue_now=False)
    store.put(
        record.key, record.model_copy(update={"reply_mail_id": mail.mail_id}).to_json(), "application/json"
    )
    epolicies.queue_delivery(conn, settings, mail.mail_id)
    return mail


def reply_letter(
    record: MailIn, scan: Scan, documents: list[DocumentRecord], missing: list[str] | None, sender: str
) -> EmailMessage:
    """Return the reply: the files received, the documents found in them, and what a claim still lacks."""
    what = "理赔号" if record.kind == "claim" else "保单号"
    lines = [
        "您好：",
        "",
        f"我们已收到您发送的材料（{what} {record.number}），共 {len(record.attachments)} 个文件：",
    ]
    lines += [f"  · {f.name}" for f in record.attachments]
    if scan.status == ScanStatus.failed:
        lines += ["", f"但文件无法读取：{scan.error or ''}。请重新拍照或扫描后再发送。"]
    else:
        found = [TYPE_NAMES.get(d.type, TYPE_NAMES["other"]) for d in documents]
        lines += ["", "识别为：" + ("、".join(found) if found else "无可识别的材料")]
        # In the counter's words (counter.py): each document's pages to take again, and each page that
        # became no document (blank, refused with why, a card-shaped region passed over).
        again = [r.zh for d in documents for r in rescan_requests(d)]
        again += [p.zh for p in pages_left_out(scan.page_outcomes)]
        lines += ["", "请注意：", *(f"  · {t}" for t in again)] if again else []
    if record.kind == "claim" and scan.status != ScanStatus.failed:
        if missing:
            lines += ["", "此理赔尚缺以下材料：", *(f"  · {m}" for m in missing)]
        else:
            lines += ["", "此理赔所需材料已齐全，我们将尽快处理。"]
    lines += ["", "此邮件由系统自动发送。"]
    message = EmailMessage()
    message["Subject"] = f"已收到您的材料 {what} {record.number}"
    message["From"] = sender
    message["To"] = record.sender
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    if record.message_id:
        message["In-Reply-To"] = record.message_id
    message.set_content("\n".join(lines))
    return message


def expire_quarantine(store: ObjectStore, days: int, now: datetime | None = None) -> list[str]:
    """Return the keys deleted from the quarantine: refused mail older than ``days``."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    gone = [
        info.key for info in store.list(QUARANTINE) if info.modified is not None and info.modified < cutoff
    ]
    for key in gone:
        store.delete(key)
    return gone
