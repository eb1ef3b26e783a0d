"""Pictures for the people who tune templates: each page with the detected field boxes drawn and labelled."""

from __future__ import annotations

import cv2
import numpy as np

from capture.model import Document

MAX_SIDE = 1800


def draw_boxes(page_image: np.ndarray, page_number: int, documents: list[Document]) -> np.ndarray:
    """Return a copy of the page (downscaled to at most MAX_SIDE px) with every field found on it outlined."""
    scale = min(1.0, MAX_SIDE / max(page_image.shape[:2]))
    canvas = cv2.resize(page_image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if canvas.ndim == 2:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)
    for document in documents:
        colour = (220, 30, 30) if document.problems else (20, 150, 40)
        for name, item in {**document.fields, **document.regions}.items():
            if item.page != page_number:
                continue
            quad = (np.array(item.quad) * scale).round().astype(np.int32)
            cv2.polylines(canvas, [quad], True, colour if item.kind else (30, 80, 220), 2)
            x, y = quad[0]
            cv2.putText(
                canvas, name, (int(x), int(y) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA
            )
    return canvas
