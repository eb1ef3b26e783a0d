"""decode: each supported format becomes page images; damaged or hostile files become a clear error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from capture.decode import UnreadableScan, decode, encode_png
from media import sniff


def _image_bytes(fmt: str, size=(400, 300), mode="RGB", frames: int = 1, dpi=(200, 200)) -> bytes:
    images = [Image.new(mode, size, color=(i * 40,) * 3 if mode == "RGB" else i * 40) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format=fmt, save_all=frames > 1, append_images=images[1:], dpi=dpi)
    return out.getvalue()


def _pdf_bytes(pages: int) -> bytes:
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4)
    for n in range(pages):
        c.drawString(100, 700, f"page {n + 1}")
        c.showPage()
    c.save()
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
def test_a_single_image_decodes_to_one_page_with_its_dpi(fmt: str) -> None:
    pages = decode(_image_bytes(fmt))
    assert len(pages) == 1
    assert pages[0].image.shape == (300, 400, 3)
    assert pages[0].dpi == pytest.approx(200, abs=1)


def test_a_phone_photo_lying_on_its_side_with_an_exif_orientation_decodes_upright() -> None:
    upright = np.full((400, 300), 255, np.uint8)
    upright[20:60, 20:120] = 0  # a dark block at the top left of the page as it is meant to be seen
    stored = Image.fromarray(np.rot90(upright, 1))  # the camera's pixels: turned a quarter, counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    out = io.BytesIO()
    stored.save(out, format="JPEG", quality=95, exif=exif.tobytes())
    (page,) = decode(out.getvalue())
    assert page.image.shape[:2] == (400, 300)
    grey = page.image if page.image.ndim == 2 else page.image.mean(axis=2)
    assert grey[20:60, 20:120].mean() < 60 and grey[340:380, 180:280].mean() > 200


def test_a_multi_page_tiff_decodes_to_each_page_in_order() -> None:
    pages = decode(_image_bytes("TIFF", mode="L", frames=3))
    assert [p.number for p in pages] == [1, 2, 3]
    assert [int(p.image[0, 0]) for p in pages] == [0, 40, 80]


def test_a_pdf_is_rendered_page_by_page_at_300_dpi() -> None:
    pages = decode(_pdf_bytes(2))
    assert len(pages) == 2
    height, width, _ = pages[0].image.shape
    assert abs(width - 2480) <= 1 and abs(height - 3508) <= 1  # A4 at 300 dpi
    assert pages[0].image.min() < 128  # the drawn text is there


def test_png_encoding_is_deterministic() -> None:
    page = decode(_image_bytes("PNG"))[0]
    assert encode_png(page.image) == encode_png(page.image)
    assert np.array_equal(decode(encode_png(page.image))[0].image, page.image)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"\x00", "first bytes"),
        (b"GIF89a....", "first bytes"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "damaged image/jpeg"),
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF", "damaged PDF"),
    ],
)
def test_unreadable_files_raise_a_clear_error(data: bytes, match: str) -> None:
    with pytest.raises(UnreadableScan, match=match):
        decode(data)


def test_a_truncated_png_raises_a_clear_error() -> None:
    data = _image_bytes("PNG", size=(1000, 1000))
    with pytest.raises(UnreadableScan, match="damaged image/png"):
        decode(data[: len(data) // 2])


def test_an_image_declaring_enormous_dimensions_is_refused_before_decoding() -> None:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)  # 3.6 gigapixels, grey
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 100))
    with pytest.raises(UnreadableScan, match="pixels"):
        decode(bomb + chunk(b"IEND", b""))


def test_sniff_trusts_the_bytes_not_the_name() -> None:
    assert sniff(_image_bytes("PNG")) == "image/png"
    assert sniff(b"junk\n%PDF-1.4") == "application/pdf"
    assert sniff(b"<html>") is None
