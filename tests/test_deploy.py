"""The deployment guide's files and shape (docs/deploy.md): systemd units that verify and give the warm
shutdown its time, `imaging worker --processes N`, the service as separate processes in production mode,
and a backup restored into an empty Redis and bucket."""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis
from rq import Worker

import keyentry
from cli import imaging
from errors import DependencyDown
from esign.epolicy import sample_request
from models import DocumentRecord
from settings import Settings
from storage import ObjectStore, open_store
from storage.s3 import S3Store
from supervisor import free_port
from tests.conftest import ADMIN_KEY, ROOT, SALES_KEY, SCANNER_KEY, UNDERWRITER_KEY, settings_env
from tests.esign.test_epolicy_flow import mail_settings  # noqa: F401  (the fixture)
from tests.ocr.conftest import document  # noqa: F401  (the fixture)
from tests.samples import sample_stack
from tests.servers import MailServer, redis_server, tls_files, wait_until, weed_port

UNITS = ROOT / "deploy" / "systemd"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_the_systemd_units_verify_and_run_commands_that_exist(tmp_path: Path) -> None:
    imaging_bin = Path(sys.executable).with_name("imaging")
    units = ("imaging-api.service", "imaging-worker@.service", "imaging-worker-immediate.service")
    for unit in (*units, "imaging-mailbox.service"):
        text = (UNITS / unit).read_text().replace("/opt/imaging/.venv/bin/imaging", str(imaging_bin))
        (tmp_path / unit.replace("@.", "@1.")).write_text(text)
        checked = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / unit.replace("@.", "@1."))],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr
        command = _unit(unit)["Service"]["ExecStart"].split()[1:]
        args = [a.replace("%H", "host").replace("%i", "1") for a in command]
        imaging.commands[args[0]].make_context(args[0], args[1:])  # raises on an unknown option or value


def test_the_worker_unit_gives_the_warm_shutdown_the_job_timeout() -> None:
    service = _unit("imaging-worker@.service")["Service"]
    assert int(service["TimeoutStopSec"]) > Settings().job_timeout
    assert service["KillMode"] == "mixed", "SIGTERM to the worker alone: it finishes its job in hand"
    assert "--name %H-%i" in service["ExecStart"]


def test_processes_runs_named_workers_and_starts_again_one_that_dies(settings: Settings) -> None:
    conn = Redis.from_url(settings.redis_url)

    def live() -> dict[str, int]:
        return {w.name: w.pid for w in Worker.all(connection=conn) if w.death_date is None}

    parent = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", "--processes", "2", "--name", "hostx"],
        env=settings_env(settings),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: {"hostx-1", "hostx-2"} <= set(live()), 120, "two workers named hostx-1, hostx-2")
        first = live()["hostx-1"]
        time.sleep(3)  # past RQ's start-up, when its signal handlers are in place
        os.kill(first, signal.SIGKILL)  # a crash
        wait_until(lambda: live().get("hostx-1") not in (None, first), 120, "hostx-1 started again")
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.wait(90)
    assert parent.returncode == 0
    wait_until(lambda: not live(), 30, "every worker to end its registration")


