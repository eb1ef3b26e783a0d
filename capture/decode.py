"""decode: the bytes of an upload in, one grey or colour page image per page out.

The decoders (Pillow, pdfium) run in a child process with a memory and a time limit, so a file built to
make them allocate gigabytes or work for hours fails alone, with a clear error, and the worker goes on.
"""

from __future__ import annotations

import contextlib
import functools
import io
import multiprocessing
import os
import resource
import signal
import struct
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageOps, UnidentifiedImageError

from errors import BadInput
from media import SUPPORTED, sniff

# An A3 page at 600 dpi is 7016 x 9921 = 70 Mpx; anything far beyond is a decompression bomb.
MAX_PAGE_PIXELS = 60_000_000
MAX_PAGES = 500
PDF_RENDER_DPI = 300  # born-digital pages, and scanned pages whose image resolution cannot be told
MIN_PDF_DPI, MAX_PDF_DPI = 150, 600
# Seconds the decoder may take for one page. Real pages take well under one; a JPEG with thousands of
# progressive scans or a PDF page of 100 000 strokes takes minutes (bench/hostile_results.md).
PAGE_SECONDS = 30
# Memory the decoder may take beyond the process it starts from. The costliest real page measured, a
# progressive colour JPEG at the pixel limit, took 0.7 GiB (12 bytes a pixel: libjpeg's coefficients,
# Pillow's RGBX, the RGB copy; a photo turned upright by its EXIF orientation, 4 more for the turned
# copy); a flate bomb takes whatever it is given. A higher pixel limit raises it.
DECODE_MEMORY = 1 << 30
BYTES_PER_PIXEL = 16


class UnreadableScan(BadInput):
    """The upload is not an image or PDF we can read, or it is damaged."""

    error = "unreadable_scan"


Word = tuple[str, float, float, float, float]  # text, x0, y0, x1, y1 in mm from the page's top-left


@dataclass(frozen=True)
class Page:
    number: int  # 1-based within the upload
    image: np.ndarray  # uint8, HxW (grey) or HxWx3 (RGB); empty for a refused page
    dpi: float
    words: list[Word] | None = None  # a born-digital PDF page's text layer; None for scans
    refused: str | None = None  # why this page alone could not be read (too large, damaged, too slow)


def refused_page(number: int, reason: str) -> Page:
    """Return the stand-in for a page that cannot be read: the rest of its file is read on."""
    return Page(number, np.zeros((0, 0), np.uint8), 0.0, refused=reason)


def decode(
    data: bytes,
    max_pixels: int = MAX_PAGE_PIXELS,
    max_pages: int = MAX_PAGES,
    page_seconds: float = PAGE_SECONDS,
) -> list[Page]:
    """Return the pages of a JPEG, PNG, TIFF (multi-page) or PDF upload; raise UnreadableScan otherwise."""
    return list(iter_pages(data, max_pixels, max_pages, page_seconds))


def iter_pages(
    data: bytes,
    max_pixels: int = MAX_PAGE_PIXELS,
    max_pages: int = MAX_PAGES,
    page_seconds: float = PAGE_SECONDS,
) -> Iterator[Page]:
    """Yield the pages of an upload one at a time, so a long stack never sits in memory whole. A page that
    cannot be read (too large, damaged, too slow) comes as a refused page and the rest are read on;
    when no page at all can be read, UnreadableScan says why the first could not."""
    if not data:
        raise UnreadableScan("the file is empty (0 bytes)")
    media = sniff(data[:1024])
    if media is None:
        raise UnreadableScan(f"not a file we read: the first bytes match none of {', '.join(SUPPORTED)}")
    if media == "application/pdf":
        pages = functools.partial(_decode_pdf, data, max_pixels, max_pages)
    else:
        pages = functools.partial(_decode_raster, data, media, max_pixels, max_pages)
    memory = max(DECODE_MEMORY, BYTES_PER_PIXEL * max_pixels)
    return _some_page_read(_resumed(pages, media, page_seconds, memory))


def _some_page_read(pages: Iterator[Page]) -> Iterator[Page]:
    """Yield the pages, holding refused ones back until a page is read: a file none of whose pages can
    be read is refused whole, with the first page's reason."""
    held: list[Page] = []
    read = False
    for page in pages:
        if page.refused is not None and not read:
            held.append(page)
            continue
        read = True
        yield from held
        held = []
        yield page
    if held:
        more = f" (and {len(held) - 1} more pages refused)" if len(held) > 1 else ""
        raise UnreadableScan(f"{held[0].refused}{more}")


