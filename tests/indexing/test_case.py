"""Whose a document is, by its evidence, through the whole service (real Redis, S3 and a worker process):
a stranger's card in the applicant's scan, a card back sent alone, a back in another file than its front."""

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
from indexing.index import HOLDER_FIELD, lookup
from models import DocumentRecord, Scan, load
from settings import Settings
from storage import open_store
from tests.capture.scans import place_cards
from tests.conftest import ADMIN_KEY, ROOT, SCANNER_KEY, UNDERWRITER_KEY, run_cli, run_worker_burst

VALUES = json.loads((ROOT / "capture" / "sample_values.json").read_text())
APPLICANT = VALUES["id_number"]
STRANGER = {
    **VALUES,
    "name": "王建国",
    "id_number": "31010419900101037X",
    "birth_date": "1990-01-01",
    "address": "上海市徐汇区漕溪北路100号",
    "valid_from": "2016-01-01",
    "valid_to": "2036-01-01",
}


def _jpeg(page: np.ndarray) -> tuple[str, bytes, str]:
    out = io.BytesIO()
    Image.fromarray(page).convert("RGB").save(out, format="JPEG", quality=90, dpi=(300, 300))
    return ("scan.jpg", out.getvalue(), "image/jpeg")


def _cards(values: dict, sides: tuple[str, ...], seed: int) -> tuple[str, bytes, str]:
    cards = [render_idcard(latest(side), values, 300) for side in sides]
    page, _ = place_cards(cards, np.random.default_rng(seed), dpi=300, noise=1.0)
    return _jpeg(page)


def _upload(client: TestClient, files: list, **form: str) -> str:
    response = client.post(
        "/v1/scans",
        files=[("file", f) for f in files],
        data={"mode": "batch", **form},
        headers={"X-API-Key": SCANNER_KEY},
    )
    assert response.status_code == 202, response.text
    return response.json()["scan_id"]


def _records(store, scan_id: str) -> list[DocumentRecord]:
    return [load(store, DocumentRecord, d) for d in load(store, Scan, scan_id).documents]


def _lease_field(conn, field: str) -> tuple[keyentry.Task, str]:
    """Lease tasks under fresh keyer names until the one for this field comes up."""
    for n in range(60):
        task = keyentry.lease(conn, f"keyer-{field}-{n}")
        assert task is not None, f"no task for {field}"
        if task.field == field:
            return task, f"keyer-{field}-{n}"
    raise AssertionError(f"no task for {field} among 60")


@pytest.fixture(scope="module")
def pages() -> dict[str, tuple[str, bytes, str]]:
    return {
        "form": _jpeg(render_form(latest("application_form"), VALUES, 300)),
        "applicant_cards": _cards(VALUES, ("idcard_front", "idcard_back"), 1),
        "stranger_front": _cards(STRANGER, ("idcard_front",), 2),
        "stranger_back": _cards(STRANGER, ("idcard_back",), 3),
        "stranger_front_again": _cards(STRANGER, ("idcard_front",), 4),
        "stranger_back_again": _cards(STRANGER, ("idcard_back",), 5),
        "tagged_back": _cards(STRANGER, ("idcard_back",), 6),
    }


