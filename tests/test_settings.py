"""Settings come from IMAGING_* variables; a bad one stops start-up with one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from errors import ConfigError
from roles import Role
from settings import load_settings
from tests.conftest import ROOT


def test_the_embedded_default_needs_no_variables() -> None:
    s = load_settings()
    assert s.redis_url is None and s.s3_endpoint is None and s.smtp_host is None
    assert s.objects_dir.name == "objects" and s.outbox_dir.name == "outbox"


def test_api_keys_are_parsed_into_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGING_API_KEYS", "a" * 16 + ":scanner, " + "b" * 16 + ":admin")
    assert load_settings().keys == {"a" * 16: Role.scanner, "b" * 16: Role.admin}


def test_a_dotenv_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("IMAGING_S3_BUCKET=from-dotenv\n")
    assert load_settings().s3_bucket == "from-dotenv"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("IMAGING_S3_SECURE", "maybe", "valid boolean"),
        ("IMAGING_SMTP_PORT", "99999", "less than or equal"),
        ("IMAGING_API_KEYS", "k" * 20 + ":janitor", "role 'janitor'"),
        ("IMAGING_API_KEYS", "short:admin", "shorter than 16"),
        ("IMAGING_S3_ENDPOINT", "http://minio:9000", "without a scheme"),
        ("IMAGING_RETRY_INTERVALS", "5,x", "pattern"),
        ("IMAGING_TRUSTED_PROXIES", "10.0.0.5,proxy.internal", "'proxy.internal' is not an IP address"),
    ],
)
def test_a_bad_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.message.startswith(name + ": ")
    assert says in caught.value.message


def test_the_cli_stops_on_a_bad_setting_with_one_line_and_exit_code_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "jobs", "failed"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "IMAGING_S3_SECURE": "maybe"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "imaging: IMAGING_S3_SECURE: Input should be a valid boolean, unable to interpret input"
    ]
