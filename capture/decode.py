"""decode: the bytes of an upload in, one grey or colour page image per page out."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageSequence, UnidentifiedImageError

from capture.formats import SUPPORTED, sniff
from errors import BadInput

# An A3 page at 600 dpi is 7016 x 9921 = 70 Mpx; anything far beyond is a decompression bomb.
MAX_PAGE_PIXELS = 120_000_000
MAX_PAGES = 500
PDF_RENDER_DPI = 300  # scanned PDF pages are rendered at this resolution (issue 4 refines to native dpi)


class UnreadableScan(BadInput):
    """The upload is not an image or PDF we can read, or it is damaged."""

    error = "unreadable_scan"


@dataclass(frozen=True)
class Page:
    number: int  # 1-based within the upload
    image: np.ndarray  # uint8, HxW (grey) or HxWx3 (RGB)
    dpi: float


def decode(data: bytes) -> list[Page]:
    """Return the pages of a JPEG, PNG, TIFF (multi-page) or PDF upload; raise UnreadableScan otherwise."""
    media = sniff(data[:1024])
    if media is None:
        raise UnreadableScan(f"not a file we read: the first bytes match none of {', '.join(SUPPORTED)}")
    if media == "application/pdf":
        return _decode_pdf(data)
    return _decode_raster(data, media)


def _decode_raster(data: bytes, media: str) -> list[Page]:
    pages: list[Page] = []
    try:
        with Image.open(io.BytesIO(data)) as img:
            for number, frame in enumerate(ImageSequence.Iterator(img), start=1):
                if number > MAX_PAGES:
                    raise UnreadableScan(f"{media} has more than {MAX_PAGES} pages; split the stack")
                width, height = frame.size
                if width * height > MAX_PAGE_PIXELS:
                    raise UnreadableScan(
                        f"page {number} declares {width}x{height} pixels, more than {MAX_PAGE_PIXELS:,}"
                    )
                dpi = _dpi(frame.info.get("dpi"))
                mode = "L" if frame.mode in {"1", "L", "I;16", "I"} else "RGB"
                pages.append(Page(number, np.asarray(frame.convert(mode)), dpi))
    except UnreadableScan:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableScan(f"damaged {media}: {exc}") from exc
    return pages


def _decode_pdf(data: bytes) -> list[Page]:
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise UnreadableScan(f"damaged PDF: {exc}") from exc
    try:
        if len(pdf) > MAX_PAGES:
            raise UnreadableScan(f"PDF has {len(pdf)} pages, more than {MAX_PAGES}; split the stack")
        pages = []
        for index in range(len(pdf)):
            page = pdf[index]
            width, height = page.get_size()  # points
            scale = PDF_RENDER_DPI / 72
            if width * scale * height * scale > MAX_PAGE_PIXELS:
                raise UnreadableScan(
                    f"PDF page {index + 1} is {width:.0f}x{height:.0f} pt, too large to render"
                )
            bitmap = page.render(scale=scale, grayscale=False)
            pages.append(Page(index + 1, np.asarray(bitmap.to_pil().convert("RGB")), float(PDF_RENDER_DPI)))
        return pages
    except pdfium.PdfiumError as exc:
        raise UnreadableScan(f"damaged PDF: {exc}") from exc
    finally:
        pdf.close()


def _dpi(value: object) -> float:
    try:
        dpi = float(value[0])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return 300.0
    return dpi if 50 <= dpi <= 2400 else 300.0


def encode_png(page: Page) -> bytes:
    """Return the page as PNG bytes; the same page always gives the same bytes."""
    out = io.BytesIO()
    Image.fromarray(page.image).save(out, format="PNG", dpi=(page.dpi, page.dpi), optimize=False)
    return out.getvalue()
