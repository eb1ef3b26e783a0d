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


@cache
def cjk_font() -> str:
    """Return the name of the CJK TrueType font, registered with reportlab (embedded as a subset)."""
    path, index = font_file()
    pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=index))
    return FONT_NAME


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
