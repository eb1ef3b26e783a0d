"""Reviews: the problems of a case that a person with the authority decides (indexing/review.py): a card
that is no party of its form, a keyed value that fails the document's cross-checks."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

import events
import keyentry
from indexing.review import KEYED_CONFLICT, REVIEW_ID, Review, decide, open_reviews
from people import audit
from roles import Operation
from routes.deps import Caller, ErrorBody, RedisConn, SettingsDep, Store, require

router = APIRouter(tags=["reviews"])
Reviewer = Annotated[Caller, Depends(require(Operation.review_cases))]


class Decision(BaseModel):
    decision: Literal["accept", "reject"] = Field(
        description="accept: the conflict stands, recorded with the reason (a keyed conflict: the document "
        "is complete); reject: a keyed conflict's fields go back to key-entry"
    )
    reason: str = Field(min_length=3, max_length=500, description="why, for the record")


@router.get("/v1/reviews", response_model=list[Review])
def reviews(store: Store, who: Reviewer, limit: Annotated[int, Query(ge=1, le=200)] = 100) -> list[Review]:
    """The reviews waiting for a decision, oldest first."""
    return open_reviews(store, limit)


@router.post(
    "/v1/reviews/{review_id}",
    response_model=Review,
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
def decide_review(
    review_id: Annotated[str, PathParam(pattern=f"^{REVIEW_ID}$")],
    body: Decision,
    store: Store,
    conn: RedisConn,
    settings: SettingsDep,
    who: Reviewer,
) -> Review:
    """Decide a review, with the reason: recorded with who decided and when, and in the audit trail. A
    keyed conflict accepted completes its document with the conflict on record; rejected, its fields go
    back to key-entry."""
    review = decide(store, review_id, body.decision, who.key_id, who.role.value, body.reason)
    audit.record(
        conn,
        person=who.person,
        branch=who.branch,
        role=who.role.value,
        action=f"review_{body.decision}",
        object=f"{review.doc_id} {review.kind}: {'; '.join(review.problems)}",
        reason=body.reason,
    )
    if review.kind == KEYED_CONFLICT:
        record = keyentry.apply_review(conn, store, review)
        events.queue_announce(conn, settings, record.scan_id)  # accepted: the document completes
    return review
