"""The customer archive (客户档案): one record per person, keyed by their identity number, kept up to date as
documents are filed, so reading it costs what the person has, not what the store holds.

``customers/<HMAC of the identity number>/archive.json`` (no number in an object name) holds, for one
person, every fact a document gave about them (name, sex, birth date, contact address, domicile, phone),
each with its source document, field and date; the policies and claims they are on and in which role; and
their ID card sides and signature specimens with what is needed to tell the current ones. ``file`` folds
one document in (its earlier facts replaced, so filing twice changes nothing); ``view`` derives what a
person reads: the current card (front and back, newest not superseded and not to be rescanned, valid
today), the superseded ones, the current signature, and the information check (信息核对): each field on
which documents disagree, with the sources of each value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime

from pydantic import BaseModel, Field

import idnumber
from indexing.index import segment, still_valid, trusted_value
from models import DocumentRecord, read
from storage import ObjectNotFound, ObjectStore
from vocabulary import DocType, uploaded_at

# What each document type says about whom: (party's number field, {fact: field}, role on the policy).
FORM_PARTIES = (
    (
        "applicant_id_number",
        {
            "name": "applicant_name",
            "sex": "applicant_sex",
            "birth_date": "applicant_birth_date",
            "phone": "applicant_phone",
            "address": "applicant_address",
        },
        "holder",
    ),
    ("insured_id_number", {"name": "insured_name"}, "insured"),
)
CARD_FACTS = {"name": "name", "sex": "sex", "birth_date": "birth_date", "domicile": "address"}
CHECKED_FACTS = ("name", "sex", "birth_date", "address", "domicile", "phone")
Lock = Callable[[str], AbstractContextManager]


class Fact(BaseModel):
    field: str  # name | sex | birth_date | address | domicile | phone
    value: str
    doc_id: str
    source: str  # document type and field: "application_form.applicant_address"
    at: datetime  # when the document was uploaded


class PartyRole(BaseModel):
    kind: str  # policy | claim
    number: str
    role: str  # holder | insured | beneficiary | claimant
    doc_id: str


class Specimen(BaseModel):
    """An ID card side or a signature of the person, with what tells whether it is current."""

    doc_id: str
    type: str  # idcard_front | idcard_back | signature | application_form (its signature region)
    image_url: str
    at: datetime
    valid_to: str | None = None
    rescan: bool = False
    superseded_by: str | None = None


class Archive(BaseModel):
    """``customers/<HMAC>/archive.json``: what the documents say about one person."""

    schema_: int = Field(1, alias="schema")
    customer_id: str
    kind: str
    facts: list[Fact] = Field(default_factory=list)
    roles: list[PartyRole] = Field(default_factory=list)
    cards: list[Specimen] = Field(default_factory=list)
    signatures: list[Specimen] = Field(default_factory=list)
    documents: list[str] = Field(default_factory=list)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=1).encode()


def archive_key(store: ObjectStore, customer: str) -> str:
    return f"customers/{segment(store, 'customer', customer)}/archive.json"


def load_archive(store: ObjectStore, customer: str) -> Archive | None:
    """Return the person's archive, or None when no document has been filed for them."""
    try:
        return read(store, Archive, archive_key(store, customer))
    except ObjectNotFound:
        return None


def _facts(record: DocumentRecord, person: str) -> list[Fact]:
    at = uploaded_at(record.doc_id)
    found: list[tuple[str, str]] = []
    if record.type == DocType.application_form:
        for number, facts, _role in FORM_PARTIES:
            if trusted_value(record.fields, number) == person:
                found += list(facts.items())
    elif record.type == DocType.idcard_front and record.person == person and not record.rescan:
        found = list(CARD_FACTS.items())
    return [
        Fact(field=fact, value=value, doc_id=record.doc_id, source=f"{record.type}.{name}", at=at)
        for fact, name in found
        if (value := trusted_value(record.fields, name))
    ]


