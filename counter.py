"""What the counter is told about a scan, in Chinese: what each document is, what each field is called,
each rescan request with what to do ("第2页模糊，请重新扫描") and where on the page, and each page that
became no document (blank, a separator, refused with why) or holds a card-shaped region passed over. The
records and the logs keep capture's English; these are the words people at the counter read, on the page
/counter and from `imaging scan`, both from the scan view of routes/scans.py."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, Field

from models import DocumentRecord, ScanPage

DOCUMENT_NAMES = {
    "application_form": "投保单",
    "idcard_front": "身份证正面",
    "idcard_back": "身份证反面",
    "claim_evidence": "理赔材料",
    "signature": "签名",
    "separator": "分隔页",
    "other": "其他页面",
}
PARTIES = {"applicant": "投保人", "insured": "被保险人", "beneficiary": "受益人"}
# The card templates' fields carry no label (the card prints its own); the counter names them so.
CARD_FIELDS = {
    "name": "姓名",
    "sex": "性别",
    "ethnicity": "民族",
    "birth_date": "出生日期",
    "address": "住址",
    "id_number": "公民身份号码",
    "issuing_authority": "签发机关",
    "valid_from": "有效期起",
    "valid_to": "有效期至",
    "holder_id_number": "持证人身份证号码",
}


@dataclass(frozen=True)
class Reason:
    """One kind of rescan request: how capture's English says it, and what the counter is told."""

    code: str
    pattern: str  # matched against the record's problem
    zh: str  # {page}: the scan's page number; {field}: the field named in the problem
    whole_page: bool = True  # outline the page, not the document's region


# Capture's quality gate (capture/align.py check_quality) and key-entry's "illegible" (keyentry.py).
REASONS = (
    Reason("blurred", r"blurred", "第{page}页模糊，请重新扫描"),
    Reason("dark", r"too dark", "第{page}页太暗，请调亮后重新扫描"),
    Reason("low_resolution", r"resolution is about", "第{page}页分辨率太低，请用300 dpi重新扫描"),
    Reason("cut_off", r"cut off: (?P<field>\w+)", "第{page}页不完整（{field}在扫描范围外），请重新扫描整页"),
    Reason("marks", r"registration marks", "第{page}页定位标记不全，请将整页放平重新扫描"),
    Reason("not_flat", r"alignment is off", "第{page}页没有放平，请放平后重新扫描"),
    Reason(
        "illegible",
        r"(?P<label>\S*) \((?P<field>\w+)\): illegible",
        "第{page}页的{field}无法辨认，请重新扫描",
        False,
    ),
)
OTHER = Reason("other", "", "第{page}页需要重新扫描")


# The evidence checks of indexing/case.py the counter can act on while the customer is there; the others
# (values waiting for key-entry) are for later and are not told.
CHECKS = (
    (r"on page (?P<page>\d+): the ID card .* is neither the applicant's nor the insured's",
     "第{page}页的身份证既不是投保人的也不是被保险人的，请核对证件"),
    (r"the upload names customer", "填写的客户证件号码与本次扫描的证件和投保单都不符，请核对号码"),
)  # fmt: skip


def counter_checks(checks: list[str]) -> list[str]:
    """Return the scan's evidence checks the counter should act on, in Chinese."""
    told = []
    for check in checks:
        for pattern, zh in CHECKS:
            if found := re.search(pattern, check):
                told.append(zh.format(**found.groupdict()))
                break
    return told


class RescanRequest(BaseModel):
    """A page the counter must scan again while the customer is there."""

    page: int = Field(description="the scan's page, counted across its files from 1")
    doc_id: str
    document: str = Field(description="the document's type")
    reason: str = Field(
        description="blurred, dark, low_resolution, cut_off, marks, not_flat, illegible, other"
    )
    zh: str = Field(description="what to do, for the counter: 第2页模糊，请重新扫描")
    en: str = Field(description="capture's own words")
    box: list[int] | None = Field(
        None, description="x, y, w, h on that page to mark (a card on the bed, a field); null: the whole page"
    )


def document_name(doc_type: str) -> str:
    return DOCUMENT_NAMES.get(doc_type, doc_type)


def field_labels(record: DocumentRecord) -> dict[str, str]:
    """Return each field's and region's name as the counter reads it: the party and the form's label
    (投保人姓名), or the card's own word (公民身份号码)."""
    from capture.templates import by_key

    template = by_key(record.template) if record.template else None
    specs = {s.name: s.label for s in [*template.fields, *template.regions]} if template else {}
    return {name: field_label(name, specs.get(name, "")) for name in [*specs, *record.fields]}


def field_label(name: str, template_label: str) -> str:
    label = template_label or CARD_FIELDS.get(name, name)
    party = PARTIES.get(name.split("_", 1)[0], "")
    return label if label.startswith(party) else party + label


def _reason(problem: str) -> tuple[Reason, dict[str, str]]:
    """Return the kind of a rescan problem and what it names: the field, and key-entry's label for it."""
    for reason in REASONS:
        if found := re.search(reason.pattern, problem):
            return reason, found.groupdict()
    return OTHER, {}


