"""Trust shown honestly: what a check rests on, a TEST certificate named as one, a QR code that names the
version it was printed for, and production refusing TEST keys and plain connections."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image

from api import create_app
from errors import ConfigError
from esign.epolicy import sample_request
from esign.keys import TEST_MARK
from settings import Settings, load_settings
from tests.conftest import SALES_KEY, SERVICING_KEY, UNDERWRITER_KEY, run_cli, run_worker_burst
from tests.esign.test_epolicy_flow import mail_settings  # noqa: F401  (the fixture)


def _qr_text(pdf: bytes, tmp_path: Path) -> str:
    """Return what the QR code printed on the PDF's first page says, read from the page as an image."""
    (tmp_path / "p.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "200", "-png", "-f", "1", "-l", "1", "p.pdf", "p"], cwd=tmp_path, check=True
    )
    (page,) = tmp_path.glob("p-*.png")
    found = [r.text for r in zxingcpp.read_barcodes(Image.open(page)) if "/verify/" in r.text]
    assert found, "no QR code pointing at /verify on the first page"
    return found[0]


def test_a_signed_policy_says_what_its_check_rests_on_and_its_qr_code_names_its_version(
    mail_settings: Settings,  # noqa: F811
    tmp_path: Path,
) -> None:
    client = TestClient(create_app(mail_settings))
    body = sample_request().model_dump(mode="json")
    assert client.post("/v1/epolicies", json=body, headers={"X-API-Key": SALES_KEY}).status_code == 202
    assert run_worker_burst(mail_settings).returncode == 0
    archive = client.get("/v1/epolicies/P2026110000123/pdf", headers={"X-API-Key": UNDERWRITER_KEY}).content

    checked = client.post(
        "/v1/verify", content=archive, headers={"X-API-Key": SERVICING_KEY, "Content-Type": "application/pdf"}
    ).json()
    (signature,) = checked["signatures"]
    assert signature["trusted"] is True and signature["test_only"] is True
    assert TEST_MARK in signature["trusted_by"]

    url = _qr_text(archive, tmp_path)
    path = url.split("://", 1)[1].split("/", 1)[1]
    shown = client.get("/" + path)
    assert shown.status_code == 200, shown.text
    assert "第 1 版" in shown.text and "500000.00" in shown.text and "张**" in shown.text
    digest = re.search(r"d=([0-9a-f]+)", path).group(1)
    other = "0" * len(digest) if digest != "0" * len(digest) else "1" * len(digest)
    doctored = client.get("/" + path.replace(digest, other))
    assert doctored.status_code == 404 and "不符" in doctored.text
    assert client.get("/" + path.replace("v=1", "v=2")).status_code == 404


def test_the_public_check_is_throttled_per_address(mail_settings: Settings) -> None:  # noqa: F811
    client = TestClient(create_app(mail_settings), client=("198.51.100.9", 40000))
    answers = [client.get("/verify/P2026110000999").status_code for _ in range(31)]
    assert answers[:30] == [404] * 30 and answers[30] == 429


def _production(settings: Settings, **changes: object) -> Settings:
    base = {
        "env": "production",
        "s3_endpoint": "s3.example.internal:443",
        "s3_secure": True,
        "index_secret": "i" * 32,
        "token_secret": "t" * 32,
        "public_url": "https://epolicy.insurer.example",
    }
    return settings.model_copy(update={**base, **changes})


def test_production_refuses_a_test_key_plain_s3_and_names_the_setting(mail_settings: Settings) -> None:  # noqa: F811
    refusals = [
        (_production(mail_settings, redis_url=None), "IMAGING_REDIS_URL"),
        (_production(mail_settings, smtp_host=None), "IMAGING_SMTP_HOST"),
        (_production(mail_settings, public_url=""), "IMAGING_PUBLIC_URL"),
        (_production(mail_settings, s3_endpoint=None), "IMAGING_S3_ENDPOINT"),
        (_production(mail_settings, s3_secure=False), "IMAGING_S3_SECURE"),
        (_production(mail_settings, index_secret=None), "IMAGING_INDEX_SECRET"),
        (_production(mail_settings, token_secret=None), "IMAGING_TOKEN_SECRET"),
        (_production(mail_settings), "IMAGING_SIGNING_PKCS12"),
    ]
    for settings, variable in refusals:
        with pytest.raises(ConfigError, match=variable):
            create_app(settings)
    started = run_cli(_production(mail_settings), "api", "--port", "1", timeout=60)
    assert started.returncode == 2
    assert TEST_MARK in started.stderr and "Traceback" not in started.stderr


def test_an_smtp_login_without_tls_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="IMAGING_SMTP_USER.*IMAGING_SMTP_STARTTLS"):
        load_settings(smtp_host="mail.example.internal", smtp_user="epolicy", smtp_password="secret")
    assert load_settings(smtp_host="m", smtp_user="epolicy", smtp_starttls=True).smtp_user == "epolicy"
