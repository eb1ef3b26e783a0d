"""Batch stacks, born-digital PDFs and bad input through decode and capture."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfgen import canvas

from capture.decode import Page, UnreadableScan, decode
from capture.model import DocType
from capture.pipeline import capture
from capture.render import render_form_pdf
from capture.templates import latest
from ocr.choice import MARKED


def _tiff(pages: list[np.ndarray], dpi: int = 200) -> bytes:
    images = [Image.fromarray(p).convert("L") for p in pages]
    out = io.BytesIO()
    images[0].save(
        out,
        format="TIFF",
        save_all=True,
        append_images=images[1:],
        dpi=(dpi, dpi),
        compression="tiff_deflate",
    )
    return out.getvalue()


def _shrink(image: np.ndarray, factor: float = 2 / 3) -> np.ndarray:
    """300 dpi render -> 200 dpi page."""
    pil = Image.fromarray(image)
    return np.asarray(pil.resize((round(pil.width * factor), round(pil.height * factor)), Image.LANCZOS))


def _card_page(card: np.ndarray, at=(400, 500)) -> np.ndarray:
    bed = Image.new("RGB", (1654, 2339), (246, 246, 244))
    bed.paste(Image.fromarray(_shrink(card)), at)
    return np.asarray(bed)


def test_a_stack_is_split_at_separators_and_at_each_form_and_blank_pages_are_dropped(
    form_samples, card_samples, separator_page
) -> None:
    (v1, f1), (v2, f2) = form_samples[:2]
    blank = np.full_like(separator_page, 250)
    other = np.full_like(separator_page, 255)
    other[800:1000, 300:1300] = 0  # a page of something else: a photocopy with a big black block
    stack = [
        _shrink(f1),
        blank,
        _shrink(f2),  # a form's first page starts a new document, with no separator in between
        separator_page,
        _card_page(card_samples[0][1]),
        separator_page,
        other,
        other,
    ]
    documents = capture(decode(_tiff([np.asarray(Image.fromarray(p).convert("L")) for p in stack])))
    summary = [(str(d.type), d.pages) for d in documents]
    assert summary == [
        ("application_form", [1]),
        ("application_form", [3]),
        ("idcard_front", [5]),
        ("other", [7, 8]),
    ]
    assert [d.application_no for d in documents[:2]] == [v1["application_no"], v2["application_no"]]


def test_a_born_digital_pdf_is_read_from_its_text_layer(form_samples) -> None:
    values = form_samples[0][0]
    pages = decode(render_form_pdf(latest("application_form"), values))
    assert pages[0].words  # the text layer came through
    (document,) = capture(pages)
    assert document.type == DocType.application_form and document.status == "ok"
    texts = {name: f.text for name, f in document.fields.items() if not f.marks}
    assert texts == {name: values[name] for name in texts}
    # Tick boxes are read by their marks on the page drawn from the PDF, not from its words.
    ticked = {n: [label for label, fill in f.marks if fill >= MARKED] for n, f in document.fields.items()}
    assert {name: v for name, v in ticked.items() if v} == {
        f.name: [values[f.name]] for f in latest("application_form").fields if f.options
    }


def test_a_scanned_pdf_page_is_rendered_at_the_resolution_of_its_image(form_samples) -> None:
    page = Image.fromarray(_shrink(form_samples[0][1], 0.5))  # 150 dpi scan
    out = io.BytesIO()
    page.save(out, format="PDF", resolution=150)
    (decoded,) = decode(out.getvalue())
    assert decoded.dpi == 150 and decoded.words is None
    assert abs(decoded.image.shape[1] - page.width) <= 2
    (document,) = capture([decoded])
    assert document.type == DocType.application_form


def test_an_encrypted_pdf_is_refused_with_what_to_do() -> None:
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, encrypt=StandardEncryption("user-pw", "owner-pw"))
    c.drawString(100, 700, "secret")
    c.showPage()
    c.save()
    with pytest.raises(UnreadableScan, match="encrypted"):
        decode(out.getvalue())


@pytest.mark.parametrize("limit", ["pixels", "pages"])
def test_configured_limits_are_enforced(limit: str) -> None:
    data = _tiff([np.full((400, 300), 255, np.uint8)] * 3)
    with pytest.raises(UnreadableScan, match="pixels" if limit == "pixels" else "pages"):
        decode(data, max_pixels=100_000) if limit == "pixels" else decode(data, max_pages=2)


def test_a_file_whose_name_lies_is_read_by_what_it_is(tmp_path, form_samples) -> None:
    out = io.BytesIO()
    Image.fromarray(_shrink(form_samples[0][1])).save(out, format="PNG", dpi=(200, 200))
    (page,) = decode(out.getvalue())  # decode never sees the name: a .jpg that is a PNG is a PNG
    assert isinstance(page, Page) and page.dpi == pytest.approx(200, abs=1)
