"""Filing: a captured document and its decisions in, its stored record out, with its images and index
entries written; and the record that files a signed e-policy version beside the scans.

Every key is derived from the scan id and the document's place in it, so filing the same document twice
writes the same bytes under the same keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import datetime

from capture.decode import encode_png, thumbnail_png
from capture.model import Document, FieldImage
from indexing.index import card_on_file, default_stage, document_keys, enter
from models import DocumentRecord, FieldRecord, Scan
from storage import ObjectStore
from vocabulary import (
    TRUSTED,
    DocType,
    FieldStatus,
    Stage,
    doc_id_for,
    epolicy_doc_id,
    epolicy_source,
    is_card,
    utcnow,
)


def cards_together(documents: Iterable[Document]) -> Iterator[list[Document]]:
    """Yield the documents in lists: the ID cards found on one page together, fronts first; others alone.
    A back then knows the customer of the one front beside it."""
    held: list[Document] = []
    for document in documents:
        if held and (not is_card(document.type) or document.pages != held[0].pages):
            yield sorted(held, key=lambda d: d.type != DocType.idcard_front)
            held = []
        if is_card(document.type):
            held.append(document)
        else:
            yield [document]
    if held:
        yield sorted(held, key=lambda d: d.type != DocType.idcard_front)


def _card_customer(doc_type: str, decisions: dict, fronts: list[str]) -> str | None:
    """Return the customer an ID card side is of: a front's accepted ID number, or for a back the
    customer of the one front on the same page. ``fronts`` gains a front's customer ("" if unknown)."""
    if doc_type == DocType.idcard_front:
        front = decisions.get("id_number")
        customer = front.value if front is not None and front.status == FieldStatus.accepted else None
        fronts.append(customer or "")
        return customer
    if doc_type == DocType.idcard_back and len(fronts) == 1 and fronts[0]:
        return fronts[0]
    return None


def _field_record(
    store: ObjectStore, doc_id: str, item: FieldImage, decision, double_entry: bool
) -> FieldRecord:
    """Return a field's (or region's) record after storing its image."""
    key = f"documents/{doc_id}/fields/{item.name}.png"
    store.put(key, encode_png(item.image), "image/png", {"doc_id": doc_id, "field": item.name})
    decided = {}
    if decision:
        decided = {
            "value": decision.value,
            "confidence": round(decision.confidence, 1),
            "status": decision.status,
            "reasons": decision.reasons,
            "suggestion": decision.suggestion,
            "choices": decision.choices,
            "double_entry": double_entry,
        }
    return FieldRecord(
        box=list(item.box),
        quad=[list(p) for p in item.quad],
        page=item.page,
        image=key,
        kind=item.kind,
        text=item.text,
        **decided,
    )


def _store_pages(store: ObjectStore, doc_id: str, images: list[bytes], first) -> tuple[list[str], str | None]:
    """Return the keys of the page images and the thumbnail, after storing them."""
    pages = []
    for number, png in enumerate(images, start=1):
        pages.append(f"documents/{doc_id}/pages/{number}.png")
        store.put(pages[-1], png, "image/png", {"doc_id": doc_id})
    thumbnail = None
    if first is not None:
        thumbnail = f"documents/{doc_id}/thumbnail.png"
        store.put(thumbnail, thumbnail_png(first), "image/png", {"doc_id": doc_id})
    return pages, thumbnail


def _store_text_layer(store: ObjectStore, doc_id: str, document: Document) -> str | None:
    """Return the key of the document's text layer (words with boxes) after storing it; None without."""
    words = document.text_layer()
    if words is None:
        return None
    key = f"documents/{doc_id}/text.json"
    body = json.dumps(words, ensure_ascii=False, separators=(",", ":")).encode()
    store.put(key, body, "application/json", {"doc_id": doc_id})
    return key


def file_document(
    store: ObjectStore, scan: Scan, index: int, document: Document, decisions: dict, fronts: list[str]
) -> DocumentRecord:
    """Return the document's record after writing its images, its index entries and the record (the same
    keys on every run). An ID card side already on file is linked to, not stored again. ``fronts`` holds
    the customers of the fronts on the same page, and gains this one if it is a front."""
    doc_id = doc_id_for(scan.scan_id, index)
    template = document.template
    double = {f.name for f in template.fields if f.double_entry} if template else set()
    doc_type = str(document.type)
    if doc_type == DocType.other and default_stage(scan) == Stage.claims:
        doc_type = DocType.claim_evidence.value  # pages sent for a claim that are no form or card
    images = [encode_png(image) for image in document.images]
    sha = hashlib.sha256(images[0]).hexdigest() if images and is_card(document.type) else None
    customer = _card_customer(doc_type, decisions, fronts)
    on_file = card_on_file(store, doc_id, doc_type, decisions, customer, sha)
    if on_file is not None and customer is None:
        customer = on_file.person  # the same card image: the same person as the card on file
    text_layer = None
    if on_file is None:
        first = document.images[0] if document.images else None
        pages, thumbnail = _store_pages(store, doc_id, images, first)
        text_layer = _store_text_layer(store, doc_id, document)
        fields = {
            n: _field_record(store, doc_id, f, decisions.get(n), n in double)
            for n, f in document.fields.items()
        }
        regions = {n: _field_record(store, doc_id, r, None, False) for n, r in document.regions.items()}
    else:
        pages, thumbnail, fields, regions = on_file.pages, on_file.thumbnail, on_file.fields, on_file.regions
    record = DocumentRecord(
        doc_id=doc_id,
        scan_id=scan.scan_id,
        type=doc_type,
        template=document.template_key,
        source_pages=document.pages,
        pages=pages,
        thumbnail=thumbnail,
        status=document.status,
        problems=document.problems,
        application_no=document.application_no,
        fields=fields,
        regions=regions,
        captured_at=utcnow(),
        stage=default_stage(scan),
        branch=scan.branch,
        on_file=on_file.doc_id if on_file else None,
        person=customer,
        image_sha256=sha,
        text_layer=text_layer,
    )
    record.complete = all(f.status in TRUSTED for f in record.fields.values())
    record.keys = document_keys(record, scan)
    record = enter(store, record)
    store.put(record.key, record.to_json(), "application/json", {"scan_id": scan.scan_id, "type": doc_type})
    return record


def file_epolicy(
    store: ObjectStore, policy_no: str, version: int, requested_at: datetime, customers: Iterable[str]
) -> DocumentRecord:
    """Return the record that files a signed e-policy version under the policy and its customers (the
    holder and the insured), stage new business for the first version and servicing after."""
    doc = DocumentRecord(
        doc_id=epolicy_doc_id(requested_at, policy_no, version),
        scan_id=epolicy_source(policy_no, version),
        type=DocType.epolicy.value,
        source_pages=[],
        pages=[],
        status="ok",
        captured_at=requested_at,
        complete=True,
        stage=(Stage.new_business if version == 1 else Stage.servicing).value,
        keys={"policy": [policy_no], "customer": sorted(set(customers))},
    )
    doc = enter(store, doc)
    store.put(doc.key, doc.to_json(), "application/json", {"type": DocType.epolicy.value})
    return doc