def _resumed(
    pages: Callable[[int], Iterator[Page]], media: str, seconds: float, memory: int
) -> Iterator[Page]:
    """Yield the pages a child decodes; when a page kills or stalls the child, that page is refused and
    a new child goes on from the next one. A child that dies before it has counted the pages takes the
    whole file with it."""
    start = 0
    while True:
        try:
            yield from _in_child(functools.partial(pages, start), media, seconds, memory, start)
            return
        except _PageLost as lost:
            yield refused_page(lost.number, lost.message)
            start = lost.number


class _PageLost(UnreadableScan):
    """The decoding child died or stalled on one page, after opening the file."""

    def __init__(self, number: int, message: str) -> None:
        super().__init__(message)
        self.number = number


def _in_child(
    pages: Callable[[], Iterator[Page | int]], media: str, seconds: float, memory: int, start: int = 0
) -> Iterator[Page]:
    """Yield the pages a child process decodes (from page ``start`` + 1), within ``memory`` more bytes and
    ``seconds`` a page.

    The child is forked, so it has the data and the decoders already loaded; it sends the page count
    once the file is open, then each page as a header and the raw pixels, and reads the next page while
    this process works on the last. A page that kills or stalls it, after the count, raises _PageLost."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:
        _decode_and_send(pages, receiver, sender, memory)  # never returns
    sender.close()
    number, status, counted = start, None, False
    try:
        while True:
            if not receiver.poll(seconds):
                message = (
                    f"{_kind(media)} page {number + 1} takes more than {seconds:g} s to read: the file is "
                    "damaged or built to stall readers; save the scan again and resend it"
                )
                raise _PageLost(number + 1, message) if counted else UnreadableScan(message)
            try:
                kind, value = receiver.recv()
                if kind == "done":
                    return
                if kind == "error":
                    raise value
                if kind == "count":
                    counted = True
                    continue
                number, shape, dpi, words, refused = value
                image = np.empty(shape, np.uint8)
                _read_into(receiver.fileno(), memoryview(image.reshape(-1)))
            except EOFError:
                receiver.close()  # a child still writing gets a broken pipe and exits
                _, status = os.waitpid(pid, 0)
                message = _death(status, media, number + 1, memory)
                raise (_PageLost(number + 1, message) if counted else UnreadableScan(message)) from None
            yield Page(number, image, dpi, words, refused)
    finally:
        receiver.close()
        if status is None:
            os.kill(pid, signal.SIGKILL)  # a no-op on a child that has exited but is not yet reaped
            os.waitpid(pid, 0)


def _decode_and_send(pages: Callable[[], Iterator[Page | int]], receiver, sender, memory: int) -> None:
    """In the child: send the page count, every page, then "done", or the error that stopped it; exit."""
    code = 0
    try:
        receiver.close()
        _limit_memory(memory)
        for page in pages():
            if isinstance(page, int):
                sender.send(("count", page))
                continue
            image = np.ascontiguousarray(page.image, np.uint8)
            sender.send(("page", (page.number, image.shape, page.dpi, page.words, page.refused)))
            _write_all(sender.fileno(), memoryview(image.reshape(-1)))
            del page, image
        sender.send(("done", None))
    except MemoryError:
        code = 3  # the parent finds the pipe closed early and says so
    except BrokenPipeError:
        pass  # the parent stopped reading
    except BaseException as exc:  # noqa: BLE001 - the parent raises it
        if not isinstance(exc, UnreadableScan):
            exc.add_note("in the decoding process:\n" + traceback.format_exc())
        try:
            sender.send(("error", exc))
        except Exception:
            sender.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        os._exit(code)


# The pixels go over the pipe raw, right after their header: Connection.send_bytes/recv_bytes_into
# copy a page three times more and took 60 ms for an A4 colour page, these 14 ms.
def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _read_into(fd: int, view: memoryview) -> None:
    while view:
        count = os.readv(fd, [view])
        if not count:
            raise EOFError
        view = view[count:]


def _limit_memory(memory: int) -> None:
    """Cap this process's address space at its present size plus ``memory`` bytes (Linux)."""
    try:
        with open("/proc/self/statm") as statm:
            present = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = present + memory if hard == resource.RLIM_INFINITY else min(hard, present + memory)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _death(status: int, media: str, number: int, memory: int) -> str:
    """Return why the decoding child ended before its last page: out of memory, or a crash."""
    how = f"signal {signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status) else "exit"
    return (
        f"{_kind(media)} page {number} needs more than {memory >> 20} MiB to read or crashes the reader "
        f"({how}): the file is damaged or a decompression bomb; save the scan again and resend it"
    )


