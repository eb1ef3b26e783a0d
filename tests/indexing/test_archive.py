"""The customer archive (客户档案) on the real S3 server and Redis: facts with their sources, disagreements
between documents, the current card and signature over superseded ones, roles, who may read it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api import create_app
from indexing import archive
from models import DocumentRecord, document_key
from settings import Settings
from storage import open_store
from tests.conftest import ADMIN_KEY, SERVICING_KEY, UNDERWRITER_KEY
from tests.indexing.conftest import APPLICANT, INSURED, POLICY, put_document


def _file(store, record: DocumentRecord) -> None:
    store.put(document_key(record.doc_id), record.to_json())
    archive.file(store, record)


def put_archive_case(store) -> dict[str, DocumentRecord]:
    """File two forms of the applicant (two addresses), an old card and a renewed one (another name)."""
    people = {"policy": [POLICY], "customer": [APPLICANT, INSURED]}
    form = {
        "applicant_id_number": APPLICANT,
        "applicant_name": "张三丰",
        "applicant_address": "北京市朝阳区建国路88号",
        "applicant_phone": "13812345678",
        "insured_id_number": INSURED,
        "insured_name": "李四",
    }
    first = put_document(
        store, 1, "application_form", "new_business", people, form, regions=("applicant_signature",)
    )
    later = {**form, "applicant_address": "上海市徐汇区漕溪北路100号"}
    second = put_document(
        store,
        2,
        "application_form",
        "new_business",
        people,
        later,
        stamp="20261201090000",
        regions=("applicant_signature",),
    )
    card = {"customer": [APPLICANT]}
    old_front = put_document(
        store,
        3,
        "idcard_front",
        "new_business",
        card,
        {"id_number": APPLICANT, "name": "张三丰"},
        person=APPLICANT,
    )
    old_back = put_document(
        store, 4, "idcard_back", "new_business", card, {"valid_to": "2025-03-15"}, person=APPLICANT
    )
    front = put_document(
        store,
        5,
        "idcard_front",
        "new_business",
        card,
        {"id_number": APPLICANT, "name": "张三峰"},
        stamp="20261202090000",
        person=APPLICANT,
    )
    back = put_document(
        store,
        6,
        "idcard_back",
        "new_business",
        card,
        {"valid_to": "2045-03-15"},
        stamp="20261202090000",
        person=APPLICANT,
    )
    old_front = old_front.model_copy(update={"superseded_by": front.doc_id})
    old_back = old_back.model_copy(update={"superseded_by": back.doc_id})
    for record in (first, second, old_front, old_back, front, back):
        _file(store, record)
    _file(store, second)  # filing twice changes nothing
    return {
        "first": first,
        "second": second,
        "old_front": old_front,
        "old_back": old_back,
        "front": front,
        "back": back,
    }


def test_the_archive_lists_disagreements_with_sources_and_the_current_card_on_top(settings: Settings) -> None:
    store = open_store(settings)
    client = TestClient(create_app(settings))
    docs = put_archive_case(store)
    first, second, front, back = docs["first"], docs["second"], docs["front"], docs["back"]
    old_front, old_back = docs["old_front"], docs["old_back"]
    response = client.get(f"/v1/customers/{APPLICANT}", headers={"X-API-Key": UNDERWRITER_KEY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["card"]["front"]["doc_id"], body["card"]["back"]["doc_id"]) == (front.doc_id, back.doc_id)
    assert body["card"]["valid"] is True and body["card"]["valid_to"] == "2045-03-15"
    assert [c["doc_id"] for c in body["superseded_cards"]] == [old_back.doc_id, old_front.doc_id]
    assert body["signature"]["doc_id"] == second.doc_id
    assert [s["doc_id"] for s in body["superseded_signatures"]] == [first.doc_id]
    conflicts = {d["field"]: d["values"] for d in body["disagreements"]}
    assert set(conflicts) == {"name", "address"}
    assert [s["doc_id"] for s in conflicts["name"]["张三峰"]] == [front.doc_id]
    assert {s["source"] for s in conflicts["name"]["张三丰"]} == {
        "application_form.applicant_name",
        "idcard_front.name",
    }
    assert [s["doc_id"] for s in conflicts["address"]["上海市徐汇区漕溪北路100号"]] == [second.doc_id]
    assert {"kind": "policy", "number": POLICY, "role": "holder", "doc_id": first.doc_id} in body["roles"]
    assert body["documents"] == 6 and [f["value"] for f in body["facts"]["phone"]] == ["13812345678"] * 2

    insured = client.get(f"/v1/customers/{INSURED}", headers={"X-API-Key": ADMIN_KEY}).json()
    assert {r["role"] for r in insured["roles"]} == {"insured"} and insured["disagreements"] == []
    assert insured["card"]["front"] is None

    # Servicing reads it once the customer is on one of its policies; every read is in the access log.
    assert client.get(f"/v1/customers/{APPLICANT}", headers={"X-API-Key": SERVICING_KEY}).status_code == 404
    link = {
        "kind": "policy",
        "number": POLICY,
        "customer_id": APPLICANT,
        "reason": "called, identity checked",
    }
    assert client.post("/v1/links", json=link, headers={"X-API-Key": SERVICING_KEY}).status_code == 201
    assert client.get(f"/v1/customers/{APPLICANT}", headers={"X-API-Key": SERVICING_KEY}).status_code == 200
    log = client.get("/v1/access", headers={"X-API-Key": ADMIN_KEY}).json()
    assert [(e["role"], e["part"]) for e in log[:2]] == [
        ("servicing", "customer archive"),
        ("admin", "customer archive"),
    ]
    unknown = client.get("/v1/customers/11010519491231002X", headers={"X-API-Key": ADMIN_KEY})
    assert unknown.status_code == 404


def test_an_issued_epolicy_puts_its_holder_insured_and_beneficiaries_in_their_archives(
    settings: Settings,
) -> None:
    store = open_store(settings)
    client = TestClient(create_app(settings))
    put_archive_case(store)
    beneficiary = "110105199001010010"
    epolicy = "d20261203090000abcdefabcdef001"
    parties = [
        (APPLICANT, "holder", {"name": "张三丰", "phone": "13900000000"}),
        (INSURED, "insured", {"name": "李四"}),
        (beneficiary, "beneficiary", {"name": "王五"}),
    ]
    archive.file_parties(store, epolicy, "policy", POLICY, parties)
    archive.file_parties(store, epolicy, "policy", POLICY, parties)  # the job run again: nothing twice
    body = client.get(f"/v1/customers/{APPLICANT}", headers={"X-API-Key": ADMIN_KEY}).json()
    assert {"kind": "policy", "number": POLICY, "role": "holder", "doc_id": epolicy} in body["roles"]
    phones = {d["field"]: d["values"] for d in body["disagreements"]}["phone"]
    assert [s["source"] for s in phones["13900000000"]] == ["epolicy.holder.phone"]
    heir = client.get(f"/v1/customers/{beneficiary}", headers={"X-API-Key": ADMIN_KEY}).json()
    assert heir["roles"] == [{"kind": "policy", "number": POLICY, "role": "beneficiary", "doc_id": epolicy}]
    assert heir["documents"] == 1 and heir["facts"]["name"][0]["value"] == "王五"
