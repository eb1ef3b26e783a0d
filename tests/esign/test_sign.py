"""Render, encrypt and sign an e-policy; judge it with pyHanko and with poppler's pdfsig, qpdf and pdffonts.
Keys from a PKCS#12 file made by `imaging keys init`, and from a SoftHSM2 token through PKCS#11."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from errors import BadInput
from esign.epolicy import EPolicyRequest, sample_request
from esign.keys import KeysExist, init_test_keys
from esign.render import render
from esign.sign import load_pkcs12, seal, signer_from_settings
from esign.verify import WrongPassword, load_roots, verify
from settings import Settings

PASSWORD = "150013"  # the last six characters of the holder's ID number


@dataclass(frozen=True)
class Keys:
    directory: Path
    ca: Path
    pkcs12: Path
    passphrase: bytes


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("keys")
    paths = init_test_keys(directory)
    return Keys(directory, paths["ca"], paths["pkcs12"], paths["passphrase"].read_bytes())


@pytest.fixture(scope="module")
def copies(keys: Keys):
    pdf = render(sample_request(), 1, "https://epolicy.example.com/verify/P2026110000123")
    return seal(pdf, load_pkcs12(keys.pkcs12, keys.passphrase), PASSWORD, "owner-only-secret")


def _pdfsig(data: bytes, tmp_path: Path, password: str | None = None) -> str:
    path = tmp_path / "checked.pdf"
    path.write_bytes(data)
    args = ["pdfsig", *(["-upw", password] if password else []), str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60).stdout


def test_keys_init_makes_a_marked_test_ca_and_never_overwrites(tmp_path: Path) -> None:
    paths = init_test_keys(tmp_path / "k")
    assert oct(paths["pkcs12"].stat().st_mode & 0o777) == "0o600"
    assert oct(paths["passphrase"].stat().st_mode & 0o777) == "0o600"
    key, cert, chain = pkcs12.load_key_and_certificates(
        paths["pkcs12"].read_bytes(), paths["passphrase"].read_bytes()
    )
    assert "TEST ONLY" in cert.subject.rfc4514_string() and len(chain) == 1
    with pytest.raises(KeysExist):
        init_test_keys(tmp_path / "k")
    assert init_test_keys(tmp_path / "k", force=True)["ca"].read_bytes() != chain[0].public_bytes(
        serialization.Encoding.PEM
    )


def test_the_same_data_renders_the_same_pdf_with_its_chinese_font_embedded(tmp_path: Path) -> None:
    policy, at = sample_request(), datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    first = render(policy, 1, "https://x/verify/1", at)
    assert render(EPolicyRequest.model_validate(policy.model_dump()), 1, "https://x/verify/1", at) == first
    assert render(policy, 2, "https://x/verify/1", at) != first
    assert render(policy, 1, "https://x/verify/1", at + timedelta(seconds=1)) != first  # 签章时间, dates
    (tmp_path / "p.pdf").write_bytes(first)
    fonts = subprocess.run(["pdffonts", str(tmp_path / "p.pdf")], capture_output=True, text=True).stdout
    truetype = [line for line in fonts.splitlines() if "TrueType" in line or "CID" in line]
    assert truetype and all(line.split()[-5] == "yes" for line in truetype), fonts  # the emb column
    text = subprocess.run(["pdftotext", str(tmp_path / "p.pdf"), "-"], capture_output=True, text=True).stdout
    assert "张三丰" in text and "康宁终身重大疾病保险" in text and "110105********0013" in text


def test_the_customer_copy_is_aes256_encrypted_and_its_signature_holds(
    copies, keys: Keys, tmp_path: Path
) -> None:
    path = tmp_path / "customer.pdf"
    path.write_bytes(copies.customer)
    assert subprocess.run(["qpdf", "--requires-password", str(path)]).returncode == 0
    shown = subprocess.run(
        ["qpdf", "--show-encryption", f"--password={PASSWORD}", str(path)], capture_output=True, text=True
    ).stdout
    assert "R = 6" in shown and "print high resolution: allowed" in shown
    assert "modify other: not allowed" in shown
    report = _pdfsig(copies.customer, tmp_path, PASSWORD)
    assert "Signature is Valid." in report and "Total document signed" in report, report
    checked = verify(copies.customer, load_roots(keys.ca), PASSWORD)
    assert checked.ok and checked.encrypted, checked
    (signature,) = checked.signatures
    assert signature.certified and signature.docmdp_ok and signature.modification_level == "NONE"
    assert "TEST ONLY" in signature.signer
    with pytest.raises(WrongPassword):
        verify(copies.customer, load_roots(keys.ca), "000000")


def test_the_archive_copy_is_signed_and_not_encrypted(copies, keys: Keys, tmp_path: Path) -> None:
    report = _pdfsig(copies.archive, tmp_path)
    assert "Signature is Valid." in report and "Total document signed" in report, report
    checked = verify(copies.archive, load_roots(keys.ca))
    assert checked.ok and not checked.encrypted
    untrusted = verify(copies.archive, [])
    assert not untrusted.ok and "not trusted" in untrusted.signatures[0].problems[0]


@pytest.mark.parametrize("copy", ["customer", "archive"])
def test_one_byte_changed_fails_both_validators(copies, keys: Keys, tmp_path: Path, copy: str) -> None:
    data = bytearray(getattr(copies, copy))
    data[len(data) // 3] ^= 0x01  # inside the first signed range
    password = PASSWORD if copy == "customer" else None
    report = _pdfsig(bytes(data), tmp_path, password)
    assert "Signature is Valid." not in report
    try:
        checked = verify(bytes(data), load_roots(keys.ca), password)
    except Exception as exc:  # a byte in an encrypted stream may break the file's structure instead
        assert type(exc).__name__ in ("BadInput", "WrongPassword"), exc
    else:
        assert not checked.ok


@pytest.mark.parametrize(
    ("offset", "damage"),
    [(10, b"\x01"), (0, b"00"), (8, b"00"), (30, b"00"), (100, b"ff")],
    ids=["not-hex", "content-info", "content-type", "signed-data", "signer-info"],
)
def test_a_damaged_signature_is_bad_input_not_a_crash(copies, keys: Keys, offset: int, damage: bytes) -> None:
    data = copies.archive
    # Each damages the CMS blob in /Contents, which pyHanko parses only while validating the signature.
    start = data.rindex(b"/Contents <") + len(b"/Contents <") + offset
    with pytest.raises(BadInput, match="damaged"):
        verify(data[:start] + damage + data[start + len(damage) :], load_roots(keys.ca))


def test_signing_through_pkcs11_in_softhsm2(
    keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = Path("/usr/lib/softhsm/libsofthsm2.so")
    if not module.exists():
        pytest.skip("needs softhsm2 (make system installs it)")
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    key, cert, _ = pkcs12.load_key_and_certificates(keys.pkcs12.read_bytes(), keys.passphrase)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for args in (
        ["--init-token", "--free", "--label", "imaging", "--pin", "1234", "--so-pin", "5678"],
        [
            "--import",
            str(tmp_path / "key.pem"),
            "--token",
            "imaging",
            "--label",
            "signer",
            "--id",
            "01",
            "--pin",
            "1234",
        ],
    ):
        done = subprocess.run(["softhsm2-util", *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    settings = Settings(
        data_dir=tmp_path,
        pkcs11_module=module,
        pkcs11_token="imaging",
        pkcs11_key_label="signer",
        pkcs11_pin="1234",
        pkcs11_cert=tmp_path / "cert.pem",
        trust_roots=keys.ca,
    )
    signer = signer_from_settings(settings)
    copies = seal(render(sample_request(), 1, "https://x/v"), signer, PASSWORD, "owner-secret")
    assert verify(copies.customer, load_roots(keys.ca), PASSWORD).ok
    report = _pdfsig(copies.archive, tmp_path)
    assert "Signature is Valid." in report and "Total document signed" in report, report


def test_the_commands_make_keys_write_a_sample_and_verify_a_pdf(copies, tmp_path: Path) -> None:
    import json

    from tests.conftest import run_cli

    settings = Settings(data_dir=tmp_path / "var")
    made = run_cli(settings, "keys", "init")
    assert made.returncode == 0, made.stderr
    assert "TEST" in made.stderr and (tmp_path / "var" / "keys" / "signer.p12").exists()
    again = run_cli(settings, "keys", "init")
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr
    sample = run_cli(settings, "samples", "epolicy", "--out", str(tmp_path / "p.json"))
    assert sample.returncode == 0
    assert EPolicyRequest.model_validate(json.loads((tmp_path / "p.json").read_text())) == sample_request()
    # The copies were signed with another test CA: valid, but not trusted by this data dir's roots.
    (tmp_path / "c.pdf").write_bytes(copies.customer)
    untrusted = run_cli(settings, "verify", str(tmp_path / "c.pdf"), "--password", PASSWORD)
    assert untrusted.returncode == 1 and "not trusted" in untrusted.stdout, untrusted.stdout
    assert "intact: True" in untrusted.stdout and "Traceback" not in untrusted.stderr
    locked = run_cli(settings, "verify", str(tmp_path / "c.pdf"))
    assert locked.returncode == 2 and "give its password" in locked.stderr
    (tmp_path / "a.pdf").write_bytes(copies.archive)
    trusted = Settings(data_dir=tmp_path / "var", trust_roots=next(tmp_path.parent.glob("keys*/ca.pem")))
    checked = run_cli(trusted, "verify", str(tmp_path / "a.pdf"), "--json")
    assert checked.returncode == 0, checked.stdout
    assert json.loads(checked.stdout)["signatures"][0]["certified"] is True


def _stamped(keys: Keys, url: str):
    from esign.sign import HttpTimeStamper

    signer = load_pkcs12(keys.pkcs12, keys.passphrase)
    return seal(
        render(sample_request(), 1, "https://x/v"), signer, PASSWORD, "owner", HttpTimeStamper(url, timeout=2)
    )


def test_with_a_tsa_the_signatures_carry_a_trusted_timestamp(keys: Keys, tsa, tmp_path: Path) -> None:
    before = len(tsa.requests)
    stamped = _stamped(keys, tsa.url)
    assert len(tsa.requests) - before == 2, "one timestamp per signed copy"
    roots = load_roots(keys.ca) + load_roots(tsa.root)
    for data, password in ((stamped.customer, PASSWORD), (stamped.archive, None)):
        checked = verify(data, roots, password)
        assert checked.ok, checked
        assert checked.signatures[0].timestamp is not None
        report = _pdfsig(data, tmp_path, password)
        assert "Signature is Valid." in report and "Total document signed" in report, report


def test_an_unreachable_tsa_is_a_dependency_down_so_the_job_retries(keys: Keys) -> None:
    from esign.sign import TimestampUnavailable
    from supervisor import free_port

    with pytest.raises(TimestampUnavailable, match="unreachable"):
        _stamped(keys, f"http://127.0.0.1:{free_port()}/tsa")


def test_a_timestamp_from_an_untrusted_tsa_is_reported(keys: Keys, tsa) -> None:
    stamped = _stamped(keys, tsa.url)
    checked = verify(stamped.archive, load_roots(keys.ca))  # the signer's root only
    assert not checked.ok
    assert checked.signatures[0].problems == [
        "the time-stamping authority is not trusted by the configured roots"
    ]


def test_the_signing_passphrase_never_shows_in_errors_settings_or_job_arguments(
    keys: Keys, tmp_path: Path
) -> None:
    from errors import ConfigError

    secret = "wrong-but-secret-passphrase-1234"
    with pytest.raises(ConfigError) as refused:
        load_pkcs12(keys.pkcs12, secret.encode())
    assert secret not in str(refused.value) and "wrong passphrase" in str(refused.value)
    settings = Settings(data_dir=tmp_path, signing_passphrase=secret, pkcs11_pin="987654")
    assert secret not in repr(settings) and secret not in str(settings.model_dump())
    assert "987654" not in repr(settings)
    import inspect

    import worker

    # The e-policy job is queued with the policy number and version only: nothing secret goes to Redis.
    assert list(inspect.signature(worker.issue_epolicy).parameters) == ["policy_no", "version"]
