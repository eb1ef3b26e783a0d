"""read_fields: field images in, each field's OCR reads out, as many as it takes to settle the field.

A field is read by two engines that fail differently: tesseract (ocr/tesseract.py), binarised, its text
scaled to one line height, and PP-OCR (ocr/ppocr.py), in grey cropped to its ink. A valid value both
read alike is far more often right than either's confidence says (ocr/decide.py). Which engine reads
first is the caller's (first_read; ocr/pipeline.py reads names, addresses, texts and numbers with PP-OCR
first, and one such read that looks printed may settle them alone); second_read is the other engine's. A
field the two do not settle (they disagree, a validator fails, a confidence is under its kind's
threshold) is read seven more times by tesseract (five more heights, and twice in grey, cropped to its
ink): ocr/decide.py then takes the value whose characters match the print best.

Without a second engine (second=None) the first two reads are tesseract's at two heights, as before
PP-OCR joined.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ocr import decide, ppocr, tesseract
from ocr.engine import Engine, OcrConfig, OcrText

# Target heights (px) of the tallest text line for the two reads: tesseract's LSTM models read best
# at about 30 px; a lone glyph (sex) reads only when large. Chosen with bench/ocr_bench.py.
HEIGHTS = {"sex": (60, 72)}
DEFAULT_HEIGHTS = (26, 34)
# The extra reads of a field the first two did not settle: (binarised?, height). Each one alone reads
# names right 66-75 % of the time; a value most of them agree on is right far more often.
MORE_READS = {"sex": ((True, 48), (True, 84))}
DEFAULT_MORE_READS = ((True, 22), (True, 30), (True, 40), (True, 48), (False, 26), (False, 34))
# PP-OCR's read: the grey field cropped to its ink, its tallest line at this height (the model scales
# the line, border included, to 48 px). Measured on 56 field crops: 56 read right at 34.
SECOND_HEIGHT = 34
PAD = 12
# Extra reads stop early (more_reads) only once a field has this many reads: a value then needs two of
# them (decide.VOTES_MIN), one PP-OCR's (decide.enough_reads), and must match the print best among the
# values the reads gave. Three, not four, on tuning seeds 41 (hard, 3 faces) and 43 (mild, 5 faces):
# the same fields accepted, all right, with 2-4 % fewer reads.
MIN_READS = 3


def line_height(binary: np.ndarray) -> int:
    """Return the height in px of the tallest run of rows holding ink (the tallest text line)."""
    rows = (binary < 128).any(axis=1)
    best = run = 0
    for ink in rows:
        run = run + 1 if ink else 0
        best = max(best, run)
    return best


def prepare(image: np.ndarray, height: int, binarise: bool = True) -> np.ndarray | None:
    """Return the field binarised, scaled so its tallest line is `height` px, with a white border;
    None when it holds no ink. Not binarised: the grey field cropped to its ink (4 px around), scaled
    the same way."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if int(grey.max()) - int(grey.min()) < 40:
        return None  # blank: nothing darker than the paper
    _, binary = cv2.threshold(cv2.GaussianBlur(grey, (3, 3), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    tallest = line_height(binary)
    if tallest < 3:
        return None
    f = height / tallest
    if binarise:
        source = binary
    else:
        ys, xs = np.where(binary < 128)
        source = grey[max(0, ys.min() - 4) : ys.max() + 5, max(0, xs.min() - 4) : xs.max() + 5]
    scaled = cv2.resize(source, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    if binarise:
        _, scaled = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return cv2.copyMakeBorder(scaled, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=255)


def first_read(
    image: np.ndarray, config: OcrConfig, engine: Engine = tesseract, second: Engine | None = None
) -> tuple[OcrText, ...]:
    """Return the field's first read; none when it is blank: the engine's at the first target line
    height, or, when told, the second engine's (second_read) instead."""
    if second is not None:
        prepared = prepare(image, SECOND_HEIGHT, binarise=False)
        return () if prepared is None else (second.read(prepared, config),)
    prepared = prepare(image, HEIGHTS.get(config.kind, DEFAULT_HEIGHTS)[0])
    return () if prepared is None else (engine.read(prepared, config),)


def second_read(
    image: np.ndarray,
    config: OcrConfig,
    engine: Engine = tesseract,
    second: Engine | None = ppocr,
    first: OcrText | None = None,
) -> OcrText:
    """Return the field's read by the other engine than the first read's: the second engine's (without
    one, the engine's at the second height); the engine's at the first height when the first read was
    the second engine's (ocr/pipeline.py reads some fields with PP-OCR first)."""
    if second is not None and first is not None and first.engine == ppocr.NAME:
        return engine.read(prepare(image, HEIGHTS.get(config.kind, DEFAULT_HEIGHTS)[0]), config)
    if second is not None:
        return second.read(prepare(image, SECOND_HEIGHT, binarise=False), config)
    return engine.read(prepare(image, HEIGHTS.get(config.kind, DEFAULT_HEIGHTS)[1]), config)


def more_reads(
    image: np.ndarray,
    config: OcrConfig,
    reads: tuple[OcrText, ...],
    engine: Engine = tesseract,
    second: Engine | None = ppocr,
    enough: Callable[[tuple[OcrText, ...]], bool] | None = None,
) -> tuple[OcrText, ...]:
    """Return the reads with the engine's extra reads of a field its first two did not settle, in
    MORE_READS' order; once there are MIN_READS, stopping as soon as `enough` says the reads settle it
    (ocr/pipeline.py: the decision in the page's face would accept them)."""
    _, other = HEIGHTS.get(config.kind, DEFAULT_HEIGHTS)
    more = MORE_READS.get(config.kind, DEFAULT_MORE_READS)
    out = list(reads)
    for binarise, height in ((True, other), *more) if second is not None else more:
        prepared = prepare(image, height, binarise)
        if prepared is not None:
            out.append(engine.read(prepared, config))
        if enough is not None and len(out) >= MIN_READS and enough(tuple(out)):
            break
    return tuple(out)


def read_field(
    image: np.ndarray,
    config: OcrConfig,
    engine: Engine = tesseract,
    second: Engine | None = ppocr,
    reads: tuple[OcrText, ...] | None = None,
    enough: Callable[[tuple[OcrText, ...]], bool] | None = None,
) -> tuple[OcrText, ...]:
    """Return the field's reads (none when the field is blank): the engine's at the first target line
    height and the second engine's (without one, the engine's at the second height), and the engine's
    extra reads when those two do not settle it (all of them, or until `enough`: more_reads). `reads`
    already made (ocr/pipeline.py: the first, or the first two) are carried on from."""
    reads = first_read(image, config, engine) if reads is None else reads
    if not reads:
        return ()
    if len(reads) == 1:
        reads += (second_read(image, config, engine, second, reads[0]),)
    # Looked up on the module at each call: bench/ocr_bench.py --calibrate replaces it to read every
    # field more times.
    if config.kind and not decide.settled(config.kind, reads, image, config.name):
        reads = more_reads(image, config, reads, engine, second, enough)
    return reads


def read_fields(
    fields: list[tuple[np.ndarray, OcrConfig]], engine: Engine = tesseract, second: Engine | None = ppocr
) -> list[tuple[OcrText, ...]]:
    """Return the reads of each field image, in order: this process's tesseract and PP-OCR unless
    told."""
    return [read_field(image, config, engine, second) for image, config in fields]
