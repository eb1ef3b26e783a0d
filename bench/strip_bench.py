"""What the key-entry page's strip costs: cutting the strip around a field from a stored 300 dpi page
(capture/strip.py: decode the page PNG, crop, scale to 150 dpi, outline the field, encode), against decoding
the same page PNG alone as the baseline measured in the same run. The strip is cut once per field and kept
beside the field image (keyentry.strip), so this is paid on a field's first showing only.

    .venv/bin/python bench/strip_bench.py --repeat 20
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from capture.decode import encode_png  # noqa: E402
from capture.render import render_form  # noqa: E402
from capture.strip import field_strip_png  # noqa: E402
from capture.templates import by_key  # noqa: E402

FIELDS = ("applicant_name", "insured_name", "beneficiary_name", "sum_insured")


def _ms(work, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    template = by_key("application_form/1")
    page = encode_png(render_form(template, {"applicant_name": "张三丰", "insured_name": "李四"}))

    def decode() -> None:
        with Image.open(io.BytesIO(page)) as image:
            np.asarray(image.convert("RGB"))

    baseline = _ms(decode, args.repeat)
    print(f"page PNG {len(page) / 1024:.0f} KiB; decode alone (baseline): {baseline:.0f} ms")
    print("| field | strip ms | strip KiB | strip / decode |")
    print("| --- | --- | --- | --- |")
    for name in FIELDS:
        box = template.field(name).box
        strip = field_strip_png(page, box)
        ms = _ms(lambda box=box: field_strip_png(page, box), args.repeat)
        print(f"| {name} | {ms:.0f} | {len(strip) / 1024:.0f} | {ms / baseline:.2f} |")


if __name__ == "__main__":
    main()
