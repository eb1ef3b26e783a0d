"""The field with its surroundings: a strip of the rectified page across its whole width, the field's box
marked, so a keyer sees which line of the form (whose name, which number) the field image is cut from."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from capture.decode import encode_png
from capture.templates import MM_PER_INCH, Box

STRIP_CONTEXT_MM = 14.0  # above and below the field: the line before and after it on the form
STRIP_DPI = 150.0  # half the page's 300 dpi: enough to read the form's print, a quarter of the bytes
MARK_RGB = (200, 0, 0)  # dark red: a contrast of about 6:1 on white paper


def field_strip(page: np.ndarray, box: Box, page_dpi: float = 300.0) -> np.ndarray:
    """Return an RGB strip of the rectified page around ``box`` (millimetres on the template), at
    STRIP_DPI, with the box outlined in MARK_RGB."""
    k = page_dpi / MM_PER_INCH
    height = page.shape[0]
    y0 = max(0, round((box.y - STRIP_CONTEXT_MM) * k))
    y1 = min(height, round((box.y + box.h + STRIP_CONTEXT_MM) * k))
    if y1 - y0 < 2:  # a page smaller than its template says (never from capture): the whole page, unmarked
        y0, y1 = 0, height
    strip = page[y0:y1]
    strip = cv2.cvtColor(strip, cv2.COLOR_GRAY2RGB) if strip.ndim == 2 else strip.copy()
    scale = STRIP_DPI / page_dpi
    strip = cv2.resize(strip, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ks = STRIP_DPI / MM_PER_INCH
    top_left = (round(box.x * ks), round(box.y * ks) - round(y0 * scale))
    bottom_right = (round((box.x + box.w) * ks), round((box.y + box.h) * ks) - round(y0 * scale))
    cv2.rectangle(strip, top_left, bottom_right, MARK_RGB, thickness=3)
    return np.ascontiguousarray(strip)


def field_strip_png(page_png: bytes, box: Box) -> bytes:
    """Return ``field_strip`` of a stored page image (PNG bytes) as PNG bytes."""
    with Image.open(io.BytesIO(page_png)) as image:
        page = np.asarray(image.convert("RGB"))
    return encode_png(field_strip(page, box), STRIP_DPI)
