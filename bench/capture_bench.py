"""Capture throughput per core and peak memory, for forms, ID card pages and a batch stack, at 300 dpi.

    .venv/bin/python bench/capture_bench.py [--pages 20]

Each scenario runs in its own process on one core (OMP/OpenCV threads 1), so its peak RSS is its
own. The same run decodes the same files as a baseline, so the ratio holds on a noisy shared machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _prepare(directory: Path, pages: int) -> dict[str, list[Path]]:
    import numpy as np
    from PIL import Image

    from capture.render import render_form, render_idcard, render_separator
    from capture.specimens import card_values, form_values
    from capture.templates import latest
    from tests.capture.scans import place_cards, scan_page

    rng, values = np.random.default_rng(1), random.Random(1)
    files: dict[str, list[Path]] = {"forms": [], "cards": [], "stack": []}
    for i in range(pages):
        form, _ = scan_page(
            render_form(latest("application_form"), form_values(values)),
            rng,
            dpi=300,
            angle=rng.uniform(-8, 8),
            noise=4,
        )
        files["forms"].append(directory / f"form{i}.png")
        Image.fromarray(form).save(files["forms"][-1], dpi=(300, 300))
        v = card_values(values)
        sides = [render_idcard(latest("idcard_front"), v), render_idcard(latest("idcard_back"), v)]
        page, _ = place_cards(sides, rng, dpi=300)
        files["cards"].append(directory / f"cards{i}.png")
        Image.fromarray(page).save(files["cards"][-1], dpi=(300, 300))
    separator = render_separator(300)
    stack = []
    for i in range(pages):
        stack.append(Image.open(files["forms"][i]).convert("L"))
        if i % 3 == 2:
            stack.append(Image.fromarray(separator))
    out = io.BytesIO()
    stack[0].save(
        out, format="TIFF", save_all=True, append_images=stack[1:], dpi=(300, 300), compression="tiff_deflate"
    )
    files["stack"].append(directory / "stack.tif")
    files["stack"][0].write_bytes(out.getvalue())
    return files


def _peak_mib() -> float:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a child would report
    # the parent's peak (seen here: 706 MiB in every scenario, the parent's after preparing the pages).
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def _run(paths: list[str]) -> dict:
    """In the child: stream-decode every file (the baseline); stream decode + capture as the worker does
    (its peak memory is the worker's); then capture alone, timed on the pages decoded before. Decoding
    runs in a forked child of its own (capture/decode.py) while capture works on the pages already
    sent, so the streamed run's time minus the decode time is not capture's (it came out at 12 ms a page
    for the TIFF stack, and below zero once): capture is timed on its own."""
    from capture.decode import iter_pages
    from capture.pipeline import capture, capture_stream

    capture([next(iter_pages(Path(paths[0]).read_bytes()))])  # warm up: templates, thumbnails, imports
    decode_seconds = capture_seconds = 0.0
    pages = documents = 0
    for path in paths:
        data = Path(path).read_bytes()
        start = time.perf_counter()
        pages += sum(1 for _ in iter_pages(data))
        decode_seconds += time.perf_counter() - start
        documents += sum(1 for _ in capture_stream(iter_pages(data)))
    peak_mib = _peak_mib()
    for path in paths:
        decoded = list(iter_pages(Path(path).read_bytes()))
        start = time.perf_counter()
        sum(1 for _ in capture_stream(iter(decoded)))
        capture_seconds += time.perf_counter() - start
        del decoded
    return {
        "pages": pages,
        "documents": documents,
        "capture_s": capture_seconds,
        "decode_s": decode_seconds,
        "peak_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--child", nargs="*")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_run(args.child)))
        return
    env = {**os.environ, "OMP_THREAD_LIMIT": "1", "OPENCV_FOR_THREADS_NUM": "1", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        files = _prepare(Path(tmp), args.pages)
        print(
            "| input (300 dpi) | pages | documents | capture pages/s per core | ms/page "
            "| decode ms/page (baseline) | capture / decode | peak RSS MiB |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, paths in files.items():
            out = subprocess.run(
                [sys.executable, __file__, "--child", *map(str, paths)],
                env=env, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            r = json.loads(out)
            per_page = r["capture_s"] / r["pages"]
            decode_per_page = r["decode_s"] / r["pages"]
            label = {"forms": "application form, skewed ±8°", "cards": "A4 bed, two ID cards at any angle",
                     "stack": "TIFF stack: forms + separator every 3rd"}[name]  # fmt: skip
            print(
                f"| {label} | {r['pages']} | {r['documents']} | {1 / per_page:.1f} | {per_page * 1000:.0f} | "
                f"{decode_per_page * 1000:.0f} | {per_page / decode_per_page:.2f} | {r['peak_mib']:.0f} |"
            )


if __name__ == "__main__":
    main()
