"""decode: the bytes of an upload in, one grey or colour page image per page out."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageSequence, UnidentifiedImageError

from capture.formats import SUPPORTED, sniff
from errors import BadInput

# An A3 page at 600 dpi is 7016 x 9921 = 70 Mpx; anything far beyond is a decompression bomb.
MAX_PAGE_PIXELS = 60_000_000
MAX_PAGES = 500
PDF_RENDER_DPI = 300  # born-digital pages, and scanned pages whose image resolution cannot be told
MIN_PDF_DPI, MAX_PDF_DPI = 150, 600


class UnreadableScan(BadInput):
    """The upload is not an image or PDF we can read, or it is damaged."""

    error = "unreadable_scan"


Word = tuple[str, float, float, float, float]  # text, x0, y0, x1, y1 in mm from the page's top-left


@dataclass(frozen=True)
class Page:
    number: int  # 1-based within the upload
    image: np.ndarray  # uint8, HxW (grey) or HxWx3 (RGB)
    dpi: float
    words: list[Word] | None = None  # a born-digital PDF page's text layer; None for scans


def decode(data: bytes, max_pixels: int = MAX_PAGE_PIXELS, max_pages: int = MAX_PAGES) -> list[Page]:
    """Return the pages of a JPEG, PNG, TIFF (multi-page) or PDF upload; raise UnreadableScan otherwise."""
    return list(iter_pages(data, max_pixels, max_pages))


def iter_pages(data: bytes, max_pixels: int = MAX_PAGE_PIXELS, max_pages: int = MAX_PAGES) -> Iterator[Page]:
    """Yield the pages of an upload one at a time, so a long stack never sits in memory whole."""
    if not data:
        raise UnreadableScan("the file is empty (0 bytes)")
    media = sniff(data[:1024])
    if media is None:
        raise UnreadableScan(f"not a file we read: the first bytes match none of {', '.join(SUPPORTED)}")
    if media == "application/pdf":
        return _decode_pdf(data, max_pixels, max_pages)
    return _decode_raster(data, media, max_pixels, max_pages)


def _decode_raster(data: bytes, media: str, max_pixels: int, max_pages: int) -> Iterator[Page]:
    try:
        with Image.open(io.BytesIO(data)) as img:
            for number, frame in enumerate(ImageSequence.Iterator(img), start=1):
                if number > max_pages:
                    raise UnreadableScan(f"{media} has more than {max_pages} pages; split the stack")
                width, height = frame.size
                if width * height > max_pixels:
                    raise UnreadableScan(
                        f"page {number} declares {width}x{height} pixels, more than {max_pixels:,}"
                    )
                dpi = _dpi(frame.info.get("dpi"))
                mode = "L" if frame.mode in {"1", "L", "I;16", "I"} else "RGB"
                yield Page(number, np.asarray(frame.convert(mode)), dpi)
    except UnreadableScan:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableScan(f"damaged {media}: {exc}") from exc


def _decode_pdf(data: bytes, max_pixels: int, max_pages: int) -> Iterator[Page]:
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise UnreadableScan("the PDF is encrypted: ask the sender for an unencrypted copy") from exc
        raise UnreadableScan(f"damaged PDF: {exc}") from exc
    try:
        if len(pdf) > max_pages:
            raise UnreadableScan(f"PDF has {len(pdf)} pages, more than {max_pages}; split the stack")
        for index in range(len(pdf)):
            page = pdf[index]
            width, height = page.get_size()  # points
            words = _text_layer(page, height)
            dpi = PDF_RENDER_DPI if words else _scan_dpi(page, width)
            scale = dpi / 72
            if width * scale * height * scale > max_pixels:
                raise UnreadableScan(
                    f"PDF page {index + 1} is {width:.0f}x{height:.0f} pt, too large to render"
                )
            bitmap = page.render(scale=scale, grayscale=False)
            image = np.asarray(bitmap.to_pil().convert("RGB"))
            yield Page(index + 1, image, float(dpi), words or None)
    except pdfium.PdfiumError as exc:
        raise UnreadableScan(f"damaged PDF: {exc}") from exc
    finally:
        pdf.close()


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


def _text_layer(page: pdfium.PdfPage, height_pt: float) -> list[Word]:
    """Return the page's words with boxes in mm from the top-left (empty for a scanned page)."""
    textpage = page.get_textpage()
    try:
        words: list[Word] = []
        count = textpage.count_chars()
        if count == 0:
            return []
        to_mm = 25.4 / 72
        for index in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(index)
            text = textpage.get_text_bounded(left, bottom, right, top).strip()
            if text:
                words.append(
                    (
                        text,
                        left * to_mm,
                        (height_pt - top) * to_mm,
                        right * to_mm,
                        (height_pt - bottom) * to_mm,
                    )
                )
        return words
    finally:
        textpage.close()


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
