"""Faults, with real processes and real servers: a worker killed mid-job, the object store away for
30 s, Redis restarted, the local disk full. Each test is bounded in time and runs on loopback only.

What every test checks in the end: each acknowledged scan is captured exactly once (its documents
are the pages it has, numbered 1..n, each with its field tasks queued once), and an upload refused
during an outage left no scan behind."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from redis import Redis
from rq import Queue, Worker
from rq.job import Job

import keyentry
import queues
from api import create_app
from capture.render import render_form
from capture.templates import latest
from errors import StorageUnavailable
from models import Scan, document_key, load
from settings import Settings
from storage import LocalStore, ObjectNotFound, ObjectStore, open_store
from supervisor import free_port
from tests.conftest import ADMIN_KEY, ROOT, SCANNER_KEY, run_worker_burst, running_workers
from tests.servers import RedisServer, S3Server, wait_until
from vocabulary import ScanStatus, doc_id_for

VALUES = json.loads((ROOT / "capture" / "sample_values.json").read_text())


def _form_pdf(pages: int, copy: int = 0) -> bytes:
    """Return a scanned stack of application forms, one per page, as a PDF of grey JPEG pages; ``copy``
    makes other bytes (the same bytes again are the same upload, answered with the first scan)."""
    page = Image.fromarray(render_form(latest("application_form"), VALUES, 300)).convert("L")
    out = io.BytesIO()
    rest = [page] * (pages - 1)
    page.save(
        out, format="PDF", save_all=True, append_images=rest, resolution=300, quality=60, title=f"copy {copy}"
    )
    return out.getvalue()


def _upload(client: TestClient, data: bytes, mode: str = "batch"):
    return client.post(
        f"/v1/scans?mode={mode}",
        content=data,
        headers={"X-API-Key": SCANNER_KEY, "Content-Type": "application/pdf"},
    )


def _scan(store: ObjectStore, scan_id: str) -> Scan | None:
    try:
        return load(store, Scan, scan_id)
    except (ObjectNotFound, StorageUnavailable):
        return None


def _captured(store: ObjectStore, scan_ids: list[str]) -> bool:
    scans = [_scan(store, s) for s in scan_ids]
    failed = [s.scan_id for s in scans if s and s.status == ScanStatus.failed]
    assert not failed, f"scans failed for good: {failed}"
    return all(s and s.status == ScanStatus.captured for s in scans)


def _assert_captured_once(store: ObjectStore, conn: Redis, scan_id: str, pages: int) -> None:
    scan = _scan(store, scan_id)
    assert scan is not None and scan.status == ScanStatus.captured
    assert scan.pages == pages
    assert scan.documents == [doc_id_for(scan_id, n) for n in range(1, pages + 1)]
    stored = {i.key.split("/")[1] for i in store.list(f"documents/{doc_id_for(scan_id, 1)[:-3]}")}
    assert stored == set(scan.documents), "no document beyond the scan's own pages"
    for doc_id in scan.documents:
        record = json.loads(store.get(document_key(doc_id)))
        waiting = [name for name, f in record["fields"].items() if f["status"] == "key_entry"]
        tasks = [t.decode() for t in conn.zrange(keyentry.POOL, 0, -1) if t.decode().startswith(doc_id + ".")]
        assert sorted(tasks) == sorted(f"{doc_id}.{name}" for name in waiting), "each task queued once"
        for name in waiting:  # a task half-made by a killed job would lack its fields
            assert conn.hget(keyentry.PREFIX + f"{doc_id}.{name}", "state") == b"waiting"


def _scan_ids(store: ObjectStore) -> set[str]:
    return {i.key.removeprefix("scans/").removesuffix(".json") for i in store.list("scans/")}


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        for task in Path(f"/proc/{stack.pop()}/task").glob("*"):
            children = [int(c) for c in (task / "children").read_text().split()]
            found += children
            stack += children
    return found


def _log_tail(log: Path, conn: Redis | None = None, scan_ids: list[str] = ()) -> str:
    """Return what a failed fault test needs to be understood: the jobs' states and the workers' log."""
    lines = []
    for scan_id in scan_ids if conn is not None else ():
        try:
            job = Job.fetch(f"capture-{scan_id}", connection=conn)
            lines.append(f"{job.id}: {job.get_status()} retries_left={job.retries_left}")
        except Exception as exc:  # a diagnostic must not hide the failure it explains
            lines.append(f"capture-{scan_id}: {exc!r}")
    if conn is not None:
        for name in ("immediate", "batch"):
            queue = Queue(name, connection=conn)
            lines.append(
                f"{name}: queued={queue.job_ids} started={queue.started_job_registry.get_job_ids()} "
                f"scheduled={queue.scheduled_job_registry.get_job_ids()} "
                f"failed={queue.failed_job_registry.get_job_ids()} "
                f"intermediate={queue.intermediate_queue.get_job_ids()}"
            )
    text = "".join(path.read_text(errors="replace") for path in sorted(log.glob("worker-*.log")))
    kept = [line for line in text.splitlines() if "cleaning" not in line]
    return "\n".join(lines + kept[-60:])


# ---- a worker killed in the middle of a capture -------------------------------------------------


def test_a_worker_killed_mid_capture_leaves_its_job_to_another_which_completes_it_once(
    settings: Settings, redis_conn: Redis, tmp_path: Path
) -> None:
    store = open_store(settings)
    client = TestClient(create_app(settings))
    pages = 4
    answer = _upload(client, _form_pdf(pages), mode="immediate")
    assert answer.status_code == 202, answer.text
    scan_id = answer.json()["scan_id"]
    log = tmp_path / "workers"
    with running_workers(settings, 2, log) as procs:
        # Kill the worker holding the job once the job has stored its first document, not before.
        wait_until(lambda: store.exists(document_key(doc_id_for(scan_id, 1))), 120, "the first document")
        job_id = f"capture-{scan_id}"
        busy = [w for w in Worker.all(connection=redis_conn) if w.get_current_job_id() == job_id]
        assert len(busy) == 1, _log_tail(log)
        (victim,) = [p for p in procs if p.pid == busy[0].pid]
        tree = _descendants(victim.pid)
        assert tree, "the job runs in a work horse under the worker"
        for pid in [victim.pid, *tree]:  # the worker and its work horse (its own process group)
            os.kill(pid, signal.SIGKILL)
        victim.wait(10)
        assert _scan(store, scan_id).status == ScanStatus.queued, "killed before it finished"
        # The survivor finds the job abandoned (worker_process.ABANDONED_AFTER) and runs it again.
        try:
            wait_until(lambda: _captured(store, [scan_id]), 240, "the survivor to finish the scan", 0.5)
        except AssertionError:
            raise AssertionError(_log_tail(log, redis_conn, [scan_id])) from None
        assert [p.poll() for p in procs if p is not victim] == [None], "the survivor lives"
    _assert_captured_once(store, redis_conn, scan_id, pages)


# ---- the object store away for 30 seconds --------------------------------------------------------


def test_a_worker_restarted_under_its_name_after_a_crash_starts_at_once(
    settings: Settings, redis_conn: Redis, tmp_path: Path
) -> None:
    # As systemd restarts `imaging worker --name "$(hostname)-1"`: the killed one is still registered.
    name = f"{os.uname().nodename}-1-{time.time_ns()}"
    key = Worker.redis_worker_namespace_prefix + name
    with running_workers(settings, 1, tmp_path / "first", names=[name]) as (first,):
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        assert redis_conn.exists(key) and not redis_conn.hexists(key, "death"), "still looks alive"
        started = time.monotonic()
        with running_workers(settings, 1, tmp_path / "second", names=[name]) as (second,):

            def took_the_name() -> bool:
                assert second.poll() is None, _log_tail(tmp_path / "second" / "worker-0.log")
                found = Worker.find_by_key(key, connection=redis_conn)
                return found is not None and found.pid == second.pid

            wait_until(took_the_name, 60, "the restarted worker to register under its name")
            seconds = time.monotonic() - started
    assert seconds < 30, f"the restarted worker registered after {seconds:.0f} s"


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[S3Server]:
    """A SeaweedFS of this test's own, to stop and start again."""
    server = S3Server(tmp_path / "weed")
    server.start()
    yield server
    server.stop()


