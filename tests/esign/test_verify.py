"""Verification of any signed PDF: agreement with pyHanko on its own test files (clock and roots held
equal), each failure with its own reason, document timestamps and the DSS read as such, the CLI's JSON
and exit codes, and the public check anyone may post a file to."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.pdfgen import canvas

from api import create_app
from errors import BadInput
from esign.keys import _usage as signing_usage
from esign.verify import Reason, load_roots, verify
from settings import Settings
from tests.conftest import run_cli

DATA = Path(__file__).resolve().parent.parent / "data" / "pyhanko"
ROOT_PEM = DATA / "root.cert.pem"
EARLY = datetime(2020, 11, 1, tzinfo=UTC)  # pyHanko's tests' frozen clock: its test signer is valid
LATE = datetime(2026, 6, 1, tzinfo=UTC)  # its test signer expired at the start of 2022
LTA = "pades-lta-dss-indirect-arrs-test.pdf"
DOC_TS = "Timestamp-977301ad-bec9-4cae-a0cd-f6a674c6e465"
REFUSED = "refused"  # the file cannot be read: exit 2, not a verdict

# (file, clock): each signature's reasons for not holding ([] = it holds), or REFUSED.
TABLE: dict[tuple[str, datetime], dict[str, list[str]] | str] = {
    (LTA, EARLY): {"Sig1": [], DOC_TS: []},
    (LTA, LATE): {"Sig1": ["expired", "timestamp_untrusted"], DOC_TS: ["stale_validation_data"]},
    ("certified-with-indirect-refs-in-dir.pdf", EARLY): {"Sig1": []},
    ("certified-with-indirect-refs-in-dir.pdf", LATE): {"Sig1": ["expired"]},
    ("ed448-disallowed-hash.pdf", EARLY): {"Sig1": ["disallowed_algorithm"]},
    ("form-update-override-appearance-stream-sneaky.pdf", EARLY): {
        "Sig1": ["changed_after_signing"],
        "Sig2": [],
    },
    ("form-update-override-appearance-stream-sneaky.pdf", LATE): {
        "Sig1": ["expired", "changed_after_signing"],
        "Sig2": ["expired"],
    },
    ("minimal-signed-twice-no-sig-type.pdf", EARLY): {"Sig1": ["untrusted_root"], "Sig2": ["untrusted_root"]},
    ("coverage-anomalies-tail-uncovered.pdf", EARLY): {"Sig1": ["not_for_signing", "incomplete_coverage"]},
    ("pdf-sig-with-econtent.pdf", EARLY): {"Sig1": ["malformed"]},
    ("coverage-anomalies-base.pdf", EARLY): REFUSED,
    ("signed-encrypted-pubkey-with-catalog-ref.pdf", EARLY): REFUSED,
}


def pyhanko_says(data: bytes, roots: list, moment: datetime) -> dict[str, bool] | str:
    """Return pyHanko's own verdict on each signature (its bottom line; for a document timestamp:
    intact, valid and trusted), given the same roots, clock and the file's DSS; or REFUSED."""
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted:
            return REFUSED  # a password-less check of an encrypted file cannot open it
        found = reader.embedded_signatures
        dss = DocumentSecurityStore.read_dss(reader) if "/DSS" in reader.root else None
        answers = {}
        for embedded in found:
            kwargs = {"trust_roots": roots, "allow_fetching": False, "moment": moment}
            context = dss.as_validation_context(kwargs) if dss else ValidationContext(**kwargs)
            try:
                if embedded.sig_object_type == "/DocTimeStamp":
                    status = validate_pdf_timestamp(embedded, context)
                    answers[embedded.field_name] = status.intact and status.valid and status.trusted
                else:
                    answers[embedded.field_name] = validate_pdf_signature(embedded, context).bottom_line
            except SignatureValidationError:
                answers[embedded.field_name] = False  # pyHanko's CLI: INVALID
        return answers
    except (PdfError, ValueError):
        return REFUSED


