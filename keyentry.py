"""Key-entry: the fields OCR could not prove, typed by people from the field image.

Tasks live in Redis, beside the job queues; results go into the document record in the object store.

- ``ke:pool``   sorted set of waiting task ids, immediate-mode scans first, then oldest first;
- ``ke:lease``  sorted set of leased task ids, scored by when the lease runs out;
- ``ke:task:<task_id>``  hash: the task (document, field, kind, round, who has keyed it, their values);
- ``ke:held:<keyer>``  the task id last leased to a keyer, expiring with the lease.
- ``ke:day:<YYYY-MM-DD>:<keyer>``  hash: a keyer's answers that Beijing day, the first and the last.

A lease is taken by one Lua script, so two keyers never get the same task, a keyer never holds two, and
a lease that ran out returns to the pool first. A field marked ``double_entry`` is keyed blind by two
different keyers; equal values are accepted, different ones go to a third keyer, who arbitrates. The
task id is ``<doc_id>.<field>``, so capturing a scan again adds nothing twice.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from redis import Redis

import figures
from errors import BadInput, ImagingError, NotFound
from indexing.case import settle_scan
from indexing.index import CLAIM_FIELDS, CUSTOMER_FIELDS, HOLDER_FIELD, POLICY_FIELDS, reenter
from indexing.review import KEYED_CONFLICT, Review, open_review
from models import AcceptedConflict, DocumentRecord, KeyedValue, find, load
from ocr.reasons import in_chinese
from ocr.validate import document_checks, validate
from storage import ObjectStore
from vocabulary import TRUSTED, FieldStatus, utcnow

POOL, LEASES, PREFIX, HELD = "ke:pool", "ke:lease", "ke:task:", "ke:held:"
LEASE_SECONDS = 120
DONE_TTL = 7 * 24 * 3600
IMMEDIATE_BONUS = 10**13  # milliseconds: immediate-mode tasks sort before any batch task
# What a keyer may answer: a value; "blank" where the template lets the field be empty (an empty
# beneficiary means the legal heirs, not a name to invent); "illegible", which nobody can key: the
# document stays incomplete and asks for the page to be scanned again.
ANSWERS = ("value", "blank", "illegible")
# A form prints "姓名" and "证件号码" under each party's heading; a keyer sees the field alone, so the label
# names the party, from the template's field name (applicant_name: 投保人姓名).
PARTY_LABELS = {"applicant": "投保人", "insured": "被保险人", "beneficiary": "受益人"}
BEIJING = ZoneInfo("Asia/Shanghai")  # the keyers' working day


class LeaseLost(ImagingError):
    """The task is not leased to this keyer (the lease ran out, or someone else holds it)."""

    http_status = 409
    error = "lease_lost"


# Returns the task id leased to this keyer, after returning expired leases to the pool. A keyer holds one
# task at a time, and asking again while holding one gives the same task back, its lease renewed: the one
# who asks again is the same person at the same page (a reload, a second tab, a retried request) and
# expects the field they were typing. Releasing it and leasing the next instead would hand them a new
# field and could give their half-typed one to someone else. Holding none, they get the next task they
# may take (not one they keyed blind already). KEYS[3] is only a pointer to their task, trusted while that
# task is in the lease set and leased to them; it outlives the lease a minute (Redis's clock may run
# ahead of the API's, which sets the lease's deadline), then goes.
_LEASE = """
local now, keyer, deadline, prefix = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local seconds = math.ceil(tonumber(ARGV[5]))
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], tonumber(redis.call('HGET', prefix .. id, 'priority')), id)
end
local held = redis.call('GET', KEYS[3])
if held and redis.call('ZSCORE', KEYS[2], held) and redis.call('HGET', prefix .. held, 'lessee') == keyer then
  redis.call('ZADD', KEYS[2], deadline, held)
  redis.call('SET', KEYS[3], held, 'EX', seconds + 60)
  return held
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, 499)) do
  local keyers = redis.call('HGET', prefix .. id, 'keyers') or ','
  if not string.find(keyers, ',' .. keyer .. ',', 1, true) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZADD', KEYS[2], deadline, id)
    redis.call('HSET', prefix .. id, 'lessee', keyer)
    redis.call('SET', KEYS[3], id, 'EX', seconds + 60)
    return id
  end
