"""sign: the rendered e-policy in, two signed copies out: the encrypted one for the customer and a plain
one for the archive. pyHanko does all of it; this module owns the signing key (PKCS#12 or PKCS#11).

Order matters. The customer's copy is encrypted (AES-256, PDF 2.0 security handler) in the same write
that signs it, the signature's /Contents left in clear as the standard says: encrypting a signed file
rewrites every object and breaks the signature. pyHanko's password handler adds an ISO 32004 MAC by
default, which other validators (poppler's pdfsig among them) do not understand, so it is turned off.
Each copy is a certification signature with DocMDP "no changes" (PAdES, the chain embedded) whose
widget over SEAL_BOX shows the seal the renderer made (its own appearance, no pyHanko stamp), time-stamped
when a TSA is configured (PAdES B-T; B-B otherwise), and at IMAGING_PADES_LEVEL B-LT or B-LTA followed by
the validation data and a document timestamp (``LongTerm``). Both carry an sRGB output intent; the
archive copy claims PDF/A-2b in its XMP (the customer's is encrypted, which PDF/A forbids).

What makes it fast (bench/epolicy_bench.py, README "Performance"): the key is loaded once per worker
process (``signer_from_settings`` is cached); the signature's size is reserved up front rather than found
by a dry run; the customer's copy is encrypted and signed in one write (writing the encrypted file and
opening it again cost a parse and two more rounds of the deliberately slow AES-256 password hash); and
the signer's signing-certificate-v2 attribute (ESS, RFC 5035), the same for every signature, is built
once (``PadesAttributes``): pyHanko builds it anew for each signature and asn1crypto then serialises it
again at each level of the CMS structure, which was three quarters of the time of a signature.
"""

from __future__ import annotations

import dataclasses
import io
import secrets
from dataclasses import dataclass
from functools import cache

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.crypt.permissions import StandardPermissions
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.model import DocumentMetadata, ExpandedName, XmpStructure, XmpValue
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter, copy_into_new_writer
from pyhanko.sign import fields, signers
from pyhanko.sign.attributes import CMSAttributeProvider, SignedAttributeProviderSpec
from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.stamp.noop import NoOpStampStyle
from pyhanko_certvalidator.errors import PathBuildingError, PathError

from errors import ConfigError, DependencyDown
from esign.render import COMPANY, SEAL_BOX, SEAL_XOBJECT, SealLook
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
    return prepared(signer)


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
    return prepared(
        PKCS11Signer(
            session,
            key_label=settings.pkcs11_key_label,
            signing_cert=load_cert_from_pemder(str(settings.pkcs11_cert)),
            ca_chain=chain,
            # Hash here, sign the digest in the token: SoftHSM2 (and many HSMs) lack CKM_ECDSA_SHA256.
            use_raw_mechanism=True,
        )
    )


class SigningCertificate(CMSAttributeProvider):
    """The signing-certificate-v2 attribute, built once and kept in its parsed form (cheap to serialise)."""

    attribute_type = "signing_certificate_v2"

    def __init__(self, cert) -> None:
        from asn1crypto import tsp
        from pyhanko.sign.general import as_signing_certificate_v2

        self.value = tsp.SigningCertificateV2.load(as_signing_certificate_v2(cert).dump())

    async def build_attr_value(self, dry_run: bool = False):
        return self.value


class PadesAttributes(SignedAttributeProviderSpec):
    """The signed attributes PAdES asks for beyond content type and digest: the signing certificate only
    (PAdES forbids the signing-time attribute; the time is the signature dictionary's /M or a timestamp)."""

    def __init__(self, cert) -> None:
        self.signing_certificate = SigningCertificate(cert)

    def signed_attr_providers(self, data_digest: bytes, digest_algorithm: str):
        yield self.signing_certificate


def prepared(signer: signers.Signer) -> signers.Signer:
    """Return the signer with its constant signed attributes built once (see the module's docstring)."""
    signer.signed_attr_prov_spec = PadesAttributes(signer.signing_cert)
    return signer


class TimestampUnavailable(DependencyDown):
    """The time-stamping service did not answer, or refused: the signing job is retried later."""

    error = "timestamp_unavailable"


class RevocationUnavailable(DependencyDown):
    """At B-LT/B-LTA the CA's OCSP responder or CRL did not answer: the signing job is retried later."""

    error = "revocation_unavailable"


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
def long_term_from_settings(settings: Settings) -> LongTerm | None:
    """Return what IMAGING_PADES_LEVEL asks beyond B-T (B-LT, B-LTA), with the roots of
    IMAGING_TRUST_ROOTS that the signer's chain ends in; None for B-B and B-T."""
    if settings.pades_level not in ("B-LT", "B-LTA"):
        return None
    from pyhanko.keys import load_certs_from_pemder

    try:
        roots = tuple(load_certs_from_pemder([str(settings.trust_roots_path)]))
    except OSError as exc:
        raise ConfigError(
            f"IMAGING_PADES_LEVEL={settings.pades_level} needs the signer's root in IMAGING_TRUST_ROOTS: "
            f"cannot read {settings.trust_roots_path}: {exc.strerror}"
        ) from None
    return LongTerm(trust_roots=roots, archive_timestamp=settings.pades_level == "B-LTA")