def test_the_object_store_away_for_30_seconds_delays_jobs_refuses_uploads_and_loses_nothing(
    settings: Settings, redis_conn: Redis, own_s3: S3Server, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"s3_endpoint": own_s3.endpoint, "retry_intervals": "2,4,8,16,32,60"}
    )
    store = open_store(settings)
    client = TestClient(create_app(settings))
    scan_ids = [_upload(client, _form_pdf(1, n)).json()["scan_id"] for n in range(5)]
    log = tmp_path / "workers"
    with running_workers(settings, 1, log) as procs:
        wait_until(lambda: _captured(store, scan_ids[:1]), 120, "the first scan")
        own_s3.stop()
        stopped = time.monotonic()
        refused = _upload(client, _form_pdf(1, 9))
        assert refused.status_code == 503 and refused.headers["Retry-After"], refused.text
        assert refused.json()["error"] == "storage_unavailable"
        health = client.get("/v1/health", headers={"X-API-Key": ADMIN_KEY})
        assert health.status_code == 503 and health.json()["storage"] != "ok"
        assert client.get("/healthz").json() == {"status": "down"}
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
        own_s3.start()
        try:
            wait_until(lambda: _captured(store, scan_ids), 240, "every scan after the outage", 0.5)
        except AssertionError:
            raise AssertionError(_log_tail(log, redis_conn, scan_ids)) from None
        assert procs[0].poll() is None, "the worker lived through the outage"
    assert _scan_ids(store) == set(scan_ids), "the refused upload left no scan behind"
    for scan_id in scan_ids:
        _assert_captured_once(store, redis_conn, scan_id, 1)
    assert client.get("/healthz").status_code == 200


