"""The job queues: connecting to Redis, enqueueing by job path, the open-scan ledger, the failed registry.

Queues in priority order: a worker always takes ``immediate`` (a customer is waiting at the counter)
before ``esign`` and ``mail``, and the ``batch`` backlog last. Jobs are named by their path
(``worker.capture_scan``), so the API enqueues without importing the worker and its libraries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, Worker, get_current_job
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

import logs
from errors import ConfigError, DependencyDown, QueueUnavailable
from models import Scan, find
from settings import Settings
from storage import ObjectStore
from vocabulary import ScanMode, ScanStatus

log = logging.getLogger("imaging.queues")

QUEUES = ("immediate", "esign", "mail", "batch")
CAPTURE_SCAN = "worker.capture_scan"
ISSUE_EPOLICY = "worker.issue_epolicy"
DELIVER_MAIL = "worker.deliver_mail"
DELIVER_WEBHOOK = "worker.deliver_webhook"
ANNOUNCE_SCAN = "worker.announce_scan"
# Every acknowledged scan is in this sorted set (score: upload time) until its capture ends; the sweep
# (see sweep_scans) queues again any whose job Redis no longer holds in a queue or a registry.
OPEN_SCANS = "scans:open"
SWEEP_AFTER = 60  # seconds a scan may wait before the sweep looks at its job
# Immediate scans being captured on a machine (score: when the entry lapses, should its job die without
# removing it). A batch capture on the same machine gives way to them (give_way) between its pages and
# documents: a customer at the counter then has the machine's every core, as on an idle service. Other
# machines' batch work goes on: the cores are what is shared.
IMMEDIATE_RUNNING = "scans:immediate:running:{host}"
GIVE_WAY_POLL = 0.05  # seconds between looks while an immediate scan runs


@contextlib.contextmanager
def immediate_running(conn: Redis, scan_id: str, seconds: float):
    """Mark an immediate scan as being captured for the block (for at most `seconds`)."""
    key = IMMEDIATE_RUNNING.format(host=socket.gethostname())
    conn.zadd(key, {scan_id: time.time() + seconds})
    try:
        yield
    finally:
        conn.zrem(key, scan_id)


@contextlib.contextmanager
def taking_turns(conn: Redis, settings: Settings, scan: Scan):
    """Run a scan's capture in its turn, yielding the function it calls between pages and documents: an
    immediate scan is marked running (immediate_running); a batch one runs niced (IMAGING_BATCH_NICE, in
    the job's forked child only) and its function waits while an immediate scan runs (give_way), for at
    most a quarter of the job's time limit in all."""
    if scan.mode == ScanMode.immediate:
        with immediate_running(conn, scan.scan_id, settings.job_timeout):
            yield lambda: None
        return
    if get_current_job() is not None:
        os.nice(settings.batch_nice)
    waited = 0.0

    def turn() -> None:
        nonlocal waited
        waited += give_way(conn, max(0.0, settings.job_timeout / 4 - waited))

    yield turn


def give_way(conn: Redis, most: float) -> float:
    """Wait while an immediate scan is being captured on this machine, for at most `most` seconds; return
    the seconds waited."""
    key, started = IMMEDIATE_RUNNING.format(host=socket.gethostname()), time.monotonic()
    while time.monotonic() - started < most and conn.zcount(key, time.time(), "+inf"):
        time.sleep(GIVE_WAY_POLL)
    return time.monotonic() - started


def connect(url: str | None, *, for_worker: bool = False) -> Redis:
    """Return a Redis client for url; raise ConfigError if none is configured."""
    if not url:
        raise ConfigError(
            "IMAGING_REDIS_URL: not set; `imaging up` starts a private Redis, other commands need its URL"
        )
    if for_worker:
        # RQ blocks on the queues for minutes; a read timeout would break that wait.
        return Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def enqueue(
    conn: Redis,
    settings: Settings,
    queue_name: str,
    func: str | Callable[..., object],
    *args: object,
    job_id: str,
    intervals: list[int] | None = None,
) -> Job:
    """Return the job with this id, enqueued now or found already queued, running or done.
    ``func`` is the job's path (``worker.capture_scan``) or the function itself; ``intervals`` the seconds
    between its retries (default IMAGING_RETRY_INTERVALS)."""
    if queue_name not in QUEUES:
        raise ValueError(f"unknown queue {queue_name!r}")
    intervals = intervals or settings.retry_schedule
    queue = Queue(queue_name, connection=conn)
    try:
        return queue.enqueue_call(
            func,
            args=args,
            job_id=job_id,
            unique=True,  # atomic in Redis: the same job enqueued twice is one job
            timeout=settings.job_timeout,
            result_ttl=24 * 3600,
            failure_ttl=30 * 24 * 3600,
            retry=Retry(max=len(intervals), interval=intervals),
            meta={"request_id": logs.current("request_id")},  # the worker logs the job under it
        )
    except DuplicateJobError:
        return Job.fetch(job_id, connection=conn)
    except RedisError as exc:
        raise QueueUnavailable(f"Redis did not take job {job_id}: {exc}") from exc


def capture_job_id(scan_id: str) -> str:
    return f"capture-{scan_id}"


def open_scan(conn: Redis, settings: Settings, scan: Scan) -> None:
    """Enter a stored scan in the open-scan ledger and queue its capture; raise QueueUnavailable, with
    the ledger entry taken back, if Redis does not take it."""
    try:
        conn.zadd(OPEN_SCANS, {scan.scan_id: time.time()})
        enqueue(
            conn, settings, scan.mode.value, CAPTURE_SCAN, scan.scan_id, job_id=capture_job_id(scan.scan_id)
        )
    except (QueueUnavailable, RedisError):
        with contextlib.suppress(RedisError):
            conn.zrem(OPEN_SCANS, scan.scan_id)
        raise QueueUnavailable(f"the job queue (Redis) did not take scan {scan.scan_id}; try again") from None


# Each uploader's latest scans, newest first, for the counter page to find what the station's folder sent
# (`imaging scan --watch` with the clerk's token). Work in progress only: a Redis flush forgets the list,
# the scans themselves are in the store.
RECENT_SCANS, RECENT_KEEP, RECENT_SECONDS = "scans:recent:{}", 20, 86400


def note_recent_scan(conn: Redis, uploader: str, scan_id: str) -> None:
    """Put the scan first in its uploader's recent scans (the latest RECENT_KEEP, for a day)."""
    key = RECENT_SCANS.format(uploader)
    with conn.pipeline() as pipe:
        pipe.lrem(key, 0, scan_id)  # the same upload again moves up, once
        pipe.lpush(key, scan_id)
        pipe.ltrim(key, 0, RECENT_KEEP - 1)
        pipe.expire(key, RECENT_SECONDS)
        pipe.execute()


def recent_scans(conn: Redis, uploader: str) -> list[str]:
    """Return the uploader's recent scan ids, newest first."""
    return [raw.decode() for raw in conn.lrange(RECENT_SCANS.format(uploader), 0, -1)]


def close_scan(conn: Redis, scan_id: str) -> None:
    """Take a scan whose capture ended (captured or failed) out of the open-scan ledger."""
    conn.zrem(OPEN_SCANS, scan_id)


def _held_job_ids(conn: Redis) -> set[str]:
    """Return the ids of every job in a queue, an intermediate list or a registry that will run it."""
    held: set[str] = set()
    for name in QUEUES:
        queue = Queue(name, connection=conn)
        held.update(queue.get_job_ids())
        held.update(queue.intermediate_queue.get_job_ids())
        for registry in (queue.started_job_registry, queue.scheduled_job_registry, queue.failed_job_registry):
            held.update(registry.get_job_ids())
    return held


def sweep_scans(
    conn: Redis, settings: Settings, store: ObjectStore, older_than: float = SWEEP_AFTER
) -> list[str]:
    """Return the open scans whose capture job was lost, after queueing each again.

    RQ keeps a job in a queue, an intermediate list or a registry from enqueue to end, and its own
    maintenance retries jobs abandoned by dead workers. A Redis restart at the wrong moment (between
    taking a job off its queue and registering it as started) can still leave a job that is in none of
    them: it would never run. This is the safety net under "every acknowledged scan completes"."""
    cutoff = time.time() - older_than
    candidates = [s.decode() for s in conn.zrangebyscore(OPEN_SCANS, "-inf", cutoff, start=0, num=1000)]
    if not candidates:
        return []
    held = _held_job_ids(conn)
    lost = []
    for scan_id in candidates:
        job_id = capture_job_id(scan_id)
        if job_id in held:
            continue
        try:
            job = Job.fetch(job_id, connection=conn)
            status = job.get_status()
        except NoSuchJobError:
            job, status = None, None
        if status in ("finished", "failed", "canceled", "stopped", "deferred"):
            continue  # its end is recorded (or it waits on purpose); the scan is closed when it runs
        scan = find(store, Scan, scan_id)
        if scan is None or scan.status in (ScanStatus.captured, ScanStatus.failed):
            close_scan(conn, scan_id)  # refused after all, or its end was not recorded here
            continue
        if job is not None:
            job.delete()
        enqueue(conn, settings, scan.mode.value, CAPTURE_SCAN, scan_id, job_id=job_id)
        log.warning("scan %s: its capture job was lost (status %s); queued again", scan_id, status)
        lost.append(scan_id)
    return lost


def sweep_now(conn: Redis, settings: Settings, store: ObjectStore, every: float) -> None:
    """Run the sweep if no other worker ran it in the last ``every`` seconds (a Redis lock decides)."""
    now_and_then(conn, "sweep", every, lambda: sweep_scans(conn, settings, store), "sweep of open scans")


def now_and_then(conn: Redis, lock: str, every: float, task: Callable[[], object], what: str) -> None:
    """Run a workers' housekeeping task if no worker ran it in the last ``every`` seconds (the Redis
    lock ``lock:<lock>`` decides); a dependency that is away is logged, and the next turn tries again."""
    if conn.set(f"lock:{lock}", "1", nx=True, ex=max(1, int(every))):
        try:
            task()
        except (DependencyDown, RedisError) as exc:
            log.warning("%s: %s", what, exc)


LIVE_WORKER = 60  # seconds since its last heartbeat within which a worker counts as alive (idle: every 20 s)


def live_workers(conn: Redis) -> dict[str, int]:
    """Return how many live workers take each queue (a killed worker stays registered until its key
    expires; its heartbeat stops at once)."""
    counts = dict.fromkeys(QUEUES, 0)
    cutoff = time.time() - LIVE_WORKER
    for worker in Worker.all(connection=conn):
        beat = worker.last_heartbeat
        if worker.death_date is None and beat is not None and beat.timestamp() >= cutoff:
            for name in worker.queue_names():
                if name in counts:
                    counts[name] += 1
    return counts


def end_dead_namesake(conn: Redis, name: str) -> None:
    """End the registration of a worker of this name that ran on this machine and whose process is gone.

    A worker killed (a crash, SIGKILL, the OOM killer) stays registered until its heartbeat expires, and
    RQ refuses to start another of the same name meanwhile ("There exists an active worker named ..."):
    systemd restarting `imaging worker --name "$(hostname)-1"` failed for about 100 s. The hostname and
    pid RQ records tell a dead process from a live one on another machine, which is left alone."""
    old = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=conn)
    if old is None or old.hostname != socket.gethostname() or not old.pid:
        return
    try:
        os.kill(old.pid, 0)
        return  # alive: RQ refuses the name, as it should
    except ProcessLookupError:
        pass
    except PermissionError:
        return  # some other user's process of that pid: alive
    log.warning("worker %s: its earlier process %d is gone; ending its registration", name, old.pid)
    old.register_death()


