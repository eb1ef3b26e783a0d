"""What each file of the hostile corpus (tests/hostile.py) does to decode, and what it costs; what real
pages at the pixel limit cost (the limits must not refuse them); and what a long run of "other" pages
costs the capture stage.

    .venv/bin/python bench/hostile_bench.py [--page-seconds 30] [--run 10,40,100] [NAME ...]

Each file is decoded by a process forked for it alone from this one (imports done, corpus built), so
its peak RSS is its own: "decoder" is the child decode starts to run Pillow or pdfium in, "caller" the
process that receives the pages (the worker, in production). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from capture.decode import PAGE_SECONDS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--page-seconds", type=float, default=PAGE_SECONDS, help="decode's limit a page")
    parser.add_argument("--run", default="10,40,100", help="lengths of the runs of other pages to capture")
    parser.add_argument("names", nargs="*", help="only these files (default: all)")
    args = parser.parse_args()
    _decode_table(args.page_seconds, args.names)
    if not args.names:
        print()
        _limit_table(args.page_seconds)
    if not args.names and args.run:
        print()
        _run_table([int(n) for n in args.run.split(",")])


def _decode_table(page_seconds: float, names: list[str]) -> None:
    from tests.hostile import corpus, measure

    print("| file | size | outcome | decoder peak RSS MiB | caller peak RSS MiB | seconds | message |")
    print("| --- | ---: | --- | ---: | ---: | ---: | --- |")
    for hostile in corpus():
        if names and hostile.name not in names:
            continue
        m = measure(hostile, page_seconds, limit_seconds=max(120, 3 * page_seconds))
        detail = m.detail if len(m.detail) <= 90 else m.detail[:87] + "..."
        print(
            f"| {m.name} | {_size(m.size)} | {m.outcome} | {m.decoder_mib:.0f} | {m.caller_mib:.0f} | "
            f"{m.seconds:.2f} | {detail.replace('|', '/')} |",
            flush=True,
        )


def _limit_table(page_seconds: float) -> None:
    """Decode real (not hostile) pages just under the 60 Mpx limit: 7700 x 7700 colour."""
    import io

    import numpy as np
    from PIL import Image, ImageFile

    from tests.hostile import Hostile, measure, one_page_pdf

    side = 7700
    tile = np.random.default_rng(1).integers(0, 255, (256, 256, 3), dtype=np.uint8)  # incompressible
    image = Image.fromarray(np.tile(tile, (side // 256 + 1, side // 256 + 1, 1))[:side, :side])
    ImageFile.MAXBLOCK = 1 << 28  # Pillow's buffer for a progressive JPEG this size
    pages = [("pdf_page_1842pt_at_300dpi", one_page_pdf(media_box=b"[0 0 1842 1842]"))]
    for name, fmt, save in [
        ("png_rgb_7700x7700", "PNG", {"compress_level": 1}),
        ("tiff_deflate_rgb_7700x7700", "TIFF", {"compression": "tiff_adobe_deflate"}),
        (
            "jpeg_progressive_444_rgb_7700x7700",
            "JPEG",
            {"progressive": True, "quality": 90, "subsampling": 0},
        ),
    ]:
        out = io.BytesIO()
        image.save(out, format=fmt, **save)
        pages.append((name, out.getvalue()))
    del image
    print(
        "| real page at the limit | size | outcome | decoder peak RSS MiB | caller peak RSS MiB | seconds |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for name, data in pages:
        m = measure(Hostile(name, "", data, ""), page_seconds)
        print(
            f"| {name} | {_size(m.size)} | {m.outcome} | {m.decoder_mib:.0f} | {m.caller_mib:.0f} | "
            f"{m.seconds:.2f} |",
            flush=True,
        )


def _run_table(lengths: list[int]) -> None:
    """Capture (decode + capture_stream, as the worker streams them) a PDF of N identical text pages."""
    from tests.hostile import measure_call, repeated_page_pdf

    print("| other pages in a row | PDF size | documents | peak RSS MiB (worker side) | seconds |")
    print("| ---: | ---: | --- | ---: | ---: |")
    for pages in lengths:
        pdf = repeated_page_pdf(pages)

        def run(pdf: bytes = pdf) -> list[str]:
            from capture.decode import iter_pages
            from capture.pipeline import capture_stream

            return ["read", ", ".join(str(len(d.pages)) for d in capture_stream(iter_pages(pdf)))]

        m = measure_call(f"{pages} pages", len(pdf), run, limit_seconds=1800)
        documents = m.detail if m.outcome == "read" else f"{m.outcome}: {m.detail}"
        print(
            f"| {pages} | {_size(m.size)} | {documents} | {m.caller_mib:.0f} | {m.seconds:.1f} |", flush=True
        )


def _size(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.0f} MiB"
    return f"{size} B" if size < 1024 else f"{size / 1024:.0f} KiB"


if __name__ == "__main__":
    main()
