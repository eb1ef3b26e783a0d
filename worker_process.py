"""The worker process: RQ's worker, quicker to notice a dead colleague's job and running the short
queues' jobs without a fork; the heavy libraries loaded once before it forks (``preload``); and ``run``,
which starts a worker on every queue and carries on after Redis comes back. The jobs are in worker.py
(RQ records them as ``worker.<job>``, so they keep that module's name).
"""

from __future__ import annotations

import gc
import itertools
import logging
import signal
import threading

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import Job
from rq.worker import WorkerStatus

import epolicies
import logs
import metrics
import production
import queues
from errors import ConfigError
from people import audit
from settings import Settings
from storage import open_store
from worker import context

log = logging.getLogger("imaging.worker")

# A busy worker says it is alive every HEARTBEAT seconds; a job whose worker has been silent for
# ABANDONED_AFTER more (killed, machine lost) is retried by another worker, which looks for such jobs
# every IDLE_WAKE seconds even when idle. RQ's defaults (90 s, then up to 10 min) are too slow for a
# customer at the counter.
HEARTBEAT = 5
ABANDONED_AFTER = 30
IDLE_WAKE = 20
# Jobs of these queues run in the worker itself, not in a child forked for each: they are short, pure Python
# and bounded by network timeouts, and the fork cost more CPU than the job (README, Performance).
IN_PROCESS = frozenset({"esign", "mail"})


def preload(settings: Settings | None = None) -> None:
    """Import the heavy libraries once in the worker process, before RQ forks a child per job; with
    settings, also open a PKCS#12 signing key (not a PKCS#11 session: those do not survive a fork)."""
    import capture.pipeline  # noqa: F401  (numpy, opencv, Pillow, pypdfium2, reportlab)
    import esign.letter  # noqa: F401
    import esign.mail  # noqa: F401
    import esign.render  # noqa: F401
    import esign.verify  # noqa: F401
    import indexing.filing  # noqa: F401
    from capture.pipeline import preload as load_capture
    from capture.templates import templates
    from esign.sign import rehearse, signer_from_settings
    from ocr.pipeline import preload as load_ocr
    from printing import cjk_font

    templates()
    cjk_font()
    load_capture()  # the card sides' specimens
    # The engines, the look-alike table, the faces: inherited by every forked job.
    load_ocr(ppocr_runtime=settings.ppocr_runtime if settings is not None else "auto")
    if settings is not None and not settings.pkcs11_module and settings.pkcs12_path.exists():
        try:
            rehearse(signer_from_settings(settings))
        except ConfigError as exc:
            log.warning("signing key not loaded ahead: %s", exc.message)
    gc.freeze()  # all made so far lives on: a forked job's collections then do not copy the whole heap


def opencv_on_one_thread() -> None:
    """Run OpenCV on one thread in this process, as a worker that takes batch scans does: its second
    thread saved a page no time and cost 14 % more CPU (bench/page_speed_bench.py), which the machine's
    other workers use better; the immediate-only worker keeps both, for the counter's latency. Called
    before OpenCV starts its threads: a forked job's child that changes this waits forever on the
    parent's thread pool (seen as jobs that hung when it was set in the job)."""
    import cv2

    cv2.setNumThreads(1)


_STOP_EARLY = threading.Event()  # SIGTERM/SIGINT before RQ's handlers are in place (see below)


class ImagingWorker(Worker):
    """RQ's worker, quicker to notice a dead colleague's job (see ABANDONED_AFTER), running the IN_PROCESS
    queues' jobs without forking (as RQ's SimpleWorker does; RQ's alarm still ends one that overruns)."""

    def _install_signal_handlers(self) -> None:
        # RQ registers the worker before it installs its handlers: a SIGTERM in between (systemd stopping
        # a worker just started) killed it still registered, and /readyz counted it for a minute.
        super()._install_signal_handlers()
        self._stop_requested = self._stop_requested or _STOP_EARLY.is_set()

    def execute_job(self, job: Job, queue: Queue) -> None:
        with logs.for_job(job):  # the job's lines, RQ's own in its forked child too, carry its ids
            if queue.name not in IN_PROCESS:
                return super().execute_job(job, queue)
            execution = self.prepare_execution(job)
            self.perform_job(job, queue, execution)
            self.set_state(WorkerStatus.IDLE)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.job_monitoring_interval + ABANDONED_AFTER

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        ctx = context()
        queues.sweep_now(self.connection, ctx.settings, ctx.store, every=IDLE_WAKE - 1)
        epolicies.remind_now(self.connection, ctx.store, ctx.settings, every=IDLE_WAKE - 1)
        audit.archive_now(self.connection, ctx.store, every=60)


def run(
    settings: Settings,
    *,
    burst: bool = False,
    name: str | None = None,
    metrics_port: int = 0,
    immediate_only: bool = False,
) -> bool:
    """Run one worker on all queues in priority order (only `immediate` with immediate_only); return when
    stopped (or, with burst, when idle).

    RQ's worker quits when Redis goes away under it (a restart, a failover); this one waits for Redis
    to answer again and carries on under a new name (the old one may still be registered)."""
    production.check(settings)
    if not immediate_only:
        opencv_on_one_thread()
    conn = queues.connect(settings.redis_target, for_worker=True)
    production.check_parts(settings, open_store(settings), conn)
    preload(settings)
    taken = [Queue(q, connection=conn) for q in (("immediate",) if immediate_only else queues.QUEUES)]
    exporter = metrics.WorkerExporter(settings.metrics_host, metrics_port) if metrics_port else None
    worked = False
    for life in itertools.count():
        this_name = f"{name}.{life}" if name and life else name
        if this_name:
            queues.end_dead_namesake(conn, this_name)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: _STOP_EARLY.set())
        worker = ImagingWorker(
            taken,
            connection=conn,
            name=this_name,
            job_monitoring_interval=HEARTBEAT,
            maintenance_interval=IDLE_WAKE,
            worker_ttl=IDLE_WAKE + 15,  # RQ waits on the queues worker_ttl - 15 s at a time
        )
        if exporter:
            exporter.worker = worker
        try:
            worked = worker.work(burst=burst, with_scheduler=True, logging_level="INFO") or worked
        except RedisError as exc:  # raised from RQ's teardown when Redis is away
            log.warning("worker %s: Redis error on the way out: %s", worker.name, exc)
        if burst or worker._stop_requested or worker._shutdown_requested_date is not None:
            return worked
        log.warning("worker %s: lost Redis; waiting for it to answer again", worker.name)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # RQ's handlers need Redis; no job is in hand
        signal.signal(signal.SIGINT, signal.default_int_handler)
        queues.wait_for(conn)
    return worked
