"""What an OCR engine reads with and gives back, and what it must offer to plug in.

An engine reads one prepared field image (ocr/reads.py prepares it: binarised or grey, scaled to a text
height, with a white border) with a field's configuration and returns the text and its word
confidences. Everything else (how often and at which heights to read, which value to take) is the
engine's callers': ocr/reads.py and ocr/decide.py. tesseract (ocr/tesseract.py) and PP-OCR
(ocr/ppocr.py) are the engines; a module with the same two functions is another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class OcrConfig:
    lang: str = "chi_sim"
    psm: int = 7
    charset: str = ""
    kind: str = ""
    name: str = ""  # the template field's name: some validators know their field (valid_to: 长期)


@dataclass(frozen=True)
class OcrText:
    text: str
    confidence: float  # the lowest word confidence, 0-100; 0 when nothing was read
    words: tuple[tuple[str, float], ...] = ()  # tesseract: words; PP-OCR: characters
    engine: str = ""  # which engine read it: "tesseract", "ppocr"


class Engine(Protocol):
    """An OCR engine: a module (such as ocr/tesseract.py) or an object with these two functions."""

    def read(self, image: np.ndarray, config: OcrConfig) -> OcrText:
        """Return what the engine reads in one prepared field image."""
        ...

    def preload(self) -> None:
        """Load the engine in this process, so that processes forked from it (a worker's jobs) share it."""
        ...
