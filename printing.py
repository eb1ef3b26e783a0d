"""What every printed page here shares: the CJK print font (found on disk, registered with reportlab) and
the QR code drawn as filled squares. The forms, separator sheets and ID cards (capture/render.py), the
e-policies (esign/render.py) and the print check (ocr/printed.py) all use these, so none imports another.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from reportlab.graphics.barcode.qrencoder import QRCode, QRErrorCorrectLevel
from reportlab.lib import colors
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

# A TrueType font that is embedded (as a subset) in every PDF: a non-embedded CID font such as
# STSong-Light renders blank in viewers and rasterisers that lack Asian font packs.
FONT_CANDIDATES = (
    (Path("/usr/share/fonts/truetype/arphic/uming.ttc"), 0),
    (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), 0),
)
FONT_NAME = "ImagingCJK"


class FontMissing(RuntimeError):
    """No CJK TrueType font is installed."""


@cache
def font_file() -> tuple[Path, int]:
    """Return the CJK font file and its subfont index."""
    for path, index in FONT_CANDIDATES:
        if path.exists():
            return path, index
    raise FontMissing("no CJK font: install fonts-arphic-uming (make run and make test do)")


@cache
def cjk_font() -> str:
    """Return the name of the CJK TrueType font, registered with reportlab (embedded as a subset)."""
    path, index = font_file()
    pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=index))
    return FONT_NAME


def group_card_number(number: str) -> str:
    """Return a bank card or account number as cards and forms print it: groups of four digits."""
    digits = number.replace(" ", "").strip()
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def draw_qr(canvas: Canvas, payload: str, x: float, y: float, size: float) -> None:
    """Draw payload as a QR code, size points square, its lower left corner at (x, y) points.

    Error correction M; one path of filled squares, a few ms where reportlab's QR widget cost ~20 ms a
    page. The fill colour is left black.
    """
    qr = QRCode(None, QRErrorCorrectLevel.M)
    qr.addData(payload)
    qr.make()
    n = qr.getModuleCount()
    cell = size / n
    canvas.setFillColor(colors.black)
    path = canvas.beginPath()
    for row in range(n):
        for col in range(n):
            if qr.isDark(row, col):
                path.rect(x + col * cell, y + size - (row + 1) * cell, cell, cell)
    canvas.drawPath(path, stroke=0, fill=1)
