"""Events for core systems: what happened, recorded once per event id, and delivered to the webhook URLs
configured for its kind (IMAGING_WEBHOOKS), signed, retried with backoff until a 2xx, replayable.

- ``document.completed``: every field of a document trusted (read and proven, or keyed) and its checks
  held; the data is its trusted values, as ``GET /v1/documents/{id}/values`` gives them.
- ``claim.material_complete``: the material a claim needs is all in (the claim case's checklist).
- ``epolicy.acknowledged``: the customer pressed "I have received it" (签收) for a version.

The event id is made from what the event is about (``document.completed-<doc_id>``), so a document that
completes twice (settled again, keyed again) is one event, and a receiver drops a repeat by its id.

A delivery is ``POST <url>`` with the JSON body ``{"event_id", "event", "subject", "created_at",
"data"}`` and the headers ``X-Imaging-Event``, ``X-Imaging-Event-Id``, ``X-Imaging-Timestamp`` (Unix
seconds) and ``X-Imaging-Signature: sha256=<hex>``, the HMAC-SHA256 with IMAGING_WEBHOOK_SECRET of
``<timestamp>.<body>`` (``verify_signature`` is the receiver's check). Each delivery is an RQ job on the
``mail`` queue (outgoing messages); an answer other than 2xx, or none, is an attempt recorded and a
retry after IMAGING_WEBHOOK_RETRY_INTERVALS, the last one ``failed`` for the operator to replay.

Stored: ``events/<event_id>.json`` (the event, its deliveries and their attempts); Redis: the sorted set
``events:recent`` (ids by time), which the operators' list reads.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import time
from datetime import datetime
from typing import ClassVar, Literal

import httpx
from pydantic import BaseModel, Field
from pydantic_core import to_json
from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job

import queues
from errors import BadInput, DependencyDown, NotFound, QueueUnavailable
from indexing.claim import claim_case
from models import DocumentRecord, Scan, Stored, find, load
from settings import Settings
from storage import ObjectStore
from vocabulary import TRUSTED, EventKind, ScanStatus, utcnow

log = logging.getLogger("imaging.events")

RECENT = "events:recent"
KEEP_RECENT = 10_000  # ids the operators' list can reach; the records stay in the store
EVENT_ID_PATTERN = rf"^({'|'.join(re.escape(k.value) for k in EventKind)})-[A-Za-z0-9-]{{1,64}}$"
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept a timestamp away from its clock


class WebhookUnavailable(DependencyDown):
    """The receiver did not answer 2xx: the delivery is retried with backoff."""

    error = "webhook_unavailable"


class Attempt(BaseModel):
    at: datetime
    status: int | None = Field(None, description="the HTTP status the receiver answered; none: no answer")
    error: str | None = None
    ms: int = Field(0, description="how long the attempt took")


class Delivery(BaseModel):
    url: str
    state: Literal["pending", "retrying", "delivered", "failed"] = "pending"
    attempts: list[Attempt] = Field(default_factory=list)
    delivered_at: datetime | None = None
    replays: int = Field(0, description="how often an operator sent it again")


class Event(Stored):
    """``events/<event_id>.json``: one event, its data, and its delivery to each URL configured for it."""

    noun: ClassVar[str] = "event"

    @staticmethod
    def key_of(event_id: str) -> str:
        return f"events/{event_id}.json"

    schema_: int = Field(1, alias="schema")
    event_id: str = Field(pattern=EVENT_ID_PATTERN)
    kind: EventKind
    subject: str
    created_at: datetime
    data: dict
    deliveries: list[Delivery] = Field(default_factory=list)

    @property
    def key(self) -> str:
        return self.key_of(self.event_id)

    def body(self) -> bytes:
        """Return the bytes every delivery of this event sends (and signs): the same on each attempt."""
        payload = {
            "event_id": self.event_id,
            "event": self.kind.value,
            "subject": self.subject,
            "created_at": self.created_at.isoformat(),
            "data": self.data,
        }
        return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


class DocumentValues(BaseModel):
    """A document's trusted values: what a core system takes over (``document.completed``, ``/values``)."""

    doc_id: str
    type: str
    template: str | None
    stage: str | None
    complete: bool = Field(description="every field trusted and the document's checks held")
    captured_at: datetime
    numbers: dict[str, list[str]] = Field(description="policy, claim and customer numbers it is filed under")
    person: str | None = Field(None, description="an ID card side: whose it is by its evidence")
    party: str | None = Field(None, description="a card front: applicant or insured of its form")
    values: dict[str, str] = Field(description="each field's trusted value (read and proven, or keyed)")
    pending: list[str] = Field(description="fields without a trusted value yet")


def document_values(record: DocumentRecord) -> DocumentValues:
    """Return a document's trusted values, the numbers it is filed under, and the fields still open."""
    return DocumentValues(
        doc_id=record.doc_id,
        type=record.type,
        template=record.template,
        stage=record.stage,
        complete=finished(record),
        captured_at=record.captured_at,
        numbers={kind: list(numbers) for kind, numbers in record.keys.items() if numbers},
        person=record.person,
        party=record.party,
        values={n: f.value or "" for n, f in record.fields.items() if f.status in TRUSTED},
        pending=sorted(n for n, f in record.fields.items() if f.status not in TRUSTED),
    )


