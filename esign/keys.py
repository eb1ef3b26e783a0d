"""Signing keys: a clearly marked test CA and signing certificate for the embedded default.

`imaging keys init` writes, under ``<data dir>/keys``: ``ca.pem`` (the test root, which the verifier
trusts by default), ``signer.p12`` (the signing key and certificate with the CA in its chain) and
``signer.pass`` (the PKCS#12 passphrase, mode 0600). Production points IMAGING_SIGNING_PKCS12 at the
company's own PKCS#12, or IMAGING_PKCS11_* at an HSM, and IMAGING_TRUST_ROOTS at the roots to trust.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from errors import BadInput

TEST_MARK = "TEST ONLY - NOT FOR PRODUCTION"


class KeysExist(BadInput):
    """Keys are already there; refuse to overwrite them without --force."""

    error = "keys_exist"


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Imaging e-policy service"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_MARK),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def init_test_keys(directory: Path, force: bool = False, days: int = 3650) -> dict[str, Path]:
    """Return the paths of a new test CA, signing PKCS#12 and its passphrase file, written to directory."""
    paths = {
        "ca": directory / "ca.pem",
        "pkcs12": directory / "signer.p12",
        "passphrase": directory / "signer.pass",
    }
    if not force and any(p.exists() for p in paths.values()):
        raise KeysExist(f"signing keys already exist in {directory}; pass --force to replace them")
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"Imaging test root CA ({TEST_MARK})")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"Imaging e-policy signer ({TEST_MARK})"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days - 1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    passphrase = secrets.token_urlsafe(24)
    bundle = pkcs12.serialize_key_and_certificates(
        b"signer", key, cert, [ca], serialization.BestAvailableEncryption(passphrase.encode())
    )
    _write(paths["ca"], ca.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(paths["pkcs12"], bundle, 0o600)
    _write(paths["passphrase"], passphrase.encode(), 0o600)
    return paths


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
