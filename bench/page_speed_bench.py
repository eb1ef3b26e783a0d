"""Capture plus OCR of every field of a page, against full-page tesseract of the same page, side by side.

    .venv/bin/python bench/page_speed_bench.py [--pages 12] [--seed 53] [--face zenhei] [--rounds 1]

Held-out pages (a seed no rule was chosen on): half application forms, half A4 beds with an ID card's
two sides, their values printed in --face (ours when not given), scanned at 300 dpi with light
degradation. Each page is decoded once; then, one after the other on the same page (the order
alternating from page to page, so the machine's load falls on both alike):

- ours: capture (classify, align, cut the fields) and every field read and decided (ocr/pipeline.py),
  what a worker loads before it forks its jobs loaded beforehand (worker_process.preload: the engines,
  the card specimens, the faces), in this process: as the pages of one batch scan run in its job's
  child, each after the first. With --fork, each page in a child forked for it, as RQ forks one for
  each job (its CPU time is the child's): a scan of one page, paying what a job's child pays once (its
  first reads write to the engines' buffers made before the fork, which the kernel then copies; the
  lines drawn by earlier pages are not there);
- full-page tesseract, in-process (tesserocr, chi_sim+eng, the page's automatic segmentation, one
  thread), which extracts no fields at all; and the same through the `tesseract` command line
  (pytesseract: a process per page, as most pipelines call it).

Wall time and this process's CPU time are both reported (the CPU time is what a shared machine's other
work disturbs least). With --rounds N the pages are timed N times over and each round's CPU ratio is
given with their median: on a shared machine one round's ratio moves by 10-15 %. One core, as a batch
job runs: OMP_THREAD_LIMIT=1, OpenCV on one thread
(worker_process.opencv_on_one_thread).
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import random
import statistics
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


def forked(work, *args) -> tuple:
    """Return what work(*args) returns, run in a child forked for it, and the child's CPU time."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns to the parent's code, whatever happens
        code = 1
        try:
            os.close(read)
            with os.fdopen(write, "wb") as out:
                pickle.dump(work(*args), out)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        got = pickle.load(answer)
    _, status, usage = os.wait4(pid, 0)
    if status:
        raise RuntimeError(f"the forked child failed ({status})")
    return got, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--seed", type=int, default=53)
    parser.add_argument("--face", default=None, help="printing.FACES name the values are printed in")
    parser.add_argument("--rounds", type=int, default=1, help="time the pages this many times over")
    parser.add_argument("--fork", action="store_true", help="ours in a child forked for each page")
    args = parser.parse_args()

    import pytesseract
    import tesserocr
    from PIL import Image

    from ocr.tesseract import tessdata

    scans = pages(args.pages, args.seed, args.face)
    opencv_on_one_thread()  # as a worker that takes batch scans runs
    preload()
    gc.freeze()  # the scans too (preload froze what it made): a child's collections do not copy them
    full_page = tesserocr.PyTessBaseAPI(path=tessdata(), lang="chi_sim+eng")
    clock = {"ours": [0.0, 0.0], "in-process": [0.0, 0.0], "command line": [0.0, 0.0]}
    fields = accepted = right = 0

    def counts(image: np.ndarray, values: dict[str, str]) -> tuple[int, int, int]:
        """Capture and read the page: its fields, those accepted, those accepted right."""
        out = [0, 0, 0]
        for doc in capture([Page(1, image, 300.0)]):
            for name, d in read_document(doc).items():
                out[0] += 1
                if d.status == FieldStatus.accepted:
                    out[1] += 1
                    kind = str(doc.template.field(name).kind)
                    out[2] += d.value == validate(kind, values[name], name).value
        return out[0], out[1], out[2]

    def ours(image: np.ndarray, values: dict[str, str]) -> float:
        """Capture and read the page (with --fork in a child forked for it); return the child's CPU time."""
        nonlocal fields, accepted, right
        if args.fork:
            got, cpu = forked(counts, image, values)
        else:
            got, cpu = counts(image, values), 0.0
        fields, accepted, right = fields + got[0], accepted + got[1], right + got[2]
        return cpu

    def in_process(image: np.ndarray, _: dict[str, str]) -> float:
        full_page.SetImage(Image.fromarray(image))
        full_page.GetUTF8Text()
        return 0.0

    def command_line(image: np.ndarray, _: dict[str, str]) -> float:
        pytesseract.image_to_string(image, lang="chi_sim+eng")
        return 0.0

    runs = [("ours", ours), ("in-process", in_process), ("command line", command_line)]
    ratios = []  # each round's CPU ratio, full-page in-process / ours
    for _ in range(args.rounds):
        before = {name: c[1] for name, c in clock.items()}
        for i, (image, values) in enumerate(scans):
            for name, run in runs if i % 2 == 0 else runs[::-1]:
                wall, cpu = time.perf_counter(), time.process_time()
                child = run(image, values)
                clock[name][0] += time.perf_counter() - wall
                clock[name][1] += time.process_time() - cpu + child
        ratios.append((clock["in-process"][1] - before["in-process"]) / (clock["ours"][1] - before["ours"]))
    full_page.End()

    n = len(scans) * args.rounds
    fields, accepted, right = (x // args.rounds for x in (fields, accepted, right))
    k = len(scans)
    print(f"{k} pages ({(k + 1) // 2} forms, {k // 2} ID card beds), seed {args.seed}, "
          f"values in {args.face or 'our print face'}; {fields} fields, {accepted} accepted, "
          f"{right} of them right; ours {'forked for each page' if args.fork else 'in this process'}"
          f"{f', {args.rounds} rounds' if args.rounds > 1 else ''}\n")  # fmt: skip
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
    if args.rounds > 1:
        rounds = ", ".join(f"{r:.2f}x" for r in ratios)
        median = statistics.median(ratios)
        print(f"full-page in-process / ours by CPU, each round: {rounds}; median {median:.2f}x")


if __name__ == "__main__":
    main()