def _kind(media: str) -> str:
    return "PDF" if media == "application/pdf" else media


# What Pillow's plugins raise on a malformed file besides OSError and ValueError; Image.open itself
# turns these into "cannot identify", but seeking to a later frame or loading lets them through
# (found by tests/capture/test_decode_fuzz.py: a TIFF frame without a width raises TypeError).
_PILLOW_FORMAT_ERRORS = (TypeError, IndexError, KeyError, struct.error)


def _decode_raster(
    data: bytes, media: str, max_pixels: int, max_pages: int, start: int = 0
) -> Iterator[Page | int]:
    """Yield the page count, then each frame from ``start`` on; a frame too large or damaged is refused."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            # Counted first, so a stack too long is refused before any page is read and filed.
            frames = getattr(img, "n_frames", 1)
            if frames > max_pages:
                raise UnreadableScan(f"{media} has {frames} pages, more than {max_pages}; split the stack")
            yield frames
            for index in range(start, frames):
                yield _frame(img, index, media, max_pixels)
    except UnreadableScan:
        raise
    except Image.DecompressionBombError as exc:  # Pillow refuses the size before we see it
        raise UnreadableScan(_bomb(media, max_pixels)) from exc
    except UnidentifiedImageError as exc:
        raise UnreadableScan(f"damaged {media}: its header cannot be read") from exc
    except (OSError, SyntaxError, ValueError, EOFError, *_PILLOW_FORMAT_ERRORS) as exc:
        raise UnreadableScan(f"damaged {media}: {exc or type(exc).__name__}") from exc


def _bomb(media: str, max_pixels: int) -> str:
    return (
        f"{media} declares more than {Image.MAX_IMAGE_PIXELS * 2:,} pixels, far more than the "
        f"{max_pixels:,} of a page: a decompression bomb or a damaged file"
    )


def _frame(img: Image.Image, index: int, media: str, max_pixels: int) -> Page:
    """Return one frame of an open image as a page, or as a refused page with why."""
    number = index + 1
    try:
        img.seek(index)
        width, height = img.size
        if width * height > max_pixels:
            return refused_page(
                number, f"page {number} declares {width}x{height} pixels, more than {max_pixels:,}"
            )
        return Page(number, _pixels(_upright(img)), _dpi(img.info.get("dpi")))
    except Image.DecompressionBombError:
        return refused_page(number, f"page {number}: " + _bomb(media, max_pixels))
    except (OSError, SyntaxError, ValueError, EOFError, *_PILLOW_FORMAT_ERRORS) as exc:
        return refused_page(number, f"damaged {media}, page {number}: {exc or type(exc).__name__}")


EXIF_ORIENTATION = 0x0112


def _upright(frame: Image.Image) -> Image.Image:
    """Return the frame as its camera meant it to be seen: a phone stores a portrait photo lying on its
    side with an EXIF orientation that viewers (and the counter page's preview) apply; so does capture."""
    if frame.getexif().get(EXIF_ORIENTATION, 1) in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(frame)
    return frame


def _pixels(frame: Image.Image) -> np.ndarray:
    """Return the frame as uint8 grey or RGB."""
    if frame.mode.startswith("I;16"):
        # 16-bit grey keeps its high byte; Pillow's conversion to L would clip everything above 255 to white.
        return (np.asarray(frame).astype(np.uint16) >> 8).astype(np.uint8)
    mode = "L" if frame.mode in {"1", "L", "I"} else "RGB"
    return np.asarray(frame if frame.mode == mode else frame.convert(mode))


def _decode_pdf(data: bytes, max_pixels: int, max_pages: int, start: int = 0) -> Iterator[Page | int]:
    """Yield the page count, then each page from ``start`` on; a page too large or damaged is refused."""
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise UnreadableScan("the PDF is encrypted: ask the sender for an unencrypted copy") from exc
        raise UnreadableScan(f"damaged PDF: {exc}") from exc
    plumbed: list = []  # pdfplumber's view of the file, opened at the first page with text
    try:
        if len(pdf) > max_pages:
            raise UnreadableScan(f"PDF has {len(pdf)} pages, more than {max_pages}; split the stack")
        yield len(pdf)
        for index in range(start, len(pdf)):
            try:
                yield from _pdf_page(pdf, data, index, max_pixels, plumbed)
            except pdfium.PdfiumError as exc:
                yield refused_page(index + 1, f"damaged PDF, page {index + 1}: {exc}")
            except Exception as exc:  # pdfminer's own errors on a malformed text layer
                yield refused_page(
                    index + 1, f"damaged PDF, page {index + 1}: its text cannot be read ({exc})"
                )
    finally:
        pdf.close()
        for opened in plumbed:
            with contextlib.suppress(Exception):  # pdfplumber's close reads every page again
                opened.close()


def _pdf_page(
    pdf: pdfium.PdfDocument, data: bytes, index: int, max_pixels: int, plumbed: list
) -> Iterator[Page]:
    """Yield one PDF page rendered (born-digital ones with their words), or refused when too large; the
    bitmap is freed once the page has been sent."""
    page = pdf[index]
    try:
        width, height = page.get_size()  # points
        words = _text_layer(plumbed, data, page, index)
        dpi = PDF_RENDER_DPI if words else _scan_dpi(page, width)
        scale = dpi / 72
        if width * scale * height * scale > max_pixels:
            yield refused_page(
                index + 1, f"PDF page {index + 1} is {width:.0f}x{height:.0f} pt, too large to render"
            )
            return
        bitmap = page.render(scale=scale, rev_byteorder=True)  # RGB, not pdfium's BGR
        try:
            yield Page(index + 1, bitmap.to_numpy(), float(dpi), words or None)
        finally:
            bitmap.close()
    finally:
        page.close()


def _scan_dpi(page: pdfium.PdfPage, width_pt: float) -> float:
    """Return the resolution of a scanned page's image (its pixels over the page width), within limits."""
    images = list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2))
    if len(images) != 1:
        return PDF_RENDER_DPI
    try:
        pixels_wide = images[0].get_px_size()[0]
    except (pdfium.PdfiumError, AttributeError):
        return PDF_RENDER_DPI
    return float(min(MAX_PDF_DPI, max(MIN_PDF_DPI, round(pixels_wide / (width_pt / 72)))))


