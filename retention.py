"""`imaging retention`: documents deleted when their retention period is over, and one customer's documents
deleted on request; never a document under legal hold, nor one filed under a policy still in force.

- Periods are per document type (``IMAGING_RETENTION_DAYS``, e.g. ``idcard_front:1825,application_form:
  10950``), counted from capture; a type not named is kept for ever.
- A legal hold (``imaging retention hold``) stands on a policy, claim or customer number, as
  ``holds/<kind>/<number or the customer's keyed hash>.json``; every document filed under it is kept.
- A policy is in force while its e-policy's current version has no expiry date or one not yet passed.
- A document goes index entries first (lookups stop finding it), then its images, then its record (so a
  run cut short is finished by the next); a scan whose documents are all gone loses its originals (the
  uploaded bytes, an ID card's image among them) and its record.
- Each run and each request is logged: a line in the service's log and ``retention/log/<time>.json``
  with the documents deleted and kept and why, by whom, for what reason; customers by keyed hash only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

import epolicies
import events
from indexing.index import lookup, segment
from models import DocumentRecord, EPolicy, Scan, find
from storage import ObjectStore
from storage.base import ORIGINALS
from vocabulary import EventKind, utcnow

log = logging.getLogger("imaging.retention")

HOLDS = "holds/"
LOG = "retention/log/"


@dataclass
class RetentionReport:
    deleted: list[str] = field(default_factory=list)  # doc ids
    kept: dict[str, str] = field(default_factory=dict)  # doc id -> why it stays
    scans_removed: list[str] = field(default_factory=list)


def periods(text: str) -> dict[str, int]:
    """Return {document type: days} from ``type:days,type:days``."""
    return {t: int(d) for t, d in (p.split(":") for p in text.split(",") if p)}


def hold(store: ObjectStore, kind: str, number: str, reason: str, by: str) -> str:
    """Return the key of a legal hold put on every document filed under a number."""
    key = f"{HOLDS}{kind}/{segment(store, kind, number)}.json"
    body = {"kind": kind, "reason": reason, "by": by, "at": utcnow().isoformat()}
    store.put(key, json.dumps(body, ensure_ascii=False).encode(), "application/json")
    log.info("legal hold on %s %s: %s (%s)", kind, segment(store, kind, number), reason, by)
    return key


def release(store: ObjectStore, kind: str, number: str, by: str) -> None:
    store.delete(f"{HOLDS}{kind}/{segment(store, kind, number)}.json")
    log.info("legal hold on %s %s released by %s", kind, segment(store, kind, number), by)


def _holds(store: ObjectStore) -> set[str]:
    return {i.key.removeprefix(HOLDS).removesuffix(".json") for i in store.list(HOLDS)}


def _in_force(store: ObjectStore, today: date) -> set[str]:
    """Return the policy numbers whose e-policy is in force today."""
    found = set()
    for info in store.list("epolicies/"):
        if not info.key.endswith("/policy.json"):
            continue
        policy = find(store, EPolicy, info.key.split("/")[1])
        if policy is None or policy.current is None:
            continue
        request = epolicies.load_request(store, policy.policy_no, policy.current.version)
        if request.expiry_date is None or request.expiry_date >= today:
            found.add(policy.policy_no)
    return found


def _why_kept(store: ObjectStore, record: DocumentRecord, holds: set[str], in_force: set[str]) -> str | None:
    for kind, numbers in record.keys.items():
        for number in numbers:
            if f"{kind}/{segment(store, kind, number)}" in holds:
                return f"legal hold on {kind} {segment(store, kind, number)}"
    for number in record.keys.get("policy", []):
        if number in in_force:
            return f"policy {number} in force"
    return None


def _delete(store: ObjectStore, record: DocumentRecord) -> None:
    """Delete a document: its index entries, then its images, then its record (last: a rerun finds it)."""
    for key in record.index:
        store.delete(key)
    # Its event for core systems carries its values (events.py): it goes with it. Sent ones are the core's.
    store.delete(events.Event.key_of(events.event_id_for(EventKind.document_completed, record.doc_id)))
    for info in list(store.list(f"documents/{record.doc_id}/")):
        if not info.key.endswith("/record.json"):
            store.delete(info.key)
    store.delete(record.key)


def _remove_empty_scans(store: ObjectStore, scan_ids: set[str], report: RetentionReport) -> None:
    """Delete the originals and record of each scan none of whose documents is left."""
    for scan_id in sorted(scan_ids):
        scan = find(store, Scan, scan_id)
        if scan is None or any(store.exists(f"documents/{d}/record.json") for d in scan.documents):
            continue
        for f in scan.files:
            store.delete(ORIGINALS + f.sha256)
        store.delete(scan.key)
        report.scans_removed.append(scan_id)


def _apply(store: ObjectStore, records: list[DocumentRecord], why: str, today: date) -> RetentionReport:
    holds, in_force = _holds(store), _in_force(store, today)
    report = RetentionReport()
    scans = set()
    for record in records:
        kept = _why_kept(store, record, holds, in_force)
        if kept:
            report.kept[record.doc_id] = kept
            continue
        _delete(store, record)
        report.deleted.append(record.doc_id)
        scans.add(record.scan_id)
    _remove_empty_scans(store, scans, report)
    return report


def _log(store: ObjectStore, what: str, report: RetentionReport, **about: str) -> None:
    at = utcnow()
    body = {"what": what, "at": at.isoformat(), **about, **asdict(report)}
    store.put(f"{LOG}{at:%Y%m%dT%H%M%S%f}-{what}.json", json.dumps(body, ensure_ascii=False).encode())
    log.info(
        "retention %s: %d documents deleted, %d kept (%s)",
        what,
        len(report.deleted),
        len(report.kept),
        ", ".join(f"{k}={v}" for k, v in about.items()),
    )


def _documents(store: ObjectStore) -> list[DocumentRecord]:
    keys = [i.key for i in store.list("documents/") if i.key.endswith("/record.json")]
    return [r for r in (find(store, DocumentRecord, k.split("/")[1]) for k in keys) if r is not None]


def expire(store: ObjectStore, days: dict[str, int], by: str, now: datetime | None = None) -> RetentionReport:
    """Return what was deleted and kept after deleting every document past its type's retention period."""
    now = now or datetime.now(UTC)
    due = [
        r for r in _documents(store) if r.type in days and r.captured_at < now - timedelta(days=days[r.type])
    ]
    report = _apply(store, due, "expired", now.date())
    _log(store, "expiry", report, by=by, periods=",".join(f"{t}:{d}" for t, d in sorted(days.items())))
    return report


def forget(store: ObjectStore, customer_id: str, reason: str, by: str) -> RetentionReport:
    """Return what was deleted and kept after deleting one customer's documents on their request."""
    found = [find(store, DocumentRecord, e.doc_id) for e in lookup(store, "customer", customer_id)]
    report = _apply(store, [r for r in found if r is not None], "request", datetime.now(UTC).date())
    _log(store, "request", report, customer=segment(store, "customer", customer_id), reason=reason, by=by)
    return report
