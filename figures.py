"""Managers' figures per branch and day: scans, pages, rescans and why, straight-through by field, keyers'
throughput and accuracy, time from scan to complete, e-policies issued, delivered, downloaded,
acknowledged.

Counted as things happen, not computed from the store when asked: the answer for a month costs the same
with a year of documents in the store as with a day's. Each event (a document captured, a field keyed, an
e-policy acknowledged) is derived from the record it concerns by the plain functions below, and added
once to a Redis hash per day and branch (``figures:<day>:<branch>``) by one script that first puts the
event's id into that day's set of counted events: a job run twice, or a record noted again after each
key-entry answer, adds nothing twice. The sets are kept ``WINDOW_DAYS`` and then expire; an event of an
older day is not counted live (it was counted when it happened). Should Redis lose them, ``rebuild``
derives the same events from every record in the store, so the live count and the rebuilt one agree by
construction (``imaging figures rebuild --day``).

Days are Beijing days (the branches' working days). A document's capture, fields and rescan count on the
day it was scanned (uploaded); a keyed value on the day it was keyed; a completion on the day the
document completed; an e-policy's steps on the day each happened. E-policies carry no branch (the sale
system issues them): they count under branch "" (people/reach.py: not held back by branch).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from redis import Redis
from redis.exceptions import RedisError

from errors import DependencyDown
from models import DocumentRecord, EPolicy, Scan, find, find_all
from storage import ObjectStore
from vocabulary import FieldStatus, ScanStatus

log = logging.getLogger("imaging.figures")

ZONE = ZoneInfo("Asia/Shanghai")
PREFIX = "figures:"  # figures:<day>:<branch> hash: figure -> count
SEEN = "figures:seen:"  # + day: the ids of the events counted for that day
BRANCHES = "figures:branches:"  # + day: the branches with figures that day
WINDOW_DAYS = 7  # how long an event may arrive late and still be counted once
# The quality gate's and the keyers' reasons for a rescan (capture/align.py, keyentry.py), by kind; the
# Chinese words are those of the counter's messages.
REASONS = {
    "blurred": r"blur|模糊",
    "dark": r"dark|过暗|太暗",
    "cut_off": r"cut off|不完整|裁切",
    "low_resolution": r"resolution|dpi|分辨率",
    "not_flat": r"registration mark|alignment|放平|对齐",
    "illegible": r"illegible|无法辨认",
}
REASON_NAMES = {
    "blurred": "模糊",
    "dark": "过暗",
    "cut_off": "页面不完整",
    "low_resolution": "分辨率低",
    "not_flat": "未放平",
    "illegible": "录入员无法辨认",
    "other": "其他",
}


def day_of(at: datetime) -> date:
    """Return the Beijing day of a moment."""
    return at.astimezone(ZONE).date()


def reason_of(problem: str) -> str:
    """Return the kind of a rescan reason (one of REASONS, or "other")."""
    return next((k for k, pattern in REASONS.items() if re.search(pattern, problem, re.I)), "other")


def duration_bucket(seconds: float) -> int:
    """Return the seconds a completion time is counted as: whole seconds up to an hour, whole minutes
    above (the median and 90th percentile are then exact to that, and the figures of a day stay small)."""
    seconds = max(0, round(seconds))
    return seconds if seconds <= 3600 else round(seconds / 60) * 60


@dataclass(frozen=True)
class Event:
    """Something to count once: its id, the day and branch it counts for, and what it adds."""

    id: str
    day: date
    branch: str
    counts: dict[str, int]


# ---- events, derived from records (plain functions) ----------------------------------------------


def scan_events(scan: Scan) -> list[Event]:
    """Return a captured scan's events: one scan and its pages, on the day it was uploaded."""
    if scan.status != ScanStatus.captured:
        return []
    counts = {"scans": 1, "pages": scan.pages}
    return [Event(f"scan:{scan.scan_id}", day_of(scan.uploaded_at), scan.branch or "", counts)]


def completed_at(record: DocumentRecord) -> datetime:
    """Return when a complete document became so: its capture, or the last value keyed or conflict
    accepted in it."""
    times = [record.captured_at]
    times += [e.at for f in record.fields.values() for e in f.entries]
    times += [a.at for a in record.accepted_conflicts]
    return max(times)


