"""print_score: does the field look machine-printed with the text OCR read in it?

The text is drawn again in the forms' print font (the font capture/render.py prints forms and cards
with), stretched over the field's ink, and the two are correlated after a slight blur. Printed fields
scored 0.78-0.97 on generated degraded scans; the same values handwritten (tests/capture/scans.py
`handwrite`) and smudged fields scored below 0.3 (`bench/ocr_bench.py` and the scratch runs behind
ocr/decide.py). A field that does not look printed goes to key-entry however sure OCR is: handwriting
read right today is read wrong tomorrow, and an altered field must be seen by a person.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

DRAW_SIZE = 64  # px: the reference is drawn large, then shrunk onto the field's ink


@cache
def _font() -> ImageFont.FreeTypeFont:
    from capture.render import font_file

    path, index = font_file()
    return ImageFont.truetype(str(path), DRAW_SIZE, index=index)


def _ink(binary: np.ndarray) -> np.ndarray | None:
    ys, xs = np.where(binary < 128)
    if len(ys) == 0:
        return None
    return binary[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def print_score(image: np.ndarray, text: str) -> float:
    """Return how well one line of text, drawn in the print font, matches the field's ink (-1 to 1)."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    _, binary = cv2.threshold(cv2.GaussianBlur(grey, (3, 3), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = _ink(binary)
    if ink is None or not text.strip():
        return 0.0
    canvas = Image.new("L", (DRAW_SIZE * (len(text) + 2), DRAW_SIZE * 2), 255)
    ImageDraw.Draw(canvas).text((DRAW_SIZE // 2, DRAW_SIZE // 2), text, fill=0, font=_font())
    drawn = _ink(np.asarray(canvas))
    if drawn is None:
        return 0.0
    drawn = cv2.resize(drawn, (ink.shape[1], ink.shape[0]), interpolation=cv2.INTER_AREA)
    a = cv2.GaussianBlur(255 - ink.astype(np.float32), (0, 0), 1.5).ravel()
    b = cv2.GaussianBlur(255 - drawn.astype(np.float32), (0, 0), 1.5).ravel()
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
