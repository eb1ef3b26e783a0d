"""capture: pages in, documents out. Reads as the counter's process:

for each page: find its codes -> separator? form? ID cards? blank? other
forms:  align (QR code + marks, or marks + layout) -> rectify -> quality gate -> crop fields
cards:  find each card's outline -> which side, which way up -> rectify -> crop fields
stack:  split into documents at separator sheets and at the first page of each form
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from capture.align import (
    OUTPUT_DPI,
    Alignment,
    align_by_code,
    align_by_layout,
    align_card,
    card_thumbnail,
    check_quality,
    crop_fields,
    rectify,
)
from capture.decode import Page
from capture.detect import find_cards, find_codes, grey, marks_mm2, work_scale
from capture.model import Box, DocType, Document, PageReport
from capture.orient import Orientation, straighten
from capture.render import parse_payload
from capture.templates import MM_PER_INCH, Template, templates

CARD_MIN_SCORE = 0.4
# Marks (mm², capture/detect.py marks_mm2) below which a page is blank: one printed 10 pt character is
# 3-5 mm², a short printed line 30-100, a filled A4 form ~3000; blank sheets with dust, show-through,
# an edge shadow or scanner noise measured 0-1 (bench/blank_bench.py).
BLANK_MARKS_MM2 = 4.0
# Page images one document may hold while its pages come in, ~10 A4 colour pages at 300 dpi: a run of
# other pages longer than that goes on in a new document, so a 500-page stack of them (or a 3 KB PDF
# repeating one page 500 times) cannot hold 13 GB. The worker holds two: one filling, one being filed.
MAX_DOCUMENT_BYTES = 256 << 20


@dataclass
class PageOutcome:
    """What one source page turned out to be, before pages are grouped into documents."""

    number: int
    kind: str  # "form", "separator", "cards", "blank", "other", "refused"
    documents: list[Document] = field(default_factory=list)
    form_page: int = 0  # for forms: which page of the form this is
    reason: str | None = None  # why a page was refused
    notes: tuple[str, ...] = ()  # what capture did to the page
    passed_over: tuple[str, ...] = ()  # card-shaped regions not taken for cards, with their place
    passed_over_boxes: tuple[Box, ...] = ()  # the same regions' x, y, w, h in the page's pixels
    size: tuple[int, int] | None = None  # the page's width and height in pixels, the boxes' frame

    def report(self) -> PageReport:
        """Return what became of the page, as the scan lists it."""
        outcome = "document" if self.documents else self.kind
        return PageReport(
            self.number, outcome, self.reason, self.notes, self.passed_over, self.passed_over_boxes, self.size
        )


def _forms() -> list[Template]:
    return [t for t in templates().values() if t.qr is not None]


CARD_SIDES = frozenset({DocType.idcard_front, DocType.idcard_back, DocType.bank_card})  # ID-1 cards on a bed


def _card_sides() -> list[Template]:
    return [t for t in templates().values() if t.type in CARD_SIDES]


def preload() -> None:
    """Draw the card sides' blank specimens that cards are matched against (about 0.1 s), once in this
    process: a worker does it before it forks a child per job, which would otherwise draw them again."""
    for side in _card_sides():
        card_thumbnail(side)


def _document(page: Page, alignment: Alignment, application_no: str | None = None) -> Document:
    """Return the document an alignment finds on the page: rectified, judged and cut into fields."""
    template = alignment.template
    rectified = rectify(page.image, alignment.transform, template.width_mm, template.height_mm, OUTPUT_DPI)
    # A born-digital page's words are in page millimetres: they fit a form's boxes, not a card's.
    words = page.words if alignment.via != "outline" else None
    fields, regions = crop_fields(rectified, alignment, page.number, words)
    problems = check_quality(page.image.shape, alignment, rectified)
    return Document(
        DocType(template.type),
        [page.number],
        template,
        fields,
        regions,
        [rectified],
        problems,
        application_no or None,
        {page.number: page.words} if page.words and alignment.via != "outline" else {},
    )


def capture_page(page: Page, orientation: Orientation | None = None) -> PageOutcome:
    """Return what the page is and the documents (or the part of a form) on it; a page of no template
    deskewed and, when an orientation finder is given, turned upright."""
    if page.refused is not None:
        return PageOutcome(page.number, "refused", reason=page.refused)
    gray = grey(page.image)
    scale = work_scale(gray, page.dpi)
    forms = {t.key: t for t in _forms()}
    for code in find_codes(gray, scale):
        payload = parse_payload(code.text)
        if payload is None:
            continue
        if payload["type"] == "separator":
            return PageOutcome(page.number, "separator")
        template = forms.get(f"{payload['type']}/{payload['version']}")
        if template is not None:
            document = _document(page, align_by_code(gray, template, code), payload["application_no"])
            return PageOutcome(page.number, "form", [document], int(payload["page"]))
    # A card-shaped region is a card only if it looks like one side of the card: a white sheet
    # photographed on a desk has the shape too (60 specimen cards scored >= 0.84, such sheets ~0.04).
    aligned = [(q, align_card(gray, q, _card_sides())) for q in find_cards(page.image, scale)]
    cards = [a for _, a in aligned if a.score >= CARD_MIN_SCORE]
    passed = _passed_over(page, [(q, a.score) for q, a in aligned if a.score < CARD_MIN_SCORE])
    if cards:
        documents = [_document(page, alignment) for alignment in cards]
        return PageOutcome(page.number, "cards", documents, **passed)
    if marks_mm2(gray, page.dpi) < BLANK_MARKS_MM2:
        return PageOutcome(page.number, "blank", **passed)
    alignment = align_by_layout(gray, scale, list(forms.values()))
    if alignment is not None:
        return PageOutcome(page.number, "form", [_document(page, alignment)], 1, **passed)
    # A born-digital page is upright and straight as made; its words are in its own millimetres.
    image, notes = (page.image, []) if page.words else straighten(page.image, page.dpi, orientation)
    document = Document(DocType.other, [page.number], images=[image])
    if page.words:
        document.words[page.number] = page.words
    return PageOutcome(page.number, "other", [document], notes=tuple(notes), **passed)


def _passed_over(page: Page, regions: list[tuple[np.ndarray, float]]) -> dict:
    """Return what the page's outcome says of the card-shaped regions not taken for cards: for each, where
    it is and why in words, and its box in the page's pixels (the counter outlines it on its preview)."""
    if not regions:
        return {}
    words, boxes = [], []
    for quad, score in regions:
        x, y = quad.min(axis=0) * MM_PER_INCH / page.dpi
        w, h = np.ptp(quad, axis=0) * MM_PER_INCH / page.dpi
        words.append(
            f"a card-shaped region at x {x:.0f} mm, y {y:.0f} mm ({w:.0f} x {h:.0f} mm) is not an ID card "
            f"side (match {score:.2f} < {CARD_MIN_SCORE}): if it is a card, scan it again alone, flat on "
            "the glass"
        )
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        boxes.append((int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
    height, width = page.image.shape[:2]
    return {"passed_over": tuple(words), "passed_over_boxes": tuple(boxes), "size": (width, height)}


def split_documents(
    outcomes: Iterable[PageOutcome], reports: list[PageReport] | None = None
) -> Iterator[Document]:
    """Yield the documents of a stack, each as soon as it is complete: a separator ends one, a form's
    first page starts one, blank and refused pages are left out (the original keeps them), a run of
    other pages is one document (up to MAX_DOCUMENT_BYTES of page images). ``reports`` gains what became
    of each page, in order, as it is read."""
    open_doc: Document | None = None
    for outcome in outcomes:
        if reports is not None:
            reports.append(outcome.report())
        if outcome.kind in {"blank", "refused"}:
            continue
        if outcome.kind == "form":
            part = outcome.documents[0]
            if (
                open_doc is not None
                and open_doc.template_key == part.template_key
                and outcome.form_page == len(open_doc.pages) + 1 > 1
                and _fits(open_doc, part)
            ):
                open_doc.pages += part.pages
                open_doc.images += part.images
                open_doc.fields.update(part.fields)
                open_doc.regions.update(part.regions)
                open_doc.problems += part.problems
                open_doc.words.update(part.words)
                continue
        elif (
            outcome.kind == "other"
            and open_doc is not None
            and open_doc.type == DocType.other
            and _fits(open_doc, outcome.documents[0])
        ):
            open_doc.pages += outcome.documents[0].pages
            open_doc.images += outcome.documents[0].images
            open_doc.words.update(outcome.documents[0].words)
            continue
        if open_doc is not None:
            yield open_doc
            open_doc = None
        if outcome.kind in {"form", "other"}:
            open_doc = outcome.documents[0]
        elif outcome.kind == "cards":
            yield from outcome.documents
    if open_doc is not None:
        yield open_doc


def _fits(document: Document, part: Document) -> bool:
    """Return whether the document can take the part's pages within MAX_DOCUMENT_BYTES."""
    return sum(image.nbytes for image in document.images + part.images) <= MAX_DOCUMENT_BYTES


def capture_stream(
    pages: Iterable[Page], reports: list[PageReport] | None = None, orientation: Orientation | None = None
) -> Iterator[Document]:
    """Yield the documents of an upload as its pages come in: memory holds one document, not the stack.
    ``reports`` gains what became of each page; ``orientation`` turns pages of no template upright
    (ocr.tesseract.orientation; without it they are only deskewed)."""
    return split_documents((capture_page(page, orientation) for page in pages), reports)


def capture(
    pages: Iterable[Page], reports: list[PageReport] | None = None, orientation: Orientation | None = None
) -> list[Document]:
    """Return the documents found on the pages of one upload (``reports`` gains what became of each)."""
    return list(capture_stream(pages, reports, orientation))
