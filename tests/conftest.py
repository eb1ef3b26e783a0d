"""Session-wide real servers (Redis, SeaweedFS S3, aiosmtpd) and per-test clean state."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker

from settings import Settings
from storage import LocalStore, ObjectStore
from storage.s3 import S3Store
from supervisor import free_port
from tests.servers import MailServer, RedisServer, S3Server, redis_server, wait_until

ROOT = Path(__file__).resolve().parent.parent
SCANNER_KEY = "scanner-key-" + "s" * 20
SCANNER2_KEY = "scanner-key-" + "t" * 20
KEYER_KEY = "keyer-key-" + "k" * 20
KEYER2_KEY = "keyer-key-" + "l" * 20
KEYER3_KEY = "keyer-key-" + "m" * 20
ADMIN_KEY = "admin-key-" + "a" * 20
UNDERWRITER_KEY = "underwriter-key-" + "u" * 20
SERVICING_KEY = "servicing-key-" + "v" * 20
CLAIMS_KEY = "claims-key-" + "c" * 20
SALES_KEY = "sales-key-" + "e" * 20
AUDITOR_KEY = "auditor-key-" + "x" * 20
MANAGER_KEY = "manager-key-" + "g" * 20
TEST_NAME_KEY = b"test-index-secret"  # what open_store gives a store from IMAGING_INDEX_SECRET
API_KEYS = (
    f"{SCANNER_KEY}:scanner,{SCANNER2_KEY}:scanner,{KEYER_KEY}:keyer,{KEYER2_KEY}:keyer,"
    f"{KEYER3_KEY}:keyer,{ADMIN_KEY}:admin,{UNDERWRITER_KEY}:underwriter,{SERVICING_KEY}:servicing,"
    f"{CLAIMS_KEY}:claims,{SALES_KEY}:sales,{AUDITOR_KEY}:auditor,{MANAGER_KEY}:manager"
)

# `make test` runs two test processes (pytest -n 2 --dist loadfile: each file whole in one process, so a
# module's servers start once). The slowest files go first, so that neither process is left with a long file
# at the end while the other idles.
SLOW_FIRST = (
    "tests/test_faults.py",
    "tests/test_deploy.py",
    "tests/test_hostile_uploads.py",
    "tests/capture/test_hostile.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the other files keep their order


@pytest.fixture(autouse=True)
def _no_environment_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's IMAGING_* variables and .env out of every test."""
    for name in list(os.environ):
        if name.startswith("IMAGING_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def redis_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_srv() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_conn(redis_srv: RedisServer) -> Iterator[Redis]:
    """A client on an empty database, flushed again afterwards (as rq's own tests do)."""
    conn = Redis.from_url(redis_srv.url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def bucket() -> str:
    return "t" + secrets.token_hex(6)


@pytest.fixture
def s3_store(s3_srv: S3Server, bucket: str) -> S3Store:
    store = S3Store(s3_srv.endpoint, "test", "test", bucket)
    store.name_key = TEST_NAME_KEY
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each storage test runs on both backends."""
    if request.param == "local":
        store = LocalStore(tmp_path / "objects")
        store.name_key = TEST_NAME_KEY
        return store
    return request.getfixturevalue("s3_store")


@pytest.fixture
def settings(
    tmp_path: Path, redis_conn: Redis, redis_srv: RedisServer, s3_srv: S3Server, bucket: str
) -> Settings:
    """Settings for the S3 backend and the test Redis, with fast retries."""
    return Settings(
        data_dir=tmp_path / "var",
        redis_url=redis_srv.url,
        s3_endpoint=s3_srv.endpoint,
        s3_access_key="test",
        s3_secret_key="test",
        s3_bucket=bucket,
        api_keys=API_KEYS,
        retry_intervals="1,1,1",
        max_upload_bytes=2 * 1024 * 1024,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """Return the environment that gives a child process these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGING_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"IMAGING_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_cli(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `imaging ARGS...` in a child process with these settings."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_worker_burst(settings: Settings) -> subprocess.CompletedProcess:
    """Run a real `imaging worker --burst` process until the queues are empty."""
    return run_cli(settings, "worker", "--burst")


@contextlib.contextmanager
def running_api(settings: Settings, output=subprocess.DEVNULL) -> Iterator[str]:
    """Run `imaging api` as a real server process on a free port until it answers; yield its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=settings_env(settings),
        cwd=ROOT,
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def running_workers(
    settings: Settings, count: int, logs: Path, names: list[str] | None = None
) -> Iterator[list[subprocess.Popen]]:
    """Run `imaging worker` count times (under ``names`` if given), each logging to logs/worker-<i>.log
    and leading its own process group (it and its job's work horse), until all have registered (their
    models loaded); yield the processes. At the end RQ's warm shutdown (the job in hand finishes), then
    SIGKILL after 60 s."""
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    with contextlib.ExitStack() as files:
        for i in range(count):
            out = files.enter_context((logs / f"worker-{i}.log").open("ab"))
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "cli",
                        "worker",
                        "--name",
                        names[i] if names else f"w{i}-{time.time_ns()}",
                    ],
                    env=settings_env(settings),
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        try:
            conn = Redis.from_url(settings.redis_url)
            wait_until(lambda: Worker.count(connection=conn) >= count, 120, f"{count} workers to register")
            yield procs
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@pytest.fixture
def api_server(settings: Settings) -> Iterator[str]:
    """The API as a real server process (`imaging api`); yields its base URL."""
    with running_api(settings) as url:
        yield url


needs_chromium = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="needs Debian's chromium and chromium-driver (make system installs them)",
)


@pytest.fixture
def browser():
    """Debian's headless chromium through its chromedriver (selenium downloads no browser), with its
    console kept for csp_violations and no host but 127.0.0.1 reachable by name: a page that needs anything
    from outside the service (a CDN) fails here as it would on an intranet."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


STAFF_PASSWORD = "a long staff password"


def add_staff(settings: Settings, username: str, *roles: str, branch: str = "86") -> str:
    """Make a local account (if it is not there yet) with these roles; return its username."""
    from people import accounts, changes
    from roles import Role
    from storage import open_store

    store = open_store(settings)
    if accounts.find_account(store, username) is None:
        conn = Redis.from_url(settings.redis_url)
        changes.add_user(
            store, conn, "test", username, username, [Role(r) for r in roles], branch, STAFF_PASSWORD
        )
    return username


def browser_sign_in(driver, base_url: str, username: str, next_: str = "/viewer") -> None:
    """Sign in through the /login form as a person would, and wait for the page it leads to."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base_url}/login?next={next_}")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(STAFF_PASSWORD, Keys.ENTER)
    WebDriverWait(driver, 15).until(lambda d: d.current_url.split("?")[0] == base_url + next_)


def csp_violations(driver) -> list[str]:
    """Return the browser console's messages about something the page's Content-Security-Policy refused,
    since the last call (chromium logs each refusal, naming the directive)."""
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(driver, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core (installed by `make node` from npm) over the page the browser shows and return its
    violations of the given impacts, each as "rule: help (selectors)" so a failing assert says what to fix."""
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run `make node` (npm ci) to install axe-core")
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations), e => done(String(e)));"
    )
    if isinstance(result, str):
        raise RuntimeError(f"axe-core failed: {result}")
    return [
        f"{v['id']}: {v['help']} ({', '.join(str(n['target']) for n in v['nodes'][:3])})"
        for v in result
        if v["impact"] in impacts
    ]
