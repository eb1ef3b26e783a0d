"""The case: whose each document of a scan is, by the documents' own evidence, never by the upload's tags.

A scan is settled once its documents are filed (worker.py) and again whenever a keyed value may change
the answer (keyentry.py):

- an ID card front is its number's person (read and trusted, or keyed), and is tied to the party of the
  form in its scan it matches (applicant or insured: ID number, then name, birth date and sex,
  ``ocr.validate.match_card``); a matched card is filed under the form's policy too. A card that is no
  party of the form is reported (the scan's ``checks``, the record's, and a review task) and stays filed
  under its own number only;
- an ID card back is its front's: the one front beside it on the page, or the one front of the scan.
  With no front in the scan it gets a field for a keyer (``holder_id_number``) and is filed under no
  customer until it is keyed; with several, the same;
- the upload's ``customer_id`` is a claim: when no document of the scan shows that number, the scan
  says so, and nothing is filed under it.

``evidence`` is the plain function (records in, what each should say out); ``settle`` applies it to the
stored records, each under its document lock, and re-enters their index entries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from redis import Redis

import idnumber
from indexing import archive
from indexing.index import HOLDER_FIELD, document_keys, enter, lookup, trusted_value
from indexing.review import CARD_MISMATCH, open_review
from models import DocumentRecord, FieldRecord, Scan, find
from ocr.validate import PARTIES, match_card
from storage import ObjectStore
from vocabulary import TRUSTED, DocType, FieldStatus, ScanStatus, utcnow

HOLDER_REASON = (
    "a card back with no front in its scan: key the ID number of its holder (on the front or the form "
    "it came with)"
)
Lock = Callable[[str], AbstractContextManager]


@dataclass
class Found:
    """What the scan's evidence says of one document."""

    party: str | None = None
    tied: dict[str, list[str]] = field(default_factory=dict)
    person: str | None = None
    checks: list[str] = field(default_factory=list)
    needs_holder: bool = False
    mismatch: bool = False  # a card that is no party of the form in its scan: a person reviews it


def _values(record: DocumentRecord) -> dict[str, str]:
    return {n: f.value for n, f in record.fields.items() if f.status in TRUSTED and f.value}


def _pending(record: DocumentRecord, names) -> bool:
    return any((f := record.fields.get(n)) is not None and f.status == FieldStatus.key_entry for n in names)


def _policy_numbers(form: DocumentRecord) -> list[str]:
    numbers = {form.application_no.upper()} if form.application_no else set()
    if value := trusted_value(form.fields, "application_no"):
        numbers.add(value.upper())
    return sorted(numbers)


def _front(front: DocumentRecord, forms: list[DocumentRecord]) -> Found:
    values = _values(front)
    number = values.get("id_number")
    if not number:
        why = "waits for key-entry" if _pending(front, ["id_number"]) else "none could be read"
        return Found(checks=[f"no trusted ID number on the card ({why}): filed under no customer until then"])
    if not forms:
        return Found(person=number)
    for form in forms:
        match = match_card(_values(form), values)
        if match.party:  # its name, birth date or sex against the form's: a person looks (a review)
            problems = list(match.problems)
            return Found(
                match.party, {"policy": _policy_numbers(form)}, number, problems, mismatch=bool(problems)
            )
    numbers = [PARTIES[p]["id_number"] for p in PARTIES]
    if any(_pending(form, numbers) for form in forms):
        return Found(person=number, checks=["not yet matched: the form's ID numbers wait for key-entry"])
    problem = f"the ID card ({idnumber.mask(number)}) is neither the applicant's nor the insured's"
    return Found(person=number, checks=[problem + ": filed under its own number only"], mismatch=True)


def _back(back: DocumentRecord, fronts: list[DocumentRecord], found: dict[str, Found]) -> Found:
    holder = trusted_value(back.fields, HOLDER_FIELD)
    if holder:
        return Found(person=holder)
    beside = [f for f in fronts if f.source_pages == back.source_pages]
    candidates = beside if len(beside) == 1 else fronts
    if len(candidates) == 1:
        person = found[candidates[0].doc_id].person
        if person:
            return Found(person=person)
        return Found(checks=["waits for its front's ID number to be keyed"])
    if HOLDER_FIELD in back.fields or back.on_file is None:
        many = f"{len(candidates)} fronts in its scan" if candidates else "no front in its scan"
        return Found(checks=[f"whose card this is waits for a keyer ({many})"], needs_holder=True)
    return Found(person=back.person)