@pytest.mark.parametrize(("name", "moment"), sorted(TABLE), ids=lambda v: getattr(v, "year", v))
def test_the_verifier_agrees_with_pyhanko_on_its_own_test_files(name: str, moment: datetime) -> None:
    data = (DATA / name).read_bytes()
    roots = load_roots(ROOT_PEM)
    expected = TABLE[(name, moment)]
    theirs = pyhanko_says(data, roots, moment)
    try:
        ours = verify(data, roots, moment=moment)
    except BadInput:
        assert expected == REFUSED and theirs == REFUSED
        return
    assert expected != REFUSED, "read a file the table says is refused"
    reasons = {s.field: [f.reason.value for f in s.failures] for s in ours.signatures}
    assert reasons == expected
    assert {s.field: s.ok for s in ours.signatures} == theirs
    assert ours.roots == [
        "Common Name: Root CA, Organizational Unit: Testing Authority, Organization: Example Inc, Country: BE"
    ]


def test_document_timestamps_and_the_dss_are_read_as_such() -> None:
    checked = verify((DATA / LTA).read_bytes(), load_roots(ROOT_PEM), moment=EARLY)
    assert checked.ok
    kinds = {s.field: s.kind for s in checked.signatures}
    assert kinds == {"Sig1": "signature", DOC_TS: "document timestamp"}
    stamp = next(s for s in checked.signatures if s.kind == "document timestamp")
    assert stamp.timestamp is not None and "Time Stamping Authority" in stamp.signer
    assert checked.validation_data is not None and checked.validation_data.crls >= 1
    signature = next(s for s in checked.signatures if s.kind == "signature")
    assert signature.modification_level == "LTA_UPDATES" and signature.certification.startswith("approval")


def test_an_approval_signature_is_not_said_to_break_a_certification() -> None:
    data = (DATA / "form-update-override-appearance-stream-sneaky.pdf").read_bytes()
    checked = verify(data, load_roots(ROOT_PEM), moment=EARLY)
    first = checked.signatures[0]
    assert not first.certified and first.failures[0].reason == Reason.changed_after_signing
    assert (
        "not a certification" in first.failures[0].en and "certification forbids" not in first.failures[0].en
    )
    assert "非认证签名" in first.failures[0].zh
    certified = verify((DATA / "certified-with-indirect-refs-in-dir.pdf").read_bytes(), load_roots(ROOT_PEM))
    assert certified.signatures[0].certified and "no changes allowed" in certified.signatures[0].certification


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


DER = serialization.Encoding.DER
WHERE_CRL = x509.UniformResourceIdentifier("http://127.0.0.1:9/root.crl")  # named, never fetched
SIGNING = signing_usage(cert_sign=False)  # what `imaging keys init` gives its signer


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(DER))


def _private(key) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


class FreshCA:
    """A root made for one test, which issues a signer or a time-stamping authority and writes CRLs."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("Verify test root"))
            .issuer_name(_name("Verify test root"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=400))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.root = _asn1(self.cert)

    def issue(self, common: str, days: int, tsa: bool = False):
        """Return a certificate valid ``days`` from now and its key: a signer's, or a TSA's (RSA: pyHanko's
        dummy TSA signs with RSA only)."""
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if tsa
            else ec.generate_private_key(ec.SECP256R1())
        )
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]) if tsa else SIGNING
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(hours=1))
            .not_valid_after(self.now + timedelta(days=days))
            .add_extension(usage, critical=True)
            .add_extension(
                x509.CRLDistributionPoints([x509.DistributionPoint([WHERE_CRL], None, None, None)]), False
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert, key

    def crl(self, revoked: x509.Certificate | None = None) -> asn1_crl.CertificateList:
        """Return a CRL good for years, listing ``revoked`` (as of a day ago) if given."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(self.now - timedelta(minutes=5))
            .next_update(self.now + timedelta(days=3000))
        )
        if revoked is not None:
            entry = x509.RevokedCertificateBuilder().serial_number(revoked.serial_number)
            builder = builder.add_revoked_certificate(
                entry.revocation_date(self.now - timedelta(days=1)).build()
            )
        return asn1_crl.CertificateList.load(builder.sign(self.key, hashes.SHA256()).public_bytes(DER))

    def signer(self, cert: x509.Certificate, key) -> signers.SimpleSigner:
        return signers.SimpleSigner(
            signing_cert=_asn1(cert),
            signing_key=_private(key),
            cert_registry=SimpleCertificateStore.from_certs([self.root]),
        )


