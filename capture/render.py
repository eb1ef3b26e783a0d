"""Render templates: the blank or filled application form (PDF, with an embedded CJK font), the batch
separator sheet, and a specimen ID card. Used by `imaging samples`, by the tests and the benchmarks,
and by the pipeline itself, which compares pages with blank renders to tell layouts apart.
"""

from __future__ import annotations

import io
import math
from datetime import date
from functools import cache

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from capture.templates import MM_PER_INCH, Box, Template
from printing import cjk_font, draw_qr, font_file, group_card_number

QR_PREFIX = "IMG1"
SEPARATOR_PAYLOAD = f"{QR_PREFIX}|separator"
A4_MM = (210.0, 297.0)


def form_payload(template: Template, page: int, application_no: str = "") -> str:
    """Return the text of a form page's QR code."""
    return f"{QR_PREFIX}|{template.type}|{template.version}|{page}|{application_no}"


def parse_payload(text: str) -> dict[str, str] | None:
    """Return the parts of one of our QR payloads, or None if the text is not ours."""
    parts = text.split("|")
    if len(parts) < 2 or parts[0] != QR_PREFIX:
        return None
    if parts[1] == "separator":
        return {"type": "separator"}
    if len(parts) != 5 or not parts[3].isdigit():
        return None
    return {"type": parts[1], "version": parts[2], "page": parts[3], "application_no": parts[4]}


def render_form_pdf(
    template: Template, values: dict[str, str] | None = None, draw_fields: bool = True
) -> bytes:
    """Return the application form as a PDF: blank, or filled with values (a born-digital application).
    draw_fields False: the QR code and the signature regions only (render_form prints the fields)."""
    font = cjk_font()
    values = values or {}
    out = io.BytesIO()
    w, h = template.width_mm, template.height_mm
    c = Canvas(out, pagesize=(w * mm, h * mm), invariant=1, pageCompression=1)
    c.setTitle(f"{template.title} ({template.key})")
    for page in range(1, template.pages + 1):
        half = template.mark_size_mm / 2
        c.setFillGray(0)
        for mx, my in template.marks:
            c.rect(
                (mx - half) * mm,
                (h - my - half) * mm,
                template.mark_size_mm * mm,
                template.mark_size_mm * mm,
                0,
                1,
            )
        if template.qr:
            q = template.qr
            payload = form_payload(template, page, values.get("application_no", ""))
            draw_qr(c, payload, q.x * mm, (h - q.y - q.w) * mm, q.w * mm)
        c.setFont(font, 20)
        c.drawCentredString(w / 2 * mm, (h - template.title_y_mm) * mm, template.title)
        c.setFont(font, 11)
        for text, x, y in template.headings:
            c.drawString(x * mm, (h - y) * mm, text)
        c.setLineWidth(0.6)
        for spec in [*template.fields, *template.regions]:
            if spec.page != page:
                continue
            b = spec.box
            if not getattr(spec, "options", ()):
                c.rect(b.x * mm, (h - b.y - b.h) * mm, b.w * mm, b.h * mm, 1, 0)
            c.setFont(font, 10)
            c.drawRightString((b.x - 2) * mm, (h - b.y - b.h / 2 - 1.3) * mm, spec.label)
        c.setFont(font, 13)
        for spec in template.fields:
            value = values.get(spec.name)
            if spec.page == page and spec.options:  # tick marks, not type: drawn whatever the face
                _draw_ticks(c, spec, value, h, font)
            elif spec.page == page and value and draw_fields:
                b = spec.box
                c.drawString((b.x + 2.5) * mm, (h - b.y - b.h / 2 - 1.6) * mm, str(value))
        for spec in template.regions:
            value = values.get(spec.name)
            if spec.page == page and value:  # a signature: the name, large and slanted as a hand would
                b = spec.box
                c.saveState()
                c.translate((b.x + 6) * mm, (h - b.y - b.h + 5) * mm)
                c.skew(0, 12)
                c.setFont(font, 22)
                c.drawString(0, 0, str(value))
                c.restoreState()
        c.showPage()
    c.save()
    return out.getvalue()


