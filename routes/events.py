"""Events for core systems, as operators see them (events.py): the latest events with each webhook
delivery's state and attempts, and a replay of one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam

import events
from events import Event
from models import load
from roles import Operation
from routes.deps import Caller, ErrorBody, RedisConn, SettingsDep, Store, require

router = APIRouter(tags=["events"])
Operator = Annotated[Caller, Depends(require(Operation.manage_jobs))]
EventId = Annotated[str, PathParam(pattern=events.EVENT_ID_PATTERN)]


@router.get("/v1/events", response_model=list[Event])
def list_events(
    store: Store,
    conn: RedisConn,
    who: Operator,
    state: Annotated[
        Literal["pending", "retrying", "delivered", "failed"] | None,
        Query(description="only events with a delivery in this state"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Event]:
    """The latest events, newest first: kind, subject, data, and for each webhook URL its state
    (pending, retrying, delivered, failed), every attempt (time, HTTP status or error, duration) and
    how often it was replayed."""
    return events.recent(conn, store, limit, state)


@router.get("/v1/events/{event_id}", response_model=Event, responses={404: {"model": ErrorBody}})
def one_event(event_id: EventId, store: Store, who: Operator) -> Event:
    """One event with its deliveries and their attempts."""
    return load(store, Event, event_id)


@router.post("/v1/events/{event_id}/replay", response_model=Event, responses={404: {"model": ErrorBody}})
def replay_event(
    event_id: EventId,
    store: Store,
    conn: RedisConn,
    settings: SettingsDep,
    who: Operator,
    delivery: Annotated[
        int | None, Query(ge=0, le=100, description="which URL's delivery; all if absent")
    ] = None,
) -> Event:
    """Send an event again, with the same id and body (a receiver that had it drops the repeat): to one
    URL (`delivery`, its place in the list) or to all; retried with backoff like the first time."""
    return events.replay(conn, store, settings, event_id, delivery)
