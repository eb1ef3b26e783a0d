"""The index: which policy, customer and claim numbers each document belongs under, kept in the object store.

One small object per (number, document), its key carrying everything a listing needs::

    index/policy/<policy or application no>/<doc_id>=<type>=<stage>
    index/customer/<HMAC of the ID number>/<doc_id>=<type>=<stage>   (store.private_name: no number in a name)
    index/claim/<claim no>/<doc_id>=<type>=<stage>
    index/image/<sha256 of the card image>/<doc_id>=<type>=<stage>    (ID cards, to find a card on file)

so one prefix listing answers "everything for policy P" with type, stage and time (the doc id begins
with the upload's UTC timestamp), and costs what the answer holds, not what the store holds. The body
is a little JSON naming the same things, for people reading the bucket. The keys a document is entered
under are kept in its record (``keys``, ``index``): re-entering it after a keyed correction deletes
the entries it no longer belongs under, and entering it twice writes the same bytes under the same keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import idnumber
from models import DocumentRecord, Scan, find
from storage import ObjectStore
from vocabulary import BUSINESS_NO_PATTERN, CARD_TYPES, DOC_ID, TRUSTED, DocType, Stage, uploaded_at

KINDS = ("policy", "customer", "claim")
_ENTRY = re.compile(rf"^index/(policy|customer|claim|image)/([^/]+)/({DOC_ID})=([a-z_]+)=([a-z_]+)$")
# A card back with no front in its scan gets this field for a keyer: the ID number of its holder.
HOLDER_FIELD = "holder_id_number"
# Fields whose trusted value puts the document under a number.
POLICY_FIELDS = ("application_no", "policy_no")  # policy_no: the claim form's
CUSTOMER_FIELDS = (
    "applicant_id_number",
    "insured_id_number",
    "id_number",
    HOLDER_FIELD,
    "claimant_id_number",
)
CLAIM_FIELDS = ("claim_no",)  # the claim form's own claim number, for a form scanned without one


@dataclass(frozen=True)
class Entry:
    kind: str
    value: str  # the number; for a customer, its keyed hash (an ID number never stands in a key)
    doc_id: str
    type: str
    stage: str

    @property
    def key(self) -> str:
        return f"index/{self.kind}/{self.value}/{self.doc_id}={self.type}={self.stage}"

    @property
    def uploaded_at(self) -> datetime:
        return uploaded_at(self.doc_id)

    def body(self, scan_id: str) -> bytes:
        fields = {"doc_id": self.doc_id, "type": self.type, "stage": self.stage, "scan_id": scan_id}
        return json.dumps({self.kind: self.value, **fields}, ensure_ascii=False).encode()


def parse_entry(key: str) -> Entry | None:
    """Return the entry an index key stands for, or None if the key is not an index entry."""
    m = _ENTRY.match(key)
    return Entry(*m.groups()) if m else None


def valid_number(kind: str, value: str) -> bool:
    """Whether value may stand under index/<kind>/: a business number or an ID number with its check digit."""
    if kind == "customer":  # an identity number of a kind we know, its check character right
        return idnumber.identify(value).ok
    if kind == "image":
        return bool(re.fullmatch(r"[0-9a-f]{64}", value))
    return bool(re.fullmatch(BUSINESS_NO_PATTERN, value))


def segment(store: ObjectStore, kind: str, value: str) -> str:
    """Return what stands for a number in its index keys: the number itself, or for a customer the
    store's keyed hash of it."""
    return store.private_name(value) if kind == "customer" else value


def default_stage(scan: Scan) -> str:
    """The upload's stage, or claims when it names a claim, else new business."""
    if scan.stage:
        return scan.stage.value
    return Stage.claims.value if scan.claim_no else Stage.new_business.value


