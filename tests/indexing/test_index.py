"""The index in the object store, on both backends: entries, lookups, moves, ID cards on file, check."""

from __future__ import annotations

from datetime import UTC, date, datetime

from indexing.index import (
    card_on_file,
    check,
    enter,
    lookup,
    parse_entry,
    still_valid,
    valid_number,
)
from models import DocumentRecord, load
from storage import ObjectStore
from tests.indexing.conftest import APPLICANT, INSURED, OTHER, doc_id, put_document
from tests.snapshots import snapshot
from vocabulary import is_scan_id, new_scan_id

POLICY = "TB2026001234"


def test_one_listing_finds_everything_under_a_policy_newest_first(store: ObjectStore) -> None:
    put_document(store, 1, "application_form", "new_business", {"policy": [POLICY], "customer": [APPLICANT]})
    put_document(store, 2, "idcard_front", "new_business", {"policy": [POLICY], "customer": [APPLICANT]})
    put_document(store, 3, "other", "servicing", {"policy": [POLICY]}, stamp="20261201080000")
    put_document(store, 4, "application_form", "new_business", {"policy": ["TB2026009999"]})
    found = lookup(store, "policy", POLICY)
    assert [e.doc_id for e in found] == [doc_id(3, "20261201080000"), doc_id(2), doc_id(1)]
    assert [(e.type, e.stage) for e in found] == [
        ("other", "servicing"),
        ("idcard_front", "new_business"),
        ("application_form", "new_business"),
    ]
    assert found[0].uploaded_at.date() == date(2026, 12, 1)
    assert [e.doc_id for e in lookup(store, "customer", APPLICANT)] == [doc_id(2), doc_id(1)]
    assert lookup(store, "policy", "TB0000000000") == []


def test_entering_a_document_twice_changes_nothing(store: ObjectStore) -> None:
    record = put_document(store, 1, "application_form", "new_business", {"policy": [POLICY]})
    before = snapshot(store, "index/")
    again = enter(store, record)
    assert again.index == record.index
    assert snapshot(store, "index/") == before


def test_a_corrected_number_moves_the_entry(store: ObjectStore) -> None:
    record = put_document(store, 1, "application_form", "new_business", {"customer": [OTHER]})
    moved = enter(store, record.model_copy(update={"keys": {"customer": [APPLICANT]}}))
    assert lookup(store, "customer", OTHER) == []
    assert [e.doc_id for e in lookup(store, "customer", APPLICANT)] == [record.doc_id]
    named = store.private_name(APPLICANT)
    assert moved.index == [f"index/customer/{named}/{record.doc_id}=application_form=new_business"]


def test_numbers_that_could_steer_a_key_are_never_entered() -> None:
    for bad in ("../x", "TB/1", "", "a" * 40, "tb..2"):
        assert not valid_number("policy", bad)
    assert not valid_number("customer", "110105198703150012")  # wrong check digit
    assert valid_number("customer", APPLICANT)
    assert parse_entry("index/policy/TB1234/../../x") is None
    assert parse_entry(f"index/policy/{POLICY}/{doc_id(1)}=application_form=new_business") is not None


def test_check_reports_drift_and_repair_mends_it(store: ObjectStore) -> None:
    a = put_document(store, 1, "application_form", "new_business", {"policy": [POLICY]})
    b = put_document(store, 2, "idcard_front", "new_business", {"customer": [APPLICANT]})
    assert check(store).clean
    store.delete(a.index[0])  # an entry lost
    stray = f"index/policy/TB0000000001/{doc_id(9)}=other=claims"
    store.put(stray, b"{}")  # an entry for no document
    report = check(store)
    assert (report.missing, report.stray, report.clean) == ([a.index[0]], [stray], False)
    assert report.documents == 2
    repaired = check(store, repair=True)
    assert repaired.repaired
    assert check(store).clean
    assert [e.doc_id for e in lookup(store, "policy", POLICY)] == [a.doc_id]
    assert [e.doc_id for e in lookup(store, "customer", APPLICANT)] == [b.doc_id]


def test_check_finds_a_record_whose_keyed_number_was_never_entered(store: ObjectStore) -> None:
    from models import Scan, ScanFile
    from vocabulary import ScanMode, utcnow

    record = put_document(store, 1, "idcard_front", "new_business", {}, fields={"id_number": INSURED})
    scan = Scan(
        scan_id=record.scan_id,
        mode=ScanMode.batch,
        files=[ScanFile(sha256="0" * 64, content_type="image/png", size=1)],
        uploaded_by="k1",
        uploaded_at=utcnow(),
    )
    store.put(scan.key, scan.to_json())
    report = check(store)
    assert report.stale_records == [record.doc_id]
    check(store, repair=True)
    fixed = load(store, DocumentRecord, record.doc_id)
    assert fixed.keys == {"customer": [INSURED]}
    assert [e.doc_id for e in lookup(store, "customer", INSURED)] == [record.doc_id]
    assert check(store).clean


