"""read: one prepared field image in, text with word confidences out. tesseract as an OCR engine
(ocr/engine.py Engine: this module's `read` and `preload`), and the only module that talks to tesseract.

Tesseract runs in-process through tesserocr (its C++ API), one engine per language, loaded once per
worker process (worker_process.preload loads them before RQ forks a child per job). Each field gets
its own page segmentation mode and whitelist on the same engine, which the command line cannot do in one
process (a list-mode run takes one configuration for every image). Measured on 690 generated field crops:
11 ms a field in-process against 21 ms batched through the command line and about 0.25 s a field
with one process each. OMP_THREAD_LIMIT=1: tesseract's own threads made pages 3-5x slower on a
2-core machine; throughput comes from worker processes instead.

How often a field is read, and at which text heights, is ocr/reads.py's business; which value to take,
ocr/decide.py's.
"""

from __future__ import annotations

import glob
import os
import re

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from errors import ImagingError  # noqa: E402
from ocr.engine import OcrConfig, OcrText  # noqa: E402

_CJK = re.compile(r"[\u3400-\u9fff]")
NAME = "tesseract"


class TesseractMissing(ImagingError):
    """tesseract's language data is not installed."""

    error = "tesseract_missing"


def tessdata() -> str:
    """Return the directory holding the traineddata files (TESSDATA_PREFIX, else Debian's)."""
    candidates = [os.environ.get("TESSDATA_PREFIX", "")]
    candidates += sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata"), reverse=True)
    for path in filter(None, candidates):
        if os.path.exists(os.path.join(path, "chi_sim.traineddata")):
            return path.rstrip("/") + "/"
    raise TesseractMissing(
        "tesseract language data not found: apt-get install tesseract-ocr-chi-sim, or set TESSDATA_PREFIX"
    )


_engines: dict[str, object] = {}
# Tesseract drops as noise any blob under textord_noise_sizelimit (0.5 by default) of the x-height. A
# Chinese character is several blobs, some of them small (the dots of 杰, the hook of 丁): with the
# default, tesseract 5.5 read nothing at all in some clean name fields (丁杰, 范志, 宋斌雪: 8 of 157
# names on seed 13, every read empty) that the 5.3 command line reads. At 0.25 the single reads of
# names on seed 11 went from 110-116 to 115-125 right of 155; text 93-99 to 95-102 of 115; others equal.
# tessedit_do_invert off: tesseract 5 reads a line again inverted (white on black) when its confidence is
# low; our fields are always dark on white (ocr/reads.py binarises them). The same text and confidences
# on 396 field images of seed 53, 5-7 % less tesseract time (two rounds).
NO_INVERT = {"tessedit_do_invert": "0"}
ENGINE_VARIABLES = {"chi_sim": {"textord_noise_sizelimit": "0.25", **NO_INVERT}, "eng": NO_INVERT}


def engine(lang: str):
    """Return this process's tesseract engine for a language, loading it on first use."""
    api = _engines.get(lang)
    if api is None:
        import tesserocr

        try:
            api = tesserocr.PyTessBaseAPI(path=tessdata(), lang=lang)
        except RuntimeError as exc:
            raise TesseractMissing(f"tesseract cannot load {lang!r}: {exc}") from exc
        for name, value in ENGINE_VARIABLES.get(lang, {}).items():
            api.SetVariable(name, value)
        _engines[lang] = api
    return api


def preload(langs: tuple[str, ...] = ("chi_sim", "eng", "osd")) -> None:
    """Load the engines for these languages in this process: a worker loads them once, before RQ forks a
    child per job that inherits them (orientation detection's `osd` too: a page of no template needs it)."""
    for lang in langs:
        engine(lang)


def _join(words: list[str]) -> str:
    """Return the words of one line joined as written: no space next to a Chinese character."""
    out = ""
    for word in words:
        if out and not (_CJK.search(out[-1]) or _CJK.search(word[0])):
            out += " "
        out += word
    return out


def read(image: np.ndarray, config: OcrConfig) -> OcrText:
    """Return what tesseract reads in one prepared field image."""
    import tesserocr

    api = engine(config.lang)
    api.SetPageSegMode(config.psm)
    api.SetVariable("tessedit_char_whitelist", config.charset)
    # The pixels as they are, not through PIL (which encodes a BMP for leptonica to decode: 0.5-1 ms a
    # read); the same reads and confidences on 396 field images.
    pixels = np.ascontiguousarray(image)
    depth = 1 if pixels.ndim == 2 else pixels.shape[2]
    api.SetImageBytes(pixels.tobytes(), pixels.shape[1], pixels.shape[0], depth, pixels.shape[1] * depth)
    api.SetSourceResolution(300)
    api.Recognize()
    lines: list[list[tuple[str, float]]] = []
    iterator = api.GetIterator()
    level = tesserocr.RIL.WORD
    for word in tesserocr.iterate_level(iterator, level) if iterator is not None else ():
        try:
            text = (word.GetUTF8Text(level) or "").strip()
        except RuntimeError:  # tesserocr raises on a word with no text
            continue
        if not text:
            continue
        if not lines or word.IsAtBeginningOf(tesserocr.RIL.TEXTLINE):
            lines.append([])
        lines[-1].append((text, float(word.Confidence(level))))
    api.Clear()
    words = tuple(w for line in lines for w in line)
    text = "\n".join(_join([w for w, _ in line]) for line in lines)
    return OcrText(text, min((c for _, c in words), default=0.0), words, NAME)


# Orientation detection (--psm 0) of pages of no template: capture/orient.py asks through this.
OSD_DPI = 150.0  # tesseract's OSD wants characters of 20-40 px: 10-12 pt text at 150 dpi
OSD_WINDOW = 400  # px at OSD_DPI: the inkiest window of this side is read, not the whole page
# OSD's confidence on generated pages of Chinese text: right turns 6-16; on pages of a few words and
# on a blank page it guesses with under 2.
OSD_MIN_CONFIDENCE = 2.0


def _inkiest_window(gray: np.ndarray, side: int) -> np.ndarray:
    """Return the square window of the page with the most ink (the whole page when smaller)."""
    h, w = gray.shape
    if h <= side and w <= side:
        return gray
    ink = (gray < np.percentile(gray, 50) - 40).astype(np.float32)
    step = max(1, side // 4)
    best, at = -1.0, (0, 0)
    for y in range(0, max(1, h - side + 1), step):
        for x in range(0, max(1, w - side + 1), step):
            total = float(ink[y : y + side, x : x + side].sum())
            if total > best:
                best, at = total, (y, x)
    return np.ascontiguousarray(gray[at[0] : at[0] + side, at[1] : at[1] + side])


def orientation(gray: np.ndarray, dpi: float = 300.0) -> int | None:
    """Return the quarter turn (degrees counter-clockwise) that makes a grey page upright, by tesseract's
    orientation detection; None when it cannot tell (too little text, low confidence)."""
    import tesserocr

    scale = min(1.0, OSD_DPI / max(dpi, 1.0))
    small = Image.fromarray(gray).reduce(max(1, round(1 / scale))) if scale < 1 else Image.fromarray(gray)
    window = _inkiest_window(np.asarray(small), OSD_WINDOW)
    api = engine("osd")
    api.SetPageSegMode(tesserocr.PSM.OSD_ONLY)
    api.SetImage(Image.fromarray(window))
    try:
        found = api.DetectOrientationScript()
    except RuntimeError:  # too few characters to tell
        found = None
    finally:
        api.Clear()
    if not found or found["orient_conf"] < OSD_MIN_CONFIDENCE:
        return None
    return int(found["orient_deg"]) % 360
