"""print_score and char_scores: does the field look machine-printed with the text OCR read in it?

The text is drawn again in the forms' print font (printing.py's, which forms and cards are printed
with), stretched over the field's ink, and the two are correlated after a slight blur. Printed fields
scored 0.78-0.97 on generated degraded scans; the same values handwritten (tests/capture/scans.py
`handwrite`) and smudged fields scored below 0.3 (`bench/ocr_bench.py` and the scratch runs behind
ocr/decide.py). A field that does not look printed goes to key-entry however sure OCR is: handwriting
read right today is read wrong tomorrow, and an altered field must be seen by a person.

The whole-line score is an average over the line: one wrong character among ten moves it little
(潍/滩 in an address: 0.94-0.95, the right read 0.95). `char_scores` correlates each character's own
column of the ink with the same character drawn, after a shift of up to two pixels either way: a
misread character scores clearly lower there (bench/ocr_results.md has the separation). A field of
several lines (a card's address) is cut into its lines at the blank rows between them, and each line
is compared with its line of the text.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from itertools import accumulate
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from printing import Kept

DRAW_SIZE = 64  # px: the reference is drawn large, then shrunk onto the field's ink
SHIFT = 2  # px: how far a character's drawn column may move to meet its ink


@cache
def _font(face: str | None = None) -> ImageFont.FreeTypeFont:
    """Return a face (printing.FACES; the print font when None) at DRAW_SIZE."""
    from printing import font_file

    path, index = font_file(face)
    return ImageFont.truetype(str(path), DRAW_SIZE, index=index)


_binaries = Kept(64)  # the last fields' binaries, by their pixels


def _binary(image: np.ndarray) -> np.ndarray:
    """Return the field binarised (Otsu after a slight blur). Kept for the last few fields: one field is
    checked several times (learning the face, deciding, each value read) and binarised once."""

    def make() -> np.ndarray:
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        _, binary = cv2.threshold(
            cv2.GaussianBlur(grey, (3, 3), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU
        )
        binary.flags.writeable = False
        return binary

    return _binaries.get_or_make((image.shape, hash(image.tobytes())), make)


def _ink(binary: np.ndarray) -> np.ndarray | None:
    dark = binary < 128
    rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
    if len(rows) == 0:
        return None
    return binary[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _flat(a: np.ndarray) -> bool:
    """Return whether every value is the same (no correlation to find): std() == 0, at a third of the cost."""
    return bool(a.min() == a.max())


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Return Pearson's r of two arrays of one shape (np.corrcoef's, without its general case's cost)."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if _flat(a) or _flat(b):
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    # Sums of products, not `a @ b`: BLAS would spread a dot product over every core.
    return float(np.clip((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()), -1.0, 1.0))


def _best_match(around: np.ndarray, template: np.ndarray) -> float:
    """Return the best correlation (TM_CCOEFF_NORMED: Pearson's r) of the template at any place in
    `around`, a place OpenCV cannot score (NaN) counting 0."""
    match = cv2.matchTemplate(around, template, cv2.TM_CCOEFF_NORMED)
    best = float(match.max())
    return best if np.isfinite(best) else float(np.nan_to_num(match).max())


def _blur(ink: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(255 - ink.astype(np.float32), (0, 0), 1.5)


@lru_cache(maxsize=8192)
def _advance(char: str, face: str | None = None) -> float:
    """Return a character's advance in the face at DRAW_SIZE (px)."""
    return _font(face).getlength(char)


@lru_cache(maxsize=2048)
def _glyphs(
    text: str, face: str | None = None
) -> tuple[np.ndarray, tuple[tuple[float, float], ...], tuple[int, int]] | None:
    """Return the text drawn in the face (the print font when None), cropped to its ink, each character's
    columns there, and where the crop starts on the canvas, (x, y) (the text is drawn at LEFT,
    DRAW_SIZE // 2)."""
    font = _font(face)
    left = DRAW_SIZE // 2
    # The font's own mask of the text, not the text drawn on a canvas: the same pixels (255 - mask, on
    # 1,736 texts in 7 faces), without the canvas to fill, draw on and copy out.
    mask, (ox, oy) = font.getmask2(text, mode="L")
    width, height = mask.size
    if not width or not height:
        return None
    array = 255 - np.asarray(Image.Image()._new(mask))  # noqa: SLF001 (Pillow's own way to wrap a mask)
    dark = array < 128
    rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
    if len(rows) == 0:
        return None
    x0, y0 = left + ox + int(cols[0]), DRAW_SIZE // 2 + oy + int(rows[0])
    # Each character's advance summed, not the length of every prefix measured (quadratic: a third of the
    # time of the print checks); the same columns for every face tried (Noto Serif's kerned digits aside,
    # within a pixel at DRAW_SIZE).
    ends = list(accumulate(_advance(char, face) for char in text))
    columns = tuple(
        (left + (ends[i - 1] if i else 0.0) - x0, left + ends[i] - x0)
        for i, char in enumerate(text)
        if not char.isspace()
    )
    drawn = array[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    drawn.flags.writeable = False
    return drawn, columns, (x0, y0)


def _stretched(text: str, shape: tuple[int, int], face: str | None = None) -> np.ndarray | None:
    """Return the text drawn in the face and stretched to shape."""
    glyphs = _glyphs(text, face)
    if glyphs is None:
        return None
    return cv2.resize(glyphs[0], (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def _drawn(
    text: str, shape: tuple[int, int], face: str | None = None
) -> tuple[np.ndarray, list[tuple[int, int]]] | None:
    """Return the text drawn in the face and stretched to shape, with each character's columns."""
    glyphs = _glyphs(text, face)
    if glyphs is None:
        return None
    array, columns, _ = glyphs
    k = shape[1] / array.shape[1]
    return _stretched(text, shape, face), [
        (max(0, round(a * k)), min(shape[1], round(b * k))) for a, b in columns
    ]


def _lines(binary: np.ndarray, count: int) -> list[np.ndarray] | None:
    """Return the field's ink cut into `count` lines at the widest runs of blank rows, or None."""
    ink = _ink(binary)
    if ink is None or count == 1:
        return None if ink is None else [ink]
    rows = (ink < 128).any(axis=1)
    gaps, start = [], 0  # (length, middle row) of each run of blank rows
    for y in range(1, len(rows)):
        if rows[y - 1] and not rows[y]:
            start = y
        elif rows[y] and not rows[y - 1]:
            gaps.append((y - start, (start + y) // 2))
    if len(gaps) < count - 1:
        return None
    cuts = [0, *sorted(middle for _, middle in sorted(gaps, reverse=True)[: count - 1]), len(rows)]
    parts = [_ink(ink[cuts[i] : cuts[i + 1]]) for i in range(count)]
    return None if any(p is None for p in parts) else parts


def print_score(image: np.ndarray, text: str, face: str | None = None) -> float:
    """Return how well one line of text, drawn in the face (the print font when None), matches the
    field's ink (-1 to 1)."""
    return print_scores(image, text, (face,))[0]


def print_scores(image: np.ndarray, text: str, faces: tuple[str | None, ...]) -> list[float]:
    """Return print_score for each face, the field's ink found and blurred once."""
    ink = _ink(_binary(image))
    if ink is None or not text.strip():
        return [0.0] * len(faces)
    a, out = _blur(ink), []
    for face in faces:
        drawn = _stretched(text, ink.shape, face)
        out.append(0.0 if drawn is None else _corr(a, _blur(drawn)))
    return out


def char_scores(image: np.ndarray, text: str, face: str | None = None) -> list[float]:
    """Return, per character of the text (one line, or lines split by newlines), how well the character
    drawn in the print font matches the ink in its place; [] when the ink and the text cannot be matched
    (no ink, no text, or fewer lines of ink than of text)."""
    texts = [t for t in (line.strip() for line in text.split("\n")) if t]
    if not texts:
        return []
    lines = _lines(_binary(image), len(texts))
    if lines is None or len(lines) != len(texts):
        return []
    scores = []
    for ink, line in zip(lines, texts, strict=True):
        drawn = _drawn(line, ink.shape, face)
        if drawn is None:
            return []
        a, b = _blur(ink), _blur(drawn[0])
        width = ink.shape[1]
        for start, end in drawn[1]:
            if end - start < 2:
                continue
            # The correlation at every shift at once (TM_CCOEFF_NORMED is Pearson's r).
            around = a[:, max(0, start - SHIFT) : min(width, end + SHIFT)]
            template = b[:, start:end]
            if _flat(template) or _flat(around):
                scores.append(0.0)
                continue
            scores.append(_best_match(around, template))
    return scores


def print_geometry(image: np.ndarray, text: str, face: str | None = None) -> tuple[float, float] | None:
    """Return the size (px a character, the font's em) and the baseline row the ink implies if it is the
    text printed in the print font; None when there is no ink or no text. Every field of one printed
    document comes out of one print run: the same size, and the same line in boxes of one height."""
    ys, _ = np.where(_binary(image) < 128)
    glyphs = _glyphs(text.strip(), face)
    if len(ys) == 0 or glyphs is None:
        return None
    drawn, _, (_, top) = glyphs
    scale = (ys.max() - ys.min() + 1) / drawn.shape[0]
    ascent, _ = _font(face).getmetrics()
    return DRAW_SIZE * scale, ys.min() + (DRAW_SIZE // 2 + ascent - top) * scale


LOOK_ALIKE_SIZE = 32  # px: the size at which characters are compared with each other
LOOK_ALIKE_MIN = 0.85  # glyph correlation from which a character counts as another's look-alike


@cache
def _common_glyphs() -> tuple[str, np.ndarray]:
    """Return the 3755 common characters (GB 2312 level 1) and their glyphs, blurred and normalised."""
    chars = []
    for high in range(0xB0, 0xD8):
        for low in range(0xA1, 0xFF):
            try:
                chars.append(bytes([high, low]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return "".join(chars), _glyph_vectors(chars)


def _glyph_vectors(chars: list[str] | str, face: str | None = None) -> np.ndarray:
    """Return each character drawn in the face at LOOK_ALIKE_SIZE, blurred, centred and normalised: the
    dot product of two is how alike their glyphs look."""
    from printing import font_file

    path, index = font_file(face)
    font = ImageFont.truetype(str(path), LOOK_ALIKE_SIZE, index=index)
    vectors = np.zeros((len(chars), (LOOK_ALIKE_SIZE + 8) ** 2), np.float32)
    for i, char in enumerate(chars):
        canvas = Image.new("L", (LOOK_ALIKE_SIZE + 8, LOOK_ALIKE_SIZE + 8), 255)
        ImageDraw.Draw(canvas).text((4, 2), char, fill=0, font=font)
        v = cv2.GaussianBlur(255 - np.asarray(canvas, np.float32), (0, 0), 1.5).ravel()
        v -= v.mean()
        vectors[i] = v / (np.linalg.norm(v) or 1.0)
    return vectors


# The look-alike table, built once from the print font (`python -m ocr.printed`, about 2 s) and shipped
# with the package: drawing its 3755 glyphs cost each worker and `imaging capture` 0.8 s at every start.
LOOK_ALIKE_TABLE = Path(__file__).with_name("lookalikes.json")
LOOK_ALIKE_COUNT = 3


def build_look_alike_table() -> dict[str, str]:
    """Return, per common character, its up to LOOK_ALIKE_COUNT closest look-alikes in the print font."""
    chars, vectors = _common_glyphs()
    table = {}
    for i, char in enumerate(chars):
        similarity = vectors @ vectors[i]
        best = np.argsort(-similarity)[1 : LOOK_ALIKE_COUNT + 1]
        table[char] = "".join(chars[j] for j in best if similarity[j] >= LOOK_ALIKE_MIN)
    return table


@cache
def _look_alike_table() -> dict[str, str]:
    try:
        return json.loads(LOOK_ALIKE_TABLE.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # not built: draw it now (slow, but right)
        return build_look_alike_table()


def look_alikes(char: str) -> tuple[str, ...]:
    """Return up to 3 common characters whose print looks most like this one (宇: 字; 凤: 风)."""
    return tuple(_look_alike_table().get(char, ""))


DIGITS = "0123456789"


DIGIT_RIVALS = 4  # of the nine other digits, the closest in the face: the misreads tesseract makes (3/5/8...)


@cache
def _digit_rivals(face: str | None) -> dict[str, tuple[str, ...]]:
    """Return, per digit, the DIGIT_RIVALS other digits whose glyphs in the face look most like it."""
    vectors = _glyph_vectors(DIGITS, face)
    similarity = vectors @ vectors.T
    return {
        d: tuple(DIGITS[j] for j in np.argsort(-similarity[i]) if j != i)[:DIGIT_RIVALS]
        for i, d in enumerate(DIGITS)
    }


def preload(faces: tuple[str | None, ...]) -> None:
    """Load each face and draw in it what every document's checks draw (the digits, their look-alikes),
    once in this process: a worker does it before it forks a child per job, which would otherwise load
    and draw them again (0.1-0.2 s a job)."""
    look_alikes("宇")
    for face in faces:
        _digit_rivals(face)
        for digit in DIGITS:
            _advance(digit, face)
            _glyph_alone(digit, face)


def _rivals(char: str, face: str | None = None) -> tuple[str, ...]:
    """Return the characters a misread of this one would most likely give: the digits that look most
    like a digit in the face, the closest look-alikes for a Chinese one."""
    if char in DIGITS:
        return _digit_rivals(face)[char]
    return look_alikes(char)


@lru_cache(maxsize=4096)
def _glyph_alone(char: str, face: str | None = None) -> np.ndarray:
    """Return one character drawn on its own canvas, at the place and size _glyphs draws the first."""
    canvas = Image.new("L", (DRAW_SIZE * 3, DRAW_SIZE * 2), 255)
    ImageDraw.Draw(canvas).text((DRAW_SIZE // 2, DRAW_SIZE // 2), char, fill=0, font=_font(face))
    return np.asarray(canvas)


def look_alike_lead(image: np.ndarray, text: str, face: str | None = None) -> tuple[float, str, str]:
    """Return by how much each character of one line matches its ink better than its rivals would in its
    place (digits: every other digit; Chinese: the closest look-alikes), the least lead with that
    character and rival. Each character is drawn alone in its column of the drawn line, stretched as
    the line is onto the ink, and correlated with the ink's column (shifted up to SHIFT px); so is each
    rival. 1.0 when no character has a rival; -1.0 when the text cannot be laid on the ink."""
    ink = _ink(_binary(image))
    glyphs = _glyphs(text, face)
    if ink is None or glyphs is None or "\n" in text:
        return -1.0, "", ""
    drawn, columns, (x0, y0) = glyphs
    if len(columns) != len(text):
        return -1.0, "", ""
    a = _blur(ink)
    kx, height = ink.shape[1] / drawn.shape[1], drawn.shape[0]
    font = _font(face)
    places = [font.getlength(text[:i]) for i in range(len(text))]  # each character's place on the line

    def score(char: str, i: int, start: float, end: float) -> float | None:
        start, end = max(0.0, start), min(float(drawn.shape[1]), end)  # within the line's ink
        offset = -places[i]  # from char i's place on the line's canvas to its own
        c0, c1 = int(start + x0 + offset), int(np.ceil(end + x0 + offset))
        column = _glyph_alone(char, face)[y0 : y0 + height, max(0, c0) : c1]
        i0, i1 = max(0, round(start * kx)), min(ink.shape[1], round(end * kx))
        if i1 - i0 < 2 or column.shape[1] < 1 or column.min() > 128:
            return None
        template = _blur(cv2.resize(column, (i1 - i0, ink.shape[0]), interpolation=cv2.INTER_AREA))
        around = a[:, max(0, i0 - SHIFT) : min(ink.shape[1], i1 + SHIFT)]
        if _flat(template) or _flat(around):
            return 0.0
        return _best_match(around, template)

    least = (1.0, "", "")
    for i, (char, (start, end)) in enumerate(zip(text, columns, strict=True)):
        rivals = _rivals(char, face)
        own = score(char, i, start, end) if rivals else None
        if own is None:
            continue
        for rival in rivals:
            other = score(rival, i, start, end)
            if other is not None and own - other < least[0]:
                least = (own - other, char, rival)
    return least


if __name__ == "__main__":
    LOOK_ALIKE_TABLE.write_text(json.dumps(build_look_alike_table(), ensure_ascii=False, indent=0) + "\n")
    print(f"wrote {LOOK_ALIKE_TABLE}")
