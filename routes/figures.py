"""The managers' figures (figures.py): per branch and day as JSON, as CSV for Excel, and the page with
charts (web/figures.html), each for the branches the caller reaches (people/reach.py)."""

from __future__ import annotations

import csv
import functools
import io
import time
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

import figures
import keyentry
from errors import BadInput
from figures import Figures
from indexing.index import HOLDER_FIELD
from people.identity import Caller
from people.reach import covers, reaches
from roles import Operation, Role, may
from routes.deps import RedisConn, Store, require
from routes.signin import page_caller
from routes.templates import page

router = APIRouter(tags=["figures"])
Manager = Annotated[Caller, Depends(require(Operation.see_figures))]
MAX_DAYS = 366
NO_BRANCH = "（无机构）"  # e-policies, and scans with a bootstrap key: the sale system has no branch


class Row(BaseModel):
    day: date
    branch: str = Field(description='the uploading branch; "" for e-policies (no branch) and bootstrap keys')
    figures: Figures


class Backlog(BaseModel):
    branch: str
    waiting: int = Field(description="key-entry tasks waiting or leased now")
    oldest_seconds: float = Field(description="how long the oldest of them has waited")


class FiguresAnswer(BaseModel):
    from_day: date
    to_day: date
    branch: str | None = Field(description="the branch asked for (and those below it); none: all reached")
    rows: list[Row] = Field(description="one per day and branch with figures, by day then branch")
    total: Figures = Field(description="the rows summed (rates and times over all of them)")
    backlog: list[Backlog] = Field(description="key-entry now, by branch")


From = Annotated[date | None, Query(alias="from", description="first day (Beijing), default today")]
To = Annotated[date | None, Query(description="last day (Beijing), default the first")]
Branch = Annotated[str | None, Query(max_length=32, description="this branch and those below it")]


def _visible(who: Caller, branch: str | None):
    """Return whether a branch's figures are for this caller and, given a branch, under it."""
    if branch and not reaches(who, branch):
        raise HTTPException(403, f"branch {branch} is not yours to see (无权查看机构 {branch})")

    def visible(code: str) -> bool:
        if branch:
            return bool(code) and covers(who.tree, branch, code)
        return reaches(who, code or None)

    return visible


def answer(conn, store, who: Caller, first: date | None, last: date | None, branch: str | None):
    """Return the figures a caller asked for (rows, total and backlog); BadInput for a bad range."""
    first = first or figures.day_of(datetime.now(figures.ZONE))
    last = last or first
    if last < first:
        raise BadInput(f"to ({last}) is before from ({first}) (结束日期早于开始日期)")
    if (last - first).days >= MAX_DAYS:
        raise BadInput(f"at most {MAX_DAYS} days at once, not {(last - first).days + 1} (最多 {MAX_DAYS} 天)")
    visible = _visible(who, branch or None)
    rows, total = figures.read(conn, first, last, visible)
    now, waiting = time.time(), {}
    for code, created in keyentry.backlog(conn, store):
        if visible(code):
            count, oldest = waiting.get(code, (0, now))
            waiting[code] = (count + 1, min(oldest, created))
    backlog = [
        Backlog(branch=c, waiting=n, oldest_seconds=round(now - o, 1))
        for c, (n, o) in sorted(waiting.items())
    ]
    return FiguresAnswer(
        from_day=first,
        to_day=last,
        branch=branch or None,
        rows=[Row(day=r.day, branch=r.branch, figures=r.figures) for r in rows],
        total=total,
        backlog=backlog,
    )


@router.get("/v1/figures", response_model=FiguresAnswer)
def figures_json(
    store: Store, conn: RedisConn, who: Manager, first: From = None, to: To = None, branch: Branch = None
) -> FiguresAnswer:
    """The figures per branch and day, for a manager's branches (and those below them)."""
    return answer(conn, store, who, first, to, branch)


