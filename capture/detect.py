"""Find things on a page image: our QR codes, registration marks, ID cards, and whether a page is blank.

Each function takes a page image and returns what it found in that image's pixel coordinates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp

MM_PER_INCH = 25.4
WORK_DPI = 150.0  # detection runs on a copy at about this resolution: QR modules of ~5 px, marks of ~35 px
MAX_WORK_SIDE = 2400


@dataclass(frozen=True)
class Code:
    text: str
    corners: np.ndarray  # (4, 2) float: the code's own top-left, top-right, bottom-right, bottom-left


def grey(image: np.ndarray) -> np.ndarray:
    """Return a single-channel copy of an RGB or grey image."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def work_scale(image: np.ndarray, dpi: float) -> float:
    """Return the factor that brings the image to about WORK_DPI (never above 1)."""
    return min(1.0, WORK_DPI / max(dpi, 1.0), MAX_WORK_SIDE / max(image.shape[:2]))


def shrink(image: np.ndarray, scale: float) -> np.ndarray:
    """Return the image scaled by ``scale`` (if below 1), at least one pixel each way."""
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    if min(height, width) * scale < 1:  # a strip a pixel or two across: OpenCV would make it empty and raise
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def find_codes(gray: np.ndarray, scale: float) -> list[Code]:
    """Return the decoded QR codes on the page, corners in full-resolution pixels."""
    # zxing-cpp, not OpenCV's detector: OpenCV's took 100-180 ms a page here and hung on a partly
    # erased code; zxing-cpp reads the same page in ~6 ms and gives the corners in the code's own order.
    small = shrink(gray, scale)
    codes = []
    for result in zxingcpp.read_barcodes(small, formats=zxingcpp.BarcodeFormat.QRCode, try_rotate=True):
        if not result.valid or not result.text:
            continue
        p = result.position
        corners = [(c.x, c.y) for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)]
        codes.append(Code(result.text, (np.array(corners, dtype=np.float64) + 0.5) / scale - 0.5))
    return codes


def _square_blobs(binary: np.ndarray, min_side: float, max_side: float) -> list[tuple[float, float, float]]:
    """Return (x, y, side) of solid, square dark blobs in an inverted binary image."""
    found = []
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in contours:
        area = cv2.contourArea(contour)
        if area < min_side**2 * 0.8 or area > max_side**2 * 1.2:
            continue
        (cx, cy), (w, h), _ = cv2.minAreaRect(contour)
        if min(w, h) <= 0 or not 0.75 <= w / h <= 1.33 or area / (w * h) < 0.85:
            continue
        m = cv2.moments(contour)
        found.append((m["m10"] / m["m00"], m["m01"] / m["m00"], float(np.sqrt(area))))
    return found


