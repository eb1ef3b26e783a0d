"""RQ jobs and the queues they run on: thin functions that load, call the rooms in order, and store.

Queues in priority order: a worker always takes ``immediate`` (a customer is waiting at the counter)
before ``esign`` and ``mail``, and the ``batch`` backlog last.

Every job is idempotent: its outputs are keyed by its inputs and it returns early when its record
says the work is done, so a retry, a requeue or a second worker running it changes nothing.
A job that fails because a dependency is down (``DependencyDown``) is retried with backoff; any other
failure is permanent and goes straight to RQ's failed registry, where ``imaging jobs`` finds it.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import secrets
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import ParamSpec, TypeVar

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, Worker, get_current_job
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.timeouts import JobTimeoutException

from errors import ConfigError, DependencyDown, QueueUnavailable
from models import (
    Delivery,
    DocumentRecord,
    EPolicy,
    EPolicyStatus,
    FieldRecord,
    Mail,
    MailStatus,
    Scan,
    document_key,
    epolicy_file,
    epolicy_key,
    mail_body_key,
    mail_key,
    scan_key,
)
from settings import Settings, load_settings
from storage import ObjectNotFound, ObjectStore, open_store
from vocabulary import ScanMode, ScanStatus, doc_id_for, utcnow

log = logging.getLogger("imaging.worker")

QUEUES = ("immediate", "esign", "mail", "batch")
# A busy worker says it is alive every HEARTBEAT seconds; a job whose worker has been silent for
# ABANDONED_AFTER more (killed, machine lost) is retried by another worker, which looks for such jobs
# every IDLE_WAKE seconds even when idle. RQ's defaults (90 s, then up to 10 min) are too slow for a
# customer at the counter.
HEARTBEAT = 5
ABANDONED_AFTER = 30
IDLE_WAKE = 20
# Every acknowledged scan is in this sorted set (score: upload time) until its capture ends; the sweep
# (see sweep_scans) queues again any whose job Redis no longer holds in a queue or a registry.
OPEN_SCANS = "scans:open"
SWEEP_AFTER = 60  # seconds a scan may wait before the sweep looks at its job
RETRYABLE = (DependencyDown, RedisError)
P = ParamSpec("P")
R = TypeVar("R")


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
    func: Callable[..., object],
    *args: object,
    job_id: str,
) -> Job:
    """Return the job with this id, enqueued now or found already queued, running or done."""
    if queue_name not in QUEUES:
        raise ValueError(f"unknown queue {queue_name!r}")
    intervals = settings.retry_schedule
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
        )
    except DuplicateJobError:
        return Job.fetch(job_id, connection=conn)
    except RedisError as exc:
        raise QueueUnavailable(f"Redis did not take job {job_id}: {exc}") from exc


@dataclass(frozen=True)
class Context:
    settings: Settings
    store: ObjectStore


@functools.cache
def context() -> Context:
    """Return this process's settings and store, made once per worker process."""
    settings = load_settings()
    return Context(settings, open_store(settings))


