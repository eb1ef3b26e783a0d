"""Small builders shared by the tests: sample uploads and snapshots of the store."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from storage import ObjectStore


def sample_png(text: str = "投保单 sample", size: tuple[int, int] = (600, 400)) -> bytes:
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text((20, 20), text, fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(300, 300))
    return out.getvalue()


def sample_tiff(pages: int) -> bytes:
    frames = [Image.new("L", (300, 200), 255 - 20 * i) for i in range(pages)]
    out = io.BytesIO()
    frames[0].save(out, format="TIFF", save_all=True, append_images=frames[1:])
    return out.getvalue()


def snapshot(store: ObjectStore, prefix: str = "") -> dict[str, tuple[int, str]]:
    """Return {key: (size, etag)} for every object under prefix."""
    return {o.key: (o.size, o.etag) for o in store.list(prefix)}
