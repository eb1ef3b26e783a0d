"""deliver: one e-mail to the customer by SMTP, or into the outbox folder when no SMTP server is set.

This is the only module that speaks SMTP.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

from errors import BadInput, MailUnavailable
from settings import Settings


class MailRefused(BadInput):
    """The SMTP server refused the message for good (5xx): a bad address or a rejected message."""

    error = "mail_refused"


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    timeout: float = 10.0

    def __repr__(self) -> str:  # never show the password
        return f"SmtpServer(smtp://{self.host}:{self.port}, starttls={self.starttls}, user={self.user!r})"


@dataclass(frozen=True)
class Outbox:
    directory: Path


def transport_from_settings(settings: Settings) -> SmtpServer | Outbox:
    """Return the SMTP server the settings name, or the outbox folder under the data dir when none."""
    if not settings.smtp_host:
        return Outbox(settings.outbox_dir)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpServer(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_starttls,
        settings.smtp_user,
        password,
        settings.smtp_timeout,
    )


def deliver(message: EmailMessage, mail_id: str, transport: SmtpServer | Outbox) -> str:
    """Return where the message went (``smtp://host:port`` or the .eml path) after handing it over."""
    if isinstance(transport, Outbox):
        return _write_eml(message, mail_id, transport.directory)
    return _send_smtp(message, transport)


def _write_eml(message: EmailMessage, mail_id: str, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{mail_id}.eml"
    fd, tmp = tempfile.mkstemp(prefix=f".{mail_id}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(message.as_bytes(policy=SMTP_POLICY))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise MailUnavailable(f"outbox {directory}: cannot write {path.name}: {exc.strerror}") from exc
    return str(path)


def _send_smtp(message: EmailMessage, server: SmtpServer) -> str:
    where = f"smtp://{server.host}:{server.port}"
    try:
        with smtplib.SMTP(server.host, server.port, timeout=server.timeout) as smtp:
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.user:
                smtp.login(server.user, server.password or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailRefused(f"{where} refused every recipient: {_codes(exc.recipients)}") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise MailRefused(f"{where} refused the login for IMAGING_SMTP_USER: {exc.smtp_code}") from None
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            raise MailRefused(
                f"{where} refused the message: {exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        raise MailUnavailable(
            f"{where} deferred the message: {exc.smtp_code} {_text(exc.smtp_error)}"
        ) from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise MailUnavailable(f"{where} is unreachable: {exc}") from None
    if refused:
        # Some recipients took it: the message is out and must not be sent again; say who missed it.
        return f"{where} (refused: {_codes(refused)})"
    return where


def _codes(recipients: dict) -> str:
    return ", ".join(f"{addr} {code}" for addr, (code, _msg) in recipients.items())


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
