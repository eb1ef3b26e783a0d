"""verify: a PDF in, what holds of its signatures out (pyHanko's validator against the configured roots)."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from pyhanko.keys import load_certs_from_pemder
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from errors import BadInput
from esign.keys import TEST_MARK

# A PDF sent to be checked is anyone's file: pyHanko reads it in a child process that may use this much
# memory and time. One crafted file (an incremental update listing the signature field 2,000 times) kept
# an API process busy for minutes at 3.2 GB; a genuine e-policy is checked in 0.7 s (the child's start
# included) at a peak of 147 MiB.
CHILD_MEMORY = 1024 * 1024 * 1024
CHILD_SECONDS = 30
MAX_SIGNATURES = 20  # an e-policy carries one or two; a file listing more is refused before any is checked

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
    trusted_by: str | None = None  # the configured root the signer's chain ends in
    test_only: bool = False  # signer or root marked TEST (esign/keys.py): valid for trials, not for customers

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
    found = reader.embedded_signatures
    if len(found) > MAX_SIGNATURES:
        raise BadInput(f"the PDF lists {len(found)} signatures; at most {MAX_SIGNATURES} are checked")
    signatures = []
    for embedded in found:
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
        path = status.validation_path if status.trusted else None
        anchor = path.trust_anchor.authority.name.human_friendly if path is not None else None
        signer = status.signing_cert.subject.human_friendly
        stamp = status.timestamp_validity
        timestamp = stamp.timestamp if stamp else None
        if stamp is not None and not (stamp.intact and stamp.valid):
            problems.append("the timestamp token does not match what was signed")
        elif stamp is not None and not stamp.trusted:
            problems.append("the time-stamping authority is not trusted by the configured roots")
        signatures.append(
            SignatureCheck(
                # A plain str: pyHanko's string object of a decrypted file cannot be copied by asdict().
                field=str(embedded.field_name),
                signer=signer,
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
                trusted_by=anchor,
                test_only=TEST_MARK in signer or TEST_MARK in (anchor or ""),
            )
        )
    problems = [] if signatures else ["the PDF carries no signature"]
    return Verification(signatures, encrypted, problems)


def verify_in_child(
    data: bytes,
    roots_path: Path | None,
    password: str | None = None,
    seconds: float = CHILD_SECONDS,
    memory: int = CHILD_MEMORY,
) -> dict:
    """Return verify()'s result as JSON (``Verification.to_json`` with ISO times), computed in a child
    process limited to ``memory`` bytes of address space and ``seconds``: a file built to exhaust the
    checker kills only the child, and is refused with BadInput. The password travels on stdin."""
    header = json.dumps({"roots": str(roots_path) if roots_path else None, "password": password})
    limits = [f"--as={memory}", f"--cpu={int(seconds) + 1}"]
    command = [shutil.which("prlimit") or "prlimit", *limits, sys.executable, "-m", "esign.verify"]
    try:
        done = subprocess.run(
            command, input=header.encode() + b"\n" + data, capture_output=True, timeout=seconds
        )
    except subprocess.TimeoutExpired:
        raise BadInput(f"checking this PDF took longer than {seconds:.0f} s: it is refused") from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = None
    if done.returncode != 0 or not isinstance(answer, dict):
        raise BadInput(
            f"checking this PDF needed more than {memory // 2**20} MiB of memory or "
            f"{seconds:.0f} s of processor time: it is refused"
        )
    if "error" in answer:
        raise (WrongPassword if answer["error"] == WrongPassword.error else BadInput)(answer["message"])
    return answer["result"]


def _child() -> None:
    """In the child: read the header line and the PDF from stdin, write the result or the error as JSON."""
    header, _, data = sys.stdin.buffer.read().partition(b"\n")
    asked = json.loads(header)
    try:
        roots = load_roots(Path(asked["roots"]) if asked["roots"] else None)
        result = verify(data, roots, asked["password"]).to_json()
        answer: dict = {"result": result}
    except BadInput as exc:
        answer = {"error": exc.error, "message": exc.message}
    sys.stdout.write(
        json.dumps(answer, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    )


if __name__ == "__main__":
    _child()
