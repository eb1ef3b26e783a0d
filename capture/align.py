"""align: a homography from template millimetres to page pixels, for forms (QR code and registration
marks, or the marks and layout matching when the code is damaged) and for ID cards (their outline);
rectify and crop_fields apply it; check_quality decides whether the crops can be trusted."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from capture.detect import Code, find_mark_near, find_mark_quads, grey, order_clockwise, shrink
from capture.model import FieldImage
from capture.render import render_card, render_form
from capture.templates import MM_PER_INCH, Box, Template

OUTPUT_DPI = 300.0  # rectified pages and field images
MATCH_DPI = 30.0  # layout matching compares thumbnails at this resolution
FIELD_MARGIN_MM = 1.5
# OCR reads from this far inside a field's box: with the printed box line in the image tesseract read
# nothing at all in most Chinese fields.
OCR_INSET_MM = 0.6
MAX_RESIDUAL_MM = 1.0  # registration points further off than this mean the homography cannot be trusted
MAX_BLUR_MM = 0.30  # edge spread (Gaussian sigma) of the registration marks, measured on the rectified page
MIN_DPI = 150.0
LAYOUT_MIN_SCORE = 0.22  # see align_by_layout
LAYOUT_MIN_MARGIN = 0.10


@dataclass(frozen=True)
class Alignment:
    template: Template
    transform: np.ndarray  # 3x3: template mm -> source page px
    residual_mm: float
    points: int  # registration points the homography rests on
    via: str  # "qr" or "layout"
    score: float = 1.0  # layout similarity, for alignments found without the code


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Return (N, 2) points mapped by a 3x3 homography."""
    return cv2.perspectiveTransform(
        np.asarray(points, dtype=np.float64).reshape(-1, 1, 2), transform
    ).reshape(-1, 2)


def _px_per_mm(transform: np.ndarray, at: tuple[float, float]) -> float:
    a, b = apply(transform, np.array([at, (at[0] + 1.0, at[1])]))
    return float(np.linalg.norm(b - a))


