"""verify: a PDF in, what holds of its signatures out (pyHanko's validator against the configured roots).

Every signature in the file is read as what it is: a signature (``/Sig``, checked with
``validate_pdf_signature``) or a document timestamp (``/DocTimeStamp``, ``validate_pdf_timestamp``). The
validation data a signer left in the file (the DSS: certificates, OCSP responses, CRLs) is given to the
checker as pyHanko's own ``DocumentSecurityStore.as_validation_context`` does, so a revoked signer is
found without the network. A signature whose trust fails only for a reason of time (its certificate
expired since, its validation data is stale) is checked again the long-term way when the file carries
document timestamps (PAdES B-LTA, ETSI EN 319 102-1 § 5.6.3: pyHanko's ``ades_lta_validation``, with
nothing fetched): it holds if the timestamps prove it held while its certificate was good.

Each thing that fails is a ``Failure`` with its own reason (expired, revoked, untrusted root, disallowed
algorithm, modified, a change the certification forbids, a change after an approval signature ...), in
plain words in Chinese and English.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pyhanko.keys import load_certs_from_pemder
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate, AdESPassed
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    EmbeddedPdfSignature,
    validate_pdf_signature,
    validate_pdf_timestamp,
)
from pyhanko.sign.validation.errors import SignatureValidationError
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


class Reason(StrEnum):
    """Why a signature or document timestamp does not hold: one reason per kind of failure."""

    modified = "modified"
    bad_signature = "bad_signature"
    malformed = "malformed"
    expired = "expired"
    not_yet_valid = "not_yet_valid"
    revoked = "revoked"
    untrusted_root = "untrusted_root"
    disallowed_algorithm = "disallowed_algorithm"
    not_for_signing = "not_for_signing"
    stale_validation_data = "stale_validation_data"
    untrusted = "untrusted"
    forbidden_change = "forbidden_change"
    changed_after_signing = "changed_after_signing"
    incomplete_coverage = "incomplete_coverage"
    seed_value = "seed_value"
    timestamp_invalid = "timestamp_invalid"
    timestamp_untrusted = "timestamp_untrusted"


# The plain words for each reason: Chinese first (customers' pages), then English (the CLI, the API).
WORDS: dict[Reason, tuple[str, str]] = {
    Reason.modified: ("签名后内容被修改", "the signed content was changed after signing"),
    Reason.bad_signature: ("签名与签署人的密钥不符", "the signature does not match the signer's key"),
    Reason.malformed: ("签名格式错误，无法验证", "the signature is malformed and cannot be checked"),
    Reason.expired: ("签署人证书已过期", "the signer's certificate has expired"),
    Reason.not_yet_valid: ("签署人证书尚未生效", "the signer's certificate is not valid yet"),
    Reason.revoked: ("签署人证书已被吊销", "the signer's certificate has been revoked"),
    Reason.untrusted_root: (
        "签署人证书不是由配置的根证书签发",
        "the signer is not trusted by the configured roots (its chain ends in none of them)",
    ),
    Reason.disallowed_algorithm: (
        "签名使用了不允许的算法",
        "the signature uses an algorithm that is not allowed (too weak, or not allowed with this key)",
    ),
    Reason.not_for_signing: (
        "签署人证书不可用于签名（密钥用途或证书链约束不符）",
        "the signer's certificate may not be used for this signature (key usage or chain constraints)",
    ),
    Reason.stale_validation_data: (
        "证书状态信息已过时，无法确认未被吊销",
        "the revocation data is out of date: whether the certificate was revoked cannot be told",
    ),
    Reason.untrusted: (
        "签署人证书链验证失败，不受配置的根证书信任",
        "the signer is not trusted by the configured roots: its certificate chain fails to validate",
    ),
    Reason.forbidden_change: (
        "签名后的修改为该认证签名所禁止",
        "the file was changed after certification in a way the certification forbids",
    ),
    Reason.changed_after_signing: (
        "签名后文件被修改（此为批准签名，非认证签名）",
        "the file was changed after this approval signature (not a certification) in ways beyond "
        "filling in forms, adding signatures or annotations",
    ),
    Reason.incomplete_coverage: (
        "签名未覆盖整个文件",
        "the signature does not cover its whole revision of the file",
    ),
    Reason.seed_value: (
        "签名不符合签名域的要求",
        "the signature does not meet the constraints its signature field sets",
    ),
    Reason.timestamp_invalid: (
        "时间戳与签名内容不符",
        "the timestamp token does not match what was signed",
    ),
    Reason.timestamp_untrusted: (
        "时间戳服务机构不受配置的根证书信任",
        "the time-stamping authority is not trusted by the configured roots",
    ),
}

# What the signer's certificate chain failed on (pyHanko's AdES sub-indication), as our reason.
TRUST_REASONS: dict[object, Reason] = {
    AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND: Reason.untrusted_root,
    AdESIndeterminate.OUT_OF_BOUNDS_NO_POE: Reason.expired,
    AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED: Reason.expired,
    AdESIndeterminate.EXPIRED: Reason.expired,
    AdESIndeterminate.NOT_YET_VALID: Reason.not_yet_valid,
    AdESFailure.NOT_YET_VALID: Reason.not_yet_valid,
    AdESIndeterminate.REVOKED_NO_POE: Reason.revoked,
    AdESIndeterminate.REVOKED_CA_NO_POE: Reason.revoked,
    AdESFailure.REVOKED: Reason.revoked,
    AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE: Reason.disallowed_algorithm,
    AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE_NO_POE: Reason.disallowed_algorithm,
    AdESIndeterminate.CHAIN_CONSTRAINTS_FAILURE: Reason.not_for_signing,
    AdESIndeterminate.TRY_LATER: Reason.stale_validation_data,
    AdESIndeterminate.REVOCATION_OUT_OF_BOUNDS_NO_POE: Reason.stale_validation_data,
}
# Failures that proof of existence in the past can cure: the long-term (B-LTA) check is tried for these.
CURED_BY_TIME = {Reason.expired, Reason.stale_validation_data, Reason.revoked, Reason.disallowed_algorithm}

CHANGES = {  # pyHanko's ModificationLevel: what was changed after the signature, in words
    "NONE": ("签名后未作任何修改", "no change since signing"),
    "LTA_UPDATES": ("签名后仅添加了验证数据和时间戳", "only validation data and timestamps added since"),
    "FORM_FILLING": ("签名后填写了表单或添加了签名", "form fields filled in or signatures added since"),
    "ANNOTATIONS": ("签名后添加了批注", "annotations added since"),
    "OTHER": ("签名后有其他修改", "other changes since"),
}
LEVELS = {  # the certification's DocMDP permission, or none: an approval signature
    None: ("批准签名（非认证签名）", "approval signature (not a certification)"),
    "NO_CHANGES": ("认证签名：不允许任何修改", "certification: no changes allowed"),
    "FILL_FORMS": ("认证签名：允许填写表单和签名", "certification: filling in forms and signing allowed"),
    "ANNOTATE": (
        "认证签名：允许填写表单、签名和批注",
        "certification: filling in forms, signing and annotating allowed",
    ),
}


class WrongPassword(BadInput):
    """The PDF is encrypted and the password does not open it."""

    error = "wrong_password"


@dataclass(frozen=True)
class Failure:
    reason: Reason
    zh: str  # in plain Chinese, for customers
    en: str  # in plain English
    detail: str | None = None  # what pyHanko said, for staff: the certificate and the check that failed


def failure(reason: Reason, detail: str | None = None) -> Failure:
    zh, en = WORDS[reason]
    return Failure(reason, zh, en, detail)


@dataclass(frozen=True)
class SignatureCheck:
    field: str
    kind: str  # "signature" or "document timestamp" (PAdES B-LTA: it proves when the file existed)
    signer: str  # the signer's (or the time-stamping authority's) certificate subject
    intact: bool  # the signed bytes hash to what was signed
    valid: bool  # the signature over that hash checks out with the signer's key
    trusted: bool  # the signer's chain ends in a configured root (now, or when the timestamps prove)
    certified: bool  # a certification (DocMDP) signature
    certification: str  # in words: which changes the certification allows, or "approval signature"
    certification_zh: str  # the same in Chinese
    docmdp_ok: bool | None  # no change after signing beyond what the signature allows
    modification_level: str  # NONE, LTA_UPDATES, FORM_FILLING, ANNOTATIONS, OTHER
    changes: str  # the modification level in words
    changes_zh: str  # the same in Chinese
    coverage: str  # ENTIRE_FILE, ENTIRE_REVISION, CONTIGUOUS_BLOCK_FROM_START, UNCLEAR
    signing_time: datetime | None  # as the signer says it (not proof)
    timestamp: datetime | None  # from an RFC 3161 timestamp token (proof), when there is one
    failures: list[Failure] = field(default_factory=list)
    trusted_by: str | None = None  # the configured root the signer's chain ends in
    test_only: bool = False  # signer or root marked TEST (esign/keys.py): valid for trials, not for customers
    long_term: str | None = None  # when trust rests on the file's document timestamps: what they prove

    @property
    def problems(self) -> list[str]:
        """Return the failures in English words."""
        return [f.en for f in self.failures]

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class ValidationData:
    """The DSS: validation data added to the file for checking it later (PAdES B-LT)."""

    certificates: int
    ocsp_responses: int
    crls: int


@dataclass(frozen=True)
class Verification:
    signatures: list[SignatureCheck]
    encrypted: bool
    problems: list[str]
    roots: list[str] = field(default_factory=list)  # the configured roots checked against, by name
    checked_at: datetime | None = None  # the time the certificates were checked for (now unless asked)
    validation_data: ValidationData | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.signatures) and all(s.ok for s in self.signatures)

    def to_json(self) -> dict:
        out = asdict(self)
        out["ok"] = self.ok
        for check, raw in zip(self.signatures, out["signatures"], strict=True):
            raw["ok"] = check.ok
            raw["problems"] = check.problems
        return out


def load_roots(path: Path | None) -> list:
    """Return the root certificates in a PEM file (none if the file is absent)."""
    return list(load_certs_from_pemder([str(path)])) if path is not None and path.exists() else []


def root_names(roots: list) -> list[str]:
    """Return each root's subject in pyHanko's words."""
    return [root.subject.human_friendly for root in roots]


class _Said(logging.Handler):
    """Collects, while a signature is checked, what pyHanko warns of (the certificate and the check that
    failed): pyHanko says it only in its log, with a traceback. Per thread: the API checks several files
    at once. Every other record goes on to the root logger as it would have (pyHanko's validation warns
    at length of every untrusted chain, so below ERROR its validator stays out of the log, as before)."""

    QUIET = ("pyhanko.sign.validation", "pyhanko.sign.diff_analysis")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        said = getattr(self.local, "said", None)
        if said is not None and record.levelno < logging.ERROR:
            said.append(record.getMessage())
        elif record.levelno >= logging.ERROR or not record.name.startswith(self.QUIET):
            logging.getLogger().handle(record)

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Yield the list the warnings logged in this thread go to, until the block ends."""
        self.local.said = said = []
        try:
            yield said
        finally:
            self.local.said = None


