"""deliver: to a real SMTP server (aiosmtpd), or to the outbox folder when none is set."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from errors import MailUnavailable
from esign.mail import MailRefused, Outbox, SmtpServer, deliver
from supervisor import free_port
from tests.servers import MailServer


def _message(to: str = "holder@example.cn") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "e-policy@insurer.example"
    msg["To"] = to
    msg["Subject"] = "您的电子保单 P2026000001"
    msg.set_content("尊敬的客户：附件是您的电子保单。")
    return msg


def test_a_message_is_delivered_to_the_smtp_server(smtp_srv: MailServer) -> None:
    before = len(smtp_srv.messages)
    where = deliver(_message(), "m1", SmtpServer("127.0.0.1", smtp_srv.port))
    assert where == f"smtp://127.0.0.1:{smtp_srv.port}"
    received = smtp_srv.messages[before:]
    assert len(received) == 1
    assert received[0]["Subject"] == "您的电子保单 P2026000001"
    assert "附件是您的电子保单" in received[0].get_content()


def test_an_unreachable_server_is_a_retryable_error() -> None:
    with pytest.raises(MailUnavailable, match="unreachable") as caught:
        deliver(_message(), "m1", SmtpServer("127.0.0.1", free_port(), timeout=2))
    assert caught.value.retryable


def test_a_refused_recipient_is_a_permanent_error(smtp_srv: MailServer) -> None:
    smtp_srv.refuse.add("nobody@example.cn")
    with pytest.raises(MailRefused, match="nobody@example.cn 550") as caught:
        deliver(_message("nobody@example.cn"), "m1", SmtpServer("127.0.0.1", smtp_srv.port))
    assert not caught.value.retryable


def test_without_smtp_the_message_is_written_to_the_outbox(tmp_path: Path) -> None:
    where = deliver(_message(), "m42", Outbox(tmp_path / "outbox"))
    assert where == str(tmp_path / "outbox" / "m42.eml")
    assert b"Subject: =?utf-8?" in Path(where).read_bytes()
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == ["m42.eml"]


def test_the_password_never_shows_in_the_server_repr() -> None:
    assert "s3cret" not in repr(SmtpServer("smtp.example", 587, True, "user", "s3cret"))
