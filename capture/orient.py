"""orient: a page of no template turned upright and straightened. Forms and cards need none of this (their
code, marks or outline give their pose); other pages are stored as people will read them.

deskew: the angle (within MAX_SKEW) at which the page's ink falls into the sharpest rows and columns,
found on a small copy from the ink's coordinates (no image rotated per angle), then the page rotated
back. upright: which quarter turn the deskewed page needs, asked of an orientation finder (tesseract's
orientation detection through ocr/tesseract.py, given by the caller: capture knows nothing of OCR).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from capture.detect import grey, shrink

# Says which quarter turn (degrees counter-clockwise: 0, 90, 180, 270) makes a grey page (at the dpi
# given) upright, or None when it cannot tell.
Orientation = Callable[[np.ndarray, float], int | None]

MAX_SKEW = 15.0  # degrees either way; a page fed further askew is a quarter turn plus this
SKEW_DPI = 60.0  # text lines of 10-12 pt are 8-10 px apart here: enough to tell rows from gaps
MIN_SKEW = 0.1  # degrees below which the page is left as it is (no resampling)
MIN_INK_POINTS = 200  # fewer dark pixels than this at SKEW_DPI: nothing to straighten by


def _ink_points(gray: np.ndarray, dpi: float) -> tuple[np.ndarray, float]:
    """Return the coordinates (x, y; float) of the ink at about SKEW_DPI, and that copy's scale."""
    scale = min(1.0, SKEW_DPI / max(dpi, 1.0))
    small = shrink(gray, scale)
    background = cv2.medianBlur(small, 31) if min(small.shape) > 31 else np.full_like(small, np.median(small))
    contrast = cv2.absdiff(small, background)
    ys, xs = np.nonzero(contrast > max(40, 0.35 * float(np.percentile(background, 50))))
    return np.stack([xs, ys], axis=1).astype(np.float32), scale


def _sharpness(points: np.ndarray, angle: float) -> float:
    """Return how sharply the points fall into rows and columns when turned by angle degrees."""
    theta = np.deg2rad(angle)
    c, s = np.cos(theta), np.sin(theta)
    rows = points[:, 1] * c - points[:, 0] * s
    cols = points[:, 0] * c + points[:, 1] * s
    score = 0.0
    for values in (rows, cols):
        counts = np.bincount((values - values.min()).astype(np.int64))
        score += float((counts.astype(np.float64) ** 2).sum())
    return score


def skew_angle(gray: np.ndarray, dpi: float) -> float:
    """Return the page's skew in degrees (counter-clockwise positive), 0.0 when it cannot be told."""
    points, _ = _ink_points(gray, dpi)
    if len(points) < MIN_INK_POINTS:
        return 0.0
    if len(points) > 60_000:  # a dense page: a sample sets the angle as well
        points = points[np.random.default_rng(0).choice(len(points), 60_000, replace=False)]
    coarse = np.arange(-MAX_SKEW, MAX_SKEW + 0.01, 0.5)
    best = max(coarse, key=lambda a: _sharpness(points, a))
    fine = np.arange(best - 0.5, best + 0.51, 0.05)
    return -float(max(fine, key=lambda a: _sharpness(points, a)))


def paper_colour(image: np.ndarray) -> tuple[int, ...] | int:
    """Return the page's commonest light colour (the paper), to fill the corners a rotation uncovers."""
    small = shrink(image, 0.1)
    level = np.median(small.reshape(-1, *image.shape[2:]), axis=0)
    return tuple(int(v) for v in level) if image.ndim == 3 else int(level)


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """Return the image rotated by angle degrees (counter-clockwise) on a canvas that holds all of it."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    width, height = int(round(w * cos + h * sin)), int(round(w * sin + h * cos))
    matrix[:, 2] += np.array([width / 2, height / 2]) - np.array([w / 2, h / 2])
    return cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=paper_colour(image)
    )


def straighten(
    image: np.ndarray, dpi: float, orientation: Orientation | None
) -> tuple[np.ndarray, list[str]]:
    """Return the page deskewed and turned upright, and what was done to it (for the scan's page list)."""
    notes = []
    if min(image.shape[:2]) < 32:
        return image, notes
    angle = skew_angle(grey(image), dpi)
    if abs(angle) >= MIN_SKEW:
        image = rotate(image, -angle)
        notes.append(f"straightened by {-angle:+.1f}°")
    turn = orientation(grey(image), dpi) if orientation is not None else None
    if turn:
        image = np.ascontiguousarray(np.rot90(image, k=turn // 90))
        notes.append(f"turned {turn}° to upright")
    return image, notes
