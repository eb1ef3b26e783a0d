"""What kind of file an upload is, by its first bytes (the extension and Content-Type may lie): the API
refuses what capture cannot read before storing it, and capture decodes by the same rule."""

from __future__ import annotations

# Magic numbers: JPEG (JFIF/EXIF), PNG, TIFF little- and big-endian, PDF.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
)
SUPPORTED = sorted({media for _, media in _MAGIC})


def sniff(head: bytes) -> str | None:
    """Return the media type the leading bytes announce, or None if it is none we read."""
    for magic, media in _MAGIC:
        if head.startswith(magic):
            return media
    # Some PDF writers put a few bytes of junk before the header; readers accept it within 1 KiB.
    if b"%PDF-" in head[:1024]:
        return "application/pdf"
    return None
