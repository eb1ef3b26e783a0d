"""Blank-page detection: pages with content dropped as blank (false drops) and blank sheets kept (false
keeps), the rule before this change and the one now, on the same generated pages in one run.

    .venv/bin/python bench/blank_bench.py [--pages 10] [--seed 3]

Content (tests/capture/other_pages.py): letters, a page of one printed line, white text on a dark page,
underexposed scans (paper at grey 50) of a letter and of one line, a line in light pencil grey. Blank:
clean, noisy, dusty, show-through of the back, grey recycled paper, underexposed, an edge shadow, a
black sheet. Each page is scanned at 150-300 dpi, skewed up to 3 degrees, with noise and JPEG.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

cv2.setNumThreads(1)
BLANK_KINDS = ("clean", "noisy", "dusty", "show-through", "grey", "dark", "edge", "black")
CONTENT_KINDS = ("letter", "one line", "light on dark", "underexposed letter", "underexposed line", "pencil")


def old_is_blank(gray: np.ndarray, dpi: float) -> bool:
    """The rule until now: under 0.15 % of the page darker than the paper (90th percentile) by 60."""
    from capture.detect import shrink, work_scale

    small = cv2.medianBlur(shrink(gray, min(work_scale(gray, dpi), 0.5)), 3)
    paper = float(np.percentile(small, 90))
    return float(np.mean(small < paper - 60)) < 0.0015


def new_is_blank(gray: np.ndarray, dpi: float) -> bool:
    from capture.detect import marks_mm2
    from capture.pipeline import BLANK_MARKS_MM2

    return marks_mm2(gray, dpi) < BLANK_MARKS_MM2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=10, help="pages of each kind")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    from tests.capture.other_pages import blank_page, content
    from tests.capture.scans import scan_page

    rng = np.random.default_rng(args.seed)
    rows, seconds = [], []
    for blank, kinds in ((False, CONTENT_KINDS), (True, BLANK_KINDS)):
        for kind in kinds:
            judged = {"old": 0, "new": 0}
            for _ in range(args.pages):
                clean = blank_page(rng, kind) if blank else content(kind, rng)
                dpi = float(rng.choice([150, 200, 300]))
                paper = int(np.median(clean[::50, ::50]))
                image, _ = scan_page(
                    clean, rng, dpi=dpi, angle=float(rng.uniform(-3, 3)), noise=3, jpeg=85, lid=paper
                )
                judged["old"] += old_is_blank(image, dpi) != blank
                start = time.perf_counter()
                judged["new"] += new_is_blank(image, dpi) != blank
                seconds.append(time.perf_counter() - start)
            rows.append(("blank" if blank else "content", kind, judged["old"], judged["new"]))
    what = {"content": "dropped as blank", "blank": "kept as content"}
    print(f"| page | kind | wrongly judged before (of {args.pages}) | now |")
    print("| --- | --- | --- | --- |")
    for group, kind, old, new in rows:
        print(f"| {group} | {kind} | {old} {what[group]} | {new} |")
    for group in ("content", "blank"):
        total = args.pages * sum(1 for r in rows if r[0] == group)
        old = sum(r[2] for r in rows if r[0] == group)
        new = sum(r[3] for r in rows if r[0] == group)
        print(f"{group}: {what[group]} before {old}/{total}, now {new}/{total}")
    print(f"the new test: median {1000 * np.median(seconds):.0f} ms a page")


if __name__ == "__main__":
    main()