@cache
def seal_look_from_settings(settings: Settings) -> SealLook:
    """Return how the visible seal looks: IMAGING_SEAL_COMPANY and the PNG at IMAGING_SEAL_IMAGE (read
    once per process); ConfigError naming the setting if the image cannot be read or is not a PNG."""
    image = None
    if settings.seal_image is not None:
        try:
            image = settings.seal_image.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"IMAGING_SEAL_IMAGE: cannot read {settings.seal_image}: {exc.strerror}"
            ) from None
        if not image.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ConfigError(f"IMAGING_SEAL_IMAGE: {settings.seal_image} is not a PNG image")
    return SealLook(company=settings.seal_company or COMPANY, image=image)


@cache
def signer_from_settings(settings: Settings) -> signers.Signer:
    """Return this process's signer, loaded once: from the HSM when configured, else from PKCS#12."""
    if settings.pkcs11_module:
        return load_pkcs11(settings)
    return load_pkcs12(settings.pkcs12_path, settings.pkcs12_passphrase())


def rehearse(signer: signers.Signer) -> None:
    """Seal a sample e-policy and throw it away. The worker does this once before it forks a child per
    job, so that what reportlab, pyHanko and asn1crypto set up on first use (lazy imports, parsed
    certificate fields, font tables) is inherited by every job instead of redone in each."""
    from esign.epolicy import sample_request
    from esign.render import render

    seal(render(sample_request(), 1, "https://rehearsal.invalid/verify"), signer, "000000", "rehearsal")


def encrypted_writer(
    pdf: bytes | PdfFileReader, user_password: str, owner_password: str
) -> BasePdfFileWriter:
    """Return a writer holding (a copy of) the PDF, to be written encrypted with AES-256: opened with
    user_password, printable, not changeable."""
    reader = pdf if isinstance(pdf, PdfFileReader) else PdfFileReader(io.BytesIO(pdf))
    writer = copy_into_new_writer(reader)
    writer.encrypt(owner_password, user_password, perms=CUSTOMER_PERMISSIONS, pdf_mac=False)
    return writer


def encrypt(pdf: bytes, user_password: str, owner_password: str) -> bytes:
    """Return the PDF encrypted with AES-256 (see ``encrypted_writer``)."""
    out = io.BytesIO()
    encrypted_writer(pdf, user_password, owner_password).write(out)
    return out.getvalue()


@dataclass(frozen=True)
class LongTerm:
    """PAdES beyond B-T (IMAGING_PADES_LEVEL): B-LT embeds the validation data of the signer's chain
    (OCSP responses or CRLs, fetched at signing) in the document security store; B-LTA adds a document
    timestamp over all of it, so that the signature can be checked after the certificates expire."""

    trust_roots: tuple  # asn1crypto certificates: where the chain whose status is fetched ends
    archive_timestamp: bool  # B-LTA


def _meta(long_term: LongTerm | None) -> dict:
    if long_term is None:
        return {}
    from pyhanko_certvalidator import ValidationContext

    context = ValidationContext(
        trust_roots=list(long_term.trust_roots), allow_fetching=True, revocation_mode="hard-fail"
    )
    return {
        "embed_validation_info": True,
        "use_pades_lta": long_term.archive_timestamp,
        "validation_context": context,
    }


def _add_seal_field(writer: BasePdfFileWriter) -> None:
    """Add the signature field over SEAL_BOX with the rendered seal (esign/render.py's SEAL_FORM) as its
    appearance: the seal and its text in the document's own embedded font, no pyHanko stamp art. A PDF
    that has no seal form (not rendered here) gets an empty appearance."""
    fields.append_signature_field(writer, fields.SigFieldSpec(FIELD, on_page=0, box=SEAL_BOX))
    _, resources = writer.find_page_for_modification(0)
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    xobjects = xobjects.get_object() if xobjects is not None else None  # decrypted, in an encrypted file
    if xobjects is None or SEAL_XOBJECT not in xobjects:
        return
    (_, _, ref), *_ = fields.enumerate_sig_fields(writer, with_name=FIELD)
    ref.get_object()["/AP"] = generic.DictionaryObject(
        {generic.pdf_name("/N"): xobjects.raw_get(SEAL_XOBJECT)}
    )


# PDF/A-2b (ISO 19005-2, level B) as the archive copy claims it in its XMP; the customer's copy is encrypted,
# which PDF/A forbids, and claims nothing.
PDFA_ID = "http://www.aiim.org/pdfa/ns/id/"
PDFA_2B = XmpStructure.of(
    (ExpandedName(PDFA_ID, "part"), XmpValue("2")), (ExpandedName(PDFA_ID, "conformance"), XmpValue("B"))
)
SRGB = "sRGB IEC61966-2.1"


