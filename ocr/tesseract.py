"""read_fields: field images in, text with word confidences out. The only module that runs tesseract.

Tesseract reads a list of image files in one process, each file a page of its output: spawning it and
loading chi_sim costs about 0.25 s here, so fields are batched, one process per group of fields that
share a language, page segmentation mode and whitelist (a list run takes one configuration). It runs
single-threaded (OMP_THREAD_LIMIT=1): its own threads made pages 3-5x slower on this 2-core machine;
throughput comes from worker processes instead.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from errors import ImagingError

_CJK = re.compile(r"[\u3400-\u9fff]")


class TesseractMissing(ImagingError):
    """tesseract or one of its languages is not installed."""

    error = "tesseract_missing"


@dataclass(frozen=True)
class OcrConfig:
    lang: str = "chi_sim"
    psm: int = 7
    charset: str = ""


@dataclass(frozen=True)
class OcrText:
    text: str
    confidence: float  # the lowest word confidence, 0-100; 0 when nothing was read
    words: tuple[tuple[str, float], ...] = ()


def _join(words: list[str]) -> str:
    """Return the words of one line joined as written: no space next to a Chinese character."""
    out = ""
    for word in words:
        if out and not (_CJK.search(out[-1]) or _CJK.search(word[0])):
            out += " "
        out += word
    return out


def _run(paths: list[Path], config: OcrConfig, timeout: float) -> list[OcrText]:
    binary = shutil.which("tesseract")
    if not binary:
        raise TesseractMissing(
            "tesseract is not installed: apt-get install tesseract-ocr tesseract-ocr-chi-sim"
        )
    listing = paths[0].parent / f"list-{config.psm}-{abs(hash(config))}.txt"
    listing.write_text("\n".join(str(p) for p in paths) + "\n")
    command = [binary, str(listing), "stdout", "-l", config.lang, "--psm", str(config.psm)]
    if config.charset:
        command += ["-c", f"tessedit_char_whitelist={config.charset}"]
    result = subprocess.run(
        [*command, "tsv"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    )
    if result.returncode != 0:
        raise TesseractMissing(f"tesseract failed ({result.returncode}): {result.stderr.strip()[:300]}")
    lines: dict[int, dict[tuple, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in csv.DictReader(io.StringIO(result.stdout), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5" or not (row.get("text") or "").strip():
            continue
        key = (int(row["block_num"]), int(row["par_num"]), int(row["line_num"]))
        lines[int(row["page_num"])][key].append((row["text"].strip(), float(row["conf"])))
    out = []
    for page in range(1, len(paths) + 1):
        words = [w for key in sorted(lines[page]) for w in lines[page][key]]
        text = "\n".join(_join([w for w, _ in lines[page][key]]) for key in sorted(lines[page]))
        out.append(OcrText(text, min((c for _, c in words), default=0.0), tuple(words)))
    return out


def read_fields(fields: list[tuple[np.ndarray, OcrConfig]], timeout: float = 120.0) -> list[OcrText]:
    """Return what tesseract reads in each field image, in order: one process per configuration."""
    results: list[OcrText | None] = [None] * len(fields)
    groups: dict[OcrConfig, list[int]] = defaultdict(list)
    for index, (_, config) in enumerate(fields):
        groups[config].append(index)
    with tempfile.TemporaryDirectory(prefix="ocr-") as tmp:
        for config, indices in groups.items():
            paths = []
            for index in indices:
                path = Path(tmp) / f"f{index}.png"
                Image.fromarray(fields[index][0]).save(path, dpi=(300, 300), compress_level=1)
                paths.append(path)
            for index, text in zip(indices, _run(paths, config, timeout), strict=True):
                results[index] = text
    return [r if r is not None else OcrText("", 0.0) for r in results]
