"""read: one prepared field image in, text with per-character confidences out. PaddleOCR's PP-OCRv6 small
recognition model, run by onnxruntime through rapidocr, as a second OCR engine (ocr/engine.py Engine:
this module's `read` and `preload`), and the only module that talks to rapidocr or onnxruntime.

Only the recognition model is loaded (the wheel carries it: nothing is fetched at run time), once per
process: a worker loads it before RQ forks its jobs. One thread: throughput comes from worker processes,
as for tesseract. The input is not padded to the model's 320 px width: measured on 56 field crops,
16.6 ms a field of CPU instead of 25.5 ms, the same 56 values read.

It fails differently from tesseract (another network, other training data, no page segmentation): a
value both engines read alike is strong evidence (ocr/decide.py). Its scores do not see a character it
dropped or one outside its set (王赟 read 王 at 0.999): agreement with tesseract and the validators, not
its score alone, prove a value.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ocr.engine import OcrConfig, OcrText

NAME = "ppocr"
MIN_WIDTH = 16  # px at the model's 48 px height: no padding to 320 (see above)
_recognizer = None


def recognizer():
    """Return this process's PP-OCR text recogniser, loading it on first use (about 0.5 s, 40 MB)."""
    global _recognizer
    if _recognizer is None:
        import rapidocr
        from rapidocr.ch_ppocr_rec import TextRecognizer
        from rapidocr.utils.parse_parameters import ParseParams

        root = Path(rapidocr.__file__).parent
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        cfg = ParseParams.load(root / "config.yaml")
        engine = cfg.EngineConfig.onnxruntime
        engine.intra_op_num_threads = 1
        engine.inter_op_num_threads = 1
        cfg.Rec.engine_cfg = engine
        cfg.Rec.model_root_dir = str(root / "models")
        cfg.Rec.font_path = None
        cfg.Rec.rec_img_shape = [3, 48, MIN_WIDTH]
        _recognizer = TextRecognizer(cfg.Rec)
    return _recognizer


def preload() -> None:
    """Load the recognition model in this process: processes forked from it share it."""
    recognizer()


def read(image: np.ndarray, config: OcrConfig) -> OcrText:
    """Return what PP-OCR reads in one prepared field image (one line; the configuration's whitelist
    does not apply: the validators normalise what it reads)."""
    from rapidocr.ch_ppocr_rec import TextRecInput

    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    parts = _lines(grey) if config.psm == 6 else [grey]  # psm 6: a block of lines (a card's address)
    texts, chars = [], []
    for part in parts:
        bgr = np.ascontiguousarray(cv2.cvtColor(part, cv2.COLOR_GRAY2BGR))
        out = recognizer()(TextRecInput(img=bgr, return_word_box=True))
        text = (out.txts[0] if out.txts else "").strip()
        if not text:
            continue
        info = out.word_results[0] if out.word_results else None
        letters = [c for word in (info.words if info else []) for c in word]
        confs = [float(c) * 100 for c in (info.confs if info else [])]
        if len(letters) != len(confs) or not confs:
            letters, confs = [text], [float(out.scores[0]) * 100]
        texts.append(text)
        chars += zip(letters, confs, strict=True)
    if not texts:
        return OcrText("", 0.0, (), NAME)
    return OcrText("\n".join(texts), min(c for _, c in chars), tuple(chars), NAME)


def _lines(grey: np.ndarray) -> list[np.ndarray]:
    """Return the field cut into its text lines at runs of blank rows (a gap of a quarter of the
    tallest line's height or more), each with a white border."""
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    rows = (binary < 128).any(axis=1)
    runs, start = [], None
    for y, ink in enumerate([*rows, False]):
        if ink and start is None:
            start = y
        elif not ink and start is not None:
            runs.append([start, y])
            start = None
    if not runs:
        return [grey]
    gap = max(b - a for a, b in runs) / 4
    merged = [runs[0]]
    for a, b in runs[1:]:
        if a - merged[-1][1] < gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    pad = 8
    return [
        cv2.copyMakeBorder(grey[a:b], pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255) for a, b in merged
    ]
