"""A customer's mail, read: who sent it, the claim or policy number its subject names, and its
attachments, each an image or PDF we read (by its bytes, media.py) or not. Plain functions, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.utils import parseaddr

from esign.epolicy import ADDR_SPEC
from media import sniff

# Parts a mail client adds that are no material: a signed mail's signature. Left out, not refused.
SIGNATURES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)
CLAIM_WORDS = ("理赔", "赔案", "报案", "CLAIM")
POLICY_WORDS = ("保单", "保险单", "POLICY")
# A business number (vocabulary.BUSINESS_NO_PATTERN) with at least four digits, so words are not numbers.
NUMBER = re.compile(r"(?<![A-Z0-9-])(?=(?:[A-Z-]*[0-9]){4})[A-Z0-9][A-Z0-9-]{2,30}[A-Z0-9](?![A-Z0-9-])")


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes
    media: str | None  # image/jpeg, image/png, image/tiff, application/pdf; None: not one we read


@dataclass(frozen=True)
class Letter:
    sender: str | None  # the From address, lower case; None when it is not one address
    subject: str
    message_id: str | None
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def refused_attachments(self) -> list[Attachment]:
        return [a for a in self.attachments if a.media is None]


def read_letter(raw: bytes) -> Letter:
    """Return what a message says of itself: sender, subject, Message-ID and attachments (the parts that
    are not its text: attached files and inline pictures)."""
    message = message_from_bytes(raw, policy=policy.default)
    _name, address = parseaddr(str(message.get("From", "")))
    sender = address.lower() if re.fullmatch(ADDR_SPEC, address) else None
    attachments = []
    for n, part in enumerate(message.walk()):
        if part.is_multipart() or (part.get_content_maintype() == "text" and not part.get_filename()):
            continue
        if part.get_content_type() in SIGNATURES:
            continue
        data = part.get_payload(decode=True) or b""
        name = part.get_filename() or f"part-{n}"
        attachments.append(Attachment(name=name, data=data, media=sniff(data[:1024]) if data else None))
    subject = " ".join(str(message.get("Subject", "")).split())
    return Letter(sender, subject, message.get("Message-ID"), attachments)


def numbers_in(subject: str) -> list[tuple[str | None, str]]:
    """Return each business number in a subject with what the words before it call it: ``claim``
    (理赔号, 赔案号, claim no.), ``policy`` (保单号, policy no.) or None, in order."""
    text = subject.upper()
    found, start = [], 0
    for match in NUMBER.finditer(text):
        before = text[start : match.start()]
        kind = None
        places = {w: before.rfind(w) for w in (*CLAIM_WORDS, *POLICY_WORDS) if w in before}
        if places:
            nearest = max(places, key=places.get)
            kind = "claim" if nearest in CLAIM_WORDS else "policy"
        found.append((kind, match.group()))
        start = match.end()
    return found