_SAID = _Said()
for _name in ("pyhanko", "pyhanko_certvalidator"):
    _logger = logging.getLogger(_name)
    _logger.setLevel(logging.WARNING)
    _logger.propagate = False  # _SAID hands on what it does not keep
    _logger.addHandler(_SAID)
# The difference analysis logs a suspicious change with a traceback; the status carries it (the detail).
logging.getLogger("pyhanko.sign.diff_analysis").setLevel(logging.CRITICAL)


def verify(
    data: bytes, roots: list, password: str | None = None, moment: datetime | None = None
) -> Verification:
    """Return what holds of every signature and document timestamp in the PDF, checked against ``roots``
    at ``moment`` (now by default): intact, valid, trusted, no disallowed change, and why not."""
    try:
        return _verify(data, roots, password, moment or datetime.now(UTC))
    except (PdfError, ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        # pyHanko reads objects as it needs them, so a damaged file or signature shows only while checking it,
        # and not always as PdfError: a broken reference reads as a null object (AttributeError on it).
        raise BadInput(f"not a PDF whose signatures can be read (damaged, or not a PDF): {exc}") from None


def _open(data: bytes, password: str | None) -> PdfFileReader:
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    if reader.encrypted:
        if type(reader.security_handler).__name__ == "PubKeySecurityHandler":
            raise BadInput(
                "the PDF is encrypted for the holder of a certificate, not with a password: "
                "it can be checked only where that private key is"
            )
        if password is None:
            raise WrongPassword("the PDF is encrypted: give its password")
        if reader.decrypt(password).status.name == "FAILED":
            raise WrongPassword("the PDF is encrypted: the password does not open it")
    return reader


def _verify(data: bytes, roots: list, password: str | None, moment: datetime) -> Verification:
    reader = _open(data, password)
    found = reader.embedded_signatures
    if len(found) > MAX_SIGNATURES:
        raise BadInput(f"the PDF lists {len(found)} signatures; at most {MAX_SIGNATURES} are checked")
    dss = DocumentSecurityStore.read_dss(reader) if "/DSS" in reader.root else None
    has_document_timestamps = any(s.sig_object_type == "/DocTimeStamp" for s in found)
    signatures = [_check(embedded, roots, moment, dss, has_document_timestamps) for embedded in found]
    return Verification(
        signatures,
        reader.encrypted,
        [] if signatures else ["the PDF carries no signature"],
        roots=root_names(roots),
        checked_at=moment,
        validation_data=_validation_data(dss) if dss is not None else None,
    )


def _validation_data(dss: DocumentSecurityStore) -> ValidationData:
    return ValidationData(len(dss.certs), len(dss.ocsps), len(dss.crls))


def context(roots: list, moment: datetime, dss: DocumentSecurityStore | None) -> ValidationContext:
    """Return the checker's context: these roots, this time, nothing fetched, the file's DSS if any."""
    kwargs = {"trust_roots": roots, "allow_fetching": False, "moment": moment}
    return dss.as_validation_context(kwargs) if dss is not None else ValidationContext(**kwargs)


def _check(
    embedded: EmbeddedPdfSignature,
    roots: list,
    moment: datetime,
    dss: DocumentSecurityStore | None,
    has_document_timestamps: bool,
) -> SignatureCheck:
    """Return what holds of one signature or document timestamp, with what pyHanko warned of."""
    with _SAID.capture() as said:
        return _checked(embedded, roots, moment, dss, has_document_timestamps, said)


def _checked(
    embedded: EmbeddedPdfSignature,
    roots: list,
    moment: datetime,
    dss: DocumentSecurityStore | None,
    has_document_timestamps: bool,
    said: list[str],
) -> SignatureCheck:
    timestamp_kind = embedded.sig_object_type == "/DocTimeStamp"
    try:
        if timestamp_kind:
            status = validate_pdf_timestamp(embedded, context(roots, moment, dss))
        else:
            status = validate_pdf_signature(embedded, context(roots, moment, dss), skip_diff=False)
    except SignatureValidationError as exc:
        return _malformed(embedded, timestamp_kind, exc)
    failures = _failures(embedded, status, timestamp_kind, said, moment)
    long_term = proven = None
    if not timestamp_kind and has_document_timestamps and {f.reason for f in failures} & CURED_BY_TIME:
        proven = long_term_proof(embedded, roots, moment)
        if proven is not None:
            long_term = f"held at {proven.held_at:%Y-%m-%d %H:%M:%S} UTC, as the document timestamps prove"
            failures = [f for f in failures if f.reason not in CURED_BY_TIME]
    trusted = status.trusted or proven is not None
    path = status.validation_path if status.trusted else None
    anchor = path.trust_anchor.authority.name.human_friendly if path is not None else None
    anchor = proven.trusted_by if proven is not None else anchor
    signer = status.signing_cert.subject.human_friendly
    level = status.modification_level.name if status.modification_level is not None else "UNKNOWN"
    docmdp = embedded.docmdp_level.name if embedded.docmdp_level is not None else None
    if timestamp_kind:
        stamp = status.timestamp
    else:
        stamp = status.timestamp_validity.timestamp if status.timestamp_validity else None
    return SignatureCheck(
        # A plain str: pyHanko's string object of a decrypted file cannot be copied by asdict().
        field=str(embedded.field_name),
        kind="document timestamp" if timestamp_kind else "signature",
        signer=signer,
        intact=status.intact,
        valid=status.valid,
        trusted=trusted,
        certified=docmdp is not None,
        certification="document timestamp" if timestamp_kind else LEVELS[docmdp][1],
        certification_zh="文档时间戳" if timestamp_kind else LEVELS[docmdp][0],
        docmdp_ok=getattr(status, "docmdp_ok", None),
        modification_level=level,
        changes=CHANGES.get(level, ("", "not analysed"))[1],
        changes_zh=CHANGES.get(level, ("未分析", ""))[0],
        coverage=status.coverage.name if status.coverage is not None else "UNKNOWN",
        signing_time=None if timestamp_kind else status.signer_reported_dt,
        timestamp=stamp,
        failures=failures,
        trusted_by=anchor,
        test_only=TEST_MARK in signer or TEST_MARK in (anchor or ""),
        long_term=long_term,
    )


def _malformed(embedded: EmbeddedPdfSignature, timestamp_kind: bool, exc: Exception) -> SignatureCheck:
    """Return the check of a signature pyHanko refuses to evaluate (its CMS is not what a PDF signature
    must be): it does not hold, for that reason."""
    try:
        signer = embedded.signer_cert.subject.human_friendly
    except Exception:  # the malformed structure may not name one
        signer = "?"
    return SignatureCheck(
        field=str(embedded.field_name),
        kind="document timestamp" if timestamp_kind else "signature",
        signer=signer,
        intact=False,
        valid=False,
        trusted=False,
        certified=embedded.docmdp_level is not None,
        certification="document timestamp" if timestamp_kind else LEVELS[_level_name(embedded)][1],
        certification_zh="文档时间戳" if timestamp_kind else LEVELS[_level_name(embedded)][0],
        docmdp_ok=None,
        modification_level="UNKNOWN",
        changes="not analysed",
        changes_zh="未分析",
        coverage="UNKNOWN",
        signing_time=None,
        timestamp=None,
        failures=[failure(Reason.malformed, str(exc))],
    )


def _level_name(embedded: EmbeddedPdfSignature) -> str | None:
    return embedded.docmdp_level.name if embedded.docmdp_level is not None else None


def _expired(cert, moment: datetime) -> bool:
    return cert.not_valid_after < moment


def _failures(
    embedded: EmbeddedPdfSignature, status, timestamp_kind: bool, said: list[str], moment: datetime
) -> list[Failure]:
    """Return each thing that fails in pyHanko's status, with its own reason."""
    failures = []
    detail = "; ".join(dict.fromkeys(said)) or None
    trust_reason = TRUST_REASONS.get(status.trust_problem_indic) if status.trust_problem_indic else None
    if trust_reason == Reason.stale_validation_data and _expired(status.signing_cert, moment):
        trust_reason = Reason.expired  # the revocation data is stale because the certificate ended
    if status.trust_problem_indic == AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE:
        # pyHanko's catch-all: tell the commonest two apart by what certvalidator said
        if "could not be verified" in (detail or ""):  # a root of the same name, not the same key
            trust_reason = Reason.untrusted_root
        elif "expired" in (detail or ""):  # a CA of the chain
            trust_reason = Reason.expired
    if not status.intact:
        failures.append(failure(Reason.modified))
    elif not status.valid:
        failures.append(failure(trust_reason or Reason.bad_signature, detail))
    if status.intact and status.valid and not status.trusted:
        failures.append(failure(trust_reason or Reason.untrusted, detail))
    if status.coverage is not None and status.coverage.name not in ("ENTIRE_FILE", "ENTIRE_REVISION"):
        failures.append(failure(Reason.incomplete_coverage))
    elif getattr(status, "docmdp_ok", None) is False:
        certified = embedded.docmdp_level is not None
        diff = status.diff_result
        why = str(diff) if diff is not None and not hasattr(diff, "modification_level") else None
        failures.append(failure(Reason.forbidden_change if certified else Reason.changed_after_signing, why))
    if timestamp_kind:
        return failures
    if not status.seed_value_ok:
        failures.append(failure(Reason.seed_value, str(status.seed_value_constraint_error)))
    for stamp in (status.timestamp_validity, status.content_timestamp_validity):
        if stamp is not None and not (stamp.intact and stamp.valid):
            failures.append(failure(Reason.timestamp_invalid))
        elif stamp is not None and not stamp.trusted:
            failures.append(failure(Reason.timestamp_untrusted))
    return failures


@dataclass(frozen=True)
class LongTermProof:
    held_at: datetime  # the time the file's document timestamps prove the signature existed and held
    trusted_by: str | None  # the configured root its chain ended in then


def long_term_proof(embedded: EmbeddedPdfSignature, roots: list, moment: datetime) -> LongTermProof | None:
    """Return when the file's document timestamps prove the signature held, and by which root (PAdES
    B-LTA, checked with the validation data in the file only, nothing fetched); None if they prove
    nothing."""
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
    from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
    from pyhanko_certvalidator.registry import SimpleTrustManager

    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=SimpleTrustManager.build(trust_roots=roots),
                revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO),
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
        )
    )
    timing = ValidationTimingInfo(moment, moment, point_in_time_validation=False)
    try:
        result = asyncio.run(ades_lta_validation(embedded, spec, timing_info=timing))
    except (SignatureValidationError, PdfError, ValueError):
        return None
    if result.ades_subindic != AdESPassed.OK:
        return None
    path = result.api_status.validation_path
    anchor = path.trust_anchor.authority.name.human_friendly if path is not None else None
    return LongTermProof(result.best_signature_time, anchor)


