"""Security findings of the attack review, each shown on the running service (see SECURITY.md).

Tests that play "another local user" run redis-cli as ``nobody``: the tests run as root, for whom
file permissions do not hold, so only a process of another user shows what the permissions keep out.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from supervisor import free_port
from tests.servers import tls_files, wait_until
from tests.test_up import _children, _get, _scan_is_captured, _start

NOBODY = 65534


@contextmanager
def _imaging_up() -> Iterator[tuple[Path, str, int]]:
    """Run `imaging up` on a data dir whose parent any user may enter (pytest's tmp_path is 0700 and would
    hide everything below it from other users, whatever the service does)."""
    parent = Path(tempfile.mkdtemp(prefix="imaging-sec-"))
    parent.chmod(0o755)
    data_dir, port = parent / "var", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(data_dir, port)
    try:
        wait_until(lambda: _get(base + "/healthz")[0] == 200, 90, "imaging up to answer /healthz")
        yield data_dir, base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run(["rm", "-rf", str(parent)], check=False)


def _redis_pid(up_pid: int) -> int:
    for pid in _children(up_pid):
        if b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]:
            return pid
    raise AssertionError("no redis-server under imaging up")


def _listening_tcp_ports(pid: int) -> list[int]:
    """Return the TCP ports the process listens on (its socket inodes in /proc/net/tcp*, state LISTEN)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        if m := re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd)):
            inodes.add(m.group(1))
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:
                ports.append(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def _as_nobody(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["redis-cli", *args], user=NOBODY, capture_output=True, text=True, timeout=10)


def _queued(answer: subprocess.CompletedProcess) -> bool:
    """Whether redis-cli's RPUSH went through (it prints the list's new length)."""
    return answer.returncode == 0 and answer.stdout.strip().isdigit()


def test_no_other_local_user_can_reach_the_private_redis_to_queue_a_job() -> None:
    with _imaging_up() as (data_dir, base, up_pid):
        redis = _redis_pid(up_pid)
        # Any TCP port is open to every local user: there must be none.
        for port in _listening_tcp_ports(redis):
            injected = _as_nobody("-p", str(port), "RPUSH", "rq:queue:immediate", "os.system")
            assert not _queued(injected), f"nobody queued a job on TCP port {port}"
        assert _listening_tcp_ports(redis) == []
        sock = data_dir / "redis" / "redis.sock"
        assert sock.is_socket()
        tried = _as_nobody("-s", str(sock), "RPUSH", "rq:queue:immediate", "os.system")
        assert not _queued(tried), "nobody queued a job through the unix socket"
        assert "Permission denied" in tried.stdout + tried.stderr, tried


def test_what_the_service_writes_is_readable_by_its_user_only() -> None:
    with _imaging_up() as (data_dir, base, _):
        key = (data_dir / "admin.key").read_text().strip()
        _scan_is_captured(base, key, "the scan to be captured")
        exposed = []
        for path in [data_dir, *data_dir.rglob("*")]:
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or stat.S_ISSOCK(mode):
                continue
            if mode & 0o077:
                exposed.append(f"{path.relative_to(data_dir.parent)} {stat.filemode(mode)}")
        assert not exposed, "readable by others:\n" + "\n".join(exposed)
        assert any((data_dir / "redis" / "appendonlydir").iterdir()), "the AOF is there, and private"


def test_admin_commands_beside_imaging_up_find_its_redis_without_settings() -> None:
    with _imaging_up() as (data_dir, base, _):
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGING_")}
        env["IMAGING_DATA_DIR"] = str(data_dir)
        listed = subprocess.run(
            [sys.executable, "-m", "cli", "jobs", "failed"],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert "0 failed job(s)" in listed.stderr


def _api_pid(port: int) -> int:
    """Return the pid of the `imaging api` process serving this port."""
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"api" in args and str(port).encode() in args:
            return int(proc.name)
    raise AssertionError(f"no imaging api on port {port}")


def _peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def _post_streamed(url: str, path: str, chunks: Iterator[bytes]) -> tuple[int, float, int]:
    """POST a chunked body with no API key, stopping as soon as the server answers; return the status,
    the seconds to the answer and the bytes sent."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)))
    conn.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    answered, sent = threading.Event(), [0]

    def feed() -> None:
        with contextlib.suppress(OSError):
            for chunk in chunks:
                if answered.is_set():
                    return
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent[0] += len(chunk)
            conn.sendall(b"0\r\n\r\n")

    started = time.monotonic()
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    conn.settimeout(300)
    head = conn.recv(4096)
    answered.set()
    seconds = time.monotonic() - started
    conn.close()
    feeder.join(30)
    return int(head.split()[1]), seconds, sent[0]


def _json_bomb(total: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Yield ``[{},{},...]`` of about ``total`` bytes: cheap to send, costly to parse into objects."""
    yield b"["
    for _ in range(total // chunk):
        yield b"{}," * (chunk // 3)
    yield b"{}]"


def test_an_unknown_caller_cannot_make_the_api_read_or_parse_a_big_body(settings) -> None:
    from tests.conftest import running_api

    with running_api(settings.model_copy(update={"max_upload_bytes": 64 * 1024 * 1024})) as url:
        pid = _api_pid(int(url.rsplit(":", 1)[1]))
        before = _peak_rss_mib(pid)
        status, seconds, sent = _post_streamed(url, "/v1/epolicies", _json_bomb(64 * 1024 * 1024))
        grown = _peak_rss_mib(pid) - before
    assert status == 401
    assert grown < 16, f"the API's peak memory grew {grown:.0f} MiB for a caller it does not know"
    assert seconds < 2 and sent < 16 * 1024 * 1024, f"answered after {seconds:.2f} s and {sent} bytes"


def test_each_route_takes_a_body_only_up_to_its_own_limit(settings) -> None:
    from fastapi.testclient import TestClient

    from api import create_app
    from tests.conftest import ADMIN_KEY

    client = TestClient(create_app(settings))
    headers = {"X-API-Key": ADMIN_KEY, "Content-Type": "application/json"}
    big_json = b'{"policy_no": "' + b"P" * (settings.max_json_bytes + 1) + b'"}'
    refused = client.post("/v1/epolicies", content=big_json, headers=headers)
    assert refused.status_code == 413 and "IMAGING_MAX_JSON_BYTES" in refused.json()["detail"]
    pdf = b"%PDF-1.7\n" + b"0" * settings.max_verify_bytes
    refused = client.post("/v1/verify", content=pdf, headers={**headers, "Content-Type": "application/pdf"})
    assert refused.status_code == 413 and "IMAGING_MAX_VERIFY_BYTES" in refused.json()["detail"]
    unknown = client.post("/v1/epolicies", content=b"{}", headers={**headers, "X-API-Key": "x" * 20})
    assert (unknown.status_code, unknown.json()["detail"]) == (401, "the API key is not known")


def _listing_the_signature_field(archive: bytes, times: int) -> bytes:
    """Return the signed PDF with one incremental update whose form lists its signature field ``times``
    times: 100 KB that once kept the API checking it for minutes at 3.2 GB."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(archive), strict=False)
    form = writer.root["/AcroForm"]
    form[generic.NameObject("/Fields")] = generic.ArrayObject([form["/Fields"].raw_get(0)] * times)
    writer.update_container(form)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def archive_copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    from esign.epolicy import sample_request
    from esign.keys import init_test_keys
    from esign.render import render
    from esign.sign import load_pkcs12, seal

    paths = init_test_keys(tmp_path_factory.mktemp("keys"))
    signer = load_pkcs12(paths["pkcs12"], paths["passphrase"].read_bytes())
    return seal(render(sample_request(), 1, "https://x/v"), signer, "150013", "o").archive, paths["ca"]


def test_a_pdf_built_to_stall_the_checker_is_refused_while_the_api_keeps_answering(
    settings, archive_copy
) -> None:
    from tests.conftest import UNDERWRITER_KEY, running_api

    archive, ca = archive_copy
    crafted = _listing_the_signature_field(archive, 2000)
    assert len(crafted) < 200_000
    with running_api(settings.model_copy(update={"trust_roots": ca})) as url:
        health: list[float] = []
        answered = threading.Event()

        def probe() -> None:
            while not answered.is_set():
                started = time.monotonic()
                with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
                    assert response.status == 200
                health.append(time.monotonic() - started)
                time.sleep(0.1)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        started = time.monotonic()
        request = urllib.request.Request(
            url + "/v1/verify",
            data=crafted,
            headers={"X-API-Key": UNDERWRITER_KEY, "Content-Type": "application/pdf"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=120)
        seconds = time.monotonic() - started
        answered.set()
        prober.join(15)
    assert refused.value.code == 422
    assert "2000 signatures" in json.loads(refused.value.read())["detail"]
    assert seconds < 30, f"refused after {seconds:.0f} s"
    assert health and max(health) < 5, f"/healthz answered in {health}"


def test_the_checker_s_child_is_held_to_its_memory_and_time(archive_copy) -> None:
    from errors import BadInput
    from esign.verify import verify_in_child

    archive, ca = archive_copy
    assert verify_in_child(archive, ca)["ok"] is True
    with pytest.raises(BadInput, match="more than 64 MiB of memory"):
        verify_in_child(archive, ca, memory=64 * 1024 * 1024)
    with pytest.raises(BadInput, match="longer than 0 s"):
        verify_in_child(archive, ca, seconds=0.05)


def test_scanners_and_keyers_may_not_run_the_checker(settings, archive_copy) -> None:
    from fastapi.testclient import TestClient

    from api import create_app
    from tests.conftest import KEYER_KEY, SCANNER_KEY

    client = TestClient(create_app(settings))
    for key in (SCANNER_KEY, KEYER_KEY):
        answer = client.post("/v1/verify", content=archive_copy[0], headers={"X-API-Key": key})
        assert answer.status_code == 403


ID_NUMBER = re.compile(r"[1-9]\d{5}(19|20)\d{2}(0[1-9]|1[0-2])\d{2}\d{3}[\dX]")


def test_no_id_number_stands_in_any_object_name_and_old_entries_are_renamed(settings) -> None:
    from indexing.index import lookup
    from storage import open_store
    from tests.conftest import run_cli
    from tests.indexing.conftest import APPLICANT, put_case

    store = open_store(settings)
    case = put_case(store)
    names = [info.key for info in store.list("")]
    assert names and not [n for n in names if ID_NUMBER.search(n)], "an ID number in an object name"
    assert {e.doc_id for e in lookup(store, "customer", APPLICANT)} >= {case["form"], case["front"]}
    # An entry written the old way, under the number itself, is stray: the repair renames it.
    old = f"index/customer/{APPLICANT}/{case['front']}=idcard_front=new_business"
    store.put(old, b"{}", "application/json")
    repaired = run_cli(settings, "index", "check", "--repair")
    assert repaired.returncode == 0 and APPLICANT not in repaired.stdout + repaired.stderr
    assert not store.exists(old)
    assert not [info.key for info in store.list("") if ID_NUMBER.search(info.key)]


def test_secrets_the_service_makes_are_never_readable_by_others(tmp_path: Path) -> None:
    from settings import Settings

    settings = Settings(data_dir=tmp_path / "var")
    settings.token_key(), settings.index_key()
    for name in ("token.secret", "index.secret"):
        mode = (settings.keys_dir / name).stat().st_mode
        assert mode & 0o077 == 0, f"{name} is {stat.filemode(mode)}"
    assert settings.token_key() != settings.index_key()


def test_production_redis_over_tls_with_an_acl_user_carries_the_queues(settings, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from redis import Redis
    from redis.exceptions import AuthenticationError, ConnectionError, ResponseError

    from api import create_app
    from tests.conftest import SCANNER_KEY, run_worker_burst
    from tests.samples import sample_png

    ca, cert, key = tls_files(tmp_path, "test Redis CA")
    port = free_port()
    redis = subprocess.Popen(
        [
            "redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
            "--tls-auth-clients", "no", "--save", "", "--dir", str(tmp_path),
            "--user", "default", "off",
            "--user", "imaging", "on", ">s3cret-for-the-test", "~*", "&*", "+@all",
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"rediss://imaging:s3cret-for-the-test@127.0.0.1:{port}/0?ssl_ca_certs={ca}"
        wait_until(lambda: _answers(url), 15, "Redis over TLS")
        with pytest.raises((AuthenticationError, ResponseError)):
            Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(ca)).ping()  # no user: refused
        with pytest.raises(ConnectionError):
            Redis(host="127.0.0.1", port=port, socket_timeout=2).ping()  # no TLS: refused
        tls = settings.model_copy(update={"redis_url": url})
        client = TestClient(create_app(tls))
        headers = {"X-API-Key": SCANNER_KEY, "Content-Type": "image/png"}
        scan = client.post("/v1/scans?mode=immediate", content=sample_png(), headers=headers).json()
        assert run_worker_burst(tls).returncode == 0
        status = client.get(scan["status_url"], headers={"X-API-Key": SCANNER_KEY}).json()
        assert status["status"] == "captured", status
    finally:
        redis.terminate()
        redis.wait(10)


def _answers(url: str) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        return Redis.from_url(url, socket_timeout=1).ping()
    except RedisError:
        return False