def document_events(record: DocumentRecord, scan: Scan) -> list[Event]:
    """Return a document's events: its capture with its fields (on the scan's day), its rescan request
    and why, its completion and how long it took, and its keyers' values and how they fared."""
    branch, day = record.branch or "", day_of(scan.uploaded_at)
    captured: Counter[str] = Counter(documents=1)
    for name, f in record.fields.items():
        if f.status is None:
            continue
        captured[f"field|{name}|total"] += 1
        captured[f"field|{name}|straight"] += f.status == FieldStatus.accepted and not f.entries
    events = [Event(f"doc:{record.doc_id}", day, branch, dict(captured))]
    if record.rescan:
        reasons = {reason_of(p) for p in record.problems} or {"other"}
        keyed = [e.at for f in record.fields.values() for e in f.entries if e.answer == "illegible"]
        when = day_of(min(keyed)) if keyed else day
        counts = {"rescans": 1, **{f"rescan|{r}": 1 for r in reasons}}
        events.append(Event(f"rescan:{record.doc_id}", when, branch, counts))
    if record.complete and not record.rescan:
        done = completed_at(record)
        took = duration_bucket((done - scan.uploaded_at).total_seconds())
        counts = {"completed": 1, f"complete_seconds|{took}": 1}
        events.append(Event(f"complete:{record.doc_id}", day_of(done), branch, counts))
    for name, f in record.fields.items():
        events += keyer_events(f"{record.doc_id}.{name}", f.entries, branch)
    return events


def keyer_events(task_id: str, entries: list, branch: str) -> list[Event]:
    """Return the events of a field's keyed values: each value counts for its keyer on its day; once the
    field is decided, each blind value counts as checked for its keyer, and as lost where the arbiter
    (the third keyer) chose otherwise, on the day of the decision."""
    events = [
        Event(f"key:{task_id}:{e.keyer}:{e.round}", day_of(e.at), branch, {f"keyed|{e.keyer}": 1})
        for e in entries
    ]
    blind = [e for e in entries if e.round == "blind"]
    arbiter = next((e for e in entries if e.round == "arbitration"), None)
    if len(blind) == 2 and (
        arbiter or (blind[0].answer, blind[0].value) == (blind[1].answer, blind[1].value)
    ):
        final = arbiter or blind[1]
        for e in blind:
            counts = {
                f"checked|{e.keyer}": 1,
                f"lost|{e.keyer}": int((e.answer, e.value) != (final.answer, final.value)),
            }
            events.append(Event(f"judged:{task_id}:{e.keyer}", day_of(final.at), branch, counts))
    return events


def epolicy_events(policy: EPolicy) -> list[Event]:
    """Return an e-policy's events, version by version: issued (signed), delivered (the first mail
    sent), downloaded and acknowledged (the first time of each)."""
    events = []
    for v in policy.versions:
        sent = [d.at for d in policy.deliveries if d.version == v.version and d.status == "sent" and d.at]
        steps = {
            "issued": v.signed_at,
            "delivered": min(sent) if sent else None,
            "downloaded": v.receipt.downloaded_at,
            "acknowledged": v.receipt.acknowledged_at,
        }
        for step, at in steps.items():
            if at is not None:
                ident = f"epolicy:{policy.policy_no}:v{v.version}:{step}"
                events.append(Event(ident, day_of(at), "", {f"epolicies|{step}": 1}))
    return events


# ---- counting in Redis ---------------------------------------------------------------------------

# KEYS: the day's counted set, the day-and-branch hash, the day's set of branches. ARGV: the event id,
# when the counted set may go (Unix time), the branch, then figure, amount pairs.
_ADD = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIREAT', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""


def hash_key(day: date, branch: str) -> str:
    return f"{PREFIX}{day.isoformat()}:{branch}"


