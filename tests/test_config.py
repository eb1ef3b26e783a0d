"""What operators read and give: secrets as files, `imaging config check` with secrets masked, the README's
Settings table made from the settings themselves, and production stopping when a part does not answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

import production
import settings as settings_module
from errors import ConfigError
from settings import SECRET_FILES, Settings, load_settings
from storage.s3 import S3Store
from supervisor import free_port
from tests.conftest import ROOT, run_cli

README = ROOT / "README.md"


def test_the_readme_settings_table_is_the_one_the_settings_make() -> None:
    text = README.read_text(encoding="utf-8")
    assert settings_module.with_table(text) == text, (
        "the README's Settings table differs from the settings: run `imaging config table --write README.md`"
    )
    for name in Settings.model_fields:
        assert f"| `IMAGING_{name.upper()}` |" in text


def test_a_setting_without_a_description_fails_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Settings.model_fields["job_timeout"], "description", None)
    with pytest.raises(ValueError, match="IMAGING_JOB_TIMEOUT: give it a description"):
        settings_module.settings_table()


def test_the_table_command_rewrites_only_the_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    stale = f"# x\n\n{settings_module.TABLE_START}\n| old |\n{settings_module.TABLE_END}\nafter\n"
    readme.write_text(stale)
    done = run_cli(Settings(), "config", "table", "--write", str(readme))
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert "| old |" not in text and text.startswith("# x\n") and text.endswith("after\n")
    assert "| `IMAGING_PUBLIC_URL` | `http://<api host>:<api port>` |" in text


@pytest.mark.parametrize("name", SECRET_FILES)
def test_each_secret_may_be_given_as_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    value = "redis://:pw-from-file@10.0.0.9:6379/0" if name == "redis_url" else "from-a-file-" + name
    (tmp_path / "secret").write_text(value + "\n")
    monkeypatch.setenv(f"IMAGING_{name.upper()}_FILE", str(tmp_path / "secret"))
    got = getattr(load_settings(), name)
    assert (got if isinstance(got, str) else got.get_secret_value()) == value


def test_a_secret_file_that_cannot_be_read_or_doubles_the_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IMAGING_TOKEN_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match=r"^IMAGING_TOKEN_SECRET_FILE: cannot read .*absent: No such file"):
        load_settings()
    (tmp_path / "present").write_text("t" * 32)
    monkeypatch.setenv("IMAGING_TOKEN_SECRET_FILE", str(tmp_path / "present"))
    monkeypatch.setenv("IMAGING_TOKEN_SECRET", "x" * 32)
    with pytest.raises(
        ConfigError, match="^IMAGING_TOKEN_SECRET: set it or IMAGING_TOKEN_SECRET_FILE, not both"
    ):
        load_settings()


def test_config_check_prints_what_is_in_force_with_every_secret_masked(tmp_path: Path) -> None:
    secrets = {
        "IMAGING_S3_SECRET_KEY": "s3-secret-value-123",
        "IMAGING_SMTP_PASSWORD": "smtp-secret-value-456",
        "IMAGING_API_KEYS": "admin-key-" + "z" * 20 + ":admin",
        "IMAGING_PKCS11_PIN": "987654",
    }
    (tmp_path / "token").write_text("token-secret-value-789")
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "IMAGING_REDIS_URL": "redis://app:redis-password-000@10.0.0.9:6379/0",
        "IMAGING_TOKEN_SECRET_FILE": str(tmp_path / "token"),
        "IMAGING_SMTP_HOST": "mail.example.internal",
        **secrets,
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli", "config", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for value in [*secrets.values(), "redis-password-000", "token-secret-value-789"]:
        assert value not in out + done.stderr
    lines = dict(line.split("=", 1) for line in out.splitlines())
    assert lines["IMAGING_REDIS_URL"] == "redis://app:***@10.0.0.9:6379/0"
    assert lines["IMAGING_S3_SECRET_KEY"] == lines["IMAGING_TOKEN_SECRET"] == "*** (set)"
    assert lines["IMAGING_API_KEYS"] == "*** (1 keys: admin)"
    assert lines["IMAGING_SMTP_HOST"] == "mail.example.internal"
    assert lines["IMAGING_JOB_TIMEOUT"] == "600  (default)"
    assert len(lines) == len(Settings.model_fields)


def test_config_check_in_production_exits_2_naming_the_variable(tmp_path: Path) -> None:
    done = run_cli(Settings(env="production", data_dir=tmp_path), "config", "check")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("imaging: IMAGING_REDIS_URL: not set")
    assert "IMAGING_ENV=production" in done.stdout


def test_production_stops_when_redis_or_the_store_does_not_answer(settings: Settings, s3_store) -> None:
    live = Redis.from_url(settings.redis_url)
    prod = settings.model_copy(
        update={"env": "production", "redis_url": "redis://:hunter2-secret@127.0.0.1:1/0"}
    )
    with pytest.raises(
        ConfigError, match=r"^IMAGING_REDIS_URL: redis://:\*\*\*@127.0.0.1:1/0 does not answer"
    ) as e:
        production.check_parts(prod, s3_store, Redis.from_url(prod.redis_url, socket_connect_timeout=1))
    assert "hunter2" not in e.value.message
    dead_store = S3Store(f"127.0.0.1:{free_port()}", "test", "test", "nothere")
    with pytest.raises(ConfigError, match="^IMAGING_S3_ENDPOINT: the store does not answer"):
        production.check_parts(prod, dead_store, live)
    production.check_parts(prod, s3_store, live)  # both answer: nothing raised
    production.check_parts(settings, dead_store, live)  # the embedded default does not check


def test_production_stops_when_the_pkcs11_token_does_not_open(
    settings: Settings, s3_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = Path("/usr/lib/softhsm/libsofthsm2.so")
    if not module.exists():
        pytest.skip("needs softhsm2 (make system installs it)")
    (tmp_path / "tokens").mkdir()
    (tmp_path / "softhsm2.conf").write_text(f"directories.tokendir = {tmp_path / 'tokens'}\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(tmp_path / "softhsm2.conf"))
    (tmp_path / "cert.pem").write_text("")
    prod = settings.model_copy(
        update={
            "env": "production",
            "pkcs11_module": module,
            "pkcs11_token": "no-such-token",
            "pkcs11_key_label": "signer",
            "pkcs11_cert": tmp_path / "cert.pem",
        }
    )
    with pytest.raises(ConfigError, match="^IMAGING_PKCS11_MODULE: cannot open the signing key 'signer': "):
        production.check_parts(prod, s3_store, Redis.from_url(settings.redis_url))