def _page() -> bytes:
    page = io.BytesIO()
    drawing = canvas.Canvas(page)
    drawing.drawString(100, 700, "a policy")
    drawing.save()
    return page.getvalue()


def test_a_revoked_and_an_expired_signer_each_get_their_own_reason() -> None:
    ca = FreshCA(datetime.now(UTC))
    cert, key = ca.issue("Verify test signer", 300)
    writer = IncrementalPdfFileWriter(io.BytesIO(_page()))
    signed = signers.sign_pdf(
        writer, signers.PdfSignatureMetadata(field_name="Sig1"), signer=ca.signer(cert, key)
    )
    signed = signed.getvalue()
    assert verify(signed, [ca.root]).ok
    later = verify(signed, [ca.root], moment=ca.now + timedelta(days=400))
    assert [f.reason for f in later.signatures[0].failures] == [Reason.expired]
    untrusted = verify(signed, load_roots(ROOT_PEM))
    assert [f.reason for f in untrusted.signatures[0].failures] == [Reason.untrusted_root]
    stream = io.BytesIO(signed)
    contents = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0].pkcs7_content
    DocumentSecurityStore.add_dss(stream, contents, crls=[ca.crl(revoked=cert)], certs=[ca.root])
    checked = verify(stream.getvalue(), [ca.root])  # the CRL is in the file: nothing fetched
    (signature,) = checked.signatures
    assert [f.reason for f in signature.failures] == [Reason.revoked], signature.failures
    assert "revoked" in signature.failures[0].detail and checked.validation_data.crls == 1


def test_a_b_lta_file_still_holds_after_its_signer_expired_from_the_data_it_carries() -> None:
    ca = FreshCA(datetime.now(UTC))
    cert, key = ca.issue("Verify test signer", 30)
    tsa_cert, tsa_key = ca.issue("Verify test TSA", 3000, tsa=True)
    stamper = DummyTimeStamper(tsa_cert=_asn1(tsa_cert), tsa_key=_private(tsa_key), certs_to_embed=[ca.root])
    # PAdES B-LTA: the CRL embedded at signing (no network: the context holds it), then a document timestamp.
    context = ValidationContext(trust_roots=[ca.root], crls=[ca.crl()], allow_fetching=False)
    meta = signers.PdfSignatureMetadata(
        field_name="Sig1",
        subfilter=SigSeedSubFilter.PADES,
        embed_validation_info=True,
        use_pades_lta=True,
        validation_context=context,
    )
    pdf_signer = signers.PdfSigner(meta, signer=ca.signer(cert, key), timestamper=stamper)
    lta = pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(_page()))).getvalue()
    now = verify(lta, [ca.root])
    assert now.ok and [s.kind for s in now.signatures] == ["signature", "document timestamp"]
    assert now.signatures[0].long_term is None and now.validation_data.crls == 1
    expired = ca.now + timedelta(days=60)  # the signer's certificate ended a month ago
    later = verify(lta, [ca.root], moment=expired)
    assert later.ok, [s.failures for s in later.signatures]
    assert "as the document timestamps prove" in later.signatures[0].long_term
    assert later.signatures[0].trusted_by == "Common Name: Verify test root"

    # The same signature without the document timestamp (PAdES B-T) has nothing to prove it by.
    meta_bt = signers.PdfSignatureMetadata(field_name="Sig1", subfilter=SigSeedSubFilter.PADES)
    bt_signer = signers.PdfSigner(meta_bt, signer=ca.signer(cert, key), timestamper=stamper)
    bt = bt_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(_page()))).getvalue()
    assert [f.reason for f in verify(bt, [ca.root], moment=expired).signatures[0].failures] == [
        Reason.expired
    ]


