"""PAdES B-LT and B-LTA against a real CA: certomancer serves the OCSP responder, the CRLs and the
time-stamping authority over HTTP on a free port, from a configuration written here; the signed copies
are then validated by pyHanko with that server stopped (nothing may be fetched)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from esign.epolicy import sample_request
from esign.render import render
from esign.sign import long_term_from_settings, seal, signer_from_settings, timestamper_from_settings
from settings import Settings
from supervisor import free_port
from tests.servers import wait_until

PASSWORD = "150013"
ARCH = "epolicy-ca"


def _config(prefix: str, now: datetime) -> str:
    """Return a certomancer configuration: root, intermediate, OCSP responder, TSA and signer."""
    start, end = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+0000"), now + timedelta(days=730)
    end = end.strftime("%Y-%m-%dT%H:%M:%S+0000")
    validity = f'validity: {{valid-from: "{start}", valid-to: "{end}"}}'
    keys = "\n".join(f"      {k}: {{path: {k}.key.pem}}" for k in ("root", "interm", "ocsp", "tsa", "signer"))
    return f"""external-url-prefix: "{prefix}"
keysets:
  {ARCH}:
    path-prefix: keys
    keys:
{keys}
pki-architectures:
  {ARCH}:
    keyset: {ARCH}
    entity-defaults: {{country-name: CN, organization-name: Test e-policy CA (tests only)}}
    entities:
      root: {{common-name: Test root}}
      interm: {{common-name: Test intermediate}}
      ocsp: {{common-name: Test OCSP responder}}
      tsa: {{common-name: Test TSA}}
      signer: {{common-name: Test e-policy signer}}
    certs:
      root:
        subject: root
        issuer: root
        {validity}
        extensions:
          - {{id: basic_constraints, critical: true, value: {{ca: true}}}}
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature, key_cert_sign, crl_sign]}}
      interm:
        issuer: root
        {validity}
        extensions:
          - {{id: basic_constraints, critical: true, value: {{ca: true, path-len-constraint: 0}}}}
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature, key_cert_sign, crl_sign]}}
          - id: crl_distribution_points
            smart-value: {{schema: crl-dist-url, params: {{crl-repo-names: [root]}}}}
      ocsp:
        issuer: interm
        {validity}
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature]}}
          - {{id: extended_key_usage, critical: true, value: [ocsp_signing]}}
          - id: ocsp_no_check
      tsa:
        issuer: root
        {validity}
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature]}}
          - {{id: extended_key_usage, critical: true, value: [time_stamping]}}
          - id: crl_distribution_points
            smart-value: {{schema: crl-dist-url, params: {{crl-repo-names: [root]}}}}
      signer:
        issuer: interm
        {validity}
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature, non_repudiation]}}
          - {{id: extended_key_usage, value: [email_protection]}}
          - id: crl_distribution_points
            smart-value: {{schema: crl-dist-url, params: {{crl-repo-names: [interm]}}}}
          - id: authority_information_access
            smart-value: {{schema: aia-urls, params: {{ocsp-responder-names: [interm]}}}}
    services:
      ocsp:
        interm: {{for-issuer: interm, responder-cert: ocsp, signing-key: ocsp}}
      crl-repo:
        root: {{for-issuer: root, signing-key: root, simulated-update-schedule: "P30D"}}
        interm: {{for-issuer: interm, signing-key: interm, simulated-update-schedule: "P7D"}}
      time-stamping:
        tsa: {{signing-key: tsa, signing-cert: tsa}}
"""


@dataclass
class RealCA:
    directory: Path
    url: str
    process: subprocess.Popen

    @property
    def tsa_url(self) -> str:
        return f"{self.url}/{ARCH}/tsa/tsa"

    def settings(self, level: str) -> Settings:
        return Settings(
            data_dir=self.directory / "var",
            signing_pkcs12=self.directory / "signer.pfx",
            signing_passphrase="secret",
            trust_roots=self.directory / "root.pem",
            tsa_url=self.tsa_url,
            pades_level=level,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@contextmanager
def certomancer_ca(directory: Path) -> Iterator[RealCA]:
    """Run certomancer's animator on a free port from a configuration and keys made in directory: OCSP,
    CRLs and a TSA for a root, an intermediate and a signer (also used by bench/epolicy_bench.py)."""
    from certomancer.registry import ArchLabel, CertLabel, CertomancerConfig

    (directory / "keys").mkdir(parents=True)
    for name in ("root", "interm", "ocsp", "tsa", "signer"):
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (directory / "keys" / f"{name}.key.pem").write_bytes(pem)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = directory / "certomancer.yml"
    config.write_text(_config(url, datetime.now(UTC)))
    found = CertomancerConfig.from_file(str(config), key_search_dir=str(directory))
    arch = found.get_pki_arch(ArchLabel(ARCH))
    (directory / "signer.pfx").write_bytes(arch.package_pkcs12(CertLabel("signer"), password=b"secret"))
    (directory / "root.pem").write_bytes(_pem(arch.get_cert(CertLabel("root")).dump()))
    certomancer = Path(sys.executable).with_name("certomancer")
    process = subprocess.Popen(
        [str(certomancer), "--config", str(config), "--key-root", str(directory)]
        + ["animate", "--port", str(port)],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ca = RealCA(directory, url, process)
    try:
        wait_until(lambda: _answers(f"{url}/{ARCH}/crls/interm/latest.crl"), 30, "certomancer's animator")
        yield ca
    finally:
        ca.stop()


@pytest.fixture(scope="module")
def real_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCA]:
    with certomancer_ca(tmp_path_factory.mktemp("real-ca")) as ca:
        yield ca


def _pem(der: bytes) -> bytes:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _sealed(ca: RealCA, level: str):
    settings = ca.settings(level)
    pdf = render(sample_request(), 1, "https://x/verify/P2026110000123?v=1")
    return seal(
        pdf,
        signer_from_settings(settings),
        PASSWORD,
        "owner",
        timestamper_from_settings(settings),
        long_term=long_term_from_settings(settings),
    )


def _offline_status(data: bytes, root_pem: Path, password: str | None = None):
    """Return pyHanko's AdES long-term validation of the signature, fetching nothing (the CA is off)."""
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )
    from pyhanko_certvalidator.registry import SimpleTrustManager

    required = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[load_cert_from_pemder(str(root_pem))]),
        revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(required, required)),
    )
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(RevinfoOnlineFetchingRule.LOCAL_ONLY),
        )
    )
    reader = PdfFileReader(io.BytesIO(data))
    if password:
        reader.decrypt(password)
    (signature,) = reader.embedded_regular_signatures
    return reader, asyncio.run(ades_lta_validation(signature, spec))


