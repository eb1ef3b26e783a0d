"""render: policy data in, the e-policy PDF out (reportlab), the same bytes for the same data.

Chinese text is set in an embedded, subset TrueType font (printing.py finds it): a non-embedded
CID font such as STSong-Light shows blank on phones and viewers without Asian font packs. The page
carries the schedule as a table, the beneficiaries, the clauses, a QR code with the policy's
verification address, and the company seal where the visible signature is placed (``SEAL_BOX``).
"""

from __future__ import annotations

import io
from decimal import Decimal

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

import idnumber
from esign.epolicy import FREQUENCY_LABELS, EPolicyRequest
from printing import cjk_font, draw_qr

COMPANY = "示范人寿保险股份有限公司"
# Where the seal is drawn and the visible signature field placed: (x1, y1, x2, y2) in points, page 1.
SEAL_BOX = (400.0, 70.0, 540.0, 150.0)
QR_SIZE = 28 * mm
CLAUSES = (
    "一、合同构成：本合同由保险单、保险条款、投保单及其他约定书构成。",
    "二、保险责任：在本合同保险期间内，被保险人发生保险条款约定的保险事故，本公司按约定给付保险金。",
    "三、犹豫期：投保人自收到本合同之日起十五日内可以解除合同，本公司退还已交保险费。",
    "四、电子保单：本保险单为电子保险单，与纸质保险单具有同等法律效力，经本公司数字签名，任何修改均使签名失效。",
    "五、查验：扫描左下角二维码，或登录本公司网站，可查验本保单的真伪与是否为最新版本。",
)


def _money(value: Decimal) -> str:
    return f"人民币 {value:,.2f} 元"


def render(policy: EPolicyRequest, version: int, verify_url: str) -> bytes:
    """Return the e-policy as PDF bytes; the same data, version and address give the same bytes."""
    font = cjk_font()
    text = ParagraphStyle("text", fontName=font, fontSize=10, leading=15, wordWrap="CJK")
    title = ParagraphStyle("title", parent=text, fontSize=18, leading=26, alignment=1)
    heading = ParagraphStyle("heading", parent=text, fontSize=12, leading=20, spaceBefore=6)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=20 * mm,
        title=f"电子保险单 {policy.policy_no}",
        author=COMPANY,
        subject=policy.product_name,
        invariant=1,
        pageCompression=1,
    )
    holder, insured = policy.holder, policy.insured
    expiry = policy.expiry_date.isoformat() if policy.expiry_date else "终身"
    schedule = [
        ["保险单号", policy.policy_no, "版本", f"第 {version} 版"],
        ["保险产品", f"{policy.product_name}（{policy.product_code}）", "", ""],
        ["投保人", holder.name, "证件号码", idnumber.mask(holder.id_number)],
        ["被保险人", insured.name, "证件号码", idnumber.mask(insured.id_number)],
        ["基本保险金额", _money(policy.sum_insured), "保险费", _money(policy.premium)],
        ["交费方式", FREQUENCY_LABELS[policy.payment_frequency], "交费期间", f"{policy.payment_years} 年"],
        ["生效日期", policy.effective_date.isoformat(), "满期日期", expiry],
    ]
    beneficiaries = [["身故受益人", "与被保险人关系", "受益比例"]] + (
        [[b.name, b.relation, f"{b.share}%"] for b in policy.beneficiaries] or [["法定", "—", "100%"]]
    )
    grid = TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), font, 10),
            ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
            ("BACKGROUND", (0, 0), (0, -1), colors.Color(0.93, 0.93, 0.9)),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )
    story = [
        Paragraph(COMPANY, title),
        Paragraph("电子保险单 Electronic Policy", title),
        Spacer(1, 4 * mm),
        Table(schedule, colWidths=[30 * mm, 62 * mm, 24 * mm, 54 * mm], style=grid, rowHeights=8 * mm),
        Spacer(1, 4 * mm),
        Paragraph("受益人", heading),
        Table(beneficiaries, colWidths=[60 * mm, 60 * mm, 50 * mm], style=grid, rowHeights=7 * mm),
        Paragraph("保险条款摘要", heading),
        *[Paragraph(clause, text) for clause in CLAUSES],
    ]

    def decorate(canvas, _doc) -> None:
        draw_qr(canvas, verify_url, 20 * mm, 22 * mm, QR_SIZE)
        canvas.setFont(font, 8)
        canvas.drawString(20 * mm, 18 * mm, f"查验 {verify_url}")
        _seal(canvas, font)

    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return out.getvalue()


def _seal(canvas, font: str) -> None:
    """Draw the company's e-policy seal (电子保单专用章) where the visible signature goes."""
    x1, y1, x2, y2 = SEAL_BOX
    cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, min(x2 - x1, y2 - y1) / 2 - 2
    red = colors.Color(0.8, 0.1, 0.1)
    canvas.saveState()
    canvas.setStrokeColor(red)
    canvas.setFillColor(red)
    canvas.setLineWidth(2)
    canvas.circle(cx, cy, r, stroke=1, fill=0)
    canvas.setFont(font, 9)
    canvas.drawCentredString(cx, cy + 8, COMPANY[:6])
    canvas.setFont(font, 16)
    canvas.drawCentredString(cx, cy - 6, "★")
    canvas.setFont(font, 8)
    canvas.drawCentredString(cx, cy - 20, "电子保单专用章")
    canvas.restoreState()
