"""RQ jobs and the worker process: each job a thin function that loads, calls the rooms in order, and stores.

A worker takes the queues in priority order (queues.py): ``immediate`` (a customer is waiting at the
counter) before ``esign`` and ``mail``, and the ``batch`` backlog last.

Every job is idempotent: its outputs are keyed by its inputs and it returns early when its record
says the work is done, so a retry, a requeue or a second worker running it changes nothing.
A job that fails because a dependency is down (``DependencyDown``) is retried with backoff; any other
failure is permanent and goes straight to RQ's failed registry, where ``imaging jobs`` finds it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import ParamSpec, TypeVar

from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.timeouts import JobTimeoutException

import epolicies
import events
import figures
import metrics
import queues
from errors import DependencyDown
from indexing.claim import claim_case
from intake.contacts import note as note_contact
from intake.take import scan_ended
from models import EPolicy, EPolicyStatus, Mail, MailStatus, Scan, ScanPage, epolicy_file, load, mail_body_key
from settings import Settings, load_settings
from storage import ObjectStore, open_store
from vocabulary import ScanMode, ScanStatus, utcnow

log = logging.getLogger("imaging.worker")

RETRYABLE = (DependencyDown, RedisError)
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Context:
    settings: Settings
    store: ObjectStore


@functools.cache
def context() -> Context:
    """Return this process's settings and store, made once per worker process."""
    settings = load_settings()
    return Context(settings, open_store(settings))


def _redis(ctx: Context) -> Redis:
    current = get_current_job()
    return current.connection if current is not None else queues.connect(ctx.settings.redis_target)


