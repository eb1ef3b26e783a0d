"""Events for core systems (events.py): a document that completes is one `document.completed` event,
delivered signed to a real HTTP receiver by a real worker, retried until a 2xx, received once by its id,
listed for operators and replayed; the same values pulled from `GET /v1/documents/{id}/values`."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

import events
import keyentry
from api import create_app
from capture.decode import encode_png
from models import DocumentRecord, FieldRecord, Scan, ScanFile, load
from settings import Settings, parse_webhooks
from storage import open_store
from supervisor import free_port
from tests.conftest import ADMIN_KEY, CLAIMS_KEY, KEYER_KEY, SCANNER_KEY, UNDERWRITER_KEY, running_workers
from tests.servers import wait_until
from vocabulary import EventKind, ScanMode, ScanStatus, utcnow

SECRET = "a webhook secret the receiver holds"
MALE = "110105198703150013"
SCAN = "s20261130101500abcdefabcdef"
CARD = "d20261130101500abcdefabcdef001"
FORM = "d20261130101500abcdefabcdef002"
POLICY = "P2026113000001"


# ---- plain functions ---------------------------------------------------------------------------------


def _record(status: str = "accepted", checks: list[str] | None = None) -> DocumentRecord:
    field = FieldRecord(
        box=[0, 0, 1, 1], quad=[], page=1, image="x.png", kind="sex", value="男", status=status
    )
    number = FieldRecord(
        box=[0, 0, 1, 1], quad=[], page=1, image="y.png", kind="id_number", value=MALE, status="accepted"
    )
    record = DocumentRecord(
        doc_id=CARD,
        scan_id=SCAN,
        type="idcard_front",
        source_pages=[1],
        pages=[],
        status="ok",
        fields={"sex": field, "id_number": number},
        captured_at=utcnow(),
        keys={"customer": [MALE], "policy": []},
        checks=checks or [],
    )
    record.complete = all(f.status in ("accepted", "keyed") for f in record.fields.values())
    return record


def test_a_document_is_finished_only_with_every_field_trusted_and_its_checks_held() -> None:
    assert events.finished(_record())
    assert not events.finished(_record(status="key_entry"))
    assert not events.finished(_record(checks=["the ID card is neither the applicant's nor the insured's"]))
    values = events.document_values(_record(status="key_entry"))
    assert values.values == {"id_number": MALE} and values.pending == ["sex"] and not values.complete
    assert values.numbers == {"customer": [MALE]}


def test_the_signature_is_the_hmac_of_timestamp_and_body_and_a_stale_or_altered_one_is_refused() -> None:
    body, stamp = b'{"event_id":"x"}', "1700000000"
    expected = "sha256=" + hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert events.signature(SECRET.encode(), stamp, body) == expected
    headers = {"X-Imaging-Timestamp": stamp, "X-Imaging-Signature": expected}
    assert events.verify_signature(SECRET.encode(), headers, body, now=1700000100)
    assert not events.verify_signature(SECRET.encode(), headers, body + b" ", now=1700000100)
    assert not events.verify_signature(b"another secret", headers, body, now=1700000100)
    assert not events.verify_signature(SECRET.encode(), headers, body, now=1700000000 + 301)


def test_production_sends_webhooks_over_https_only() -> None:
    import production
    from errors import ConfigError

    plain = Settings(env="production", webhooks="*=http://core.insurer.example/in", webhook_secret="k")
    refusal = "IMAGING_WEBHOOKS: http://core.insurer.example/in is plain HTTP; production sends values by"
    with pytest.raises(ConfigError, match=refusal):
        production.check(plain)
    tls = Settings(env="production", webhooks="*=https://core.insurer.example/in", webhook_secret="k")
    with pytest.raises(ConfigError, match="IMAGING_REDIS_URL"):  # past the webhooks, on to the next setting
        production.check(tls)


def test_webhook_settings_name_a_known_event_and_an_http_url_and_need_the_secret() -> None:
    assert parse_webhooks("document.completed=https://a.example/h; *=http://127.0.0.1:9/x") == [
        ("document.completed", "https://a.example/h"),
        ("*", "http://127.0.0.1:9/x"),
    ]
    with pytest.raises(ValueError, match="is not event=URL"):
        parse_webhooks("document.done=https://a.example/h")
    with pytest.raises(ValueError, match="is not an http"):
        parse_webhooks("*=ftp://a.example/h")
    with pytest.raises(ValueError, match="IMAGING_WEBHOOK_SECRET"):
        Settings(webhooks="*=https://a.example/h")
    both = Settings(
        webhooks="*=https://a.example/h;epolicy.acknowledged=https://b.example/h", webhook_secret="k"
    )
    assert both.webhook_urls("epolicy.acknowledged") == ["https://a.example/h", "https://b.example/h"]
    assert both.webhook_urls("document.completed") == ["https://a.example/h"]


# ---- end to end: a real receiver, a real worker ---------------------------------------------------


class Receiver:
    """A core system's webhook endpoint: answers 500 to its first ``failures`` requests, then 200; keeps
    every request and takes each event id once (a repeat is answered 200 and dropped)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.taken: dict[str, dict] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                if len(receiver.requests) <= receiver.failures:
                    self.send_response(500)
                else:
                    event = json.loads(body)
                    receiver.taken.setdefault(event["event_id"], event)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/imaging"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(failures=2)
    yield r
    r.close()


