"""The claim case: everything filed under one claim number, as claims staff and the claims system need it.

``claim_case`` reads the index under the claim number and each document's record, and answers

- the material received, by type: each document's state (``complete``: every field trusted;
  ``key_entry``: fields waiting for people; ``rescan``; ``superseded`` by a later scan of it) and its
  trusted values;
- the checklist of the claim type (``IMAGING_CLAIM_CHECKLISTS``; medical reimbursement by default: the
  claim form, the medical invoices, the insured's ID card and a bank card page), each item met or not,
  and what is still missing;
- the invoices' total (each invoice number counted once, however often it was scanned);
- the checks across the material: the insured's and the claimant's ID numbers on the claim form against
  the ID cards of the case (and, when the policy's application form is on file, against its insured),
  the bank card against the form's account, the invoices' patient against the insured;
- ``complete``: every item met, every document of it complete, and no check failing.

Documents to rescan and superseded ones are listed but meet no item. Nothing here writes.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from redis import Redis

import idnumber
from indexing.index import lookup, trusted_value
from models import DocumentRecord, find
from settings import Settings
from storage import ObjectStore
from vocabulary import TRUSTED, DocType

# Checklist items that are a person's ID card rather than a document type, and the claim form's field
# holding that person's number.
PERSON_CARDS = {"insured_idcard": "insured_id_number", "claimant_idcard": "claimant_id_number"}
LABELS = {
    "claim_form": "理赔申请书 claim form",
    "medical_invoice": "医疗收费票据 medical invoices",
    "bank_card": "银行卡 bank card",
    "insured_idcard": "被保险人身份证 the insured's ID card",
    "claimant_idcard": "申请人身份证 the claimant's ID card",
    "idcard_front": "身份证正面 ID card front",
    "idcard_back": "身份证背面 ID card back",
}


class Material(BaseModel):
    """One document filed under the claim."""

    doc_id: str
    type: str
    state: str = Field(description="complete, key_entry (fields wait for people), rescan or superseded")
    values: dict[str, str | None] = Field(description="each field's trusted value; null while it waits")
    withheld: bool = Field(False, description="an identity document the reader may not see: no values")


class ChecklistItem(BaseModel):
    item: str
    label: str
    met: bool = Field(description="a complete document of this kind is in the claim")
    documents: list[str] = Field(description="the documents that stand for it (complete or not)")
    waiting: bool = Field(description="received, but fields still wait for key-entry")


class ClaimCase(BaseModel):
    schema_: int = Field(1, alias="schema")
    claim_no: str
    claim_type: str
    material: dict[str, list[Material]] = Field(description="by document type, newest first")
    checklist: list[ChecklistItem]
    missing: list[str] = Field(description="the checklist items not met, by label")
    invoice_total: str = Field(description="the sum of the complete invoices' totals, each invoice once")
    invoices_counted: list[str] = Field(description="the invoice numbers added into the total")
    checks: list[str] = Field(description="where the material disagrees (ID numbers masked)")
    complete: bool = Field(description="every checklist item met by complete documents, no check failing")


def state_of(record: DocumentRecord) -> str:
    """Return a document's state in the claim: superseded, rescan, complete or key_entry."""
    if record.superseded_by:
        return "superseded"
    if record.rescan:
        return "rescan"
    return "complete" if record.complete else "key_entry"


def _values(record: DocumentRecord) -> dict[str, str | None]:
    return {name: f.value if f.status in TRUSTED else None for name, f in record.fields.items()}


def _cents(amount: str) -> int:
    whole, _, fraction = amount.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0")[:2])


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def claim_records(store: ObjectStore, claim_no: str) -> list[DocumentRecord]:
    """Return the records of every document filed under the claim number, newest first."""
    found = (find(store, DocumentRecord, e.doc_id) for e in lookup(store, "claim", claim_no))
    return [r for r in found if r is not None]


def _current(records: list[DocumentRecord], doc_type: str) -> list[DocumentRecord]:
    return [r for r in records if r.type == doc_type and state_of(r) in ("complete", "key_entry")]


def _checklist(items: tuple[str, ...], records: list[DocumentRecord], form: dict) -> list[ChecklistItem]:
    out = []
    for item in items:
        if item in PERSON_CARDS:
            number = form.get(PERSON_CARDS[item])
            docs = [
                r
                for r in _current(records, DocType.idcard_front)
                if number and trusted_value(r.fields, "id_number") == number
            ]
        else:
            docs = _current(records, item)
        met = any(r.complete for r in docs)
        out.append(
            ChecklistItem(
                item=item,
                label=LABELS.get(item, item),
                met=met,
                documents=[r.doc_id for r in docs],
                waiting=bool(docs) and not all(r.complete for r in docs),
            )
        )
    return out


