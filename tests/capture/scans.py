"""Scanner and phone degradations with their ground truth: every function returns the degraded image
and the 3x3 homography that maps clean-image pixels to degraded-image pixels."""

from __future__ import annotations

import cv2
import numpy as np


def finish(
    image: np.ndarray, rng: np.random.Generator, blur: float, noise: float, jpeg: int | None, light: bool
) -> np.ndarray:
    """Return the image blurred, lit unevenly, noised and JPEG-compressed as asked."""
    if blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    if light:  # a lamp that falls off towards one side
        h, w = image.shape[:2]
        ramp = 1 - rng.uniform(0.1, 0.25) * np.linspace(0, 1, w, dtype=np.float32)
        ramp = ramp[None, :, None] if image.ndim == 3 else ramp[None, :]
        image = image * ramp
    image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
    if jpeg:
        _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        image = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return image


def scan_page(
    page: np.ndarray,
    rng: np.random.Generator,
    *,
    dpi: float,
    angle: float,
    perspective: float = 0.0,
    blur: float = 0.0,
    noise: float = 3.0,
    jpeg: int | None = None,
    light: bool = False,
    lid: int = 240,
    src_dpi: float = 300.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return a scan of a clean page at dpi, turned by angle degrees (any angle; the canvas grows to hold
    it), shifted up to 8 mm, with keystone perspective (a fraction of the width), blur, noise, JPEG, light."""
    h, w = page.shape[:2]
    scale = dpi / src_dpi
    rotation = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    cos, sin = abs(rotation[0, 0]), abs(rotation[0, 1])
    width, height = int((w * cos + h * sin) * 1.06), int((w * sin + h * cos) * 1.06)
    shift = rng.uniform(-8, 8, 2) / 25.4 * dpi
    rotation[:, 2] += np.array([width / 2, height / 2]) - np.array([w / 2, h / 2]) + shift
    transform = np.vstack([rotation, [0, 0, 1]])
    if perspective:
        corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
        moved = corners + rng.uniform(-perspective, perspective, (4, 2)).astype(np.float32) * width
        transform = cv2.getPerspectiveTransform(corners, moved) @ transform
    fill = lid if page.ndim == 2 else (lid, lid, lid)
    out = cv2.warpPerspective(page, transform, (width, height), flags=cv2.INTER_AREA, borderValue=fill)
    return finish(out, rng, blur, noise, jpeg, light), transform


def place_cards(
    cards: list[np.ndarray],
    rng: np.random.Generator,
    *,
    dpi: float,
    bed: int = 244,
    blur: float = 0.0,
    noise: float = 3.0,
    jpeg: int | None = None,
    src_dpi: float = 300.0,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Return an A4 flatbed page holding one or two cards, each at any angle (the second below the
    first), and one transform per card."""
    width, height = round(210 / 25.4 * dpi), round(297 / 25.4 * dpi)
    page = np.full((height, width, 3), bed, np.uint8)
    slots = [(0.5, 0.5)] if len(cards) == 1 else [(0.5, 0.27), (0.5, 0.73)]
    transforms = []
    for card, (fx, fy) in zip(cards, slots, strict=True):
        h, w = card.shape[:2]
        rotation = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(0, 360)), dpi / src_dpi)
        centre = np.array([fx * width, fy * height]) + rng.uniform(-0.08, 0.08, 2) * width
        rotation[:, 2] += centre - np.array([w / 2, h / 2])
        transform = np.vstack([rotation, [0, 0, 1]])
        warped = cv2.warpPerspective(card, transform, (width, height), flags=cv2.INTER_AREA)
        mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), transform, (width, height)) > 127
        page[mask] = warped[mask]
        transforms.append(transform)
    return finish(page, rng, blur, noise, jpeg, False), transforms


def true_box(transform: np.ndarray, box_mm, src_dpi: float = 300.0) -> tuple[float, float, float, float]:
    """Return where a template box (mm) lands in the degraded image, as x, y, w, h."""
    corners = np.array(box_mm.corners(), dtype=np.float64) * src_dpi / 25.4
    quad = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), transform).reshape(-1, 2)
    return (
        float(quad[:, 0].min()),
        float(quad[:, 1].min()),
        float(np.ptp(quad[:, 0])),
        float(np.ptp(quad[:, 1])),
    )