def _outline(record: DocumentRecord, page: int) -> list[int] | None:
    """Return the box around every field and region of the document on that page (a card on the bed);
    None for a card found on file, whose fields are the earlier scan's, on another page."""
    if record.on_file:
        return None
    boxes = [f.box for f in [*record.fields.values(), *record.regions.values()] if f.page == page]
    if not boxes:
        return None
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    return [x0, y0, x1 - x0, y1 - y0]


def rescan_requests(record: DocumentRecord) -> list[RescanRequest]:
    """Return the document's rescan requests in the counter's words, each with the page and what to mark."""
    if not record.rescan:
        return []
    labels = field_labels(record)
    card = record.type in ("idcard_front", "idcard_back")
    requests = []
    for problem in record.problems:
        reason, named = _reason(problem)
        field = named.get("field") or ""
        spot = record.fields.get(field)
        page = spot.page if spot is not None else record.source_pages[0]
        if spot is not None and not reason.whole_page:
            box = spot.box
        else:
            box = _outline(record, page) if card else None
        said = named.get("label")  # key-entry names the field with the template's label
        label = field_label(field, said) if said else labels.get(field, field)
        zh = reason.zh.format(page=page, field=label)
        requests.append(
            RescanRequest(
                page=page,
                doc_id=record.doc_id,
                document=record.type,
                reason=reason.code,
                zh=zh,
                en=problem,
                box=box,
            )
        )
    return requests


# Why decode refused a page (capture/decode.py), in the counter's words; the first that matches is told.
REFUSALS = (
    (r"declares (?P<w>\d+)x(?P<h>\d+) pixels, more than", "图像过大（{w}×{h}像素），请用300 dpi重新扫描该页"),
    (r"pixels, far more than", "图像像素过多，文件可能已损坏，请重新扫描该页"),
    (r"too large to render", "PDF页面尺寸过大，请按实际纸张大小重新扫描或导出该页"),
    (r"takes more than .* to read", "读取超时，文件可能已损坏，请重新扫描该页"),
    (r"needs more than .* MiB", "读取所需内存过多，文件可能已损坏，请重新扫描该页"),
    (r"its text cannot be read", "PDF文字层已损坏，请重新扫描或导出该页"),
    (r"damaged", "文件已损坏，请重新扫描该页"),
)  # fmt: skip
REFUSED_OTHERWISE = "请重新扫描该页"
# Where on the page a region lies, by the third of the width and of the height its centre falls in.
PLACES = (("左上", "上方", "右上"), ("左侧", "中间", "右侧"), ("左下", "下方", "右下"))
PASSED_OVER = "第{page}页有一处像卡片的区域未能识别{where}，请单独重新扫描该卡片"
LEFT_OUT = {"blank": "第{page}页为空白页，已略过", "separator": "第{page}页为分隔页"}


class PageLeftOut(BaseModel):
    """A page of the scan that became no document, or a card-shaped region on a page that was passed over:
    what the counter is told, and whether it should scan again."""

    page: int = Field(description="the scan's page, counted across its files from 1")
    outcome: str = Field(description="blank, separator, refused, passed_over (a card-shaped region)")
    zh: str = Field(description="what the counter is told: 第2页为空白页，已略过")
    en: str | None = Field(None, description="capture's own words: why a page was refused, the region")
    rescan: bool = Field(description="the counter should scan the page (or the card) again")
    box: list[int] | None = Field(
        None, description="a region passed over: x, y, w, h on that page, in its pixels as decoded"
    )


def where_on_page(box: list[int], size: list[int]) -> str:
    """Return where on the page the box lies, in the counter's words: 左上, 中间, 右下..."""
    (x, y, w, h), (width, height) = box, size
    column = min(2, max(0, int(3 * (x + w / 2) / width)))
    row = min(2, max(0, int(3 * (y + h / 2) / height)))
    return PLACES[row][column]


def _refusal(reason: str | None) -> str:
    for pattern, zh in REFUSALS:
        if found := re.search(pattern, reason or ""):
            return zh.format(**found.groupdict())
    return REFUSED_OTHERWISE


def pages_left_out(pages: list[ScanPage]) -> list[PageLeftOut]:
    """Return, in page order, each page that became no document and each card-shaped region passed over,
    in the counter's words (a scan captured before regions kept their boxes says no place)."""
    told = []
    for page in sorted(pages, key=lambda p: p.page):
        if page.outcome in LEFT_OUT:
            zh = LEFT_OUT[page.outcome].format(page=page.page)
            told.append(PageLeftOut(page=page.page, outcome=page.outcome, zh=zh, rescan=False))
        elif page.outcome == "refused":
            zh = f"第{page.page}页无法识别：{_refusal(page.reason)}"
            told.append(PageLeftOut(page=page.page, outcome="refused", zh=zh, en=page.reason, rescan=True))
        for i, region in enumerate(page.passed_over):
            box = page.passed_over_boxes[i] if i < len(page.passed_over_boxes) else None
            where = f"（{where_on_page(box, page.size)}）" if box and page.size else ""
            zh = PASSED_OVER.format(page=page.page, where=where)
            told.append(
                PageLeftOut(page=page.page, outcome="passed_over", zh=zh, en=region, rescan=True, box=box)
            )
    return told