def document_keys(record: DocumentRecord, scan: Scan | None) -> dict[str, list[str]]:
    """Return the numbers a document belongs under, by evidence: the upload's policy and claim numbers,
    its own trusted (accepted or keyed) policy and ID numbers, for an ID card back the person its front
    (or a keyer) says it is of, and the numbers its scan ties it to (``tied``: a card matched with the
    form's party is filed under the form's policy). The upload's ``customer_id`` is a claim checked by
    indexing/case.py, never a key: a stranger's card in the scan must not be filed under the applicant.
    Without a scan record (an e-policy's, filed by the sale system's data), the numbers the record
    already holds stand."""
    keys: dict[str, set[str]] = {
        kind: set(record.keys.get(kind, [])) if scan is None else set() for kind in KINDS
    }
    if scan is not None:
        for kind, value in (("policy", scan.policy_no), ("claim", scan.claim_no)):
            if value:
                keys[kind].add(value)
    if record.application_no:
        keys["policy"].add(record.application_no.upper())
    for kind, names in (("policy", POLICY_FIELDS), ("customer", CUSTOMER_FIELDS), ("claim", CLAIM_FIELDS)):
        for name in names:
            f = record.fields.get(name)
            if f is not None and f.status in TRUSTED and f.value:
                keys[kind].add(f.value.upper())
    if record.type == DocType.idcard_back and record.person:
        keys["customer"].add(record.person)
    for kind, values in record.tied.items():
        keys.setdefault(kind, set()).update(values)
    valid = {kind: sorted(v for v in values if valid_number(kind, v)) for kind, values in keys.items()}
    return {kind: values for kind, values in valid.items() if values}


def entries_for(store: ObjectStore, record: DocumentRecord) -> list[Entry]:
    """Return the entries a document's record says it belongs under."""
    stage = record.stage or Stage.new_business.value
    doc_type = record.type if record.type in frozenset(DocType) else DocType.other.value
    found = [
        Entry(kind, segment(store, kind, value), record.doc_id, doc_type, stage)
        for kind in KINDS
        for value in record.keys.get(kind, [])
        if valid_number(kind, value)
    ]
    if record.type in CARD_TYPES and record.image_sha256 and not record.on_file:
        found.append(Entry("image", record.image_sha256, record.doc_id, doc_type, stage))
    return found


def enter(store: ObjectStore, record: DocumentRecord) -> DocumentRecord:
    """Write the record's index entries and remove the ones it no longer belongs under; return the record
    with ``index`` listing the entry keys now written. The caller stores the record."""
    wanted = {e.key: e for e in entries_for(store, record)}
    for key in record.index:
        if key not in wanted:
            store.delete(key)
    for key, entry in wanted.items():
        store.put(key, entry.body(record.scan_id), "application/json")
    return record.model_copy(update={"index": sorted(wanted)})


def reenter(store: ObjectStore, record: DocumentRecord) -> list[DocumentRecord]:
    """Return the records to store after a keyed value changed what a document belongs under: the
    document itself (a back whose holder was keyed is now that person's), and for an ID card front whose
    number is now known, the back beside it on the same page."""
    scan = find(store, Scan, record.scan_id)
    holder = trusted_value(record.fields, HOLDER_FIELD)
    if record.type == DocType.idcard_back and holder:
        record = record.model_copy(update={"person": holder})
    changed = [enter(store, record.model_copy(update={"keys": document_keys(record, scan)}))]
    customer = trusted_value(record.fields, "id_number")
    if record.type == DocType.idcard_front and customer and scan is not None:
        beside = [r for r in map(lambda d: find(store, DocumentRecord, d), scan.documents) if r is not None]
        beside = [r for r in beside if r.source_pages == record.source_pages and r.doc_id != record.doc_id]
        if not any(r.type == DocType.idcard_front for r in beside):  # the only front on its page
            for back in (r for r in beside if r.type == DocType.idcard_back and not r.on_file):
                back = back.model_copy(update={"person": customer})
                changed.append(enter(store, back.model_copy(update={"keys": document_keys(back, scan)})))
    return changed


def lookup(store: ObjectStore, kind: str, value: str) -> list[Entry]:
    """Return every entry under one number, newest first (one prefix listing)."""
    if kind not in (*KINDS, "image") or not valid_number(kind, value):
        return []
    found = (parse_entry(info.key) for info in store.list(f"index/{kind}/{segment(store, kind, value)}/"))
    return sorted((e for e in found if e is not None), key=lambda e: e.doc_id, reverse=True)


# ---- ID cards on file ---------------------------------------------------------------------------


def trusted_value(fields: dict, name: str) -> str | None:
    """Return a field's value if it is trusted (accepted by OCR or keyed), else None."""
    f = fields.get(name)
    if f is None:
        return None
    status, value = (f.status, f.value) if hasattr(f, "status") else (f.get("status"), f.get("value"))
    return value if status in TRUSTED and value else None


def still_valid(valid_to: str | None, today: date | None = None) -> bool:
    """Whether a card with this expiry (YYYY-MM-DD, or 长期 for no expiry) is valid today; unknown is not."""
    if not valid_to:
        return False
    if valid_to == "长期":
        return True
    try:
        return date.fromisoformat(valid_to) >= (today or datetime.now(UTC).date())
    except ValueError:
        return False