def _draw_ticks(c: Canvas, spec, value: str | None, page_h: float, font: str) -> None:
    """Draw a choice field's tick boxes with their labels, and a tick in the box of each option chosen
    (several, "|"-separated, for a form filled wrongly)."""
    chosen = set((value or "").split("|"))
    c.saveState()
    for label, b in spec.options:
        c.setLineWidth(0.6)
        c.rect(b.x * mm, (page_h - b.y - b.h) * mm, b.w * mm, b.h * mm, 1, 0)
        c.setFont(font, 11)
        c.drawString((b.x + b.w + 1.2) * mm, (page_h - b.y - b.h + 0.6) * mm, label)
        if label in chosen:  # a pen's tick: a short stroke down, a long one up
            c.setLineWidth(1.4)
            path = c.beginPath()
            path.moveTo((b.x + 0.7) * mm, (page_h - b.y - b.h * 0.5) * mm)
            path.lineTo((b.x + b.w * 0.4) * mm, (page_h - b.y - b.h + 0.6) * mm)
            path.lineTo((b.x + b.w + 0.6) * mm, (page_h - b.y + 0.8) * mm)
            c.drawPath(path, stroke=1, fill=0)
    c.restoreState()


def render_separator_pdf() -> bytes:
    """Return the batch separator sheet: bold bars, the word 分隔页 and the separator code, four times."""
    font = cjk_font()
    w, h = A4_MM
    out = io.BytesIO()
    c = Canvas(out, pagesize=(w * mm, h * mm), invariant=1, pageCompression=1)
    c.setFillGray(0)
    c.rect(15 * mm, (h - 40) * mm, (w - 30) * mm, 12 * mm, 0, 1)
    c.rect(15 * mm, 28 * mm, (w - 30) * mm, 12 * mm, 0, 1)
    c.setFont(font, 60)
    c.drawCentredString(w / 2 * mm, (h / 2 + 10) * mm, "分隔页")
    c.setFont(font, 24)
    c.drawCentredString(w / 2 * mm, (h / 2 - 10) * mm, "SEPARATOR")
    # Four copies: a damaged or folded corner still leaves three to read.
    for x, y in [(20.0, 55.0), (w - 60.0, 55.0), (20.0, h - 95.0), (w - 60.0, h - 95.0)]:
        draw_qr(c, SEPARATOR_PAYLOAD, x * mm, (h - y - 40.0) * mm, 40.0 * mm)
    c.showPage()
    c.save()
    return out.getvalue()


def rasterise(pdf: bytes, dpi: float = 300, page: int = 1) -> np.ndarray:
    """Return one page of a PDF as a grey uint8 image at dpi."""
    doc = pdfium.PdfDocument(pdf)
    try:
        bitmap = doc[page - 1].render(scale=dpi / 72, grayscale=True)
        return np.asarray(bitmap.to_pil().convert("L"))
    finally:
        doc.close()


FIELD_PT = 13  # the size form values are printed at (render_form_pdf)


def render_form(
    template: Template, values: dict[str, str] | None = None, dpi: float = 300, face: str | None = None
) -> np.ndarray:
    """Return the (filled) form's first page as a clean grey image at dpi. With a face (printing.FACES),
    the values are printed in that face, as a system other than ours would fill our form; the form
    itself stays in ours. Drawn with Pillow: reportlab cannot embed the CFF-outlined faces (Noto CJK)."""
    if face is None:
        return rasterise(render_form_pdf(template, values), dpi)
    values = values or {}
    image = Image.fromarray(rasterise(render_form_pdf(template, values, draw_fields=False), dpi))
    draw, font = ImageDraw.Draw(image), _pil_font(round(FIELD_PT / 72 * dpi), face)
    for spec in template.fields:
        value = values.get(spec.name)
        if spec.page == 1 and value and not spec.options:  # a choice's tick is drawn by render_form_pdf
            b = spec.box  # the baseline where render_form_pdf draws it
            draw.text((_px(b.x + 2.5, dpi), _px(b.y + b.h / 2 + 1.6, dpi)), str(value), 0, font, anchor="ls")
    return np.asarray(image)


# ---- the specimen ID card -------------------------------------------------------------------------

CARD_LABEL_RGB = (0, 86, 150)


def _px(value_mm: float, dpi: float) -> int:
    return round(value_mm / MM_PER_INCH * dpi)


@cache
def _pil_font(size_px: int, face: str | None = None) -> ImageFont.FreeTypeFont:
    path, index = font_file(face)
    return ImageFont.truetype(str(path), size_px, index=index)


