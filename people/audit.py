"""The audit trail: who read, keyed, changed or signed in, when, from which branch, and why.

Each event is appended to a Redis stream (``audit:log``) as it happens: one cheap write, made before the
image leaves or the change is answered; if it cannot be written, the request fails (503). ``archive``
moves the stream's entries into the object store as append-only objects, one per run, under the hour of
their first entry (``audit/<YYYY-MM-DD>/<HH>/<first id>_<last id>.jsonl``; never rewritten), and then
trims them from the stream: what is archived survives the loss of Redis and outlives any trim. Workers
archive every minute or so; ``imaging audit archive`` does it by hand. ``query`` reads both, so an
answer does not depend on where the entries are.

ID numbers are not written: a customer is named by the same keyed hash as in the index
(``ObjectStore.private_name``), and the query by customer_id computes it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from redis import Redis
from redis.exceptions import RedisError

from errors import DependencyDown, QueueUnavailable
from storage import ObjectStore

log = logging.getLogger("imaging.audit")
STREAM = "audit:log"
PREFIX = "audit/"
STREAM_MAX = 5_000_000  # a safety cap only: archive trims the stream long before
BATCH = 10_000  # entries per archive object at most
LOCK = "lock:audit:archive"


class Event(BaseModel):
    """One line of the trail."""

    id: str = Field(description="the stream id: milliseconds-sequence; unique and in time order")
    at: datetime
    person: str = Field(description="username, service or station name, or k<hash> for a bootstrap key")
    branch: str = ""
    role: str = ""
    action: str = Field(description="read, key, arbitrate, signin, signin_refused, account_*, token_*, ...")
    object: str = Field("", description="what it concerned: a document and part, a task, an account, a token")
    reason: str = Field("", description="why: the case number the viewer was opened for, a refusal's cause")
    customers: list[str] = Field(default_factory=list, description="customers concerned, by keyed hash")


def record(
    conn: Redis,
    *,
    person: str,
    action: str,
    object: str = "",
    branch: str | None = "",
    role: str = "",
    reason: str = "",
    customers: list[str] | None = None,
) -> None:
    """Append one event; raise QueueUnavailable (503) if it cannot be written."""
    fields = {
        "person": person,
        "branch": branch or "",
        "role": role,
        "action": action,
        "object": object,
        "reason": reason[:200],
        "customers": ",".join(customers or []),
    }
    try:
        conn.xadd(STREAM, fields, maxlen=STREAM_MAX, approximate=True)
    except RedisError as exc:
        raise QueueUnavailable(
            f"the audit trail (Redis) cannot be written, so this is refused: {exc}"
        ) from exc


def _event(stream_id: bytes | str, values: dict) -> Event:
    sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    row = {k.decode(): v.decode() for k, v in values.items()}
    return Event(
        id=sid,
        at=datetime.fromtimestamp(int(sid.split("-")[0]) / 1000, UTC),
        person=row.get("person", ""),
        branch=row.get("branch", ""),
        role=row.get("role", ""),
        action=row.get("action", ""),
        object=row.get("object", ""),
        reason=row.get("reason", ""),
        customers=[c for c in row.get("customers", "").split(",") if c],
    )


def archive(conn: Redis, store: ObjectStore) -> int:
    """Move the stream's entries into the object store, BATCH to an object; return how many moved.
    Under a lock, so two workers never write the same entries twice; an object is written whole before
    its entries are trimmed, so a crash between the two leaves entries in both places, which ``query``
    counts once (by id), and never in neither."""
    moved = 0
    lock = conn.lock(LOCK, timeout=120, blocking_timeout=0.5)
    if not lock.acquire():
        return 0  # another process is archiving now
    try:
        while True:
            raw = conn.xrange(STREAM, count=BATCH)
            if not raw:
                return moved
            events = [_event(sid, values) for sid, values in raw]
            first, last = events[0], events[-1]
            key = f"{PREFIX}{first.at:%Y-%m-%d}/{first.at:%H}/{first.id}_{last.id}.jsonl"
            body = "".join(e.model_dump_json() + "\n" for e in events).encode()
            store.put(key, body, "application/x-ndjson")
            ms, seq = last.id.split("-")
            conn.xtrim(STREAM, minid=f"{ms}-{int(seq) + 1}")
            moved += len(events)
            log.info("audit: %d entries archived to %s", len(events), key)
    finally:
        lock.release()


def archive_now(conn: Redis, store: ObjectStore, every: float) -> None:
    """Archive if no other worker did in the last ``every`` seconds; a failure waits for the next time."""
    if conn.set("lock:audit:recent", "1", nx=True, ex=max(1, int(every))):
        try:
            archive(conn, store)
        except (DependencyDown, RedisError) as exc:
            log.warning("audit archive: %s", exc)


def _archived(store: ObjectStore, since: datetime | None) -> Iterator[Event]:
    floor = f"{PREFIX}{since:%Y-%m-%d}/{since:%H}/" if since else ""
    for info in store.list(PREFIX):
        if floor and info.key < floor:
            continue
        for line in store.get(info.key).decode().splitlines():
            if line:
                yield Event.model_validate_json(line)


def query(
    conn: Redis,
    store: ObjectStore,
    *,
    person: str | None = None,
    customer: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[Event]:
    """Return the events that match, oldest first, from the archive and the stream, each once.
    ``customer`` is the keyed hash of an ID number."""
    try:
        live = [_event(sid, values) for sid, values in conn.xrange(STREAM)]
    except RedisError as exc:
        raise QueueUnavailable(f"the audit trail (Redis) cannot be read: {exc}") from exc
    seen: dict[str, Event] = {}
    for event in [*_archived(store, since), *live]:
        if since and event.at < since:
            continue
        if person and event.person != person:
            continue
        if customer and customer not in event.customers:
            continue
        seen.setdefault(event.id, event)
    found = sorted(seen.values(), key=lambda e: tuple(int(p) for p in e.id.split("-")))
    return found[-limit:]


def dump(events: list[Event]) -> str:
    """Return the events as JSON lines, for the command line."""
    return "".join(json.dumps(e.model_dump(mode="json"), ensure_ascii=False) + "\n" for e in events)
