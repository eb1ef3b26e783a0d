"""Sample uploads the tests post: a small PNG with a line of text, and a two-page TIFF stack of a filled
form and an ID card."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def sample_png(text: str = "投保单 sample", size: tuple[int, int] = (600, 400)) -> bytes:
    """Return a white PNG (300 dpi in its header) with text drawn in its top left corner."""
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text((20, 20), text, fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(300, 300))
    return out.getvalue()


def sample_stack() -> bytes:
    """Return a two-page TIFF: a filled application form and a page holding an ID card front, both 200 dpi."""
    import json
    from pathlib import Path

    from capture.render import render_form, render_idcard
    from capture.templates import latest

    values = json.loads((Path(__file__).parent.parent / "capture" / "sample_values.json").read_text())
    form = Image.fromarray(render_form(latest("application_form"), values, 200)).convert("RGB")
    card = Image.fromarray(render_idcard(latest("idcard_front"), values, 200))
    bed = Image.new("RGB", form.size, (245, 245, 245))
    bed.paste(card, (300, 400))
    out = io.BytesIO()
    form.save(
        out, format="TIFF", save_all=True, append_images=[bed], dpi=(200, 200), compression="tiff_deflate"
    )
    return out.getvalue()
