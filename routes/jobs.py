"""The service itself: health (up or down for anyone, why for admins), and the failed-job registry (admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from redis import Redis
from redis.exceptions import RedisError

import metrics
import queues
from errors import DependencyDown
from roles import Operation
from routes.deps import Caller, RedisConn, Store, require
from storage import ObjectStore

router = APIRouter()
Admin = Annotated[Caller, Depends(require(Operation.manage_jobs))]


class Health(BaseModel):
    status: Literal["ok", "down"]


class HealthDetail(Health):
    redis: str = Field(examples=["ok", "down: Error 111 connecting to 127.0.0.1:6379. Connection refused."])
    storage: str = Field(examples=["ok"])
    workers: dict[str, int] = Field(
        default_factory=dict, description="live workers taking each queue (empty when Redis is down)"
    )


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]


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


def _health(store: ObjectStore, conn: Redis) -> HealthDetail:
    """Return whether Redis and the object store answer, and for a part that does not, why."""
    parts = {"redis": "ok", "storage": "ok"}
    try:
        conn.ping()
    except RedisError as exc:
        parts["redis"] = f"down: {exc}"
    try:
        store.ping()
    except DependencyDown as exc:
        parts["storage"] = f"down: {exc.message}"
    workers = {}
    if parts["redis"] == "ok":
        try:
            workers = queues.live_workers(conn)
        except RedisError as exc:
            parts["redis"] = f"down: {exc}"
    status = "ok" if all(v == "ok" for v in parts.values()) else "down"
    return HealthDetail(status=status, workers=workers, **parts)


def _answer(body: Health) -> JSONResponse:
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)


# Anyone may ask whether the service is up (load balancers, `imaging up` waiting for its API), but the
# reasons carry internal addresses and error texts: they are for admins, on /v1/health.
@router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, tags=["service"])
def healthz(store: Store, conn: RedisConn) -> JSONResponse:
    """Whether Redis and the object store answer: 200 `ok`, else 503 `down`; which part and why is on
    /v1/health, for admins."""
    return _answer(Health(status=_health(store, conn).status))


@router.get("/livez", tags=["service"])
def livez() -> dict:
    """The API process answers (for a supervisor's liveness probe: restart it when this fails)."""
    return {"status": "alive"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}}, tags=["service"])
def readyz(store: Store, conn: RedisConn) -> JSONResponse:
    """Whether work sent now will be done: Redis and the store answer and every queue has a live worker
    (with no worker, uploads are stored and queued but nothing reads them). 503 `not_ready` otherwise;
    which part is missing is on /v1/health, for admins."""
    detail = _health(store, conn)
    ready = detail.status == "ok" and all(detail.workers.get(q, 0) > 0 for q in queues.QUEUES)
    body = Readiness(status="ready" if ready else "not_ready")
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", tags=["service"], response_class=PlainTextResponse)
def metrics_page(conn: RedisConn) -> Response:
    """The service's metrics for Prometheus: queues, workers, key-entry, jobs, uploads, fields, e-policies
    (metrics.py). No key: they carry counts, no names or addresses; keep the path off the public proxy."""
    body = generate_latest(metrics.service_registry(conn))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/v1/health", response_model=HealthDetail, responses={503: {"model": HealthDetail}}, tags=["service"]
)
def health(
    store: Store, conn: RedisConn, who: Annotated[Caller, Depends(require(Operation.read_health))]
) -> JSONResponse:
    """Whether Redis and the object store answer; 503 names the part that is down and why."""
    return _answer(_health(store, conn))


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
