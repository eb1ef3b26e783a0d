"""read_fields (ocr/reads.py) on the real tesseract, in-process: values read from field crops, no process
spawned."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from capture.decode import Page
from capture.pipeline import capture
from capture.render import render_form
from capture.templates import latest
from ocr.engine import OcrConfig
from ocr.reads import prepare, read_fields
from ocr.validate import validate

FORM = latest("application_form")


@pytest.fixture(scope="module")
def document():
    values = {
        "application_no": "TB2026001234",
        "applicant_name": "张三丰",
        "applicant_sex": "男",
        "applicant_id_number": "110105198703150013",
        "applicant_phone": "13812345678",
        "applicant_birth_date": "1987-03-15",
        "sum_insured": "500000.00",
        "payment_years": "20",
    }
    (doc,) = capture([Page(1, render_form(FORM, values, 300), 300.0)])
    return values, doc


def config(name: str) -> OcrConfig:
    spec = FORM.field(name)
    return OcrConfig(spec.lang, spec.psm, spec.charset or "", str(spec.kind))


def test_fields_are_read_in_process_without_spawning_tesseract(document, monkeypatch) -> None:
    values, doc = document
    spawned = []
    monkeypatch.setattr(subprocess.Popen, "__init__", lambda *a, **k: spawned.append(a) or 1 / 0)
    names = [n for n in values if not FORM.field(n).options]  # a tick box is read as a mark, not text
    reads = read_fields([(doc.fields[n].ocr_image, config(n)) for n in names])
    assert spawned == []
    # Two reads a field, tesseract's and PP-OCR's; nine where those two do not settle the field.
    assert all(len(r) in (2, 9) for r in reads)
    assert all([x.engine for x in r[:2]] == ["tesseract", "ppocr"] for r in reads)
    assert sum(len(r) == 2 for r in reads) >= len(reads) // 2
    got = {n: validate(config(n).kind, r[0].text, n).value for n, r in zip(names, reads, strict=True)}
    assert got == {n: values[n] for n in names}
    assert all(0 <= w.confidence <= 100 for r in reads for w in r)


def test_a_blank_field_has_no_reads() -> None:
    blank = np.full((100, 600), 250, np.uint8)
    assert read_fields([(blank, OcrConfig("eng", 7, "0123456789", "integer"))]) == [()]
    assert prepare(blank, 30) is None


def test_prepare_scales_the_tallest_line_to_the_target_height(document) -> None:
    _, doc = document
    image = prepare(doc.fields["applicant_id_number"].ocr_image, 30)
    rows = np.where((image < 128).any(axis=1))[0]
    assert 28 <= rows[-1] - rows[0] + 1 <= 32


def test_a_field_the_first_two_reads_do_not_settle_is_read_seven_more_times(document, monkeypatch) -> None:
    import ocr.decide

    _, doc = document
    image = doc.fields["applicant_name"].ocr_image
    monkeypatch.setattr(ocr.decide, "settled", lambda kind, reads, image, name="": True)
    assert len(read_fields([(image, config("applicant_name"))])[0]) == 2
    monkeypatch.setattr(ocr.decide, "settled", lambda kind, reads, image, name="": False)
    (reads,) = read_fields([(image, config("applicant_name"))])
    assert len(reads) == 9 and {r.engine for r in reads[2:]} == {"tesseract"}
    assert sum(validate("name", r.text).value == "张三丰" for r in reads) >= 4


def test_prepare_in_grey_crops_to_the_ink_and_keeps_the_grey(document) -> None:
    _, doc = document
    image = prepare(doc.fields["applicant_name"].ocr_image, 30, binarise=False)
    assert len(np.unique(image)) > 2  # not binarised
    rows = np.where((image < 128).any(axis=1))[0]
    assert 28 <= rows[-1] - rows[0] + 1 <= 32
    assert image.shape[1] < prepare(doc.fields["applicant_name"].ocr_image, 30).shape[1]  # cropped


@pytest.mark.parametrize("name", ["丁杰", "范志", "武杰怡"])
def test_names_of_small_strokes_are_read_not_dropped_as_noise(name) -> None:
    # With tesseract's default textord_noise_sizelimit (0.5) every read of these clean fields was empty.
    (doc,) = capture([Page(1, render_form(FORM, {"applicant_name": name}, 300), 300.0)])
    (reads,) = read_fields([(doc.fields["applicant_name"].ocr_image, config("applicant_name"))])
    assert reads[0].text == name and reads[1].text == name


def test_a_low_confidence_line_is_not_read_again_inverted_since_fields_are_dark_on_white() -> None:
    from ocr import tesseract

    # Tesseract 5 reads an unsure line again inverted (tessedit_do_invert, on by default): more work on
    # the fields that are already hard, for a case (white on black) our prepared fields never are.
    for lang in ("chi_sim", "eng"):
        assert tesseract.engine(lang).GetBoolVariable("tessedit_do_invert") is False, lang