# ---- Redis restarted ------------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own with its append-only file on, as `imaging up` runs it."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(free_port(), tmp_path / "redis", appendonly=True)
    server.start()
    yield server
    server.stop()


def test_a_redis_restart_is_reported_refuses_uploads_meanwhile_and_loses_no_queued_work(
    settings: Settings, own_redis: RedisServer, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"redis_url": own_redis.url, "retry_intervals": "2,4,8,16"})
    store = open_store(settings)
    conn = Redis.from_url(own_redis.url)
    client = TestClient(create_app(settings))
    scan_ids = [_upload(client, _form_pdf(1, n)).json()["scan_id"] for n in range(4)]
    log = tmp_path / "workers"
    with running_workers(settings, 1, log) as procs:
        wait_until(lambda: _captured(store, scan_ids[:1]), 120, "the first scan")
        # Restart Redis while the next capture job runs: its worker loses Redis in the middle of it.
        batch = Queue("batch", connection=conn)
        wait_until(lambda: batch.count < len(scan_ids) - 1, 30, "the next job to start", 0.01)
        before = _scan_ids(store)
        own_redis.stop()  # SIGTERM: Redis writes its append-only file and exits, as in a restart
        health = client.get("/v1/health", headers={"X-API-Key": ADMIN_KEY})
        assert health.status_code == 503 and health.json()["redis"] != "ok"
        assert client.get("/healthz").json() == {"status": "down"}
        refused = _upload(client, _form_pdf(1, 9))
        assert refused.status_code == 503 and refused.headers["Retry-After"], refused.text
        assert refused.json()["error"] == "queue_unavailable"
        assert _scan_ids(store) == before, "nothing stored for the refused upload"
        time.sleep(3)
        own_redis.start()
        assert client.get("/healthz").status_code == 200
        try:
            wait_until(lambda: _captured(store, scan_ids), 150, "every scan queued before the restart", 0.5)
        except AssertionError:
            raise AssertionError(_log_tail(log, conn, scan_ids)) from None
        # The same worker process carries on with new work.
        later = _upload(client, _form_pdf(1, 8)).json()["scan_id"]
        wait_until(lambda: _captured(store, [later]), 120, "a scan uploaded after the restart")
        assert procs[0].poll() is None, "the worker lived through the restart"
    for scan_id in [*scan_ids, later]:
        _assert_captured_once(store, conn, scan_id, 1)


def test_the_sweep_queues_again_a_scan_whose_job_redis_lost_and_leaves_the_rest_alone(
    settings: Settings, redis_conn: Redis
) -> None:
    store = open_store(settings)
    client = TestClient(create_app(settings))
    lost, kept = (_upload(client, _form_pdf(1, n)).json()["scan_id"] for n in range(2))
    # The state a Redis restart at the wrong moment can leave: the job exists but is in no list.
    redis_conn.lrem(Queue("batch", connection=redis_conn).key, 0, f"capture-{lost}")
    assert queues.sweep_scans(redis_conn, settings, store) == [], "young scans are left to RQ"
    assert queues.sweep_scans(redis_conn, settings, store, older_than=0) == [lost]
    assert queues.sweep_scans(redis_conn, settings, store, older_than=0) == [], "queued once"
    assert run_worker_burst(settings).returncode == 0
    assert _captured(store, [lost, kept])
    assert redis_conn.zcard(queues.OPEN_SCANS) == 0, "a captured scan is closed"


# ---- the local store's disk full ------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs (needs root, as on the CI machine)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_gives_a_clear_error_and_leaves_no_corrupt_object(small_disk: Path) -> None:
    store = LocalStore(small_disk / "objects")
    store.put("scans/kept.json", b'{"kept": true}', "application/json")
    block = np.random.default_rng(1).bytes(400 * 1024)
    written = 0
    with pytest.raises(StorageUnavailable, match="disk is full") as full:
        for n in range(20):
            store.put(f"originals/{n:02d}", block)
            written += 1
    assert 0 < written < 20
    assert "free space" in full.value.message
    # Overwriting an object on a full disk keeps the old one whole.
    with pytest.raises(StorageUnavailable, match="disk is full"):
        store.put("scans/kept.json", block)
    assert store.get("scans/kept.json") == b'{"kept": true}'
    for n in range(written):
        assert store.get(f"originals/{n:02d}") == block
    leftovers = [p for p in (small_disk / "objects").rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, "no half-written temporary file stays behind"


def test_an_upload_to_a_full_disk_is_refused_with_a_clear_503_and_stores_no_scan(
    settings: Settings, small_disk: Path
) -> None:
    settings = settings.model_copy(update={"s3_endpoint": None, "data_dir": small_disk})
    store = open_store(settings)
    client = TestClient(create_app(settings))
    filler = np.random.default_rng(2).bytes(int(2.5 * 1024 * 1024))
    (small_disk / "filler").write_bytes(filler)  # leaves less than one upload's room
    answer = _upload(client, _form_pdf(2))
    assert answer.status_code == 503 and answer.headers["Retry-After"], answer.text
    assert "disk is full" in answer.json()["detail"]
    assert _scan_ids(store) == set()
