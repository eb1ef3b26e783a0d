"""read_fields: field images in, text with word confidences out. The only module that talks to tesseract.

Tesseract runs in-process through tesserocr (its C++ API), one engine per language, loaded once per
worker process (worker.preload loads them before RQ forks a child per job). Each field gets its own page
segmentation mode and whitelist on the same engine, which the command line cannot do in one process
(a list-mode run takes one configuration for every image). Measured on 690 generated field crops:
11 ms a field in-process against 21 ms batched through the command line and about 0.25 s a field
with one process each. OMP_THREAD_LIMIT=1: tesseract's own threads made pages 3-5x slower on a
2-core machine; throughput comes from worker processes instead.

Every field is read twice, with its text scaled to two line heights. The two reads fail differently,
so a value both reads agree on is far more often right than either read's confidence alone says
(see ocr/decide.py and bench/ocr_bench.py). A field whose two reads do not give the same valid value,
or give it with a confidence under its kind's threshold, is read six more times (four more heights,
and twice in grey instead of binarised, cropped to its ink): ocr/decide.py then takes the value most
of the eight reads agree on. On the calibration forms one field in three needed the extra reads;
names, addresses and amounts most.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from errors import ImagingError  # noqa: E402

_CJK = re.compile(r"[\u3400-\u9fff]")
# Target heights (px) of the tallest text line for the two reads: tesseract's LSTM models read best
# at about 30 px; a lone glyph (sex) reads only when large. Chosen with bench/ocr_bench.py.
HEIGHTS = {"sex": (60, 72)}
DEFAULT_HEIGHTS = (26, 34)
# The extra reads of a field the first two did not settle: (binarised?, height). Each one alone reads
# names right 66-75 % of the time; a value most of them agree on is right far more often.
MORE_READS = {"sex": ((True, 48), (True, 84))}
DEFAULT_MORE_READS = ((True, 22), (True, 30), (True, 40), (True, 48), (False, 26), (False, 34))
PAD = 12


class TesseractMissing(ImagingError):
    """tesseract's language data is not installed."""

    error = "tesseract_missing"


@dataclass(frozen=True)
class OcrConfig:
    lang: str = "chi_sim"
    psm: int = 7
    charset: str = ""
    kind: str = ""


@dataclass(frozen=True)
class OcrText:
    text: str
    confidence: float  # the lowest word confidence, 0-100; 0 when nothing was read
    words: tuple[tuple[str, float], ...] = ()


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
ENGINE_VARIABLES = {"chi_sim": {"textord_noise_sizelimit": "0.25"}}


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


def preload(langs: tuple[str, ...] = ("chi_sim", "eng")) -> None:
    """Load the engines, and the print font's look-alike table that ocr/decide.py checks names against
    (3755 characters drawn, about a second), once per worker process, before it forks a job."""
    from ocr.printed import look_alikes

    for lang in langs:
        engine(lang)
    look_alikes("宇")


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
    api.SetImage(Image.fromarray(image))
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
    return OcrText(text, min((c for _, c in words), default=0.0), words)


def read_field(image: np.ndarray, config: OcrConfig) -> tuple[OcrText, ...]:
    """Return the field's reads (none when the field is blank): one per target line height, and the
    extra reads when those do not settle it."""
    reads = []
    for height in HEIGHTS.get(config.kind, DEFAULT_HEIGHTS):
        prepared = prepare(image, height)
        if prepared is None:
            return ()
        reads.append(read(prepared, config))
    from ocr.decide import settled  # ocr.decide imports this module

    if config.kind and not settled(config.kind, tuple(reads), image):
        for binarise, height in MORE_READS.get(config.kind, DEFAULT_MORE_READS):
            prepared = prepare(image, height, binarise)
            if prepared is not None:
                reads.append(read(prepared, config))
    return tuple(reads)


def read_fields(fields: list[tuple[np.ndarray, OcrConfig]]) -> list[tuple[OcrText, ...]]:
    """Return the reads of each field image, in order, all on this process's engines."""
    return [read_field(image, config) for image, config in fields]
