"""Choice fields: tick boxes drawn by the sample renderer, read as marks (the inked share of each box), and
decided by the accept-or-key rule: one box ticked and the others empty is accepted, anything else goes to
a person with the choices offered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capture.align import Alignment, crop_fields, rectify
from capture.model import DocType, Document
from capture.render import rasterise, render_form_pdf
from capture.templates import load_template
from ocr.choice import EMPTY, MARKED, decide_choice
from ocr.pipeline import read_document
from tests.capture.scans import finish
from vocabulary import FieldStatus

TEMPLATE = load_template(Path(__file__).with_name("templates") / "choice_form_v1.toml")


def _read(values: dict[str, str], seed: int = 0, dpi: float = 300.0) -> dict:
    """Return the decisions on the form filled with values, printed, scanned with noise and JPEG."""
    page = rasterise(render_form_pdf(TEMPLATE, values), dpi)
    page = finish(page, np.random.default_rng(seed), 0.6, 4.0, 80, False)
    alignment = Alignment(TEMPLATE, np.diag([dpi / 25.4, dpi / 25.4, 1.0]), 0.0, 4, "qr")
    rectified = rectify(page, alignment.transform, TEMPLATE.width_mm, TEMPLATE.height_mm)
    fields, _ = crop_fields(rectified, alignment, 1)
    document = Document(DocType.other, [1], TEMPLATE, fields, images=[rectified])
    return read_document(document)


def test_one_tick_a_field_is_read_as_the_option_ticked() -> None:
    values = {"applicant_sex": "女", "payment_method": "月交", "insured_smoker": "否"}
    decisions = _read(values)
    assert {n: (d.value, d.status) for n, d in decisions.items()} == {
        n: (v, FieldStatus.accepted) for n, v in values.items()
    }


def test_two_ticks_or_none_go_to_key_entry_with_the_choices_offered() -> None:
    decisions = _read({"applicant_sex": "男|女", "payment_method": ""}, seed=1, dpi=200.0)
    sex, payment = decisions["applicant_sex"], decisions["payment_method"]
    assert (sex.status, sex.value, sex.reasons) == (
        FieldStatus.key_entry,
        None,
        ["more than one ticked: 男, 女"],
    )
    assert sex.choices == ["男", "女"]
    assert (payment.status, payment.reasons, payment.choices) == (
        FieldStatus.key_entry,
        ["nothing ticked"],
        ["年交", "月交", "趸交"],
    )


@pytest.mark.parametrize(
    ("fills", "status", "value"),
    [
        ((MARKED + 0.05, 0.0), FieldStatus.accepted, "男"),
        ((MARKED + 0.05, (EMPTY + MARKED) / 2), FieldStatus.key_entry, None),  # a stray mark beside
        (((EMPTY + MARKED) / 2, 0.0), FieldStatus.key_entry, None),  # a faint or erased tick
    ],
)
def test_a_box_between_empty_and_ticked_is_not_decided_by_machine(fills, status, value) -> None:
    decision = decide_choice("choice", "applicant_sex", (("男", fills[0]), ("女", fills[1])))
    assert (decision.status, decision.value) == (status, value)


def test_a_keyer_answers_a_choice_field_with_one_of_its_boxes() -> None:
    from errors import BadInput
    from keyentry import Task, _answer

    task = Task(
        "t", "d", "other", "s", "payment_method", "choice", "缴费方式", "single", None, "i", 0.0, [], [],
        choices=("年交", "月交", "趸交"),
    )  # fmt: skip
    assert _answer(task, "月交", "value") == "月交"
    with pytest.raises(BadInput, match="answer one of the boxes: 年交, 月交, 趸交"):
        _answer(task, "季交", "value")


def test_the_application_forms_tick_boxes_are_read_and_a_sex_against_the_id_number_is_keyed() -> None:
    """The application form's four choice fields through capture and read_document: the ticked options
    accepted, a sex ticked against the ID number's sex digit sent to key-entry with the choices."""
    import random

    from capture.decode import Page
    from capture.pipeline import capture
    from capture.render import render_form
    from capture.specimens import form_values
    from capture.templates import latest
    from tests.capture.scans import scan_page

    form = latest("application_form")
    values = form_values(random.Random(19))
    other_sex = {"男": "女", "女": "男"}[values["applicant_sex"]]
    page = render_form(form, {**values, "applicant_sex": other_sex}, 300)
    scan, _ = scan_page(page, np.random.default_rng(19), dpi=300, angle=1.5, noise=3, jpeg=85)
    (document,) = capture([Page(1, scan, 300.0)])
    decisions = read_document(document)
    ticks = [f.name for f in form.fields if f.options]
    assert ticks == ["applicant_sex", "insured_smoker", "insured_hospitalised", "payment_method"]
    assert decisions["applicant_id_number"].status == FieldStatus.accepted
    for name in ticks[1:]:
        assert (decisions[name].value, decisions[name].status) == (values[name], FieldStatus.accepted)
    sex = decisions["applicant_sex"]
    assert (sex.status, sex.suggestion, sex.choices) == (FieldStatus.key_entry, other_sex, ["男", "女"])
    assert any("sex digit" in r for r in sex.reasons)