@cache
def srgb_profile() -> bytes:
    """Return an sRGB ICC profile (made by littlecms through Pillow; no file to ship or find)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _add_output_intent(writer: BasePdfFileWriter) -> None:
    """Give the document the sRGB output intent PDF/A asks for (its colours are DeviceRGB and DeviceGray),
    unless it has one."""
    if "/OutputIntents" in writer.root:
        return
    profile = generic.StreamObject(
        {generic.pdf_name("/N"): generic.NumberObject(3)}, stream_data=srgb_profile()
    )
    profile.compress()
    intent = generic.DictionaryObject(
        {
            generic.pdf_name("/Type"): generic.pdf_name("/OutputIntent"),
            generic.pdf_name("/S"): generic.pdf_name("/GTS_PDFA1"),
            generic.pdf_name("/OutputConditionIdentifier"): generic.TextStringObject(SRGB),
            generic.pdf_name("/Info"): generic.TextStringObject(SRGB),
            generic.pdf_name("/RegistryName"): generic.TextStringObject("http://www.color.org"),
            generic.pdf_name("/DestOutputProfile"): writer.add_object(profile),
        }
    )
    writer.root[generic.pdf_name("/OutputIntents")] = generic.ArrayObject([writer.add_object(intent)])
    writer.update_root()


def certify(
    pdf: bytes | BasePdfFileWriter,
    signer: signers.Signer,
    password: str | None = None,
    timestamper=None,
    reason: str = "",
    reserve: bool = True,
    document: DocumentMetadata | None = None,
    long_term: LongTerm | None = None,
) -> bytes:
    """Return the PDF with a visible certification signature (DocMDP: no changes): added in an incremental
    update to PDF bytes (password opens an encrypted PDF first), or written with the whole document from
    a writer. document sets the Info and XMP metadata written with it; long_term makes it B-LT or B-LTA
    (with a timestamper). ``reserve=False`` lets pyHanko size the signature by a dry run (slower)."""
    if isinstance(pdf, BasePdfFileWriter):
        writer = pdf
    else:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        if password is not None:
            writer.encrypt(password)
    if document is not None:  # pyHanko writes it into the Info dictionary and the XMP stream
        for field in dataclasses.fields(document):
            setattr(writer.document_meta, field.name, getattr(document, field.name))
    _add_output_intent(writer)
    _add_seal_field(writer)
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD,
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason or None,
        location="CN",
        **_meta(long_term),
    )
    pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=timestamper, stamp_style=NoOpStampStyle())
    reserved = RESERVED + (8192 if timestamper else 0) + (16384 if long_term else 0) if reserve else None
    try:
        out = pdf_signer.sign_pdf(writer, existing_fields_only=True, bytes_reserved=reserved)
    except (SigningError, PathError) as exc:
        if long_term is None:
            raise
        raise _long_term_failure(exc) from exc
    return out.getvalue()


def _long_term_failure(exc: Exception) -> Exception:
    """Return what a failed B-LT/B-LTA signature means: a chain that does not reach the configured roots
    (ConfigError), or certificate status that could not be fetched from the CA (retried later)."""
    cause = exc.__cause__ or exc
    if isinstance(cause, PathBuildingError):
        return ConfigError(
            "IMAGING_PADES_LEVEL: the signer's or the time-stamping authority's chain does not reach the "
            f"roots in IMAGING_TRUST_ROOTS: {cause}"
        )
    return RevocationUnavailable(f"certificate status (OCSP or CRL) for PAdES B-LT could not be had: {cause}")


def seal(
    pdf: bytes,
    signer: signers.Signer,
    user_password: str,
    owner_password: str,
    timestamper=None,
    reserve: bool = True,
    document: DocumentMetadata | None = None,
    long_term: LongTerm | None = None,
) -> SignedCopies:
    """Return the customer's copy (encrypted and signed in one write) and the archive copy (signed in an
    incremental update) of a rendered PDF."""
    reason = "电子保单 e-policy"
    # One parse for both: the customer's copy is a copy of the objects, written whole; the archive's update
    # then reads what it changes from the same reader, already parsed (1-3 ms a policy).
    reader = PdfFileReader(io.BytesIO(pdf))
    encrypted = encrypted_writer(reader, user_password, owner_password)
    customer = certify(encrypted, signer, None, timestamper, reason, reserve, document, long_term)
    if document is not None:
        document = dataclasses.replace(document, xmp_extra=[*document.xmp_extra, PDFA_2B])
    archive = IncrementalPdfFileWriter.from_reader(reader)
    archive = certify(archive, signer, None, timestamper, reason, reserve, document, long_term)
    return SignedCopies(customer=customer, archive=archive)


def seal_as_configured(
    pdf: bytes, settings: Settings, user_password: str, document: DocumentMetadata | None = None
) -> SignedCopies:
    """Return the copies sealed with this process's key, time-stamping service and PAdES level. The owner
    password is random and thrown away: nobody is meant to change the file."""
    return seal(
        pdf,
        signer_from_settings(settings),
        user_password,
        secrets.token_urlsafe(24),
        timestamper_from_settings(settings),
        document=document,
        long_term=long_term_from_settings(settings),
    )
