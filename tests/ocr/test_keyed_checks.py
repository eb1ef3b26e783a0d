"""Keyed values are checked as machine values are, through the API on the real Redis and S3 servers: a
keyed 女 against a male ID number goes to a review, decided by a person with the authority and a reason;
blank and illegible are answers."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import keyentry
from api import create_app
from capture.decode import encode_png
from models import DocumentRecord, FieldRecord, document_key, load
from people import audit
from people.identity import key_id
from settings import Settings
from storage import open_store
from tests.conftest import ADMIN_KEY, KEYER2_KEY, KEYER_KEY, UNDERWRITER_KEY
from vocabulary import utcnow

MALE = "110105198703150013"  # sequence 001: odd, a man
CARD = "d20261123101500abcdefabcdef002"
FORM = "d20261123101500abcdefabcdef003"
SCAN = "s20261123101500abcdefabcdef"


def _put(store, redis_conn, doc_id: str, doc_type: str, fields: dict[str, tuple[str, str, str | None]]):
    """Store a document whose fields are (kind, status, value), and queue its key-entry tasks."""
    image = encode_png(np.full((60, 300), 255, np.uint8))

    def field(name: str, kind: str, status: str, value: str | None) -> FieldRecord:
        key = f"documents/{doc_id}/fields/{name}.png"
        store.put(key, image, "image/png")
        return FieldRecord(
            box=[0, 0, 300, 60],
            quad=[],
            page=1,
            image=key,
            kind=kind,
            value=value,
            status=status,
            confidence=50,
        )

    record = DocumentRecord(
        doc_id=doc_id,
        scan_id=SCAN,
        type=doc_type,
        template=f"{doc_type}/1",
        source_pages=[1],
        pages=[],
        status="ok",
        fields={name: field(name, *spec) for name, spec in fields.items()},
        captured_at=utcnow(),
    )
    store.put(document_key(doc_id), record.to_json(), "application/json")
    keyentry.add_tasks(redis_conn, record, immediate=False)


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def _next(client: TestClient, key: str) -> dict:
    task = client.get("/v1/keyentry/next", headers={"X-API-Key": key}).json()["task"]
    assert task is not None
    return task


def _key(client: TestClient, key: str, task_id: str, value: str = "", answer: str = "value"):
    body = {"value": value, "answer": answer}
    return client.post(f"/v1/keyentry/{task_id}", json=body, headers={"X-API-Key": key})


def _key_female_on_a_male_card(client: TestClient, store, redis_conn) -> None:
    """Store a card front whose ID number says male and whose sex waits for key-entry; key 女."""
    card = {"id_number": ("id_number", "accepted", MALE), "sex": ("sex", "key_entry", None)}
    _put(store, redis_conn, CARD, "idcard_front", card)
    task = _next(client, KEYER_KEY)
    assert task["field"] == "sex" and task["answers"] == ["value", "illegible"]
    keyed = _key(client, KEYER_KEY, task["task_id"], "女")
    assert keyed.status_code == 200 and keyed.json()["status"] == "conflict"


def test_a_keyed_sex_against_the_id_number_goes_to_a_review_that_decides_it(
    client: TestClient, settings: Settings, redis_conn
) -> None:
    store = open_store(settings)
    _key_female_on_a_male_card(client, store, redis_conn)
    record = load(store, DocumentRecord, CARD)
    assert record.fields["sex"].status == "conflict" and not record.complete
    assert record.fields["sex"].reasons == ["does not match the sex digit of id_number"]

    (review,) = client.get("/v1/reviews", headers={"X-API-Key": UNDERWRITER_KEY}).json()
    assert review["kind"] == "keyed_conflict" and review["doc_id"] == CARD
    assert review["problems"] == ["sex: does not match the sex digit of id_number"]
    assert review["fields"] == ["id_number", "sex"]
    decide = f"/v1/reviews/{review['review_id']}"
    accept = {"decision": "accept", "reason": "card checked at the counter: the register is wrong"}
    assert client.post(decide, json=accept, headers={"X-API-Key": KEYER_KEY}).status_code == 403
    no_reason = client.post(
        decide, json={"decision": "accept", "reason": "  "}, headers={"X-API-Key": ADMIN_KEY}
    )
    assert no_reason.status_code == 422
    assert load(store, DocumentRecord, CARD).complete is False, "nothing decided without a reason"

    decided = client.post(decide, json=accept, headers={"X-API-Key": UNDERWRITER_KEY})
    assert decided.status_code == 200, decided.text
    record = load(store, DocumentRecord, CARD)
    assert record.complete and record.fields["sex"].status == "keyed" and record.fields["sex"].value == "女"
    (accepted,) = record.accepted_conflicts
    assert accepted.reason == accept["reason"] and accepted.role == "underwriter"
    (audited,) = [e for e in audit.query(redis_conn, store, person=key_id(UNDERWRITER_KEY)) if e.reason]
    assert audited.action == "review_accept" and audited.reason == accept["reason"]
    assert CARD in audited.object and "sex digit" in audited.object
    assert client.get("/v1/reviews", headers={"X-API-Key": ADMIN_KEY}).json() == []


def test_a_rejected_conflict_goes_back_to_key_entry_and_a_right_value_completes(
    client: TestClient, settings: Settings, redis_conn
) -> None:
    store = open_store(settings)
    _key_female_on_a_male_card(client, store, redis_conn)
    (review,) = client.get("/v1/reviews", headers={"X-API-Key": ADMIN_KEY}).json()
    reject = {"decision": "reject", "reason": "the card shows 男: keyed wrong"}
    assert client.post(
        f"/v1/reviews/{review['review_id']}", json=reject, headers={"X-API-Key": ADMIN_KEY}
    ).is_success
    assert load(store, DocumentRecord, CARD).fields["sex"].status == "key_entry"

    again = _next(client, KEYER2_KEY)
    assert again["field"] == "sex" and "does not match the sex digit of id_number" in " ".join(
        again["reasons"]
    )
    assert _key(client, KEYER2_KEY, again["task_id"], "男").json()["status"] == "keyed"
    record = load(store, DocumentRecord, CARD)
    assert record.complete and record.fields["sex"].value == "男" and not record.accepted_conflicts


def test_blank_where_the_form_allows_it_and_illegible_anywhere_are_answers(
    client: TestClient, settings: Settings, redis_conn
) -> None:
    store = open_store(settings)
    form = {
        "applicant_id_number": ("id_number", "accepted", MALE),
        "beneficiary_name": ("name", "key_entry", None),
        "applicant_name": ("name", "key_entry", None),
    }
    _put(store, redis_conn, FORM, "application_form", form)
    tasks = {}
    for key in (KEYER_KEY, KEYER2_KEY):
        task = _next(client, key)
        tasks[task["field"]] = (key, task)
    (bkey, beneficiary), (akey, applicant) = tasks["beneficiary_name"], tasks["applicant_name"]
    assert beneficiary["answers"] == ["value", "blank", "illegible"]
    assert applicant["answers"] == ["value", "illegible"]

    refused = _key(client, akey, applicant["task_id"], answer="blank")
    assert refused.status_code == 422 and "does not let this field be empty" in refused.json()["detail"]
    invented = _key(client, bkey, beneficiary["task_id"], "法")
    assert invented.status_code == 422, "one character is no name"
    assert _key(client, bkey, beneficiary["task_id"], answer="blank").json()["status"] == "keyed"
    assert _key(client, akey, applicant["task_id"], answer="illegible").json()["status"] == "illegible"

    record = load(store, DocumentRecord, FORM)
    blank = record.fields["beneficiary_name"]
    assert (blank.status, blank.value, blank.entries[0].answer) == ("keyed", "", "blank")
    assert record.fields["applicant_name"].status == "illegible"
    assert not record.complete and record.status == "exception"
    assert any("illegible" in p and "scan the page again" in p for p in record.problems)
    view = client.get(f"/v1/documents/{FORM}", headers={"X-API-Key": ADMIN_KEY}).json()
    assert view["fields"]["beneficiary_name"]["status"] == "keyed" and view["complete"] is False
