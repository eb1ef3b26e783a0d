"""The claims material's values: the bank card's Luhn check, an invoice's items against its total, dates in
order (plain checks), and an invoice photographed by phone read and decided as the application form is
(tesseract, every accepted value right). The claim form and the bank card are read end to end in
tests/indexing/test_claim_case.py."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from capture.decode import Page
from capture.pipeline import capture
from capture.render import render_form
from capture.specimens import claim_values
from capture.templates import latest
from ocr.decide import decide_document
from ocr.engine import OcrText
from ocr.pipeline import read_document
from ocr.validate import document_checks, validate
from tests.capture.scans import finish, photograph
from vocabulary import FieldStatus

INVOICE = {
    "admission_date": "2026-03-01",
    "discharge_date": "2026-03-09",
    "invoice_date": "2026-03-10",
    "item_western_medicine": "1200.50",
    "item_examination": "300.00",
    "item_treatment": "0.00",
    "item_chinese_medicine": "0.00",
    "item_laboratory": "99.50",
    "item_bed": "400.00",
    "total_amount": "2000.00",
}


@pytest.mark.parametrize(
    ("text", "value", "ok"),
    [
        ("6222 0212 3456 7890 128", "6222021234567890128", True),
        ("6222021234567890127", "6222021234567890127", False),  # one digit off: the Luhn check fails
        ("6222 0212 3456", "622202123456", False),  # too short for a card
        ("4111-1111-1111-1111", "4111111111111111", True),
    ],
)
def test_card_numbers_are_checked_by_their_luhn_digit(text: str, value: str, ok: bool) -> None:
    checked = validate("card_number", text)
    assert checked.value == value and checked.ok is ok


def test_an_invoice_whose_items_add_up_and_dates_run_in_order_passes() -> None:
    assert document_checks(INVOICE) == {}


def test_items_that_do_not_add_up_to_the_total_send_every_amount_to_a_person() -> None:
    problems = document_checks({**INVOICE, "item_examination": "800.00"})
    amounts = {n for n in INVOICE if n.startswith("item_")} | {"total_amount"}
    assert set(problems) == amounts
    assert "add up to 2500.00, not the total 2000.00" in problems["total_amount"][0]
    # An item not known yet (waiting for key-entry) is no disagreement: the check waits for it.
    assert document_checks({k: v for k, v in INVOICE.items() if k != "item_bed"}) == {}


def test_dates_out_of_order_are_named_on_both_sides() -> None:
    problems = document_checks({**INVOICE, "discharge_date": "2026-02-20"})
    assert set(problems) == {"admission_date", "discharge_date"}
    claim = document_checks({"event_date": "2026-05-01", "claim_date": "2026-04-30"})
    assert set(claim) == {"event_date", "claim_date"}


def test_a_sum_that_fails_keeps_the_machine_from_accepting_amounts_it_read_alike() -> None:
    """Two reads agreeing on each amount is not enough when the amounts contradict each other."""
    reads = {
        n: (latest("medical_invoice").field(n).kind.value, (OcrText(v, 90.0), OcrText(v, 90.0)))
        for n, v in {**INVOICE, "item_bed": "900.00"}.items()
    }
    decisions = decide_document(reads)
    assert decisions["admission_date"].status == FieldStatus.accepted
    assert decisions["total_amount"].status == FieldStatus.key_entry
    assert decisions["item_bed"].status == FieldStatus.key_entry
    assert "add up to" in decisions["item_bed"].reasons[0]


# ---- read by OCR --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def claim() -> dict:
    return claim_values(random.Random(4711))


def _truth(template_type: str, values: dict[str, str]) -> dict[str, str]:
    template = latest(template_type)
    return {f.name: validate(f.kind.value, values[f.name], f.name).value for f in template.fields}


def _read(image: np.ndarray, dpi: float) -> tuple[str, dict]:
    (document,) = capture([Page(1, image, dpi)])
    assert document.problems == []
    return str(document.type), read_document(document)


def _assert_read(doc_type: str, decisions: dict, truth: dict[str, str], least: int) -> None:
    accepted = {n: d.value for n, d in decisions.items() if d.status == FieldStatus.accepted}
    wrong = {n: (v, truth[n]) for n, v in accepted.items() if v != truth[n]}
    assert wrong == {}, f"{doc_type}: accepted wrong values"
    assert len(accepted) >= least, f"{doc_type}: only {sorted(accepted)} of {len(truth)} accepted"


def test_an_invoice_photographed_by_phone_is_read(claim) -> None:
    rng = np.random.default_rng(9)
    invoice = render_form(latest("medical_invoice"), claim["invoices"][1], 300)
    photo, _ = photograph(
        cv2.cvtColor(invoice, cv2.COLOR_GRAY2RGB), rng, fill=0.8, angle=7.0, keystone=0.02, desk=(110, 95, 80)
    )
    doc_type, decisions = _read(finish(photo, rng, 0.6, 3, 80, True), 72.0)
    assert doc_type == "medical_invoice"
    _assert_read(doc_type, decisions, _truth("medical_invoice", claim["invoices"][1]), 11)


def test_a_keyed_total_that_the_items_do_not_add_up_to_goes_to_a_review(settings, redis_conn) -> None:
    """Key-entry checks keyed amounts as the machine's: against the items already accepted."""
    from fastapi.testclient import TestClient

    from api import create_app
    from storage import open_store
    from tests.conftest import KEYER_KEY, UNDERWRITER_KEY
    from tests.ocr.test_keyed_checks import _key, _next, _put

    fields = {n: ("amount", "accepted", v) for n, v in INVOICE.items() if n.startswith("item_")}
    fields["total_amount"] = ("amount", "key_entry", None)
    _put(open_store(settings), redis_conn, "d20261123101500abcdefabcdef009", "medical_invoice", fields)
    client = TestClient(create_app(settings))
    task = _next(client, KEYER_KEY)
    assert task["field"] == "total_amount"
    assert _key(client, KEYER_KEY, task["task_id"], "2100.00").json()["status"] == "conflict"
    (review,) = client.get("/v1/reviews", headers={"X-API-Key": UNDERWRITER_KEY}).json()
    assert review["kind"] == "keyed_conflict"
    assert "total_amount: the items add up to 2000.00, not the total 2100.00" in review["problems"]