def job(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark fn as a job: only DependencyDown failures (and Redis errors: a Redis restart in the middle
    of a job) are retried, everything else fails for good."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with metrics.job_observed(fn.__name__):  # its logs carry its ids; its end is counted
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


def _captured(
    ctx: Context, scan: Scan, pages: list[int], per_file: list[int], reports: list, give_way: Callable
) -> Iterator[tuple[str, list[int], list[str]]]:
    """Yield each document's id, source pages and rescan problems as it is read, filed and queued for
    key-entry. ``pages`` gains the number of each page read, ``per_file`` each file's count of pages,
    ``reports`` what became of each page. Each document is stored as soon as it is read, so a long stack
    never sits in memory whole."""
    from capture.decode import iter_pages
    from capture.pipeline import capture_stream
    from indexing.filing import cards_together, file_document
    from keyentry import add_tasks
    from ocr.pipeline import read_document
    from ocr.tesseract import orientation

    s = ctx.settings

    def counted(stream):
        for page in stream:
            pages.append(page.number)
            give_way()
            yield page

    index = 0
    for file in scan.files:
        offset = len(pages)
        original = ctx.store.get_original(file.sha256)
        decoded = iter_pages(original, s.max_page_pixels, s.max_pages - offset, s.page_seconds)
        stream = counted(replace(page, number=offset + page.number) for page in decoded)
        for group in cards_together(capture_stream(stream, reports, orientation)):
            fronts: list[str] = []
            for document in group:
                give_way()
                index += 1
                record = file_document(ctx.store, scan, index, document, read_document(document), fronts)
                if not record.on_file and not record.rescan:  # a page to scan again is not keyed
                    add_tasks(_redis(ctx), record, immediate=scan.mode == ScanMode.immediate)
                    metrics.count_fields(_redis(ctx), record)
                where = f"{document.type} on page {document.pages[0]}"
                yield record.doc_id, document.pages, [f"{where}: {p}" for p in document.problems]
        per_file.append(len(pages) - offset)


def _failure(ctx: Context, exc: Exception, pages: int) -> str:
    """Return what a person reads for a scan that failed: the error's own message, or the timeout's."""
    if isinstance(exc, JobTimeoutException):  # RQ's alarm, after IMAGING_JOB_TIMEOUT
        return (
            f"reading the scan took longer than {ctx.settings.job_timeout} s (IMAGING_JOB_TIMEOUT) "
            f"after {pages} pages; split the stack and send the parts"
        )
    return getattr(exc, "message", None) or f"internal error ({type(exc).__name__})"


@job
def capture_scan(scan_id: str) -> dict:
    """Return the scan's outcome after capturing it into documents with page and field images."""
    ctx = context()
    scan = load(ctx.store, Scan, scan_id)
    if scan.status == ScanStatus.captured:  # done before; a failed scan that is requeued runs again
        events.scan_settled(_redis(ctx), ctx.store, ctx.settings, scan_id)  # a retry after they failed
        queues.close_scan(_redis(ctx), scan_id)
        scan_ended(_redis(ctx), ctx.settings, scan)
        return {"scan_id": scan_id, "status": scan.status, "documents": scan.documents}
    pages: list[int] = []
    per_file: list[int] = []
    doc_ids: list[str] = []
    problems: list[str] = []
    reports: list = []
    on_page: dict[int, list[str]] = {}
    try:
        with queues.taking_turns(_redis(ctx), ctx.settings, scan) as give_way:  # batch waits for immediate
            captured = list(_captured(ctx, scan, pages, per_file, reports, give_way))
        for doc_id, source_pages, found in captured:
            doc_ids.append(doc_id)
            problems += found
            for number in source_pages:
                on_page.setdefault(number, []).append(doc_id)
    except RETRYABLE:
        raise
    except Exception as exc:
        failed = {"status": ScanStatus.failed, "error": _failure(ctx, exc, len(pages))}
        _save_scan(ctx.store, scan.model_copy(update=failed))
        queues.close_scan(_redis(ctx), scan_id)
        scan_ended(_redis(ctx), ctx.settings, scan)  # a mailed scan's sender hears it could not be read
        raise
    outcomes = [ScanPage(**r.to_json(), documents=on_page.get(r.number, [])) for r in reports]
    problems += [f"page {r.number} not read: {r.reason}" for r in reports if r.reason]
    problems += [f"page {r.number}: {region}" for r in reports for region in r.passed_over]
    files = [f.model_copy(update={"pages": n}) for f, n in zip(scan.files, per_file, strict=True)]
    done = {"status": ScanStatus.captured, "pages": len(pages), "documents": doc_ids, "problems": problems}
    done["files"] = files  # each file's pages, so the counter finds the file of "page 3"
    done["page_outcomes"] = outcomes  # every page, with what became of it
    from keyentry import settle

    settle(_redis(ctx), ctx.store, scan_id, done)  # whose each document is, by its evidence, then the scan
    events.scan_settled(_redis(ctx), ctx.store, ctx.settings, scan_id)  # documents (and claims) complete
    figures.note_scan(_redis(ctx), ctx.store, scan_id)  # the managers' figures (figures.py)
    queues.close_scan(_redis(ctx), scan_id)
    scan_ended(_redis(ctx), ctx.settings, scan)  # a mailed scan: its reply
    return {"scan_id": scan_id, "status": ScanStatus.captured, "documents": doc_ids}


def _save_scan(store: ObjectStore, scan: Scan) -> None:
    store.put(scan.key, scan.model_copy(update={"updated_at": utcnow()}).to_json(), "application/json")


@job
def deliver_mail(mail_id: str) -> dict:
    """Return where the mail went, after delivering it once (a repeated run finds it sent and stops)."""
    ctx = context()
    return _deliver(ctx, _redis(ctx), load(ctx.store, Mail, mail_id))


def _deliver(ctx: Context, conn: Redis, mail: Mail, message: EmailMessage | None = None) -> dict:
    """Return where the mail went, after delivering it once (its stored message unless given) and writing
    the outcome into its record and its e-policy's; raise what the delivery raised, after recording it."""
    from email import message_from_bytes, policy

    from esign.mail import deliver, transport_from_settings

    store = ctx.store
    if mail.status == MailStatus.sent:
        return {"mail_id": mail.mail_id, "status": mail.status, "delivered_to": mail.delivered_to}
    if message is None:
        message = message_from_bytes(store.get(mail_body_key(mail.mail_id)), policy=policy.default)
    attempt = mail.model_copy(update={"attempts": mail.attempts + 1})
    try:
        where = deliver(message, mail.mail_id, transport_from_settings(ctx.settings))
    except Exception as exc:
        status = MailStatus.queued if isinstance(exc, DependencyDown) else MailStatus.failed
        failed = attempt.model_copy(update={"status": status, "last_error": str(exc)})
        store.put(failed.key, failed.to_json(), "application/json")
        epolicies.delivery_done(conn, store, failed)
        raise
    sent = attempt.model_copy(
        update={"status": MailStatus.sent, "sent_at": utcnow(), "delivered_to": where, "last_error": None}
    )
    store.put(sent.key, sent.to_json(), "application/json")
    epolicies.delivery_done(conn, store, sent)
    if mail.policy_no:
        metrics.count(conn, "epolicies", event="mailed")
    return {"mail_id": mail.mail_id, "status": sent.status, "delivered_to": where}


def _send_now(ctx: Context, conn: Redis, mail_id: str, message: EmailMessage) -> None:
    """Send an e-policy's mail in the job that signed it (no mail job to queue, pick up and parse its
    message again): its delivery is recorded before, as the mail job's is. A mail server away leaves
    the mail to the mail queue's retries; a refusal stays recorded on the delivery (staff resend it)."""
    try:
        _deliver(ctx, conn, load(ctx.store, Mail, mail_id), message)
    except DependencyDown as exc:
        log.info("mail %s not sent now (%s): queued for retries", mail_id, exc)
        epolicies.queue_delivery(conn, ctx.settings, mail_id)
    except RETRYABLE:
        raise
    except Exception as exc:
        log.warning("mail %s failed: %s", mail_id, getattr(exc, "message", None) or exc)
        metrics.count(conn, "epolicies", event="failed")


@job
def deliver_webhook(event_id: str, n: int) -> dict:
    """Return the delivery's state after one attempt to send the event to its n-th URL; a receiver that
    does not answer 2xx raises WebhookUnavailable, and RQ tries again after
    IMAGING_WEBHOOK_RETRY_INTERVALS."""
    ctx = context()
    current = get_current_job()
    last = current is not None and not current.retries_left  # no retry follows this attempt
    delivery = events.deliver(_redis(ctx), ctx.store, ctx.settings, event_id, n, last=last)
    return {"event_id": event_id, "url": delivery.url, "state": delivery.state}


@job
def announce_scan(scan_id: str) -> dict:
    """Return the events recorded for a scan a person changed (a keyed value, a decided review): a
    document completed, a claim's material complete; none twice."""
    ctx = context()
    recorded = events.scan_settled(_redis(ctx), ctx.store, ctx.settings, scan_id)
    return {"scan_id": scan_id, "events": [e.event_id for e in recorded]}


@job
def take_mail(mail_id: str) -> dict:
    """Return the scan a customer's mail became (intake/take.py): its attachments stored and queued for
    capture under the claim or policy number of its subject; a rerun finds the scan and adds nothing."""
    from intake.take import take

    ctx = context()
    return {"mail_id": mail_id, "scan_id": take(_redis(ctx), ctx.store, ctx.settings, mail_id)}


@job
def reply_mail(mail_id: str) -> dict:
    """Return the reply queued to a mail whose scan was captured: what arrived and was read, and for a
    claim what is still missing (the claim case's checklist); once."""
    from intake.take import MailIn, reply

    ctx = context()
    record = load(ctx.store, MailIn, mail_id)
    missing = None
    if record.kind == "claim":
        missing = claim_case(ctx.store, _redis(ctx), record.number, ctx.settings).missing
    mail = reply(_redis(ctx), ctx.store, ctx.settings, mail_id, missing)
    return {"mail_id": mail_id, "reply": mail.mail_id}


@job
def issue_epolicy(policy_no: str, version: int) -> dict:
    """Return the version's status after rendering, signing and storing its PDFs, indexing it and
    mailing it to the holder. A rerun finds the stored PDFs and the recorded mail and adds nothing."""
    from esign import sign
    from esign.epolicy import customer_password
    from esign.render import document_metadata, render
    from indexing.archive import epolicy_parties, file_parties
    from indexing.filing import file_epolicy

    ctx = context()
    store, settings, conn = ctx.store, ctx.settings, _redis(ctx)
    request = epolicies.load_request(store, policy_no, version)
    entry = load(store, EPolicy, policy_no).versions[version - 1]
    password, _ = customer_password(request, settings.password_rule(request.product_code))
    customer_key = epolicy_file(policy_no, version, "customer")
    if not store.exists(customer_key):
        # The QR code names the version and its data's digest: /verify then shows what that version says.
        check_url = f"{settings.base_url}/verify/{policy_no}?v={version}&d={entry.digest[:20]}"
        now = utcnow()
        pdf = render(request, version, check_url, now, sign.seal_look_from_settings(settings))
        copies = sign.seal_as_configured(pdf, settings, password, document_metadata(request, version, now))
        store.put(epolicy_file(policy_no, version, "archive"), copies.archive, "application/pdf")
        store.put(customer_key, copies.customer, "application/pdf")
        metrics.count(conn, "epolicies", event="issued")
    people = (request.holder.id_number, request.insured.id_number)
    doc = file_epolicy(store, policy_no, version, entry.requested_at, people)
    parties = epolicy_parties(request.holder, request.insured, request.beneficiaries)
    file_parties(
        store, doc.doc_id, "policy", policy_no, parties, lambda key: conn.lock(f"lock:{key}", timeout=30)
    )
    note_contact(  # the holder's address: their mail is taken in (mail-in intake)
        store,
        request.holder.email,
        request.holder.id_number,
        policy_no,
        lambda k: conn.lock(f"lock:{k}", timeout=30),
    )
    record = epolicies.mark_signed(conn, store, policy_no, version, doc.doc_id)
    for mail_id, message in epolicies.mail_once(conn, store, settings, record, version):
        _send_now(ctx, conn, mail_id, message)
    return {"policy_no": policy_no, "version": version, "status": EPolicyStatus.signed}