def find_mark_near(gray: np.ndarray, center: np.ndarray, side: float) -> np.ndarray | None:
    """Return the centre of the solid square mark of about side pixels nearest to centre, or None."""
    radius = int(side * 2.5)
    cx, cy = int(round(center[0])), int(round(center[1]))
    x0, y0 = max(0, cx - radius), max(0, cy - radius)
    window = gray[y0 : cy + radius, x0 : cx + radius]
    if window.size == 0 or min(window.shape) < side:
        return None
    _, binary = cv2.threshold(window, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    blobs = _square_blobs(binary, side * 0.65, side * 1.4)
    if not blobs:
        return None
    x, y, _ = min(blobs, key=lambda b: (b[0] + x0 - center[0]) ** 2 + (b[1] + y0 - center[1]) ** 2)
    point = np.array([x + x0, y + y0])
    return point if np.linalg.norm(point - center) < radius else None


def find_mark_quads(gray: np.ndarray, scale: float, aspect: float) -> list[np.ndarray]:
    """Return candidate sets of four corner marks (full-resolution centres, clockwise from top-left),
    the most likely first: the largest solid squares whose rectangle has the template's aspect ratio."""
    small = shrink(gray, scale)
    _, binary = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    short = min(small.shape)
    blobs = sorted(_square_blobs(binary, short * 0.008, short * 0.06), key=lambda b: -b[2])[:10]
    quads = []
    for combo in itertools.combinations(blobs, 4):
        sides = [b[2] for b in combo]
        if max(sides) > 1.35 * min(sides):
            continue
        points = order_clockwise(np.array([(b[0], b[1]) for b in combo]))
        w = (np.linalg.norm(points[1] - points[0]) + np.linalg.norm(points[2] - points[3])) / 2
        h = (np.linalg.norm(points[3] - points[0]) + np.linalg.norm(points[2] - points[1])) / 2
        ratio = min(w, h) / max(w, h)
        if abs(ratio - min(aspect, 1 / aspect)) > 0.08 or max(w, h) < short * 0.5:
            continue
        quads.append((w * h, points / scale))
    return [q for _, q in sorted(quads, key=lambda q: -q[0])][:3]


def order_clockwise(points: np.ndarray) -> np.ndarray:
    """Return four points ordered clockwise (in image coordinates) starting from the top-left-most."""
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    ordered = points[np.argsort(angles)]  # clockwise on screen, since y grows downwards
    start = int(np.argmin(ordered.sum(axis=1)))
    return np.roll(ordered, -start, axis=0)


def bed_level(image: np.ndarray) -> np.ndarray:
    """Return the median colour of the outer frame of the image: the scanner bed or the desk."""
    h, w = image.shape[:2]
    m = max(2, int(min(h, w) * 0.015))
    frame = np.concatenate(
        [image[:m].reshape(-1, *image.shape[2:]), image[-m:].reshape(-1, *image.shape[2:]),
         image[:, :m].reshape(-1, *image.shape[2:]), image[:, -m:].reshape(-1, *image.shape[2:])]
    )  # fmt: skip
    return np.median(frame, axis=0)


def find_cards(image: np.ndarray, scale: float) -> list[np.ndarray]:
    """Return the quadrilaterals (full-resolution, clockwise from top-left) of ID-card-shaped regions
    that differ from the bed by their tint or, failing that, their brightness."""
    small = cv2.GaussianBlur(shrink(image, scale), (5, 5), 0)
    masks = []
    if small.ndim == 3:
        r, g, b = cv2.split(small)
        chroma = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
        tinted = chroma > 14  # the card's blue-green against a grey bed or desk
        bed = bed_level(small)
        dr, dg, db = (cv2.absdiff(c, float(level)) for c, level in zip((r, g, b), bed, strict=True))
        # Tint or brightness gives the sharpest outline (JPEG keeps colour at half resolution); tint
        # alone is the fallback for a light desk under uneven light, whose bright side differs from its
        # own median more than the card does and swallows the card's outline.
        masks += [tinted | (cv2.max(cv2.max(dr, dg), db) > 24), tinted]
    else:
        masks.append(np.abs(small.astype(np.int16) - int(bed_level(small))) > 18)
    for mask in masks:
        quads = _card_outlines(mask.astype(np.uint8) * 255)
        if quads:
            return [(q + 0.5) / scale - 0.5 for q in quads]
    return []


def _card_outlines(mask: np.ndarray) -> list[np.ndarray]:
    """Return the card-shaped outlines in a mask, clockwise from top-left, in mask pixels."""
    k = max(3, int(min(mask.shape) * 0.008) | 1)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    quads = []
    short = min(mask.shape)
    for contour in contours:
        area = cv2.contourArea(contour)
        hull = cv2.contourArea(cv2.convexHull(contour))
        # A card partly off the glass is cut by the image's edge: its outline is no longer its own
        # there, so it is judged by the sides it still has (its corners from the lines fitted to them).
        cut = _touches_edge(contour, mask.shape)
        if area < (short * 0.1) ** 2 or (area / max(hull, 1.0) < 0.92 and not cut):
            continue
        approx = cv2.approxPolyDP(contour, 0.02 * cv2.arcLength(contour, True), True)
        if len(approx) == 4 and cv2.isContourConvex(approx) and not cut:
            corners = approx.reshape(4, 2).astype(np.float64)
        else:
            corners = cv2.boxPoints(cv2.minAreaRect(contour)).astype(np.float64)
        corners = _fit_edges(contour.reshape(-1, 2).astype(np.float64), order_clockwise(corners))
        # The shape test runs on the fitted quadrilateral: a card photographed at a slant is a
        # trapezoid, which fills too little of its bounding rectangle for a rectangle test.
        side = [np.linalg.norm(corners[(i + 1) % 4] - corners[i]) for i in range(4)]
        width, height = (side[0] + side[2]) / 2, (side[1] + side[3]) / 2
        ratio = max(width, height) / max(min(width, height), 1.0)
        if 1.30 <= ratio <= 1.90 and max(width, height) >= short * 0.15:
            quads.append(corners)
    return sorted(quads, key=lambda q: (q[:, 1].min(), q[:, 0].min()))


def _touches_edge(contour: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Return whether an outline runs along the image's edge (2 px or closer)."""
    points = contour.reshape(-1, 2)
    h, w = shape[:2]
    return bool(((points <= 1) | (points[:, :1] >= w - 2) | (points[:, 1:] >= h - 2)).any())


def _fit_edges(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Return the corners where straight lines fitted to each side of the outline meet: sub-pixel
    corners, where the polygon's own vertices sit on the outline's rounded (blurred) corners."""
    lines = []
    for i in range(4):
        a, b = corners[i], corners[(i + 1) % 4]
        direction = (b - a) / (np.linalg.norm(b - a) or 1.0)
        along = (points - a) @ direction
        across = np.abs((points - a) @ np.array([-direction[1], direction[0]]))
        length = np.linalg.norm(b - a)
        # The middle 70 % of each side, near the side: clear of the rounded corners.
        side = points[(along > 0.15 * length) & (along < 0.85 * length) & (across < 0.05 * length + 2)]
        if len(side) < 10:
            return corners
        vx, vy, x0, y0 = cv2.fitLine(side.astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0], dtype=np.float64), np.array([vx, vy], dtype=np.float64)))
    refined = []
    for i in range(4):
        (p1, d1), (p2, d2) = lines[i - 1], lines[i]
        matrix = np.array([d1, -d2]).T
        if abs(np.linalg.det(matrix)) < 1e-6:
            return corners
        t = np.linalg.solve(matrix, p2 - p1)
        refined.append(p1 + t[0] * d1)
    return np.array(refined)


BLANK_DPI = 100.0  # 10 pt strokes are still 1-2 px here; a speck of dust is one
BLANK_MARGIN = 0.03  # of each side, left out: the scanner's edge shadow, a punched hole's rim
BACKGROUND_MM = 8.0  # the paper's own level is the median over this: wider than any stroke
MARK_CONTRAST = 0.2  # a mark differs from the paper by this share of the brighter of the two
MIN_MARK_LEVELS = 12  # and by at least this many grey levels, and five times the paper's noise
MIN_SPECK_MM2 = 0.3  # dust, a dropout: a connected mark smaller than this does not count
EDGE_LINE = (20.0, 3.0)  # a straight mark longer than this (mm), or cut by the margin, and thinner than
# this (mm) is the shadow of the paper's edge or a fold, not content (a signature or a line of text is
# taller)


def marks_mm2(gray: np.ndarray, dpi: float) -> float:
    """Return the area (mm²) of the page's marks: connected strokes that stand out from the paper around
    them, darker or lighter, by MARK_CONTRAST of the brighter (so an underexposed page at grey 50 and
    white text on a black page count, and the back's text showing through the paper does not)."""
    scale = min(1.0, BLANK_DPI / max(dpi, 1.0))
    small = shrink(gray, scale)
    h, w = small.shape
    my, mx = int(h * BLANK_MARGIN), int(w * BLANK_MARGIN)
    small = small[my : h - my, mx : w - mx] if h > 2 * my and w > 2 * mx else small
    if small.size == 0:
        return 0.0
    k = int(BACKGROUND_MM / MM_PER_INCH * dpi * scale) | 1
    if min(small.shape) > k:
        background = cv2.medianBlur(small, k) if k <= 255 else np.full_like(small, int(np.median(small)))
    else:
        background = np.full_like(small, int(np.median(small)))
    diff = cv2.absdiff(small, background)
    noise = 1.4826 * float(np.median(diff))
    brighter = cv2.max(small, background).astype(np.float32)
    mask = (diff > max(MIN_MARK_LEVELS, 5 * noise)) & (diff > MARK_CONTRAST * brighter)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    mm_per_px = MM_PER_INCH / (dpi * scale)
    areas = stats[1:count, cv2.CC_STAT_AREA] * mm_per_px**2
    counted = areas >= MIN_SPECK_MM2
    for index in np.nonzero(counted)[0]:
        x, y, w, h = stats[index + 1, :4]
        edge = x == 0 or y == 0 or x + w == mask.shape[1] or y + h == mask.shape[0]
        if (edge or max(w, h) * mm_per_px > EDGE_LINE[0]) and _straight_and_thin(
            labels[y : y + h, x : x + w] == index + 1, mm_per_px
        ):
            counted[index] = False
    return float(areas[counted].sum())


def _straight_and_thin(component: np.ndarray, mm_per_px: float) -> bool:
    """Return whether a mark is a straight line thinner than EDGE_LINE[1] mm, at any angle."""
    points = cv2.findNonZero(component.astype(np.uint8))
    (_, _), (w, h), _ = cv2.minAreaRect(points)
    return min(w, h) * mm_per_px < EDGE_LINE[1]