def job(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark fn as a job: only DependencyDown failures (and Redis errors: a Redis restart in the middle
    of a job) are retried, everything else fails for good."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except RETRYABLE:
            raise
        except Exception:
            current = get_current_job()
            if current is not None:
                current.retries_left = 0  # read by RQ's worker right after this raise
            raise

    return run


# ---- jobs ---------------------------------------------------------------------------------------


@job
def capture_scan(scan_id: str) -> dict:
    """Return the scan's outcome after capturing it into documents with page and field images."""
    from capture.decode import iter_pages
    from capture.pipeline import capture_stream
    from keyentry import add_tasks
    from ocr.pipeline import read_document

    ctx = context()
    store = ctx.store
    scan = Scan.model_validate_json(store.get(scan_key(scan_id)))
    if scan.status == ScanStatus.captured:  # done before; a failed scan that is requeued runs again
        _redis(ctx).zrem(OPEN_SCANS, scan_id)
        return {"scan_id": scan_id, "status": scan.status, "documents": scan.documents}
    pages: list[int] = []
    doc_ids: list[str] = []
    problems: list[str] = []

    def counted(stream):
        for page in stream:
            pages.append(page.number)
            yield page

    try:
        for file in scan.files:
            offset = len(pages)
            original = store.get_original(file.sha256)
            stream = counted(
                replace(page, number=offset + page.number)
                for page in iter_pages(
                    original,
                    ctx.settings.max_page_pixels,
                    ctx.settings.max_pages - offset,
                    ctx.settings.page_seconds,
                )
            )
            # Each document is stored as soon as it is read, so a long stack never sits in memory whole;
            # the ID cards of one page come together, fronts first, so a back knows its customer.
            for group in _cards_together(capture_stream(stream)):
                fronts: list[str] = []
                for document in group:
                    record = _store_document(
                        store, scan, len(doc_ids) + 1, document, read_document(document), fronts
                    )
                    doc_ids.append(record.doc_id)
                    where = f"{document.type} on page {document.pages[0]}"
                    problems += [f"{where}: {p}" for p in document.problems]
                    if not record.on_file:
                        add_tasks(_redis(ctx), record, immediate=scan.mode == ScanMode.immediate)
    except RETRYABLE:
        raise
    except Exception as exc:
        message = getattr(exc, "message", None) or f"internal error ({type(exc).__name__})"
        if isinstance(exc, JobTimeoutException):  # RQ's alarm, after IMAGING_JOB_TIMEOUT
            message = (
                f"reading the scan took longer than {ctx.settings.job_timeout} s (IMAGING_JOB_TIMEOUT) "
                f"after {len(pages)} pages; split the stack and send the parts"
            )
        _save_scan(store, scan.model_copy(update={"status": ScanStatus.failed, "error": message}))
        _redis(ctx).zrem(OPEN_SCANS, scan_id)
        raise
    _save_scan(
        store,
        scan.model_copy(
            update={
                "status": ScanStatus.captured,
                "pages": len(pages),
                "documents": doc_ids,
                "problems": problems,
            }
        ),
    )
    _redis(ctx).zrem(OPEN_SCANS, scan_id)
    return {"scan_id": scan_id, "status": ScanStatus.captured, "documents": doc_ids}


def _redis(ctx: Context) -> Redis:
    current = get_current_job()
    return current.connection if current is not None else connect(ctx.settings.redis_url)


def _cards_together(documents):
    """Yield the documents in lists: the ID cards found on one page together, fronts first; others alone."""
    held: list = []
    for document in documents:
        if held and (not _is_card(document) or document.pages != held[0].pages):
            yield sorted(held, key=lambda d: d.type != "idcard_front")
            held = []
        if _is_card(document):
            held.append(document)
        else:
            yield [document]
    if held:
        yield sorted(held, key=lambda d: d.type != "idcard_front")


def _is_card(document) -> bool:
    return str(document.type) in ("idcard_front", "idcard_back")


def _store_document(
    store: ObjectStore, scan: Scan, index: int, document, decisions: dict, fronts: list[str]
) -> DocumentRecord:
    """Return the document's record after writing its images, its index entries and the record (the same
    keys on every run). An ID card side already on file is linked to, not stored again. ``fronts`` holds
    the customers of the fronts on the same page, and gains this one if it is a front."""
    from capture.decode import encode_png, thumbnail_png
    from indexing.index import card_on_file, default_stage, document_keys, enter

    doc_id = doc_id_for(scan.scan_id, index)
    base = f"documents/{doc_id}"
    template = document.template
    double = {f.name for f in template.fields if f.double_entry} if template else set()
    doc_type = str(document.type)
    if doc_type == "other" and default_stage(scan) == "claims":
        doc_type = "claim_evidence"  # pages sent for a claim that are no form or card: its evidence
    images = [encode_png(image) for image in document.images]
    sha = hashlib.sha256(images[0]).hexdigest() if images and _is_card(document) else None
    customer = None
    if doc_type == "idcard_front":
        front = decisions.get("id_number")
        customer = front.value if front is not None and front.status == "accepted" else None
        fronts.append(customer or "")
    elif doc_type == "idcard_back" and len(fronts) == 1 and fronts[0]:
        customer = fronts[0]  # the one front on the same page
    on_file = card_on_file(store, doc_id, doc_type, decisions, customer, sha)
    pages, thumbnail = [], on_file.thumbnail if on_file else None
    if on_file is None:
        for number, png in enumerate(images, start=1):
            pages.append(f"{base}/pages/{number}.png")
            store.put(pages[-1], png, "image/png", {"doc_id": doc_id})
        if document.images:
            thumbnail = f"{base}/thumbnail.png"
            store.put(thumbnail, thumbnail_png(document.images[0]), "image/png", {"doc_id": doc_id})

    def field_record(item) -> FieldRecord:
        key = f"{base}/fields/{item.name}.png"
        store.put(key, encode_png(item.image), "image/png", {"doc_id": doc_id, "field": item.name})
        decision = decisions.get(item.name)
        return FieldRecord(
            box=list(item.box),
            quad=[list(p) for p in item.quad],
            page=item.page,
            image=key,
            kind=item.kind,
            text=item.text,
            **(
                {
                    "value": decision.value,
                    "confidence": round(decision.confidence, 1),
                    "status": decision.status,
                    "reasons": decision.reasons,
                    "suggestion": decision.suggestion,
                    "double_entry": item.name in double,
                }
                if decision
                else {}
            ),
        )

    record = DocumentRecord(
        doc_id=doc_id,
        scan_id=scan.scan_id,
        type=doc_type,
        template=document.template_key,
        source_pages=document.pages,
        pages=on_file.pages if on_file else pages,
        thumbnail=thumbnail,
        status=document.status,
        problems=document.problems,
        application_no=document.application_no,
        fields=on_file.fields if on_file else {n: field_record(f) for n, f in document.fields.items()},
        regions=on_file.regions if on_file else {n: field_record(r) for n, r in document.regions.items()},
        captured_at=utcnow(),
        stage=default_stage(scan),
        on_file=on_file.doc_id if on_file else None,
        image_sha256=sha,
    )
    record.complete = all(f.status in ("accepted", "keyed") for f in record.fields.values())
    record.keys = document_keys(record, scan, customer if doc_type == "idcard_back" else None)
    record = enter(store, record)
    meta = {"scan_id": scan.scan_id, "type": doc_type}
    store.put(document_key(doc_id), record.to_json(), "application/json", meta)
    return record


@job
def deliver_mail(mail_id: str) -> dict:
    """Return where the mail went, after delivering it once (a repeated run finds it sent and stops)."""
    from email import message_from_bytes, policy

    from esign.mail import Outbox, SmtpServer, deliver

    ctx = context()
    store = ctx.store
    mail = Mail.model_validate_json(store.get(mail_key(mail_id)))
    if mail.status == MailStatus.sent:
        return {"mail_id": mail_id, "status": mail.status, "delivered_to": mail.delivered_to}
    message = message_from_bytes(store.get(mail_body_key(mail_id)), policy=policy.default)
    s = ctx.settings
    transport: SmtpServer | Outbox = (
        SmtpServer(
            s.smtp_host,
            s.smtp_port,
            s.smtp_starttls,
            s.smtp_user,
            s.smtp_password.get_secret_value() if s.smtp_password else None,
            s.smtp_timeout,
        )
        if s.smtp_host
        else Outbox(s.outbox_dir)
    )
    attempt = mail.model_copy(update={"attempts": mail.attempts + 1})
    try:
        where = deliver(message, mail_id, transport)  # type: ignore[arg-type]
    except Exception as exc:
        status = MailStatus.queued if isinstance(exc, DependencyDown) else MailStatus.failed
        failed = attempt.model_copy(update={"status": status, "last_error": str(exc)})
        store.put(mail_key(mail_id), failed.to_json(), "application/json")
        _delivery_done(_redis(ctx), store, failed)
        raise
    sent = attempt.model_copy(
        update={"status": MailStatus.sent, "sent_at": utcnow(), "delivered_to": where, "last_error": None}
    )
    store.put(mail_key(mail_id), sent.to_json(), "application/json")
    _delivery_done(_redis(ctx), store, sent)
    return {"mail_id": mail_id, "status": sent.status, "delivered_to": where}


@job
def issue_epolicy(policy_no: str, version: int) -> dict:
    """Return the version's status after rendering, signing and storing its PDFs, indexing it and
    queueing the mail to the holder. A rerun finds the stored PDFs and the queued mail and adds nothing."""
    from esign.epolicy import EPolicyRequest, customer_password
    from esign.render import render
    from esign.sign import seal, signer_from_settings, timestamper_from_settings
    from indexing.index import enter

    ctx = context()
    store, settings, conn = ctx.store, ctx.settings, _redis(ctx)
    request = EPolicyRequest.model_validate_json(store.get(epolicy_file(policy_no, version, "request")))
    record = EPolicy.model_validate_json(store.get(epolicy_key(policy_no)))
    entry = record.versions[version - 1]
    password, _ = customer_password(request, settings.password_rule(request.product_code))
    customer_key = epolicy_file(policy_no, version, "customer")
    if not store.exists(customer_key):
        pdf = render(request, version, f"{settings.base_url}/verify/{policy_no}")
        signer = signer_from_settings(settings)
        # The owner password is random and thrown away: nobody is meant to change the file.
        copies = seal(pdf, signer, password, secrets.token_urlsafe(24), timestamper_from_settings(settings))
        store.put(epolicy_file(policy_no, version, "archive"), copies.archive, "application/pdf")
        store.put(customer_key, copies.customer, "application/pdf")
    doc = DocumentRecord(
        doc_id=f"d{entry.requested_at:%Y%m%d%H%M%S}{hashlib.sha256(policy_no.encode()).hexdigest()[:12]}"
        f"{version % 1000:03d}",
        scan_id=f"epolicy-{policy_no}-v{version}",
        type="epolicy",
        source_pages=[],
        pages=[],
        status="ok",
        captured_at=entry.requested_at,
        complete=True,
        stage="new_business" if version == 1 else "servicing",
        keys={
            "policy": [policy_no],
            "customer": sorted({request.holder.id_number, request.insured.id_number}),
        },
    )
    doc = enter(store, doc)
    store.put(document_key(doc.doc_id), doc.to_json(), "application/json", {"type": "epolicy"})

    def signed(policy: EPolicy) -> None:
        v = policy.versions[version - 1]
        if v.status == EPolicyStatus.rendering:
            v.status, v.signed_at, v.doc_id = EPolicyStatus.signed, utcnow(), doc.doc_id

    record = update_epolicy(conn, store, policy_no, signed)
    if not any(d.version == version for d in record.deliveries):
        mail_epolicy(conn, store, settings, policy_no, version)
    else:  # a rerun after a crash between recording the mail and queueing it: queue it (once)
        for d in record.deliveries:
            if d.version == version and d.status == "queued":
                enqueue(conn, settings, "mail", deliver_mail, d.mail_id, job_id=f"mail-{d.mail_id}")
    return {"policy_no": policy_no, "version": version, "status": EPolicyStatus.signed}


def mail_epolicy(conn: Redis, store: ObjectStore, settings: Settings, policy_no: str, version: int) -> Mail:
    """Return the mail queued to the holder with a signed version attached, after recording it as a
    delivery of that version; the letter says how to open the PDF and links to the customer's page."""
    from esign.epolicy import EPolicyRequest, customer_password
    from esign.letter import epolicy_letter
    from esign.tokens import make_token

    request = EPolicyRequest.model_validate_json(store.get(epolicy_file(policy_no, version, "request")))
    _, hint = customer_password(request, settings.password_rule(request.product_code))
    token = make_token(settings.token_key(), policy_no, settings.link_days * 86400)
    link = f"{settings.base_url}/epolicy/{token}"
    pdf = store.get(epolicy_file(policy_no, version, "customer"))
    letter = epolicy_letter(request, version, pdf, link, settings.mail_from, hint)
    mail = submit_mail(conn, store, settings, letter, policy_no=policy_no, enqueue_now=False)

    def queued(policy: EPolicy) -> None:
        policy.deliveries.append(
            Delivery(
                mail_id=mail.mail_id, version=version, to=mail.to[0] if mail.to else "", queued_at=utcnow()
            )
        )

    update_epolicy(conn, store, policy_no, queued)
    enqueue(conn, settings, "mail", deliver_mail, mail.mail_id, job_id=f"mail-{mail.mail_id}")
    return mail


def update_epolicy(
    conn: Redis,
    store: ObjectStore,
    policy_no: str,
    change: Callable[[EPolicy], object],
    create: bool = False,
) -> EPolicy:
    """Return the policy record after applying change to it under its lock (API and workers both write);
    with create, a policy not stored yet starts empty."""
    try:
        with conn.lock(f"lock:epolicy:{policy_no}", timeout=30, blocking_timeout=15):
            try:
                policy = EPolicy.model_validate_json(store.get(epolicy_key(policy_no)))
            except ObjectNotFound:
                if not create:
                    raise
                policy = EPolicy(policy_no=policy_no)
            change(policy)
            store.put(epolicy_key(policy_no), policy.to_json(), "application/json")
            return policy
    except RedisError as exc:
        raise QueueUnavailable(f"Redis: cannot lock e-policy {policy_no}: {exc}") from exc


def _delivery_done(conn: Redis, store: ObjectStore, mail: Mail) -> None:
    """Write a mail's outcome into its e-policy's record: sent, or delivery_failed with the reason."""
    if not mail.policy_no:
        return

    def outcome(policy: EPolicy) -> None:
        for d in policy.deliveries:
            if d.mail_id == mail.mail_id:
                retrying = mail.status == MailStatus.queued
                d.status = "retrying" if retrying else mail.status.value
                d.at, d.error = utcnow(), mail.last_error
                v = policy.versions[d.version - 1]
                if mail.status == MailStatus.sent:
                    v.status, v.reason = EPolicyStatus.sent, None
                else:
                    v.status = EPolicyStatus.delivery_failed
                    v.reason = f"{mail.last_error} (retrying)" if retrying else mail.last_error

    update_epolicy(conn, store, mail.policy_no, outcome)


def _save_scan(store: ObjectStore, scan: Scan) -> None:
    store.put(scan.key, scan.model_copy(update={"updated_at": utcnow()}).to_json(), "application/json")


# ---- submitting work ----------------------------------------------------------------------------


def submit_mail(
    conn: Redis,
    store: ObjectStore,
    settings: Settings,
    message: EmailMessage,
    policy_no: str | None = None,
    enqueue_now: bool = True,
) -> Mail:
    """Return the mail record after storing the message and (unless told not to) queueing its delivery."""
    mail = Mail(
        mail_id="m" + secrets.token_hex(16),
        to=[str(a) for a in message.get_all("To", [])],
        subject=str(message.get("Subject", "")),
        policy_no=policy_no,
    )
    store.put(mail_body_key(mail.mail_id), message.as_bytes(), "message/rfc822")
    store.put(mail_key(mail.mail_id), mail.to_json(), "application/json")
    if enqueue_now:
        enqueue(conn, settings, "mail", deliver_mail, mail.mail_id, job_id=f"mail-{mail.mail_id}")
    return mail


# ---- running workers and the failed registry ----------------------------------------------------


def preload(settings: Settings | None = None) -> None:
    """Import the heavy libraries once in the worker process, before RQ forks a child per job; with
    settings, also open a PKCS#12 signing key (not a PKCS#11 session: those do not survive a fork)."""
    import capture.pipeline  # noqa: F401  (numpy, opencv, Pillow, pypdfium2, reportlab)
    import esign.render  # noqa: F401
    import esign.verify  # noqa: F401
    from capture.render import cjk_font
    from capture.templates import templates
    from esign.sign import signer_from_settings
    from ocr.pipeline import preload as load_ocr

    templates()
    cjk_font()
    load_ocr()  # tesseract's chi_sim and eng, and the look-alike table: inherited by every forked job
    if settings is not None and not settings.pkcs11_module and settings.pkcs12_path.exists():
        try:
            signer_from_settings(settings)
        except ConfigError as exc:
            log.warning("signing key not loaded ahead: %s", exc.message)


class ImagingWorker(Worker):
    """RQ's worker, quicker to notice a dead colleague's job (see ABANDONED_AFTER)."""

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.job_monitoring_interval + ABANDONED_AFTER

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        if self.connection.set("lock:sweep", self.name, nx=True, ex=IDLE_WAKE - 1):
            ctx = context()
            try:
                sweep_scans(self.connection, ctx.settings, ctx.store)
            except (DependencyDown, RedisError) as exc:  # the next sweep tries again
                log.warning("sweep of open scans: %s", exc)


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
    held: set[str] = set()
    for name in QUEUES:
        queue = Queue(name, connection=conn)
        held.update(queue.get_job_ids())
        held.update(queue.intermediate_queue.get_job_ids())
        for registry in (queue.started_job_registry, queue.scheduled_job_registry, queue.failed_job_registry):
            held.update(registry.get_job_ids())
    lost = []
    for scan_id in candidates:
        job_id = f"capture-{scan_id}"
        if job_id in held:
            continue
        try:
            job = Job.fetch(job_id, connection=conn)
            status = job.get_status()
        except NoSuchJobError:
            job, status = None, None
        if status in ("finished", "failed", "canceled", "stopped", "deferred"):
            continue  # its end is recorded (or it waits on purpose); the scan is closed when it runs
        try:
            scan = Scan.model_validate_json(store.get(scan_key(scan_id)))
        except ObjectNotFound:
            scan = None
        if scan is None or scan.status in (ScanStatus.captured, ScanStatus.failed):
            conn.zrem(OPEN_SCANS, scan_id)  # refused after all, or its end was not recorded here
            continue
        if job is not None:
            job.delete()
        enqueue(conn, settings, scan.mode.value, capture_scan, scan_id, job_id=job_id)
        log.warning("scan %s: its capture job was lost (status %s); queued again", scan_id, status)
        lost.append(scan_id)
    return lost


def run(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Run one worker on all queues in priority order; return when stopped (or, with burst, when idle).

    RQ's worker quits when Redis goes away under it (a restart, a failover); this one waits for Redis
    to answer again and carries on under a new name (the old one may still be registered)."""
    conn = connect(settings.redis_url, for_worker=True)
    preload(settings)
    queues = [Queue(q, connection=conn) for q in QUEUES]
    worked = False
    for life in itertools.count():
        worker = ImagingWorker(
            queues,
            connection=conn,
            name=f"{name}.{life}" if name and life else name,
            job_monitoring_interval=HEARTBEAT,
            maintenance_interval=IDLE_WAKE,
            worker_ttl=IDLE_WAKE + 15,  # RQ waits on the queues worker_ttl - 15 s at a time
        )
        try:
            worked = worker.work(burst=burst, with_scheduler=True, logging_level="INFO") or worked
        except RedisError as exc:  # raised from RQ's teardown when Redis is away
            log.warning("worker %s: Redis error on the way out: %s", worker.name, exc)
        if burst or worker._stop_requested or worker._shutdown_requested_date is not None:
            return worked
        log.warning("worker %s: lost Redis; waiting for it to answer again", worker.name)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # RQ's handlers need Redis; no job is in hand
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _wait_for(conn)
    return worked


def _wait_for(conn: Redis, pause: float = 1.0, longest: float = 10.0) -> None:
    while True:
        time.sleep(pause)
        try:
            conn.ping()
            return
        except RedisError:
            pause = min(pause * 2, longest)


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
                found.append(
                    FailedJob(
                        j.id,
                        name,
                        j.func_name,
                        tuple(j.args),
                        j.ended_at.isoformat() if j.ended_at else "",
                        error[0] if error else "",
                    )
                )
    except RedisError as exc:
        raise QueueUnavailable(f"Redis: cannot read the failed registry: {exc}") from exc
    return sorted(found, key=lambda f: f.ended_at)


def requeue(conn: Redis, job_ids: Iterable[str]) -> list[str]:
    """Return the ids put back on their queues (ids not in a failed registry are skipped)."""
    wanted = set(job_ids)
    done: list[str] = []
    try:
        for name in QUEUES:
            registry = FailedJobRegistry(name, connection=conn)
            for job_id in registry.get_job_ids():
                if job_id in wanted:
                    registry.requeue(job_id)
                    done.append(job_id)
    except RedisError as exc:
        raise QueueUnavailable(f"Redis: cannot requeue: {exc}") from exc
    return done
