"""The counter page (/counter): scanner stations and counter staff send a form and the customer's card
pages as one scan and read the answer in Chinese (web/counter.html, web/static/counter.js). The page calls
`POST /v1/scans` and `GET /v1/scans/{id}` with the session; it is for people whose role may upload scans."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from roles import Operation, may
from routes.signin import page_caller
from routes.templates import page

router = APIRouter(include_in_schema=False)


@router.get("/counter", response_class=HTMLResponse)
def counter_page(request: Request) -> Response:
    """The counter page for a person signed in (else the way to /login); one whose roles may not upload
    scans is told so on the page (403), in Chinese."""
    who = page_caller(request)
    if isinstance(who, Response):
        return who
    allowed = any(may(role, Operation.upload_scans) for role in who.roles)
    html = page("counter.html", csrf=who.csrf or "", person=who.person, allowed=allowed)
    return HTMLResponse(html, 200 if allowed else 403)