def _roles(record: DocumentRecord, person: str) -> list[PartyRole]:
    roles = []
    if record.type == DocType.application_form:
        numbers = record.keys.get("policy", [])
        for number_field, _facts, role in FORM_PARTIES:
            if trusted_value(record.fields, number_field) == person:
                roles += [
                    PartyRole(kind="policy", number=n, role=role, doc_id=record.doc_id) for n in numbers
                ]
    if record.type == DocType.claim_form:  # the form names its claimant and its insured
        for number_field, role in (("claimant_id_number", "claimant"), ("insured_id_number", "insured")):
            if trusted_value(record.fields, number_field) == person:
                roles += [
                    PartyRole(kind="claim", number=n, role=role, doc_id=record.doc_id)
                    for n in record.keys.get("claim", [])
                ]
    elif record.type not in (DocType.idcard_front, DocType.idcard_back):
        roles += [
            PartyRole(kind="claim", number=n, role="claimant", doc_id=record.doc_id)
            for n in record.keys.get("claim", [])
        ]
    return roles


def _specimens(record: DocumentRecord, person: str) -> tuple[list[Specimen], list[Specimen]]:
    base = {"doc_id": record.doc_id, "at": uploaded_at(record.doc_id), "rescan": record.rescan}
    base["superseded_by"] = record.superseded_by
    url = f"/v1/documents/{record.doc_id}"
    if record.type in (DocType.idcard_front, DocType.idcard_back) and record.person == person:
        valid_to = trusted_value(record.fields, "valid_to")
        return [Specimen(type=record.type, image_url=f"{url}/pages/1", valid_to=valid_to, **base)], []
    if record.type == DocType.signature and record.person == person:
        return [], [Specimen(type=record.type, image_url=f"{url}/pages/1", **base)]
    signed = "applicant_signature" in record.regions
    if (
        record.type == DocType.application_form
        and signed
        and trusted_value(record.fields, "applicant_id_number") == person
    ):
        return [], [Specimen(type=record.type, image_url=f"{url}/fields/applicant_signature", **base)]
    return [], []


def people(record: DocumentRecord) -> list[str]:
    """Return the identity numbers of the people a document tells something about, by its evidence."""
    found = set(record.keys.get("customer", []))
    if record.type in (DocType.idcard_front, DocType.idcard_back):
        found = {record.person} if record.person else set()
    return sorted(p for p in found if idnumber.identify(p).ok)


def fold(archive: Archive, record: DocumentRecord) -> Archive:
    """Return the archive with one document folded in: what it said before is replaced by what it says now."""
    person = archive.customer_id
    if record.on_file:  # a card side on file again: its images and values are the one on file's
        return archive.model_copy(update={"documents": sorted({*archive.documents, record.doc_id})})
    cards, signatures = _specimens(record, person)
    keep = lambda items: [i for i in items if i.doc_id != record.doc_id]  # noqa: E731
    return archive.model_copy(
        update={
            "facts": keep(archive.facts) + _facts(record, person),
            "roles": keep(archive.roles) + _roles(record, person),
            "cards": sorted(keep(archive.cards) + cards, key=lambda s: s.doc_id),
            "signatures": sorted(keep(archive.signatures) + signatures, key=lambda s: s.doc_id),
            "documents": sorted({*archive.documents, record.doc_id}),
        }
    )


def file(store: ObjectStore, record: DocumentRecord, lock: Lock | None = None) -> list[Archive]:
    """Return the archives of the people the document is about, after folding it into each and storing
    them, each under ``lock(<its object key>)``. The same document filed twice changes nothing."""
    lock = lock or (lambda _key: contextlib.nullcontext())
    changed = []
    for person in people(record):
        key = archive_key(store, person)
        with lock(key):
            archive = load_archive(store, person)
            if archive is None:
                archive = Archive(customer_id=person, kind=str(idnumber.identify(person).kind))
            folded = fold(archive, record)
            if folded != archive:
                store.put(key, folded.to_json(), "application/json")
                changed.append(folded)
    return changed


def epolicy_parties(holder, insured, beneficiaries) -> list[tuple[str, str, dict[str, str | None]]]:
    """Return an e-policy request's parties as ``file_parties`` takes them: holder, insured, beneficiaries."""
    return [
        (holder.id_number, "holder", {"name": holder.name, "phone": holder.phone}),
        (insured.id_number, "insured", {"name": insured.name}),
        *((b.id_number, "beneficiary", {"name": b.name}) for b in beneficiaries),
    ]


