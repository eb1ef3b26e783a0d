"""Mail-in intake (intake/): a known customer's mail with a photo becomes a scan under the claim number of
its subject and is answered with what arrived and what the claim still lacks; a stranger's mail, a file
that is no image or PDF, relaying and a number that is not the sender's are refused at the door, with
nothing kept beyond the quarantine. End to end on real servers: `imaging mailbox`, a worker, Redis, S3
and the tests' SMTP server for the replies."""

from __future__ import annotations

import io
import smtplib
import subprocess
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from intake import contacts
from intake.letter import numbers_in, read_letter
from intake.take import QUARANTINE, MailIn, decide, expire_quarantine, reply_letter
from models import Scan, ScanFile, ScanPage, find
from settings import Settings
from storage import LocalStore, open_store
from supervisor import free_port
from tests.conftest import ROOT, TEST_NAME_KEY, running_workers, settings_env
from tests.servers import MailServer, wait_until
from vocabulary import ScanStatus

CUSTOMER = "li.si@example.cn"
HOLDER_ID = "110105198703150013"
POLICY = "P2026110000123"
CLAIM = "CL2026113000001"


def _photo() -> bytes:
    """A phone photo of a page (JPEG)."""
    image = Image.new("RGB", (900, 1200), (236, 232, 225))
    ImageDraw.Draw(image).rectangle((100, 120, 800, 1080), fill=(250, 250, 250))
    draw = ImageDraw.Draw(image)
    for row in range(20):  # a printed table: ink enough not to be a blank page
        y = 200 + row * 40
        draw.line((140, y, 760, y), fill=(30, 30, 30), width=3)
        draw.text((150, y + 10), f"item {row}    {row * 13}.50", fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _mail(sender: str, subject: str, files: dict[str, bytes], to: str = "claims@localhost") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = f"<{abs(hash((sender, subject)))}@example.cn>"
    message.set_content("材料见附件")
    for name, data in files.items():
        kind = ("image", "jpeg") if name.endswith(".jpg") else ("application", "octet-stream")
        message.add_attachment(data, maintype=kind[0], subtype=kind[1], filename=name)
    return message


# ---- plain functions ---------------------------------------------------------------------------------


def test_the_subject_names_a_claim_or_policy_number_by_the_words_before_it() -> None:
    assert numbers_in(f"理赔材料 理赔号 {CLAIM}，保单号：{POLICY}") == [("claim", CLAIM), ("policy", POLICY)]
    assert numbers_in("Re: claim no. c-2026-0042 photos") == [("claim", "C-2026-0042")]
    assert numbers_in(f"材料 {POLICY}") == [(None, POLICY)]
    assert numbers_in("发票照片 3 张") == []


def test_the_door_takes_a_known_address_with_images_and_a_number_and_says_why_it_refuses(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "objects")
    store.name_key = TEST_NAME_KEY
    contacts.note(store, CUSTOMER.upper(), HOLDER_ID, POLICY)  # addresses are matched in lower case

    def decided(sender: str, subject: str, files: dict[str, bytes]):
        return decide(store, read_letter(_mail(sender, subject, files).as_bytes()))

    photo = {"invoice.jpg": _photo()}
    assert decided(CUSTOMER, f"理赔号 {CLAIM}", photo).number == CLAIM
    signed = _mail(CUSTOMER, f"理赔号 {CLAIM}", photo)  # an S/MIME signature is no material: left out
    signed.add_attachment(
        b"0\x82sig", maintype="application", subtype="pkcs7-signature", filename="smime.p7s"
    )
    assert [a.name for a in read_letter(signed.as_bytes()).attachments] == ["invoice.jpg"]
    assert decided(CUSTOMER, f"材料 {POLICY}", photo).kind == "policy"
    stranger = decided("someone@else.example", f"理赔号 {CLAIM}", photo)
    assert stranger.number is None and "not an address a customer gave us" in stranger.refused_en
    docx = decided(CUSTOMER, f"理赔号 {CLAIM}", {**photo, "claim.docx": b"PK\x03\x04 a word file"})
    assert docx.number is None and "claim.docx" in docx.refused_zh and "claim.docx" in docx.refused_en
    assert "保单号 P2026000000999" in decided(CUSTOMER, "保单号 P2026000000999", photo).refused_zh
    assert "subject" in decided(CUSTOMER, "发票", photo).refused_en
    assert "attach" in decided(CUSTOMER, f"理赔号 {CLAIM}", {}).refused_en


# ---- end to end ---------------------------------------------------------------------------------------


@pytest.fixture
def mailbox(settings: Settings, smtp_srv: MailServer):
    """`imaging mailbox` as a real process, replies to the tests' SMTP server; yields the settings."""
    settings = settings.model_copy(
        update={"mailbox_port": free_port(), "smtp_host": "127.0.0.1", "smtp_port": smtp_srv.port}
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "mailbox"], env=settings_env(settings), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def answers() -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", settings.mailbox_port, timeout=2) as smtp:
                return smtp.noop()[0] == 250
        except OSError:
            return False

    wait_until(answers, 30, "the mailbox to answer")
    yield settings
    process.terminate()
    process.wait(10)


def _send(settings: Settings, message: EmailMessage, to: str = "claims@localhost") -> None:
    with smtplib.SMTP("127.0.0.1", settings.mailbox_port, timeout=30) as smtp:
        smtp.send_message(message, to_addrs=[to])


def test_a_mailed_claim_photo_becomes_a_scan_and_is_answered_and_a_stranger_is_refused(
    mailbox: Settings, smtp_srv: MailServer, tmp_path: Path
) -> None:
    settings, store = mailbox, open_store(mailbox)
    contacts.note(store, CUSTOMER, HOLDER_ID, POLICY)
    claim_mail = _mail(CUSTOMER, f"理赔材料 理赔号 {CLAIM}", {"invoice.jpg": _photo()})
    _send(settings, claim_mail)
    _send(settings, claim_mail)  # the sending server sends it again (our 250 was lost): still one mail

    with pytest.raises(smtplib.SMTPDataError) as stranger:
        _send(settings, _mail("someone@else.example", f"理赔号 {CLAIM}", {"invoice.jpg": _photo()}))
    assert (
        stranger.value.smtp_code == 550 and b"not an address a customer gave us" in stranger.value.smtp_error
    )
    with pytest.raises(smtplib.SMTPDataError) as word:
        _send(settings, _mail(CUSTOMER, f"理赔号 {CLAIM}", {"claim.docx": b"PK\x03\x04 word"}))
    assert word.value.smtp_code == 550 and "claim.docx" in word.value.smtp_error.decode()
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        _send(settings, claim_mail, to="someone@else.example")  # no relaying

    with running_workers(settings, 1, tmp_path / "logs"):
        replies = wait_until(
            lambda: [m for m in smtp_srv.messages if m["To"] == CUSTOMER], 90, "the reply to the customer"
        )
    records = [info.key for info in store.list("mailin/") if info.key.endswith(".json")]
    assert len(records) == 1 and len(replies) == 1, "one mail taken in, one reply"
    record = MailIn.from_stored(store.get(records[0]), records[0])
    scan = find(store, Scan, record.scan_id)
    assert scan.status == ScanStatus.captured and scan.claim_no == CLAIM and scan.stage == "claims"
    assert scan.uploaded_by == f"mailbox:{record.mail_id}" and [f.name for f in scan.files] == ["invoice.jpg"]
    body = replies[0].get_body(("plain",)).get_content()
    assert CLAIM in replies[0]["Subject"] and "invoice.jpg" in body and "理赔材料（照片）" in body
    assert replies[0]["In-Reply-To"] == claim_mail["Message-ID"]
    assert "此理赔尚缺以下材料" in body and "理赔申请书" in body  # the claim case's checklist

    # The refused mails: kept under quarantine/ only, no scan, no reply to the stranger; expired later.
    quarantined = sorted(info.key for info in store.list(QUARANTINE))
    assert len(quarantined) == 4 and all(k.startswith(QUARANTINE) for k in quarantined)
    assert [info.key for info in store.list("scans/")] == [scan.key]
    assert not [m for m in smtp_srv.messages if m["To"] == "someone@else.example"]
    assert expire_quarantine(store, 30) == []
    assert sorted(expire_quarantine(store, 1, now=scan.uploaded_at.replace(year=2100))) == quarantined


def test_the_reply_tells_in_chinese_each_page_to_take_again_and_each_page_that_became_no_document() -> None:
    now = datetime.now(UTC)
    photo = ScanFile(sha256="a" * 64, content_type="image/jpeg", size=1, name="p.jpg")
    record = MailIn(
        mail_id="i" + "0" * 32, received_at=now, sender="li@example.com", subject="理赔号 LP2026000001",
        kind="claim", number="LP2026000001", attachments=[photo],
    )  # fmt: skip
    too_large = "page 2 declares 12000x9000 pixels, more than 60,000,000"
    scan = Scan(
        scan_id="s20261130000000aaaaaaaaaaaa", mode="batch", files=[photo], uploaded_by="mail",
        uploaded_at=now, status=ScanStatus.captured,
        page_outcomes=[
            ScanPage(page=1, outcome="blank"),
            ScanPage(page=2, outcome="refused", reason=too_large),
        ],
        problems=[f"page 2 not read: {too_large}"],
    )  # fmt: skip
    body = reply_letter(record, scan, [], ["理赔申请书"], "imaging@example.com").get_content()
    assert "第1页为空白页，已略过" in body
    assert "第2页无法识别：图像过大（12000×9000像素），请用300 dpi重新扫描该页" in body
    assert "not read" not in body  # capture's English stays out of the customer's mail