end
return false
"""


# Creates the task hash and puts it in the pool in one step, unless the task exists already: a job killed
# half-way through queueing tasks leaves none half-made, and running it again adds nothing twice.
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], 'NX', ARGV[1], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Task:
    task_id: str
    doc_id: str
    doc_type: str
    scan_id: str
    field: str
    kind: str
    label: str
    round: str  # single | blind | arbitration
    suggestion: str | None  # OCR's reading; withheld in blind rounds
    image: str  # object key of the field image
    lease_until: float
    reasons: list[str]
    values: list[str]  # the two disagreeing values, for the arbiter only
    optional: bool = False  # the template lets the field be empty: "blank" is an answer
    choices: tuple[str, ...] = ()  # a choice field's options (tick boxes): the value is one of them


def task_id_for(doc_id: str, field: str) -> str:
    return f"{doc_id}.{field}"


def field_label(field: str, label: str) -> str:
    """Return the field's label with its party in front (投保人姓名), where its name says one."""
    party = PARTY_LABELS.get(field.split("_", 1)[0])
    return f"{party}{label}" if party and label and not label.startswith(party) else label or field


def add_tasks(conn: Redis, record: DocumentRecord, immediate: bool) -> int:
    """Queue a task for each field of the document waiting for key-entry; return how many were new."""
    from capture.templates import by_key

    specs = {f.name: f for f in by_key(record.template).fields} if record.template else {}
    labels = {name: field_label(name, spec.label) for name, spec in specs.items()}
    labels[HOLDER_FIELD] = "持证人身份证号码"
    created = 0
    base = int(time.time() * 1000) - (IMMEDIATE_BONUS if immediate else 0)
    for name, f in record.fields.items():
        if f.status != FieldStatus.key_entry:
            continue
        task_id = task_id_for(record.doc_id, name)
        task = {
            "doc_id": record.doc_id,
            "scan_id": record.scan_id,
            "doc_type": record.type,
            "field": name,
            "kind": f.kind or "text",
            "label": labels.get(name, name),
            "round": "blind" if f.double_entry else "single",
            "suggestion": f.suggestion or "",
            "reasons": json.dumps(f.reasons, ensure_ascii=False),
            "image": f.image,
            "optional": "1" if name in specs and specs[name].optional else "",
            "choices": json.dumps([label for label, _ in specs[name].options] if name in specs else []),
            "priority": base,
            "keyers": ",",
            "entries": "[]",
            "state": "waiting",
            "branch": record.branch or "",  # for the managers' backlog by branch (figures)
        }
        pairs = [str(x) for item in task.items() for x in item]
        if not conn.eval(_ADD, 2, PREFIX + task_id, POOL, base, task_id, *pairs):
            continue  # queued on an earlier run of the job
        created += 1
    return created


def waiting(conn: Redis) -> int:
    """Return the number of tasks waiting or leased."""
    return conn.zcard(POOL) + conn.zcard(LEASES)


def backlog(conn: Redis, store: ObjectStore) -> list[tuple[str, float]]:
    """Return the branch and creation time (Unix seconds) of each task waiting or leased. A task queued
    before tasks carried their branch is given its document's."""
    ids = [i.decode() for i in [*conn.zrange(POOL, 0, -1), *conn.zrange(LEASES, 0, -1)]]
    with conn.pipeline(transaction=False) as pipe:
        for task_id in ids:
            pipe.hmget(PREFIX + task_id, "branch", "priority", "doc_id")
        found = pipe.execute()
    tasks = []
    for branch, priority, doc_id in (row for row in found if row[1] is not None):
        if branch is None and doc_id is not None:
            record = find(store, DocumentRecord, doc_id.decode())
            branch = (record.branch or "").encode() if record else b""
        created = float(priority) + (IMMEDIATE_BONUS if float(priority) < 0 else 0)
        tasks.append(((branch or b"").decode(), created / 1000))
    return tasks


