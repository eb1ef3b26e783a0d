"""Every page of an upload accounted for: in a document, a separator, blank, or refused alone with why,
the rest of the file captured."""

from __future__ import annotations

import io
import json

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from capture.decode import Page, UnreadableScan, decode
from capture.detect import marks_mm2
from capture.model import DocType, PageReport
from capture.orient import skew_angle
from capture.pipeline import BLANK_MARKS_MM2, capture
from capture.render import render_form_pdf, render_separator_pdf
from capture.templates import latest
from ocr.tesseract import orientation
from tests.capture.other_pages import blank_page, content, letter_page, residual_angle
from tests.capture.scans import scan_page
from tests.capture.test_stack import _shrink, _tiff
from tests.hostile import _pdf_strokes, one_page_pdf


def _joined(*pdfs: bytes) -> bytes:
    """Return one PDF holding the pages of all the given PDFs, in order."""
    out = pdfium.PdfDocument.new()
    for data in pdfs:
        source = pdfium.PdfDocument(data)
        out.import_pages(source)
        source.close()
    buffer = io.BytesIO()
    out.save(buffer)
    out.close()
    return buffer.getvalue()


def _outcomes(reports: list[PageReport]) -> list[tuple[int, str]]:
    return [(r.number, r.outcome) for r in reports]


def test_a_too_large_pdf_page_is_refused_alone_and_the_rest_of_the_file_captured(form_samples) -> None:
    values = form_samples[0][0]
    form = render_form_pdf(latest("application_form"), values)
    huge = one_page_pdf(media_box=b"[0 0 14400 14400]")  # 200 inches square
    data = _joined(form, huge, render_separator_pdf(), form)
    reports: list[PageReport] = []
    documents = capture(decode(data), reports)
    assert [d.pages for d in documents] == [[1], [4]]
    assert _outcomes(reports) == [(1, "document"), (2, "refused"), (3, "separator"), (4, "document")]
    assert "page 2 is 14400x14400 pt, too large to render" in reports[1].reason


def test_a_tiff_stack_lists_every_page_with_what_became_of_it(form_samples, separator_page) -> None:
    blank = np.full_like(separator_page, 250)
    stack = [_shrink(form_samples[1][1]), blank, separator_page, np.full((900, 800), 255, np.uint8)]
    stack[3][300:340, 100:700] = 0  # a page of something else
    data = _tiff([np.asarray(Image.fromarray(p).convert("L")) for p in stack])
    reports: list[PageReport] = []
    capture(decode(data, max_pixels=3_000_000), reports)  # the 200 dpi A4 pages: 3.9 Mpx
    assert _outcomes(reports) == [(1, "refused"), (2, "refused"), (3, "refused"), (4, "document")]
    assert "more than 3,000,000" in reports[0].reason
    reports = []
    capture(decode(data), reports)
    assert _outcomes(reports) == [(1, "document"), (2, "blank"), (3, "separator"), (4, "document")]


def test_a_page_that_stalls_the_reader_is_refused_alone_and_the_next_pages_read(form_samples) -> None:
    form = render_form_pdf(latest("application_form"), form_samples[2][0])
    data = _joined(form, _pdf_strokes(100_000), form)
    reports: list[PageReport] = []
    documents = capture(decode(data, page_seconds=1), reports)
    assert [d.pages for d in documents] == [[1], [3]]
    assert _outcomes(reports) == [(1, "document"), (2, "refused"), (3, "document")]
    assert "page 2 takes more than 1 s" in reports[1].reason


def test_a_file_none_of_whose_pages_can_be_read_is_refused_whole() -> None:
    huge = one_page_pdf(media_box=b"[0 0 14400 14400]")
    with pytest.raises(UnreadableScan, match=r"page 1 is 14400x14400 pt.*\(and 1 more pages refused\)"):
        decode(_joined(huge, huge))


@pytest.mark.parametrize("angle", [-11.0, -3.5, 0.4, 6.0])
def test_the_skew_of_a_page_of_text_is_measured(angle: float) -> None:
    page = letter_page(np.random.default_rng(int(angle * 10) + 500), lines=10)
    image, _ = scan_page(page, np.random.default_rng(1), dpi=200, angle=angle, noise=5, jpeg=80)
    assert skew_angle(image, 200) == pytest.approx(angle, abs=0.15)


def test_a_page_of_no_template_is_straightened_and_turned_upright() -> None:
    turn = 270  # a quarter turn, not a half: the direction of the turn back matters
    clean = letter_page(np.random.default_rng(turn), lines=16)
    image, _ = scan_page(clean, np.random.default_rng(2), dpi=200, angle=turn + 5.0, noise=4)
    reports: list[PageReport] = []
    (document,) = capture([Page(1, image, 200.0)], reports, orientation)
    assert document.type == DocType.other
    assert abs(residual_angle(clean, image)) > 45  # as scanned: not upright
    assert abs(residual_angle(clean, document.images[0])) < 0.3
    assert reports[0].notes == ("straightened by -5.0°", f"turned {360 - turn}° to upright")


def _scanned(page: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lid = int(np.median(page[::50, ::50]))
    return scan_page(page, rng, dpi=150, angle=float(rng.uniform(-3, 3)), noise=3, jpeg=85, lid=lid)[0]


@pytest.mark.parametrize(
    "kind", ["one line", "light on dark", "underexposed letter", "underexposed line", "pencil"]
)
def test_a_page_with_little_faint_or_inverted_content_is_not_taken_for_blank(kind: str) -> None:
    page = _scanned(content(kind, np.random.default_rng(len(kind))), len(kind))
    assert marks_mm2(page, 150) >= BLANK_MARKS_MM2
    reports: list[PageReport] = []
    capture([Page(1, page, 150.0)], reports)
    assert reports[0].outcome == "document"


@pytest.mark.parametrize("kind", ["dusty", "show-through", "dark", "edge", "black"])
def test_a_blank_sheet_as_scanners_give_it_is_blank(kind: str) -> None:
    page = _scanned(blank_page(np.random.default_rng(len(kind)), kind), len(kind))
    reports: list[PageReport] = []
    assert capture([Page(1, page, 150.0)], reports) == []
    assert reports[0].outcome == "blank"


def test_a_born_digital_pdf_keeps_its_words_with_their_places_and_files_them_beside_it(
    tmp_path, form_samples
) -> None:
    from indexing.filing import file_document
    from models import Scan, ScanFile
    from storage.local import LocalStore
    from vocabulary import ScanMode, new_scan_id, utcnow

    values = form_samples[3][0]
    (document,) = capture(decode(render_form_pdf(latest("application_form"), values)))
    layer = document.text_layer()
    words: dict[str, list[float]] = {}
    for word in layer["pages"][0]["words"]:
        words.setdefault(word["text"], word["box"])  # the first: the signature repeats the name below
    box = latest("application_form").field("applicant_name").box
    x0, y0, x1, y1 = words[values["applicant_name"]]  # pdfplumber's word, in mm from the top-left
    assert box.x < x0 < x1 < box.x + box.w and box.y < y0 < y1 < box.y + box.h
    assert "人身保险投保单" in words  # the printed form's own words too: all of it can be searched
    store = LocalStore(tmp_path)
    scan = Scan(
        scan_id=new_scan_id(),
        mode=ScanMode.batch,
        files=[ScanFile(sha256="0" * 64, content_type="application/pdf", size=1)],
        uploaded_by="test",
        uploaded_at=utcnow(),
    )
    record = file_document(store, scan, 1, document, {}, [])
    assert record.text_layer == f"documents/{record.doc_id}/text.json"
    assert json.loads(store.get(record.text_layer)) == layer
