"""The retrieval API on a real S3 server and Redis: lookups, images with ETags, who sees what, access log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
from fastapi.testclient import TestClient

from api import create_app
from models import DocumentRecord, Scan, ScanFile, load
from people import audit
from people.identity import key_id
from settings import Settings
from storage import open_store
from tests.conftest import ADMIN_KEY, CLAIMS_KEY, KEYER_KEY, SCANNER_KEY, SERVICING_KEY, UNDERWRITER_KEY
from tests.indexing.conftest import APPLICANT, CLAIM, INSURED, OTHER, POLICY, doc_id


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def _get(client: TestClient, key: str, url: str, **headers: str):
    return client.get(url, headers={"X-API-Key": key, **headers})


def _link(client: TestClient, key: str, kind: str, number: str, customer: str) -> None:
    body = {
        "kind": kind,
        "number": number,
        "customer_id": customer,
        "reason": "on the phone, identity checked",
    }
    response = client.post("/v1/links", json=body, headers={"X-API-Key": key})
    assert response.status_code == 201, response.text


def _found(client: TestClient, key: str, query: str) -> list[str]:
    response = _get(client, key, f"/v1/documents?{query}")
    assert response.status_code == 200, response.text
    return [d["doc_id"] for d in response.json()["documents"]]


def test_each_role_finds_the_documents_of_its_stage_under_a_policy(client, case) -> None:
    everything = [case["request"], case["back"], case["front"], case["form"]]
    assert _found(client, ADMIN_KEY, f"policy_no={POLICY}") == everything
    assert _found(client, UNDERWRITER_KEY, f"policy_no={POLICY}") == [
        case["back"],
        case["front"],
        case["form"],
    ]
    # Servicing sees its request; the ID card only once the customer is on the policy by evidence or a
    # servicing link (an application number on the card is no such evidence); never the application form.
    assert _found(client, SERVICING_KEY, f"policy_no={POLICY}") == [case["request"]]
    _link(client, SERVICING_KEY, "policy", POLICY, APPLICANT)
    assert _found(client, SERVICING_KEY, f"policy_no={POLICY}") == [
        case["request"],
        case["back"],
        case["front"],
    ]
    assert _found(client, CLAIMS_KEY, f"policy_no={POLICY}") == []
    assert _found(client, CLAIMS_KEY, f"claim_no={CLAIM}") == [case["claim"]]
    for key in (SCANNER_KEY, KEYER_KEY):
        assert _get(client, key, f"/v1/documents?policy_no={POLICY}").status_code == 403


def test_a_lookup_names_the_customers_and_filters_and_pages(client, case) -> None:
    body = _get(client, ADMIN_KEY, f"/v1/documents?policy_no={POLICY.lower()}").json()
    assert (body["kind"], body["number"], body["total"]) == ("policy", POLICY, 4)
    assert body["customers"] == sorted([APPLICANT, INSURED])
    first = body["documents"][-1]
    assert first["page_urls"] == [f"/v1/documents/{case['form']}/pages/1"]
    assert _found(client, ADMIN_KEY, f"policy_no={POLICY}&type=idcard_front") == [case["front"]]
    assert _found(client, ADMIN_KEY, f"policy_no={POLICY}&stage=servicing") == [case["request"]]
    assert _found(client, ADMIN_KEY, f"policy_no={POLICY}&since=2026-12-01") == [case["request"]]
    assert _found(client, ADMIN_KEY, f"policy_no={POLICY}&until=2026-11-30") == [
        case["back"],
        case["front"],
        case["form"],
    ]
    seen, cursor = [], ""
    while True:
        page = _get(client, ADMIN_KEY, f"/v1/documents?policy_no={POLICY}&limit=3{cursor}").json()
        seen += [d["doc_id"] for d in page["documents"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == [case["request"], case["back"], case["front"], case["form"]]


def test_bad_numbers_are_refused_before_they_reach_a_key(client, case) -> None:
    for query in (
        "policy_no=../../scans",
        "policy_no=TB%2F1",
        f"customer_id={APPLICANT[:-1]}2",
        "",
        f"policy_no={POLICY}&claim_no={CLAIM}",
        f"policy_no={POLICY}&cursor=../x",
    ):
        response = _get(client, ADMIN_KEY, f"/v1/documents?{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.json()["error"] == "invalid_request"
    assert _get(client, ADMIN_KEY, "/v1/documents/..%2Fscans/pages/1").status_code in (404, 422)
    assert _get(client, ADMIN_KEY, f"/v1/customers/{APPLICANT[:-1]}2/idcard").status_code == 422


def test_images_carry_an_etag_and_every_read_is_logged(client, case) -> None:
    url = f"/v1/documents/{case['front']}/pages/1"
    first = _get(client, UNDERWRITER_KEY, url)
    assert first.status_code == 200 and first.content.startswith(b"\x89PNG")
    assert first.headers["content-type"] == "image/png"
    assert "private" in first.headers["cache-control"]
    again = _get(client, UNDERWRITER_KEY, url, **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    field = _get(client, UNDERWRITER_KEY, f"/v1/documents/{case['front']}/fields/id_number")
    assert field.status_code == 200
    assert _get(client, UNDERWRITER_KEY, f"/v1/documents/{case['front']}/pages/2").status_code == 404
    assert _get(client, UNDERWRITER_KEY, f"/v1/documents/{case['front']}/fields/photo").status_code == 404
    log = _get(client, ADMIN_KEY, f"/v1/access?doc_id={case['front']}").json()
    assert [(r["role"], r["part"]) for r in log] == [
        ("underwriter", "id_number"),
        ("underwriter", "page 1"),
        ("underwriter", "page 1"),
    ]
    assert all(r["who"].startswith("k") and r["doc_id"] == case["front"] for r in log)
    assert _get(client, UNDERWRITER_KEY, "/v1/access").status_code == 403


def test_a_document_a_role_may_not_see_is_absent_to_it(client, case) -> None:
    form = case["form"]
    for url in (f"/v1/documents/{form}", f"/v1/documents/{form}/pages/1", f"/v1/documents/{form}/thumbnail"):
        assert _get(client, SERVICING_KEY, url).status_code == 404
        assert _get(client, UNDERWRITER_KEY, url).status_code == 200
    assert _get(client, UNDERWRITER_KEY, f"/v1/documents/{case['request']}").status_code == 404
    assert _get(client, SERVICING_KEY, f"/v1/documents/{case['request']}").status_code == 200
    log = _get(client, ADMIN_KEY, f"/v1/access?doc_id={form}").json()
    assert {r["role"] for r in log} == {"underwriter"}  # refused reads serve and log nothing


def test_servicing_and_claims_see_the_id_card_and_signature_of_their_customers_only(client, case) -> None:
    _link(client, SERVICING_KEY, "policy", POLICY, APPLICANT)
    card = _get(client, SERVICING_KEY, f"/v1/customers/{APPLICANT}/idcard")
    assert card.status_code == 200, card.text
    body = card.json()
    assert (body["front"]["doc_id"], body["back"]["doc_id"]) == (case["front"], case["back"])
    assert (body["valid_to"], body["valid"]) == ("2035-03-15", True)
    signature = _get(client, SERVICING_KEY, f"/v1/customers/{APPLICANT}/signature").json()
    assert signature["image_url"] == f"/v1/documents/{case['form']}/fields/applicant_signature"
    assert _get(client, SERVICING_KEY, signature["image_url"]).status_code == 200
    # ... but not the rest of the application form.
    assert (
        _get(client, SERVICING_KEY, f"/v1/documents/{case['form']}/fields/applicant_id_number").status_code
        == 404
    )
    # A customer on no policy: nothing for servicing; a customer on no claim: nothing for claims.
    assert _get(client, SERVICING_KEY, f"/v1/customers/{OTHER}/idcard").status_code == 404
    assert _get(client, ADMIN_KEY, f"/v1/customers/{OTHER}/idcard").status_code == 200
    assert _get(client, CLAIMS_KEY, f"/v1/customers/{APPLICANT}/idcard").status_code == 404
    assert _get(client, CLAIMS_KEY, f"/v1/customers/{INSURED}/signature").status_code == 404
    assert _get(client, SCANNER_KEY, f"/v1/customers/{APPLICANT}/idcard").status_code == 403


def test_document_metadata_lists_fields_keys_and_regions(client, case) -> None:
    body = _get(client, ADMIN_KEY, f"/v1/documents/{case['form']}").json()
    assert body["keys"] == {"policy": [POLICY], "customer": [APPLICANT, INSURED]}
    assert body["fields"]["applicant_id_number"]["value"] == APPLICANT
    assert body["regions"] == {
        "applicant_signature": f"/v1/documents/{case['form']}/fields/applicant_signature"
    }
    assert body["uploaded_at"].startswith("2026-11-23T10:15:00")
    assert _get(client, ADMIN_KEY, f"/v1/documents/{doc_id(99)}").status_code == 404


def test_identity_follows_evidence_and_staff_links_not_upload_tags(client, settings, case) -> None:
    from storage import open_store
    from tests.indexing.conftest import put_document

    store = open_store(settings)
    signature = f"/v1/documents/{case['form']}/fields/applicant_signature"
    # A person listed beside the applicant (the insured) is put on a claim: the applicant's signature on
    # the form they share stays closed to claims.
    _link(client, CLAIMS_KEY, "claim", CLAIM, INSURED)
    assert _get(client, CLAIMS_KEY, signature).status_code == 404
    # An upload tagged with the claim and a stranger's ID number is a claims document filed under both,
    # but it opens the stranger's card to nobody in claims until claims staff link the stranger.
    tagged = put_document(
        store, 7, "idcard_front", "claims", {"claim": [CLAIM], "customer": [OTHER]}, {"id_number": OTHER}
    )
    assert tagged.doc_id not in _found(client, CLAIMS_KEY, f"claim_no={CLAIM}")
    assert _get(client, CLAIMS_KEY, f"/v1/customers/{OTHER}/idcard").status_code == 404
    # Servicing may not link to claims, nor claims to policies.
    wrong = {"kind": "claim", "number": CLAIM, "customer_id": OTHER, "reason": "not mine"}
    assert client.post("/v1/links", json=wrong, headers={"X-API-Key": SERVICING_KEY}).status_code == 403
    _link(client, CLAIMS_KEY, "claim", CLAIM, OTHER)
    assert tagged.doc_id in _found(client, CLAIMS_KEY, f"claim_no={CLAIM}")
    assert _get(client, CLAIMS_KEY, f"/v1/customers/{OTHER}/idcard").status_code == 200
    links = _get(client, ADMIN_KEY, f"/v1/customers/{OTHER}/links").json()
    assert [(x["kind"], x["number"], x["role"]) for x in links] == [("claim", CLAIM, "claims")]


def test_each_document_says_where_it_stands_and_its_names_and_numbers(client, settings, case) -> None:
    store = open_store(settings)
    front = load(store, DocumentRecord, case["front"])
    front.fields["id_number"].kind = "id_number"
    front.fields["name"] = front.fields["id_number"].model_copy(update={"kind": "name", "value": "张三丰"})
    front = front.model_copy(update={"person": APPLICANT, "superseded_by": doc_id(9)})
    store.put(front.key, front.to_json(), "application/json")
    form = load(store, DocumentRecord, case["form"])
    form.fields["applicant_name"] = form.fields["applicant_id_number"].model_copy(
        update={"kind": "name", "value": None, "status": "key_entry"}
    )
    form = form.model_copy(update={"complete": False, "application_no": POLICY})
    store.put(form.key, form.to_json(), "application/json")
    found = {
        d["doc_id"]: d
        for d in _get(client, ADMIN_KEY, f"/v1/documents?policy_no={POLICY}").json()["documents"]
    }
    assert found[case["front"]]["state"] == "superseded"
    assert found[case["front"]]["values"] == {"id_number": "110105********0013", "name": "张三丰"}
    assert found[case["front"]]["holder"] == store.private_name(APPLICANT)[:16]
    assert found[case["back"]]["holder"] == found[case["front"]]["holder"]  # one person's card, one holder
    assert (found[case["form"]]["state"], found[case["form"]]["values"]) == (
        "key_entry",
        {"application_no": POLICY},
    )
    assert found[case["request"]]["state"] == "complete" and found[case["request"]]["holder"] is None


def test_the_original_upload_is_downloaded_by_roles_allowed_who_may_see_all_of_it(
    client, settings, case
) -> None:
    store = open_store(settings)
    pdf = b"%PDF-1.7 the scanner's file"
    sha = store.put_original(pdf, "application/pdf")
    scan = Scan(
        scan_id="s" + case["form"][1:27],
        mode="batch",
        files=[ScanFile(sha256=sha, content_type="application/pdf", size=len(pdf), name="投保单 1.pdf")],
        uploaded_by="scanner-1",
        uploaded_at=datetime(2026, 11, 23, 10, 15, tzinfo=UTC),
        documents=[case["form"], case["front"], case["back"]],
    )
    store.put(scan.key, scan.to_json(), "application/json")
    meta = _get(client, UNDERWRITER_KEY, f"/v1/documents/{case['form']}").json()
    assert meta["originals"] == [
        {
            "name": "投保单 1.pdf",
            "content_type": "application/pdf",
            "size": len(pdf),
            "url": meta["url"] + "/original?file=1",
        }
    ]
    got = _get(client, UNDERWRITER_KEY, meta["originals"][0]["url"], **{"X-Reason": POLICY})
    assert got.status_code == 200 and got.content == pdf
    assert (
        got.headers["content-disposition"]
        == "attachment; filename*=UTF-8''%E6%8A%95%E4%BF%9D%E5%8D%95%201.pdf"
    )
    assert _get(client, UNDERWRITER_KEY, meta["url"] + "/original?file=2").status_code == 404
    assert (
        _get(client, SERVICING_KEY, meta["url"] + "/original").status_code == 403
    )  # not servicing's to take
    # An upload holding a document the caller may not see is not theirs to download whole.
    store.put(
        scan.key,
        scan.model_copy(update={"documents": [*scan.documents, case["request"]]}).to_json(),
        "application/json",
    )
    refused = _get(client, UNDERWRITER_KEY, meta["url"] + "/original")
    assert refused.status_code == 403 and "1 document(s) you may not see" in refused.json()["detail"]
    events = audit.query(redis.Redis.from_url(settings.redis_url), store, person=key_id(UNDERWRITER_KEY))
    downloads = [(e.action, e.object, e.reason) for e in events if e.action == "download"]
    assert downloads == [("download", f"{case['form']} original 1", POLICY)]