# Returns {tasks this keyer may take now (the one they hold included), tasks waiting for someone else}:
# leased to another keyer, or a double-entry field this keyer keyed blind already (the second keyer and
# the arbiter must be others).
_COUNT = """
local keyer, prefix, mine, others = ARGV[1], ARGV[2], 0, 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local keyers = redis.call('HGET', prefix .. id, 'keyers') or ','
  if string.find(keyers, ',' .. keyer .. ',', 1, true) then others = others + 1 else mine = mine + 1 end
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('HGET', prefix .. id, 'lessee') == keyer then mine = mine + 1 else others = others + 1 end
end
return {mine, others}
"""


def counts(conn: Redis, keyer: str) -> tuple[int, int]:
    """Return how many tasks this keyer may take now (the one they hold included), and how many wait
    for others (leased to another keyer, or keyed blind by this one already)."""
    mine, others = conn.eval(_COUNT, 2, POOL, LEASES, keyer, PREFIX)
    return int(mine), int(others)


def lease(
    conn: Redis, keyer: str, seconds: int = LEASE_SECONDS, store: ObjectStore | None = None
) -> Task | None:
    """Return the task this keyer holds, or else the next one for them, leased to them for `seconds`
    from now; None when they hold none and nothing waits for them. Given the store, a task whose
    document asks for a rescan or was superseded by a later scan is withdrawn, never offered: its field
    is keyed from the new scan."""
    while True:
        now = time.time()
        task_id = conn.eval(_LEASE, 3, POOL, LEASES, HELD + keyer, now, keyer, now + seconds, PREFIX, seconds)
        if not task_id:
            return None
        task = _task(conn, task_id.decode() if isinstance(task_id, bytes) else task_id, now + seconds)
        record = find(store, DocumentRecord, task.doc_id) if store is not None else None
        if record is None or not (record.rescan or record.superseded_by):
            return task
        withdraw(conn, [task.task_id])
        conn.delete(HELD + keyer)


def withdraw(conn: Redis, task_ids: list[str]) -> int:
    """Take tasks not yet done out of the pool and the leases (their document asks for a rescan, or a
    later scan superseded it); return how many were withdrawn. Running it again withdraws nothing more."""
    withdrawn = 0
    for task_id in task_ids:
        key = PREFIX + task_id
        conn.zrem(POOL, task_id)  # whatever its hash says, so a lease never meets it again
        conn.zrem(LEASES, task_id)
        state = conn.hget(key, "state")
        if state is None or state.decode() in ("done", "withdrawn"):
            continue
        conn.hset(key, mapping={"state": "withdrawn", "lessee": ""})
        conn.expire(key, DONE_TTL)
        withdrawn += 1
    return withdrawn


def withdraw_document(conn: Redis, record: DocumentRecord) -> int:
    """Withdraw the key-entry tasks of a document's fields still waiting; return how many."""
    waiting_fields = [n for n, f in record.fields.items() if f.status == FieldStatus.key_entry]
    return withdraw(conn, [task_id_for(record.doc_id, n) for n in waiting_fields])


def _task(conn: Redis, task_id: str, until: float) -> Task:
    raw = {k.decode(): v.decode() for k, v in conn.hgetall(PREFIX + task_id).items()}
    entries = json.loads(raw["entries"])
    arbitration = raw["round"] == "arbitration"
    return Task(
        task_id=task_id,
        doc_id=raw["doc_id"],
        doc_type=raw["doc_type"],
        scan_id=raw["scan_id"],
        field=raw["field"],
        kind=raw["kind"],
        label=field_label(raw["field"], raw["label"]),  # tasks queued before the party was named
        round=raw["round"],
        suggestion=(raw["suggestion"] or None) if raw["round"] != "blind" else None,
        image=raw["image"],
        lease_until=until,
        reasons=json.loads(raw["reasons"]),
        values=[e["value"] for e in entries] if arbitration else [],
        optional=bool(raw.get("optional")),
        choices=tuple(json.loads(raw.get("choices") or "[]")),
    )


def held(conn: Redis, task_id: str, keyer: str) -> Task:
    """Return the task if this keyer holds a live lease on it."""
    raw = conn.hmget(PREFIX + task_id, "lessee", "state")
    if raw[1] is None:
        raise NotFound(f"no key-entry task {task_id}")
    if raw[1].decode() == "done":
        raise LeaseLost(f"task {task_id} is already keyed")
    if raw[1].decode() == "withdrawn":
        raise LeaseLost(f"task {task_id} was withdrawn: its page is to be scanned again; take the next task")
    until = conn.zscore(LEASES, task_id)
    if raw[0] is None or raw[0].decode() != keyer or until is None or until < time.time():
        raise LeaseLost(f"your lease on {task_id} has run out; take the next task")
    return _task(conn, task_id, until)