def test_a_strangers_card_is_not_the_applicants_and_a_back_is_its_fronts_or_waits_for_a_keyer(
    settings: Settings, redis_conn, pages
) -> None:
    store = open_store(settings)
    client = TestClient(create_app(settings))
    case = _upload(
        client,
        [pages["form"], pages["applicant_cards"], pages["stranger_front"]],
        customer_id=APPLICANT,
        policy_no=VALUES["application_no"],
    )
    lone = _upload(client, [pages["stranger_back"]])
    apart = _upload(client, [pages["stranger_front_again"], pages["stranger_back_again"]])
    tagged = _upload(client, [pages["tagged_back"]], customer_id=APPLICANT)  # a claim, not a stamp
    assert run_worker_burst(settings).returncode == 0

    # The case: the applicant's own card is tied to the form's applicant; the stranger's is not.
    form, front, back, stranger = _records(store, case)
    assert (form.type, front.type, back.type, stranger.type) == (
        "application_form",
        "idcard_front",
        "idcard_back",
        "idcard_front",
    )
    assert (front.party, front.person, back.person) == ("applicant", APPLICANT, APPLICANT)
    assert front.keys == back.keys == {"customer": [APPLICANT], "policy": [VALUES["application_no"]]}
    assert stranger.party is None and stranger.person == STRANGER["id_number"]
    assert stranger.keys["customer"] == [STRANGER["id_number"]], "filed under its own number only"
    assert any("neither the applicant's nor the insured's" in c for c in stranger.checks)
    assert stranger.doc_id not in {e.doc_id for e in lookup(store, "customer", APPLICANT)}

    view = client.get(f"/v1/scans/{case}", headers={"X-API-Key": SCANNER_KEY}).json()
    assert any("neither the applicant's nor the insured's" in c for c in view["checks"])
    assert STRANGER["id_number"] not in json.dumps(view["checks"]), "numbers masked in what is reported"
    assert [d["party"] for d in view["documents"]] == [None, "applicant", None, None]
    card = client.get(f"/v1/customers/{APPLICANT}/idcard", headers={"X-API-Key": ADMIN_KEY}).json()
    assert (card["front"]["doc_id"], card["back"]["doc_id"]) == (front.doc_id, back.doc_id)

    reviews = client.get("/v1/reviews", headers={"X-API-Key": UNDERWRITER_KEY}).json()
    assert [(r["doc_id"], r["kind"]) for r in reviews] == [(stranger.doc_id, "card_mismatch")]
    decided = client.post(
        f"/v1/reviews/{reviews[0]['review_id']}",
        json={"decision": "accept", "reason": "the insured's mother, here to pay"},
        headers={"X-API-Key": UNDERWRITER_KEY},
    )
    assert decided.status_code == 200 and decided.json()["decision"] == "accept"
    assert client.get("/v1/reviews", headers={"X-API-Key": ADMIN_KEY}).json() == []

    # A back in another file of the same scan joins its front.
    front_apart, back_apart = _records(store, apart)
    assert back_apart.person == front_apart.person == STRANGER["id_number"]
    assert back_apart.keys == {"customer": [STRANGER["id_number"]]}

    # A back alone waits for a keyer, and the index check reports it filed under no number.
    (alone,) = _records(store, lone)
    (alone_tagged,) = _records(store, tagged)
    for record in (alone, alone_tagged):
        assert record.person is None and record.keys == {} and not record.complete
        assert record.fields[HOLDER_FIELD].status == "key_entry"
    assert any("no document in the scan shows that number" in c for c in load(store, Scan, tagged).checks)
    check = run_cli(settings, "index", "check")
    assert check.returncode == 1
    assert f"unfiled\t{alone.doc_id}" in check.stdout and f"unfiled\t{alone_tagged.doc_id}" in check.stdout

    task, keyer = _lease_field(redis_conn, HOLDER_FIELD)
    with pytest.raises(Exception, match="校验码不符"):
        keyentry.submit(redis_conn, store, task.task_id, keyer, STRANGER["id_number"][:-1] + "1")
    assert keyentry.submit(redis_conn, store, task.task_id, keyer, STRANGER["id_number"])["status"] == "keyed"
    keyed = load(store, DocumentRecord, task.doc_id)
    assert keyed.person == STRANGER["id_number"] and keyed.keys == {"customer": [STRANGER["id_number"]]}
    assert task.doc_id in {e.doc_id for e in lookup(store, "customer", STRANGER["id_number"])}
    assert f"unfiled\t{task.doc_id}" not in run_cli(settings, "index", "check").stdout