def _lines(day: str, branch: str, f: Figures) -> list[list[object]]:
    lines: list[list[object]] = [
        [day, branch, name, "", value]
        for name, value in (
            ("scans", f.scans),
            ("pages", f.pages),
            ("documents", f.documents),
            ("rescans", f.rescans),
            ("rescan_rate", f.rescan_rate),
            ("fields", f.fields_total),
            ("fields_straight_through", f.fields_straight),
            ("straight_through_rate", f.straight_through),
            ("keyed", f.keyed),
            ("completed", f.completed),
            ("complete_median_seconds", f.complete_median_seconds),
            ("complete_p90_seconds", f.complete_p90_seconds),
        )
    ]
    lines += [[day, branch, "rescan_reason", reason, n] for reason, n in f.rescan_reasons.items()]
    lines += [[day, branch, "field_straight_through_rate", x.field, x.rate] for x in f.fields]
    for k in f.keyers:
        lines += [
            [day, branch, "keyer_keyed", k.keyer, k.keyed],
            [day, branch, "keyer_accuracy", k.keyer, k.accuracy],
        ]
    lines += [[day, branch, f"epolicies_{step}", "", n] for step, n in f.epolicies.items()]
    return lines


def to_csv(found: FiguresAnswer) -> str:
    """Return the figures as CSV in long form (day, branch, figure, item, value), with a BOM for Excel."""
    out = io.StringIO()
    writer = csv.writer(out)  # None (no rate without a whole) is written as an empty cell
    writer.writerow(["日期 day", "机构 branch", "指标 figure", "项 item", "值 value"])
    for row in found.rows:
        writer.writerows(_lines(row.day.isoformat(), row.branch, row.figures))
    span = f"{found.from_day}..{found.to_day}"
    writer.writerows(_lines(span, "合计 total", found.total))
    for b in found.backlog:
        writer.writerow(["now", b.branch, "keyentry_backlog", "", b.waiting])
        writer.writerow(["now", b.branch, "keyentry_oldest_seconds", "", b.oldest_seconds])
    return "\ufeff" + out.getvalue()


@router.get("/v1/figures.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def figures_csv(
    store: Store, conn: RedisConn, who: Manager, first: From = None, to: To = None, branch: Branch = None
) -> Response:
    """The same figures as CSV (UTF-8 with a BOM, which Excel needs to read Chinese)."""
    found = answer(conn, store, who, first, to, branch)
    name = f"figures-{found.from_day}-{found.to_day}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(to_csv(found), media_type="text/csv; charset=utf-8", headers=headers)


# ---- the page ----------------------------------------------------------------------------------------


def _manager(request: Request) -> Caller | Response:
    who = page_caller(request)
    if isinstance(who, Response):
        return who
    role = next((r for r in Role if r in who.roles and may(r, Operation.see_figures)), None)
    if role is None:
        raise HTTPException(403, "this page is for managers (此页面仅供管理人员使用)")
    return who.acting_as(role)


@functools.cache
def _labels() -> dict[str, str]:
    """Return each field's label on its form or card (the same name has the same label everywhere)."""
    from capture.templates import templates

    found = {f.name: f.label for t in templates().values() for f in t.fields if f.label}
    return found | {HOLDER_FIELD: "持证人身份证号码"}


def _days(found: FiguresAnswer) -> list[tuple[str, int]]:
    """Return (day, scans) for every day of the range, summed over branches."""
    scans: dict[date, int] = {}
    for row in found.rows:
        scans[row.day] = scans.get(row.day, 0) + row.figures.scans
    return [
        (
            (found.from_day + timedelta(days=n)).strftime("%m-%d"),
            scans.get(found.from_day + timedelta(days=n), 0),
        )
        for n in range((found.to_day - found.from_day).days + 1)
    ]


@router.get("/figures", response_class=HTMLResponse, include_in_schema=False)
def figures_page(
    request: Request, store: Store, conn: RedisConn, first: From = None, to: To = None, branch: Branch = None
) -> Response:
    """The managers' page: filters, the figures with charts, the CSV link."""
    who = _manager(request)
    if isinstance(who, Response):
        return who
    message = ""
    try:
        found = answer(conn, store, who, first, to, branch)
    except BadInput as exc:
        message = exc.message
        found = answer(conn, store, who, None, None, branch)
    branches = sorted({r.branch for r in found.rows if r.branch} | ({who.branch} if who.branch else set()))
    query = f"from={found.from_day}&to={found.to_day}" + (f"&branch={found.branch}" if found.branch else "")
    html = page(
        "figures.html",
        found=found,
        total=found.total,
        days=_days(found),
        branches=branches,
        reasons=figures.REASON_NAMES,
        labels=_labels(),
        no_branch=NO_BRANCH,
        csv_url=f"/v1/figures.csv?{query}",
        message=message,
        csrf=who.csrf or "",
        person=who.person,
    )
    return HTMLResponse(html, 422 if message else 200)