def _invoices(records: list[DocumentRecord]) -> tuple[int, list[str]]:
    """Return the total of the complete invoices in cents, each invoice number once, and the numbers."""
    seen: dict[str, int] = {}
    for record in sorted(_current(records, DocType.medical_invoice), key=lambda r: r.doc_id):
        number, total = (
            trusted_value(record.fields, "invoice_no"),
            trusted_value(record.fields, "total_amount"),
        )
        if record.complete and number and total and number not in seen:
            seen[number] = _cents(total)
    return sum(seen.values()), sorted(seen)


def _policy_insured(store: ObjectStore, policy_no: str | None) -> set[str]:
    """Return the insured's ID numbers the policy's application forms on file trust (none: not on file)."""
    if not policy_no:
        return set()
    numbers = set()
    for entry in lookup(store, "policy", policy_no):
        if entry.type == DocType.application_form:
            record = find(store, DocumentRecord, entry.doc_id)
            number = trusted_value(record.fields, "insured_id_number") if record else None
            if number:
                numbers.add(number)
    return numbers


def case_checks(store: ObjectStore, records: list[DocumentRecord], form: dict) -> list[str]:
    """Return where the claim's material disagrees: the people's ID numbers against the case's ID cards
    and the policy's insured, the bank card against the form's account, the invoices' patient."""
    problems = []
    cards = {trusted_value(r.fields, "id_number") for r in _current(records, DocType.idcard_front)} - {None}
    insured, claimant = form.get("insured_id_number"), form.get("claimant_id_number")
    if cards and insured and insured not in cards:
        problems.append(f"no ID card in the claim is the insured's ({idnumber.mask(insured)})")
    if claimant and claimant != insured and cards and claimant not in cards:
        problems.append(
            f"the claimant's ID number ({idnumber.mask(claimant)}) is neither the insured's nor on an ID "
            "card in the claim"
        )
    on_policy = _policy_insured(store, form.get("policy_no"))
    if insured and on_policy and insured not in on_policy:
        problems.append(
            f"the insured on the claim form ({idnumber.mask(insured)}) is not the insured of policy "
            f"{form.get('policy_no')}"
        )
    account = form.get("account_number")
    for card in _current(records, DocType.bank_card):
        number = trusted_value(card.fields, "card_number")
        if account and number and number != account:
            problems.append(
                f"the bank card ****{number[-4:]} is not the claim form's account ****{account[-4:]}"
            )
    name = form.get("insured_name")
    for invoice in _current(records, DocType.medical_invoice):
        patient = trusted_value(invoice.fields, "patient_name")
        if name and patient and patient != name:
            number = trusted_value(invoice.fields, "invoice_no") or invoice.doc_id
            problems.append(f"invoice {number} is for {patient}, not the insured {name}")
    return problems


def claim_case(
    store: ObjectStore,
    redis: Redis | None,
    claim_no: str,
    settings: Settings,
    claim_type: str | None = None,
    records: list[DocumentRecord] | None = None,
) -> ClaimCase:
    """Return the claim's material, checklist, invoices' total, checks and whether it is complete. Call it
    after any document under the claim number completes. ``redis`` is not read today: the case is all in
    the store. ``records``: the documents to judge (default: every one filed under the number)."""
    checklists = settings.checklists
    claim_type = claim_type or next(iter(checklists))
    if claim_type not in checklists:
        raise ValueError(f"no checklist for claim type {claim_type!r}: {', '.join(checklists)}")
    records = claim_records(store, claim_no) if records is None else records
    forms = [r for r in _current(records, DocType.claim_form)]
    form = {n: v for n, v in _values(forms[0]).items() if v} if forms else {}
    material: dict[str, list[Material]] = {}
    for record in records:
        material.setdefault(record.type, []).append(
            Material(doc_id=record.doc_id, type=record.type, state=state_of(record), values=_values(record))
        )
    checklist = _checklist(checklists[claim_type], records, form)
    total, counted = _invoices(records)
    checks = case_checks(store, records, form)
    return ClaimCase(
        claim_no=claim_no,
        claim_type=claim_type,
        material=material,
        checklist=checklist,
        missing=[i.label for i in checklist if not i.met],
        invoice_total=_money(total),
        invoices_counted=counted,
        checks=checks,
        complete=all(i.met and not i.waiting for i in checklist) and not checks,
    )