def add(conn: Redis, events: Iterable[Event], today: date | None = None) -> int:
    """Count each event not counted before and not older than WINDOW_DAYS; return how many were new."""
    today = today or day_of(datetime.now(ZONE))
    floor = today - timedelta(days=WINDOW_DAYS)
    script = conn.register_script(_ADD)
    with conn.pipeline(transaction=False) as pipe:
        for e in events:
            if e.day < floor:
                continue
            until = datetime.combine(e.day + timedelta(days=WINDOW_DAYS + 2), datetime.min.time(), ZONE)
            pairs = [str(x) for item in e.counts.items() for x in item]
            keys = [f"{SEEN}{e.day.isoformat()}", hash_key(e.day, e.branch), f"{BRANCHES}{e.day.isoformat()}"]
            script(keys=keys, args=[e.id, int(until.timestamp()), e.branch, *pairs], client=pipe)
        return sum(int(r) for r in pipe.execute())


def note_scan(conn: Redis, store: ObjectStore, scan_id: str) -> None:
    """Count what a scan and its documents now show (after capture, after a keyed answer, after a
    review). A failure is logged, never raised: a lost count never fails a job or a keyer's answer, and
    ``rebuild`` brings it back."""
    try:
        scan = find(store, Scan, scan_id)
        if scan is None or scan.status != ScanStatus.captured:
            return
        records = [r for r in (find(store, DocumentRecord, d) for d in scan.documents) if r is not None]
        add(conn, [*scan_events(scan), *(e for r in records for e in document_events(r, scan))])
    except (RedisError, DependencyDown) as exc:
        log.warning("figures of scan %s not counted: %s", scan_id, exc)
    except Exception:  # a bug here must not fail the capture or the keyer's answer: logged with its trace
        log.exception("figures of scan %s not counted", scan_id)


def note_epolicy(conn: Redis, policy: EPolicy) -> None:
    """Count an e-policy's steps so far; a failure is logged, never raised (as note_scan)."""
    try:
        add(conn, epolicy_events(policy))
    except RedisError as exc:
        log.warning("figures of e-policy %s not counted: %s", policy.policy_no, exc)
    except Exception:  # as in note_scan
        log.exception("figures of e-policy %s not counted", policy.policy_no)


def all_events(store: ObjectStore) -> Iterator[Event]:
    """Yield the events of every scan, document and e-policy in the store (for ``rebuild``)."""
    for scan in find_all(store, Scan, "scans/"):
        yield from scan_events(scan)
        for doc_id in scan.documents if scan.status == ScanStatus.captured else []:
            record = find(store, DocumentRecord, doc_id)
            if record is not None:
                yield from document_events(record, scan)
    for info in store.list("epolicies/"):
        if info.key.endswith("/policy.json"):
            policy = find(store, EPolicy, info.key.removeprefix("epolicies/").removesuffix("/policy.json"))
            if policy is not None:
                yield from epolicy_events(policy)


def rebuild(conn: Redis, store: ObjectStore, days: list[date]) -> int:
    """Return how many events were counted after replacing these days' figures with those derived from
    every record in the store (after a loss of Redis). It reads the whole store: an operator's step."""
    wanted = set(days)
    events = [e for e in all_events(store) if e.day in wanted]
    for day in wanted:
        branches = [b.decode() for b in conn.smembers(f"{BRANCHES}{day.isoformat()}")]
        conn.delete(
            f"{SEEN}{day.isoformat()}", f"{BRANCHES}{day.isoformat()}", *(hash_key(day, b) for b in branches)
        )
    return add(conn, events, today=min(wanted))


# ---- reading ---------------------------------------------------------------------------------------


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def branches_on(conn: Redis, day: date) -> list[str]:
    """Return the branches with figures on a day."""
    return sorted(b.decode() for b in conn.smembers(f"{BRANCHES}{day.isoformat()}"))