def file_parties(
    store: ObjectStore,
    doc_id: str,
    kind: str,
    number: str,
    parties: list[tuple[str, str, dict[str, str | None]]],
    lock: Lock | None = None,
) -> None:
    """Fold a document that names its parties itself (an issued e-policy: holder, insured, beneficiaries,
    each ``(identity number, role, {fact: value})``) into their archives: their role on the policy or
    claim, and what it says of them. Filing it again changes nothing."""
    lock = lock or (lambda _key: contextlib.nullcontext())
    at = uploaded_at(doc_id)
    by_person: dict[str, list[tuple[str, dict[str, str | None]]]] = {}
    for person, role, facts in parties:
        by_person.setdefault(person, []).append((role, facts))
    for person, named in by_person.items():
        if not idnumber.identify(person).ok:
            continue
        roles = [PartyRole(kind=kind, number=number, role=role, doc_id=doc_id) for role, _ in named]
        facts = [
            Fact(field=fact, value=value, doc_id=doc_id, source=f"epolicy.{role}.{fact}", at=at)
            for role, given in named
            for fact, value in given.items()
            if value
        ]
        key = archive_key(store, person)
        with lock(key):
            archive = load_archive(store, person) or Archive(
                customer_id=person, kind=str(idnumber.identify(person).kind)
            )
            update = {
                "roles": [r for r in archive.roles if r.doc_id != doc_id] + roles,
                "facts": [f for f in archive.facts if f.doc_id != doc_id] + facts,
                "documents": sorted({*archive.documents, doc_id}),
            }
            folded = archive.model_copy(update=update)
            if folded != archive:
                store.put(key, folded.to_json(), "application/json")


# ---- what a person reads -------------------------------------------------------------------------


class Source(BaseModel):
    doc_id: str
    source: str
    at: datetime


class Disagreement(BaseModel):
    field: str
    values: dict[str, list[Source]] = Field(description="each value given, with the documents giving it")


class CurrentCard(BaseModel):
    front: Specimen | None
    back: Specimen | None
    valid_to: str | None
    valid: bool | None = Field(description="whether the card is valid today; null when its expiry is unknown")


class ArchiveView(BaseModel):
    customer_id: str
    kind: str
    card: CurrentCard
    signature: Specimen | None
    disagreements: list[Disagreement] = Field(
        description="信息核对: where documents disagree about this person"
    )
    facts: dict[str, list[Fact]] = Field(description="every value each field was given, newest first")
    roles: list[PartyRole]
    superseded_cards: list[Specimen]
    superseded_signatures: list[Specimen]
    documents: int


def _current(items: list[Specimen]) -> Specimen | None:
    usable = [s for s in items if not s.rescan and not s.superseded_by]
    return max(usable, key=lambda s: s.doc_id, default=None)


def disagreements(facts: list[Fact]) -> list[Disagreement]:
    """Return, per field, the values documents gave when they are not all the same, with their sources."""
    found = []
    for name in CHECKED_FACTS:
        values: dict[str, list[Source]] = {}
        for fact in sorted((f for f in facts if f.field == name), key=lambda f: f.doc_id):
            values.setdefault(fact.value, []).append(
                Source(doc_id=fact.doc_id, source=fact.source, at=fact.at)
            )
        if len(values) > 1:
            found.append(Disagreement(field=name, values=values))
    return found


def view(archive: Archive, today: date | None = None) -> ArchiveView:
    """Return what a person reads of the archive: current card and signature on top, the disagreements."""
    front = _current([c for c in archive.cards if c.type == DocType.idcard_front])
    back = _current([c for c in archive.cards if c.type == DocType.idcard_back])
    valid_to = back.valid_to if back else None
    current = {s.doc_id for s in (front, back) if s}
    signature = _current(archive.signatures)
    facts: dict[str, list[Fact]] = {}
    for fact in sorted(archive.facts, key=lambda f: f.doc_id, reverse=True):
        facts.setdefault(fact.field, []).append(fact)
    return ArchiveView(
        customer_id=archive.customer_id,
        kind=archive.kind,
        card=CurrentCard(
            front=front,
            back=back,
            valid_to=valid_to,
            valid=still_valid(valid_to, today) if valid_to else None,
        ),
        signature=signature,
        disagreements=disagreements(archive.facts),
        facts=facts,
        roles=sorted(archive.roles, key=lambda r: (r.kind, r.number, r.role)),
        superseded_cards=[c for c in reversed(archive.cards) if c.doc_id not in current],
        superseded_signatures=[
            s for s in reversed(archive.signatures) if not signature or s.doc_id != signature.doc_id
        ],
        documents=len(archive.documents),
    )
