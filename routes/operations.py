"""The operators' view of the service (admin): queues, workers, failed jobs (requeue, discard), key-entry
backlog, today's straight-through rate and recent scans, for the operator page (web/operator.html)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

import metrics
import queues
from models import Scan, find
from roles import Operation
from routes.deps import Caller, RedisConn, Store, require

router = APIRouter(tags=["jobs"])
Admin = Annotated[Caller, Depends(require(Operation.manage_jobs))]
RECENT = 20


class QueueState(BaseModel):
    name: str
    depth: int
    oldest_seconds: float = Field(description="how long the next job has waited")
    failed: int


class WorkerState(BaseModel):
    name: str
    state: str
    queues: list[str]
    last_heartbeat: datetime | None
    current_job: str | None


class ScanState(BaseModel):
    scan_id: str
    mode: str
    status: str
    uploaded_at: datetime
    pages: int
    documents: int
    error: str | None = None


class Operations(BaseModel):
    queues: list[QueueState]
    workers: list[WorkerState]
    keyentry_backlog: int
    keyentry_oldest_seconds: float
    fields_accepted_today: int = Field(description="fields captured today (UTC) that the machine accepted")
    fields_keyed_today: int = Field(description="fields captured today (UTC) sent to key-entry")
    straight_through_today: float | None = Field(description="accepted / all fields today; none before any")
    recent_scans: list[ScanState]


class DiscardRequest(BaseModel):
    job_ids: list[str] = Field(min_length=1, max_length=1000)


class DiscardResult(BaseModel):
    discarded: list[str]


@router.get("/v1/operations", response_model=Operations)
def operations(store: Store, conn: RedisConn, who: Admin) -> Operations:
    """What an operator watches: every queue, every live worker, key-entry, today's straight-through
    rate and the latest scans with their status."""
    state = metrics.now_state(conn)
    accepted, keyed = metrics.fields_on(conn, datetime.now(UTC).date().isoformat())
    scans = [find(store, Scan, s) for s in metrics.recent_scans(conn, RECENT)]
    return Operations(
        queues=[QueueState(**q) for q in state["queues"]],
        workers=[WorkerState(**w) for w in state["workers"]],
        keyentry_backlog=state["keyentry_backlog"],
        keyentry_oldest_seconds=state["keyentry_oldest_seconds"],
        fields_accepted_today=accepted,
        fields_keyed_today=keyed,
        straight_through_today=accepted / (accepted + keyed) if accepted + keyed else None,
        recent_scans=[
            ScanState(
                scan_id=s.scan_id,
                mode=s.mode,
                status=s.status,
                uploaded_at=s.uploaded_at,
                pages=s.pages,
                documents=len(s.documents),
                error=s.error,
            )
            for s in scans
            if s is not None
        ],
    )


@router.post("/v1/jobs/discard", response_model=DiscardResult)
def jobs_discard(body: DiscardRequest, conn: RedisConn, who: Admin) -> DiscardResult:
    """Delete failed jobs for good (their scans stay `failed`; send the file again to read it)."""
    return DiscardResult(discarded=queues.discard(conn, body.job_ids))