def _answer(task: Task, text: str, answer: str) -> str:
    """Return the value an answer stands for ("" for blank and illegible); raise BadInput if it cannot."""
    if answer not in ANSWERS:
        raise BadInput(f"answer must be one of {', '.join(ANSWERS)}, not {answer!r}")
    if answer == "blank" and not task.optional:
        raise BadInput(
            f"{task.label}: the form does not let this field be empty; key it, or answer illegible"
        )
    if answer != "value":
        return ""
    checked = validate(task.kind, text, task.field)
    if not checked.ok:
        raise BadInput(f"{task.label}：{'；'.join(in_chinese(p) for p in checked.problems)}")
    if task.choices and checked.value not in task.choices:
        raise BadInput(f"{task.label}: answer one of the boxes: {', '.join(task.choices)}")
    return checked.value


def submit(
    conn: Redis, store: ObjectStore, task_id: str, keyer: str, text: str, answer: str = "value"
) -> dict:
    """Record a keyed answer; return the task's outcome: keyed, conflict (the document's cross-checks fail:
    a review is open), illegible (a rescan is asked for), or waiting for a second or third keyer. An
    invalid value raises BadInput with the validator's reasons, and the lease stays with the keyer."""
    task = held(conn, task_id, keyer)
    value = _answer(task, text, answer)
    key = PREFIX + task_id
    entries = json.loads(conn.hget(key, "entries"))
    ocr = conn.hget(key, "suggestion").decode() or None  # recorded even where the keyer did not see it
    entry = KeyedValue(keyer=keyer, at=utcnow(), value=value, ocr=ocr, round=task.round, answer=answer)
    entries.append(entry.model_dump(mode="json"))
    progress = {
        "entries": json.dumps(entries, ensure_ascii=False),
        "keyers": _keyers(conn, key) + keyer + ",",
    }
    same = [(e.get("answer", "value"), e["value"]) for e in entries[:2]]
    if answer != "illegible" and task.round == "blind" and len(entries) == 1:
        _keep_entries(conn, store, task, entries)
        figures.note_scan(conn, store, task.scan_id)
        return _requeue(conn, task_id, progress, "blind", "waiting for a second keyer")
    if answer != "illegible" and task.round == "blind" and same[0] != same[1]:
        _keep_entries(conn, store, task, entries)
        figures.note_scan(conn, store, task.scan_id)
        return _requeue(
            conn, task_id, progress, "arbitration", "the two keyers differ: waiting for an arbiter"
        )
    # The record is written before the task is marked done: if the store fails, the keyer sends again.
    status = _finish(conn, store, task, value, entries, answer)
    conn.hset(key, mapping={**progress, "state": "done", "lessee": ""})
    conn.expire(key, DONE_TTL)
    conn.zrem(LEASES, task_id)
    if answer == "illegible":  # the page is to be scanned again: its other fields are keyed from the new scan
        withdraw_document(conn, load(store, DocumentRecord, task.doc_id))
    settle(conn, store, task.scan_id)
    figures.note_scan(conn, store, task.scan_id)
    return {"task_id": task_id, "status": status, "value": value}


def _keep_entries(conn: Redis, store: ObjectStore, task: Task, entries: list[dict]) -> None:
    """Write the values keyed so far into the record, the field still waiting: should Redis lose the task,
    `imaging rebuild` (rebuild.py) makes it again with them, and no keyer's value is lost."""
    with conn.lock(f"lock:doc:{task.doc_id}", timeout=30, blocking_timeout=15):
        record = load(store, DocumentRecord, task.doc_id)
        record.fields[task.field].entries = [KeyedValue.model_validate(e) for e in entries]
        store.put(
            record.key, record.to_json(), "application/json", {"scan_id": record.scan_id, "type": record.type}
        )


def _keyers(conn: Redis, key: str) -> str:
    return (conn.hget(key, "keyers") or b",").decode()