def _store_form_waiting_for_a_name(store) -> None:
    """A captured scan of one application form whose number is proven and whose applicant's name waits
    for key-entry."""
    image = encode_png(np.full((60, 300), 255, np.uint8))
    fields = {}
    for name, kind, status, value in (
        ("application_no", "code", "accepted", POLICY),
        ("applicant_name", "name", "key_entry", None),
    ):
        store.put(f"documents/{FORM}/fields/{name}.png", image, "image/png")
        fields[name] = FieldRecord(
            box=[0, 0, 300, 60], quad=[], page=1, image=f"documents/{FORM}/fields/{name}.png", kind=kind,
            value=value, status=status, confidence=50,
        )  # fmt: skip
    record = DocumentRecord(
        doc_id=FORM, scan_id=SCAN, type="application_form", template="application_form/1", source_pages=[1],
        pages=[], status="ok", fields=fields, captured_at=utcnow(), stage="new_business",
        keys={"policy": [POLICY]},
    )  # fmt: skip
    store.put(record.key, record.to_json(), "application/json")
    scan = Scan(
        scan_id=SCAN, mode=ScanMode.batch, uploaded_by="test",
        files=[ScanFile(sha256="0" * 64, content_type="image/png", size=1)], uploaded_at=utcnow(),
        status=ScanStatus.captured, documents=[FORM],
    )  # fmt: skip
    store.put(scan.key, scan.to_json(), "application/json")


