"""Documents built straight into a store, for index and retrieval tests that need no capture."""

from __future__ import annotations

import numpy as np
import pytest

from capture.decode import encode_png
from indexing.index import enter
from models import DocumentRecord, FieldRecord, document_key
from settings import Settings
from storage import ObjectStore, open_store
from vocabulary import utcnow

APPLICANT = "110105198703150013"
INSURED = "110105201001010010"
POLICY = "TB2026001234"
CLAIM = "LP2026000077"
OTHER = "31010419900101037X"


def doc_id(n: int, stamp: str = "20261123101500") -> str:
    return f"d{stamp}abcdefabcdef{n:03d}"


def put_document(
    store: ObjectStore,
    n: int,
    doc_type: str,
    stage: str,
    keys: dict[str, list[str]],
    fields: dict[str, str] | None = None,
    stamp: str = "20261123101500",
    regions: tuple[str, ...] = (),
    person: str | None = None,
) -> DocumentRecord:
    """Store a document with one page, the given trusted field values and its index entries."""
    did = doc_id(n, stamp)
    image = encode_png(np.full((40, 60), 200 + n % 50, np.uint8))
    page = f"documents/{did}/pages/1.png"
    store.put(page, image, "image/png")
    thumb = f"documents/{did}/thumbnail.png"
    store.put(thumb, image, "image/png")

    def part(name: str, value: str | None) -> FieldRecord:
        key = f"documents/{did}/fields/{name}.png"
        store.put(key, image, "image/png")
        status = "accepted" if value is not None else None
        return FieldRecord(box=[0, 0, 6, 4], quad=[[0, 0]] * 4, page=1, image=key, value=value, status=status)

    record = DocumentRecord(
        doc_id=did,
        scan_id="s" + did[1:27],
        type=doc_type,
        source_pages=[1],
        pages=[page],
        thumbnail=thumb,
        status="ok",
        fields={name: part(name, value) for name, value in (fields or {}).items()},
        regions={name: part(name, None) for name in regions},
        captured_at=utcnow(),
        person=person,
        stage=stage,
        keys=keys,
        complete=True,
    )
    record = enter(store, record)
    store.put(document_key(did), record.to_json(), "application/json")
    return record


@pytest.fixture
def case(settings: Settings) -> dict[str, str]:
    """A policy with its application form, the applicant's ID card, a servicing request and a claim."""
    return put_case(open_store(settings))


def put_case(store: ObjectStore) -> dict[str, str]:
    """Store the `case` fixture's documents; return their doc ids by name."""
    people = {"policy": [POLICY], "customer": [APPLICANT, INSURED]}
    card = {"policy": [POLICY], "customer": [APPLICANT]}
    docs = {
        "form": put_document(
            store,
            1,
            "application_form",
            "new_business",
            people,
            {"applicant_id_number": APPLICANT},
            regions=("applicant_signature",),
        ),
        "front": put_document(store, 2, "idcard_front", "new_business", card, {"id_number": APPLICANT}),
        "back": put_document(
            store, 3, "idcard_back", "new_business", card, {"valid_to": "2035-03-15"}, person=APPLICANT
        ),
        "request": put_document(store, 4, "other", "servicing", {"policy": [POLICY]}, stamp="20261201090000"),
        "claim": put_document(
            store, 5, "other", "claims", {"claim": [CLAIM], "customer": [INSURED]}, stamp="20261202090000"
        ),
        "stranger": put_document(store, 6, "idcard_front", "new_business", {"customer": [OTHER]}),
    }
    return {name: record.doc_id for name, record in docs.items()}