def _text_layer(plumbed: list, data: bytes, page: pdfium.PdfPage, index: int) -> list[Word]:
    """Return the page's words with boxes in mm from the top-left, read by pdfplumber (empty for a
    scanned page: pdfium counts its characters first, so pdfminer never parses a page of no text).
    ``plumbed`` holds the file opened by pdfplumber once its first page of text is met."""
    textpage = page.get_textpage()
    try:
        if textpage.count_chars() == 0:
            return []
    finally:
        textpage.close()
    import pdfplumber

    try:
        if not plumbed:
            plumbed.append(pdfplumber.open(io.BytesIO(data)))
        words = plumbed[0].pages[index].extract_words(use_text_flow=True)
    except Exception:  # pdfminer's own errors on a malformed text layer: the page is read as a scan
        return []
    to_mm = 25.4 / 72
    return [
        (w["text"], w["x0"] * to_mm, w["top"] * to_mm, w["x1"] * to_mm, w["bottom"] * to_mm)
        for w in words
        if w["text"].strip()
    ]


def _dpi(value: object) -> float:
    try:
        dpi = float(value[0])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return 300.0
    return dpi if 50 <= dpi <= 2400 else 300.0


def thumbnail_png(image: np.ndarray, width: int = 320) -> bytes:
    """Return a small PNG of the image, ``width`` pixels wide, for result lists."""
    small = Image.fromarray(image)
    small.thumbnail((width, width * 4), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def encode_png(image: np.ndarray, dpi: float = 300.0) -> bytes:
    """Return the image as PNG bytes; the same image always gives the same bytes."""
    out = io.BytesIO()
    # Level 1: a rectified A4 page compresses in a fifth of the default level's time, ~15 % larger.
    Image.fromarray(image).save(out, format="PNG", dpi=(dpi, dpi), compress_level=1)
    return out.getvalue()
