"""The claims material: the claim form and the medical invoice recognised like the application form, the
bank card found on the bed like an ID card, a phone photo of an invoice found, straightened and cropped."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from capture.decode import Page
from capture.model import DocType
from capture.pipeline import capture
from capture.render import render_card, render_form
from capture.specimens import claim_values
from capture.templates import latest
from tests.capture.scans import finish, iou, photograph, place_cards, scan_page, true_box

MIN_IOU = 0.9


@pytest.fixture(scope="module")
def claim() -> dict:
    """One claim's material rendered at 300 dpi: values and clean images."""
    values = claim_values(random.Random(20261130))
    return {
        "values": values,
        "claim_form": render_form(latest("claim_form"), values["claim_form"], 300),
        "medical_invoice": render_form(latest("medical_invoice"), values["invoices"][0], 300),
        "bank_card": render_card(latest("bank_card"), values["bank_card"], 300),
    }


def _misplaced(document, template, transform) -> list[tuple[str, float]]:
    found = {**document.fields, **document.regions}
    scores = [
        (spec.name, iou(true_box(transform, spec.box), found[spec.name].box))
        for spec in (*template.fields, *template.regions)
    ]
    return [(name, round(score, 3)) for name, score in scores if score < MIN_IOU]


@pytest.mark.parametrize(
    ("doc_type", "scan"),
    [
        ("claim_form", dict(dpi=200, angle=-6.0, blur=0.8, jpeg=60)),
        ("claim_form", dict(dpi=300, angle=178.0, light=True)),
        ("medical_invoice", dict(dpi=300, angle=4.0, noise=5)),
        ("medical_invoice", dict(dpi=240, angle=-91.0, jpeg=70, light=True)),
    ],
    ids=["form-200dpi", "form-upside-down", "invoice", "invoice-sideways"],
)
def test_claim_forms_and_invoices_are_recognised_and_cut_into_their_fields(claim, doc_type, scan) -> None:
    template = latest(doc_type)
    image, transform = scan_page(claim[doc_type], np.random.default_rng(len(doc_type)), **scan)
    (document,) = capture([Page(1, image, scan["dpi"])])
    assert document.type == DocType(doc_type)
    assert document.template_key == template.key
    assert document.problems == []
    assert _misplaced(document, template, transform) == []


def test_a_bank_card_on_the_bed_is_found_as_id_cards_are_and_told_from_them(claim) -> None:
    front = render_card(latest("idcard_front"), claim["values"]["idcard"], 300)
    page, transforms = place_cards([claim["bank_card"], front], np.random.default_rng(3), dpi=300, jpeg=80)
    documents = capture([Page(1, page, 300.0)])
    assert [d.type for d in documents] == [DocType.bank_card, DocType.idcard_front]
    assert documents[0].problems == []
    assert _misplaced(documents[0], latest("bank_card"), transforms[0]) == []


@pytest.mark.parametrize("desk", [70, 150])
def test_an_invoice_photographed_by_phone_on_a_desk_is_found_and_straightened(claim, desk: int) -> None:
    """The invoice fills ~75 % of a 3000 x 2250 photo: turned, keystone, uneven light, JPEG, 72 dpi."""
    rng = np.random.default_rng(desk)
    invoice = cv2.cvtColor(claim["medical_invoice"], cv2.COLOR_GRAY2RGB)
    photo, transform = photograph(
        invoice, rng, fill=0.75, angle=rng.uniform(-12, 12), keystone=0.03, desk=(desk, desk - 10, desk - 25)
    )
    photo = finish(photo, rng, 0.8, 4, 70, True)
    (document,) = capture([Page(1, photo, 72.0)])
    assert document.type == DocType.medical_invoice and document.problems == []
    assert _misplaced(document, latest("medical_invoice"), transform) == []
    rectified = document.images[0]
    assert rectified.shape[:2] == (
        round(148 / 25.4 * 300),
        round(210 / 25.4 * 300),
    )  # straightened, true size


def test_imaging_samples_draws_the_claims_material(tmp_path, monkeypatch) -> None:
    import json

    from click.testing import CliRunner
    from PIL import Image

    from cli import imaging

    monkeypatch.chdir(tmp_path)
    (tmp_path / "card.json").write_text(
        json.dumps({"bank_name": "招商银行", "card_number": "6225880123456783"})
    )
    runner = CliRunner()
    for args in (
        ["claim-form", "--out", "claim.pdf"],
        ["invoice", "--out", "invoice.png", "--dpi", "200"],
        ["bank-card", "--values", "card.json", "--out", "card.png"],
    ):
        result = runner.invoke(imaging, ["samples", *args])
        assert result.exit_code == 0, result.output
    assert round(Image.open(tmp_path / "invoice.png").info["dpi"][0]) == 200
    assert Image.open(tmp_path / "invoice.png").size == (1654, 1166)  # A5 landscape at 200 dpi
    assert Image.open(tmp_path / "card.png").size == (1011, 638)  # 85.6 x 54 mm at 300 dpi
    assert (tmp_path / "claim.pdf").read_bytes().startswith(b"%PDF")
    bad = runner.invoke(imaging, ["samples", "bank-card", "--values", "missing.json", "--out", "x.png"])
    assert "missing.json: cannot read the values" in str(bad.exception)  # `imaging` prints it, exit 2
