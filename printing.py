"""What every printed page here shares: the CJK print font (found on disk, registered with reportlab) and
the QR code drawn as filled squares. The forms, separator sheets and ID cards (capture/render.py), the
e-policies (esign/render.py) and the print check (ocr/printed.py) all use these, so none imports another.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path

from reportlab.graphics.barcode.qrencoder import QRCode, QRErrorCorrectLevel
from reportlab.lib import colors
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont, TTFontFace
from reportlab.pdfgen.canvas import Canvas

# A TrueType font that is embedded (as a subset) in every PDF: a non-embedded CID font such as
# STSong-Light renders blank in viewers and rasterisers that lack Asian font packs.
FONT_CANDIDATES = (
    (Path("/usr/share/fonts/truetype/arphic/uming.ttc"), 0),
    (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), 0),
)
FONT_NAME = "ImagingCJK"
# Common CJK faces Debian ships, by the name `imaging samples --font` and the benchmarks take: forms
# filled by other systems print their values in faces like these (ocr/printed.py learns which from the
# page). "uming" is the face our own forms and cards are printed in (FONT_CANDIDATES). Packages:
# fonts-arphic-uming, fonts-arphic-ukai, fonts-wqy-zenhei, fonts-wqy-microhei, fonts-noto-cjk.
FACES: dict[str, tuple[Path, int]] = {
    "uming": (Path("/usr/share/fonts/truetype/arphic/uming.ttc"), 0),  # AR PL UMing CN (Ming, serif)
    "ukai": (Path("/usr/share/fonts/truetype/arphic/ukai.ttc"), 0),  # AR PL UKai CN (Kai, brush)
    "zenhei": (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), 0),  # WenQuanYi Zen Hei (sans)
    "microhei": (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"), 0),  # WenQuanYi Micro Hei
    "noto-sans": (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2),  # Noto Sans CJK SC
    "noto-serif": (Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"), 2),  # Noto Serif CJK SC
}


class FontMissing(RuntimeError):
    """No CJK TrueType font is installed."""


@cache
def font_file(face: str | None = None) -> tuple[Path, int]:
    """Return the CJK font file and its subfont index: the print font, or one of FACES by name."""
    if face is not None:
        if face not in FACES:
            raise FontMissing(f"unknown face {face!r}: one of {', '.join(FACES)}")
        path, index = FACES[face]
        if not path.exists():
            raise FontMissing(f"face {face!r} is not installed ({path}): see printing.FACES for its package")
        return path, index
    for path, index in FONT_CANDIDATES:
        if path.exists():
            return path, index
    raise FontMissing("no CJK font: install fonts-arphic-uming (make run and make test do)")


def installed_faces() -> list[str]:
    """Return the names of the FACES installed on this machine."""
    return [name for name, (path, _) in FACES.items() if path.exists()]


class Kept(OrderedDict):
    """The last few values made, by key (least recently used goes first); safe to share between threads."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size, self.lock = size, threading.Lock()

    def get_or_make(self, key, make):
        with self.lock:
            if key in self:
                self.move_to_end(key)
                return self[key]
        value = make()
        with self.lock:
            self[key] = value
            if len(self) > self.size:
                self.popitem(last=False)
        return value


class _FlateOnce(pdfdoc.PDFStreamFilterZCompress):
    """Flate, remembering the last font programs compressed: the same subset, the same bytes, once."""

    def __init__(self) -> None:
        self.kept = Kept(32)

    def encode(self, text):
        return self.kept.get_or_make(text, lambda: super(_FlateOnce, self).encode(text))


class KeptFace(TTFontFace):
    """reportlab's TrueType face, doing once what it would redo for each document: each table of the
    20 MB font is sliced (copied) once instead of at every subset (the 10 MB glyph table twice per
    subset), and the last font subsets made are kept, as made and as compressed: a document whose
    characters fall in the same subsets as an earlier one's (esign/render.py seeds them so) reuses them.
    The bytes written are the same as reportlab's own."""

    def get_table(self, tag):
        tables = self.__dict__.setdefault("_kept_tables", {})
        if tag not in tables:
            tables[tag] = super().get_table(tag)
        return tables[tag]

    def makeSubset(self, subset):  # noqa: N802 (reportlab's name)
        kept = self.__dict__.setdefault("_kept_subsets", Kept(32))
        return kept.get_or_make(tuple(subset), lambda: super(KeptFace, self).makeSubset(subset))

    def addSubsetObjects(self, doc, fontname, subset):  # noqa: N802 (reportlab's name)
        descriptor = super().addSubsetObjects(doc, fontname, subset)
        if doc.compression:  # the font program just added: compressed through the kept filter
            font_file = doc.idToObject[f"fontFile:{self.filename}({fontname})"]
            font_file.filters = [_FLATE_ONCE]
        return descriptor


_FLATE_ONCE = _FlateOnce()


@cache
def cjk_font() -> str:
    """Return the name of the CJK TrueType font, registered with reportlab (embedded as a subset)."""
    path, index = font_file()
    font = TTFont(FONT_NAME, str(path), subfontIndex=index)
    font.face.__class__ = KeptFace  # the parsed face, with the memory above (a subclass adding methods)
    pdfmetrics.registerFont(font)
    return FONT_NAME


def group_card_number(number: str) -> str:
    """Return a bank card or account number as cards and forms print it: groups of four digits."""
    digits = number.replace(" ", "").strip()
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def draw_qr(canvas: Canvas, payload: str, x: float, y: float, size: float, mask: int | None = None) -> None:
    """Draw payload as a QR code, size points square, its lower left corner at (x, y) points.

    Error correction M; one path of filled squares, a few ms where reportlab's QR widget cost ~20 ms a
    page. The fill colour is left black. mask names one of the eight mask patterns (ISO/IEC 18004 7.8.2;
    any decodes): reportlab otherwise builds the symbol with each of the eight to score them, 12 of the
    14 ms a QR code costs, which matters for a code printed crisp by a PDF (the e-policy) and little for
    one that is printed and scanned back (the forms keep the best-scoring mask).
    """
    qr = QRCode(None, QRErrorCorrectLevel.M)
    qr.addData(payload)
    if mask is None:
        qr.make()
    else:
        qr.version = qr.calculate_version()
        qr.makeImpl(False, mask)
    n = qr.getModuleCount()
    cell = size / n
    canvas.setFillColor(colors.black)
    path = canvas.beginPath()
    for row in range(n):
        for col in range(n):
            if qr.isDark(row, col):
                path.rect(x + col * cell, y + size - (row + 1) * cell, cell, cell)
    canvas.drawPath(path, stroke=0, fill=1)
