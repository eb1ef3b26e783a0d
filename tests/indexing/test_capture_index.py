"""From upload to index with a real worker process: a case filed under its numbers, an ID card on file
linked to instead of stored again, and a keyed ID number that files the document under it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import keyentry
from api import create_app
from capture.render import render_form, render_idcard
from capture.templates import latest
from indexing.index import lookup
from models import DocumentRecord, Scan, document_key, load
from settings import Settings
from storage import open_store
from tests.capture.scans import place_cards
from tests.conftest import ADMIN_KEY, KEYER_KEY, ROOT, SCANNER_KEY, run_worker_burst
from tests.indexing.conftest import APPLICANT, INSURED, put_document

VALUES = json.loads((ROOT / "capture" / "sample_values.json").read_text())
POLICY = VALUES["application_no"]


def _jpeg(page: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(page).convert("RGB").save(out, format="JPEG", quality=90, dpi=(300, 300))
    return out.getvalue()


def _cards(seed: int) -> np.ndarray:
    front = render_idcard(latest("idcard_front"), VALUES, 300)
    back = render_idcard(latest("idcard_back"), VALUES, 300)
    page, _ = place_cards([front, back], np.random.default_rng(seed), dpi=300, noise=1.0)
    return page


def _upload(client: TestClient, data: bytes, **form: str) -> str:
    response = client.post(
        "/v1/scans",
        files=[("file", ("scan.jpg", data, "image/jpeg"))],
        data={"mode": "batch", **form},
        headers={"X-API-Key": SCANNER_KEY},
    )
    assert response.status_code == 202, response.text
    return response.json()["scan_id"]


def _invoice() -> np.ndarray:
    """An A4 page of no template: rows of text-like ink, as a hospital invoice sent for a claim."""
    page = np.full((3508, 2480), 255, np.uint8)
    rng = np.random.default_rng(3)
    for row in range(300, 3200, 90):
        x = 250
        while x < 2100:
            width = int(rng.integers(20, 60))
            page[row : row + 40, x : x + width] = 30
            x += width + int(rng.integers(15, 40))
    return page


@pytest.fixture(scope="module")
def cards_page() -> bytes:
    return _jpeg(_cards(1))


def test_a_case_is_filed_under_its_numbers_and_a_card_on_file_is_not_stored_again(
    settings: Settings, cards_page: bytes
) -> None:
    store = open_store(settings)
    client = TestClient(create_app(settings))
    form = render_form(latest("application_form"), VALUES, 300)
    first = _upload(client, _jpeg(form), claim_no="LP2026000001", stage="underwriting")
    cards = _upload(client, cards_page)
    assert _upload(client, cards_page) == cards, "the same bytes again answer with the first scan"
    again = _upload(client, cards_page, claim_no="LP2026000002")  # with a number: another upload
    moved = _upload(client, _jpeg(_cards(2)))  # the same card placed anew: other bytes, same card
    evidence = _upload(client, _jpeg(_invoice()), claim_no="LP2026000001")
    assert run_worker_burst(settings).returncode == 0

    def records(scan_id: str) -> list[DocumentRecord]:
        scan = load(store, Scan, scan_id)
        return [load(store, DocumentRecord, d) for d in scan.documents]

    (invoice,) = records(evidence)
    assert (invoice.type, invoice.stage) == ("claim_evidence", "claims")
    assert invoice.keys == {"claim": ["LP2026000001"]}
    (application,) = records(first)
    assert application.stage == "underwriting"
    assert application.keys == {
        "policy": [POLICY],
        "customer": sorted([APPLICANT, INSURED]),
        "claim": ["LP2026000001"],
    }
    assert [e.doc_id for e in lookup(store, "policy", POLICY)] == [application.doc_id]
    assert [e.doc_id for e in lookup(store, "claim", "LP2026000001")] == [invoice.doc_id, application.doc_id]

    front, back = records(cards)
    assert (front.type, back.type) == ("idcard_front", "idcard_back")
    assert front.keys == back.keys == {"customer": [APPLICANT]}, "the back takes its front's customer"
    assert front.on_file is None and back.on_file is None
    assert all(store.exists(p) for p in front.pages + back.pages)

    for scan_id in (again, moved):
        linked = records(scan_id)
        assert [(r.type, r.on_file) for r in linked] == [
            ("idcard_front", front.doc_id),
            ("idcard_back", back.doc_id),
        ]
        for record in linked:
            assert record.pages == (front if record.type == "idcard_front" else back).pages
            stored = [i.key for i in store.list(f"documents/{record.doc_id}/")]
            assert stored == [document_key(record.doc_id)], "a linked card stores only its record"
    view = client.get(f"/v1/scans/{again}", headers={"X-API-Key": SCANNER_KEY}).json()
    assert [d["on_file"] for d in view["documents"]] == [front.doc_id, back.doc_id], "the scan says so"
    customer = lookup(store, "customer", APPLICANT)
    assert {e.type for e in customer} == {"application_form", "idcard_front", "idcard_back"}

    body = client.get(f"/v1/customers/{APPLICANT}/idcard", headers={"X-API-Key": ADMIN_KEY}).json()
    assert (body["front"]["doc_id"], body["back"]["doc_id"], body["valid"]) == (
        front.doc_id,
        back.doc_id,
        True,
    )


def test_a_keyed_id_number_files_the_document_under_it(settings: Settings, redis_conn) -> None:
    store = open_store(settings)
    record = put_document(store, 7, "idcard_front", "new_business", {}, {"name": "张三丰"})
    field = record.fields["name"].model_copy()
    field.kind, field.status, field.value, field.suggestion = "id_number", "key_entry", None, APPLICANT[:-1]
    record.fields["id_number"] = field
    store.put(document_key(record.doc_id), record.to_json())
    keyentry.add_tasks(redis_conn, record, immediate=True)
    assert lookup(store, "customer", APPLICANT) == []

    client = TestClient(create_app(settings))
    task = client.get("/v1/keyentry/next", headers={"X-API-Key": KEYER_KEY}).json()["task"]
    assert task["field"] == "id_number"
    done = client.post(
        f"/v1/keyentry/{task['task_id']}", json={"value": APPLICANT}, headers={"X-API-Key": KEYER_KEY}
    )
    assert done.status_code == 200, done.text
    assert [e.doc_id for e in lookup(store, "customer", APPLICANT)] == [record.doc_id]
    stored = load(store, DocumentRecord, record.doc_id)
    assert stored.keys == {"customer": [APPLICANT]} and stored.index
