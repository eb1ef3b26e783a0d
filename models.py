"""Records that cross rooms and processes: what is stored as JSON and what travels on the wire.

Each stored record carries ``schema`` so a later version can read an older one.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

SCAN_ID_PATTERN = r"^s[0-9]{14}[0-9a-f]{12}$"
MAIL_ID_PATTERN = r"^m[0-9a-f]{32}$"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_scan_id(now: datetime | None = None) -> str:
    """Return a scan id that sorts by upload time: ``s`` + UTC timestamp + 48 random bits."""
    return "s" + (now or utcnow()).strftime("%Y%m%d%H%M%S") + secrets.token_hex(6)


def is_scan_id(text: str) -> bool:
    return bool(re.fullmatch(SCAN_ID_PATTERN, text))


class ScanMode(StrEnum):
    immediate = "immediate"  # counter staff, the customer is waiting (立等影像化)
    batch = "batch"  # back office, stacks after the fact (事后影像化)


class ScanStatus(StrEnum):
    queued = "queued"
    processing = "processing"
    captured = "captured"
    failed = "failed"


class Scan(BaseModel):
    """``scans/<scan_id>.json``: one upload, who sent it, and how far it has gone."""

    model_config = ConfigDict(frozen=True)

    schema_: int = Field(1, alias="schema")
    scan_id: str = Field(pattern=SCAN_ID_PATTERN)
    mode: ScanMode
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: str
    size: int
    uploaded_by: str
    uploaded_at: datetime
    status: ScanStatus = ScanStatus.queued
    pages: int = 0
    error: str | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        return scan_key(self.scan_id)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=1).encode()


def scan_key(scan_id: str) -> str:
    return f"scans/{scan_id}.json"


def page_key(scan_id: str, number: int) -> str:
    return f"scans/{scan_id}/pages/{number}.png"


class MailStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    failed = "failed"


class Mail(BaseModel):
    """``mail/<mail_id>.json``: one message to deliver exactly once; its bytes are ``mail/<mail_id>.eml``."""

    model_config = ConfigDict(frozen=True)

    schema_: int = Field(1, alias="schema")
    mail_id: str = Field(pattern=MAIL_ID_PATTERN)
    to: list[str]
    subject: str
    status: MailStatus = MailStatus.queued
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None
    delivered_to: str | None = None  # "smtp://host:port" or the outbox file

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=1).encode()


def mail_key(mail_id: str) -> str:
    return f"mail/{mail_id}.json"


def mail_body_key(mail_id: str) -> str:
    return f"mail/{mail_id}.eml"
