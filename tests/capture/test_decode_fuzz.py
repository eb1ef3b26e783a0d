"""Property-based fuzzing of sniff and decode: random bytes and mutated valid files either decode to pages
or raise UnreadableScan with a message; any other exception is a bug in decode."""

from __future__ import annotations

import functools
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from capture.decode import Page, UnreadableScan, decode
from media import SUPPORTED, sniff
from tests.hostile import image_file, one_page_pdf, page_image

# Reproducible in CI: the same examples every run, nothing remembered between runs. Each decode forks
# a reader (~10 ms), so a few hundred examples take a few seconds.
FUZZ = settings(
    derandomize=True,
    database=None,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAGIC = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"%PDF-", b"%PDF-1.7\n"]


@functools.cache
def seeds() -> dict[str, bytes]:
    """Small valid files of every kind and flavour decode reads: the material the mutations work on."""
    out = io.BytesIO()
    page_image((96, 64)).save(out, format="PDF", resolution=100)  # a scan: one image on the page
    return {
        "jpeg": image_file("JPEG", (96, 64), quality=70),
        "jpeg_progressive": image_file("JPEG", (96, 64), progressive=True),
        "png": image_file("PNG", (96, 64)),
        "png_interlaced": image_file("PNG", (48, 32), interlace=1),
        "png_palette": _converted("P", "PNG"),
        "png_16bit": _grey16_png(),
        "tiff": image_file("TIFF", (96, 64)),
        "tiff_lzw_3_pages": image_file("TIFF", (48, 32), frames=3, compression="tiff_lzw"),
        "tiff_deflate": image_file("TIFF", (96, 64), compression="tiff_adobe_deflate"),
        "tiff_packbits": image_file("TIFF", (96, 64), compression="packbits"),
        "tiff_g4": _converted("1", "TIFF", compression="group4"),
        "tiff_jpeg": _converted("RGB", "TIFF", compression="jpeg"),
        "pdf_text": one_page_pdf(media_box=b"[0 0 120 90]"),
        "pdf_scan": out.getvalue(),
    }


def _converted(mode: str, fmt: str, **save) -> bytes:
    out = io.BytesIO()
    page_image((96, 64)).convert(mode).save(out, format=fmt, **save)
    return out.getvalue()


def _grey16_png() -> bytes:
    out = io.BytesIO()
    tones = (np.asarray(page_image((96, 64)), np.uint16) * 257).astype("<u2")
    Image.frombytes("I;16", (96, 64), tones.tobytes()).save(out, format="PNG")
    return out.getvalue()


@st.composite
def mutated(draw) -> bytes:
    """A valid file with a few bytes flipped, overwritten, inserted or removed, or cut short; half the
    time in its first few hundred bytes, where the headers and tables are."""
    data = bytearray(seeds()[draw(st.sampled_from(sorted(seeds())))])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        edit = draw(st.sampled_from(["flip", "byte", "word", "insert", "delete", "cut"]))
        near_head = draw(st.booleans())
        # Past the magic number: a file that loses it is refused unread, which other tests cover.
        last = min(len(data), 400 if near_head else len(data)) - 1
        at = draw(st.integers(min(8, last), last))
        if edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "byte":
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif edit == "word":  # a size or offset field set to an extreme
            data[at : at + 4] = draw(
                st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"])
            )
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


def _decodes_or_refuses_clearly(data: bytes) -> None:
    try:
        pages = decode(data, page_seconds=20)
    except UnreadableScan as exc:
        assert exc.message and "Traceback" not in exc.message
        return
    for page in pages:
        assert isinstance(page, Page) and page.image.dtype == np.uint8
        assert page.image.ndim == 2 or (page.image.ndim == 3 and page.image.shape[2] == 3)


@FUZZ
@given(st.binary(max_size=4096))
def test_sniff_names_a_supported_type_or_none_for_any_bytes(data: bytes) -> None:
    media = sniff(data)
    assert media is None or media in SUPPORTED
    assert sniff(data[:1024]) == media  # only the first KiB counts, as the API passes it


@FUZZ
@given(st.sampled_from(MAGIC), st.binary(max_size=2048))
def test_random_bytes_behind_a_magic_number_decode_or_are_refused_clearly(magic: bytes, rest: bytes) -> None:
    _decodes_or_refuses_clearly(magic + rest)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_decode_or_are_refused_clearly(data: bytes) -> None:
    _decodes_or_refuses_clearly(data)


@settings(FUZZ, max_examples=300)
@given(mutated())
def test_a_mutated_valid_file_decodes_or_is_refused_clearly(data: bytes) -> None:
    _decodes_or_refuses_clearly(data)


def test_every_seed_decodes() -> None:
    for name, data in seeds().items():
        assert decode(data), name
