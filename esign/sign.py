"""sign: the rendered e-policy in, two signed copies out: the encrypted one for the customer and a plain
one for the archive. pyHanko does all of it; this module owns the signing key (PKCS#12 or PKCS#11).

Order matters. The customer's copy is encrypted first (AES-256, PDF 2.0 security handler) and then
signed in an incremental update of the encrypted file: encrypting a signed file rewrites every object
and breaks the signature. pyHanko's password handler adds an ISO 32004 MAC by default, which other
validators (poppler's pdfsig among them) do not understand, so it is turned off. Each copy is a
certification signature with DocMDP "no changes" (PAdES, the chain embedded), placed visibly over the
seal the renderer drew, and time-stamped when a TSA is configured (PAdES B-T; B-B otherwise).

The key is loaded once per worker process (``signer_from_settings`` is cached), and the signature's
size is reserved up front rather than found by a dry run: both matter for speed (see bench/).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

from pyhanko.pdf_utils.crypt.permissions import StandardPermissions
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
from pyhanko.sign.timestamps.api import TimeStamper

from errors import ConfigError, DependencyDown
from esign.render import SEAL_BOX
from settings import Settings

FIELD = "EPolicySeal"
RESERVED = 16 * 1024  # bytes for the CMS signature (a P-256 chain of two is ~2 KiB; a timestamp adds ~6)
# The customer may print (in full quality), and assistive technology may read the text; nothing else.
# TOLERATE_MISSING_PDF_MAC: without it pyHanko insists on the ISO 32004 MAC even with pdf_mac=False.
CUSTOMER_PERMISSIONS = (
    StandardPermissions.ALLOW_PRINTING
    | StandardPermissions.ALLOW_HIGH_QUALITY_PRINTING
    | StandardPermissions.ALLOW_ASSISTIVE_TECHNOLOGY
    | StandardPermissions.TOLERATE_MISSING_PDF_MAC
)


@dataclass(frozen=True)
class SignedCopies:
    customer: bytes  # encrypted with the customer's password, then signed
    archive: bytes  # not encrypted, signed: for staff and retention


def load_pkcs12(path, passphrase: bytes | None) -> signers.Signer:
    """Return a signer from a PKCS#12 file; ConfigError naming the file if it cannot be opened."""
    try:
        signer = signers.SimpleSigner.load_pkcs12(str(path), passphrase=passphrase)
    except OSError as exc:
        raise ConfigError(
            f"IMAGING_SIGNING_PKCS12: cannot read {path}: {exc.strerror}; `imaging keys init` makes test keys"
        ) from None
    if signer is None:  # pyHanko logs the reason and returns None (a wrong passphrase, mostly)
        raise ConfigError(f"IMAGING_SIGNING_PKCS12: cannot open {path}: wrong passphrase or not PKCS#12")
    return signer


def load_pkcs11(settings: Settings) -> signers.Signer:
    """Return a signer whose key stays in the PKCS#11 token (an HSM; SoftHSM2 in the tests)."""
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.keys import load_cert_from_pemder, load_certs_from_pemder
    from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

    if not (settings.pkcs11_token and settings.pkcs11_key_label and settings.pkcs11_cert):
        raise ConfigError("IMAGING_PKCS11_MODULE is set: set IMAGING_PKCS11_TOKEN, _KEY_LABEL and _CERT too")
    pin = settings.pkcs11_pin.get_secret_value() if settings.pkcs11_pin else None
    session = open_pkcs11_session(
        str(settings.pkcs11_module), token_criteria=TokenCriteria(label=settings.pkcs11_token), user_pin=pin
    )
    chain = (
        list(load_certs_from_pemder([str(settings.trust_roots_path)]))
        if settings.trust_roots_path.exists()
        else []
    )
    return PKCS11Signer(
        session,
        key_label=settings.pkcs11_key_label,
        signing_cert=load_cert_from_pemder(str(settings.pkcs11_cert)),
        ca_chain=chain,
        # Hash here, sign the digest in the token: SoftHSM2 (and many HSMs) lack CKM_ECDSA_SHA256.
        use_raw_mechanism=True,
    )


class TimestampUnavailable(DependencyDown):
    """The time-stamping service did not answer, or refused: the signing job is retried later."""

    error = "timestamp_unavailable"


class HttpTimeStamper(TimeStamper):
    """An RFC 3161 client over HTTP with httpx (pyHanko's own clients need requests or aiohttp)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        super().__init__()
        self.url, self.timeout = url, timeout

    async def async_request_tsa_response(self, req):
        import httpx
        from asn1crypto import tsp

        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(
                    self.url, content=req.dump(), headers={"Content-Type": "application/timestamp-query"}
                )
        except httpx.HTTPError as exc:
            raise TimestampUnavailable(f"time-stamping service {self.url} unreachable: {exc}") from exc
        if response.status_code != 200 or "timestamp-reply" not in response.headers.get("content-type", ""):
            raise TimestampUnavailable(f"time-stamping service {self.url} answered {response.status_code}")
        return tsp.TimeStampResp.load(response.content)


def timestamper_from_settings(settings: Settings) -> TimeStamper | None:
    """Return the TSA client when IMAGING_TSA_URL is set (PAdES B-T), else None (B-B)."""
    return HttpTimeStamper(settings.tsa_url) if settings.tsa_url else None


@cache
def signer_from_settings(settings: Settings) -> signers.Signer:
    """Return this process's signer, loaded once: from the HSM when configured, else from PKCS#12."""
    if settings.pkcs11_module:
        return load_pkcs11(settings)
    return load_pkcs12(settings.pkcs12_path, settings.pkcs12_passphrase())


def encrypt(pdf: bytes, user_password: str, owner_password: str) -> bytes:
    """Return the PDF encrypted with AES-256: opened with user_password, printable, not changeable."""
    writer = copy_into_new_writer(PdfFileReader(io.BytesIO(pdf)))
    writer.encrypt(owner_password, user_password, perms=CUSTOMER_PERMISSIONS, pdf_mac=False)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def certify(
    pdf: bytes,
    signer: signers.Signer,
    password: str | None = None,
    timestamper=None,
    reason: str = "",
    reserve: bool = True,
) -> bytes:
    """Return the PDF with a visible certification signature (DocMDP: no changes) added incrementally;
    password opens an encrypted PDF first. ``reserve=False`` lets pyHanko size the signature by a dry
    run (slower; kept for the benchmark's comparison)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    if password is not None:
        writer.encrypt(password)
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD,
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason or None,
        location="CN",
    )
    pdf_signer = signers.PdfSigner(
        meta,
        signer=signer,
        timestamper=timestamper,
        new_field_spec=fields.SigFieldSpec(FIELD, on_page=0, box=SEAL_BOX),
    )
    reserved = RESERVED + (8192 if timestamper else 0) if reserve else None
    out = pdf_signer.sign_pdf(writer, bytes_reserved=reserved)
    return out.getvalue()


def seal(
    pdf: bytes,
    signer: signers.Signer,
    user_password: str,
    owner_password: str,
    timestamper=None,
    reserve: bool = True,
) -> SignedCopies:
    """Return the customer's copy (encrypted, then signed) and the archive copy (signed) of a rendered PDF."""
    reason = "电子保单 e-policy"
    encrypted = encrypt(pdf, user_password, owner_password)
    customer = certify(encrypted, signer, user_password, timestamper, reason, reserve)
    return SignedCopies(customer=customer, archive=certify(pdf, signer, None, timestamper, reason, reserve))