def _fit(template_mm: np.ndarray, page_px: np.ndarray) -> tuple[np.ndarray, float]:
    """Return the least-squares homography and its mean reprojection error in mm."""
    transform, _ = cv2.findHomography(template_mm, page_px, 0)
    error_px = np.linalg.norm(apply(transform, template_mm) - page_px, axis=1).mean()
    return transform, float(error_px / _px_per_mm(transform, tuple(template_mm.mean(axis=0))))


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Return the rotation-scale-shift that best maps src to dst, as a 3x3 matrix."""
    matrix, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def _refine_with_marks(gray: np.ndarray, template: Template, guess: np.ndarray, extra_mm, extra_px):
    """Return (transform, residual, marks found) after finding each registration mark where the guess puts
    it: a first pass from the guess, a second from the fit of what the first found."""
    found: dict[int, np.ndarray] = {}
    for _ in range(2):
        for index, mark in enumerate(template.marks):
            centre = apply(guess, np.array([mark]))[0]
            point = find_mark_near(gray, centre, template.mark_size_mm * _px_per_mm(guess, mark))
            if point is not None:
                found[index] = point
        src = [*extra_mm, *(template.marks[i] for i in found)]
        dst = [*extra_px, *found.values()]
        if len(src) >= 4:
            guess, _ = _fit(np.array(src, dtype=np.float64), np.array(dst, dtype=np.float64))
    transform, residual = _fit(np.array(src, dtype=np.float64), np.array(dst, dtype=np.float64))
    return transform, residual, len(found)


def align_by_code(gray: np.ndarray, template: Template, code: Code) -> Alignment:
    """Return the form's alignment from its QR code's corners, refined by the registration marks."""
    qr_mm = np.array(template.qr.corners(), dtype=np.float64)
    # A similarity from the code extrapolates stably across the page; a homography from four close
    # corners does not (seen: a mark predicted 270 px off at 300 dpi).
    guess = _similarity(qr_mm, code.corners)
    transform, residual, marks = _refine_with_marks(gray, template, guess, qr_mm, code.corners)
    return Alignment(template, transform.astype(np.float64), residual, marks, "qr")


@cache
def _form_thumbnail(template: Template) -> np.ndarray:
    return render_form(template, None, MATCH_DPI).astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Return the correlation of two images over their common area (1: same layout, ~0: unrelated)."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w].astype(np.float32).ravel(), b[:h, :w].astype(np.float32).ravel()
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator else 0.0


def _thumbnail(image: np.ndarray, transform: np.ndarray, width_mm: float, height_mm: float) -> np.ndarray:
    return rectify(grey(image), transform, width_mm, height_mm, MATCH_DPI)


def align_by_layout(gray: np.ndarray, scale: float, forms: list[Template]) -> Alignment | None:
    """Return the best alignment of a page whose code is unreadable: four corner marks, then the one of
    the four rotations (and the one template) whose blank layout matches the page best, or None."""
    scored: list[tuple[float, Template, np.ndarray]] = []
    for template in forms:
        marks = order_clockwise(np.array(template.marks, dtype=np.float64))  # as find_mark_quads orders them
        aspect = float(np.ptp(marks[:, 0]) / np.ptp(marks[:, 1]))
        for quad in find_mark_quads(gray, scale, aspect):
            for turn in range(4):
                transform, _ = _fit(marks, np.roll(quad, -turn, axis=0))
                thumbnail = _thumbnail(gray, transform, template.width_mm, template.height_mm)
                scored.append((similarity(thumbnail, _form_thumbnail(template)), template, transform))
    if not scored:
        return None
    scored.sort(key=lambda s: -s[0])
    best, runner_up = scored[0][0], scored[1][0] if len(scored) > 1 else 0.0
    # Measured on 24 filled forms with the code torn off, 200-400 dpi, any rotation: the right
    # rotation scored 0.31-0.45 against the blank layout, the wrong ones 0.03-0.11.
    if best < LAYOUT_MIN_SCORE or best - runner_up < LAYOUT_MIN_MARGIN:
        return None
    _, template, guess = scored[0]
    transform, residual, points = _refine_with_marks(gray, template, guess, [], [])
    return Alignment(template, transform, residual, points, "layout", best)


# ---- ID cards -------------------------------------------------------------------------------------


@cache
def card_thumbnail(template: Template) -> np.ndarray:
    card = grey(render_card(template, None, OUTPUT_DPI))
    size = (
        round(template.width_mm / MM_PER_INCH * MATCH_DPI * 2),
        round(template.height_mm / MM_PER_INCH * MATCH_DPI * 2),
    )
    return cv2.resize(card, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def align_card(image: np.ndarray, quad: np.ndarray, sides: list[Template]) -> Alignment:
    """Return the card's alignment: which side it shows and which way up, by layout matching (the page
    in grey, or in colour: greyed here)."""
    # Put a long edge first, so the card's width runs along quad[0] -> quad[1].
    if np.linalg.norm(quad[1] - quad[0]) < np.linalg.norm(quad[3] - quad[0]):
        quad = np.roll(quad, -1, axis=0)
    gray = grey(image)
    best: Alignment | None = None
    for template in sides:
        corners = np.array(Box(0, 0, template.width_mm, template.height_mm).corners(), dtype=np.float64)
        for turn in (0, 2):
            transform = cv2.getPerspectiveTransform(
                corners.astype(np.float32), np.roll(quad, -turn, axis=0).astype(np.float32)
            )
            thumb = card_thumbnail(template)
            candidate = rectify(gray, transform, template.width_mm, template.height_mm, MATCH_DPI * 2)
            score = similarity(candidate, thumb)
            if best is None or score > best.score:
                best = Alignment(template, transform.astype(np.float64), 0.0, 4, "outline", score)
    assert best is not None
    return best


# ---- rectify, crop, judge ---------------------------------------------------------------------------


def rectify(
    image: np.ndarray, transform: np.ndarray, width_mm: float, height_mm: float, dpi: float = OUTPUT_DPI
) -> np.ndarray:
    """Return the template-sized rectangle of the page, straightened, at dpi."""
    to_mm = np.diag([MM_PER_INCH / dpi, MM_PER_INCH / dpi, 1.0])
    size = (round(width_mm / MM_PER_INCH * dpi), round(height_mm / MM_PER_INCH * dpi))
    fill = 255 if image.ndim == 2 else (255, 255, 255)
    return cv2.warpPerspective(
        image, transform @ to_mm, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=fill
    )


def _crop(rectified: np.ndarray, box: Box, dpi: float) -> np.ndarray:
    k = dpi / MM_PER_INCH
    x0, y0 = max(0, round(box.x * k)), max(0, round(box.y * k))
    x1, y1 = (
        min(rectified.shape[1], round((box.x + box.w) * k)),
        min(rectified.shape[0], round((box.y + box.h) * k)),
    )
    return np.ascontiguousarray(rectified[y0:y1, x0:x1])


def crop_fields(
    rectified: np.ndarray, alignment: Alignment, page: int, words: list | None = None
) -> tuple[dict[str, FieldImage], dict[str, FieldImage]]:
    """Return the field and region images of one rectified page, each with its place on the source page."""
    template, transform = alignment.template, alignment.transform

    def cut(spec, kind):
        quad = apply(transform, np.array(spec.box.corners()))
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        options = getattr(spec, "options", ())  # a choice field is read by its marks, never its words
        text = _text_in(words, spec.box) if words is not None and kind and not options else None
        return FieldImage(
            name=spec.name,
            kind=kind,
            page=page,
            box=(int(x0), int(y0), int(x1 - x0), int(y1 - y0)),
            quad=tuple((float(x), float(y)) for x, y in quad),
            image=_crop(rectified, spec.box.grow(FIELD_MARGIN_MM), OUTPUT_DPI),
            text=text,
            inset=round((FIELD_MARGIN_MM + OCR_INSET_MM) * OUTPUT_DPI / MM_PER_INCH) if kind else 0,
            marks=tuple((label, tick_fill(rectified, box)) for label, box in options),
        )

    fields = {f.name: cut(f, str(f.kind)) for f in template.fields if f.page == 1 or f.page == page}
    regions = {r.name: cut(r, None) for r in template.regions}
    return fields, regions


TICK_INSET_MM = 0.7  # inside a tick box's printed line


def tick_fill(rectified: np.ndarray, box: Box) -> float:
    """Return the share of a tick box's inside that is inked (0 empty; a tick ~0.1-0.2, filled ~0.9)."""
    inside = grey(_crop(rectified, box.grow(-TICK_INSET_MM), OUTPUT_DPI))
    if inside.size == 0:
        return 0.0
    paper = float(np.percentile(grey(_crop(rectified, box.grow(2.0), OUTPUT_DPI)), 90))
    return float(np.mean(inside < paper - 80))


