"""The counter's words and the station client's logic, without servers: capture's rescan reasons told in
Chinese with the page and the spot to mark, the pages that became no document told with why, field labels
that name the party, which files are sent, the exit code an outcome earns, the summary, and a watched
folder's batches (tests/test_counter.py runs it all against a real API and worker)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import station
from capture.decode import Page, refused_page
from capture.pipeline import capture
from counter import counter_checks, field_label, pages_left_out, rescan_requests, where_on_page
from errors import ExitCode
from models import DocumentRecord, FieldRecord, ScanPage
from vocabulary import utcnow

JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64


def _field(box: list[int], page: int = 2, status: str = "accepted") -> FieldRecord:
    return FieldRecord(box=box, quad=[[0, 0]] * 4, page=page, image="x.png", kind="name", status=status)


def _record(doc_type: str, problems: list[str], **fields: FieldRecord) -> DocumentRecord:
    return DocumentRecord(
        doc_id="d1",
        scan_id="s1",
        type=doc_type,
        template=None,
        source_pages=[2],
        pages=[],
        status="exception" if problems else "ok",
        problems=problems,
        fields=fields,
        captured_at=utcnow(),
    )


@pytest.mark.parametrize(
    ("problem", "reason", "zh"),
    [
        ("the page is blurred (edges spread 0.45 mm): rescan in focus", "blurred", "第2页模糊，请重新扫描"),
        ("the page is too dark (paper at 90 of 255): rescan with more light", "dark", "第2页太暗"),
        ("resolution is about 120 dpi, below 150: rescan at 300 dpi", "low_resolution", "第2页分辨率太低"),
        ("only 2 of 4 registration marks found: rescan the whole page, flat", "marks", "第2页定位标记不全"),
        ("alignment is off by 1.4 mm: rescan the page flat", "not_flat", "第2页没有放平"),
        ("the page is cut off: premium lies outside the scan; rescan", "cut_off", "（保险费在"),
        ("something new the counter has no words for", "other", "第2页需要重新扫描"),
    ],
)
def test_each_rescan_reason_of_capture_is_told_in_chinese_with_its_page(problem: str, reason: str, zh: str):
    record = _record("application_form", [problem])
    record.template = "application_form/1"
    (request,) = rescan_requests(record)
    assert request.page == 2 and request.reason == reason and zh in request.zh and request.en == problem
    assert request.box is None, "a form's page is outlined whole"


def test_a_card_to_rescan_is_marked_by_its_region_and_an_illegible_field_by_its_box():
    card = _record(
        "idcard_front",
        ["the page is too dark (paper at 90 of 255): rescan with more light"],
        name=_field([100, 50, 200, 40]),
        id_number=_field([120, 300, 400, 40]),
    )
    assert rescan_requests(card)[0].box == [100, 50, 420, 290]
    card.on_file = "d0"  # its fields are the card on file's, on another scan's page: the page is outlined
    assert rescan_requests(card)[0].box is None
    form = _record(
        "application_form",
        ["姓名 (insured_name): illegible to the keyer: scan the page again"],
        insured_name=_field([10, 20, 30, 40], page=3, status="illegible"),
    )
    (request,) = rescan_requests(form)
    assert (request.page, request.box, request.reason) == (3, [10, 20, 30, 40], "illegible")
    assert request.zh == "第3页的被保险人姓名无法辨认，请重新扫描"
    assert rescan_requests(_record("application_form", [])) == []


def test_field_labels_name_the_party():
    assert field_label("applicant_name", "姓名") == "投保人姓名"
    assert field_label("insured_id_number", "证件号码") == "被保险人证件号码"
    assert field_label("applicant_signature", "投保人签名") == "投保人签名"
    assert field_label("id_number", "") == "公民身份号码" and field_label("premium", "保险费") == "保险费"


def test_files_that_cannot_be_sent_are_named_with_why(tmp_path: Path):
    (tmp_path / "b.jpg").write_bytes(JPEG)
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.7 ...")
    (tmp_path / "notes.txt").write_text("the customer called", encoding="utf-8")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / ".DS_Store").write_bytes(b"\0\0")
    sendable, refused = station.gather([tmp_path])
    assert [p.name for p in sendable] == ["a.pdf", "b.jpg"]
    why = {r.path.name: r.why for r in refused}
    assert why.keys() == {"notes.txt", "empty.png"}
    assert "不是扫描件" in why["notes.txt"] and "空文件" in why["empty.png"]


def _view(status: str = "captured", **extra) -> dict:
    view = {"scan_id": "s1", "status": status, "status_url": "/v1/scans/s1", "documents": []}
    return view | {"fields_pending": 0} | extra


@pytest.mark.parametrize(
    ("outcome", "wait", "code"),
    [
        (station.Outcome([Path("a")], view=_view()), 60, ExitCode.ok),
        (station.Outcome([Path("a")], view=_view("queued")), 0, ExitCode.ok),
        (station.Outcome([Path("a")], view=_view("processing")), 60, ExitCode.pending),
        (station.Outcome([Path("a")], view=_view(rescans=[{"page": 1}])), 60, ExitCode.rescan),
        (
            station.Outcome([Path("a")], [station.Refused(Path("n"), "")], _view(rescans=[1])),
            9,
            ExitCode.bad_input,
        ),
        (station.Outcome([Path("a")], view=_view("failed", error="truncated")), 60, ExitCode.bad_input),
    ],
)
def test_the_exit_code_says_the_most_pressing_thing(outcome: station.Outcome, wait: float, code: ExitCode):
    assert station.exit_code(outcome, wait) == code


def test_the_summary_says_each_field_read_or_sent_to_key_entry_and_masks_id_numbers():
    fields = {
        "applicant_name": {"status": "key_entry", "value": None, "label": "投保人姓名"},
        "applicant_id_number": {"status": "accepted", "value": "110105198703150013", "label": "投保人证件号"},
    }
    document = {"label": "投保单", "pages": [1], "status": "ok", "fields": fields}
    view = _view(documents=[document], fields_pending=1)
    lines = station.summary(station.Outcome([Path("form.jpg")], view=view))
    assert lines == [
        "扫描 s1：1 个文件",
        "1. 投保单（第1页）",
        "   → 投保人姓名：送人工录入",
        "   ✓ 投保人证件号：110105********0013",
        "共 1 份文档；1 个字段已识别，1 个字段送人工录入",
    ]


def test_a_watched_folder_waits_for_a_batch_to_settle_and_files_it_away(tmp_path: Path):
    batches: list[list[str]] = []
    stop = threading.Event()

    def handle(files: list[Path]) -> station.Outcome:
        batches.append([p.name for p in files])
        sendable, refused = station.gather(files)
        stop.set()
        return station.Outcome(sendable, refused, view=_view(scan_id="s20261130"), code=ExitCode.bad_input)

    (tmp_path / "p1.jpg").write_bytes(JPEG)
    (tmp_path / "p2.jpg").write_bytes(JPEG)
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    station.watch(tmp_path, handle, 0.3, stop, print)
    assert batches == [["notes.txt", "p1.jpg", "p2.jpg"]], "one batch, sent once"
    assert sorted(p.name for p in (tmp_path / "done" / "s20261130").iterdir()) == ["p1.jpg", "p2.jpg"]
    failed = tmp_path / "failed" / "s20261130"
    assert sorted(p.name for p in failed.iterdir()) == ["notes.txt", "why.txt"]
    assert "notes.txt: 不是扫描件" in (failed / "why.txt").read_text(encoding="utf-8")


def test_the_evidence_checks_the_counter_can_act_on_are_told_in_chinese_the_others_not():
    checks = [
        "idcard_front on page 2: the ID card (110105********0013) is neither the applicant's nor the "
        "insured's: filed under its own number only",
        "idcard_back on page 2: waits for its front's ID number to be keyed",
        "the upload names customer 110105********0013, but no document in the scan shows that number (yet): "
        "nothing is filed under it",
    ]
    assert counter_checks(checks) == [
        "第2页的身份证既不是投保人的也不是被保险人的，请核对证件",
        "填写的客户证件号码与本次扫描的证件和投保单都不符，请核对号码",
    ]


def _desk(top: int, left: int) -> np.ndarray:
    """Return a dark desk (1400 x 1600 px at 150 dpi) with a card-sized white sheet (no card) at that spot."""
    desk = np.full((1600, 1400, 3), 50, np.uint8)
    desk[top : top + 319, left : left + 506] = 250  # 86 x 54 mm
    desk[top + 100 : top + 130, left + 60 : left + 400] = 20  # a line of "text"
    return desk


def test_each_page_that_became_no_document_is_told_with_why_and_a_region_passed_over_with_its_place():
    pages = [
        Page(1, _desk(60, 40), 150.0),  # a sheet near the top left: kept as a page, the region told
        Page(2, np.full((1600, 1400), 255, np.uint8), 150.0),  # blank
        refused_page(3, "page 1 declares 12000x9000 pixels, more than 60,000,000"),
        refused_page(4, "damaged image/tiff, page 2: broken data stream when reading image file"),
        refused_page(5, "something decode has not said before"),
    ]
    reports: list = []
    documents = capture(pages, reports)
    assert [d.pages for d in documents] == [[1]]
    scan_pages = [ScanPage(**r.to_json()) for r in reports]  # as the worker stores them
    told = pages_left_out(scan_pages)
    assert [(t.page, t.outcome, t.rescan, t.zh) for t in told] == [
        (1, "passed_over", True, "第1页有一处像卡片的区域未能识别（左上），请单独重新扫描该卡片"),
        (2, "blank", False, "第2页为空白页，已略过"),
        (3, "refused", True, "第3页无法识别：图像过大（12000×9000像素），请用300 dpi重新扫描该页"),
        (4, "refused", True, "第4页无法识别：文件已损坏，请重新扫描该页"),
        (5, "refused", True, "第5页无法识别：请重新扫描该页"),
    ]
    x, y, w, h = told[0].box
    assert abs(x - 40) <= 3 and abs(y - 60) <= 3 and abs(w - 506) <= 6 and abs(h - 319) <= 6, told[0].box
    assert told[0].en.startswith("a card-shaped region at x 7 mm, y 10 mm") and told[3].en.startswith(
        "damaged"
    )
    # A scan captured before regions kept their boxes: the region is told without a place; a separator.
    older = ScanPage(page=2, outcome="document", passed_over=["a card-shaped region at x 1 mm ..."])
    assert [t.zh for t in pages_left_out([ScanPage(page=3, outcome="separator"), older])] == [
        "第2页有一处像卡片的区域未能识别，请单独重新扫描该卡片",
        "第3页为分隔页",
    ]


@pytest.mark.parametrize(
    ("box", "place"),
    [
        ([0, 0, 100, 100], "左上"),
        ([450, 50, 100, 100], "上方"),
        ([850, 0, 150, 100], "右上"),
        ([300, 400, 400, 200], "中间"),
        ([0, 900, 300, 100], "左下"),
        ([900, 500, 100, 100], "右侧"),
        ([0, 0, 1000, 1000], "中间"),
    ],
)
def test_a_region_s_place_is_the_third_of_the_page_its_centre_falls_in(box: list[int], place: str):
    assert where_on_page(box, [1000, 1000]) == place


def test_the_summary_lists_the_pages_that_became_no_document_and_counts_those_to_scan_again():
    left_out = [
        {"page": 2, "zh": "第2页为空白页，已略过", "rescan": False},
        {"page": 3, "zh": "第3页有一处像卡片的区域未能识别（右下），请单独重新扫描该卡片", "rescan": True},
        {"page": 3, "zh": "第3页有一处像卡片的区域未能识别（左上），请单独重新扫描该卡片", "rescan": True},
    ]
    rescans = [{"page": 1, "zh": "第1页模糊，请重新扫描"}]
    document = {"label": "投保单", "pages": [1], "status": "exception", "fields": {}}
    view = _view(documents=[document], rescans=rescans, left_out=left_out)
    lines = station.summary(station.Outcome([Path("a.jpg"), Path("b.jpg")], view=view))
    assert lines[3:] == [
        "✗ 第1页模糊，请重新扫描",
        "· 第2页为空白页，已略过",
        "✗ 第3页有一处像卡片的区域未能识别（右下），请单独重新扫描该卡片",
        "✗ 第3页有一处像卡片的区域未能识别（左上），请单独重新扫描该卡片",
        "共 1 份文档；0 个字段已识别，0 个字段送人工录入；2 页需重新扫描",
    ]