def evidence(scan: Scan, records: list[DocumentRecord]) -> tuple[dict[str, Found], list[str]]:
    """Return what the scan's evidence says of each document (by doc id), and the scan's own checks: its
    documents' findings, and an upload's ``customer_id`` that no document shows."""
    forms = [r for r in records if r.type == DocType.application_form]
    fronts = [r for r in records if r.type == DocType.idcard_front]
    found: dict[str, Found] = {r.doc_id: _front(r, forms) for r in fronts}
    for back in (r for r in records if r.type == DocType.idcard_back):
        found[back.doc_id] = _back(back, fronts, found)
    checks = [
        f"{r.type} on page {r.source_pages[0] if r.source_pages else '?'}: {c}"
        for r in records
        for c in found.get(r.doc_id, Found()).checks
    ]
    if scan.customer_id:
        shown = {found[f.doc_id].person for f in fronts}
        for form in forms:
            shown.update(_values(form).get(PARTIES[p]["id_number"]) for p in PARTIES)
        if scan.customer_id not in shown:
            checks.append(
                f"the upload names customer {idnumber.mask(scan.customer_id)}, but no document in the scan "
                "shows that number (yet): nothing is filed under it"
            )
    return found, checks


def _holder_field(back: DocumentRecord) -> FieldRecord:
    return FieldRecord(
        box=[0, 0, 0, 0],
        quad=[],
        page=1,
        image=back.pages[0] if back.pages else "",
        kind="id_number",
        status=FieldStatus.key_entry,
        reasons=[HOLDER_REASON],
    )


def _apply(record: DocumentRecord, found: Found, scan: Scan) -> DocumentRecord:
    fields = dict(record.fields)
    if found.needs_holder and HOLDER_FIELD not in fields:
        fields[HOLDER_FIELD] = _holder_field(record)
    person = found.person if record.type in (DocType.idcard_front, DocType.idcard_back) else record.person
    update = {"party": found.party, "tied": found.tied, "person": person, "checks": found.checks}
    updated = record.model_copy(update={**update, "fields": fields})
    updated.complete = all(f.status in TRUSTED for f in updated.fields.values())
    return updated.model_copy(update={"keys": document_keys(updated, scan)})


def settle(store: ObjectStore, scan: Scan, lock: Lock | None = None) -> tuple[list[DocumentRecord], Scan]:
    """Return the records that changed and the scan with its checks, after applying the scan's evidence
    to its stored documents (each re-read and written under ``lock(doc_id)``), re-entering their index
    entries and opening a review for each card that is no party of its form. The caller stores the scan.
    Settling twice changes nothing."""
    lock = lock or (lambda _doc_id: contextlib.nullcontext())
    records = [r for r in (find(store, DocumentRecord, d) for d in scan.documents) if r is not None]
    found, checks = evidence(scan, records)
    changed = []
    for doc_id, what in found.items():
        with lock(doc_id):
            record = find(store, DocumentRecord, doc_id)
            if record is None:
                continue
            updated = _apply(record, what, scan)
            if updated != record:
                updated = enter(store, updated)
                meta = {"scan_id": scan.scan_id, "type": updated.type}
                store.put(updated.key, updated.to_json(), "application/json", meta)
                changed.append(updated)
        if what.mismatch:
            open_review(store, doc_id, scan.scan_id, CARD_MISMATCH, what.checks)
    changed += supersede(store, scan, lock)
    return changed, scan.model_copy(update={"checks": checks})


def _same_kind(store: ObjectStore, record: DocumentRecord) -> list[DocumentRecord]:
    """Return the earlier documents of the same form (application number) or of the same person's card
    side as this one, newest first."""
    if record.type == DocType.application_form:  # its own number, or the upload's when it has none (blurred)
        kind, number = "policy", (_policy_numbers(record) or record.keys.get("policy") or [None])[0]
    elif record.type in (DocType.idcard_front, DocType.idcard_back) and not record.on_file:
        kind, number = "customer", record.person
    else:
        return []
    if not number:
        return []
    entries = [e for e in lookup(store, kind, number) if e.type == record.type and e.doc_id < record.doc_id]
    return [
        r for r in (find(store, DocumentRecord, e.doc_id) for e in entries) if r is not None and not r.on_file
    ]


