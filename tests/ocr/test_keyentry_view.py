"""What the keyer sees besides the field: the party in the label, the strip of the page around the field,
the counts of what waits for them and for others, their own count and rate for the day, and that a field
of a page to be scanned again is never offered."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
from PIL import Image

import keyentry
from capture.render import render_form
from capture.strip import MARK_RGB, STRIP_CONTEXT_MM, STRIP_DPI, field_strip
from capture.templates import MM_PER_INCH, by_key
from models import DocumentRecord, load
from rebuild import rebuild
from settings import Settings
from storage import open_store
from tests.ocr.conftest import DOC


def test_the_label_names_the_party_the_field_belongs_to() -> None:
    assert keyentry.field_label("applicant_name", "姓名") == "投保人姓名"
    assert keyentry.field_label("insured_id_number", "证件号码") == "被保险人证件号码"
    assert keyentry.field_label("beneficiary_name", "姓名") == "受益人姓名"
    assert keyentry.field_label("applicant_signature", "投保人签名") == "投保人签名"  # said already
    assert keyentry.field_label("sum_insured", "保险金额") == "保险金额"
    assert keyentry.field_label("name", "姓名") == "姓名"  # an ID card: no party


def test_the_strip_runs_across_the_page_around_the_field_with_the_field_outlined() -> None:
    template = by_key("application_form/1")
    page = render_form(template, {"insured_name": "李四"}, dpi=150)
    box = template.field("insured_name").box
    strip = field_strip(page, box, page_dpi=150)
    k = STRIP_DPI / MM_PER_INCH
    assert strip.shape[1] == page.shape[1]  # the whole width of the form
    assert abs(strip.shape[0] - (box.h + 2 * STRIP_CONTEXT_MM) * k) <= 1
    red = np.all(strip == MARK_RGB, axis=2)
    ys, xs = np.nonzero(red)
    assert abs(xs.min() - box.x * k) <= 3 and abs(xs.max() - (box.x + box.w) * k) <= 3
    assert abs(ys.min() - STRIP_CONTEXT_MM * k) <= 3 and abs(ys.max() - (STRIP_CONTEXT_MM + box.h) * k) <= 3
    # only the outline is red: inside it the field is as printed
    x0, y0 = round(box.x * k) + 4, round(STRIP_CONTEXT_MM * k) + 4
    assert not red[y0 : y0 + round(box.h * k) - 8, x0 : x0 + round(box.w * k) - 8].any()


def test_the_day_count_and_rate_are_of_the_keyers_beijing_day(redis_conn) -> None:
    late = datetime(2026, 11, 29, 15, 59, tzinfo=UTC)  # 23:59 in Beijing, the day before
    first = datetime(2026, 11, 29, 16, 30, tzinfo=UTC)  # 00:30 Beijing, the 30th
    for at in (late, first, first + timedelta(minutes=30), first + timedelta(hours=2)):
        keyentry.count_answer(redis_conn, "keyer-a", at)
    keyentry.count_answer(redis_conn, "keyer-b", first)
    now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # 18:00 in Beijing
    today = keyentry.today(redis_conn, "keyer-a", now)
    assert (today.day, today.answers, today.first_at, today.per_hour) == ("2026-11-30", 3, first, 1.0)
    assert keyentry.today(redis_conn, "keyer-a", late).answers == 1  # the 29th had its own
    assert keyentry.today(redis_conn, "keyer-b", now).per_hour is None  # one answer: no rate yet
    assert keyentry.today(redis_conn, "keyer-c", now).answers == 0


def test_the_strip_of_a_leased_field_is_cut_once_and_kept(
    settings: Settings, redis_conn, document_with_page: DocumentRecord
) -> None:
    store = open_store(settings)
    task = keyentry.lease(redis_conn, "keyer-a", store=store)
    assert task is not None and task.label in ("投保人姓名", "投保人证件号码")
    png = keyentry.strip(store, task)
    with Image.open(io.BytesIO(png)) as image:
        assert image.size[0] == round(210 * STRIP_DPI / MM_PER_INCH)
    assert store.exists(task.image.removesuffix(".png") + ".strip.png")
    assert keyentry.strip(store, task) == png  # kept: the same bytes again


def test_the_counts_say_what_waits_for_this_keyer_and_what_for_others(
    settings: Settings, redis_conn, document: DocumentRecord
) -> None:
    store = open_store(settings)
    assert keyentry.counts(redis_conn, "keyer-a") == (2, 0)
    task = keyentry.lease(redis_conn, "keyer-a", store=store)
    assert keyentry.counts(redis_conn, "keyer-a") == (2, 0)  # the one held is theirs
    assert keyentry.counts(redis_conn, "keyer-b") == (1, 1)
    values = {"applicant_name": "张三丰", "applicant_id_number": "110105198703150013"}
    while task is not None:
        keyentry.submit(redis_conn, store, task.task_id, "keyer-a", values[task.field])
        task = keyentry.lease(redis_conn, "keyer-a", store=store)
    # the blind field waits for a second keyer: not for keyer-a, who keyed it
    assert keyentry.lease(redis_conn, "keyer-a", store=store) is None
    assert keyentry.counts(redis_conn, "keyer-a") == (0, 1)
    assert keyentry.counts(redis_conn, "keyer-b") == (1, 0)


def test_a_field_of_a_page_to_be_scanned_again_or_superseded_is_never_offered(
    settings: Settings, redis_conn, document: DocumentRecord
) -> None:
    store = open_store(settings)
    record = load(store, DocumentRecord, DOC).model_copy(update={"status": "exception"})
    store.put(record.key, record.to_json(), "application/json")
    assert keyentry.lease(redis_conn, "keyer-a", store=store) is None
    assert keyentry.counts(redis_conn, "keyer-a") == (0, 0)  # withdrawn, not counted as waiting
    assert keyentry.withdraw_document(redis_conn, record) == 0  # done once: a rerun changes nothing
    # superseded by a later scan of the same form: withdrawn on settling that scan (keyentry.settle)
    record = record.model_copy(update={"status": "ok", "superseded_by": "d20261124101500abcdefabcdef001"})
    redis_conn.delete(*(keyentry.PREFIX + keyentry.task_id_for(DOC, n) for n in record.fields))
    keyentry.add_tasks(redis_conn, record, immediate=False)
    store.put(record.key, record.to_json(), "application/json")
    assert keyentry.lease(redis_conn, "keyer-a", store=store) is None
    assert keyentry.waiting(redis_conn) == 0
    # Redis lost: `imaging rebuild` makes no task of it again
    redis_conn.flushdb()
    assert rebuild(redis_conn, settings, store).tasks == []
    assert keyentry.waiting(redis_conn) == 0


def test_an_illegible_answer_withdraws_the_other_fields_of_its_page(
    settings: Settings, redis_conn, document: DocumentRecord
) -> None:
    store = open_store(settings)
    task = keyentry.lease(redis_conn, "keyer-a", store=store)
    answer = keyentry.submit(redis_conn, store, task.task_id, "keyer-a", "", "illegible")
    assert answer["status"] == "illegible"
    assert keyentry.waiting(redis_conn) == 0
    assert keyentry.lease(redis_conn, "keyer-b", store=store) is None