def _decided(**values: str) -> dict:
    class Decision:
        def __init__(self, value: str) -> None:
            self.value, self.status = value, "accepted"

    return {name: Decision(value) for name, value in values.items()}


def test_a_valid_card_already_on_file_is_found_and_an_expired_or_different_one_is_not(
    store: ObjectStore,
) -> None:
    keys = {"customer": [APPLICANT], "policy": [POLICY]}
    front = put_document(
        store, 1, "idcard_front", "new_business", keys, {"id_number": APPLICANT, "name": "张三丰"}
    )
    back = put_document(
        store, 2, "idcard_back", "new_business", keys, {"valid_from": "2015-03-15", "valid_to": "2035-03-15"}
    )
    new = doc_id(1, "20261124090000")
    same_front = _decided(id_number=APPLICANT, name="张三丰")
    found = card_on_file(store, new, "idcard_front", same_front, APPLICANT, None)
    assert found is not None and found.doc_id == front.doc_id
    same_back = _decided(valid_from="2015-03-15", valid_to="2035-03-15")
    found = card_on_file(store, new, "idcard_back", same_back, APPLICANT, None)
    assert found is not None and found.doc_id == back.doc_id
    # Another name on the same number, other dates on the back, no customer known: store it as new.
    assert (
        card_on_file(store, new, "idcard_front", _decided(id_number=APPLICANT, name="李四"), APPLICANT, None)
        is None
    )
    renewed = _decided(valid_from="2025-03-15", valid_to="2045-03-15")
    assert card_on_file(store, new, "idcard_back", renewed, APPLICANT, None) is None
    assert card_on_file(store, new, "idcard_back", same_back, None, None) is None
    # A document is never its own card on file (a rerun of the same scan).
    assert card_on_file(store, front.doc_id, "idcard_front", same_front, APPLICANT, None) is None


def test_an_expired_card_on_file_is_not_linked_to(store: ObjectStore) -> None:
    keys = {"customer": [APPLICANT]}
    put_document(store, 1, "idcard_front", "new_business", keys, {"id_number": APPLICANT, "name": "张三丰"})
    put_document(
        store, 2, "idcard_back", "new_business", keys, {"valid_from": "2005-03-15", "valid_to": "2015-03-15"}
    )
    front = _decided(id_number=APPLICANT, name="张三丰")
    assert card_on_file(store, doc_id(5, "20261124090000"), "idcard_front", front, APPLICANT, None) is None


def test_card_validity() -> None:
    assert still_valid("长期")
    assert still_valid("2035-03-15", date(2026, 11, 23))
    assert still_valid("2026-11-23", date(2026, 11, 23))
    assert not still_valid("2026-11-22", date(2026, 11, 23))
    assert not still_valid(None)
    assert not still_valid("soon")


def test_the_index_check_command_reports_drift_and_repairs_it(settings) -> None:
    from storage import open_store
    from tests.conftest import run_cli

    store = open_store(settings)
    record = put_document(
        store, 1, "idcard_front", "new_business", {"customer": [APPLICANT], "policy": [POLICY]}
    )
    lost = next(k for k in record.index if "/customer/" in k)
    store.delete(lost)
    found = run_cli(settings, "index", "check")
    assert found.returncode == 1, found.stderr
    assert f"missing\tindex/customer/{store.private_name(APPLICANT)}/{record.doc_id}" in found.stdout
    assert APPLICANT not in found.stdout + found.stderr
    assert "1 documents, 1 entries: 1 missing, 0 stray" in found.stderr
    repaired = run_cli(settings, "index", "check", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert store.exists(lost)
    clean = run_cli(settings, "index", "check")
    assert clean.returncode == 0 and clean.stdout == "", clean.stdout


def test_scan_ids_made_within_one_second_sort_in_the_order_they_were_made() -> None:
    second = datetime(2026, 11, 23, 10, 37, 17, tzinfo=UTC)
    made = [new_scan_id(second.replace(microsecond=m)) for m in (0, 1, 999, 500_000, 999_999)]
    assert all(is_scan_id(s) for s in made)
    assert sorted(made) == made
    assert len({new_scan_id(second) for _ in range(100)}) == 100, "random bits tell apart ids of one instant"
