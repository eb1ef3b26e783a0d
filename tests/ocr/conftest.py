"""A stored document with fields waiting for key-entry, shared by the key-entry API and page tests."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

import keyentry
from capture.decode import encode_png
from models import DocumentRecord, FieldRecord, document_key
from settings import Settings
from storage import open_store
from vocabulary import utcnow

DOC = "d20261123101500abcdefabcdef001"
SCAN = "s20261123101500abcdefabcdef"


@cache
def form_page_png() -> bytes:
    """Return a rendered application form page (300 dpi PNG), made once per session (~1 s)."""
    from capture.render import render_form
    from capture.templates import by_key

    values = {"applicant_name": "张三丰", "insured_name": "李四", "beneficiary_name": "王五"}
    return encode_png(render_form(by_key("application_form/1"), values))


@pytest.fixture
def document_with_page(settings: Settings, document: DocumentRecord) -> DocumentRecord:
    """The same document with its rectified page stored, as capture stores it: a strip can be cut from it."""
    store = open_store(settings)
    key = f"documents/{DOC}/pages/1.png"
    store.put(key, form_page_png(), "image/png")
    record = document.model_copy(update={"pages": [key]})
    store.put(document_key(DOC), record.to_json(), "application/json")
    return record


@pytest.fixture
def document(settings: Settings, redis_conn) -> DocumentRecord:
    """A stored form with one field accepted by OCR, one for single entry and one for double entry."""
    store = open_store(settings)
    image = encode_png(np.full((60, 300), 255, np.uint8))

    def field(name, kind, status, value=None, suggestion=None, double=False):
        key = f"documents/{DOC}/fields/{name}.png"
        store.put(key, image, "image/png")
        return FieldRecord(
            box=[0, 0, 300, 60],
            quad=[[0, 0], [300, 0], [300, 60], [0, 60]],
            page=1,
            image=key,
            kind=kind,
            value=value,
            confidence=40.0,
            status=status,
            reasons=["OCR confidence 40 below 60"] if status == "key_entry" else [],
            suggestion=suggestion,
            double_entry=double,
        )

    record = DocumentRecord(
        doc_id=DOC,
        scan_id=SCAN,
        type="application_form",
        template="application_form/1",
        source_pages=[1],
        pages=[],
        status="ok",
        fields={
            "applicant_phone": field("applicant_phone", "phone", "accepted", "13812345678"),
            "applicant_name": field("applicant_name", "name", "key_entry", suggestion="张三半"),
            "applicant_id_number": field(
                "applicant_id_number", "id_number", "key_entry", suggestion="110105198703150018", double=True
            ),
        },
        captured_at=utcnow(),
    )
    store.put(document_key(DOC), record.to_json(), "application/json")
    assert keyentry.add_tasks(redis_conn, record, immediate=False) == 2
    assert keyentry.add_tasks(redis_conn, record, immediate=False) == 0  # a rerun adds nothing
    return record