def _card_background(width: int, height: int, back: bool) -> Image.Image:
    """Return the tinted card ground: a blue-to-green wash with fine guilloche waves, as on the real card."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs / width * 0.7 + ys / height * 0.3
    base = np.stack(
        # Blue-green throughout, never grey: the pipeline finds cards on a grey or white bed by their tint.
        [188 + 14 * t, 212 + 8 * t, 232 - 6 * t] if not back else [194 + 12 * t, 216 + 6 * t, 230 - 8 * t],
        axis=-1,
    )
    waves = np.sin(xs / width * 40 + 6 * np.sin(ys / height * 9)) * np.sin(ys / height * 31 + xs / width * 5)
    base -= (waves > 0.85)[..., None] * np.array([10, 6, 2], dtype=np.float32)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def _card_date(value: str) -> str:
    """Return 1987-03-15 as the card prints it: 1987年3月15日."""
    d = date.fromisoformat(value)
    return f"{d.year}年{d.month}月{d.day}日"


def _validity(value: str) -> str:
    return value if not value[:4].isdigit() else date.fromisoformat(value).strftime("%Y.%m.%d")


def render_idcard(
    template: Template, values: dict[str, str] | None = None, dpi: float = 300, face: str | None = None
) -> np.ndarray:
    """Return a specimen card side (template type idcard_front or idcard_back) as RGB at its true size;
    with a face (printing.FACES), its values printed in that face."""
    values = values or {}
    back = template.type == "idcard_back"
    width, height = _px(template.width_mm, dpi), _px(template.height_mm, dpi)
    card = _card_background(width, height, back)
    draw = ImageDraw.Draw(card)
    label_font = _pil_font(_px(2.6, dpi))
    for text, x, y in template.labels:
        draw.text((_px(x, dpi), _px(y, dpi)), text, font=label_font, fill=CARD_LABEL_RGB, anchor="ls")
    if back:
        _draw_emblem(draw, template.regions[0].box, dpi)
        draw.text(
            (_px(30, dpi), _px(13, dpi)), "中华人民共和国", font=_pil_font(_px(4.6, dpi)), fill=(20, 20, 20)
        )
        draw.text(
            (_px(30, dpi), _px(21, dpi)), "居民身份证", font=_pil_font(_px(6.4, dpi)), fill=(20, 20, 20)
        )
        draw.text((_px(53.3, dpi), _px(42.8, dpi)), "-", font=_pil_font(_px(3, dpi)), fill=(0, 0, 0))
    else:
        _draw_photo(draw, template.regions[0].box, dpi)
    for spec in template.fields:
        text = values.get(spec.name)
        if not text:
            continue
        if spec.name == "birth_date":
            text = _card_date(text)
        elif spec.name in {"valid_from", "valid_to"}:
            text = _validity(text)
        size = _px(3.4 if spec.name == "name" else 3.0, dpi)
        if spec.name == "id_number":
            size = _px(3.3, dpi)
        font = _pil_font(size, face)
        lines = _wrap(text, font, _px(spec.box.w - 1, dpi)) if spec.name == "address" else [text]
        for i, line in enumerate(lines[:3]):
            y = spec.box.y + 0.8 + i * 4.6
            draw.text((_px(spec.box.x + 0.5, dpi), _px(y, dpi)), line, font=font, fill=(0, 0, 0))
    watermark = _pil_font(_px(9, dpi))
    layer = Image.new("RGBA", card.size, (0, 0, 0, 0))
    # Over the photo on the front, in the empty top right on the back: clear of every field.
    wx, wy = (60, 30) if not back else (62, 5)
    ImageDraw.Draw(layer).text((_px(wx, dpi), _px(wy, dpi)), "样本", font=watermark, fill=(200, 40, 40, 110))
    card = Image.alpha_composite(card.convert("RGBA"), layer)
    return np.asarray(card.convert("RGB"))


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines, line = [], ""
    for ch in text:
        if font.getlength(line + ch) > width:
            lines.append(line)
            line = ""
        line += ch
    return [*lines, line] if line else lines


def _draw_photo(draw: ImageDraw.ImageDraw, box: Box, dpi: float) -> None:
    x0, y0, x1, y1 = _px(box.x, dpi), _px(box.y, dpi), _px(box.x + box.w, dpi), _px(box.y + box.h, dpi)
    draw.rectangle((x0, y0, x1, y1), fill=(222, 226, 230))
    cx, w = (x0 + x1) / 2, x1 - x0
    draw.ellipse((cx - w * 0.22, y0 + w * 0.18, cx + w * 0.22, y0 + w * 0.72), fill=(120, 124, 130))
    draw.pieslice((cx - w * 0.45, y0 + w * 0.72, cx + w * 0.45, y1 + w * 0.5), 180, 360, fill=(120, 124, 130))


def _draw_emblem(draw: ImageDraw.ImageDraw, box: Box, dpi: float) -> None:
    x0, y0 = _px(box.x, dpi), _px(box.y, dpi)
    r = _px(min(box.w, box.h) / 2, dpi)
    cx, cy = x0 + r, y0 + r
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(200, 30, 30))
    points = []
    for i in range(10):
        radius = r * (0.55 if i % 2 == 0 else 0.22)
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    draw.polygon(points, fill=(250, 210, 40))


# ---- the specimen bank card ------------------------------------------------------------------------

BANK_CARD_INK = (24, 24, 40)


def _bank_card_background(width: int, height: int) -> Image.Image:
    """Return a bank card's ground: a warm gold-to-orange wash with fine diagonal lines, tinted enough for
    the card finder (capture/detect.py) and light enough that the printed number reads dark on it."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs / width * 0.6 + ys / height * 0.4
    base = np.stack([246 - 6 * t, 214 - 30 * t, 150 - 40 * t], axis=-1)
    lines = np.sin((xs + ys) / width * 90) > 0.92
    base -= lines[..., None] * np.array([6, 8, 8], dtype=np.float32)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def render_bank_card(
    template: Template, values: dict[str, str] | None = None, dpi: float = 300
) -> np.ndarray:
    """Return a specimen bank card face (template type bank_card) as RGB at its true size: bank name, chip,
    the number in groups of four, the 银联 mark, and 样本 across it."""
    values = values or {}
    width, height = _px(template.width_mm, dpi), _px(template.height_mm, dpi)
    card = _bank_card_background(width, height)
    draw = ImageDraw.Draw(card)
    chip = template.regions[0].box
    draw.rounded_rectangle(
        (_px(chip.x, dpi), _px(chip.y, dpi), _px(chip.x + chip.w, dpi), _px(chip.y + chip.h, dpi)),
        radius=_px(1.2, dpi),
        fill=(196, 170, 96),
        outline=(140, 110, 50),
        width=max(1, _px(0.2, dpi)),
    )
    mark = (_px(62, dpi), _px(41, dpi), _px(82, dpi), _px(51, dpi))
    draw.rectangle(mark, fill=(200, 30, 40))
    for text, x, y in template.labels:
        draw.text(
            (_px(x, dpi), _px(y, dpi)), text, font=_pil_font(_px(4.2, dpi)), fill=(255, 255, 255), anchor="ls"
        )
    for spec in template.fields:
        text = values.get(spec.name)
        if not text:
            continue
        if spec.name == "card_number":
            text = group_card_number(text)
        size = _px(4.2 if spec.name == "bank_name" else 3.9, dpi)
        draw.text(
            (_px(spec.box.x + 0.5, dpi), _px(spec.box.y + 1.0, dpi)),
            text,
            font=_pil_font(size),
            fill=BANK_CARD_INK,
        )
    layer = Image.new("RGBA", card.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).text(
        (_px(34, dpi), _px(14, dpi)), "样本", font=_pil_font(_px(9, dpi)), fill=(200, 40, 40, 90)
    )
    card = Image.alpha_composite(card.convert("RGBA"), layer)
    return np.asarray(card.convert("RGB"))


def render_card(template: Template, values: dict[str, str] | None = None, dpi: float = 300) -> np.ndarray:
    """Return a specimen card of the template's type (an ID card side or a bank card) as RGB."""
    draw = render_bank_card if template.type == "bank_card" else render_idcard
    return draw(template, values, dpi)


def render_separator(dpi: float = 300) -> np.ndarray:
    """Return the separator sheet as a grey image at dpi."""
    return rasterise(render_separator_pdf(), dpi)


def encode_image(image: np.ndarray, dpi: float, fmt: str = "PNG") -> bytes:
    """Return the image encoded as PNG (or JPEG, TIFF), with its resolution recorded."""
    out = io.BytesIO()
    Image.fromarray(image).save(out, format=fmt, dpi=(dpi, dpi))
    return out.getvalue()
