"""Pages that are no form of ours, generated with their truth: letters of Chinese text (a doctor's note, a
receipt), a page of one printed line, white text on a dark page, and blank sheets as scanners give them."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from printing import font_file

A4_300 = (2480, 3508)  # width, height in px at 300 dpi
TEXT = (
    "兹证明患者于本院门诊就诊诊断为急性支气管炎建议休息三天并按时服药如症状加重请及时复诊特此证明"
    "收到保险费人民币贰仟伍佰元整投保人已阅读保险条款并了解责任免除内容本收据仅作缴费凭证"
    "被保险人住院期间发生的合理医疗费用由保险公司按合同约定给付保险金理赔申请应附病历及发票"
)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    path, index = font_file()
    return ImageFont.truetype(str(path), size, index=index)


def _line(rng: np.random.Generator, length: int) -> str:
    start = int(rng.integers(0, len(TEXT) - length))
    return TEXT[start : start + length]


def letter_page(rng: np.random.Generator, lines: int = 24, size: int = 42) -> np.ndarray:
    """Return a clean 300 dpi grey A4 page: a heading and ``lines`` lines of text, left-aligned."""
    page = Image.new("L", A4_300, 255)
    draw = ImageDraw.Draw(page)
    draw.text((A4_300[0] // 2, 300), "证明", font=_font(size * 2), fill=0, anchor="ms")
    y = 480
    for _ in range(lines):
        draw.text((240, y), _line(rng, int(rng.integers(18, 44))), font=_font(size), fill=0)
        y += int(size * 2.1)
    return np.asarray(page)


def one_line_page(rng: np.random.Generator, size: int = 42) -> np.ndarray:
    """Return a clean 300 dpi grey A4 page holding one printed line somewhere on it."""
    page = Image.new("L", A4_300, 255)
    y = int(rng.integers(300, A4_300[1] - 300))
    ImageDraw.Draw(page).text((300, y), _line(rng, int(rng.integers(8, 20))), font=_font(size), fill=0)
    return np.asarray(page)


def light_on_dark_page(rng: np.random.Generator, lines: int = 6) -> np.ndarray:
    """Return a dark page (a photocopied black cover, a negative) with white text on it."""
    return (255 - letter_page(rng, lines) * 0.85 - 20).clip(0, 255).astype(np.uint8)


def underexposed(page: np.ndarray, paper: int = 50) -> np.ndarray:
    """Return the page as an underexposed scan gives it: the paper at grey ``paper``, the ink near black."""
    return (page.astype(np.float32) * (paper / 255.0)).astype(np.uint8)


def content(kind: str, rng: np.random.Generator) -> np.ndarray:
    """Return a clean page with content of a kind: "letter", "one line", "light on dark", "underexposed
    letter", "underexposed line", "pencil" (one line in light grey)."""
    if kind == "letter":
        return letter_page(rng, lines=int(rng.integers(4, 24)))
    if kind == "one line":
        return one_line_page(rng)
    if kind == "light on dark":
        return light_on_dark_page(rng, lines=int(rng.integers(1, 6)))
    if kind == "underexposed letter":
        return underexposed(letter_page(rng, lines=int(rng.integers(4, 24))))
    if kind == "underexposed line":
        return underexposed(one_line_page(rng))
    return (255 - (255 - one_line_page(rng)) * 0.4).astype(np.uint8)  # pencil: ink at grey 153


def blank_page(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Return a blank sheet as a scanner gives it: "clean", "noisy", "dusty" (specks), "show-through"
    (the back's text faint through the paper), "grey" (recycled paper), "dark" (underexposed), "edge"
    (a shadow along one edge), "black" (a black sheet)."""
    w, h = A4_300
    paper = {"grey": 205, "dark": 50, "black": 25}.get(kind, 245)
    page = np.full((h, w), paper, np.float32)
    if kind == "show-through":
        back = cv2.flip(letter_page(rng), 1).astype(np.float32)
        page -= (255 - back) * 0.08  # ~20 grey levels where the back has ink
    if kind == "dusty":
        for _ in range(40):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.circle(page, (x, y), int(rng.integers(1, 4)), float(rng.integers(60, 180)), -1)
    if kind == "edge":
        page[:, :36] *= np.linspace(0.3, 1.0, 36, dtype=np.float32)[None, :]  # 3 mm
    noise = 6.0 if kind in {"noisy", "dark", "black"} else 2.5
    return np.clip(page + rng.normal(0, noise, page.shape), 0, 255).astype(np.uint8)


def residual_angle(clean: np.ndarray, seen: np.ndarray) -> float | None:
    """Return the rotation (degrees, -180..180) that maps the clean page onto the one seen, or None."""
    orb = cv2.ORB_create(4000)
    a = cv2.resize(clean, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    gray = seen if seen.ndim == 2 else cv2.cvtColor(seen, cv2.COLOR_RGB2GRAY)
    b = cv2.resize(gray, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    ka, da = orb.detectAndCompute(a, None)
    kb, db = orb.detectAndCompute(b, None)
    if da is None or db is None:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    if len(matches) < 20:
        return None
    src = np.float32([ka[m.queryIdx].pt for m in matches])
    dst = np.float32([kb[m.trainIdx].pt for m in matches])
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    if matrix is None or inliers.sum() < 15:
        return None
    return float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
