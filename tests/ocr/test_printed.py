"""print_score and the decision: a field that does not look printed never goes through on OCR alone."""

from __future__ import annotations

import numpy as np

from capture.decode import Page
from capture.pipeline import capture
from capture.render import render_form
from capture.templates import latest
from ocr.decide import PRINT_MIN, decide_field
from ocr.engine import OcrText
from ocr.printed import print_score
from tests.capture.scans import handwrite, scan_page, smudge
from vocabulary import FieldStatus

FORM = latest("application_form")
VALUES = {
    "applicant_name": "张三丰",
    "applicant_phone": "13812345678",
    "applicant_id_number": "110105198703150013",
}


def _fields(page: np.ndarray, seed: int) -> dict:
    scan, _ = scan_page(page, np.random.default_rng(seed), dpi=300, angle=1.5, noise=3, jpeg=85)
    (doc,) = capture([Page(1, scan, 300.0)])
    return doc.fields


def test_printed_fields_match_their_text_and_handwritten_or_smudged_ones_do_not() -> None:
    printed = _fields(render_form(FORM, VALUES, 300), 1)
    rng = np.random.default_rng(2)
    page = render_form(FORM, {}, 300)
    for name, value in VALUES.items():
        page = handwrite(page, FORM.field(name).box, value, rng)
    written = _fields(page, 3)
    smeared = _fields(smudge(render_form(FORM, VALUES, 300), FORM.field("applicant_phone").box, rng), 4)
    for name, value in VALUES.items():
        assert print_score(printed[name].ocr_image, value) > PRINT_MIN + 0.15, name
        assert print_score(written[name].ocr_image, value) < PRINT_MIN, name
        # A read of the wrong text does not match printed ink either.
        assert print_score(printed[name].ocr_image, value[::-1]) < print_score(printed[name].ocr_image, value)
    assert print_score(smeared["applicant_phone"].ocr_image, VALUES["applicant_phone"]) < PRINT_MIN
    assert print_score(np.full((80, 400), 255, np.uint8), "123") == 0.0


def test_a_handwritten_field_read_right_and_sure_still_goes_to_key_entry() -> None:
    rng = np.random.default_rng(5)
    page = handwrite(render_form(FORM, {}, 300), FORM.field("applicant_phone").box, "13812345678", rng)
    image = _fields(page, 6)["applicant_phone"].ocr_image
    reads = (OcrText("13812345678", 95.0), OcrText("13812345678", 93.0))
    assert decide_field("phone", "applicant_phone", reads).status == FieldStatus.accepted  # without the image
    decision = decide_field("phone", "applicant_phone", reads, image)
    assert decision.status == FieldStatus.key_entry and "does not look printed" in decision.reasons[0]
    assert decision.suggestion == "13812345678"


def test_look_alikes_are_the_characters_that_print_most_like_one() -> None:
    from ocr.printed import look_alikes

    assert "字" in look_alikes("宇") and "宇" in look_alikes("字")
    assert "风" in look_alikes("凤")
    assert look_alikes("A") == ()  # not a common Chinese character: no look-alikes


def test_the_look_alike_table_is_read_from_its_file_and_matches_the_print_font() -> None:
    import json

    import numpy as np

    from ocr.printed import LOOK_ALIKE_MIN, LOOK_ALIKE_TABLE, _common_glyphs

    table = json.loads(LOOK_ALIKE_TABLE.read_text(encoding="utf-8"))
    chars, vectors = _common_glyphs()  # what `python -m ocr.printed` draws to build it
    assert len(table) == len(chars) == 3755
    for char in "宇凤潍侯张王李明":
        similarity = vectors @ vectors[chars.index(char)]
        best = np.argsort(-similarity)[1:4]
        assert table[char] == "".join(chars[j] for j in best if similarity[j] >= LOOK_ALIKE_MIN), char


def test_a_line_is_drawn_from_the_fonts_mask_exactly_as_on_a_canvas_in_every_installed_face() -> None:
    from PIL import Image, ImageDraw

    from ocr import printed
    from printing import installed_faces

    size = printed.DRAW_SIZE
    for face in (None, *installed_faces()):
        font = printed._font(face)
        for text in (
            "张三丰",
            "四川省成都市武侯区人民路200号",
            "37070219920809329X",
            "2014.01.12",
            "鑫享年金保险 (分红型)",
        ):
            canvas = Image.new("L", (size * (len(text) + 2), size * 2), 255)
            ImageDraw.Draw(canvas).text((size // 2, size // 2), text, fill=0, font=font)
            array = np.asarray(canvas)
            drawn, _, (x0, y0) = printed._glyphs(text, face)
            assert np.array_equal(drawn, array[y0 : y0 + drawn.shape[0], x0 : x0 + drawn.shape[1]]), (
                face,
                text,
            )
            outside = array.copy()
            outside[y0 : y0 + drawn.shape[0], x0 : x0 + drawn.shape[1]] = 255
            assert outside.min() >= 128, (face, text)  # the crop holds all the ink


def test_each_field_is_binarised_once_and_never_mistaken_for_another_of_its_size() -> None:
    from ocr import printed

    fields = _fields(render_form(FORM, VALUES, 300), 5)
    name = fields["applicant_name"].ocr_image
    twin = np.roll(name, 40, axis=1)  # the same size, the ink in another place
    first = printed._binary(name)
    assert printed._binary(name.copy()) is first  # the same pixels: binarised once
    assert not np.array_equal(printed._binary(twin), first)
    assert not first.flags.writeable  # shared between checks: none may change it
