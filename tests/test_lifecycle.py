"""Records across versions of the service, on real S3: fields this version does not know are kept on
rewrite, a record of a newer schema is refused with a clear error, `imaging migrate` upgrades the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient
from pydantic import Field
from redis import Redis

import events
import keyentry
import migrations
import models
import queues
import retention
from api import create_app
from esign.epolicy import sample_request
from indexing.index import lookup
from models import DocumentRecord, NewerSchema, Scan, ScanFile, find, load
from settings import Settings
from storage import ObjectStore, open_store
from tests.conftest import (
    ADMIN_KEY,
    KEYER2_KEY,
    KEYER3_KEY,
    KEYER_KEY,
    SALES_KEY,
    SCANNER_KEY,
    run_cli,
    run_worker_burst,
)
from tests.esign.test_epolicy_flow import mail_settings  # noqa: F401  (the fixture)
from tests.ocr.conftest import DOC, document  # noqa: F401  (the fixture)
from tests.samples import sample_stack
from vocabulary import EventKind, ScanMode, ScanStatus, utcnow

SHA = "0" * 64


def _scan(scan_id: str) -> Scan:
    return Scan(
        scan_id=scan_id,
        mode=ScanMode.batch,
        files=[ScanFile(sha256=SHA, content_type="image/png", size=3)],
        uploaded_by="k1",
        uploaded_at=utcnow(),
    )


def test_fields_this_version_does_not_know_are_kept_on_rewrite(s3_store: ObjectStore) -> None:
    raw = json.loads(_scan("s20261130120000aaaaaaaaaaaa").to_json())
    raw["channel"] = "counter-7"  # added by a newer minor version
    raw["files"][0]["dpi"] = 300  # nested too
    s3_store.put("scans/s20261130120000aaaaaaaaaaaa.json", json.dumps(raw).encode(), "application/json")

    scan = load(s3_store, Scan, "s20261130120000aaaaaaaaaaaa")
    captured = scan.model_copy(update={"status": ScanStatus.captured, "pages": 2})
    s3_store.put(captured.key, captured.to_json(), "application/json")

    again = json.loads(s3_store.get(captured.key))
    assert again["status"] == "captured" and again["pages"] == 2
    assert again["channel"] == "counter-7" and again["files"][0]["dpi"] == 300
    fresh = json.loads(_scan("s20261130120000bbbbbbbbbbbb").to_json())
    assert "channel" not in fresh, "a record made here has only the fields this version knows"


def test_a_record_of_a_newer_schema_is_refused_with_a_clear_error(s3_store: ObjectStore) -> None:
    raw = {**json.loads(_scan("s20261130120000cccccccccccc").to_json()), "schema": 2}
    s3_store.put("scans/s20261130120000cccccccccccc.json", json.dumps(raw).encode(), "application/json")
    with pytest.raises(NewerSchema) as refused:
        load(s3_store, Scan, "s20261130120000cccccccccccc")
    assert refused.value.message == (
        "scans/s20261130120000cccccccccccc.json is scan schema 2, written by a newer version of imaging; "
        "this one reads up to 1: upgrade imaging on this machine"
    )
    assert refused.value.http_status == 503, "a job meeting it is retried: a rolling upgrade finishes it"


class ScanV2(Scan):
    """The scan record as a next version might have it: every scan says which channel it came through."""

    noun: ClassVar[str] = "scan"
    schema_: int = Field(2, alias="schema")
    channel: str


def test_migrate_upgrades_every_old_record_once_and_leaves_newer_ones(
    s3_store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        scan = _scan(f"s2026113012000{n}dddddddddddd")
        s3_store.put(scan.key, scan.to_json(), "application/json", {"scan": "meta"})
    monkeypatch.setitem(models.UPGRADES, ("ScanV2", 1), lambda raw: {**raw, "channel": "counter"})
    monkeypatch.setattr(migrations, "KINDS", [("scans/", ".json", ScanV2)])
    s3_store.put("scans/broken.json", b"{not json", "application/json")

    report = migrations.migrate(s3_store)
    assert report.records == 4 and len(report.upgraded) == 3 and report.newer == []
    assert report.unreadable and report.unreadable[0].startswith("scans/broken.json: ")
    for n in range(3):
        key = f"scans/s2026113012000{n}dddddddddddd.json"
        stored = json.loads(s3_store.get(key))
        assert stored["schema"] == 2 and stored["channel"] == "counter"
        assert s3_store.stat(key).metadata.get("scan") == "meta", "object metadata kept"
    assert migrations.migrate(s3_store).upgraded == [], "a second run has nothing to do"

    # The older code (schema 1) now refuses what the migration wrote; the old report names it as newer.
    with pytest.raises(NewerSchema):
        load(s3_store, Scan, "s20261130120000dddddddddddd")
    monkeypatch.setattr(migrations, "KINDS", [("scans/", ".json", Scan)])
    assert len(migrations.migrate(s3_store).newer) == 3


def test_the_migrate_command_reports_and_exits_1_on_records_it_cannot_take(settings: Settings) -> None:
    store = open_store(settings)
    scan = _scan("s20261130120000eeeeeeeeeeee")
    store.put(scan.key, scan.to_json(), "application/json")
    done = run_cli(settings, "migrate")
    assert done.returncode == 0, done.stderr
    assert "1 records: 0 upgraded, 0 of a newer version (upgrade imaging here), 0 unreadable" in done.stderr
    store.put(scan.key, scan.to_json().replace(b'"schema": 1', b'"schema": 5'), "application/json")
    done = run_cli(settings, "migrate", "--dry-run")
    assert done.returncode == 1 and f"newer\t{scan.key}" in done.stdout


def test_a_redis_flush_mid_work_loses_nothing(
    mail_settings: Settings,  # noqa: F811
    document: DocumentRecord,  # noqa: F811  (two key-entry tasks: a name, single; an ID number, blind)
) -> None:
    settings = mail_settings
    client = TestClient(create_app(settings))
    conn = Redis.from_url(settings.redis_url)

    def lease(key: str) -> dict | None:
        return client.get("/v1/keyentry/next", headers={"X-API-Key": key}).json()["task"]

    def key_in(key: str, task_id: str, value: str) -> str:
        answer = client.post(f"/v1/keyentry/{task_id}", json={"value": value}, headers={"X-API-Key": key})
        return answer.json()["status"]

    # Work in every state: a blind value keyed once, a field leased, a scan queued, an e-policy queued.
    held = {KEYER_KEY: lease(KEYER_KEY), KEYER2_KEY: lease(KEYER2_KEY)}
    first = next(k for k, t in held.items() if t["field"] == "applicant_id_number")
    number = held[first]["task_id"]
    assert key_in(first, number, "110105198703150013") == "waiting"
    upload = client.post(
        "/v1/scans?mode=batch",
        content=sample_stack(),
        headers={"X-API-Key": SCANNER_KEY, "Content-Type": "image/tiff"},
    )
    assert upload.status_code == 202
    scan_id = upload.json()["scan_id"]
    body = sample_request().model_dump(mode="json")
    assert client.post("/v1/epolicies", json=body, headers={"X-API-Key": SALES_KEY}).status_code == 202

    conn.flushdb()  # Redis loses everything
    assert keyentry.waiting(conn) == 0 and not conn.exists(queues.OPEN_SCANS)

    done = run_cli(settings, "rebuild")
    assert done.returncode == 0, done.stderr
    assert "rebuilt 1 open scans, 2 key-entry tasks, 1 e-policy versions, 0 mails" in done.stderr
    again = run_cli(settings, "rebuild")
    assert "rebuilt 0 open scans, 0 key-entry tasks, 0 e-policy versions, 0 mails" in again.stderr

    # The first blind keyer may not key the number again; they get the name, someone else the number.
    assert lease(first)["field"] == "applicant_name"
    assert key_in(first, f"{DOC}.applicant_name", "张三丰") == "keyed"
    assert lease(first) is None
    task = lease(KEYER3_KEY)
    assert task["task_id"] == number and task["round"] == "blind" and task["suggestion"] is None
    assert key_in(KEYER3_KEY, number, "110105198703150013") == "keyed"
    record = load(open_store(settings), DocumentRecord, DOC)
    assert record.complete and len({e.keyer for e in record.fields["applicant_id_number"].entries}) == 2

    assert run_worker_burst(settings).returncode == 0  # the queued scan and e-policy, from rebuilt jobs
    scan = client.get(f"/v1/scans/{scan_id}", headers={"X-API-Key": ADMIN_KEY}).json()
    assert scan["status"] == "captured" and scan["documents"]
    policy = client.get("/v1/epolicies/P2026110000123", headers={"X-API-Key": SALES_KEY}).json()
    assert policy["status"] == "sent", policy


def _upload(client: TestClient, policy_no: str) -> str:
    sent = client.post(
        "/v1/scans",
        files=[("file", ("stack.tif", sample_stack(), "image/tiff"))],
        data={"mode": "batch", "policy_no": policy_no},
        headers={"X-API-Key": SCANNER_KEY},
    )
    assert sent.status_code == 202, sent.text
    return sent.json()["scan_id"]


def test_retention_deletes_what_is_past_its_period_but_not_what_is_held_or_in_force(
    mail_settings: Settings,  # noqa: F811
) -> None:
    settings, store = mail_settings, open_store(mail_settings)
    client = TestClient(create_app(settings))
    plain, held, in_force = (_upload(client, p) for p in ("PA2026000001", "PB2026000002", "P2026110000123"))
    body = sample_request().model_dump(mode="json")  # policy P2026110000123, whole life: in force
    assert client.post("/v1/epolicies", json=body, headers={"X-API-Key": SALES_KEY}).status_code == 202
    assert run_worker_burst(settings).returncode == 0
    docs = {s: load(store, Scan, s).documents for s in (plain, held, in_force)}
    assert all(len(d) == 2 for d in docs.values()), docs  # a form and an ID card front each
    retention.hold(store, "policy", "PB2026000002", "litigation 2026-17", by="legal")

    days = {"application_form": 3650, "idcard_front": 3650}
    assert retention.expire(store, days, by="test").deleted == [], "nothing is ten years old yet"
    report = retention.expire(store, days, by="test", now=datetime.now(UTC) + timedelta(days=3651))

    assert sorted(report.deleted) == sorted(docs[plain])
    assert report.scans_removed == [plain]
    assert {report.kept[d] for d in docs[held]} == {"legal hold on policy PB2026000002"}
    assert {report.kept[d] for d in docs[in_force]} == {"policy P2026110000123 in force"}
    for doc_id in docs[plain]:
        assert not any(i.key for i in store.list(f"documents/{doc_id}/"))
    assert [e.doc_id for e in lookup(store, "policy", "PA2026000001")] == []
    assert find(store, Scan, plain) is None
    assert all(find(store, DocumentRecord, d) for d in docs[held] + docs[in_force])
    runs = sorted(i.key for i in store.list(retention.LOG))
    assert len(runs) == 2, "each run is logged, the one that deleted nothing too"
    logged = json.loads(store.get(runs[-1]))
    assert logged["what"] == "expiry" and sorted(logged["deleted"]) == sorted(docs[plain])

    retention.release(store, "policy", "PB2026000002", by="legal")
    again = retention.expire(store, days, by="test", now=datetime.now(UTC) + timedelta(days=3651))
    assert sorted(again.deleted) == sorted(docs[held]), "released from the hold: deleted on the next run"


def test_one_customers_documents_are_deleted_on_request_and_logged_without_their_number(
    settings: Settings,
) -> None:
    store = open_store(settings)
    client = TestClient(create_app(settings))
    scan_id = _upload(client, "PC2026000003")
    assert run_worker_burst(settings).returncode == 0
    card = next(
        d
        for d in load(store, Scan, scan_id).documents
        if load(store, DocumentRecord, d).type == "idcard_front"
    )
    customer = "110105198703150013"
    assert card in [e.doc_id for e in lookup(store, "customer", customer)]
    conn = Redis.from_url(settings.redis_url)
    told, _ = events.emit(
        conn, store, settings, EventKind.document_completed, card, {"values": {"id": customer}}
    )

    done = run_cli(settings, "retention", "forget", "--customer", customer, "--reason", "request 2026-0042")
    assert done.returncode == 0, done.stderr
    assert f"deleted\t{card}" in done.stdout
    assert lookup(store, "customer", customer) == [] and find(store, DocumentRecord, card) is None
    assert find(store, events.Event, told.event_id) is None, "its event and the values in it go too"
    (entry,) = list(store.list(retention.LOG))
    text = store.get(entry.key).decode()
    assert customer not in text and customer not in done.stdout + done.stderr
    assert json.loads(text)["reason"] == "request 2026-0042" and card in json.loads(text)["deleted"]