def _same_content(a: DocumentRecord, b: DocumentRecord) -> bool:
    """Whether two forms say the same: every field both trust agrees, and they trust some in common."""
    left, right = _values(a), _values(b)
    shared = left.keys() & right.keys()
    return bool(shared) and all(left[n] == right[n] for n in shared)


def supersede(store: ObjectStore, scan: Scan, lock: Lock) -> list[DocumentRecord]:
    """Return the records that changed after each form and card side of the scan superseded the earlier
    scans of the same form or of the same person's card side (both records point at each other), and
    each form whose trusted values are those of an earlier form was marked its duplicate. A document
    whose capture asked for a rescan supersedes nothing: the earlier scan stays current."""
    changed = []
    for doc_id in scan.documents:
        record = find(store, DocumentRecord, doc_id)
        if record is None or record.rescan:
            continue
        earlier = [r for r in _same_kind(store, record) if r.superseded_by in (None, doc_id)]
        # A page that asked for a rescan is nobody's original: its few trusted values (tick boxes read
        # through a blur) say too little of what the form says.
        same = [
            r
            for r in earlier
            if r.type == DocType.application_form and not r.rescan and _same_content(r, record)
        ]
        update = {
            "supersedes": sorted({*record.supersedes, *(r.doc_id for r in earlier)}),
            "duplicate_of": min((r.duplicate_of or r.doc_id for r in same), default=record.duplicate_of),
        }
        for old in earlier:
            with lock(old.doc_id):
                old = find(store, DocumentRecord, old.doc_id)
                if old is not None and old.superseded_by is None:
                    old = old.model_copy(update={"superseded_by": doc_id})
                    store.put(old.key, old.to_json(), "application/json", {"scan_id": old.scan_id})
                    changed.append(old)
        with lock(doc_id):
            record = find(store, DocumentRecord, doc_id)
            if record is not None and record.model_copy(update=update) != record:
                record = record.model_copy(update=update)
                store.put(record.key, record.to_json(), "application/json", {"scan_id": scan.scan_id})
                changed.append(record)
    return changed


def settle_scan(
    store: ObjectStore, conn: Redis, scan_id: str, update: dict | None = None
) -> tuple[list[DocumentRecord], Scan | None]:
    """Return the records that changed and the scan as stored, after settling the scan under its lock
    (``lock:scan:<id>``; each document under ``lock:doc:<id>``, as key-entry writes it) and storing the
    scan with its checks. ``update`` is what the capture job sets (its status, documents); without it a
    scan still being captured is left to its job, which settles it at the end."""
    with conn.lock(f"lock:scan:{scan_id}", timeout=120, blocking_timeout=60):
        scan = find(store, Scan, scan_id)
        if scan is None or (update is None and scan.status != ScanStatus.captured):
            return [], scan
        scan = scan.model_copy(update=update or {})
        changed, settled = settle(
            store, scan, lambda doc_id: conn.lock(f"lock:doc:{doc_id}", timeout=30, blocking_timeout=15)
        )
        settled = settled.model_copy(update={"updated_at": utcnow()})
        store.put(settled.key, settled.to_json(), "application/json")
    file_archives(
        store, settled, changed, lambda key: conn.lock(f"lock:{key}", timeout=30, blocking_timeout=15)
    )
    return changed, settled


def file_archives(store: ObjectStore, scan: Scan, changed: list[DocumentRecord], lock: Lock) -> None:
    """Bring the customer archives up to what the scan's documents, and those of other scans they
    superseded (``changed``), now say (indexing/archive.py); each archive under ``lock(its key)``."""
    others = {r.doc_id: r for r in changed if r.scan_id != scan.scan_id}
    mine = [r for r in (find(store, DocumentRecord, d) for d in scan.documents) if r is not None]
    for record in [*mine, *others.values()]:
        archive.file(store, record, lock)
