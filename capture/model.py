"""What capture produces: documents with their page images and one image per field."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from capture.templates import Template
from vocabulary import DocType

Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]
Box = tuple[int, int, int, int]  # x, y, w, h in a source page image


@dataclass(frozen=True)
class FieldImage:
    """One field (or image region such as a signature) cut from a rectified page."""

    name: str
    kind: str | None  # the template's field kind; None for an image region
    page: int  # source page number, 1-based
    box: tuple[int, int, int, int]  # x, y, w, h in the source page image (bounding box of quad)
    quad: Quad  # the field's corners in the source page image: top-left, top-right, bottom-right, bottom-left
    image: np.ndarray  # the crop from the rectified page, with a small margin
    text: str | None = None  # read from a born-digital PDF's text layer: no OCR needed
    inset: int = 0  # px to take off each side of `image` for OCR: the margin and the printed box line
    # A choice field's tick boxes: each option's label and the share of its inside that is inked.
    marks: tuple[tuple[str, float], ...] = ()

    @property
    def ocr_image(self) -> np.ndarray:
        """Return the part of the field image OCR reads: inside the printed box, its border cut away."""
        i = self.inset
        h, w = self.image.shape[:2]
        return self.image[i : h - i, i : w - i] if i and h > 2 * i and w > 2 * i else self.image

    def to_json(self) -> dict:
        out: dict = {
            "box": list(self.box),
            "page": self.page,
            "quad": [[round(x, 1), round(y, 1)] for x, y in self.quad],
        }
        if self.kind:
            out["kind"] = self.kind
        if self.text is not None:
            out["text"] = self.text
        if self.marks:
            out["marks"] = {label: round(fill, 3) for label, fill in self.marks}
        return out


@dataclass(frozen=True)
class PageReport:
    """What became of one source page of an upload: part of a document, a separator, blank, or refused."""

    number: int
    outcome: str  # "document", "separator", "blank", "refused"
    reason: str | None = None  # why a page was refused
    notes: tuple[str, ...] = ()  # what capture did to the page (straightened, turned upright)
    passed_over: tuple[str, ...] = ()  # card-shaped regions not taken for cards, with their place
    passed_over_boxes: tuple[Box, ...] = ()  # the same regions' boxes on the page, in its pixels
    size: tuple[int, int] | None = None  # the page's width and height in pixels, the boxes' frame

    def to_json(self) -> dict:
        out: dict = {"page": self.number, "outcome": self.outcome}
        if self.reason:
            out["reason"] = self.reason
        if self.notes:
            out["notes"] = list(self.notes)
        if self.passed_over:
            out["passed_over"] = list(self.passed_over)
            out["passed_over_boxes"] = [list(box) for box in self.passed_over_boxes]
            out["size"] = list(self.size) if self.size else None
        return out


@dataclass
class Document:
    """One document found in an upload: a form (one or more pages), an ID card side, or other pages."""

    type: DocType
    pages: list[int]
    template: Template | None = None  # the template it was captured with; None for other pages
    fields: dict[str, FieldImage] = field(default_factory=dict)
    regions: dict[str, FieldImage] = field(default_factory=dict)
    images: list[np.ndarray] = field(default_factory=list)  # rectified page (or card) images, in order
    problems: list[str] = field(default_factory=list)  # the quality gate's reasons; empty when fine
    application_no: str | None = None  # from the form's QR code
    # A born-digital PDF's text layer, by source page: words with their boxes in mm from the top-left.
    words: dict[int, list[tuple[str, float, float, float, float]]] = field(default_factory=dict)

    def text_layer(self) -> dict | None:
        """Return the words of the document's born-digital pages as stored beside it, None without any."""
        if not self.words:
            return None
        return {
            "schema": 1,
            "unit": "mm from the page's top-left",
            "pages": [
                {"page": n, "words": [{"text": t, "box": [round(v, 2) for v in box]} for t, *box in words]}
                for n, words in sorted(self.words.items())
            ],
        }

    @property
    def template_key(self) -> str | None:
        """Return the template's key ("type/version"), as records and JSON name it; None without one."""
        return self.template.key if self.template is not None else None

    @property
    def status(self) -> str:
        return "exception" if self.problems else "ok"

    def to_json(self) -> dict:
        out: dict = {"type": str(self.type), "pages": self.pages, "status": self.status}
        if self.template_key:
            out["template"] = self.template_key
        if self.application_no:
            out["application_no"] = self.application_no
        if self.problems:
            out["problems"] = self.problems
        out["fields"] = {name: f.to_json() for name, f in self.fields.items()}
        out["regions"] = {name: r.to_json() for name, r in self.regions.items()}
        return out
