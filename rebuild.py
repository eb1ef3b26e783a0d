"""`imaging rebuild`: what Redis holds for work in progress, made again from the object store after Redis
lost it (a flush, a new empty Redis, a restore from an older snapshot).

The store is the truth; Redis holds only what is derived from it: the open-scan ledger and capture jobs
(scans still ``queued``), the key-entry pool (fields still ``key_entry``, with the values keyed so far,
which keyentry.py writes into the record as each round ends), e-policy versions still ``rendering`` and
mails still ``queued``, webhook deliveries not yet done (and the operators' list of events), customers'
mails taken in whose scan or reply was not queued. Everything is keyed as it was first made (job ids, task
ids), so running this on a Redis that lost nothing adds nothing; a rebuilt job that ran already finds its
work done.

Not rebuilt: the failed registry (a failed scan's record says ``failed``; `imaging jobs requeue` needs its
job, so send such scans again), the access log of image reads (a Redis stream, lost with Redis: keep
Redis's append-only file and its backups), finished jobs' results.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from redis import Redis
from rq.job import Job

import epolicies
import events
import keyentry
import queues
from models import DocumentRecord, EPolicy, Mail, MailStatus, Scan, find
from settings import Settings
from storage import ObjectStore
from vocabulary import FieldStatus, ScanMode, ScanStatus

log = logging.getLogger("imaging.rebuild")


@dataclass
class RebuildReport:
    scans: list[str] = field(default_factory=list)  # open scans queued again
    tasks: list[str] = field(default_factory=list)  # key-entry tasks made again
    epolicies: list[str] = field(default_factory=list)  # versions queued for signing again
    mails: list[str] = field(default_factory=list)  # mails queued again
    webhooks: list[str] = field(default_factory=list)  # webhook deliveries queued again (event id/n)
    mail_in: list[str] = field(default_factory=list)  # customers' mails whose scan or reply is queued again


def _records(store: ObjectStore, prefix: str, suffix: str) -> list[str]:
    return [i.key for i in store.list(prefix) if i.key.endswith(suffix)]


def _open_scans(
    conn: Redis, settings: Settings, store: ObjectStore, report: RebuildReport
) -> dict[str, Scan]:
    scans: dict[str, Scan] = {}
    for key in _records(store, "scans/", ".json"):
        scan = find(store, Scan, key.removeprefix("scans/").removesuffix(".json"))
        if scan is None:
            continue
        scans[scan.scan_id] = scan
        if scan.status != ScanStatus.queued or conn.zscore(queues.OPEN_SCANS, scan.scan_id) is not None:
            continue
        conn.zadd(queues.OPEN_SCANS, {scan.scan_id: scan.uploaded_at.timestamp()}, nx=True)
        job_id = queues.capture_job_id(scan.scan_id)
        queues.enqueue(conn, settings, scan.mode.value, queues.CAPTURE_SCAN, scan.scan_id, job_id=job_id)
        report.scans.append(scan.scan_id)
    return scans


def _tasks(conn: Redis, store: ObjectStore, scans: dict[str, Scan], report: RebuildReport) -> None:
    for key in _records(store, "documents/", "/record.json"):
        record = find(store, DocumentRecord, key.split("/")[1])
        if record is None or record.on_file or record.rescan or record.superseded_by:
            continue  # a card on file, a page to scan again or scanned again: nothing of it is keyed
        waiting = [n for n, f in record.fields.items() if f.status == FieldStatus.key_entry]
        missing = [
            n for n in waiting if not conn.exists(keyentry.PREFIX + keyentry.task_id_for(record.doc_id, n))
        ]
        if not missing:
            continue
        scan = scans.get(record.scan_id)
        keyentry.add_tasks(conn, record, immediate=scan is not None and scan.mode == ScanMode.immediate)
        for name in missing:
            task_id = keyentry.task_id_for(record.doc_id, name)
            entries = [e.model_dump(mode="json") for e in record.fields[name].entries]
            if entries:  # the first blind value (or two that differ): the next keyer must be someone else
                conn.hset(
                    keyentry.PREFIX + task_id,
                    mapping={
                        "entries": json.dumps(entries, ensure_ascii=False),
                        "keyers": "," + "".join(e["keyer"] + "," for e in entries),
                        "round": "blind" if len(entries) == 1 else "arbitration",
                    },
                )
            report.tasks.append(task_id)


def _epolicies(conn: Redis, settings: Settings, store: ObjectStore, report: RebuildReport) -> None:
    for key in _records(store, "epolicies/", "/policy.json"):
        policy = find(store, EPolicy, key.split("/")[1])
        for version in policy.versions if policy else []:
            job_id = f"epolicy-{policy.policy_no}-v{version.version}"
            if version.status == "rendering" and not Job.exists(job_id, connection=conn):
                args = (policy.policy_no, version.version)
                queues.enqueue(conn, settings, "esign", queues.ISSUE_EPOLICY, *args, job_id=job_id)
                report.epolicies.append(job_id)
    for key in _records(store, "mail/", ".json"):
        mail = find(store, Mail, key.removeprefix("mail/").removesuffix(".json"))
        if (
            mail
            and mail.status == MailStatus.queued
            and not Job.exists(f"mail-{mail.mail_id}", connection=conn)
        ):
            epolicies.queue_delivery(conn, settings, mail.mail_id)
            report.mails.append(mail.mail_id)


def _events(conn: Redis, settings: Settings, store: ObjectStore, report: RebuildReport) -> None:
    """Put every event back in the operators' list, and queue again each delivery not yet done whose job
    Redis lost (its first job id, or its latest replay's)."""
    for key in _records(store, "events/", ".json"):
        event = find(store, events.Event, key.removeprefix("events/").removesuffix(".json"))
        if event is None:
            continue
        conn.zadd(events.RECENT, {event.event_id: event.created_at.timestamp()}, nx=True)
        report.webhooks += [f"{event.event_id}/{n}" for n in events.requeue_lost(conn, settings, event)]


def _mail_in(conn: Redis, settings: Settings, store: ObjectStore, report: RebuildReport) -> None:
    """Queue again a customer's mail taken in whose scan was not made, or whose reply was not queued."""
    from intake.take import MailIn, queue_reply, queue_take

    for key in _records(store, "mailin/", ".json"):
        record = find(store, MailIn, key.removeprefix("mailin/").removesuffix(".json"))
        if record is None:
            continue
        scan = find(store, Scan, record.scan_id) if record.scan_id else None
        mail_id = record.mail_id
        if scan is None and not Job.exists(f"take-{mail_id}", connection=conn):
            queue_take(conn, settings, mail_id)
            report.mail_in.append(mail_id)
        ended = scan is not None and scan.status in (ScanStatus.captured, ScanStatus.failed)
        if ended and not record.reply_mail_id and not Job.exists(f"reply-{mail_id}", connection=conn):
            queue_reply(conn, settings, mail_id)
            report.mail_in.append(mail_id)


def rebuild(conn: Redis, settings: Settings, store: ObjectStore) -> RebuildReport:
    """Return what was made again in Redis from the store: open scans and their jobs, key-entry tasks with
    the values keyed so far, e-policy signing and mail jobs."""
    report = RebuildReport()
    scans = _open_scans(conn, settings, store, report)
    _tasks(conn, store, scans, report)
    _epolicies(conn, settings, store, report)
    _events(conn, settings, store, report)
    _mail_in(conn, settings, store, report)
    log.info(
        "rebuilt: %d open scans, %d key-entry tasks, %d e-policy versions, %d mails",
        len(report.scans),
        len(report.tasks),
        len(report.epolicies),
        len(report.mails),
    )
    return report