@contextlib.contextmanager
def _s3_over_tls(directory: Path, cert: Path, key: Path) -> Iterator[str]:
    """Run SeaweedFS with its S3 API over HTTPS (the certificate for 127.0.0.1); yield host:port."""
    ports = {p: weed_port() for p in ("s3", "https", "master", "volume", "filer")}
    directory.mkdir(parents=True)
    with (directory / "weed.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("weed")), "server", f"-dir={directory}", "-s3",
                f"-s3.port={ports['s3']}", f"-s3.port.https={ports['https']}",
                f"-s3.cert.file={cert}", f"-s3.key.file={key}",
                f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
                f"-filer.port={ports['filer']}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.volumeSizeLimitMB=64", "-volume.max=0", "-s3.port.iceberg=0", "-s3.port.lance=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    endpoint = f"127.0.0.1:{ports['https']}"
    try:
        probe = S3Store(endpoint, "test", "test", "probe", secure=True)

        def answers() -> bool:
            try:
                probe.ping()
                return True
            except DependencyDown:
                return False

        wait_until(answers, 90, f"SeaweedFS S3 over HTTPS on {endpoint}")
        yield endpoint
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def _company_keys(directory: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Return a CA and a signing PKCS#12 that production takes: made like the test keys, but not marked
    TEST (the processes under test check the subject against the real mark)."""
    import esign.keys

    monkeypatch.setattr(esign.keys, "TEST_MARK", "Insurer e-policy signing (test run)")
    return esign.keys.init_test_keys(directory)


def _get(base: str, path: str, key: str, **kw) -> httpx.Response:
    return httpx.get(base + path, headers={"X-API-Key": key}, timeout=30, **kw)


def test_the_service_as_separate_processes_in_production_mode_works_across_hosts(
    settings: Settings, smtp_srv: MailServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = tls_files(tmp_path, "imaging deploy test CA")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # for the probe here; the processes get it below
    keys = _company_keys(tmp_path / "etc" / "keys", monkeypatch)
    smtp_srv.messages.clear()
    with _s3_over_tls(tmp_path / "s3", cert, key) as endpoint:
        production = settings.model_copy(
            update={
                "env": "production",
                "s3_endpoint": endpoint,
                "s3_secure": True,
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_srv.port,
                "public_url": "https://epolicy.insurer.example",
                "token_secret": "t" * 40,
                "index_secret": "i" * 40,
                "signing_pkcs12": keys["pkcs12"],
                "signing_passphrase_file": keys["passphrase"],
                "trust_roots": keys["ca"],
            }
        )
        procs: list[subprocess.Popen] = []

        def start(host: str, *args: str) -> None:
            home = tmp_path / host  # each process in its own directory, as on its own machine
            home.mkdir()
            env = {
                **settings_env(production),
                "SSL_CERT_FILE": str(ca),
                "IMAGING_DATA_DIR": str(home / "var"),
            }
            log = (home / "out.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "cli", *args],
                    env=env,
                    cwd=home,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

        ports = [free_port(), free_port()]
        apis = [f"http://127.0.0.1:{p}" for p in ports]
        try:
            start("api-a", "api", "--port", str(ports[0]))
            start("api-b", "api", "--port", str(ports[1]))
            start("worker-c", "worker", "--name", "worker-c-1")
            start("worker-d", "worker", "--name", "worker-d-1")

            def ready(base: str) -> bool:
                try:
                    return httpx.get(base + "/readyz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(lambda: all(ready(b) for b in apis), 180, "both APIs ready (every queue has a worker)")
            _scan_and_epolicy_across(apis, smtp_srv)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(90)
        logs = "".join(
            (tmp_path / h / "out.log").read_text() for h in ("api-a", "api-b", "worker-c", "worker-d")
        )
        assert "Traceback" not in logs, logs[-3000:]
        assert not (tmp_path / "worker-c" / "var" / "outbox").exists(), "no local outbox in production"


def _scan_and_epolicy_across(apis: list[str], smtp_srv: MailServer) -> None:
    a, b = apis
    sent = httpx.post(
        a + "/v1/scans",
        files=[("file", ("stack.tif", sample_stack(), "image/tiff"))],
        data={"mode": "immediate", "policy_no": "PH2026000777"},
        headers={"X-API-Key": SCANNER_KEY},
        timeout=60,
    )
    assert sent.status_code == 202, sent.text
    scan_id = sent.json()["scan_id"]
    wait_until(
        lambda: _get(b, f"/v1/scans/{scan_id}", ADMIN_KEY).json()["status"] == "captured", 180, "captured"
    )
    found = _get(b, "/v1/documents", UNDERWRITER_KEY, params={"policy_no": "PH2026000777"}).json()
    assert {d["type"] for d in found["documents"]} == {"application_form", "idcard_front"}, found
    page = _get(b, f"/v1/documents/{found['documents'][0]['doc_id']}/pages/1", UNDERWRITER_KEY)
    assert page.status_code == 200 and page.content.startswith(b"\x89PNG")

    body = sample_request().model_dump(mode="json")
    issued = httpx.post(b + "/v1/epolicies", json=body, headers={"X-API-Key": SALES_KEY}, timeout=30)
    assert issued.status_code == 202, issued.text
    wait_until(
        lambda: _get(a, "/v1/epolicies/P2026110000123", SALES_KEY).json()["status"] == "sent", 180, "mailed"
    )
    pdf = _get(a, "/v1/epolicies/P2026110000123/pdf", UNDERWRITER_KEY)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    (mail,) = smtp_srv.messages
    link = re.search(
        r"https://epolicy\.insurer\.example(/epolicy/\S+)", mail.get_body(("plain",)).get_content()
    )
    assert link, "the customer's link carries the public URL, not a process's own address"
    assert httpx.get(a + link.group(1), timeout=30).status_code == 200, (
        "a link made on one host opens on another"
    )


def _copy_bucket(source: ObjectStore, target: ObjectStore, directory: Path) -> int:
    """Copy every object with its type and metadata out to directory, then into target (what
    `mc mirror --preserve` does out of one bucket and into another); return how many."""
    import json

    keys = [i.key for i in source.list("")]
    for n, key in enumerate(keys):
        info = source.stat(key)
        (directory / f"{n}.bin").write_bytes(source.get(key))
        meta = {"key": key, "type": info.content_type, "meta": info.metadata}
        (directory / f"{n}.json").write_text(json.dumps(meta))
    for n in range(len(keys)):
        meta = json.loads((directory / f"{n}.json").read_text())
        target.put(meta["key"], (directory / f"{n}.bin").read_bytes(), meta["type"], meta["meta"] or None)
    return len(keys)


def test_a_backup_restored_into_an_empty_pair_finds_everything_again(
    mail_settings: Settings,  # noqa: F811
    document: DocumentRecord,  # noqa: F811  (two fields waiting for key-entry)
    redis_srv,
    s3_srv,
    tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient

    from api import create_app
    from tests.conftest import KEYER_KEY, run_cli, run_worker_burst

    settings = mail_settings
    client = TestClient(create_app(settings))
    upload = client.post(
        "/v1/scans",
        files=[("file", ("stack.tif", sample_stack(), "image/tiff"))],
        data={"mode": "batch", "policy_no": "PR2026000555"},
        headers={"X-API-Key": SCANNER_KEY},
    )
    scan_id = upload.json()["scan_id"]
    body = sample_request().model_dump(mode="json")
    assert client.post("/v1/epolicies", json=body, headers={"X-API-Key": SALES_KEY}).status_code == 202
    assert run_worker_burst(settings).returncode == 0
    waiting = keyentry.waiting(Redis.from_url(settings.redis_url))
    assert waiting >= 2

    # Back up: a Redis snapshot and every object, then restore both into an empty Redis and bucket.
    (tmp_path / "backup").mkdir()
    (tmp_path / "restored-redis").mkdir()
    dumped = subprocess.run(
        ["redis-cli", "-p", str(redis_srv.port), "--rdb", str(tmp_path / "restored-redis" / "dump.rdb")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dumped.returncode == 0, dumped.stderr
    source = open_store(settings)
    restored_bucket = "r" + settings.s3_bucket[1:]
    target = S3Store(s3_srv.endpoint, "test", "test", restored_bucket)
    copied = _copy_bucket(source, target, tmp_path / "backup")
    assert copied > 20
    with redis_server(tmp_path / "restored-redis") as restored_redis:
        restored = settings.model_copy(update={"redis_url": restored_redis.url, "s3_bucket": restored_bucket})
        again = TestClient(create_app(restored))
        scan = again.get(f"/v1/scans/{scan_id}", headers={"X-API-Key": ADMIN_KEY}).json()
        assert scan["status"] == "captured" and len(scan["documents"]) == 2
        found = again.get(
            "/v1/documents", params={"policy_no": "PR2026000555"}, headers={"X-API-Key": ADMIN_KEY}
        )
        assert len(found.json()["documents"]) == 2
        page = again.get(
            f"/v1/documents/{scan['documents'][0]['doc_id']}/pages/1", headers={"X-API-Key": ADMIN_KEY}
        )
        assert page.status_code == 200 and page.content.startswith(b"\x89PNG"), page.text
        policy = again.get("/v1/epolicies/P2026110000123", headers={"X-API-Key": SALES_KEY}).json()
        assert policy["status"] == "sent"
        conn = Redis.from_url(restored_redis.url)
        assert keyentry.waiting(conn) == waiting
        task = again.get("/v1/keyentry/next", headers={"X-API-Key": KEYER_KEY}).json()["task"]
        assert task is not None
        rebuilt = run_cli(restored, "rebuild")
        assert "rebuilt 0 open scans, 0 key-entry tasks, 0 e-policy versions, 0 mails" in rebuilt.stderr
        checked = run_cli(restored, "index", "check")
        # Nothing missing, stray or stale; the fixture's form waits for its numbers to be keyed, so index
        # check names it as filed under no number (and exits 1 for it), as it did before the backup.
        assert "0 missing, 0 stray, 0 stale records" in checked.stderr, checked.stdout + checked.stderr
        unfiled = [line for line in checked.stdout.splitlines() if line.startswith("unfiled")]
        assert unfiled == [f"unfiled\t{document.doc_id}"], checked.stdout