def iou(a, b) -> float:
    """Return the intersection over union of two x, y, w, h boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def handwrite(
    page: np.ndarray, box_mm, text: str, rng: np.random.Generator, dpi: float = 300.0
) -> np.ndarray:
    """Return the clean page with text written into the box by an unsteady hand: each character its own
    size, slant and height, thicker or thinner strokes, the line wandering (a stand-in for handwriting)."""
    from PIL import Image, ImageDraw

    from capture.render import _pil_font

    k = dpi / 25.4
    x, y, h = box_mm.x * k, box_mm.y * k, box_mm.h * k
    out = Image.fromarray(page).convert("L")
    cursor = x + rng.uniform(1.5, 4) * k
    for char in text:
        size = int(h * rng.uniform(0.45, 0.7))
        glyph = Image.new("L", (size * 2, size * 2), 0)
        ImageDraw.Draw(glyph).text((size // 2, size // 3), char, fill=255, font=_pil_font(size))
        glyph = glyph.transform(
            glyph.size, Image.AFFINE, (1, rng.uniform(-0.35, 0.35), 0, rng.uniform(-0.1, 0.1), 1, 0)
        ).rotate(rng.uniform(-12, 12), resample=Image.BILINEAR)
        ink = np.asarray(glyph)
        ink = cv2.dilate(ink, np.ones((2, 2), np.uint8)) if rng.random() < 0.5 else ink
        top = int(y + h * 0.5 - size * 1.0 + rng.uniform(-0.12, 0.12) * h)
        out.paste(0, (int(cursor), top), Image.fromarray(ink))
        cursor += size * rng.uniform(0.55, 1.05) if char.isascii() else size * rng.uniform(0.9, 1.3)
    return np.asarray(out)


def smudge(page: np.ndarray, box_mm, rng: np.random.Generator, dpi: float = 300.0) -> np.ndarray:
    """Return the page with a grey smear across part of the box's text (a wet thumb, a coffee ring)."""
    k = dpi / 25.4
    out = page.astype(np.float32)
    mask = np.zeros(page.shape[:2], np.float32)
    cx = (box_mm.x + box_mm.w * rng.uniform(0.1, 0.5)) * k
    cy = (box_mm.y + box_mm.h * rng.uniform(0.3, 0.7)) * k
    axes = (int(box_mm.w * k * rng.uniform(0.12, 0.3)), int(box_mm.h * k * rng.uniform(0.3, 0.6)))
    cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(-30, 30)), 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 6)
    darkness = rng.uniform(0.45, 0.8)
    out = out * (1 - darkness * mask[..., None] if out.ndim == 3 else 1 - darkness * mask)
    return np.clip(out, 0, 255).astype(np.uint8)


def cards_at(
    cards: list[np.ndarray], where: list[tuple[float, float, float]], *, dpi: float, bed: int = 244
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Return an A4 flatbed page with each card centred at (x, y) (shares of the page's width and height)
    and turned by its angle (degrees); a card near a corner may run off the glass. One transform a card."""
    width, height = round(210 / 25.4 * dpi), round(297 / 25.4 * dpi)
    page = np.full((height, width, 3), bed, np.uint8)
    transforms = []
    for card, (fx, fy, angle) in zip(cards, where, strict=True):
        h, w = card.shape[:2]
        rotation = cv2.getRotationMatrix2D((w / 2, h / 2), angle, dpi / 300.0)
        rotation[:, 2] += np.array([fx * width, fy * height]) - np.array([w / 2, h / 2])
        warped = cv2.warpAffine(card, rotation, (width, height), flags=cv2.INTER_AREA)
        mask = cv2.warpAffine(np.full((h, w), 255, np.uint8), rotation, (width, height)) > 127
        page[mask] = warped[mask]
        transforms.append(np.vstack([rotation, [0, 0, 1]]))
    return finish(page, np.random.default_rng(0), 0.0, 3.0, 85, False), transforms


def photograph(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    fill: float,
    angle: float,
    keystone: float,
    desk: tuple[int, int, int],
    size: tuple[int, int] = (3000, 2250),
) -> tuple[np.ndarray, np.ndarray]:
    """Return a phone photo of a clean RGB image lying on a desk: the image fills `fill` of the photo's
    width, turned by angle degrees, with keystone perspective (a fraction of the width); not yet finished
    (blur, noise, JPEG: see finish)."""
    width, height = size
    h, w = image.shape[:2]
    rotation = cv2.getRotationMatrix2D((w / 2, h / 2), angle, width * fill / w)
    rotation[:, 2] += np.array([width / 2, height / 2]) - np.array([w / 2, h / 2])
    frame = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    moved = frame + rng.uniform(-keystone, keystone, (4, 2)).astype(np.float32) * width
    transform = cv2.getPerspectiveTransform(frame, moved) @ np.vstack([rotation, [0, 0, 1]])
    photo = cv2.warpPerspective(image, transform, (width, height), flags=cv2.INTER_AREA, borderValue=desk)
    return photo, transform