@dataclass(frozen=True)
class FailedJob:
    job_id: str
    queue: str
    func: str
    args: tuple
    ended_at: str
    error: str


def failed_jobs(conn: Redis) -> list[FailedJob]:
    """Return the jobs in every queue's failed registry, oldest first."""
    found: list[FailedJob] = []
    try:
        for name in QUEUES:
            registry = FailedJobRegistry(name, connection=conn)
            for job_id in registry.get_job_ids():
                try:
                    j = Job.fetch(job_id, connection=conn)
                except NoSuchJobError:
                    continue
                result = j.latest_result()
                error = (result.exc_string or "").strip().splitlines()[-1:] if result else []
                ended = j.ended_at.isoformat() if j.ended_at else ""
                found.append(
                    FailedJob(j.id, name, j.func_name, tuple(j.args), ended, error[0] if error else "")
                )
    except RedisError as exc:
        raise QueueUnavailable(f"Redis: cannot read the failed registry: {exc}") from exc
    return sorted(found, key=lambda f: f.ended_at)


def _on_failed(conn: Redis, job_ids: Iterable[str], act: Callable, what: str) -> list[str]:
    """Return the ids of the failed registries' jobs among job_ids, after acting on each."""
    wanted = set(job_ids)
    done: list[str] = []
    try:
        for name in QUEUES:
            registry = FailedJobRegistry(name, connection=conn)
            for job_id in registry.get_job_ids():
                if job_id in wanted:
                    act(registry, job_id)
                    done.append(job_id)
    except RedisError as exc:
        raise QueueUnavailable(f"Redis: cannot {what}: {exc}") from exc
    return done


def requeue(conn: Redis, job_ids: Iterable[str]) -> list[str]:
    """Return the ids put back on their queues (ids not in a failed registry are skipped)."""
    return _on_failed(conn, job_ids, lambda registry, job_id: registry.requeue(job_id), "requeue")


def discard(conn: Redis, job_ids: Iterable[str]) -> list[str]:
    """Return the ids deleted for good from the failed registries (ids not there are skipped)."""
    return _on_failed(
        conn, job_ids, lambda registry, job_id: registry.remove(job_id, delete_job=True), "discard"
    )


def wait_for(conn: Redis, pause: float = 1.0, longest: float = 10.0) -> None:
    """Return once Redis answers again, looking at growing intervals up to ``longest`` seconds."""
    while True:
        time.sleep(pause)
        try:
            conn.ping()
            return
        except RedisError:
            pause = min(pause * 2, longest)
