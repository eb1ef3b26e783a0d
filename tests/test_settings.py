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


def test_api_keys_may_come_from_a_file_beside_those_in_the_environment(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "api.keys"
    keys.write_text("a" * 16 + ":scanner\n" + "c" * 16 + ":keyer, " + "d" * 16 + ":sales\n\n")
    monkeypatch.setenv("IMAGING_API_KEYS", "b" * 16 + ":admin")
    monkeypatch.setenv("IMAGING_API_KEYS_FILE", str(keys))
    assert load_settings().keys == {
        "a" * 16: Role.scanner,
        "b" * 16: Role.admin,
        "c" * 16: Role.keyer,
        "d" * 16: Role.sales,
    }


@pytest.mark.parametrize(("text", "says"), [(None, "cannot read"), ("k" * 20 + ":janitor", "role 'janitor'")])
def test_a_bad_api_keys_file_names_the_variable(
    tmp_path, monkeypatch: pytest.MonkeyPatch, text: str | None, says: str
) -> None:
    keys = tmp_path / "api.keys"
    if text is not None:
        keys.write_text(text)
    monkeypatch.setenv("IMAGING_API_KEYS_FILE", str(keys))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.message.startswith("IMAGING_API_KEYS_FILE: ") and says in caught.value.message


def test_the_embedded_default_takes_the_admin_key_imaging_up_keeps_in_the_data_dir(tmp_path) -> None:
    (tmp_path / "admin.key").write_text("e" * 43 + "\n")
    assert load_settings(data_dir=tmp_path).keys == {"e" * 43: Role.admin}
    assert load_settings(data_dir=tmp_path, env="production").keys == {}, "production names its keys"
    assert load_settings(data_dir=tmp_path / "elsewhere").keys == {}


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
