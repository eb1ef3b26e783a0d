"""read_fields: field images in, each field's OCR reads out, as many as it takes to settle the field.

Every field is read twice, with its text scaled to two line heights. The two reads fail differently,
so a value both reads agree on is far more often right than either read's confidence alone says
(see ocr/decide.py and bench/ocr_bench.py). A field whose two reads do not give the same valid value,
or give it with a confidence under its kind's threshold (ocr/decide.py settled), is read six more
times (four more heights, and twice in grey instead of binarised, cropped to its ink): ocr/decide.py
then takes the value most of the eight reads agree on. On the calibration forms one field in three
needed the extra reads; names, addresses and amounts most.

The reads are taken by an OCR engine (ocr/engine.py), tesseract (ocr/tesseract.py) unless told.
"""

from __future__ import annotations

import cv2
import numpy as np

from ocr import decide, tesseract
from ocr.engine import Engine, OcrConfig, OcrText

# Target heights (px) of the tallest text line for the two reads: tesseract's LSTM models read best
# at about 30 px; a lone glyph (sex) reads only when large. Chosen with bench/ocr_bench.py.
HEIGHTS = {"sex": (60, 72)}
DEFAULT_HEIGHTS = (26, 34)
# The extra reads of a field the first two did not settle: (binarised?, height). Each one alone reads
# names right 66-75 % of the time; a value most of them agree on is right far more often.
MORE_READS = {"sex": ((True, 48), (True, 84))}
DEFAULT_MORE_READS = ((True, 22), (True, 30), (True, 40), (True, 48), (False, 26), (False, 34))
PAD = 12


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


def read_field(image: np.ndarray, config: OcrConfig, engine: Engine = tesseract) -> tuple[OcrText, ...]:
    """Return the field's reads (none when the field is blank): one per target line height, and the
    extra reads when those do not settle it."""
    reads = []
    for height in HEIGHTS.get(config.kind, DEFAULT_HEIGHTS):
        prepared = prepare(image, height)
        if prepared is None:
            return ()
        reads.append(engine.read(prepared, config))
    # Looked up on the module at each call: bench/ocr_bench.py --calibrate replaces it to read every
    # field eight times.
    if config.kind and not decide.settled(config.kind, tuple(reads), image):
        for binarise, height in MORE_READS.get(config.kind, DEFAULT_MORE_READS):
            prepared = prepare(image, height, binarise)
            if prepared is not None:
                reads.append(engine.read(prepared, config))
    return tuple(reads)


def read_fields(
    fields: list[tuple[np.ndarray, OcrConfig]], engine: Engine = tesseract
) -> list[tuple[OcrText, ...]]:
    """Return the reads of each field image, in order, all on one engine (this process's tesseract
    unless told)."""
    return [read_field(image, config, engine) for image, config in fields]