def current_cards(store: ObjectStore, customer: str, exclude: str = "") -> dict[str, DocumentRecord]:
    """Return the customer's newest ID card sides stored as images of their own (not links), by type."""
    cards: dict[str, DocumentRecord] = {}
    for entry in lookup(store, "customer", customer):
        if entry.type in CARD_TYPES and entry.type not in cards and entry.doc_id != exclude:
            record = find(store, DocumentRecord, entry.doc_id)
            # A side whose capture asked for a rescan is never the current card, nor one superseded.
            if record is not None and not record.on_file and not record.rescan and not record.superseded_by:
                cards[entry.type] = record
        if len(cards) == len(CARD_TYPES):
            break
    return cards


def card_on_file(
    store: ObjectStore,
    doc_id: str,
    doc_type: str,
    values: dict,
    customer: str | None,
    image_sha256: str | None,
) -> DocumentRecord | None:
    """Return the card on file a newly scanned ID card side is, or None to store it as new.

    The same image bytes are the same card. Otherwise the side must belong to the same customer (the
    front's trusted ID number, or for a back the customer of its front), the card on file must still be
    valid (its back's expiry not passed) and what both sides say must agree: the name on a front, the
    validity dates on a back. ``values`` are the new side's fields as the decision left them."""
    if doc_type not in CARD_TYPES:
        return None
    if image_sha256:
        for entry in lookup(store, "image", image_sha256):
            if entry.type != doc_type or entry.doc_id == doc_id:
                continue
            record = find(store, DocumentRecord, entry.doc_id)
            if record is not None and not record.on_file:
                return record
    if not customer:
        return None
    cards = current_cards(store, customer, exclude=doc_id)
    on_file, back = cards.get(doc_type), cards.get(DocType.idcard_back)
    if on_file is None or back is None or not still_valid(trusted_value(back.fields, "valid_to")):
        return None
    if doc_type == DocType.idcard_front:
        same = trusted_value(values, "id_number") == customer and trusted_value(values, "name") in (
            None,
            trusted_value(on_file.fields, "name"),
        )
    else:
        same = all(
            (new := trusted_value(values, name)) is not None and new == trusted_value(on_file.fields, name)
            for name in ("valid_from", "valid_to")
        )
    return on_file if same else None


# ---- checking the index against the documents ---------------------------------------------------


@dataclass
class CheckReport:
    documents: int = 0
    entries: int = 0
    missing: list[str] | None = None  # entries a document needs that are not stored
    stray: list[str] | None = None  # stored entries no document needs
    stale_records: list[str] | None = None  # records whose ``keys`` or ``index`` differ from their fields
    unfiled: list[str] | None = None  # documents filed under no number: nobody can find them
    repaired: bool = False

    @property
    def clean(self) -> bool:
        return not (self.missing or self.stray or self.stale_records or self.unfiled)


def _records(store: ObjectStore) -> Iterator[DocumentRecord]:
    for info in store.list("documents/"):
        if info.key.endswith("/record.json"):
            record = find(store, DocumentRecord, info.key.split("/")[1])
            if record is not None:
                yield record


def check(store: ObjectStore, repair: bool = False) -> CheckReport:
    """Compare every document's record with the index entries stored; with repair, mend the drift:
    write the missing entries, delete the stray ones, and bring each record's keys up to its fields."""
    report = CheckReport(missing=[], stray=[], stale_records=[], unfiled=[])
    wanted: set[str] = set()
    scans: dict[str, Scan | None] = {}
    for record in _records(store):
        report.documents += 1
        if record.scan_id not in scans:
            scans[record.scan_id] = find(store, Scan, record.scan_id)
        scan = scans[record.scan_id]
        keys = document_keys(record, scan)
        if not keys:
            report.unfiled.append(record.doc_id)
        fixed = record.model_copy(update={"keys": keys})
        fixed_index = sorted(e.key for e in entries_for(store, fixed))
        wanted.update(fixed_index)
        if keys != record.keys or fixed_index != record.index:
            report.stale_records.append(record.doc_id)
            if repair:
                fixed = enter(store, fixed)
                store.put(fixed.key, fixed.to_json(), "application/json")
    stored = {info.key for info in store.list("index/")}
    report.entries = len(stored)
    report.missing = sorted(wanted - stored)
    report.stray = sorted(stored - wanted)
    if repair:
        for key in report.stray:
            store.delete(key)
        for key in report.missing:
            entry = parse_entry(key)
            record = find(store, DocumentRecord, entry.doc_id) if entry else None
            if entry and record:
                store.put(key, entry.body(record.scan_id), "application/json")
        report.repaired = True
    return report