def test_a_completed_document_reaches_a_failing_receiver_once_signed_after_retries_and_can_be_replayed(
    settings: Settings, redis_conn, receiver: Receiver, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={
            "webhooks": f"document.completed={receiver.url}",
            "webhook_secret": SecretStr(SECRET),
            "webhook_retry_intervals": "1,1,1,1",
            "webhook_timeout": 5.0,
        }
    )
    store = open_store(settings)
    _store_form_waiting_for_a_name(store)
    keyentry.add_tasks(redis_conn, load(store, DocumentRecord, FORM), immediate=False)
    client = TestClient(create_app(settings))
    task = client.get("/v1/keyentry/next", headers={"X-API-Key": KEYER_KEY}).json()["task"]
    answer = client.post(
        f"/v1/keyentry/{task['task_id']}", json={"value": "张三丰"}, headers={"X-API-Key": KEYER_KEY}
    )
    assert answer.json()["status"] == "keyed"
    event_id = f"document.completed-{FORM}"
    events.queue_announce(redis_conn, settings, SCAN)  # announced again (the review, a rerun): one event

    with running_workers(settings, 1, tmp_path / "logs"):
        wait_until(lambda: receiver.taken, 60, "the receiver to take the event")
        record = wait_until(
            lambda: (e := load(store, events.Event, event_id)).deliveries[0].state == "delivered" and e,
            10,
            "the delivery to be recorded",
        )
        assert [a.status for a in record.deliveries[0].attempts] == [500, 500, 200]
        assert len(receiver.requests) == 3

        operator = {"X-API-Key": ADMIN_KEY}
        listed = client.get("/v1/events", headers=operator).json()
        assert [e["event_id"] for e in listed] == [event_id]
        assert client.get("/v1/events?state=failed", headers=operator).json() == []
        replayed = client.post(f"/v1/events/{event_id}/replay", headers=operator)
        assert replayed.status_code == 200 and replayed.json()["deliveries"][0]["replays"] == 1
        wait_until(lambda: len(receiver.requests) == 4, 30, "the replay to arrive")
        assert (
            client.post("/v1/events/document.completed-nothing/replay", headers=operator).status_code == 404
        )
        assert client.get("/v1/events", headers={"X-API-Key": SCANNER_KEY}).status_code == 403

    assert events.scan_settled(redis_conn, store, settings, SCAN) == [], "settled again: nothing new"
    ids = {headers["X-Imaging-Event-Id"] for headers, _ in receiver.requests}
    assert ids == {event_id} and list(receiver.taken) == [event_id], "four deliveries, one event taken"
    for headers, body in receiver.requests:  # each checked as a receiver would, with its own HMAC
        stamp = headers["X-Imaging-Timestamp"]
        mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert headers["X-Imaging-Signature"] == f"sha256={mac}"
        assert headers["X-Imaging-Event"] == "document.completed"
    event = receiver.taken[event_id]
    assert event["event"] == "document.completed" and event["subject"] == FORM
    assert event["data"]["values"] == {"application_no": POLICY, "applicant_name": "张三丰"}
    assert event["data"]["complete"] and event["data"]["numbers"] == {"policy": [POLICY]}

    # The core system pulls the same values; a role that may not gets 403, a stage it does not see 404.
    pulled = client.get(f"/v1/documents/{FORM}/values", headers={"X-API-Key": UNDERWRITER_KEY})
    assert pulled.status_code == 200 and pulled.json() == event["data"]
    assert client.get(f"/v1/documents/{FORM}/values", headers={"X-API-Key": SCANNER_KEY}).status_code == 403
    assert client.get(f"/v1/documents/{FORM}/values", headers={"X-API-Key": CLAIMS_KEY}).status_code == 404


def test_an_event_whose_receiver_never_answers_ends_failed_for_the_operator(
    settings: Settings, redis_conn
) -> None:
    """Delivered in this process (the job's function): each attempt recorded, the last one `failed`."""
    url = f"http://127.0.0.1:{free_port()}/nobody"
    settings = settings.model_copy(
        update={"webhooks": f"*={url}", "webhook_secret": SecretStr(SECRET), "webhook_timeout": 2.0}
    )
    store = open_store(settings)
    event, new = events.emit(
        redis_conn, store, settings, EventKind.epolicy_acknowledged, "P2026-1-v1", {"v": 1}
    )
    assert new and event.deliveries[0].url == url
    assert (
        events.emit(redis_conn, store, settings, EventKind.epolicy_acknowledged, "P2026-1-v1", {"v": 2})[1]
        is False
    )
    with pytest.raises(events.WebhookUnavailable, match="no answer"):
        events.deliver(redis_conn, store, settings, event.event_id, 0)
    with pytest.raises(events.WebhookUnavailable):
        events.deliver(redis_conn, store, settings, event.event_id, 0, last=True)
    stored = load(store, events.Event, event.event_id)
    assert stored.deliveries[0].state == "failed" and len(stored.deliveries[0].attempts) == 2
    assert stored.data == {"v": 1}, "the first emission's data; a repeat changes nothing"
    assert [e.event_id for e in events.recent(redis_conn, store, state="failed")] == [event.event_id]


def test_a_redis_loss_puts_back_the_events_list_and_the_deliveries_not_done(
    settings: Settings, redis_conn
) -> None:
    from rq.job import Job

    from rebuild import rebuild

    settings = settings.model_copy(
        update={"webhooks": "*=http://127.0.0.1:9/x", "webhook_secret": SecretStr(SECRET)}
    )
    store = open_store(settings)
    event, _ = events.emit(redis_conn, store, settings, EventKind.document_completed, FORM, {"v": 1})
    redis_conn.flushdb()
    report = rebuild(redis_conn, settings, store)
    assert report.webhooks == [f"{event.event_id}/0"]
    assert Job.exists(events.job_id_for(event.event_id, 0, 0), connection=redis_conn)
    assert [e.event_id for e in events.recent(redis_conn, store)] == [event.event_id]
    assert rebuild(redis_conn, settings, store).webhooks == [], "a second run adds nothing"
