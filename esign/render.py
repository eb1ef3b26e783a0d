"""render: policy data in, the e-policy PDF out (reportlab), the same bytes for the same data and time.

Every font is embedded: Chinese (and all other) text is set in a subset of the CJK TrueType font
(printing.py finds it), which is also reportlab's initial font, so no page or form names the
non-embedded Helvetica that reportlab otherwise starts each stream with. The page carries the schedule
as a table, the beneficiaries, the clauses and a QR code with the policy's verification address; its
Info dictionary the title, subject, author, keywords (policy number, version), language (zh-CN) and the
real creation date, the time it is sealed. Open-source reportlab writes no structure tree, so the PDF
is not tagged.

The visible seal is a form XObject (``SEAL_FORM``): the company's seal image (or a red seal drawn here)
beside 签章单位 and 签章时间. The page only references it; esign/sign.py makes it the appearance of the
signature widget over ``SEAL_BOX``, so the seal shows with the signature, once, in its embedded font.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

from lxml import etree
from pyhanko.pdf_utils.metadata.model import DocumentMetadata, ExpandedName, XmpStructure, XmpValue
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

import idnumber
from esign.epolicy import FREQUENCY_LABELS, EPolicyRequest
from printing import cjk_font, draw_qr

COMPANY = "示范人寿保险股份有限公司"
# Where the visible signature (the seal and its text) is placed: (x1, y1, x2, y2) in points, page 1.
SEAL_BOX = (330.0, 60.0, 545.0, 150.0)
SEAL_FORM = "EPolicySeal"  # reportlab names it /FormXob.EPolicySeal in the page's resources
SEAL_XOBJECT = "/FormXob." + SEAL_FORM
SHANGHAI = ZoneInfo("Asia/Shanghai")
XMP_MM = "http://ns.adobe.com/xap/1.0/mm/"  # XMP media management: DocumentID, VersionID
etree.register_namespace("xmpMM", XMP_MM)  # pyHanko writes XMP with lxml: its usual prefix, not ns0


@dataclass(frozen=True)
class SealLook:
    """What the visible seal shows: IMAGING_SEAL_COMPANY and IMAGING_SEAL_IMAGE."""

    company: str = COMPANY  # 签章单位
    image: bytes | None = None  # the company's seal (PNG, transparent background); None: drawn here


QR_SIZE = 28 * mm
CLAUSES = (
    "一、合同构成：本合同由保险单、保险条款、投保单及其他约定书构成。",
    "二、保险责任：在本合同保险期间内，被保险人发生保险条款约定的保险事故，本公司按约定给付保险金。",
    "三、犹豫期：投保人自收到本合同之日起十五日内可以解除合同，本公司退还已交保险费。",
    "四、电子保单：本保险单为电子保险单，与纸质保险单具有同等法律效力，经本公司数字签名，任何修改均使签名失效。",
    "五、查验：扫描左下角二维码，或登录本公司网站，可查验本保单的真伪与是否为最新版本。",
)


# Names are the part of a policy's text that changes from one customer to the next. These characters
# (common in Chinese surnames and given names) fill the font subsets the fixed text leaves part empty, so
# that most documents need no subset of their own (see ``_seed_subsets``).
NAME_CHARACTERS = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国红梅玲兰云飞鹏辉宇浩然子轩涵梓晨欣怡雨佳琪思"
    "文博志小一二三四五六七八九十丰春秋冬雪海波林森峰宁安康德福贵荣祥瑞新东南西北中大天晓光亮俊豪"
)
# The policy's fixed text: seeded first into the font's subsets, in this order, in every document.
FIXED_TEXT = "".join(
    (
        " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
        COMPANY,
        "电子保险单 Electronic Policy受益人保险条款摘要与被保险人关系受益比例身故法定—",
        "保险单号版本第保险产品投保人被保险人证件号码基本保险金额保险费交费方式交费期间年生效日期满期日期终身",
        "人民币元，（）查验签章单位签章时间北京时间★电子保单专用章",
        *FREQUENCY_LABELS.values(),
        *CLAUSES,
    )
)


def _money(value: Decimal) -> str:
    return f"人民币 {value:,.2f} 元"


def render(
    policy: EPolicyRequest,
    version: int,
    verify_url: str,
    sealed_at: datetime | None = None,
    look: SealLook = SealLook(),
) -> bytes:
    """Return the e-policy as PDF bytes, created and sealed at sealed_at (default now); the same data,
    version, address, time and seal give the same bytes."""
    sealed_at = (sealed_at or datetime.now(UTC)).astimezone(SHANGHAI).replace(microsecond=0)
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
        keywords=[policy.policy_no, f"第{version}版", policy.product_code],
        creator="imaging e-policy service",
        lang="zh-CN",
        initialFontName=font,  # else each stream starts with /F1 12 Tf: Helvetica, never embedded
        initialFontSize=10,
        invariant=1,  # the dates come from sealed_at (below), not the clock
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
        draw_qr(canvas, verify_url, 20 * mm, 22 * mm, QR_SIZE, mask=0)
        canvas.setFont(font, 8)
        canvas.drawString(20 * mm, 18 * mm, f"查验 {verify_url}")

    def first_page(canvas, doc) -> None:
        _seed_subsets(canvas, font)
        canvas.setDateFormatter(lambda *_: _pdf_date(sealed_at))  # CreationDate and ModDate
        decorate(canvas, doc)
        _seal_form(canvas, font, look, sealed_at)

    doc.build(story, onFirstPage=first_page, onLaterPages=decorate)
    return out.getvalue()


def _seed_subsets(canvas, font: str) -> None:
    """Give the fixed text's characters their codes first, then common name characters up to the end of
    the last subset they open. reportlab cuts the font into subsets of 256 characters in the order a
    document first uses them; seeded so, the subsets that hold the fixed text are the same in every
    document, and printing.KeptFace makes and compresses each only once per process. A character of a
    name not among them opens one more subset, made for that document."""
    face = pdfmetrics.getFont(font)
    face.splitString(FIXED_TEXT, canvas._doc)
    state = face.state[canvas._doc]
    pad = iter(c for c in NAME_CHARACTERS if ord(c) not in state.assignments)
    while state.nextCode & 0xFF and (char := next(pad, None)) is not None:
        face.splitString(char, canvas._doc)


def _pdf_date(moment: datetime) -> str:
    offset = int(moment.utcoffset().total_seconds()) // 60
    return moment.strftime("D:%Y%m%d%H%M%S") + f"{offset // 60:+03d}'{offset % 60:02d}'"


def _seal_form(canvas, font: str, look: SealLook, sealed_at: datetime) -> None:
    """Define the seal as a form XObject the size of SEAL_BOX, and reference it from the page without
    painting it (a clip of no area): the signature widget paints it."""
    x1, y1, x2, y2 = SEAL_BOX
    width, height = x2 - x1, y2 - y1
    canvas.beginForm(SEAL_FORM, 0, 0, width, height)
    if look.image:
        canvas.drawImage(_image(look.image), 0, 0, height, height, mask="auto", preserveAspectRatio=True)
    else:
        _drawn_seal(canvas, font, height / 2, height / 2, height / 2 - 2, look.company)
    left, room = height + 6, width - height - 6
    grey, ink = colors.Color(0.35, 0.35, 0.35), colors.Color(0.1, 0.1, 0.1)
    lines = (
        (grey, 7, "签章单位"),
        (ink, 8, look.company),
        (grey, 7, "签章时间"),
        (ink, 8, sealed_at.strftime("%Y-%m-%d %H:%M:%S")),
        (grey, 7, "北京时间 (UTC+8)"),
    )
    for n, (colour, size, text) in enumerate(lines):
        canvas.setFillColor(colour)
        size = min(size, room / max(1, canvas.stringWidth(text, font, 1)))  # a long name shrinks to fit
        canvas.setFont(font, size)
        canvas.drawString(left, height - 14 - n * 15 - (3 if n >= 2 else 0), text)
    canvas.endForm()
    canvas.saveState()
    nothing = canvas.beginPath()
    nothing.rect(0, 0, 0, 0)
    canvas.clipPath(nothing, stroke=0, fill=0)
    canvas.doForm(SEAL_FORM)
    canvas.restoreState()


def document_metadata(policy: EPolicyRequest, version: int, sealed_at: datetime) -> DocumentMetadata:
    """Return the metadata the signed copies carry in their Info dictionary and XMP stream: title,
    subject, author, keywords (policy number, version), the creation date and, as XMP's DocumentID, a
    UUID made from the digest of the policy data: the same data, the same identity."""
    identity = uuid.UUID(bytes=bytes.fromhex(policy.digest())[:16])
    return DocumentMetadata(
        title=f"电子保险单 {policy.policy_no}",
        author=COMPANY,
        subject=policy.product_name,
        keywords=[policy.policy_no, f"第{version}版", policy.product_code],
        creator="imaging e-policy service",
        created=sealed_at,
        xmp_extra=[
            XmpStructure.of(
                (ExpandedName(XMP_MM, "DocumentID"), XmpValue(f"uuid:{identity}")),
                (ExpandedName(XMP_MM, "VersionID"), XmpValue(str(version))),
            )
        ],
    )


@cache
def _image(png: bytes) -> ImageReader:
    """Return the seal image, decoded once per process."""
    return ImageReader(io.BytesIO(png))


def _drawn_seal(canvas, font: str, cx: float, cy: float, r: float, company: str) -> None:
    """Draw a red round seal (电子保单专用章), for when no seal image is configured."""
    red = colors.Color(0.8, 0.1, 0.1)
    canvas.saveState()
    canvas.setStrokeColor(red)
    canvas.setFillColor(red)
    canvas.setLineWidth(2)
    canvas.circle(cx, cy, r, stroke=1, fill=0)
    canvas.setFont(font, 9)
    canvas.drawCentredString(cx, cy + 8, company[:6])
    canvas.setFont(font, 16)
    canvas.drawCentredString(cx, cy - 6, "★")
    canvas.setFont(font, 8)
    canvas.drawCentredString(cx, cy - 20, "电子保单专用章")
    canvas.restoreState()
