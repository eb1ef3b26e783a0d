"""Prometheus metrics: what the queues, the workers and the key-entry pool hold now, and what the service
has done (uploads, fields accepted or sent to people, jobs by outcome and duration, e-policies).

Counts are kept in Redis, not in process memory: RQ runs each job in a forked child that exits when the
job ends, so a counter in the job's process would die with it (prometheus-client's multiprocess mode
keeps one file per process, here one per job, for ever). One HINCRBY per event keeps the service's
totals, shared by every API and worker process and surviving their restarts. ``GET /metrics`` on any API
therefore shows the whole service's counts (scrape one API, or take ``max`` across them); each worker's
own port (``imaging worker --metrics-port``) shows that worker: its process, jobs done and state.
A lost count never fails a job: Redis errors while counting are logged and ignored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.process_collector import ProcessCollector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker, get_current_job
from rq.job import Job

import keyentry
import logs
import queues
from models import DocumentRecord
from vocabulary import FieldStatus

log = logging.getLogger("imaging.metrics")

COUNTS = "metrics:counts"  # hash: "name|label=value|..." -> count
DURATIONS = "metrics:durations"  # hash: "kind|<bucket>" -> jobs that took up to <bucket> s; "kind|sum"
RECENT = "scans:recent"  # the latest scan ids, newest first, for the operator page
DAY = "metrics:day:"  # + YYYY-MM-DD (UTC): that day's field decisions, for the operator page
BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
# name: (help, labels) of each counter, exposed as imaging_<name>_total
COUNTERS = {
    "uploads": ("scans accepted (stored and queued)", ("mode",)),
    "fields": ("fields of captured documents: accepted by the machine, or sent to key-entry", ("decision",)),
    "jobs": (
        "jobs ended: ok, failed for good, or to be retried (a dependency was down)",
        ("kind", "outcome"),
    ),
    "epolicies": ("e-policy versions signed (issued), mailed, or failed for good", ("event",)),
}


def count(conn: Redis, name: str, amount: int = 1, **labels: str) -> None:
    """Add amount to a counter (one of COUNTERS) with these labels."""
    field = "|".join([name, *(f"{k}={labels[k]}" for k in COUNTERS[name][1])])
    try:
        conn.hincrby(COUNTS, field, amount)
    except RedisError as exc:
        log.warning("metric %s not counted: %s", field, exc)


def count_upload(conn: Redis, scan_id: str, mode: str) -> None:
    """Count an accepted upload and keep it among the recent scans the operator page lists."""
    count(conn, "uploads", mode=mode)
    try:
        conn.pipeline().lpush(RECENT, scan_id).ltrim(RECENT, 0, 199).execute()
    except RedisError as exc:
        log.warning("scan %s not listed as recent: %s", scan_id, exc)


def recent_scans(conn: Redis, count: int) -> list[str]:
    return [s.decode() for s in conn.lrange(RECENT, 0, count - 1)]


def count_fields(conn: Redis, record: DocumentRecord) -> None:
    """Count a captured document's field decisions once (a rerun of its capture counts nothing again)."""
    decided = [f.status for f in record.fields.values() if f.status]
    accepted = sum(s == FieldStatus.accepted for s in decided)
    keyed = sum(s == FieldStatus.key_entry for s in decided)
    today = DAY + datetime.now(UTC).date().isoformat()
    try:
        if not conn.set(f"metrics:counted:{record.doc_id}", 1, nx=True, ex=2 * 24 * 3600):
            return
        with conn.pipeline() as pipe:
            pipe.hincrby(COUNTS, "fields|decision=accepted", accepted)
            pipe.hincrby(COUNTS, "fields|decision=key_entry", keyed)
            pipe.hincrby(today, "accepted", accepted).hincrby(today, "key_entry", keyed)
            pipe.expire(today, 8 * 24 * 3600)
            pipe.execute()
    except RedisError as exc:
        log.warning("fields of %s not counted: %s", record.doc_id, exc)


def fields_on(conn: Redis, day: str) -> tuple[int, int]:
    """Return (accepted by the machine, sent to key-entry) for fields captured on day (YYYY-MM-DD, UTC)."""
    got = conn.hgetall(DAY + day)
    return int(got.get(b"accepted", 0)), int(got.get(b"key_entry", 0))


