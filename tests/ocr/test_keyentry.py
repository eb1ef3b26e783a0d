"""Key-entry through the API, on the real Redis and S3 servers: leases, validation, blind double entry,
arbitration, and the document record that results."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

import keyentry
from api import create_app
from models import DocumentRecord, load
from settings import Settings
from storage import open_store
from tests.conftest import ADMIN_KEY, KEYER2_KEY, KEYER3_KEY, KEYER_KEY, SCANNER_KEY
from tests.ocr.conftest import DOC


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _next(client: TestClient, key: str) -> dict:
    response = client.get("/v1/keyentry/next", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    return response.json()


def _key(client: TestClient, key: str, task_id: str, value: str):
    return client.post(f"/v1/keyentry/{task_id}", json={"value": value}, headers={"X-API-Key": key})


def test_fields_are_keyed_single_and_blind_double_until_the_document_is_complete(
    client: TestClient, document: DocumentRecord, settings: Settings
) -> None:
    first = _next(client, KEYER_KEY)
    assert first["waiting"] == 2
    tasks = {first["task"]["field"]: first["task"]}
    second = _next(client, KEYER2_KEY)  # a lease is exclusive: the other keyer gets the other field
    tasks[second["task"]["field"]] = second["task"]
    assert set(tasks) == {"applicant_name", "applicant_id_number"}
    name, number = tasks["applicant_name"], tasks["applicant_id_number"]
    assert name["round"] == "single" and name["suggestion"] == "张三半" and name["label"] == "投保人姓名"
    assert number["round"] == "blind" and number["suggestion"] is None  # blind: OCR's reading withheld
    holder = {first["task"]["field"]: KEYER_KEY, second["task"]["field"]: KEYER2_KEY}
    image = client.get(name["image_url"], headers={"X-API-Key": holder["applicant_name"]})
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    # A value that fails its kind's validation is refused with the reason; the lease stays.
    bad = _key(client, holder["applicant_id_number"], number["task_id"], "110105198703150018")
    assert bad.status_code == 422 and "校验码不符" in bad.json()["detail"]
    ok = _key(client, holder["applicant_name"], name["task_id"], "张三丰")
    assert ok.json() == {"task_id": name["task_id"], "status": "keyed", "value": "张三丰", "detail": None}
    first_blind = _key(client, holder["applicant_id_number"], number["task_id"], "110105198703150013")
    assert first_blind.json()["status"] == "waiting"

    # The second blind keyer must be someone else: the first keyer is offered nothing.
    assert _next(client, holder["applicant_id_number"])["task"] is None
    other = KEYER_KEY if holder["applicant_id_number"] == KEYER2_KEY else KEYER2_KEY
    again = _next(client, other)["task"]
    assert again["task_id"] == number["task_id"] and again["suggestion"] is None
    done = _key(client, other, number["task_id"], "110105 19870315 0013")
    assert done.json()["status"] == "keyed" and done.json()["value"] == "110105198703150013"

    record = load(open_store(settings), DocumentRecord, DOC)
    assert record.complete
    field = record.fields["applicant_id_number"]
    assert field.status == "keyed" and field.value == "110105198703150013"
    assert [e.round for e in field.entries] == ["blind", "blind"]
    assert len({e.keyer for e in field.entries}) == 2
    assert {e.ocr for e in field.entries} == {"110105198703150018"}  # what OCR had said, kept
    assert record.fields["applicant_phone"].status == "accepted"
    assert _next(client, KEYER3_KEY) == {"task": None, "waiting": 0, "yours": 0, "others": 0}
    # The task is done: keying it again is a conflict, not a second value.
    assert _key(client, other, number["task_id"], "110105198703150013").status_code == 409


def test_two_blind_keyers_who_differ_are_settled_by_a_third(
    client: TestClient, document: DocumentRecord, settings: Settings, redis_conn
) -> None:
    task_id = keyentry.task_id_for(DOC, "applicant_id_number")
    redis_conn.zrem(keyentry.POOL, keyentry.task_id_for(DOC, "applicant_name"))  # only this field
    assert _next(client, KEYER_KEY)["task"]["task_id"] == task_id
    assert _key(client, KEYER_KEY, task_id, "110105198703150013").json()["status"] == "waiting"
    assert _next(client, KEYER2_KEY)["task"]["task_id"] == task_id
    differ = _key(client, KEYER2_KEY, task_id, "110105198703150021")
    assert differ.json()["status"] == "waiting" and "arbiter" in differ.json()["detail"]
    assert _next(client, KEYER_KEY)["task"] is None and _next(client, KEYER2_KEY)["task"] is None
    arbiter = _next(client, KEYER3_KEY)["task"]
    assert arbiter["round"] == "arbitration"
    assert arbiter["values"] == ["110105198703150013", "110105198703150021"]
    assert _key(client, KEYER3_KEY, task_id, "110105198703150013").json()["status"] == "keyed"
    field = load(open_store(settings), DocumentRecord, DOC).fields["applicant_id_number"]
    assert field.value == "110105198703150013"
    assert [e.round for e in field.entries] == ["blind", "blind", "arbitration"]


def test_an_abandoned_lease_returns_to_the_pool_and_the_late_keyer_is_refused(
    client: TestClient, document: DocumentRecord, redis_conn
) -> None:
    redis_conn.zrem(keyentry.POOL, keyentry.task_id_for(DOC, "applicant_id_number"))
    task = keyentry.lease(redis_conn, "walked-away", seconds=1)
    assert task is not None and _next(client, KEYER_KEY)["task"] is None
    time.sleep(1.2)
    retaken = _next(client, KEYER_KEY)["task"]
    assert retaken["task_id"] == task.task_id
    late = client.post(
        f"/v1/keyentry/{task.task_id}", json={"value": "张三丰"}, headers={"X-API-Key": KEYER2_KEY}
    )
    assert late.status_code == 409 and late.json()["error"] == "lease_lost"
    # The image of a field is shown only to the keyer who holds it.
    assert client.get(retaken["image_url"], headers={"X-API-Key": KEYER2_KEY}).status_code == 409


def test_a_keyer_who_asks_again_gets_the_field_they_hold_with_a_fresh_lease(
    client: TestClient, document: DocumentRecord, redis_conn
) -> None:
    first = _next(client, KEYER_KEY)["task"]
    again = _next(client, KEYER_KEY)["task"]
    assert again["task_id"] == first["task_id"] and again["lease_seconds"] >= first["lease_seconds"] - 1
    assert redis_conn.zcard(keyentry.LEASES) == 1, "one lease for one keyer"
    other = _next(client, KEYER2_KEY)["task"]  # the other field is still there for someone else
    assert other["task_id"] != first["task_id"]
    assert _next(client, KEYER3_KEY)["task"] is None

    # Keyed, the field is no longer theirs: the next ask looks in the pool, where nothing is left for them.
    value = {"applicant_name": "张三丰", "applicant_id_number": "110105198703150013"}[first["field"]]
    assert _key(client, KEYER_KEY, first["task_id"], value).status_code == 200
    assert _next(client, KEYER_KEY)["task"] is None


def test_a_held_lease_asked_for_again_is_renewed_and_not_returned_to_the_pool(
    document: DocumentRecord, redis_conn
) -> None:
    task = keyentry.lease(redis_conn, "at-the-page", seconds=1)
    assert keyentry.lease(redis_conn, "at-the-page", seconds=120).task_id == task.task_id
    time.sleep(1.2)  # past the first lease: the renewal keeps it
    assert keyentry.held(redis_conn, task.task_id, "at-the-page").task_id == task.task_id
    other = keyentry.lease(redis_conn, "someone-else")
    assert other is not None and other.task_id != task.task_id
    assert keyentry.lease(redis_conn, "a-third") is None


def test_a_keyer_asking_many_times_at_once_holds_one_task(document: DocumentRecord, redis_srv) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from redis import Redis

    def ask(_: int) -> str | None:
        with Redis.from_url(redis_srv.url) as conn:  # a connection each, as API workers have
            task = keyentry.lease(conn, "impatient")
        return task.task_id if task else None

    with ThreadPoolExecutor(8) as pool:
        got = set(pool.map(ask, range(16)))
    with Redis.from_url(redis_srv.url) as conn:
        assert len(got) == 1 and None not in got, got
        assert conn.zcard(keyentry.LEASES) == 1 and conn.zcard(keyentry.POOL) == 1


def test_key_entry_needs_the_keyer_role(client: TestClient, document: DocumentRecord) -> None:
    assert client.get("/v1/keyentry/next", headers={"X-API-Key": SCANNER_KEY}).status_code == 403
    assert client.get("/v1/keyentry/next").status_code == 401
    # An admin keys nothing (separation of duties, tests/people/test_duties.py).
    assert client.get("/v1/keyentry/next", headers={"X-API-Key": ADMIN_KEY}).status_code == 403
    bad_id = client.post("/v1/keyentry/..%2Fetc", json={"value": "x"}, headers={"X-API-Key": KEYER_KEY})
    assert bad_id.status_code in (404, 422)
