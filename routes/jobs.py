"""The service itself: health, and the failed-job registry (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

import queues
from errors import DependencyDown
from roles import Operation
from routes.deps import Caller, RedisConn, Store, require

router = APIRouter()
Admin = Annotated[Caller, Depends(require(Operation.manage_jobs))]


class Health(BaseModel):
    status: str
    redis: str
    storage: str


class FailedJobOut(BaseModel):
    job_id: str
    queue: str
    func: str
    ended_at: str
    error: str


class RequeueRequest(BaseModel):
    job_ids: list[str] = Field(min_length=1, max_length=1000)


class RequeueResult(BaseModel):
    requeued: list[str]


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, tags=["service"])
def healthz(store: Store, conn: RedisConn) -> JSONResponse:
    """Whether Redis and the object store answer; 503 names the part that is down."""
    parts = {"redis": "ok", "storage": "ok"}
    try:
        conn.ping()
    except RedisError as exc:
        parts["redis"] = f"down: {exc}"
    try:
        store.ping()
    except DependencyDown as exc:
        parts["storage"] = f"down: {exc.message}"
    ok = all(v == "ok" for v in parts.values())
    return JSONResponse({"status": "ok" if ok else "down", **parts}, status_code=200 if ok else 503)


@router.get("/v1/jobs/failed", response_model=list[FailedJobOut], tags=["jobs"])
def jobs_failed(conn: RedisConn, who: Admin) -> list[FailedJobOut]:
    """Jobs that failed for good, oldest first."""
    return [
        FailedJobOut(job_id=f.job_id, queue=f.queue, func=f.func, ended_at=f.ended_at, error=f.error)
        for f in queues.failed_jobs(conn)
    ]


@router.post("/v1/jobs/requeue", response_model=RequeueResult, tags=["jobs"])
def jobs_requeue(body: RequeueRequest, conn: RedisConn, who: Admin) -> RequeueResult:
    """Put failed jobs back on their queues."""
    return RequeueResult(requeued=queues.requeue(conn, body.job_ids))
