"""Key-entry: lease the next field to key, submit its value, and see its image (the pool is keyentry.py)."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

import events
import keyentry
from errors import NotFound
from ocr.reasons import in_chinese
from people import audit
from roles import Operation, Role
from routes.deps import Caller, ErrorBody, RedisConn, SettingsDep, Store, require
from vocabulary import DOC_ID, FIELD_NAME

router = APIRouter(tags=["key-entry"])


def keyer(who: Annotated[Caller, Depends(require(Operation.key_fields))]) -> Caller:
    """Return the caller if they may key: by person, so someone who also holds the admin role may not,
    whichever token or session they come with (separation of duties)."""
    if Role.admin in who.roles:
        raise HTTPException(403, "an administrator may not key fields (separation of duties)")
    return who


Keyer = Annotated[Caller, Depends(keyer)]
TaskId = Annotated[str, PathParam(pattern=rf"^{DOC_ID}\.{FIELD_NAME}$")]


class TaskView(BaseModel):
    task_id: str
    field: str
    label: str
    kind: str
    round: str = Field(description="single, blind (double entry, no suggestion shown) or arbitration")
    suggestion: str | None = Field(description="what OCR read; withheld in blind rounds")
    values: list[str] = Field(description="arbitration: the two keyers' differing values")
    answers: list[str] = Field(
        description="what may be answered: value, blank (where the form lets the field be empty), illegible"
    )
    reasons: list[str] = Field(description="why OCR's reading was not accepted")
    reasons_zh: list[str] = Field(description="the same, in the keyers' words (ocr/reasons.py)")
    choices: list[str] = Field(
        default_factory=list, description="a choice field's options (tick boxes): the value is one of them"
    )
    image_url: str
    strip_url: str = Field(description="the strip of the page around the field, the field marked")
    lease_seconds: int
    doc_id: str
    document_type: str
    scan_id: str


class NextTask(BaseModel):
    task: TaskView | None
    waiting: int = Field(description="fields waiting for key-entry, this one included")
    yours: int = Field(description="of those, the fields you may take now, the one you hold included")
    others: int = Field(
        description="of those, the fields waiting for someone else: leased to another keyer, or a "
        "double-entry field you keyed blind already (its second keyer and arbiter are others)"
    )


class TodayView(BaseModel):
    day: str = Field(description="the working day, Beijing time (YYYY-MM-DD)")
    answers: int = Field(description="fields you answered today: values, blanks and illegibles, every round")
    per_hour: float | None = Field(description="your answers an hour from your first to your last today")
    first_at: datetime | None
    last_at: datetime | None


class KeyedIn(BaseModel):
    value: str = Field("", max_length=200)
    answer: Literal["value", "blank", "illegible"] = Field(
        "value",
        description="value: the value keyed; blank: the field is empty on the form (only where the form "
        "allows it); illegible: nobody can read it, the document asks for a rescan",
    )


class KeyResult(BaseModel):
    task_id: str
    status: str = Field(
        description="keyed (accepted), conflict (the document's cross-checks fail: a review decides), "
        "illegible (a rescan is asked for) or waiting (for a second keyer or an arbiter)"
    )
    value: str | None = None
    detail: str | None = None


def _task_view(task: keyentry.Task) -> TaskView:
    return TaskView(
        task_id=task.task_id,
        field=task.field,
        label=task.label,
        kind=task.kind,
        round=task.round,
        suggestion=task.suggestion,
        values=task.values,
        answers=[a for a in keyentry.ANSWERS if a != "blank" or task.optional],
        reasons=task.reasons,
        reasons_zh=[in_chinese(r) for r in task.reasons],
        choices=list(task.choices),
        image_url=f"/v1/keyentry/{task.task_id}/image",
        strip_url=f"/v1/keyentry/{task.task_id}/strip",
        lease_seconds=max(0, round(task.lease_until - time.time())),
        doc_id=task.doc_id,
        document_type=task.doc_type,
        scan_id=task.scan_id,
    )


@router.get("/v1/keyentry/next", response_model=NextTask)
def keyentry_next(conn: RedisConn, store: Store, who: Keyer) -> NextTask:
    """Lease the next field to key to the caller: its image, kind, OCR suggestion (not in a blind
    round) and document. The lease runs out after `lease_seconds`; the task then returns to the pool.
    A field whose page is to be scanned again, or was superseded by a later scan, is never offered."""
    task = keyentry.lease(conn, who.person, store=store)
    yours, others = keyentry.counts(conn, who.person)
    return NextTask(
        task=_task_view(task) if task else None, waiting=yours + others, yours=yours, others=others
    )


@router.get("/v1/keyentry/today", response_model=TodayView)
def keyentry_today(conn: RedisConn, who: Keyer) -> TodayView:
    """Your own count and rate for the day (Beijing time): your answers as counted when each was
    recorded (each is in the audit trail too)."""
    return TodayView(**asdict(keyentry.today(conn, who.person, datetime.now(UTC))))


@router.post(
    "/v1/keyentry/{task_id}",
    response_model=KeyResult,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
def keyentry_submit(
    task_id: TaskId, body: KeyedIn, conn: RedisConn, store: Store, settings: SettingsDep, who: Keyer
) -> KeyResult:
    """Submit the value for a leased field, validated like OCR output (422 with the reason; the lease
    is kept), or answer blank (where the form lets it be empty) or illegible. A double-entry field waits
    for a second blind keyer, and for an arbiter if they differ. The document's cross-checks then run
    again: a conflict goes to a review (`GET /v1/reviews`) and the document stays incomplete."""
    task = keyentry.held(conn, task_id, who.person)
    round_ = task.round
    result = KeyResult(**keyentry.submit(conn, store, task_id, who.person, body.value, body.answer))
    events.queue_announce(conn, settings, task.scan_id)  # a document (or claim) it completes: an event
    audit.record(
        conn,
        person=who.person,
        branch=who.branch,
        role=who.role,
        action="arbitrate" if round_ == "arbitration" else "key",
        object=task_id,
        reason=f"{round_}: {result.status}",
    )
    keyentry.count_answer(conn, who.person, datetime.now(UTC))
    return result


@router.get(
    "/v1/keyentry/{task_id}/image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
def keyentry_image(task_id: TaskId, conn: RedisConn, store: Store, who: Keyer) -> Response:
    """The field image of a task leased to the caller."""
    task = keyentry.held(conn, task_id, who.person)
    _audit_read(conn, who, f"{task_id} key-entry image")
    return Response(store.get(task.image), media_type="image/png", headers={"Cache-Control": "private"})


@router.get(
    "/v1/keyentry/{task_id}/strip",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
def keyentry_strip(task_id: TaskId, conn: RedisConn, store: Store, who: Keyer) -> Response:
    """The strip of the page around the field of a task leased to the caller, the field outlined: which
    line of the form it is on. 404 for a field with no place on a known page (a card back's holder)."""
    task = keyentry.held(conn, task_id, who.person)
    _audit_read(conn, who, f"{task_id} key-entry strip")
    png = keyentry.strip(store, task)
    if png is None:
        raise NotFound(f"field {task.field} of {task.doc_id} has no place on a page to show")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private"})


def _audit_read(conn: RedisConn, who: Caller, what: str) -> None:
    """Put a keyer's read of a field image or strip in the audit trail before it leaves."""
    audit.record(conn, person=who.person, branch=who.branch, role=who.role, action="read", object=what)
