"""Capture plus OCR of every field of a page, against full-page tesseract of the same page, side by side.

    .venv/bin/python bench/page_speed_bench.py [--pages 12] [--seed 53] [--face zenhei]

Held-out pages (a seed no rule was chosen on): half application forms, half A4 beds with an ID card's
two sides, their values printed in --face (ours when not given), scanned at 300 dpi with light
degradation. Each page is decoded once; then, one after the other on the same page (the order
alternating from page to page, so the machine's load falls on both alike):

- ours: capture (classify, align, cut the fields) and every field read and decided (ocr/pipeline.py),
  what a worker loads before it forks its jobs loaded beforehand (worker_process.preload: the engines,
  the card specimens, the faces);
- full-page tesseract, in-process (tesserocr, chi_sim+eng, the page's automatic segmentation, one
  thread), which extracts no fields at all; and the same through the `tesseract` command line
  (pytesseract: a process per page, as most pipelines call it).

Wall time and this process's CPU time are both reported (the CPU time is what a shared machine's other
work disturbs least). One core, as a batch job runs: OMP_THREAD_LIMIT=1, OpenCV on one thread
(worker_process.opencv_on_one_thread).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from capture.decode import Page  # noqa: E402
from capture.pipeline import capture  # noqa: E402
from capture.render import render_form, render_idcard  # noqa: E402
from capture.specimens import card_values, form_values  # noqa: E402
from capture.templates import latest  # noqa: E402
from ocr.pipeline import read_document  # noqa: E402
from ocr.validate import validate  # noqa: E402
from tests.capture.scans import place_cards, scan_page  # noqa: E402
from vocabulary import FieldStatus  # noqa: E402
from worker_process import opencv_on_one_thread, preload  # noqa: E402


def pages(n: int, seed: int, face: str | None) -> list[tuple[np.ndarray, dict[str, str]]]:
    """Return n scanned pages (forms and card beds in turn) with the values printed on them."""
    rng, out = np.random.default_rng(seed), []
    for i in range(n):
        if i % 2 == 0:
            values = form_values(random.Random(seed * 1000 + i))
            page, _ = scan_page(render_form(latest("application_form"), values, 300, face), rng, dpi=300,
                                angle=float(rng.uniform(-3, 3)), noise=3, jpeg=90)  # fmt: skip
        else:
            values = card_values(random.Random(seed * 1000 + i))
            sides = [render_idcard(latest(f"idcard_{s}"), values, face=face) for s in ("front", "back")]
            page, _ = place_cards(sides, rng, dpi=300, noise=3)
        out.append((page, values))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--seed", type=int, default=53)
    parser.add_argument("--face", default=None, help="printing.FACES name the values are printed in")
    args = parser.parse_args()

    import pytesseract
    import tesserocr
    from PIL import Image

    from ocr.tesseract import tessdata

    scans = pages(args.pages, args.seed, args.face)
    opencv_on_one_thread()  # as a worker that takes batch scans runs
    preload()
    full_page = tesserocr.PyTessBaseAPI(path=tessdata(), lang="chi_sim+eng")
    clock = {"ours": [0.0, 0.0], "in-process": [0.0, 0.0], "command line": [0.0, 0.0]}
    fields = accepted = right = 0

    def ours(image: np.ndarray, values: dict[str, str]) -> None:
        nonlocal fields, accepted, right
        for doc in capture([Page(1, image, 300.0)]):
            for name, d in read_document(doc).items():
                fields += 1
                if d.status == FieldStatus.accepted:
                    accepted += 1
                    right += d.value == validate(str(doc.template.field(name).kind), values[name], name).value

    def in_process(image: np.ndarray, _: dict[str, str]) -> None:
        full_page.SetImage(Image.fromarray(image))
        full_page.GetUTF8Text()

    def command_line(image: np.ndarray, _: dict[str, str]) -> None:
        pytesseract.image_to_string(image, lang="chi_sim+eng")

    runs = [("ours", ours), ("in-process", in_process), ("command line", command_line)]
    for i, (image, values) in enumerate(scans):
        for name, run in runs if i % 2 == 0 else runs[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            run(image, values)
            clock[name][0] += time.perf_counter() - wall
            clock[name][1] += time.process_time() - cpu
    full_page.End()

    n = len(scans)
    print(f"{n} pages ({(n + 1) // 2} forms, {n // 2} ID card beds), seed {args.seed}, "
          f"values in {args.face or 'our print face'}; {fields} fields, {accepted} accepted, "
          f"{right} of them right\n")  # fmt: skip
    print("| per page | wall s | CPU s | full-page in-process / this (wall, CPU) |")
    print("|---|---:|---:|---:|")
    base = clock["in-process"]
    labels = {
        "ours": "capture + OCR of every field (ours)",
        "in-process": "full-page tesseract, in-process",
        "command line": "full-page tesseract, command line (CPU: the child's not counted)",
    }
    for name, (wall, cpu) in clock.items():
        ratio = f"{base[0] / wall:.2f}x, {base[1] / cpu:.2f}x"
        print(f"| {labels[name]} | {wall / n:.2f} | {cpu / n:.2f} | {ratio} |")
    print(f"\nours against the command line (wall): {clock['command line'][0] / clock['ours'][0]:.2f}x")


if __name__ == "__main__":
    main()
