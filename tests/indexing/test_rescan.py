"""Rescans and duplicates through the whole service (real Redis, S3 and a worker process): a page the
counter was told to rescan makes no key-entry work and is superseded by the rescan, the same bytes again
make no second scan, the same form content again is marked a duplicate; a card to rescan is never current."""

from __future__ import annotations

import io
import json

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from api import create_app
from capture.render import render_form
from capture.templates import latest
from models import DocumentRecord, Scan, document_key, load
from settings import Settings
from storage import open_store
from tests.capture.scans import scan_page
from tests.conftest import ADMIN_KEY, ROOT, SCANNER_KEY, run_worker_burst
from tests.indexing.conftest import APPLICANT, put_document

VALUES = json.loads((ROOT / "capture" / "sample_values.json").read_text())
POLICY = VALUES["application_no"]


def _jpeg(page: np.ndarray, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(page).convert("RGB").save(out, format="JPEG", quality=quality, dpi=(300, 300))
    return out.getvalue()


def _upload(client: TestClient, data: bytes, **form: str) -> dict:
    response = client.post(
        "/v1/scans",
        files=[("file", ("form.jpg", data, "image/jpeg"))],
        data={"mode": "batch", **form},
        headers={"X-API-Key": SCANNER_KEY},
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_a_rescan_supersedes_the_blurred_page_and_a_repeated_upload_makes_nothing_twice(
    settings: Settings, redis_conn
) -> None:
    store = open_store(settings)
    client = TestClient(create_app(settings))
    form = render_form(latest("application_form"), VALUES, 300)
    blurred, _ = scan_page(form, np.random.default_rng(7), dpi=300, angle=2.0, blur=6.0)
    first = _upload(client, _jpeg(blurred), policy_no=POLICY)["scan_id"]
    good = _upload(client, _jpeg(form))
    again = _upload(client, _jpeg(form))
    assert (again["scan_id"], again["existing"], good["existing"]) == (good["scan_id"], True, False)
    copy = _upload(client, _jpeg(form, quality=80))["scan_id"]  # the same form scanned again
    assert run_worker_burst(settings).returncode == 0

    (rescan,) = [load(store, DocumentRecord, d) for d in load(store, Scan, first).documents]
    (kept,) = [load(store, DocumentRecord, d) for d in load(store, Scan, good["scan_id"]).documents]
    (dup,) = [load(store, DocumentRecord, d) for d in load(store, Scan, copy).documents]
    assert rescan.rescan and any("blurred" in p for p in rescan.problems)
    assert redis_conn.keys(f"ke:task:{rescan.doc_id}.*") == [], "a page to rescan is not keyed"
    assert (rescan.superseded_by, kept.supersedes) == (kept.doc_id, [rescan.doc_id])
    assert (kept.superseded_by, dup.supersedes, dup.duplicate_of) == (dup.doc_id, [kept.doc_id], kept.doc_id)
    assert kept.duplicate_of is None and not kept.rescan

    listed = client.get(f"/v1/documents?policy_no={POLICY}", headers={"X-API-Key": ADMIN_KEY}).json()
    shown = {d["doc_id"]: d for d in listed["documents"]}
    assert len(shown) == 3, "the repeated upload made no second document"
    assert shown[rescan.doc_id]["rescan"] and shown[rescan.doc_id]["superseded_by"] == kept.doc_id
    assert shown[dup.doc_id]["duplicate_of"] == kept.doc_id
    view = client.get(f"/v1/scans/{first}", headers={"X-API-Key": SCANNER_KEY}).json()
    assert (
        view["documents"][0]["status"] == "exception" and view["documents"][0]["superseded_by"] == kept.doc_id
    )
    signature = client.get(f"/v1/customers/{APPLICANT}/signature", headers={"X-API-Key": ADMIN_KEY}).json()
    assert signature["doc_id"] != rescan.doc_id


def test_a_card_side_to_rescan_is_never_the_current_card(settings: Settings) -> None:
    store = open_store(settings)
    client = TestClient(create_app(settings))
    card = {"customer": [APPLICANT]}
    front = put_document(store, 1, "idcard_front", "new_business", card, {"id_number": APPLICANT})
    put_document(store, 2, "idcard_back", "new_business", card, {"valid_to": "2035-03-15"}, person=APPLICANT)
    later = put_document(
        store, 3, "idcard_front", "new_business", card, {"id_number": APPLICANT}, stamp="20261124101500"
    )
    store.put(document_key(later.doc_id), later.model_copy(update={"status": "exception"}).to_json())
    body = client.get(f"/v1/customers/{APPLICANT}/idcard", headers={"X-API-Key": ADMIN_KEY}).json()
    assert body["front"]["doc_id"] == front.doc_id, "the blurred later scan is not the current card"
    store.put(document_key(later.doc_id), later.to_json())
    body = client.get(f"/v1/customers/{APPLICANT}/idcard", headers={"X-API-Key": ADMIN_KEY}).json()
    assert body["front"]["doc_id"] == later.doc_id, "a good later scan is"