def test_b_lt_embeds_the_signers_certificate_status_and_no_document_timestamp(real_ca: RealCA) -> None:
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    copies = _sealed(real_ca, "B-LT")
    root = load_cert_from_pemder(str(real_ca.directory / "root.pem"))
    for data, password in ((copies.archive, None), (copies.customer, PASSWORD)):
        reader = PdfFileReader(io.BytesIO(data))
        if password:
            reader.decrypt(password)
        dss = reader.root["/DSS"]
        assert len(dss["/OCSPs"]) >= 1 and len(dss["/Certs"]) >= 2, dict(dss)
        assert not reader.embedded_timestamp_signatures
        # Status required, nothing fetched: what the DSS holds must be enough.
        context = DocumentSecurityStore.read_dss(reader).as_validation_context(
            {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "hard-fail"}
        )
        status = validate_pdf_signature(reader.embedded_regular_signatures[0], context)
        assert status.bottom_line and status.timestamp_validity is not None, status.pretty_print_details()


def test_roots_that_do_not_reach_the_tsa_are_a_configuration_error(real_ca: RealCA, tsa) -> None:
    from errors import ConfigError

    with pytest.raises(ConfigError, match="IMAGING_TRUST_ROOTS"):  # a setting to fix, not a wait
        _seal_as(_with_the_tests_tsa(real_ca, tsa, real_ca.directory / "root.pem"))


def test_b_lta_copies_are_validated_with_the_ca_offline(real_ca: RealCA, tmp_path: Path) -> None:
    from pyhanko.sign.ades.report import AdESPassed

    copies = _sealed(real_ca, "B-LTA")
    real_ca.stop()  # from here on nothing can be fetched: the validation data must be in the files
    for data, password in ((copies.archive, None), (copies.customer, PASSWORD)):
        reader, result = _offline_status(data, real_ca.directory / "root.pem", password)
        assert result.ades_subindic == AdESPassed.OK, result
        assert "/DSS" in reader.root and len(reader.embedded_timestamp_signatures) == 1
        (tmp_path / "copy.pdf").write_bytes(data)
        args = ["pdfsig", *(["-upw", password] if password else []), str(tmp_path / "copy.pdf")]
        report = subprocess.run(args, capture_output=True, text=True, timeout=60).stdout
        # poppler checks the signature (the DSS and the timestamp came after it) and lists the document
        # timestamp, which it does not verify itself (nor, in the encrypted copy, read its signer).
        first, timestamp = report.split("Signature #2:")
        assert "Signature is Valid." in first and "Not total document signed" in first, report
        assert password or "Test TSA" in timestamp, report
    # A byte changed in the signed part breaks it, validation data or not.
    broken = bytearray(copies.archive)
    broken[len(broken) // 4] ^= 0x01
    try:
        _, result = _offline_status(bytes(broken), real_ca.directory / "root.pem")
    except Exception as exc:  # the change may break the file's structure instead
        assert "Signature" in type(exc).__name__ or "Pdf" in type(exc).__name__, exc
    else:
        assert result.ades_subindic != AdESPassed.OK


def _with_the_tests_tsa(ca: RealCA, tsa, roots: Path) -> Settings:
    settings = ca.settings("B-LT").model_dump()
    return Settings(**{**settings, "tsa_url": tsa.url, "trust_roots": roots})


def _seal_as(settings: Settings):
    return seal(
        render(sample_request(), 1, "https://x/v"),
        signer_from_settings(settings),
        PASSWORD,
        "owner",
        timestamper_from_settings(settings),
        long_term=long_term_from_settings(settings),
    )


def test_with_the_ca_down_b_lt_signing_is_retried_not_done_without_status(
    real_ca: RealCA, tsa, tmp_path: Path
) -> None:
    from esign.sign import RevocationUnavailable

    real_ca.stop()  # the OCSP responder and the CRLs are away; the tests' own TSA still answers
    roots = tmp_path / "roots.pem"
    roots.write_bytes((real_ca.directory / "root.pem").read_bytes() + tsa.root.read_bytes())
    with pytest.raises(RevocationUnavailable, match="OCSP or CRL"):
        _seal_as(_with_the_tests_tsa(real_ca, tsa, roots))