def finished(record: DocumentRecord) -> bool:
    """Whether a document is complete for a core system: it has fields, all trusted, its evidence checks
    held, and it is not to be scanned again."""
    return bool(record.fields) and record.complete and not record.checks and not record.rescan


# ---- recording an event ----------------------------------------------------------------------------


def event_id_for(kind: EventKind, subject: str) -> str:
    return f"{kind.value}-{subject}"


def emit(
    conn: Redis, store: ObjectStore, settings: Settings, kind: EventKind, subject: str, data: dict
) -> tuple[Event, bool]:
    """Return the event and whether it is new, after recording it (once: the id is made from kind and
    subject) and queueing its delivery to every URL configured for its kind."""
    event_id = event_id_for(kind, subject)
    try:
        with conn.lock(f"lock:event:{event_id}", timeout=30, blocking_timeout=15):
            event = find(store, Event, event_id)
            if event is not None:
                requeue_lost(conn, settings, event)  # recorded by a run that failed to queue it
                return event, False
            urls = settings.webhook_urls(kind.value)
            event = Event(
                event_id=event_id,
                kind=kind,
                subject=subject,
                created_at=utcnow(),
                data=json.loads(to_json(data)),  # plain JSON: what every delivery sends
                deliveries=[Delivery(url=url) for url in urls],
            )
            store.put(event.key, event.to_json(), "application/json")
            conn.zadd(RECENT, {event_id: event.created_at.timestamp()})
            conn.zremrangebyrank(RECENT, 0, -KEEP_RECENT - 1)
    except RedisError as exc:
        raise QueueUnavailable(f"Redis: cannot record event {event_id}: {exc}") from exc
    for n in range(len(event.deliveries)):
        queue_delivery(conn, settings, event_id, n, 0)
    log.info("event %s recorded, %d deliveries queued", event_id, len(event.deliveries))
    return event, True


def job_id_for(event_id: str, n: int, replay: int) -> str:
    """Return the job id of the n-th delivery of an event (of its replay-th replay)."""
    return f"webhook-{event_id.replace('.', '_')}-{n}" + (f"-r{replay}" if replay else "")


def requeue_lost(conn: Redis, settings: Settings, event: Event) -> list[int]:
    """Return the deliveries queued again: those not done whose job Redis does not hold (a crash between
    recording the event and queueing it, a Redis lost since)."""
    lost = [
        n
        for n, d in enumerate(event.deliveries)
        if d.state in ("pending", "retrying")
        and not Job.exists(job_id_for(event.event_id, n, d.replays), connection=conn)
    ]
    for n in lost:
        queue_delivery(conn, settings, event.event_id, n, event.deliveries[n].replays)
    return lost


def queue_delivery(conn: Redis, settings: Settings, event_id: str, n: int, replay: int) -> None:
    job_id = job_id_for(event_id, n, replay)
    queues.enqueue(
        conn,
        settings,
        "mail",
        queues.DELIVER_WEBHOOK,
        event_id,
        n,
        job_id=job_id,
        intervals=settings.webhook_schedule,
    )


def queue_announce(conn: Redis, settings: Settings, scan_id: str) -> None:
    """Queue ``scan_settled`` for a scan a person just changed (a keyed value, a decided review): the
    request does not wait for it, and a failure is retried. Each call is its own job (an earlier one may
    have run before this change); running it twice records nothing twice."""
    job_id = f"announce-{scan_id}-{time.time_ns()}"
    queues.enqueue(conn, settings, "mail", queues.ANNOUNCE_SCAN, scan_id, job_id=job_id)


def scan_settled(conn: Redis, store: ObjectStore, settings: Settings, scan_id: str) -> list[Event]:
    """Return the events newly recorded after a scan was settled (captured, or a value keyed): a
    ``document.completed`` for each of its documents now finished, a ``claim.material_complete`` for each
    claim they are filed under whose material is now complete. Running it again records nothing new."""
    scan = find(store, Scan, scan_id)
    if scan is None or scan.status != ScanStatus.captured:
        return []
    new: list[Event] = []
    claims: set[str] = set()
    for doc_id in scan.documents:
        record = find(store, DocumentRecord, doc_id)
        if record is None:
            continue
        claims.update(record.keys.get("claim", []))
        if finished(record):
            data = document_values(record).model_dump(mode="json")
            event, fresh = emit(conn, store, settings, EventKind.document_completed, doc_id, data)
            new += [event] if fresh else []
    for claim_no in sorted(claims):
        case = claim_case(store, conn, claim_no, settings)
        if case.complete:
            kind = EventKind.claim_material_complete
            event, fresh = emit(conn, store, settings, kind, claim_no, case.model_dump(mode="json"))
            new += [event] if fresh else []
    return new