def _requeue(conn: Redis, task_id: str, progress: dict, round_: str, message: str) -> dict:
    key = PREFIX + task_id
    conn.hset(key, mapping={**progress, "round": round_, "lessee": ""})
    conn.zrem(LEASES, task_id)
    conn.zadd(POOL, {task_id: float(conn.hget(key, "priority"))})
    return {"task_id": task_id, "status": "waiting", "detail": message}


def _finish(
    conn: Redis, store: ObjectStore, task: Task, value: str, entries: list[dict], answer: str
) -> FieldStatus:
    """Return the field's status after writing the keyed answer and every entry into the document record
    under its lock, with the document's cross-checks run again on its values; a conflict opens a review."""
    with conn.lock(f"lock:doc:{task.doc_id}", timeout=30, blocking_timeout=15):
        record = load(store, DocumentRecord, task.doc_id)
        field = record.fields[task.field]
        field.value, field.status = value, FieldStatus.keyed
        field.entries = [KeyedValue.model_validate(e) for e in entries]
        if answer == "illegible":
            field.value, field.status = None, FieldStatus.illegible
            field.reasons = ["a keyer could not read it: scan the page again"]
            record.status = "exception"  # as the quality gate says it: this page wants scanning again
            problem = f"{task.label} ({task.field}): illegible to the keyer: scan the page again"
            if problem not in record.problems:
                record.problems = [*record.problems, problem]
        conflicts = recheck(record)
        records = [record]
        if task.field in (
            *POLICY_FIELDS,
            *CUSTOMER_FIELDS,
            *CLAIM_FIELDS,
        ):  # a number to file under: move entries
            records = reenter(store, record)
        for changed in records:
            meta = {"scan_id": changed.scan_id, "type": changed.type}
            store.put(changed.key, changed.to_json(), "application/json", meta)
    if conflicts:
        problems = [f"{name}: {p}" for name, found in sorted(conflicts.items()) for p in found]
        involved = sorted({n for n in record.fields if any(re.search(rf"\b{n}\b", p) for p in problems)})
        open_review(store, record.doc_id, record.scan_id, KEYED_CONFLICT, problems, involved)
    return record.fields[task.field].status


def recheck(record: DocumentRecord) -> dict[str, list[str]]:
    """Return the document's cross-check conflicts not accepted by a review, after marking the fields
    they fall on ``conflict`` (and clearing fields whose conflict is gone) and setting ``complete``: every
    field trusted, a conflict accepted by a person counting as holding."""
    flagged = (FieldStatus.conflict, *TRUSTED)
    values = {n: f.value for n, f in record.fields.items() if f.status in flagged and f.value}
    accepted = {p for a in record.accepted_conflicts for p in a.problems}
    conflicts = {
        name: found
        for name, problems in document_checks(values).items()
        if (found := [p for p in problems if f"{name}: {p}" not in accepted])
    }
    for name, f in record.fields.items():
        if name in conflicts and f.status in TRUSTED:
            f.status, f.reasons = FieldStatus.conflict, conflicts[name]
        elif name not in conflicts and f.status == FieldStatus.conflict:
            f.status = FieldStatus.keyed if f.entries else FieldStatus.accepted
    record.complete = all(f.status in TRUSTED for f in record.fields.values())
    return conflicts


def apply_review(conn: Redis, store: ObjectStore, review: Review) -> DocumentRecord:
    """Return the document after a decided keyed-conflict review: accepted, the conflict is recorded with
    who and why and the document completes; rejected, the keyed fields in conflict go back to key-entry."""
    with conn.lock(f"lock:doc:{review.doc_id}", timeout=30, blocking_timeout=15):
        record = load(store, DocumentRecord, review.doc_id)
        if review.decision == "accept":
            record.accepted_conflicts.append(
                AcceptedConflict(
                    review_id=review.review_id,
                    problems=review.problems,
                    by=review.by or "",
                    role=review.role or "",
                    reason=review.reason or "",
                    at=review.decided_at or utcnow(),
                )
            )
        else:  # the keyed values go back to people; a value OCR proved stays unless none was keyed
            keyed = [n for n in review.fields if record.fields[n].entries] or review.fields
            for name in keyed:
                f = record.fields[name]
                f.value, f.status, f.reasons = None, FieldStatus.key_entry, list(review.problems)
                conn.delete(PREFIX + task_id_for(record.doc_id, name))  # the done task: queue it anew
        recheck(record)
        store.put(record.key, record.to_json(), "application/json", {"scan_id": record.scan_id})
    if review.decision != "accept":
        add_tasks(conn, record, immediate=False)
    figures.note_scan(conn, store, record.scan_id)
    return record