def counts_of(conn: Redis, day: date, branch: str) -> Counter[str]:
    """Return a day and branch's raw counts."""
    return Counter({k.decode(): int(v) for k, v in conn.hgetall(hash_key(day, branch)).items()})


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentile(histogram: dict[int, int], share: float) -> float | None:
    """Return the nearest-rank percentile of the values a histogram counts."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = max(1, math.ceil(share * total - 1e-9)), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return None


@dataclass
class FieldFigures:
    field: str
    total: int
    straight: int
    rate: float | None


@dataclass
class KeyerFigures:
    keyer: str
    keyed: int
    checked: int
    lost: int
    accuracy: float | None  # 1 - lost / checked, over blind values decided by agreement or arbitration


@dataclass
class Figures:
    """What a manager reads for a day and branch, or for a range (summed)."""

    scans: int = 0
    pages: int = 0
    documents: int = 0
    rescans: int = 0
    rescan_rate: float | None = None
    rescan_reasons: dict[str, int] = field(default_factory=dict)
    fields_total: int = 0
    fields_straight: int = 0
    straight_through: float | None = None
    fields: list[FieldFigures] = field(default_factory=list)
    keyed: int = 0
    keyers: list[KeyerFigures] = field(default_factory=list)
    completed: int = 0
    complete_median_seconds: float | None = None
    complete_p90_seconds: float | None = None
    epolicies: dict[str, int] = field(default_factory=dict)


def summarise(counts: Counter[str]) -> Figures:
    """Return the figures that raw counts (one day and branch, or several summed) make."""
    fields: dict[str, list[int]] = {}
    keyers: dict[str, Counter[str]] = {}
    histogram: dict[int, int] = {}
    reasons: dict[str, int] = {}
    for key, value in counts.items():
        kind, _, rest = key.partition("|")
        if kind == "field":
            name, _, which = rest.rpartition("|")
            fields.setdefault(name, [0, 0])[which == "straight"] += value
        elif kind in ("keyed", "checked", "lost"):
            keyers.setdefault(rest, Counter())[kind] += value
        elif kind == "complete_seconds":
            histogram[int(rest)] = histogram.get(int(rest), 0) + value
        elif kind == "rescan":
            reasons[rest] = value
    per_field = [FieldFigures(n, t, s, _rate(s, t)) for n, (t, s) in sorted(fields.items())]
    per_keyer = [
        KeyerFigures(k, c["keyed"], c["checked"], c["lost"], _rate(c["checked"] - c["lost"], c["checked"]))
        for k, c in sorted(keyers.items())
    ]
    total, straight = sum(f.total for f in per_field), sum(f.straight for f in per_field)
    return Figures(
        scans=counts["scans"],
        pages=counts["pages"],
        documents=counts["documents"],
        rescans=counts["rescans"],
        rescan_rate=_rate(counts["rescans"], counts["documents"]),
        rescan_reasons=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        fields_total=total,
        fields_straight=straight,
        straight_through=_rate(straight, total),
        fields=per_field,
        keyed=sum(k.keyed for k in per_keyer),
        keyers=per_keyer,
        completed=counts["completed"],
        complete_median_seconds=_percentile(histogram, 0.5),
        complete_p90_seconds=_percentile(histogram, 0.9),
        epolicies={
            s: counts[f"epolicies|{s}"] for s in ("issued", "delivered", "downloaded", "acknowledged")
        },
    )


@dataclass
class Row:
    day: date
    branch: str
    figures: Figures


def read(conn: Redis, first: date, last: date, visible: Callable[[str], bool]) -> tuple[list[Row], Figures]:
    """Return the figures of each day and visible branch from first to last, and their sum: two round
    trips to Redis whatever the range (its branches, then their hashes)."""
    days = days_between(first, last)
    with conn.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.smembers(f"{BRANCHES}{day.isoformat()}")
        found = pipe.execute()
    wanted = [(d, b) for d, codes in zip(days, found, strict=True) for b in sorted(c.decode() for c in codes)]
    wanted = [(d, b) for d, b in wanted if visible(b)]
    with conn.pipeline(transaction=False) as pipe:
        for day, branch in wanted:
            pipe.hgetall(hash_key(day, branch))
        hashes = pipe.execute()
    rows: list[Row] = []
    total: Counter[str] = Counter()
    for (day, branch), raw in zip(wanted, hashes, strict=True):
        counts = Counter({k.decode(): int(v) for k, v in raw.items()})
        total.update(counts)
        rows.append(Row(day, branch, summarise(counts)))
    return rows, summarise(total)