def test_the_command_always_answers_in_json_and_its_exit_code_tells_a_verdict_from_a_refusal(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    common = ["--json", "--roots", str(ROOT_PEM)]
    holds = run_cli(settings, "verify", str(DATA / LTA), *common, "--at", "2020-11-01")
    assert holds.returncode == 0, holds.stderr
    answer = json.loads(holds.stdout)
    assert answer["ok"] is True and answer["roots_file"] == str(ROOT_PEM) and "Root CA" in answer["roots"][0]
    assert [s["kind"] for s in answer["signatures"]] == ["signature", "document timestamp"]
    expired = run_cli(settings, "verify", str(DATA / LTA), *common, "--at", "2026-06-01T00:00:00+08:00")
    assert expired.returncode == 1
    assert json.loads(expired.stdout)["signatures"][0]["failures"][0]["reason"] == "expired"
    for refused in (
        DATA / "coverage-anomalies-base.pdf",
        DATA / "signed-encrypted-pubkey-with-catalog-ref.pdf",
    ):
        done = run_cli(settings, "verify", str(refused), *common)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        said = json.loads(done.stdout)
        assert said["ok"] is False and said["error"] == "bad_input" and said["message"]
    missing = run_cli(settings, "verify", str(tmp_path / "none.pdf"), "--json")
    assert missing.returncode == 2 and "cannot read" in json.loads(missing.stdout)["message"]
    bad_time = run_cli(settings, "verify", str(DATA / LTA), "--json", "--at", "yesterday")
    assert bad_time.returncode == 2 and "ISO 8601" in json.loads(bad_time.stdout)["message"]
    words = run_cli(settings, "verify", str(DATA / "ed448-disallowed-hash.pdf"), "--roots", str(ROOT_PEM))
    assert words.returncode == 1
    assert "problem (disallowed_algorithm)" in words.stdout and "checked against 1 root(s) in" in words.stdout
    unrooted = run_cli(settings, "verify", str(DATA / LTA))
    assert unrooted.returncode == 1 and "checked against no roots (none found in" in unrooted.stdout


def test_the_public_check_takes_a_file_without_a_key_and_is_throttled(settings: Settings) -> None:
    settings = settings.model_copy(update={"trust_roots": ROOT_PEM})
    client = TestClient(create_app(settings), client=("198.51.100.23", 40000))
    data = (DATA / "ed448-disallowed-hash.pdf").read_bytes()
    answer = client.post("/verify", content=data, headers={"Content-Type": "application/pdf"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is False and body["signatures"][0]["failures"][0]["reason"] == "disallowed_algorithm"
    assert body["signatures"][0]["failures"][0]["zh"] and "Root CA" in body["roots"][0]
    refused = client.post("/verify", content=(DATA / "coverage-anomalies-base.pdf").read_bytes())
    assert refused.status_code == 422 and refused.json()["error"] == "bad_input"
    too_big = client.post("/verify", content=b"%PDF" + b"0" * settings.max_verify_bytes)
    assert too_big.status_code == 413
    answers = [client.post("/verify", content=b"").status_code for _ in range(30)]
    assert answers[-1] == 429 and set(answers[:-1]) <= {422, 429}


FULL_DATA = os.environ.get("PYHANKO_TEST_DATA")  # pyHanko's own test_data/data/pdf, to check all of it


@pytest.mark.skipif(not FULL_DATA, reason="set PYHANKO_TEST_DATA to pyHanko's test_data/data/pdf directory")
@pytest.mark.parametrize("moment", [EARLY, LATE], ids=["2020", "2026"])
def test_the_verifier_agrees_with_pyhanko_on_every_signed_file_of_its_test_data(moment: datetime) -> None:
    roots = load_roots(Path(FULL_DATA).parent / "crypto" / "testing-ca" / "root" / "root.cert.pem")
    signed = [p for p in sorted(Path(FULL_DATA).rglob("*.pdf")) if b"/ByteRange" in p.read_bytes()]
    assert len(signed) >= 34
    for path in signed:
        data = path.read_bytes()
        try:
            ours = {s.field: s.ok for s in verify(data, roots, moment=moment).signatures}
        except BadInput:
            ours = REFUSED
        assert ours == pyhanko_says(data, roots, moment), path.name
