"""Reviews: problems of a case that only a person with the authority settles, with the reason recorded.

- ``card_mismatch``: an ID card in a scan that is neither the applicant nor the insured of its form
  (indexing/case.py); it stays filed under its own number whatever the decision;
- ``keyed_conflict``: a keyed value that fails the document's cross-checks (keyentry.py): accepting it
  completes the document with the conflict on record; rejecting it sends the fields back to key-entry.

One object a review, moved from open to closed when decided, so the open ones are one prefix listing::

    reviews/open/<doc_id>.<kind>.json
    reviews/closed/<doc_id>.<kind>.json
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from errors import BadInput, NotFound
from models import read
from storage import ObjectNotFound, ObjectStore
from vocabulary import DOC_ID, utcnow

CARD_MISMATCH, KEYED_CONFLICT = "card_mismatch", "keyed_conflict"
REVIEW_ID = rf"{DOC_ID}\.(card_mismatch|keyed_conflict)"
DECISIONS = ("accept", "reject")


class Review(BaseModel):
    """A problem waiting for a person's decision, and the decision once taken."""

    schema_: int = Field(1, alias="schema")
    review_id: str = Field(pattern=f"^{REVIEW_ID}$")
    doc_id: str
    scan_id: str
    kind: str
    problems: list[str]
    fields: list[str] = Field(default_factory=list)  # keyed_conflict: the fields in conflict
    opened_at: datetime
    decision: str | None = None  # accept | reject
    by: str | None = None
    role: str | None = None
    reason: str | None = None
    decided_at: datetime | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=1).encode()


def _key(review_id: str, state: str) -> str:
    return f"reviews/{state}/{review_id}.json"


def open_review(
    store: ObjectStore, doc_id: str, scan_id: str, kind: str, problems: list[str], fields: list[str] = ()
) -> Review:
    """Return the open review of this document and kind, opened now unless it is open already (its
    problems brought up to date). A decided review is opened again only if its problems changed."""
    review_id = f"{doc_id}.{kind}"
    for state in ("open", "closed"):
        try:
            old = read(store, Review, _key(review_id, state))
        except ObjectNotFound:
            continue
        if old.problems == list(problems) and old.fields == list(fields):
            return old
        if state == "closed":
            store.delete(_key(review_id, "closed"))
        break
    review = Review(
        review_id=review_id,
        doc_id=doc_id,
        scan_id=scan_id,
        kind=kind,
        problems=list(problems),
        fields=list(fields),
        opened_at=utcnow(),
    )
    store.put(_key(review_id, "open"), review.to_json(), "application/json")
    return review


def open_reviews(store: ObjectStore, limit: int = 200) -> list[Review]:
    """Return the reviews waiting for a decision, oldest first."""
    found = []
    for info in store.list("reviews/open/"):
        try:
            found.append(read(store, Review, info.key))
        except ObjectNotFound:  # decided in between
            continue
        if len(found) >= limit:
            break
    return sorted(found, key=lambda r: r.opened_at)


def find_review(store: ObjectStore, review_id: str) -> Review | None:
    """Return the review, open or decided, or None."""
    for state in ("open", "closed"):
        try:
            return read(store, Review, _key(review_id, state))
        except ObjectNotFound:
            continue
    return None


def decide(store: ObjectStore, review_id: str, decision: str, by: str, role: str, reason: str) -> Review:
    """Return the review decided (accept or reject) by this person with their reason, moved to closed."""
    if decision not in DECISIONS:
        raise BadInput(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if not reason.strip():
        raise BadInput("give the reason for the decision: it is recorded with it")
    review = find_review(store, review_id)
    if review is None:
        raise NotFound(f"no review {review_id}")
    if review.decision is not None:
        raise BadInput(f"review {review_id} was decided already ({review.decision} by {review.by})")
    decided = {"decision": decision, "by": by, "role": role, "reason": reason.strip(), "decided_at": utcnow()}
    done = review.model_copy(update=decided)
    store.put(_key(review_id, "closed"), done.to_json(), "application/json")
    store.delete(_key(review_id, "open"))
    return done
