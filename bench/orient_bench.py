"""Pages of no template after capture: how far from upright and how skewed, against the rotation applied.

    .venv/bin/python bench/orient_bench.py [--pages 16] [--seed 5]

Generated letters of Chinese text (tests/capture/other_pages.py), scanned at 200-300 dpi with noise and
JPEG, each turned by a quarter turn (0, 90, 180, 270, in turn) plus a skew drawn from ±9 degrees. Each
output is compared with the clean page by feature matching (ORB, RANSAC similarity), independently of
how capture straightened it: the residual angle is what a reader would see. "before" is the page as it
was stored until now (decoded, untouched), measured the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

cv2.setNumThreads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=16)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    from capture.decode import Page
    from capture.pipeline import capture
    from ocr.tesseract import orientation
    from tests.capture.other_pages import letter_page, residual_angle
    from tests.capture.scans import scan_page

    rng = np.random.default_rng(args.seed)
    rows, seconds = [], []
    for i in range(args.pages):
        clean = letter_page(rng, lines=int(rng.integers(6, 26)))
        turn, skew = 90 * (i % 4), float(rng.uniform(-9, 9))
        dpi = float(rng.choice([200, 300]))
        image, _ = scan_page(clean, rng, dpi=dpi, angle=turn + skew, noise=4, jpeg=85)
        start = time.perf_counter()
        (document,) = capture([Page(1, image, dpi)], orientation=orientation)
        seconds.append(time.perf_counter() - start)
        before, after = residual_angle(clean, image), residual_angle(clean, document.images[0])
        rows.append((turn, skew, before, after))
    print(f"{'applied':>16} {'before':>8} {'after':>8}")
    for turn, skew, before, after in rows:
        print(f"{turn:4d}° {skew:+6.2f}°   {_show(before)} {_show(after)}")
    for name, index in (("before", 2), ("after", 3)):
        found = [r[index] for r in rows if r[index] is not None]
        upright = sum(abs(a) < 45 for a in found)
        skews = [abs(a) for a in found if abs(a) < 45]
        print(
            f"{name}: upright {upright}/{len(rows)}, |skew| of upright pages median "
            f"{np.median(skews) if skews else float('nan'):.2f}°, max {max(skews, default=float('nan')):.2f}°"
            f" ({len(rows) - len(found)} not measurable)"
        )
    print(f"capture of a page of no template: median {np.median(seconds):.2f} s, max {max(seconds):.2f} s")


def _show(angle: float | None) -> str:
    return f"{angle:+7.2f}°" if angle is not None else "       -"


if __name__ == "__main__":
    main()