def describe(result: Verification, roots_file: str | None = None) -> list[str]:
    """Return the result in plain English lines: each signature, what holds of it and why not, then the
    roots it was checked against and the validation data the file carries."""
    lines = []
    for s in result.signatures:
        lines.append(f"{s.kind} {s.field} ({s.certification}): {'VALID' if s.ok else 'DOES NOT HOLD'}")
        lines.append(f"  signer: {s.signer}")
        lines.append(f"  intact: {s.intact}  valid: {s.valid}  trusted: {s.trusted}")
        if s.kind == "signature":
            lines.append(f"  changes after signing: {s.modification_level} ({s.changes})")
            lines.append(f"  signing time (as the signer says): {s.signing_time or 'none'}")
        lines.append(f"  timestamp: {s.timestamp or 'none'}")
        if s.trusted_by:
            lines.append(f"  trusted by root: {s.trusted_by}" + (" (TEST only)" if s.test_only else ""))
        if s.long_term:
            lines.append(f"  long-term: {s.long_term}")
        for f in s.failures:
            lines.append(f"  problem ({f.reason}): {f.en}" + (f" [{f.detail}]" if f.detail else ""))
    for problem in result.problems:
        lines.append(f"problem: {problem}")
    where = f" in {roots_file}" if roots_file else ""
    if result.roots:
        lines.append(f"checked against {len(result.roots)} root(s){where}: " + "; ".join(result.roots))
    else:
        lines.append(f"checked against no roots (none found{where}): no signer can be trusted")
    if result.checked_at:
        lines.append(f"certificates checked as of {result.checked_at:%Y-%m-%d %H:%M:%S %Z}")
    if (data := result.validation_data) is not None:
        lines.append(
            f"validation data in the file (DSS): {data.certificates} certificates, "
            f"{data.ocsp_responses} OCSP responses, {data.crls} CRLs"
        )
    return lines


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


def as_json(value: object) -> str:
    """Return a verification's JSON text (times in ISO 8601)."""
    return json.dumps(
        value,
        default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
        ensure_ascii=False,
        indent=1,
    )


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
    sys.stdout.write(as_json(answer))


if __name__ == "__main__":
    _child()
