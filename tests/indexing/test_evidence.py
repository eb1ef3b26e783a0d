"""indexing/case.py's ``evidence``, a plain function: records in, whose each is and what a person must see."""

from __future__ import annotations

from indexing.case import evidence
from models import DocumentRecord, FieldRecord, Scan, ScanFile
from tests.indexing.conftest import APPLICANT, INSURED, OTHER
from vocabulary import utcnow

SCAN = "s20261123101500abcdefabcdef"


def _record(n: int, doc_type: str, values: dict[str, str], page: int | None = None) -> DocumentRecord:
    fields = {
        name: FieldRecord(box=[0, 0, 1, 1], quad=[], page=1, image="", value=value, status="accepted")
        for name, value in values.items()
    }
    return DocumentRecord(
        doc_id=f"d{SCAN[1:]}{n:03d}",
        scan_id=SCAN,
        type=doc_type,
        source_pages=[page or n],
        pages=[],
        status="ok",
        captured_at=utcnow(),
        fields=fields,
        application_no="TB2026001234" if doc_type == "application_form" else None,
    )


def _scan(records: list[DocumentRecord], customer_id: str | None = None) -> Scan:
    return Scan(
        scan_id=SCAN,
        mode="batch",
        files=[ScanFile(sha256="0" * 64, content_type="image/png", size=1)],
        uploaded_by="k",
        uploaded_at=utcnow(),
        customer_id=customer_id,
        documents=[r.doc_id for r in records],
    )


FORM = {
    "applicant_id_number": APPLICANT,
    "applicant_name": "张三丰",
    "applicant_sex": "男",
    "insured_id_number": INSURED,
    "insured_name": "李四",
}


def test_cards_are_tied_to_the_party_they_match_and_a_strangers_card_is_reported() -> None:
    form = _record(1, "application_form", FORM)
    mine = _record(2, "idcard_front", {"id_number": APPLICANT, "name": "张三丰", "sex": "男"})
    insured = _record(3, "idcard_front", {"id_number": INSURED, "name": "李四"})
    misnamed = _record(4, "idcard_front", {"id_number": INSURED, "name": "李思"})
    stranger = _record(5, "idcard_front", {"id_number": OTHER, "name": "王五"})
    records = [form, mine, insured, misnamed, stranger]
    found, checks = evidence(_scan(records, customer_id=APPLICANT), records)
    assert (found[mine.doc_id].party, found[mine.doc_id].tied) == ("applicant", {"policy": ["TB2026001234"]})
    assert found[mine.doc_id].checks == [] and not found[mine.doc_id].mismatch
    assert found[insured.doc_id].party == "insured"
    assert found[misnamed.doc_id].mismatch and "李思" in found[misnamed.doc_id].checks[0]
    strange = found[stranger.doc_id]
    assert (strange.party, strange.person, strange.tied, strange.mismatch) == (None, OTHER, {}, True)
    assert "neither the applicant's nor the insured's" in strange.checks[0] and OTHER not in strange.checks[0]
    assert len(checks) == 2, "the upload's customer_id is shown by the form: only the two cards are reported"


def test_a_back_takes_its_front_in_the_scan_or_waits_for_a_keyer() -> None:
    front = _record(1, "idcard_front", {"id_number": APPLICANT})
    beside = _record(2, "idcard_back", {"valid_to": "2035-03-15"}, page=1)
    other_file = _record(3, "idcard_back", {"valid_to": "2035-03-15"})
    found, _ = evidence(_scan([front, beside, other_file]), [front, beside, other_file])
    assert found[beside.doc_id].person == found[other_file.doc_id].person == APPLICANT

    alone = _record(1, "idcard_back", {"valid_to": "2035-03-15"})
    found, checks = evidence(_scan([alone], customer_id=APPLICANT), [alone])
    assert found[alone.doc_id].person is None and found[alone.doc_id].needs_holder
    assert any("waits for a keyer" in c for c in checks)
    assert any("no document in the scan shows that number" in c for c in checks), "a tag is a claim"

    unread = _record(1, "idcard_front", {})
    found, checks = evidence(_scan([unread]), [unread])
    assert found[unread.doc_id].person is None and "no trusted ID number" in checks[0]
