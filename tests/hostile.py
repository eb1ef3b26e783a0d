"""The hostile-file corpus: malformed, lying and bomb uploads, built byte by byte the same way on every run.

``corpus()`` returns each file with the name it is uploaded under (the extension may lie) and what must
become of it: refused at upload (``refused``: 415), or stored and then read (``error`` empty) or failed
with an error matching ``error``. Generated rather than checked in, so a reviewer can read how each
file is malformed; the bombs are a few KB here and gigabytes once inflated.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import random
import resource
import select
import signal
import struct
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

from PIL import Image, ImageDraw


@dataclass(frozen=True)
class Hostile:
    name: str
    filename: str  # uploaded under this name: the extension may lie
    data: bytes
    error: str  # a regex the scan's error matches; "" when the file is read despite the damage
    refused: bool = False  # the upload itself is refused (415): nothing is stored
    # Where the file is read but slowly: also right is the decoder's own time limit refusing it, as it does
    # on a busy machine (the suite runs two test processes on two cores).
    or_slow: bool = False


# ---- valid seeds ----------------------------------------------------------------------------------


def page_image(size: tuple[int, int] = (160, 120)) -> Image.Image:
    """Return a small grey page with a little text and a frame (the mutation fuzzer's seed)."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((4, 4, size[0] - 5, size[1] - 5), outline=0)
    draw.text((10, 10), "hostile 1", fill=0)
    return image


def image_file(fmt: str, size: tuple[int, int] = (160, 120), frames: int = 1, **save) -> bytes:
    image = page_image(size)
    out = io.BytesIO()
    if frames > 1:
        save.update(save_all=True, append_images=[image] * (frames - 1))
    image.save(out, format=fmt, dpi=(200, 200), **save)
    return out.getvalue()


def pdf_file(
    objects: list[bytes], *, root: int = 1, xref: bytes | None = None, startxref: int | None = None
) -> bytes:
    """Return a PDF of the numbered objects (1, 2, ...) with a correct xref table, unless one is given."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    where = len(out)
    if xref is None:
        xref = b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        xref += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += xref
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\n" % (len(objects) + 1, root)
    out += b"startxref\n%d\n%%%%EOF\n" % (where if startxref is None else startxref)
    return bytes(out)


def stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def one_page_pdf(
    content: bytes = b"BT /F1 24 Tf 72 720 Td (hostile 1) Tj ET",
    media_box: bytes = b"[0 0 595 842]",
    content_filter: bytes = b"",
    resources: bytes = b"<< /Font << /F1 5 0 R >> >>",
    extra: tuple[bytes, ...] = (),
) -> bytes:
    """Return a one-page PDF; objects 6, 7... are ``extra`` (e.g. an image the content draws)."""
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox %s /Contents 4 0 R /Resources %s >>"
            % (media_box, resources),
            stream(content_filter, content),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            *extra,
        ]
    )


# ---- building blocks for bombs --------------------------------------------------------------------


@functools.cache
def deflate_bomb(size: int, fill: int = 0, chunk: int = 1 << 20) -> bytes:
    """Return a zlib stream of ``size`` bytes of ``fill`` (a multiple of ``chunk``), built without
    compressing them all: after a full flush every chunk compresses to the same bytes, so one is
    repeated, and the Adler-32 of a run of one byte value has a closed form."""
    assert size % chunk == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes([fill]) * chunk
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    steady = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert steady == compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    last = compressor.flush()
    low = (1 + fill * size) % 65521
    high = (size + fill * size * (size + 1) // 2) % 65521
    return b"\x78\xda" + first + steady * (size // chunk - 1) + last + struct.pack(">I", high << 16 | low)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, idat: bytes = zlib.compress(b"\x00" * 1000)) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """Return a small valid JPEG with its frame header (SOF0) rewritten to declare width x height."""
    data = bytearray(image_file("JPEG", quality=50))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff_pages(pages: list[dict[int, tuple[int, list[int]]]], strip: bytes = b"\x00") -> bytes:
    """Return a little-endian TIFF with one IFD per entry of ``pages`` ({tag: (type, values)}); every
    page's strip is the same few bytes. Tag 273 (StripOffsets) is filled in."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    strip_at = len(out)
    out += strip
    pointer = 4  # where the offset of the next IFD goes: the header's, then each IFD's last word
    for tags in pages:
        tags = {**tags, 273: (4, [strip_at]), 279: (4, [len(strip)])}
        ifd = len(out)
        struct.pack_into("<I", out, pointer, ifd)
        out += struct.pack("<H", len(tags))
        for tag in sorted(tags):
            kind, values = tags[tag]
            fmt = {3: "<H", 4: "<I"}[kind]
            packed = b"".join(struct.pack(fmt, v) for v in values).ljust(4, b"\x00")
            assert len(packed) == 4, "one value per tag here"
            out += struct.pack("<HHI", tag, kind, len(values)) + packed
        pointer = len(out)
        out += b"\x00\x00\x00\x00"
    return bytes(out)


def grey_tiff_tags(width: int, height: int) -> dict[int, tuple[int, list[int]]]:
    # ImageWidth, ImageLength, BitsPerSample, Compression (none), Photometric (min-is-black), RowsPerStrip
    return {
        256: (4, [width]),
        257: (4, [height]),
        258: (3, [8]),
        259: (3, [1]),
        262: (3, [1]),
        278: (4, [height]),
    }


def _noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


# ---- the corpus -----------------------------------------------------------------------------------


TOO_BIG = r"pixels|too large"  # the pixel limit's messages, for images and for PDF pages
SLOW_OR_BIG = r"takes more than \d+ s to read|needs more than \d+ MiB to read"  # the decoder's limits


@functools.cache
def corpus() -> tuple[Hostile, ...]:
    """Return every hostile file, each at most a few hundred KB (the tests' upload limit is 2 MiB)."""
    jpeg, png = image_file("JPEG", size=(800, 600), quality=80), image_file("PNG", size=(800, 600))
    tiff = image_file("TIFF", size=(800, 600))
    pdf = one_page_pdf()
    body_start = pdf.index(b"1 0 obj")
    xref_at = pdf.rindex(b"\nxref\n") + 1
    gib = 1 << 30
    double_flate = b"/Filter [/FlateDecode /FlateDecode]"
    image_bomb = stream(
        b"/Type /XObject /Subtype /Image /Width 32768 /Height 32768 /ColorSpace /DeviceGray"
        b" /BitsPerComponent 8 " + double_flate,
        zlib.compress(deflate_bomb(gib, 255), 9),
    )
    many_pages = pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count 100000 >>" % b" ".join([b"3 0 R"] * 100_000),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        ]
    )
    files = [
        # Cut short: the decoders must say "truncated", not return half a page or crash.
        Hostile("truncated_jpeg", "scan.jpg", jpeg[: len(jpeg) // 2], r"damaged image/jpeg.*truncated"),
        Hostile("truncated_png", "scan.png", png[: len(png) // 2], r"damaged image/png"),
        Hostile("truncated_tiff", "scan.tif", tiff[: len(tiff) // 2], r"damaged image/tiff"),
        Hostile("png_header_only", "scan.png", png[:33], r"damaged image/png"),
        Hostile("truncated_pdf", "scan.pdf", pdf[: len(pdf) // 2], r"damaged PDF"),
        # Broken cross-reference tables: pdfium rebuilds them from the objects, so the page is read.
        Hostile("pdf_xref_garbage_offsets", "scan.pdf", _garbage_xref(pdf, xref_at), ""),
        Hostile("pdf_startxref_past_the_end", "scan.pdf", pdf_file_startxref(pdf, 10**12), ""),
        Hostile("pdf_without_xref", "scan.pdf", pdf[:xref_at] + pdf[pdf.index(b"trailer", xref_at) :], ""),
        # Nothing to rebuild from: no trailer to name the catalogue, or no objects at all.
        Hostile("pdf_without_trailer", "scan.pdf", pdf[:xref_at] + b"%%EOF\n", r"damaged PDF"),
        Hostile("pdf_xref_only", "scan.pdf", b"%PDF-1.7\n" + pdf[xref_at:], r"damaged PDF"),
        Hostile(
            "pdf_body_scrambled",
            "scan.pdf",
            pdf[:body_start] + _noise(3, 4000) + pdf[xref_at:],
            r"damaged PDF",
        ),
        # Declared sizes far beyond any page: refused from the header, before a pixel is allocated.
        Hostile("png_100000x100000", "scan.png", png_declaring(100_000, 100_000), TOO_BIG),
        Hostile(
            "png_9000x9000", "scan.png", png_declaring(9000, 9000), TOO_BIG
        ),  # over our limit, not Pillow's
        Hostile("png_2147483647_wide", "scan.png", png_declaring(2**31 - 1, 1), TOO_BIG),
        Hostile("jpeg_sof_65000x65000", "scan.jpg", jpeg_declaring(65000, 65000), TOO_BIG),
        Hostile("jpeg_sof_9000x9000", "scan.jpg", jpeg_declaring(9000, 9000), TOO_BIG),
        # Within the limit, but the data for 56 Mpx is a few KB: libjpeg fills the rest in grey, as for any
        # JPEG cut short after its first scan lines.
        Hostile("jpeg_sof_7000x8000", "scan.jpg", jpeg_declaring(7000, 8000), ""),
        Hostile("tiff_100000x100000", "scan.tif", tiff_pages([grey_tiff_tags(100_000, 100_000)]), TOO_BIG),
        Hostile(
            "tiff_4000_pages",
            "stack.tif",
            tiff_pages([grey_tiff_tags(1, 1)] * 4000),
            r"\d+ pages, more than \d+",
        ),
        Hostile("tiff_ifd_loop", "scan.tif", _tiff_ifd_loop(), ""),
        Hostile(
            "tiff_second_page_without_width",
            "stack.tif",
            tiff_pages([grey_tiff_tags(8, 8), {t: v for t, v in grey_tiff_tags(8, 8).items() if t != 256}]),
            r"damaged image/tiff",
        ),
        Hostile("png_text_bomb", "scan.png", _png_with_text_bomb(), r"damaged image/png"),
        # PDF bombs: a content stream and an image of a gigabyte and more, in a few KB.
        Hostile(
            "pdf_flate_bomb_content",
            "bomb.pdf",
            one_page_pdf(zlib.compress(deflate_bomb(2 * gib, 32), 9), content_filter=double_flate),
            SLOW_OR_BIG,
        ),
        Hostile(
            "pdf_flate_bomb_image",
            "bomb.pdf",
            one_page_pdf(
                b"q 595 0 0 842 0 0 cm /Im1 Do Q",
                resources=b"<< /XObject << /Im1 6 0 R >> >>",
                extra=(image_bomb,),
            ),
            "",  # pdfium reads an image row by row, scaling as it goes: 3 s and ~300 MiB
            or_slow=True,
        ),
        Hostile(
            "pdf_content_stream_2000_times",
            "bomb.pdf",
            _pdf_contents_repeated(zlib.compress(deflate_bomb(16 << 20, 32), 9), 2000),
            SLOW_OR_BIG,
        ),
        # Time bombs: small files that keep a decoder busy for minutes.
        Hostile("pdf_100000_strokes", "slow.pdf", _pdf_strokes(100_000), SLOW_OR_BIG),
        Hostile("jpeg_1000_progressive_scans", "slow.jpg", _jpeg_scans(1000), SLOW_OR_BIG),
        Hostile("pdf_mediabox_14400pt", "scan.pdf", one_page_pdf(media_box=b"[0 0 14400 14400]"), TOO_BIG),
        # A box pdfium cannot use (beyond any number, or empty) falls back to US Letter.
        Hostile("pdf_mediabox_1e30", "scan.pdf", one_page_pdf(media_box=b"[0 0 1e30 1e30]"), ""),
        Hostile("pdf_mediabox_empty", "scan.pdf", one_page_pdf(media_box=b"[0 0 0 0]"), ""),
        Hostile("pdf_100000_pages", "scan.pdf", many_pages, r"\d+ pages, more than \d+"),
        # The page the loop hides is refused alone; the real page is read.
        Hostile("pdf_page_tree_loop", "scan.pdf", _pdf_page_tree_loop(), ""),
        # The name lies; the bytes decide.
        Hostile("pdf_named_jpg", "photo.jpg", pdf, ""),
        Hostile("text_named_pdf", "policy.pdf", b"This is not a PDF, just a note.\n" * 20, "", refused=True),
        Hostile(
            "exe_named_png", "scan.png", b"MZ\x90\x00\x03\x00\x00\x00" + _noise(4, 4000), "", refused=True
        ),
        Hostile("zero_bytes", "scan.png", b"", "", refused=True),
        Hostile("one_byte", "scan.jpg", b"\xff", "", refused=True),
        Hostile("jpeg_magic_only", "scan.jpg", b"\xff\xd8\xff", r"damaged image/jpeg"),
        Hostile("pdf_magic_only", "scan.pdf", b"%PDF-", r"damaged PDF"),
        # Polyglots and garbage: whatever the first bytes say is what is tried.
        Hostile("jpeg_magic_then_pdf", "scan.pdf", b"\xff\xd8\xff" + pdf, r"damaged image/jpeg"),
        Hostile("html_then_pdf", "page.html", b"<html><body>" + b" " * 500 + pdf, ""),
        Hostile("png_then_zip", "scan.png", png + b"PK\x03\x04" + _noise(5, 2000), ""),
        Hostile("garbage", "scan.bin", _noise(6, 50_000), "", refused=True),
        Hostile("pdf_magic_then_garbage", "scan.pdf", b"%PDF-1.4\n" + _noise(7, 50_000), r"damaged PDF"),
        Hostile("tiff_magic_then_garbage", "scan.tif", b"II*\x00" + _noise(8, 50_000), r"damaged image/tiff"),
    ]
    return tuple(files)


def by_name(name: str) -> Hostile:
    return next(h for h in corpus() if h.name == name)


def pdf_file_startxref(pdf: bytes, where: int) -> bytes:
    head, _, _ = pdf.rpartition(b"startxref\n")
    return head + b"startxref\n%d\n%%%%EOF\n" % where


def _garbage_xref(pdf: bytes, xref_at: int) -> bytes:
    """Return the PDF with every xref offset replaced by a large wrong number."""
    table_end = pdf.index(b"trailer", xref_at)
    lines = pdf[xref_at:table_end].split(b"\n")
    bad = [
        line if not line.endswith(b" n ") else b"%010d 00000 n " % (9_876_543_210 - i)
        for i, line in enumerate(lines)
    ]
    return pdf[:xref_at] + b"\n".join(bad) + pdf[table_end:]


def _tiff_ifd_loop() -> bytes:
    """Return a one-page TIFF whose next-IFD pointer points back at its own IFD (an endless stack)."""
    data = bytearray(tiff_pages([grey_tiff_tags(1, 1)]))
    first = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, first)[0]
    struct.pack_into("<I", data, first + 2 + 12 * count, first)
    return bytes(data)


def _png_with_text_bomb() -> bytes:
    """Return a small PNG with a compressed text chunk (zTXt) inflating to 256 MiB."""
    png = image_file("PNG")
    text = png_chunk(b"zTXt", b"Comment\x00\x00" + deflate_bomb(256 << 20, 32))
    return png[:33] + text + png[33:]


def _pdf_page_tree_loop() -> bytes:
    """Return a PDF whose page tree holds itself as a kid."""
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        ]
    )


def _pdf_contents_repeated(flate_twice: bytes, times: int) -> bytes:
    """Return a one-page PDF whose page lists the same (compressed) content stream ``times`` times:
    pdfium joins a page's content streams into one buffer before it parses them."""
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents [%s] >>"
            % b" ".join([b"4 0 R"] * times),
            stream(b"/Filter [/FlateDecode /FlateDecode]", flate_twice),
        ]
    )


def repeated_page_pdf(pages: int) -> bytes:
    """Return a PDF listing one page of text (no form, no card: an "other" page) ``pages`` times; each
    renders to 26 MB of RGB at 300 dpi."""
    lines = b"(claim evidence: a page of plain text, no form and no card) Tj 0 -16 Td " * 48
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join([b"3 0 R"] * pages), pages),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            stream(b"", b"BT /F1 12 Tf 40 800 Td " + lines + b"ET"),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def _pdf_strokes(count: int) -> bytes:
    """Return a one-page PDF drawing ``count`` page-long diagonal lines (~1 ms each at 300 dpi)."""
    return one_page_pdf(
        zlib.compress(b"0 0 m 595 842 l S\n" * count, 9), content_filter=b"/Filter /FlateDecode"
    )


def _jpeg_scans(extra: int) -> bytes:
    """Return a progressive 7000x8000 JPEG with its last scan repeated ``extra`` times: libjpeg goes over
    the whole image for every scan (about 0.1 s each) and only warns that the repeats are bogus."""
    out = io.BytesIO()
    Image.new("L", (7000, 8000), 128).save(out, format="JPEG", progressive=True, quality=90)
    data = out.getvalue()
    end = data.rindex(b"\xff\xd9")
    last_scan = data[data.rindex(b"\xff\xda", 0, end) : end]
    return data[:end] + last_scan * extra + b"\xff\xd9"


# ---- measuring: what decoding each file does, and what it costs ---------------------------------------


@dataclass(frozen=True)
class Measured:
    name: str
    size: int  # bytes of the file
    outcome: str  # "read", "unreadable" (UnreadableScan) or "bug" (anything else), "hung" or "crashed"
    detail: str  # pages read, or the error's message
    seconds: float
    decoder_mib: float  # peak RSS of the decoding child process
    caller_mib: float  # peak RSS of the process that called decode and received the pages


def measure(hostile: Hostile, page_seconds: float, limit_seconds: float = 120) -> Measured:
    """Return what ``decode`` makes of the file and what that costs (see measure_call)."""

    def read() -> list[str]:
        from capture.decode import UnreadableScan, decode

        try:
            pages = decode(hostile.data, page_seconds=page_seconds)
        except UnreadableScan as exc:
            return ["unreadable", exc.message]
        return ["read", f"{len(pages)} page(s), first {pages[0].image.shape if pages else None}"]

    return measure_call(hostile.name, len(hostile.data), read, limit_seconds)


def measure_call(name: str, size: int, call: Callable[[], list[str]], limit_seconds: float) -> Measured:
    """Return the outcome and detail ``call`` returns (or "bug" and the exception it raises), run in a
    forked process so that its peak RSS (and its children's) is its alone; killed past ``limit_seconds``."""
    reader, writer = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        try:
            result = call()
        except BaseException as exc:  # noqa: BLE001 - reported, not raised: a bug the test names
            result = ["bug", f"{type(exc).__name__}: {exc}"]
        peaks = [
            resource.getrusage(who).ru_maxrss / 1024
            for who in (resource.RUSAGE_CHILDREN, resource.RUSAGE_SELF)
        ]
        os.write(writer, json.dumps(result + peaks).encode())
        os._exit(0)
    os.close(writer)
    chunks = []
    while select.select([reader], [], [], max(0.0, limit_seconds - (time.perf_counter() - start)))[0]:
        chunk = os.read(reader, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    seconds = time.perf_counter() - start
    os.close(reader)
    if not chunks:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        outcome = "hung" if seconds >= limit_seconds else "crashed"
        return Measured(name, size, outcome, f"wait status {status}", seconds, 0.0, 0.0)
    outcome, detail, decoder_mib, caller_mib = json.loads(b"".join(chunks))
    return Measured(name, size, outcome, detail, seconds, decoder_mib, caller_mib)


def main() -> None:
    """Print one JSON line per hostile file: what decoding it did and what it cost."""
    from capture.decode import PAGE_SECONDS

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--page-seconds", type=float, default=PAGE_SECONDS)
    parser.add_argument("names", nargs="*", help="only these files (default: all)")
    args = parser.parse_args()
    for hostile in corpus():
        if not args.names or hostile.name in args.names:
            print(json.dumps(asdict(measure(hostile, args.page_seconds))), flush=True)


if __name__ == "__main__":
    sys.exit(main())