@contextmanager
def job_observed(kind: str) -> Iterator[None]:
    """Within a job: its logs carry its request id (from the upload), job id and scan id; at its end, its
    duration and outcome are counted. Outside a job (a test calling the function), nothing."""
    job = get_current_job()
    if job is None:
        yield
        return
    with logs.for_job(job):
        start = time.monotonic()
        try:
            yield
        except Exception:
            outcome = "retried" if (job.retries_left or 0) > 0 else "failed"
            _ended(job.connection, kind, outcome, time.monotonic() - start)
            raise
        _ended(job.connection, kind, "ok", time.monotonic() - start)


def _ended(conn: Redis, kind: str, outcome: str, seconds: float) -> None:
    count(conn, "jobs", kind=kind, outcome=outcome)
    if outcome == "failed" and kind in ("issue_epolicy", "deliver_mail"):
        count(conn, "epolicies", event="failed")
    bucket = next((b for b in BUCKETS if seconds <= b), "inf")
    try:
        with conn.pipeline() as pipe:
            pipe.hincrby(DURATIONS, f"{kind}|{bucket}", 1).hincrbyfloat(DURATIONS, f"{kind}|sum", seconds)
            pipe.execute()
    except RedisError as exc:
        log.warning("duration of a %s job not counted: %s", kind, exc)


# ---- what a scrape reads ---------------------------------------------------------------------------


def _oldest_age(conn: Redis, queue: Queue, now: float) -> float:
    """Return the seconds the job at the head of the queue has waited (0 for an empty queue)."""
    for job_id in queue.get_job_ids(0, 1):
        job = Job.fetch(job_id, connection=conn)
        if job.enqueued_at is not None:
            return max(0.0, now - job.enqueued_at.replace(tzinfo=UTC).timestamp())
    return 0.0


def _oldest_task_age(conn: Redis, now: float) -> float:
    """Return the seconds the oldest waiting key-entry task has waited. Pool scores are creation times in
    ms, less keyentry.IMMEDIATE_BONUS for immediate-mode tasks: the first of each kind is its oldest."""
    bonus = keyentry.IMMEDIATE_BONUS  # immediate-mode scores are below 0, batch ones above
    firsts = [
        *conn.zrangebyscore(keyentry.POOL, "-inf", "(0", start=0, num=1, withscores=True),
        *conn.zrangebyscore(keyentry.POOL, 0, "+inf", start=0, num=1, withscores=True),
    ]
    created = [score + bonus if score < 0 else score for _, score in firsts]
    return max(0.0, now - min(created) / 1000) if created else 0.0


def _gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily("imaging_" + name, text, labels=list(labels))


def now_state(conn: Redis) -> dict:
    """Return what the queues, the live workers and key-entry hold now (for /metrics and the operator
    page alike)."""
    now, cutoff = time.time(), time.time() - queues.LIVE_WORKER
    found = []
    for name in queues.QUEUES:
        queue = Queue(name, connection=conn)
        found.append(
            {
                "name": name,
                "depth": queue.count,
                "oldest_seconds": _oldest_age(conn, queue, now),
                "failed": queue.failed_job_registry.count,
            }
        )
    workers = [
        {
            "name": w.name,
            "state": str(w.get_state()),
            "queues": w.queue_names(),
            "last_heartbeat": w.last_heartbeat,
            "current_job": w.get_current_job_id(),
        }
        for w in Worker.all(connection=conn)
        if w.death_date is None and w.last_heartbeat and w.last_heartbeat.timestamp() >= cutoff
    ]
    return {
        "queues": found,
        "workers": sorted(workers, key=lambda w: w["name"]),
        "keyentry_backlog": keyentry.waiting(conn),
        "keyentry_oldest_seconds": _oldest_task_age(conn, now),
    }


