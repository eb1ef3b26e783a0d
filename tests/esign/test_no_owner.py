"""The worker's customer copy has no owner password (random /O and /OE, no owner hashes): the holder's
password opens it in qpdf, pdfsig and pyHanko, as the user's, with the customer's permissions; no other
password opens it, and a byte changed breaks its signature."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from pyhanko.pdf_utils.crypt import AuthStatus
from pyhanko.pdf_utils.reader import PdfFileReader

from esign.epolicy import sample_request
from esign.keys import init_test_keys
from esign.render import render
from esign.sign import load_pkcs12, seal

PASSWORD = "150013"


@pytest.fixture(scope="module")
def customer(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    paths = init_test_keys(tmp_path_factory.mktemp("keys"))
    signer = load_pkcs12(paths["pkcs12"], paths["passphrase"].read_bytes())
    pdf = render(sample_request(), 1, "https://epolicy.example.com/verify/P2026110000123")
    return seal(pdf, signer, PASSWORD, None).customer


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_the_holders_password_opens_it_as_the_user_and_no_other_does(customer: bytes, tmp_path: Path) -> None:
    path = tmp_path / "c.pdf"
    path.write_bytes(customer)
    shown = _run("qpdf", f"--password={PASSWORD}", "--show-encryption", str(path))
    assert shown.returncode == 0, shown.stderr
    assert "R = 6" in shown.stdout and "user password" in shown.stdout.lower()
    assert "modify anything: not allowed" in shown.stdout and "print high resolution: allowed" in shown.stdout
    assert _run("qpdf", f"--password={PASSWORD}", "--check", str(path)).returncode == 0
    for wrong in ("", "owner", "150014"):
        assert _run("qpdf", f"--password={wrong}", "--check", str(path)).returncode == 2
    reader = PdfFileReader(io.BytesIO(customer))
    assert reader.decrypt(PASSWORD).status == AuthStatus.USER
    assert PdfFileReader(io.BytesIO(customer)).decrypt("owner").status == AuthStatus.FAILED


def test_pdfsig_finds_it_signed_and_a_changed_byte_breaks_it(customer: bytes, tmp_path: Path) -> None:
    path = tmp_path / "c.pdf"
    path.write_bytes(customer)
    out = _run("pdfsig", "-upw", PASSWORD, str(path)).stdout
    assert "Signature is Valid" in out, out
    at = customer.index(b"stream\n") + 40  # inside the first stream: covered by the signature
    changed = customer[:at] + bytes([customer[at] ^ 1]) + customer[at + 1 :]
    path.write_bytes(changed)
    assert "Signature is Valid" not in _run("pdfsig", "-upw", PASSWORD, str(path)).stdout