# ---- delivering it ----------------------------------------------------------------------------------


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """Return the ``X-Imaging-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of
    ``<timestamp>.<body>``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes, headers: dict[str, str], body: bytes, now: float | None = None, tolerance: int = 300
) -> bool:
    """Whether a delivery is genuine (the receiver's check): the signature over the timestamp and the body
    holds and the timestamp is within ``tolerance`` seconds of now (an old delivery replayed by someone
    else is refused; the event id drops a repeat of ours)."""
    lower = {k.lower(): v for k, v in headers.items()}
    stamp = lower.get("x-imaging-timestamp", "")
    if not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(lower.get("x-imaging-signature", ""), signature(secret, stamp, body))


@functools.cache
def _client() -> httpx.Client:
    """Return this process's HTTP client, made once: a new client per delivery built its TLS context each
    time, 100 ms and more (bench/intake_bench.py), and kept no connection to a receiver for the next one."""
    return httpx.Client(follow_redirects=False)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str | None]:
    """Return the receiver's status and what went wrong (None for a 2xx); redirects are not followed."""
    try:
        answer = _client().post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return None, f"no answer: {type(exc).__name__}: {exc}"[:300]
    if 200 <= answer.status_code < 300:
        return answer.status_code, None
    return answer.status_code, f"answered {answer.status_code} {answer.reason_phrase}"


def deliver(
    conn: Redis, store: ObjectStore, settings: Settings, event_id: str, n: int, last: bool = False
) -> Delivery:
    """Return the delivery after one attempt to send the event to its n-th URL (none if it was delivered
    before); raise WebhookUnavailable when the receiver did not answer 2xx (``last``: no retry follows, so
    the delivery is ``failed``)."""
    event = load(store, Event, event_id)
    if n >= len(event.deliveries):
        raise NotFound(f"event {event_id} has no delivery {n}")
    if event.deliveries[n].state == "delivered":
        return event.deliveries[n]
    if settings.webhook_secret is None:
        raise BadInput("IMAGING_WEBHOOK_SECRET: not set; webhooks are signed with it")
    url, body = event.deliveries[n].url, event.body()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "imaging-webhooks/1",
        "X-Imaging-Event": event.kind.value,
        "X-Imaging-Event-Id": event.event_id,
        "X-Imaging-Timestamp": stamp,
        "X-Imaging-Signature": signature(settings.webhook_secret.get_secret_value().encode(), stamp, body),
    }
    started = time.monotonic()
    status, error = _post(url, body, headers, settings.webhook_timeout)
    attempt = Attempt(at=utcnow(), status=status, error=error, ms=int((time.monotonic() - started) * 1000))
    state = "delivered" if error is None else ("failed" if last else "retrying")
    delivery = _record(conn, store, event_id, n, attempt, state)
    if error is not None:
        log.warning("event %s to %s: %s (%s)", event_id, url, error, state)
        raise WebhookUnavailable(f"webhook {url}: {error}")
    return delivery


def _record(conn: Redis, store: ObjectStore, event_id: str, n: int, attempt: Attempt, state: str) -> Delivery:
    """Return the delivery after adding an attempt and its new state to the stored event, under its lock."""
    with conn.lock(f"lock:event:{event_id}", timeout=30, blocking_timeout=15):
        event = load(store, Event, event_id)
        delivery = event.deliveries[n]
        delivery.attempts.append(attempt)
        if delivery.state != "delivered":
            delivery.state = state
            delivery.delivered_at = attempt.at if state == "delivered" else None
        store.put(event.key, event.to_json(), "application/json")
        return delivery


def replay(conn: Redis, store: ObjectStore, settings: Settings, event_id: str, n: int | None) -> Event:
    """Return the event after queueing its delivery again (the n-th, or every one), with the same event
    id and body: a receiver that had it drops it, one that lost it takes it."""
    with conn.lock(f"lock:event:{event_id}", timeout=30, blocking_timeout=15):
        event = load(store, Event, event_id)
        chosen = range(len(event.deliveries)) if n is None else [n]
        if n is not None and not 0 <= n < len(event.deliveries):
            raise NotFound(f"event {event_id} has no delivery {n}")
        for i in chosen:
            delivery = event.deliveries[i]
            delivery.replays += 1
            delivery.state = "pending"
        store.put(event.key, event.to_json(), "application/json")
    for i in chosen:
        queue_delivery(conn, settings, event_id, i, event.deliveries[i].replays)
    return event


def recent(conn: Redis, store: ObjectStore, limit: int = 50, state: str | None = None) -> list[Event]:
    """Return the latest events, newest first (with ``state``: those with a delivery in that state)."""
    found = []
    for raw in conn.zrevrange(RECENT, 0, (1000 if state else limit) - 1):
        event = find(store, Event, raw.decode())
        if event is not None and (state is None or any(d.state == state for d in event.deliveries)):
            found.append(event)
            if len(found) >= limit:
                break
    return found