def _now_gauges(conn: Redis) -> list[GaugeMetricFamily]:
    state = now_state(conn)
    depth = _gauge("queue_depth", "jobs waiting in each queue", ("queue",))
    oldest = _gauge(
        "queue_oldest_job_age_seconds", "how long the next job of each queue has waited", ("queue",)
    )
    failed = _gauge("failed_jobs", "jobs in each queue's failed registry (imaging jobs failed)", ("queue",))
    workers = _gauge("workers_alive", "live workers taking each queue", ("queue",))
    for q in state["queues"]:
        depth.add_metric([q["name"]], q["depth"])
        oldest.add_metric([q["name"]], q["oldest_seconds"])
        failed.add_metric([q["name"]], q["failed"])
        workers.add_metric([q["name"]], sum(q["name"] in w["queues"] for w in state["workers"]))
    backlog = _gauge("keyentry_backlog", "key-entry tasks waiting or leased")
    backlog.add_metric([], state["keyentry_backlog"])
    task_age = _gauge(
        "keyentry_oldest_task_age_seconds", "how long the oldest waiting key-entry task has waited"
    )
    task_age.add_metric([], state["keyentry_oldest_seconds"])
    return [depth, oldest, failed, workers, backlog, task_age]


def _counters(conn: Redis) -> list:
    families = {
        name: CounterMetricFamily("imaging_" + name, text, labels=list(labels))
        for name, (text, labels) in COUNTERS.items()
    }
    for field, value in sorted(conn.hgetall(COUNTS).items()):
        name, *pairs = field.decode().split("|")
        if name in families:
            families[name].add_metric([p.split("=", 1)[1] for p in pairs], int(value))
    durations = HistogramMetricFamily("imaging_job_duration_seconds", "job run time by kind", labels=["kind"])
    raw = {k.decode(): float(v) for k, v in conn.hgetall(DURATIONS).items()}
    for kind in sorted({k.split("|")[0] for k in raw}):
        total, buckets = 0, []
        for bound in [*BUCKETS, "inf"]:
            total += int(raw.get(f"{kind}|{bound}", 0))
            buckets.append(("+Inf" if bound == "inf" else str(float(bound)), total))
        durations.add_metric([kind], buckets, raw.get(f"{kind}|sum", 0.0))
    return [*families.values(), durations]


class ServiceMetrics:
    """A collector of the whole service's metrics, read from Redis at each scrape."""

    def __init__(self, conn: Redis) -> None:
        self.conn = conn

    def collect(self) -> Iterator:
        up = _gauge("redis_up", "whether Redis answered this scrape (the other metrics need it)")
        try:
            found = [*_now_gauges(self.conn), *_counters(self.conn)]
        except RedisError as exc:
            log.warning("metrics: Redis did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from found


def service_registry(conn: Redis) -> CollectorRegistry:
    """Return a registry of the service's metrics and this process's own (memory, CPU, open files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceMetrics(conn))
    ProcessCollector(registry=registry)
    return registry


class WorkerMetrics:
    """A collector of one worker's state as RQ records it: jobs done and failed, time working, busy."""

    def __init__(self, current: Callable[[], Worker | None]) -> None:
        self.current = current

    def collect(self) -> Iterator:
        worker = self.current()
        if worker is None:
            return
        try:
            worker.refresh()
        except RedisError:
            return
        jobs = CounterMetricFamily(
            "imaging_worker_jobs", "jobs this worker ran", labels=["worker", "outcome"]
        )
        jobs.add_metric([worker.name, "ok"], worker.successful_job_count or 0)
        jobs.add_metric([worker.name, "failed"], worker.failed_job_count or 0)
        yield jobs
        working = CounterMetricFamily(
            "imaging_worker_working_seconds", "time spent on jobs", labels=["worker"]
        )
        working.add_metric([worker.name], worker.total_working_time or 0)
        yield working
        busy = _gauge("worker_busy", "1 while this worker runs a job", ("worker",))
        busy.add_metric([worker.name], 1 if worker.get_state() == "busy" else 0)
        yield busy


class WorkerExporter:
    """``/metrics`` of one worker process on its own port, served by a thread of the worker (RQ forks a
    child per job; the child does not serve, the parent keeps serving)."""

    def __init__(self, host: str, port: int) -> None:
        self.worker: Worker | None = None
        registry = CollectorRegistry(auto_describe=False)
        registry.register(WorkerMetrics(lambda: self.worker))
        ProcessCollector(registry=registry)
        self.server, self.thread = start_http_server(port, addr=host, registry=registry)