def _text_in(words: list, box: Box) -> str:
    """Return the text-layer words whose centre lies inside the box (words in mm: text, x0, y0, x1, y1)."""
    inside = [
        w
        for w in words
        if box.x <= (w[1] + w[3]) / 2 <= box.x + box.w and box.y <= (w[2] + w[4]) / 2 <= box.y + box.h
    ]
    return " ".join(w[0] for w in sorted(inside, key=lambda w: (round(w[2]), w[1])))


def _edge_sigma_mm(rectified: np.ndarray, template: Template, dpi: float) -> float | None:
    """Return the blur (Gaussian sigma, mm) across the left and right edges of the registration marks."""
    k = dpi / MM_PER_INCH
    sigmas = []
    for mx, my in template.marks:
        half = template.mark_size_mm / 2
        y = round(my * k)
        for edge in (mx - half, mx + half):
            x = round(edge * k)
            band = rectified[max(0, y - 3) : y + 4, max(0, x - round(2 * k)) : x + round(2 * k)].astype(
                np.float32
            )
            if band.shape[0] < 3 or band.shape[1] < 10:
                continue
            profile = band.mean(axis=0)
            contrast = profile.max() - profile.min()
            slope = np.abs(np.diff(cv2.GaussianBlur(profile.reshape(1, -1), (1, 3), 0).ravel())).max()
            if contrast > 60 and slope > 0:
                sigmas.append(contrast / (slope * np.sqrt(2 * np.pi)) / k)
    return float(np.median(sigmas)) if sigmas else None


def check_quality(page_shape: tuple[int, ...], alignment: Alignment, rectified: np.ndarray) -> list[str]:
    """Return why the crops of this page cannot be trusted (empty when they can)."""
    problems = []
    template, transform = alignment.template, alignment.transform
    if alignment.via != "outline":
        if alignment.points < 3:
            problems.append(
                f"only {alignment.points} of 4 registration marks found: rescan the whole page, flat"
            )
        elif alignment.residual_mm > MAX_RESIDUAL_MM:
            problems.append(f"alignment is off by {alignment.residual_mm:.1f} mm: rescan the page flat")
    dpi = _px_per_mm(transform, (template.width_mm / 2, template.height_mm / 2)) * MM_PER_INCH
    if dpi < MIN_DPI:
        problems.append(f"resolution is about {dpi:.0f} dpi, below {MIN_DPI:.0f}: rescan at 300 dpi")
    h, w = page_shape[:2]
    tolerance = 0.5 * dpi / MM_PER_INCH
    for spec in [*template.fields, *template.regions]:
        quad = apply(transform, np.array(spec.box.corners()))
        if (
            (quad < -tolerance).any()
            or (quad[:, 0] > w + tolerance).any()
            or (quad[:, 1] > h + tolerance).any()
        ):
            problems.append(f"the page is cut off: {spec.name} lies outside the scan; rescan the whole page")
            break
    gray = grey(rectified)
    if template.marks:
        sigma = _edge_sigma_mm(gray, template, OUTPUT_DPI)
        if sigma is not None and sigma > MAX_BLUR_MM:
            problems.append(f"the page is blurred (edges spread {sigma:.2f} mm): rescan in focus")
    paper = float(np.percentile(shrink(gray, 0.25), 75))
    if paper < 110:
        problems.append(f"the page is too dark (paper at {paper:.0f} of 255): rescan with more light")
    return problems
