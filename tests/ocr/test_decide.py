"""decide: eight reads settled by drawing each value read in the print font, character by character,
and values of one character held to the print of the rest of the document."""

from __future__ import annotations

import random

import numpy as np
import pytest

from capture.decode import Page
from capture.pipeline import capture
from capture.render import _pil_font, _px, _wrap, render_form, render_idcard
from capture.specimens import card_values, form_values
from capture.templates import latest
from ocr.decide import decide_document, decide_field
from ocr.engine import OcrText
from ocr.printed import char_scores
from tests.capture.scans import handwrite, place_cards, scan_page
from vocabulary import FieldStatus

FORM = latest("application_form")


def _scan(page: np.ndarray, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    scan, _ = scan_page(page, rng, dpi=300, angle=float(rng.uniform(-3, 3)), noise=3, jpeg=85)
    (doc,) = capture([Page(1, scan, 300.0)])
    return doc.fields


@pytest.fixture(scope="module")
def printed() -> dict:
    values = {"applicant_name": "杨凤勇", "insured_name": "孙宇", "sum_insured": "50000.00"}
    return _scan(render_form(FORM, values, 300), 1)


def test_of_eight_reads_the_value_that_matches_the_print_wins_over_the_most_given(printed) -> None:
    image = printed["applicant_name"].ocr_image
    reads = (OcrText("杨风勇", 84.0),) * 5 + (OcrText("杨凤勇", 40.0),) * 3
    decision = decide_field("name", "applicant_name", reads, image)
    assert decision.status == FieldStatus.accepted and decision.value == "杨凤勇"
    image = printed["insured_name"].ocr_image
    reads = (OcrText("孙字", 87.0),) * 5 + (OcrText("孙宇", 44.0),) * 2 + (OcrText("", 0.0),)
    assert decide_field("name", "insured_name", reads, image).value == "孙宇"


def test_a_value_every_read_gives_still_goes_to_key_entry_when_a_character_does_not_match(printed) -> None:
    image = printed["applicant_name"].ocr_image
    decision = decide_field("name", "applicant_name", (OcrText("杨风勇", 90.0),) * 8, image)
    assert decision.status == FieldStatus.key_entry and decision.suggestion == "杨风勇"
    assert "character" in decision.reasons[0]
    # The first two reads alone are held to the same check.
    decision = decide_field("name", "applicant_name", (OcrText("杨风勇", 90.0),) * 2, image)
    assert decision.status == FieldStatus.key_entry


def test_a_value_only_one_read_gives_goes_to_key_entry(printed) -> None:
    image = printed["applicant_name"].ocr_image
    reads = (OcrText("杨凤勇", 60.0),) + (OcrText("", 0.0),) * 7
    decision = decide_field("name", "applicant_name", reads, image)
    assert decision.status == FieldStatus.key_entry and "only 1 of 8" in decision.reasons[0]


def test_without_the_image_eight_reads_need_a_clear_majority() -> None:
    reads = (OcrText("13812345678", 50.0),) * 5 + (OcrText("13812346678", 50.0),) * 3
    assert decide_field("phone", "applicant_phone", reads).value == "13812345678"
    reads = (OcrText("13812345678", 50.0),) * 4 + (OcrText("13812346678", 50.0),) * 3 + (OcrText("", 0),)
    assert decide_field("phone", "applicant_phone", reads).status == FieldStatus.key_entry


def test_a_card_address_is_matched_line_by_line() -> None:
    front, back = latest("idcard_front"), latest("idcard_back")
    values = card_values(random.Random(3))
    values["address"] = "四川省成都市武侯区人民路680号3栋1单元901室"
    page, _ = place_cards(
        [render_idcard(front, values), render_idcard(back, values)], np.random.default_rng(4), dpi=300
    )
    doc = next(d for d in capture([Page(1, page, 300.0)]) if d.type == "idcard_front")
    image = doc.fields["address"].ocr_image
    # The lines as the card prints them (capture/render.py wraps the address to the box).
    font = _pil_font(_px(3.0, 300))
    lines = "\n".join(_wrap(values["address"], font, _px(front.field("address").box.w - 1, 300)))
    assert lines.count("\n") == 1
    right = char_scores(image, lines)
    assert len(right) == len(lines) - 1 and min(right) > 0.85
    wrong = char_scores(image, lines.replace("侯", "修"))
    assert min(wrong) < 0.8 and wrong.index(min(wrong)) == lines.index("侯")
    assert char_scores(image, "四川省\n成都市\n武侯区\n人民路") == []  # more lines of text than of ink


def _sure(fields: dict, values: dict) -> tuple[dict, dict]:
    """Return decide_document's arguments with every field read right, twice, at confidence 95."""
    reads = {n: (str(FORM.field(n).kind), (OcrText(values[n], 95.0),) * 2) for n in fields if values.get(n)}
    return reads, {n: fields[n].ocr_image for n in reads}


def test_one_character_written_by_hand_never_goes_through_even_read_right_and_sure() -> None:
    rng = np.random.default_rng(11)
    through = []
    for i in range(6):
        values = form_values(random.Random(500 + i))
        values["payment_years"] = str(rng.choice([1, 3, 5, 6, 8]))
        # The form's sex is a tick box, read as a mark: the one-digit payment years is its one-character field
        page = render_form(FORM, {**values, "payment_years": ""}, 300)
        page = handwrite(page, FORM.field("payment_years").box, values["payment_years"], rng)
        decisions = decide_document(*_sure(_scan(page, 20 + i), values))
        through += [n for n in ("payment_years",) if decisions[n].status == FieldStatus.accepted]
        assert decisions["applicant_name"].status == FieldStatus.accepted  # the printed rest goes through
        # The same values printed go through.
        decisions = decide_document(*_sure(_scan(render_form(FORM, values, 300), 40 + i), values))
        assert decisions["payment_years"].status == FieldStatus.accepted
    assert through == []


def test_one_character_with_no_other_printed_value_beside_it_goes_to_key_entry(printed) -> None:
    reads = {"payment_years": ("integer", (OcrText("5", 95.0),) * 2)}
    fields = _scan(render_form(FORM, {"payment_years": "5"}, 300), 2)
    decisions = decide_document(reads, {"payment_years": fields["payment_years"].ocr_image})
    assert decisions["payment_years"].status == FieldStatus.key_entry
    assert "one character" in decisions["payment_years"].reasons[0]


def test_a_name_every_read_gives_with_a_look_alike_character_goes_to_key_entry(printed) -> None:
    image = printed["insured_name"].ocr_image  # 孙宇 printed
    decision = decide_field("name", "insured_name", (OcrText("孙字", 90.0),) * 8, image)
    assert decision.status == FieldStatus.key_entry and "字 could as well be 宇" in decision.reasons[0]
    decision = decide_field("name", "insured_name", (OcrText("孙字", 90.0),) * 2, image)
    assert decision.status == FieldStatus.key_entry
    assert decide_field("name", "insured_name", (OcrText("孙宇", 90.0),) * 2, image).value == "孙宇"


def test_a_digit_the_print_matches_no_better_than_another_digit_goes_to_key_entry(printed) -> None:
    image = printed["sum_insured"].ocr_image  # 50000.00 printed; both reads said 30000.00 at 81 (seed 17)
    decision = decide_field("amount", "sum_insured", (OcrText("30000.00", 81.0),) * 2, image)
    assert decision.status == FieldStatus.key_entry and "3 could as well be 5" in decision.reasons[0]
    assert decide_field("amount", "sum_insured", (OcrText("50000.00", 81.0),) * 2, image).value == "50000.00"
