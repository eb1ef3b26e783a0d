"""verify: a PDF in, what holds of its signatures out (pyHanko's validator against the configured roots)."""

from __future__ import annotations

import io
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from pyhanko.keys import load_certs_from_pemder
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from errors import BadInput

# pyHanko logs an untrusted chain as a warning with a traceback; the result below says it in one line.
logging.getLogger("pyhanko.sign.validation").setLevel(logging.ERROR)


class WrongPassword(BadInput):
    """The PDF is encrypted and the password does not open it."""

    error = "wrong_password"


@dataclass(frozen=True)
class SignatureCheck:
    field: str
    signer: str
    intact: bool  # the signed bytes hash to what was signed
    valid: bool  # the signature over that hash checks out with the signer's key
    trusted: bool  # the signer's chain ends in a configured root
    certified: bool  # a certification (DocMDP) signature
    docmdp_ok: bool | None  # no change after signing that the certification forbids
    modification_level: str  # NONE, LTA_UPDATES, FORM_FILLING, ANNOTATIONS, OTHER
    coverage: str  # ENTIRE_FILE, ENTIRE_REVISION, CONTIGUOUS_BLOCK_FROM_START
    signing_time: datetime | None
    timestamp: datetime | None  # from the RFC 3161 timestamp token, when there is one
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Verification:
    signatures: list[SignatureCheck]
    encrypted: bool
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.signatures) and all(s.ok for s in self.signatures)

    def to_json(self) -> dict:
        out = asdict(self)
        out["ok"] = self.ok
        for check, raw in zip(self.signatures, out["signatures"], strict=True):
            raw["ok"] = check.ok
        return out


def load_roots(path: Path | None) -> list:
    """Return the root certificates in a PEM file (none if the file is absent)."""
    return list(load_certs_from_pemder([str(path)])) if path is not None and path.exists() else []


def verify(data: bytes, roots: list, password: str | None = None) -> Verification:
    """Return what holds of every signature in the PDF: intact, valid, trusted, no disallowed change."""
    try:
        return _verify(data, roots, password)
    except (PdfError, ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        # pyHanko reads objects as it needs them, so a damaged file or signature shows only while checking it,
        # and not always as PdfError: a broken reference reads as a null object (AttributeError on it).
        raise BadInput(f"not a PDF whose signatures can be read (damaged, or not a PDF): {exc}") from None


def _verify(data: bytes, roots: list, password: str | None) -> Verification:
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    encrypted = reader.encrypted
    if encrypted:
        if password is None:
            raise WrongPassword("the PDF is encrypted: give its password")
        result = reader.decrypt(password)
        if result.status.name == "FAILED":
            raise WrongPassword("the password does not open this PDF")
    signatures = []
    for embedded in reader.embedded_signatures:
        context = ValidationContext(trust_roots=roots, allow_fetching=False)
        status = validate_pdf_signature(embedded, context, skip_diff=False)
        problems = []
        if not status.intact:
            problems.append("the signed content was changed after signing")
        elif not status.valid:
            problems.append("the signature does not match the signer's key")
        if not status.trusted:
            problems.append("the signer is not trusted by the configured roots")
        if status.docmdp_ok is False:
            problems.append("changes after signing that the certification forbids")
        level = status.modification_level.name if status.modification_level is not None else "UNKNOWN"
        if status.docmdp_ok is None and level not in ("NONE", "LTA_UPDATES"):
            problems.append(f"the file was changed after signing ({level})")
        coverage = status.coverage.name if status.coverage is not None else "UNKNOWN"
        stamp = status.timestamp_validity
        timestamp = stamp.timestamp if stamp else None
        if stamp is not None and not (stamp.intact and stamp.valid):
            problems.append("the timestamp token does not match what was signed")
        elif stamp is not None and not stamp.trusted:
            problems.append("the time-stamping authority is not trusted by the configured roots")
        signatures.append(
            SignatureCheck(
                field=embedded.field_name,
                signer=status.signing_cert.subject.human_friendly,
                intact=status.intact,
                valid=status.valid,
                trusted=status.trusted,
                certified=embedded.docmdp_level is not None,
                docmdp_ok=status.docmdp_ok,
                modification_level=level,
                coverage=coverage,
                signing_time=status.signer_reported_dt,
                timestamp=timestamp,
                problems=problems,
            )
        )
    problems = [] if signatures else ["the PDF carries no signature"]
    return Verification(signatures, encrypted, problems)