def settle(conn: Redis, store: ObjectStore, scan_id: str, update: dict | None = None) -> None:
    """Settle a scan (indexing/case.py), and queue the key-entry work that finds (a card back's holder):
    by the capture job once its documents are filed (``update``: the scan's status), and again after
    each keyed answer, which may tie a card to the form's party or tell whose a card back is."""
    changed, scan = settle_scan(store, conn, scan_id, update)
    for record in changed:
        if record.superseded_by or record.rescan:  # scanned again: nothing of it is keyed any more
            withdraw_document(conn, record)
            continue
        if not record.on_file and not record.rescan and record.scan_id == scan_id:
            add_tasks(conn, record, immediate=scan is not None and scan.mode == "immediate")


def strip(store: ObjectStore, task: Task) -> bytes | None:
    """Return the strip of the page around the task's field with the field marked (capture/strip.py),
    made on first asking and kept beside the field image; None where the field has no place on a page
    the template knows (a card back's holder)."""
    from capture.strip import field_strip_png
    from capture.templates import by_key

    key = task.image.removesuffix(".png") + ".strip.png"
    if store.exists(key):
        return store.get(key)
    record = load(store, DocumentRecord, task.doc_id)
    template = by_key(record.template) if record.template else None
    spec = next((f for f in template.fields if f.name == task.field), None) if template else None
    if spec is None or not record.pages:
        return None
    page = record.pages[min(spec.page, len(record.pages)) - 1]
    png = field_strip_png(store.get(page), spec.box)
    store.put(key, png, "image/png", {"doc_id": record.doc_id, "field": task.field})
    return png


@dataclass(frozen=True)
class DayCount:
    """What one keyer answered today (Beijing time): how many fields, and at what rate."""

    day: str  # YYYY-MM-DD
    answers: int
    per_hour: float | None  # answers an hour from their first to their last; None under two answers
    first_at: datetime | None
    last_at: datetime | None


def day_of(at: datetime) -> str:
    """Return the keyers' working day of a moment: its date in Beijing time."""
    return at.astimezone(BEIJING).date().isoformat()


def day_count(day: str, answers: int, first: datetime | None, last: datetime | None) -> DayCount:
    """Return a keyer's day: ``answers`` between ``first`` and ``last``, covering answers - 1 intervals."""
    span = (last - first).total_seconds() if first and last else 0
    per_hour = round((answers - 1) * 3600 / span, 1) if answers > 1 and span > 0 else None
    return DayCount(day, answers, per_hour, first, last)


# A tally per keyer and day, kept beside the tasks (the audit trail keeps every answer too; reading a busy
# day's trail on each answer would read every image read of the day): ke:day:<YYYY-MM-DD>:<keyer>.
DAY, DAY_TTL = "ke:day:", 3 * 24 * 3600


def count_answer(conn: Redis, keyer: str, at: datetime) -> None:
    """Count one answer of the keyer's at this moment in their day's tally."""
    key = f"{DAY}{day_of(at)}:{keyer}"
    pipe = conn.pipeline()
    pipe.hsetnx(key, "first", at.timestamp())
    pipe.hset(key, "last", at.timestamp())
    pipe.hincrby(key, "answers", 1)
    pipe.expire(key, DAY_TTL)
    pipe.execute()


def today(conn: Redis, keyer: str, now: datetime) -> DayCount:
    """Return the keyer's count and rate for the Beijing day of ``now``."""
    day = day_of(now)
    raw = {k.decode(): v.decode() for k, v in conn.hgetall(f"{DAY}{day}:{keyer}").items()}
    if not raw:
        return day_count(day, 0, None, None)
    first, last = (datetime.fromtimestamp(float(raw[k]), UTC) for k in ("first", "last"))
    return day_count(day, int(raw["answers"]), first, last)
