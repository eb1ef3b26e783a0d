"""read_fields with the real tesseract: batched by configuration, digits and Chinese read from field crops."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from capture.decode import Page
from capture.pipeline import capture
from capture.render import render_form
from capture.templates import latest
from ocr.tesseract import OcrConfig, read_fields
from ocr.validate import validate

FORM = latest("application_form")
INSET = round(2.1 * 300 / 25.4)  # from the crop's 1.5 mm outer margin to 0.6 mm inside the printed box line


@pytest.fixture(scope="module")
def document():
    values = {
        "application_no": "TB2026001234",
        "applicant_name": "张三丰",
        "applicant_id_number": "110105198703150013",
        "applicant_phone": "13812345678",
        "applicant_birth_date": "1987-03-15",
        "sum_insured": "500000.00",
        "insured_id_number": "110105201001010010",  # shares its configuration with the applicant's
        "premium": "12345.00",  # shares with sum_insured
    }
    (doc,) = capture([Page(1, render_form(FORM, values, 300), 300.0)])
    return values, doc


def test_fields_are_read_with_one_tesseract_process_per_configuration(document, monkeypatch) -> None:
    values, doc = document
    names = list(values)
    calls = []
    real_run = subprocess.run

    def counting_run(command, *args, **kwargs):
        calls.append(command)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)
    specs = [FORM.field(n) for n in names]
    items = [
        (
            np.ascontiguousarray(doc.fields[n].image[INSET:-INSET, INSET:-INSET]),
            OcrConfig(s.lang, s.psm, s.charset),
        )
        for n, s in zip(names, specs, strict=True)
    ]
    texts = read_fields(items)
    assert len(calls) == len({config for _, config in items}) < len(items)
    read = {s.name: validate(str(s.kind), t.text, s.name) for s, t in zip(specs, texts, strict=True)}
    assert {n: r.value for n, r in read.items()} == values
    assert all(0 <= t.confidence <= 100 for t in texts) and np.mean([t.confidence for t in texts]) > 50


def test_an_empty_field_reads_as_nothing_with_no_confidence() -> None:
    blank = np.full((100, 600), 255, np.uint8)
    (text,) = read_fields([(blank, OcrConfig("eng", 7, "0123456789"))])
    assert (text.text, text.confidence) == ("", 0.0)
