"""The managers' figures from records: what each record counts for (plain functions), counted once in a
real Redis however often a record is noted, old days left alone, and the rebuild from the store giving
the same counts as the live path."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis import Redis

import figures
from models import (
    Delivery,
    DocumentRecord,
    EPolicy,
    EPolicyVersion,
    FieldRecord,
    KeyedValue,
    Receipt,
    Scan,
    ScanFile,
)
from storage.local import LocalStore

UPLOADED = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in Beijing
SCAN = "s20261130090000abcdefabcdef"
DOC = SCAN.replace("s", "d", 1) + "001"


def _field(status: str, *entries: tuple[str, str, str, int]) -> FieldRecord:
    """A field with these keyed entries: (keyer, round, value, minutes after the upload)."""
    keyed = [
        KeyedValue(keyer=k, at=UPLOADED + timedelta(minutes=m), value=v, ocr=None, round=r)
        for k, r, v, m in entries
    ]
    return FieldRecord(box=[0, 0, 1, 1], quad=[], page=1, image="x.png", status=status, entries=keyed)


def _scan(**changes) -> Scan:
    file = ScanFile(sha256="0" * 64, content_type="image/png", size=1)
    base = dict(
        scan_id=SCAN,
        mode="immediate",
        files=[file],
        uploaded_by="counter1",
        uploaded_at=UPLOADED,
        branch="861101",
        status="captured",
        pages=2,
        documents=[DOC],
    )
    return Scan(**(base | changes))


def _form(**changes) -> DocumentRecord:
    fields = {
        "applicant_phone": _field("accepted"),
        "premium": _field("accepted"),
        # blind keyers who differ, settled by an arbiter for alice's value
        "applicant_name": _field(
            "keyed",
            ("alice", "blind", "张三", 3),
            ("bob", "blind", "张叁", 4),
            ("carol", "arbitration", "张三", 7),
        ),
        # blind keyers who agree
        "applicant_id_number": _field(
            "keyed", ("bob", "blind", "110105198703150013", 5), ("alice", "blind", "110105198703150013", 6)
        ),
        "insured_name": _field("keyed", ("carol", "single", "李四", 2)),
    }
    base = dict(
        doc_id=DOC,
        scan_id=SCAN,
        type="application_form",
        source_pages=[1],
        pages=[],
        status="ok",
        fields=fields,
        captured_at=UPLOADED + timedelta(seconds=20),
        complete=True,
        branch="861101",
    )
    return DocumentRecord(**(base | changes))


def _merged(events: list[figures.Event]) -> Counter:
    total: Counter = Counter()
    for e in events:
        total.update(e.counts)
    return total


def test_a_keyed_form_counts_its_fields_keyers_and_time_to_complete() -> None:
    events = figures.document_events(_form(), _scan())
    assert len({e.id for e in events}) == len(events)
    assert {e.day.isoformat() for e in events} == {"2026-11-30"} and {e.branch for e in events} == {"861101"}
    counts = _merged(events)
    assert counts["documents"] == 1 and counts["rescans"] == 0 and counts["completed"] == 1
    assert counts["complete_seconds|420"] == 1  # the arbiter's value, 7 minutes after the upload
    for name in ("applicant_phone", "premium"):
        assert counts[f"field|{name}|total"] == 1 and counts[f"field|{name}|straight"] == 1
    for name in ("applicant_name", "applicant_id_number", "insured_name"):
        assert counts[f"field|{name}|total"] == 1 and counts[f"field|{name}|straight"] == 0
    assert {k: counts[f"keyed|{k}"] for k in ("alice", "bob", "carol")} == {"alice": 2, "bob": 2, "carol": 2}
    # alice and bob each had two blind values decided; bob's name lost the arbitration, nobody else's did
    assert {k: counts[f"checked|{k}"] for k in ("alice", "bob", "carol")} == {
        "alice": 2,
        "bob": 2,
        "carol": 0,
    }
    assert {k: counts[f"lost|{k}"] for k in ("alice", "bob")} == {"alice": 0, "bob": 1}
    got = figures.summarise(counts)
    assert got.straight_through == 0.4
    assert {f.field: f.rate for f in got.fields} == {
        "applicant_id_number": 0.0,
        "applicant_name": 0.0,
        "applicant_phone": 1.0,
        "insured_name": 0.0,
        "premium": 1.0,
    }
    assert {k.keyer: k.accuracy for k in got.keyers} == {"alice": 1.0, "bob": 0.5, "carol": None}


def test_a_field_still_waiting_for_its_arbiter_judges_nobody() -> None:
    record = _form(complete=False)
    record.fields["applicant_name"].entries.pop()  # the arbiter has not answered yet
    counts = _merged(figures.document_events(record, _scan()))
    assert counts["checked|bob"] == 1 and counts["lost|bob"] == 0 and counts["completed"] == 0


def test_a_rescan_counts_its_reasons_by_kind() -> None:
    problems = [
        "application_form on page 1: the page is blurred (edges spread 0.41 mm): rescan in focus",
        "the page is too dark (paper at 90 of 255): rescan with more light",
        "only 2 of 4 registration marks found: rescan the whole page, flat",
        "something new",
    ]
    record = _form(status="exception", problems=problems, complete=False, fields={})
    counts = _merged(figures.document_events(record, _scan()))
    assert counts["rescans"] == 1
    assert {k for k in counts if k.startswith("rescan|")} == {
        "rescan|blurred",
        "rescan|dark",
        "rescan|not_flat",
        "rescan|other",
    }
    assert figures.reason_of("申请人姓名 (applicant_name): illegible to the keyer: scan the page again") == (
        "illegible"
    )
    assert figures.reason_of("第2页模糊，请重新扫描") == "blurred"


def test_an_epolicy_counts_each_step_of_each_version_on_its_own_day() -> None:
    late = UPLOADED + timedelta(days=1)
    policy = EPolicy(
        policy_no="P2026110000123",
        versions=[
            EPolicyVersion(
                version=1,
                digest="a",
                requested_at=UPLOADED,
                signed_at=UPLOADED,
                receipt=Receipt(downloaded_at=late, acknowledged_at=late),
            ),
            EPolicyVersion(version=2, digest="b", requested_at=late, signed_at=late),
        ],
        deliveries=[
            Delivery(mail_id="m1", version=1, to="a@b.cn", queued_at=UPLOADED, status="sent", at=UPLOADED),
            Delivery(
                mail_id="m2", version=1, to="a@b.cn", queued_at=late, status="sent", at=late
            ),  # a resend
            Delivery(mail_id="m3", version=2, to="a@b.cn", queued_at=late, status="failed", at=late),
        ],
    )
    by_day: dict[str, Counter] = {}
    for e in figures.epolicy_events(policy):
        by_day.setdefault(e.day.isoformat(), Counter()).update(e.counts)
    assert by_day == {
        "2026-11-30": Counter({"epolicies|issued": 1, "epolicies|delivered": 1}),
        "2026-12-01": Counter(
            {"epolicies|issued": 1, "epolicies|downloaded": 1, "epolicies|acknowledged": 1}
        ),
    }


def test_times_to_complete_give_a_nearest_rank_median_and_90th_percentile() -> None:
    counts = Counter({f"complete_seconds|{s}": 1 for s in (30, 10, 40, 20)} | {"completed": 4})
    got = figures.summarise(counts)
    assert (got.complete_median_seconds, got.complete_p90_seconds) == (20.0, 40.0)
    assert figures.duration_bucket(59.6) == 60 and figures.duration_bucket(7250) == 7260
    assert figures.summarise(Counter()).complete_median_seconds is None


def test_an_event_is_counted_once_and_a_day_past_the_window_is_left_alone(redis_conn: Redis) -> None:
    today = figures.day_of(UPLOADED)
    events = figures.document_events(_form(), _scan())
    assert figures.add(redis_conn, events, today) == len(events)
    assert figures.add(redis_conn, events, today) == 0  # a job run again, a record noted again
    assert figures.counts_of(redis_conn, today, "861101")["documents"] == 1
    assert figures.branches_on(redis_conn, today) == ["861101"]
    late = today + timedelta(days=figures.WINDOW_DAYS + 1)
    redis_conn.delete(f"{figures.SEEN}{today.isoformat()}")  # its ids expired long ago
    assert figures.add(redis_conn, events, late) == 0
    assert figures.counts_of(redis_conn, today, "861101")["documents"] == 1


def test_the_rebuild_from_the_store_counts_what_the_live_path_counted(
    redis_conn: Redis, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "objects")
    scan, form = _scan(), _form()
    store.put(scan.key, scan.to_json(), "application/json")
    store.put(form.key, form.to_json(), "application/json")
    policy = EPolicy(
        policy_no="P2026110000123",
        versions=[EPolicyVersion(version=1, digest="a", requested_at=UPLOADED, signed_at=UPLOADED)],
    )
    store.put(policy.key, policy.to_json(), "application/json")
    day = figures.day_of(UPLOADED)
    figures.add(redis_conn, figures.all_events(store), day)
    live = {b: figures.counts_of(redis_conn, day, b) for b in figures.branches_on(redis_conn, day)}
    assert set(live) == {"", "861101"} and live[""] == Counter({"epolicies|issued": 1})
    assert live["861101"]["scans"] == 1 and live["861101"]["pages"] == 2

    redis_conn.flushdb()  # Redis lost
    assert figures.rebuild(redis_conn, store, [day]) > 0
    assert {b: figures.counts_of(redis_conn, day, b) for b in figures.branches_on(redis_conn, day)} == live
    figures.rebuild(redis_conn, store, [day])  # twice: the same, not double
    assert {b: figures.counts_of(redis_conn, day, b) for b in figures.branches_on(redis_conn, day)} == live


def test_a_count_that_cannot_be_made_fails_nothing(tmp_path: Path, caplog) -> None:
    store = LocalStore(tmp_path / "objects")
    scan = _scan()
    store.put(scan.key, scan.to_json(), "application/json")
    away = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    figures.note_scan(away, store, scan.scan_id)  # the capture or the keyer's answer goes on
    figures.note_epolicy(away, EPolicy(policy_no="P2026110000123"))
    assert "figures of scan" in caplog.text
